package fusefs

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/vault"
)

// vaultBenchSize is the file read by BenchmarkVaultSequentialRead.
const vaultBenchSize = 256 << 20

// BenchmarkVaultSequentialRead reads a 256 MiB backed-up file (about 256
// chunks) sequentially:
//
//   - direct: GETs of its chunks one after the other, straight from the
//     store (no checksum), the baseline;
//   - mount-cold: through the mount with empty caches (every chunk fetched
//     and checked; read-ahead at work);
//   - mount-disk: through the mount with the chunks in the disk cache and
//     the memory cache empty (a remount's second read);
//
// each time after dropping the kernel's page cache of the file.
func BenchmarkVaultSequentialRead(b *testing.B) {
	for _, kind := range []string{"mem", "minio"} {
		b.Run(kind, func(b *testing.B) {
			needFUSE(b)
			var st remote.Store
			if kind == "minio" {
				st = newMinIOStore(b)
			} else {
				st = mem.New()
			}
			v := newTestVault(b, st)
			src := filepath.Join(b.TempDir(), "src")
			if err := os.MkdirAll(src, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "big"), randomBytes(11, vaultBenchSize), 0o644); err != nil {
				b.Fatal(err)
			}
			m := backupInto(b, v, src, "bench")
			if err := os.RemoveAll(src); err != nil {
				b.Fatal(err)
			}
			tree, err := v.Tree(context.Background(), m)
			if err != nil {
				b.Fatal(err)
			}
			var chunks []vault.Chunk
			for _, e := range tree.Entries {
				if e.Path == "big" {
					chunks = e.Chunks
				}
			}

			b.Run("direct", func(b *testing.B) {
				b.SetBytes(vaultBenchSize)
				for b.Loop() {
					var n int64
					for _, c := range chunks {
						rd, err := st.Open(context.Background(), vaultChunkKey(c), c.Offset, c.Size)
						if err != nil {
							b.Fatal(err)
						}
						k, err := io.Copy(io.Discard, rd)
						rd.Close()
						if err != nil {
							b.Fatal(err)
						}
						n += k
					}
					if n != vaultBenchSize {
						b.Fatalf("read %d bytes", n)
					}
				}
			})
			b.Run("mount-cold", func(b *testing.B) {
				mp, fsys := benchMountVault(b, v, "")
				p := filepath.Join(mp, "latest", "big")
				b.SetBytes(vaultBenchSize)
				for b.Loop() {
					fsys.chunks.drop()
					dropPageCache(b, p)
					benchReadFile(b, p)
				}
			})
			b.Run("mount-disk", func(b *testing.B) {
				mp, fsys := benchMountVault(b, v, filepath.Join(b.TempDir(), "cache"))
				p := filepath.Join(mp, "latest", "big")
				benchReadFile(b, p) // fill the disk cache
				b.SetBytes(vaultBenchSize)
				for b.Loop() {
					fsys.chunks.drop()
					dropPageCache(b, p)
					benchReadFile(b, p)
				}
			})
		})
	}
}

// benchMountVault mounts v with the disk cache in cacheDir ("" for
// none).
func benchMountVault(b *testing.B, v *vault.Vault, cacheDir string) (string, *vaultFS) {
	b.Helper()
	mp := filepath.Join(b.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		b.Fatal(err)
	}
	m, fsys, err := mountVault(context.Background(), mp, v, Options{CacheDir: cacheDir, Logger: testLogger(b, slog.LevelWarn)}, vaultCacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	testMountpoints.Store(mp, true)
	b.Cleanup(func() { unmountTest(b, m) })
	return mp, fsys
}

func benchReadFile(b *testing.B, p string) {
	b.Helper()
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
	if err != nil || n != vaultBenchSize {
		b.Fatalf("read %d bytes: %v", n, err)
	}
}
