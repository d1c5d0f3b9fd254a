package fusefs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

// forEachStore runs fn as a parallel sub-test for every store kind.
func forEachStore(t *testing.T, fn func(t *testing.T, s remote.Store)) {
	t.Parallel()
	for _, kind := range storeKinds() {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			fn(t, kind.new(t))
		})
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// makeTree writes a small tree of files under dir and returns their
// relative paths and contents.
func makeTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"empty":                 {},
		"small.txt":             []byte("hello, world\n"),
		"a/one.bin":             randomBytes(1, 4096),
		"a/b/two.bin":           randomBytes(2, 300<<10),
		"a/b/c/three.bin":       randomBytes(3, 2<<20+17),
		"a/b/c/d/deep.txt":      []byte("deep"),
		"with space/name 1.txt": []byte("spaces"),
		"ünïcödé/файл.txt":      []byte("unicode"),
	}
	for p, b := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return files
}

// checkStoreFiles checks that the store holds exactly want under prefix,
// with the right content and SHA-256.
func checkStoreFiles(t *testing.T, s remote.Store, prefix string, want map[string][]byte) {
	t.Helper()
	var got []string
	for _, k := range keys(t, s) {
		if rel, ok := strings.CutPrefix(k, prefix); ok {
			got = append(got, rel)
		}
	}
	var wantKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	slices.Sort(got)
	slices.Sort(wantKeys)
	if !slices.Equal(got, wantKeys) {
		t.Fatalf("store keys under %q:\n got %q\nwant %q", prefix, got, wantKeys)
	}
	for rel, b := range want {
		info, err := s.Stat(context.Background(), prefix+rel)
		if err != nil {
			t.Fatalf("stat %s: %v", rel, err)
		}
		if info.Size != int64(len(b)) || info.SHA256 != sha(b) {
			t.Errorf("%s: size %d sha256 %s, want %d %s", rel, info.Size, info.SHA256, len(b), sha(b))
		}
		if got := get(t, s, prefix+rel); got != string(b) {
			t.Errorf("%s: content differs (%d bytes, want %d)", rel, len(got), len(b))
		}
	}
}

// checkTree checks that the directory dir holds exactly want (and the
// directories in dirs).
func checkTree(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	if len(got) != len(want) {
		t.Errorf("%s has %d files, want %d", dir, len(got), len(want))
	}
	for p, b := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: missing %s", dir, p)
		} else if !bytes.Equal(g, b) {
			t.Errorf("%s: %s differs", dir, p)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestCopyTreeIn(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		src := t.TempDir()
		want := makeTree(t, src)
		mp, _ := mountTest(t, s, Options{})
		run(t, "cp", "-r", src, filepath.Join(mp, "dst"))
		checkStoreFiles(t, s, "dst/", want)
		checkTree(t, filepath.Join(mp, "dst"), want)
		if fi, err := os.Stat(filepath.Join(mp, "dst/empty-dir")); err != nil || !fi.IsDir() {
			t.Errorf("empty directory copied in: %v, %v", fi, err)
		}
		// And out again.
		back := filepath.Join(t.TempDir(), "back")
		run(t, "cp", "-r", filepath.Join(mp, "dst"), back)
		checkTree(t, back, want)
	})
}

func TestRsyncIn(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed")
	}
	forEachStore(t, func(t *testing.T, s remote.Store) {
		src := t.TempDir()
		want := makeTree(t, src)
		mp, _ := mountTest(t, s, Options{})
		run(t, "rsync", "-r", src+"/", filepath.Join(mp, "dst")+"/")
		checkStoreFiles(t, s, "dst/", want)
		// rsync writes each file to a temporary name and renames it:
		// nothing else may be left.
		checkTree(t, filepath.Join(mp, "dst"), want)
		// A second run with times changes nothing it need not.
		run(t, "rsync", "-rt", src+"/", filepath.Join(mp, "dst")+"/")
		checkStoreFiles(t, s, "dst/", want)
	})
}

