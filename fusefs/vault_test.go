package fusefs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/internal/treetest"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/vault"
)

// vaultBigSize is the size of the file of the test trees that spans
// several chunks (FastCDC cuts 512 KiB to 4 MiB, 1 MiB on average).
const vaultBigSize = 6<<20 + 12345

// vaultSource writes a tree to back up: nested directories, odd modes, an
// empty file, symlinks (one dangling), names with spaces and non-ASCII,
// mtimes with nanoseconds and a file of bigSize random bytes (big.img).
func vaultSource(t testing.TB, bigSize int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	mt := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)
	files := []struct {
		path  string
		data  []byte
		mode  fs.FileMode
		mtime time.Time
	}{
		{"README", []byte("hello vault\n"), 0o644, mt},
		{"empty", nil, 0o600, mt.Add(time.Hour)},
		{"a/b/c/deep.txt", []byte(strings.Repeat("deep ", 1000)), 0o640, mt.Add(2 * time.Hour)},
		{"a/b/run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755, mt.Add(3 * time.Hour)},
		{"a/b/setuid", []byte("s"), 0o4755, mt.Add(5 * time.Hour)},
		{"a/small.bin", randomBytes(5, 300<<10), 0o444, mt.Add(6 * time.Hour)},
		{"with space/ünïcödé файл.txt", []byte("unicode"), 0o644, mt.Add(7 * time.Hour)},
		{"big.img", randomBytes(42, bigSize), 0o600, mt.Add(4 * time.Hour)},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"emptydir", "sticky"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a/b/c/deep.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(dir, "a/dangling")); err != nil {
		t.Fatal(err)
	}
	for d, mode := range map[string]fs.FileMode{"a/b/c": 0o711, "emptydir": 0o750, "sticky": 0o1777} {
		if err := os.Chmod(filepath.Join(dir, d), mode); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range []string{"a/b/c", "a/b", "a", "emptydir", "sticky", "with space"} {
		dt := mt.Add(-time.Duration(i+1) * time.Minute)
		if err := os.Chtimes(filepath.Join(dir, d), dt, dt); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newTestVault makes a backup vault on st.
func newTestVault(t testing.TB, st remote.Store) *vault.Vault {
	t.Helper()
	v, err := vault.Init(context.Background(), st, vault.KindBackup, vault.Options{Name: "test", Account: "acct"})
	if err != nil {
		t.Fatalf("init vault: %v", err)
	}
	return v
}

// openTestVault opens the vault on st (a wrapper of the store it was made
// on, so a test can watch the mount's requests).
func openTestVault(t testing.TB, st remote.Store) *vault.Vault {
	t.Helper()
	v, err := vault.Open(context.Background(), st, vault.Options{Name: "test", Account: "acct"})
	if err != nil {
		t.Fatalf("open vault: %v", err)
	}
	return v
}

func backupInto(t testing.TB, v *vault.Vault, src, name string) *vault.Manifest {
	t.Helper()
	m, err := v.Create(context.Background(), src, vault.BackupOptions{Name: name})
	if err != nil {
		t.Fatalf("backup %s: %v", src, err)
	}
	return m
}

// backupBig backs up vaultSource(t, bigSize) into v with opts, and
// returns the backup with its entry of big.img (which must have at least
// minChunks chunks) and that file's content.
func backupBig(t testing.TB, v *vault.Vault, bigSize int, opts vault.BackupOptions, minChunks int) (*vault.Manifest, *vault.Entry, []byte) {
	t.Helper()
	m, err := v.Create(context.Background(), vaultSource(t, bigSize), opts)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := v.Tree(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tree.Entries {
		if e.Path == "big.img" {
			if len(e.Chunks) < minChunks {
				t.Fatalf("big.img has %d chunks; the test needs %d", len(e.Chunks), minChunks)
			}
			return m, e, randomBytes(42, bigSize)
		}
	}
	t.Fatal("no big.img in the backup")
	return nil, nil, nil
}

// cutPack stores chunk c's pack again, cut keep bytes into c.
func cutPack(t testing.TB, st remote.Store, c vault.Chunk, keep int64) {
	t.Helper()
	rewritePack(t, st, c, func(pack []byte) []byte { return pack[:c.Offset+keep] })
}

// alterChunk flips the byte at offset at of chunk c in its pack, behind
// the vault's back.
func alterChunk(t testing.TB, st remote.Store, c vault.Chunk, at int64) {
	t.Helper()
	rewritePack(t, st, c, func(pack []byte) []byte {
		pack[c.Offset+at] ^= 0xff
		return pack
	})
}

// rewritePack stores chunk c's pack again as change makes it.
func rewritePack(t testing.TB, st remote.Store, c vault.Chunk, change func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	key := vaultChunkKey(c)
	rd, err := st.Open(ctx, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rd)
	rd.Close()
	if err != nil {
		t.Fatal(err)
	}
	data = change(data)
	if _, err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), remote.PutMeta{}); err != nil {
		t.Fatal(err)
	}
}

// mountVaultTest mounts v in a fresh directory and unmounts it when the
// test ends. A CacheDir of "" in opts gets a fresh one.
func mountVaultTest(t testing.TB, v *vault.Vault, opts Options, cc vaultCacheConfig) (string, *Mount, *vaultFS) {
	t.Helper()
	needFUSE(t)
	dir := t.TempDir()
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(dir, "cache")
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t, slog.LevelWarn)
	}
	m, fsys, err := mountVault(context.Background(), mp, v, opts, cc)
	if err != nil {
		t.Fatalf("MountVault: %v", err)
	}
	testMountpoints.Store(mp, true)
	t.Cleanup(func() { unmountTest(t, m) })
	return mp, m, fsys
}

