package fusefs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
)

// benchSize is the object read by the read benchmarks.
const benchSize = 64 << 20

func benchStore(b *testing.B, kind string) remote.Store {
	b.Helper()
	var s remote.Store
	if kind == "minio" {
		s = newMinIOStore(b)
	} else {
		s = mem.New()
	}
	content := randomBytes(9, benchSize)
	if _, err := s.Put(context.Background(), "big", bytes.NewReader(content), benchSize, remote.PutMeta{}); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSequentialRead compares reading an object through the mount
// with reading it directly from the store (one ranged read).
func BenchmarkSequentialRead(b *testing.B) {
	for _, kind := range []string{"mem", "minio"} {
		b.Run(kind+"/direct", func(b *testing.B) {
			s := benchStore(b, kind)
			b.SetBytes(benchSize)
			for b.Loop() {
				rd, err := s.Open(context.Background(), "big", 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rd); err != nil || n != benchSize {
					b.Fatal(n, err)
				}
				rd.Close()
			}
		})
		b.Run(kind+"/mount", func(b *testing.B) {
			s := benchStore(b, kind)
			mp, _ := mountTest(b, s, Options{})
			b.SetBytes(benchSize)
			buf := make([]byte, 1<<20)
			for b.Loop() {
				f, err := os.Open(filepath.Join(mp, "big"))
				if err != nil {
					b.Fatal(err)
				}
				// Drop the cached pages, so every round reads the store.
				if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
					b.Fatal(err)
				}
				if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil || n != benchSize {
					b.Fatal(n, err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkSmallFileCopy writes small files through the mount, as cp -r
// of many small files does.
func BenchmarkSmallFileCopy(b *testing.B) {
	for _, kind := range []string{"mem", "minio"} {
		b.Run(kind, func(b *testing.B) {
			var s remote.Store
			if kind == "minio" {
				s = newMinIOStore(b)
			} else {
				s = mem.New()
			}
			mp, _ := mountTest(b, s, Options{})
			data := randomBytes(1, 4096)
			i := 0
			for b.Loop() {
				i++
				if err := os.WriteFile(filepath.Join(mp, "f"+string(rune('a'+i%26))+itoa(i)), data, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[p:])
		}
	}
}