func TestEditorSave(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		put(t, s, "notes/doc.txt", "first version\n")
		mp, _ := mountTest(t, s, Options{})
		doc := filepath.Join(mp, "notes/doc.txt")

		// Write a temporary file, fsync it, rename it over the original.
		tmp := filepath.Join(mp, "notes/.doc.txt.tmp")
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("second version\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, doc); err != nil {
			t.Fatalf("rename over the original: %v", err)
		}
		if b, err := os.ReadFile(doc); err != nil || string(b) != "second version\n" {
			t.Fatalf("read back: %q, %v", b, err)
		}
		if got := keys(t, s); !slices.Equal(got, []string{"notes/doc.txt"}) {
			t.Fatalf("store keys %q, want only notes/doc.txt", got)
		}
		if got := get(t, s, "notes/doc.txt"); got != "second version\n" {
			t.Fatalf("store has %q", got)
		}

		// vim's way: rename the original to a backup, write a new file,
		// delete the backup.
		backup := doc + "~"
		if err := os.Rename(doc, backup); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(doc, []byte("third version\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(backup); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, s); !slices.Equal(got, []string{"notes/doc.txt"}) {
			t.Fatalf("store keys %q, want only notes/doc.txt", got)
		}
		if got := get(t, s, "notes/doc.txt"); got != "third version\n" {
			t.Fatalf("store has %q", got)
		}

		// Rename of a file still open and not yet uploaded: the content
		// lands at the new name when it is closed.
		f, err = os.Create(filepath.Join(mp, "notes/draft"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("draft"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(mp, "notes/draft"), filepath.Join(mp, "final")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(" and more"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, s); !slices.Equal(got, []string{"final", "notes/doc.txt"}) {
			t.Fatalf("store keys %q", got)
		}
		if got := get(t, s, "final"); got != "draft and more" {
			t.Fatalf("store has %q", got)
		}
	})
}

func TestMoveFile(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		content := randomBytes(7, 100<<10)
		if _, err := s.Put(context.Background(), "in/a.bin", bytes.NewReader(content), int64(len(content)),
			remote.PutMeta{ModTime: mtime, SHA256: sha(content)}); err != nil {
			t.Fatal(err)
		}
		mp, _ := mountTest(t, s, Options{})
		if err := os.Mkdir(filepath.Join(mp, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "mv", filepath.Join(mp, "in/a.bin"), filepath.Join(mp, "out/b.bin"))
		if _, err := os.Stat(filepath.Join(mp, "in/a.bin")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("old name after mv: %v", err)
		}
		// The source directory stays, empty, until it is removed.
		if ents, err := os.ReadDir(filepath.Join(mp, "in")); err != nil || len(ents) != 0 {
			t.Errorf("emptied directory: %v, %v", ents, err)
		}
		if b, err := os.ReadFile(filepath.Join(mp, "out/b.bin")); err != nil || !bytes.Equal(b, content) {
			t.Fatalf("read moved file: %d bytes, %v", len(b), err)
		}
		info, err := s.Stat(context.Background(), "out/b.bin")
		if err != nil {
			t.Fatal(err)
		}
		if !info.ModTime.Equal(mtime) || info.SHA256 != sha(content) {
			t.Errorf("moved object: mtime %v sha %s, want %v %s", info.ModTime, info.SHA256, mtime, sha(content))
		}
		if got := keys(t, s); !slices.Equal(got, []string{"out/b.bin"}) {
			t.Errorf("store keys %q", got)
		}
		// A store without server-side copy gets the object copied through
		// the mount.
		ps := plainStore{mem.New()}
		put(t, ps, "x", "plain")
		mp2, _ := mountTest(t, ps, Options{})
		if err := os.Rename(filepath.Join(mp2, "x"), filepath.Join(mp2, "y")); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, ps); !slices.Equal(got, []string{"y"}) || get(t, ps, "y") != "plain" {
			t.Errorf("plain store after rename: %q", got)
		}
	})
}