// chunkCounter counts the chunk reads (Opens of packs/ keys) a store
// serves.
type chunkCounter struct {
	remote.Store
	opens atomic.Int64
}

func (c *chunkCounter) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.HasPrefix(key, "packs/") {
		c.opens.Add(1)
	}
	return c.Store.Open(ctx, key, off, length)
}

// compareTrees checks that got (a mount) holds exactly what want holds:
// the same entries with the same types, modes, owners, mtimes, sizes,
// contents and symlink targets.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	treetest.Compare(t, want, got, treetest.Options{Where: "the mount", Owners: true, SymlinkSize: true})
}

func readDirNames(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// forEachVaultStore runs fn as a parallel sub-test for every store kind,
// with a fresh backup vault on a fresh store.
func forEachVaultStore(t *testing.T, fn func(t *testing.T, st remote.Store, v *vault.Vault)) {
	t.Parallel()
	for _, kind := range storeKinds() {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			needFUSE(t)
			st := kind.new(t)
			fn(t, st, newTestVault(t, st))
		})
	}
}

func TestVaultMountMatchesSource(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		src := vaultSource(t, vaultBigSize)
		m := backupInto(t, v, src, "photos")
		mp, _, _ := mountVaultTest(t, v, Options{}, vaultCacheConfig{})

		dirName := m.Started.UTC().Format("2006-01-02T150405Z") + "-photos"
		if got, want := readDirNames(t, mp), []string{dirName, "by-id", "latest"}; !slices.Equal(got, want) {
			t.Fatalf("root lists %q, want %q", got, want)
		}
		compareTrees(t, src, filepath.Join(mp, dirName))

		if target, err := os.Readlink(filepath.Join(mp, "latest")); err != nil || target != dirName {
			t.Errorf("latest -> %q (%v), want %q", target, err, dirName)
		}
		if got := readDirNames(t, filepath.Join(mp, "by-id")); !slices.Equal(got, []string{m.ID}) {
			t.Errorf("by-id lists %q, want [%s]", got, m.ID)
		}
		if target, err := os.Readlink(filepath.Join(mp, "by-id", m.ID)); err != nil || target != "../"+dirName {
			t.Errorf("by-id/%s -> %q (%v), want ../%s", m.ID, target, err, dirName)
		}
		// Paths through the symlinks resolve to the backup's files.
		for _, p := range []string{"latest/a/b/c/deep.txt", "by-id/" + m.ID + "/a/b/c/deep.txt", "latest/link"} {
			b, err := os.ReadFile(filepath.Join(mp, p))
			if err != nil || string(b) != strings.Repeat("deep ", 1000) {
				t.Errorf("read %s: %d bytes, %v", p, len(b), err)
			}
		}
		fi, err := os.Stat(filepath.Join(mp, dirName))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o555 || !fi.ModTime().Equal(m.Started) {
			t.Errorf("backup directory: %v, %v; want a 0555 directory with mtime %v", fi, err, m.Started)
		}
		if _, err := os.Lstat(filepath.Join(mp, "no-such-backup")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lstat of a missing backup: %v, want ENOENT", err)
		}
		if _, err := os.Lstat(filepath.Join(mp, dirName, "a", "nope")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lstat of a missing file: %v, want ENOENT", err)
		}

		// The go-fuse posixtest cases that do not write.
		for _, dir := range []string{mp, filepath.Join(mp, "by-id"), filepath.Join(mp, dirName), filepath.Join(mp, dirName, "a")} {
			posixtest.ReadDirConsistency(t, dir)
		}
	})
}