func TestDirectories(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		put(t, s, "full/file", "x")
		mp, _ := mountTest(t, s, Options{})
		if err := syscall.Rmdir(filepath.Join(mp, "full")); err != syscall.ENOTEMPTY {
			t.Errorf("rmdir of a non-empty directory: %v, want ENOTEMPTY", err)
		}
		if err := os.MkdirAll(filepath.Join(mp, "new/sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Rmdir(filepath.Join(mp, "new")); err != syscall.ENOTEMPTY {
			t.Errorf("rmdir of a directory holding an empty one: %v, want ENOTEMPTY", err)
		}
		if err := os.Mkdir(filepath.Join(mp, "new"), 0o755); !errors.Is(err, fs.ErrExist) {
			t.Errorf("mkdir of an existing directory: %v", err)
		}
		ents, err := os.ReadDir(mp)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"full", "new"}) {
			t.Errorf("root lists %q", names)
		}
		// Empty directories are not written to the store.
		if got := keys(t, s); !slices.Equal(got, []string{"full/file"}) {
			t.Errorf("store keys %q", got)
		}
		// An empty directory renames; a non-empty one is EXDEV, which makes
		// mv copy it instead.
		if err := os.Rename(filepath.Join(mp, "new/sub"), filepath.Join(mp, "sub2")); err != nil {
			t.Errorf("rename of an empty directory: %v", err)
		}
		if err := syscall.Rename(filepath.Join(mp, "full"), filepath.Join(mp, "full2")); err != syscall.EXDEV {
			t.Errorf("rename of a non-empty directory: %v, want EXDEV", err)
		}
		run(t, "mv", filepath.Join(mp, "full"), filepath.Join(mp, "moved"))
		if got := keys(t, s); !slices.Equal(got, []string{"moved/file"}) {
			t.Errorf("store keys after mv of a directory %q", got)
		}
		for _, d := range []string{"new", "sub2"} {
			if err := os.Remove(filepath.Join(mp, d)); err != nil {
				t.Errorf("rmdir %s: %v", d, err)
			}
		}
		if err := os.Remove(filepath.Join(mp, "moved/file")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(mp, "moved")); err != nil {
			t.Errorf("rmdir of a directory emptied through the mount: %v", err)
		}
		if ents, err := os.ReadDir(mp); err != nil || len(ents) != 0 {
			t.Errorf("root after removing everything: %v, %v", ents, err)
		}
	})
}

func TestUnsupported(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		put(t, s, "f", "content")
		put(t, s, "d/g", "content")
		mp, _ := mountTest(t, s, Options{})
		f, d := filepath.Join(mp, "f"), filepath.Join(mp, "d")
		for _, c := range []struct {
			what string
			err  error
			want error
		}{
			{"chmod to another mode", syscall.Chmod(f, 0o600), syscall.EPERM},
			{"chmod of a directory", syscall.Chmod(d, 0o700), syscall.EPERM},
			{"chown to another user", syscall.Chown(f, os.Getuid()+1, -1), syscall.EPERM},
			{"hard link", syscall.Link(f, filepath.Join(mp, "link")), syscall.EPERM},
			{"symlink", syscall.Symlink("f", filepath.Join(mp, "sym")), syscall.EPERM},
			{"mkfifo", syscall.Mkfifo(filepath.Join(mp, "fifo"), 0o644), syscall.EPERM},
			{"setxattr", unix.Setxattr(f, "user.x", []byte("v"), 0), syscall.EOPNOTSUPP},
			{"backslash in a name", os.WriteFile(filepath.Join(mp, `a\b`), nil, 0o644), syscall.EINVAL},
			{"truncate a directory", syscall.Truncate(d, 0), syscall.EISDIR},
		} {
			if !errors.Is(c.err, c.want) {
				t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
			}
		}
		if fd, err := syscall.Open(mp, unix.O_TMPFILE|syscall.O_RDWR, 0o600); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("O_TMPFILE: %v, want EOPNOTSUPP", err)
			if err == nil {
				syscall.Close(fd)
			}
		}
		if fh, err := os.OpenFile(f, os.O_RDWR, 0); err != nil {
			t.Error(err)
		} else {
			if err := syscall.Fallocate(int(fh.Fd()), 0, 0, 1<<20); !errors.Is(err, syscall.EOPNOTSUPP) {
				t.Errorf("fallocate: %v, want EOPNOTSUPP", err)
			}
			fh.Close()
		}
		// What changes nothing is allowed, so cp and rsync work.
		if err := os.Chmod(f, 0o644); err != nil {
			t.Errorf("chmod to the shown mode: %v", err)
		}
		if err := os.Chown(f, os.Getuid(), os.Getgid()); err != nil {
			t.Errorf("chown to the shown owner: %v", err)
		}
		if got := keys(t, s); !slices.Equal(got, []string{"d/g", "f"}) {
			t.Errorf("store keys %q", got)
		}
	})
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	s := mem.New()
	put(t, s, "f", "content")
	mp, _ := mountTest(t, s, Options{ReadOnly: true})
	if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "content" {
		t.Fatalf("read: %q %v", b, err)
	}
	for what, err := range map[string]error{
		"create": os.WriteFile(filepath.Join(mp, "g"), nil, 0o644),
		"write":  os.WriteFile(filepath.Join(mp, "f"), nil, 0o644),
		"mkdir":  os.Mkdir(filepath.Join(mp, "d"), 0o755),
		"remove": os.Remove(filepath.Join(mp, "f")),
		"rename": os.Rename(filepath.Join(mp, "f"), filepath.Join(mp, "h")),
	} {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(mp, "f")); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("mode in a read-only mount: %v %v", fi.Mode(), err)
	}
}