func TestVaultWritesFailEROFS(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		src := vaultSource(t, 1000)
		m := backupInto(t, v, src, "")
		mp, _, _ := mountVaultTest(t, v, Options{}, vaultCacheConfig{})
		dirName := m.Started.UTC().Format("2006-01-02T150405Z")
		if _, err := os.Stat(filepath.Join(mp, dirName)); err != nil {
			t.Fatalf("backup without a name is not shown as %s: %v (root: %q)", dirName, err, readDirNames(t, mp))
		}
		b := filepath.Join(mp, dirName)
		file := filepath.Join(b, "README")
		ops := map[string]func() error{
			"create in root":     func() error { return os.WriteFile(filepath.Join(mp, "new"), nil, 0o644) },
			"mkdir in root":      func() error { return os.Mkdir(filepath.Join(mp, "newdir"), 0o755) },
			"rmdir backup":       func() error { return os.Remove(filepath.Join(mp, dirName)) },
			"unlink latest":      func() error { return os.Remove(filepath.Join(mp, "latest")) },
			"create":             func() error { return os.WriteFile(filepath.Join(b, "new"), []byte("x"), 0o644) },
			"open for writing":   func() error { return openClose(file, os.O_WRONLY) },
			"open read-write":    func() error { return openClose(file, os.O_RDWR) },
			"open with O_TRUNC":  func() error { return openClose(file, os.O_RDONLY|os.O_TRUNC) },
			"append":             func() error { return openClose(file, os.O_WRONLY|os.O_APPEND) },
			"truncate":           func() error { return os.Truncate(file, 0) },
			"unlink":             func() error { return os.Remove(file) },
			"rename":             func() error { return os.Rename(file, filepath.Join(b, "moved")) },
			"mkdir":              func() error { return os.Mkdir(filepath.Join(b, "a", "x"), 0o755) },
			"rmdir":              func() error { return os.Remove(filepath.Join(b, "emptydir")) },
			"chmod":              func() error { return os.Chmod(file, 0o600) },
			"chtimes":            func() error { return os.Chtimes(file, time.Now(), time.Now()) },
			"symlink":            func() error { return os.Symlink("README", filepath.Join(b, "l2")) },
			"hard link":          func() error { return os.Link(file, filepath.Join(b, "l3")) },
			"mkfifo":             func() error { return syscall.Mkfifo(filepath.Join(b, "fifo"), 0o644) },
			"setxattr":           func() error { return unix.Setxattr(file, "user.x", []byte("1"), 0) },
			"chown to self":      func() error { return os.Lchown(file, os.Getuid(), os.Getgid()) },
			"rename into backup": func() error { return os.Rename(filepath.Join(b, "a"), filepath.Join(b, "a2")) },
		}
		for name, op := range ops {
			if err := op(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("%s: %v, want EROFS (read-only file system)", name, err)
			}
		}
		// Nothing changed.
		compareTrees(t, src, b)
	})
}