func TestWrittenFileMetadata(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		mp, _ := mountTest(t, s, Options{})
		content := randomBytes(11, 6<<20+3) // more than one S3 part
		before := time.Now().Add(-time.Second)
		if err := os.WriteFile(filepath.Join(mp, "w.bin"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		after := time.Now().Add(time.Second)
		info, err := s.Stat(context.Background(), "w.bin")
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(content)) || info.SHA256 != sha(content) {
			t.Errorf("stored size %d sha256 %s, want %d %s", info.Size, info.SHA256, len(content), sha(content))
		}
		if info.ModTime.Before(before) || info.ModTime.After(after) {
			t.Errorf("stored mtime %v, want the time of the write", info.ModTime)
		}
		if get(t, s, "w.bin") != string(content) {
			t.Error("stored content differs")
		}
		fi, err := os.Stat(filepath.Join(mp, "w.bin"))
		if err != nil || !fi.ModTime().Equal(info.ModTime) || fi.Size() != info.Size {
			t.Errorf("stat through the mount: %v %v %v, want %v", fi.ModTime(), fi.Size(), err, info.ModTime)
		}

		// Setting the mtime of a closed file writes the object again.
		mtime := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
		if err := os.Chtimes(filepath.Join(mp, "w.bin"), mtime, mtime); err != nil {
			t.Fatal(err)
		}
		info, err = s.Stat(context.Background(), "w.bin")
		if err != nil || !info.ModTime.Equal(mtime) || info.SHA256 != sha(content) {
			t.Errorf("after chtimes: mtime %v sha %s (%v), want %v", info.ModTime, info.SHA256, err, mtime)
		}
		// The mtime set on an open file goes with its upload.
		mtime = mtime.Add(-600).Add(7 * time.Microsecond) // futimes has microseconds
		f, err := os.Create(filepath.Join(mp, "t.txt"))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("timed")
		if err := unix.Futimes(int(f.Fd()), []unix.Timeval{unix.NsecToTimeval(mtime.UnixNano()), unix.NsecToTimeval(mtime.UnixNano())}); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		info, err = s.Stat(context.Background(), "t.txt")
		if err != nil || !info.ModTime.Equal(mtime) || info.SHA256 != sha([]byte("timed")) {
			t.Errorf("file with futimes: mtime %v sha %s (%v), want %v", info.ModTime, info.SHA256, err, mtime)
		}
	})
}

func TestReads(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		content := randomBytes(5, 5<<20+999)
		if _, err := s.Put(context.Background(), "big", bytes.NewReader(content), int64(len(content)), remote.PutMeta{}); err != nil {
			t.Fatal(err)
		}
		cs := &countingStore{Store: s}
		mp, _ := mountTest(t, cs, Options{Logger: testLogger(t, slog.LevelDebug)})
		f, err := os.Open(filepath.Join(mp, "big"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("sequential read: %d bytes, %v", len(got), err)
		}
		// One ranged read streams the whole file: the kernel asks for it in
		// requests of at most 1 MiB, and each does not open the object
		// again. (Allow one reopen: an interrupt at the wrong moment, or the
		// kernel re-reading a page, may cost one.)
		if n := cs.opens.Load(); n > 2 {
			t.Errorf("a sequential read of %d bytes opened the object %d times, want 1", len(content), n)
		}
		// Random reads, with the kernel's cache out of the way.
		g, err := os.OpenFile(filepath.Join(mp, "big"), os.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		r := rand.New(rand.NewPCG(1, 2))
		for range 50 {
			off := r.Int64N(int64(len(content)))
			buf := make([]byte, 1+r.IntN(200<<10))
			n, err := g.ReadAt(buf, off)
			if err != nil && err != io.EOF {
				t.Fatalf("ReadAt %d: %v", off, err)
			}
			want := content[off:min(off+int64(len(buf)), int64(len(content)))]
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("ReadAt %d+%d: got %d bytes, differing", off, len(buf), n)
			}
		}
		// Parallel readers of one file.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				b, err := os.ReadFile(filepath.Join(mp, "big"))
				if err != nil || !bytes.Equal(b, content) {
					t.Errorf("reader %d: %d bytes, %v", i, len(b), err)
				}
			})
		}
		wg.Wait()
	})
}