func openClose(p string, flag int) error {
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

func TestVaultCorruptChunkIsEIO(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		ctx := context.Background()
		src := vaultSource(t, vaultBigSize)
		// Every chunk in a pack of its own, so one can go missing alone.
		m, err := v.Create(ctx, src, vault.BackupOptions{Name: "x", PackSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		tree, err := v.Tree(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		var big, small *vault.Entry
		for _, e := range tree.Entries {
			switch e.Path {
			case "big.img":
				big = e
			case "a/small.bin":
				small = e
			}
		}
		if big == nil || len(big.Chunks) < 3 || small == nil {
			t.Fatalf("big.img has %d chunks; the test needs several", len(big.Chunks))
		}
		// Flip one byte of big.img's second chunk in its pack behind the
		// vault's back, and remove the pack of small.bin's only chunk.
		alterChunk(t, st, big.Chunks[1], big.Chunks[1].Size/2)
		if err := st.Delete(ctx, vaultChunkKey(small.Chunks[0])); err != nil {
			t.Fatal(err)
		}

		// Through the chunk cache, and streamed (a file larger than the
		// caches' share: the disk cache's 1/16).
		for _, tc := range []struct {
			name   string
			cc     vaultCacheConfig
			stream bool
		}{
			{"cache", vaultCacheConfig{}, false},
			{"stream", vaultCacheConfig{memBytes: 1 << 20, diskBytes: 16 << 20}, true},
		} {
			t.Run(tc.name, func(t *testing.T) { checkCorruptVaultReads(t, v, big, tc.cc, tc.stream) })
		}
	})
}

// checkCorruptVaultReads reads the backup of TestVaultCorruptChunkIsEIO
// through a mount with cache sizes cc; stream says whether big.img's reads
// are to be streamed.
func checkCorruptVaultReads(t *testing.T, v *vault.Vault, big *vault.Entry, cc vaultCacheConfig, stream bool) {
	mp, _, fsys := mountVaultTest(t, v, Options{}, cc)
	dir := filepath.Join(mp, "latest")
	_, err := os.ReadFile(filepath.Join(dir, "big.img"))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("read of a file with an altered chunk: %v, want EIO", err)
	}
	if streamed := fsys.streamReads.Load() > 0; streamed != stream {
		t.Errorf("big.img streamed: %v, want %v", streamed, stream)
	}
	// The first chunk is intact and readable; the second one is not.
	f, err := os.Open(filepath.Join(dir, "big.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 4096)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Errorf("read of the intact first chunk: %v", err)
	}
	want := randomBytes(42, vaultBigSize)
	if !bytes.Equal(head, want[:4096]) {
		t.Error("the intact first chunk reads wrong")
	}
	if _, err := f.ReadAt(head, big.Chunks[0].Size+10); !errors.Is(err, syscall.EIO) {
		t.Errorf("read in the altered chunk: %v, want EIO", err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "a/small.bin")); !errors.Is(err, syscall.EIO) {
		t.Errorf("read of a file whose chunk is missing: %v, want EIO", err)
	}
	// Metadata needs no chunk.
	if fi, err := os.Stat(filepath.Join(dir, "big.img")); err != nil || fi.Size() != vaultBigSize {
		t.Errorf("stat: %v, %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "README")); err != nil || string(b) != "hello vault\n" {
		t.Errorf("README: %q, %v", b, err)
	}
}

// dropPageCache makes the kernel forget what it cached of p, so the next
// read reaches the mount.
func dropPageCache(t testing.TB, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

func TestVaultReadsHitTheCache(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		src := vaultSource(t, vaultBigSize)
		backupInto(t, v, src, "x")
		want, err := os.ReadFile(filepath.Join(src, "big.img"))
		if err != nil {
			t.Fatal(err)
		}
		counter := &chunkCounter{Store: st}
		cv := openTestVault(t, counter)
		cacheDir := filepath.Join(t.TempDir(), "cache")

		mp, m, fsys := mountVaultTest(t, cv, Options{CacheDir: cacheDir}, vaultCacheConfig{})
		p := filepath.Join(mp, "latest", "big.img")
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("first read: %d bytes, %v", len(got), err)
		}
		first := counter.opens.Load()
		if first == 0 {
			t.Fatal("the first read fetched no chunk")
		}
		// Wait for the disk writes, then read again past the page cache:
		// the memory cache serves it.
		memHits := fsys.chunks.memHits.Load()
		dropPageCache(t, p)
		got, err = os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("second read: %d bytes, %v", len(got), err)
		}
		if n := counter.opens.Load(); n != first {
			t.Errorf("the second read fetched %d chunks again, want 0", n-first)
		}
		if fsys.chunks.memHits.Load() == memHits {
			t.Error("the second read did not reach the memory cache (page cache not dropped?)")
		}
		unmountTest(t, m)

		// A new mount with the same cache directory reads from the disk.
		mp2, _, fsys2 := mountVaultTest(t, cv, Options{CacheDir: cacheDir}, vaultCacheConfig{})
		got, err = os.ReadFile(filepath.Join(mp2, "latest", "big.img"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read after remount: %d bytes, %v", len(got), err)
		}
		if n := counter.opens.Load(); n != first {
			t.Errorf("the read after a remount fetched %d chunks, want 0 (disk cache)", n-first)
		}
		if fsys2.chunks.diskHits.Load() == 0 {
			t.Error("no disk cache hit after the remount")
		}
	})
}

func TestVaultConcurrentReadersShareFetches(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		src := vaultSource(t, vaultBigSize)
		m := backupInto(t, v, src, "x")
		tree, err := v.Tree(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		distinct := map[string]bool{}
		for _, e := range tree.Entries {
			for _, c := range e.Chunks {
				distinct[c.SHA256] = true
			}
		}
		counter := &chunkCounter{Store: st}
		mp, _, _ := mountVaultTest(t, openTestVault(t, counter), Options{}, vaultCacheConfig{})
		dir := filepath.Join(mp, "latest")

		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				// Each reader opens its own descriptor; half read with
				// small requests, from different starting points.
				for _, rel := range []string{"big.img", "a/small.bin", "README", "a/b/c/deep.txt"} {
					want, _ := os.ReadFile(filepath.Join(src, rel))
					got, err := readInPieces(filepath.Join(dir, rel), 4096+i*7919, i%2 == 0)
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("reader %d: %s: %d bytes, %v", i, rel, len(got), err)
					}
				}
			})
		}
		wg.Wait()
		if n := counter.opens.Load(); n > int64(len(distinct)) {
			t.Errorf("%d chunk reads for %d distinct chunks: concurrent readers did not share fetches", n, len(distinct))
		}
	})
}