func TestParallelWriters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		mp, _ := mountTest(t, s, Options{})
		want := map[string][]byte{}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range 16 {
			name := filepath.Join("p", string(rune('a'+i%4)), "f"+strings.Repeat("x", i))
			b := randomBytes(uint64(i), 1000*i)
			want[filepath.ToSlash(name)] = b
			wg.Go(func() {
				if err := os.MkdirAll(filepath.Join(mp, filepath.Dir(name)), 0o755); err != nil {
					mu.Lock()
					t.Errorf("mkdir: %v", err)
					mu.Unlock()
					return
				}
				if err := os.WriteFile(filepath.Join(mp, name), b, 0o644); err != nil {
					t.Errorf("write %s: %v", name, err)
				}
			})
		}
		wg.Wait()
		checkStoreFiles(t, s, "", want)
		checkTree(t, mp, want)
	})
}

func TestListingCacheSurvivesRemount(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	dbDir := t.TempDir()
	s := &countingStore{Store: mem.New()}
	put(t, s, "a/b/c.txt", "c")
	put(t, s, "a/d.txt", "d")
	put(t, s, "e.txt", "e")
	opts := func(db *state.DB) Options {
		return Options{DB: db, CacheID: "test:cache", ListTTL: time.Hour}
	}
	listAll := func(mp string) []string {
		var out []string
		err := filepath.WalkDir(mp, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(mp, p)
			out = append(out, rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	db, err := state.Open(dbDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mp, m := mountTest(t, s, opts(db))
	first := listAll(mp)
	if s.lists.Load() == 0 {
		t.Fatal("the first mount listed nothing")
	}
	// A change through the mount is kept in the stored listing too.
	if err := os.WriteFile(filepath.Join(mp, "a/new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	first = append(first, "a/new.txt")
	slices.Sort(first)
	unmountTest(t, m)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = state.Open(dbDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s.lists.Store(0)
	mp, _ = mountTest(t, s, opts(db))
	second := listAll(mp)
	slices.Sort(second)
	if !slices.Equal(first, second) {
		t.Errorf("second mount lists\n%q\nwant\n%q", second, first)
	}
	if n := s.lists.Load(); n != 0 {
		t.Errorf("the second mount listed the store %d times, want 0 (cached)", n)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "a/new.txt")); err != nil || string(b) != "new" {
		t.Errorf("read through the second mount: %q %v", b, err)
	}
}

func TestListingRefreshedWhenExpired(t *testing.T) {
	t.Parallel()
	s := &countingStore{Store: mem.New()}
	put(t, s, "old", "x")
	mp, _ := mountTest(t, s, Options{ListTTL: time.Nanosecond})
	names := func() []string {
		ents, err := os.ReadDir(mp)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("root lists %q", got)
	}
	put(t, s, "new", "y") // behind the mount's back
	if got := names(); !slices.Equal(got, []string{"new", "old"}) {
		t.Fatalf("after the TTL the root lists %q, want the new object too", got)
	}
}

func TestListingFallbackWithoutDirLister(t *testing.T) {
	t.Parallel()
	s := plainStore{mem.New()}
	for _, k := range []string{"a/x/1", "a/x/2", "a.txt", "a-b", "b/c", "z"} {
		put(t, s, k, k)
	}
	mp, _ := mountTest(t, s, Options{})
	ents, err := os.ReadDir(mp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		got = append(got, n)
	}
	if want := []string{"a/", "a-b", "a.txt", "b/", "z"}; !slices.Equal(got, want) {
		t.Errorf("root lists %q, want %q", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "a/x/2")); err != nil || string(b) != "a/x/2" {
		t.Errorf("read a/x/2: %q %v", b, err)
	}
}

func TestUnlinkOpenFile(t *testing.T) {
	forEachStore(t, func(t *testing.T, s remote.Store) {
		mp, _ := mountTest(t, s, Options{})
		p := filepath.Join(mp, "gone")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("data"); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(" more"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, s); len(got) != 0 {
			t.Errorf("a file removed while open was uploaded: %q", got)
		}
	})
}

func TestUnmountBusyIsLazy(t *testing.T) {
	t.Parallel()
	s := mem.New()
	mp, m := mountTest(t, s, Options{})
	f, err := os.Create(filepath.Join(mp, "held"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("before"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatalf("Unmount of a busy mount: %v", err)
	}
	if mounts, _ := FuseMounts(); slices.Contains(mounts, mp) {
		t.Errorf("%s still in /proc/mounts after a lazy unmount", mp)
	}
	select {
	case <-m.Done():
		t.Fatal("the mount ended while a file in it was open")
	default:
	}
	// The program holding the file goes on, and its close uploads.
	if _, err := f.WriteString(" and after"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-time.After(time.Minute):
		t.Fatal("the mount did not end after its last file was closed")
	}
	if got := get(t, s, "held"); got != "before and after" {
		t.Errorf("store has %q", got)
	}
}