// readInPieces reads a file with reads of size bytes (or in one go when
// !small), starting at an offset and wrapping around.
func readInPieces(p string, size int, small bool) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !small {
		return io.ReadAll(f)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	out := make([]byte, fi.Size())
	start := int64(size*13) % max(fi.Size(), 1)
	for done := int64(0); done < fi.Size(); {
		off := (start + done) % fi.Size()
		n := min(int64(size), fi.Size()-off, fi.Size()-done)
		k, err := f.ReadAt(out[off:off+n], off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(k) == n) {
			return nil, err
		}
		done += int64(k)
	}
	return out, nil
}

func TestVaultBackupListFollowsTheVault(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		ctx := context.Background()
		src := vaultSource(t, 1000)
		first := backupInto(t, v, src, "one")
		mp, _, _ := mountVaultTest(t, v, Options{}, vaultCacheConfig{})
		firstDir := first.Started.UTC().Format("2006-01-02T150405Z") + "-one"
		if got := readDirNames(t, mp); !slices.Equal(got, []string{firstDir, "by-id", "latest"}) {
			t.Fatalf("root: %q", got)
		}
		// Look inside the first backup, so its tree is loaded.
		if _, err := os.Stat(filepath.Join(mp, firstDir, "README")); err != nil {
			t.Fatal(err)
		}

		// A backup made while mounted appears within a few seconds, and
		// latest follows it. The name's "/" is made safe.
		if err := os.WriteFile(filepath.Join(src, "added"), []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
		second := backupInto(t, v, src, "two/three")
		secondDir := second.Started.UTC().Format("2006-01-02T150405Z") + "-two_three"
		if secondDir == firstDir {
			t.Fatal("same directory name for two backups")
		}
		waitFor(t, "the new backup in the root", func() bool {
			return slices.Contains(readDirNames(t, mp), secondDir)
		})
		if target, err := os.Readlink(filepath.Join(mp, "latest")); err != nil || target != secondDir {
			t.Errorf("latest -> %q (%v), want %q", target, err, secondDir)
		}
		if b, err := os.ReadFile(filepath.Join(mp, "latest", "added")); err != nil || string(b) != "new" {
			t.Errorf("latest/added: %q, %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(mp, firstDir, "added")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the first backup shows a file added later: %v", err)
		}
		if got, want := readDirNames(t, filepath.Join(mp, "by-id")), []string{first.ID, second.ID}; !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("by-id: %q", got)
		}

		// A deleted backup disappears.
		if err := v.Delete(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deleted backup gone from the root", func() bool {
			return !slices.Contains(readDirNames(t, mp), firstDir)
		})
		waitFor(t, "the deleted backup gone from by-id", func() bool {
			_, err := os.Lstat(filepath.Join(mp, "by-id", first.ID))
			return errors.Is(err, fs.ErrNotExist)
		})
		if got := readDirNames(t, filepath.Join(mp, "by-id")); !slices.Equal(got, []string{second.ID}) {
			t.Errorf("by-id after the delete: %q", got)
		}
	})
}

// waitFor polls cond for up to 30 s (the root is listed again every few
// seconds, and the kernel caches its names as long).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestVaultEmptyAndUnreachable(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	st := storeKinds()[0].new(t)
	v := newTestVault(t, st)
	mp, _, _ := mountVaultTest(t, v, Options{}, vaultCacheConfig{})
	if got := readDirNames(t, mp); !slices.Equal(got, []string{"by-id"}) {
		t.Errorf("root of an empty vault: %q, want [by-id]", got)
	}
	if _, err := os.Lstat(filepath.Join(mp, "latest")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("latest in an empty vault: %v", err)
	}

	// A vault that cannot be listed fails the mount.
	dir := t.TempDir()
	bad := openTestVault(t, failingStore{st})
	_, _, err := mountVault(context.Background(), dir, bad, Options{}, vaultCacheConfig{})
	if err == nil || !strings.Contains(err.Error(), "list") {
		t.Errorf("mount of an unlistable vault: %v", err)
	}
	if left := leftMounts(); slices.Contains(left, dir) {
		t.Errorf("failed mount left %s mounted", dir)
	}
}
