package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/local"
	"github.com/ferrysync/ferry/remote/s3"
)

// restoreStores are the stores the restore tests run on: a local
// directory and a bucket of the shared MinIO server.
var restoreStores = []struct {
	name string
	open func(t *testing.T) remote.Store
}{
	{"local", func(t *testing.T) remote.Store {
		st, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"minio", func(t *testing.T) remote.Store {
		srv := testenv.SharedMinIO(t)
		st, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: srv.NewBucket(t), Prefix: "vault/",
			Region: srv.Region, TLS: srv.TLS, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: s3.MinPartSize})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// initVaultOn creates a vault on st.
func initVaultOn(t *testing.T, st remote.Store) *Vault {
	t.Helper()
	v, err := Init(context.Background(), st, KindBackup, Options{Name: "v", Account: "a"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// treeEntries returns the entries of backup m's tree by path.
func treeEntries(t *testing.T, v *Vault, m *Manifest) map[string]*Entry {
	t.Helper()
	tree, err := v.Tree(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Entry{}
	for _, e := range tree.Entries {
		out[e.Path] = e
	}
	return out
}

// fileState is what a path of a restore target holds: absent, or a
// regular file's bytes and mtime.
type fileState struct {
	exists bool
	data   []byte
	mtime  time.Time
}

func readState(t *testing.T, p string) fileState {
	t.Helper()
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Fatalf("%s is a %s, not a regular file", p, fi.Mode().Type())
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{exists: true, data: data, mtime: fi.ModTime()}
}

func (s fileState) String() string {
	if !s.exists {
		return "absent"
	}
	return fmt.Sprintf("%d bytes, sha256 %.12s, mtime %s", len(s.data), sumHex(s.data), s.mtime.Format(time.RFC3339Nano))
}

// noTempFiles fails the test for any restore temporary name under dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func failedPaths(fs []RestoreFailure) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

// A restore over a directory holding a correct 6 MiB big.bin, from a
// backup with one byte of big.bin flipped in its pack: big.bin stays
// byte for byte (and mtime) what it was, every other file is restored, and
// the failure names big.bin with the checksum error.
func TestFailedRestoreLeavesOldFiles(t *testing.T) {
	for _, sc := range restoreStores {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			st := sc.open(t)
			v := initVaultOn(t, st)
			mt := time.Date(2025, 2, 3, 4, 5, 6, 789, time.UTC)
			src := t.TempDir()
			big := randomBytes(1, 6<<20)
			writeFile(t, filepath.Join(src, "big.bin"), big, 0o644, mt)
			writeFile(t, filepath.Join(src, "a/one.bin"), randomBytes(2, 3<<20), 0o644, mt)
			writeFile(t, filepath.Join(src, "a/two.bin"), randomBytes(3, 2<<20+7), 0o600, mt)
			writeFile(t, filepath.Join(src, "small.txt"), []byte("new\n"), 0o644, mt)
			if err := os.Symlink("small.txt", filepath.Join(src, "link")); err != nil {
				t.Fatal(err)
			}
			m, err := v.Create(ctx, src, BackupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bigEntry := treeEntries(t, v, m)["big.bin"]
			if len(bigEntry.Chunks) < 3 {
				t.Fatalf("big.bin has %d chunks; want several", len(bigEntry.Chunks))
			}
			alterChunk(t, st, bigEntry.Chunks[len(bigEntry.Chunks)/2])

			// The target: the correct big.bin, older versions of the others,
			// a file where the symlink goes.
			dst := t.TempDir()
			old := mt.Add(-time.Hour)
			writeFile(t, filepath.Join(dst, "big.bin"), big, 0o644, old)
			writeFile(t, filepath.Join(dst, "a/one.bin"), randomBytes(12, 1<<20), 0o644, old)
			writeFile(t, filepath.Join(dst, "a/two.bin"), randomBytes(13, 5<<20), 0o644, old)
			writeFile(t, filepath.Join(dst, "link"), []byte("old\n"), 0o644, old)
			before := readState(t, filepath.Join(dst, "big.bin"))

			rs, err := v.Restore(ctx, m.ID, dst, RestoreOptions{})
			if !errors.Is(err, ErrNotRestored) || !errors.Is(err, remote.ErrChecksum) {
				t.Errorf("restore = %v; want ErrNotRestored and the checksum error", err)
			}
			if len(rs.Failed) != 1 || rs.Failed[0].Path != "big.bin" || !errors.Is(rs.Failed[0].Err, remote.ErrChecksum) {
				t.Errorf("failed = %v; want big.bin with a checksum error", rs.Failed)
			}
			if rs.Files != 3 || rs.Symlinks != 1 || rs.Bytes != m.Stats.LogicalBytes-int64(len(big)) {
				t.Errorf("stats = %+v; want the 3 other files and the symlink", rs)
			}
			if after := readState(t, filepath.Join(dst, "big.bin")); !after.exists || !bytes.Equal(after.data, before.data) || !after.mtime.Equal(before.mtime) {
				t.Errorf("big.bin was %s before the restore, is %s after", before, after)
			}
			for _, p := range []string{"a/one.bin", "a/two.bin", "small.txt"} {
				want, _ := os.ReadFile(filepath.Join(src, p))
				if got := readState(t, filepath.Join(dst, p)); !bytes.Equal(got.data, want) || !got.mtime.Equal(mt) {
					t.Errorf("%s is %s; want the backup's %d bytes", p, got, len(want))
				}
			}
			if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "small.txt" {
				t.Errorf("link = %q, %v", l, err)
			}
			noTempFiles(t, dst)
		})
	}
}

// TestRestoreRandomDamage: rounds of a random tree backed up into small
// packs, one to three single bytes flipped, each in a random pack, and a
// restore over a target holding older content. Every file is then either the backup's or
// what was there before; exactly the files with a chunk on a flipped
// byte are in Failed (each with its old content kept), and no temporary
// file is left. FERRY_TEST_SEED replays a run.
func TestRestoreRandomDamage(t *testing.T) {
	seed := testenv.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	dirs := []string{"", "d/", "d/e/", "f/"}
	for round := range 10 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			ctx := context.Background()
			st, err := local.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			v := initVaultOn(t, st)
			src, dst := t.TempDir(), t.TempDir()
			mt := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			before := map[string]fileState{}
			for i := range 3 + rng.IntN(6) {
				p := fmt.Sprintf("%sf%d", dirs[rng.IntN(len(dirs))], i)
				var size int
				switch k := rng.IntN(10); {
				case k == 0:
					size = 0
				case k < 6:
					size = 1 + rng.IntN(200<<10)
				default:
					size = 1<<20 + rng.IntN(4<<20) // several chunks
				}
				data := randomBytes(rng.Uint64(), size)
				writeFile(t, filepath.Join(src, p), data, 0o644, mt)
				switch rng.IntN(3) {
				case 0: // not in the target
				case 1: // the same content, restored before
					writeFile(t, filepath.Join(dst, p), data, 0o644, mt.Add(-time.Minute))
				default: // an older version
					writeFile(t, filepath.Join(dst, p), randomBytes(rng.Uint64(), rng.IntN(3<<20)), 0o600, mt.Add(-time.Hour))
				}
				before[p] = readState(t, filepath.Join(dst, p))
			}
			writeFile(t, filepath.Join(dst, "d/mine"), []byte("not in the backup"), 0o644, mt)

			m, err := v.Create(ctx, src, BackupOptions{PackSize: 2 << 20})
			if err != nil {
				t.Fatal(err)
			}
			var packs []string
			if err := st.List(ctx, packsDir, func(oi remote.ObjectInfo) error {
				if sum, ok := parsePackKey(oi.Key); ok {
					packs = append(packs, sum)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			type flip struct {
				pack string
				off  int64
			}
			var flips []flip
			var flipped []string // for the log
			for range 1 + rng.IntN(3) {
				f := flip{pack: packs[rng.IntN(len(packs))]}
				data, err := readAll(ctx, st, PackKey(f.pack), MaxPackSize)
				if err != nil {
					t.Fatal(err)
				}
				f.off = rng.Int64N(int64(len(data)))
				data[f.off] ^= byte(1 + rng.IntN(255))
				overwrite(t, st, PackKey(f.pack), data)
				flips = append(flips, f)
				flipped = append(flipped, fmt.Sprintf("pack %.12s byte %d", f.pack, f.off))
			}

			var want []string // the files with a chunk on a flipped byte
			for p, e := range treeEntries(t, v, m) {
				if slices.ContainsFunc(e.Chunks, func(c Chunk) bool {
					return slices.ContainsFunc(flips, func(f flip) bool {
						return c.Pack == f.pack && c.Offset <= f.off && f.off < c.Offset+c.Size
					})
				}) {
					want = append(want, p)
				}
			}
			slices.Sort(want)
			t.Logf("%d files in %d packs; flipped %s; damaged files %v", len(before), len(packs), strings.Join(flipped, ", "), want)

			rs, err := v.Restore(ctx, m.ID, dst, RestoreOptions{Workers: 1 + rng.IntN(4)})
			if len(want) == 0 && err != nil || len(want) > 0 && !errors.Is(err, ErrNotRestored) {
				t.Errorf("restore = %v; want %d files not restored", err, len(want))
			}
			if got := failedPaths(rs.Failed); !slices.Equal(got, want) {
				t.Errorf("failed = %v; want %v", rs.Failed, want)
			}
			for p, was := range before {
				got := readState(t, filepath.Join(dst, p))
				srcData, _ := os.ReadFile(filepath.Join(src, p))
				restored := got.exists && bytes.Equal(got.data, srcData) && got.mtime.Equal(mt)
				kept := got.exists == was.exists && bytes.Equal(got.data, was.data) && got.mtime.Equal(was.mtime)
				switch {
				case slices.Contains(want, p) && !kept:
					t.Errorf("%s (not restored) was %s, is %s", p, was, got)
				case !slices.Contains(want, p) && !restored:
					t.Errorf("%s is %s; want the backup's %d bytes", p, got, len(srcData))
				}
			}
			if b, err := os.ReadFile(filepath.Join(dst, "d/mine")); err != nil || string(b) != "not in the backup" {
				t.Errorf("a file not in the backup changed: %q, %v", b, err)
			}
			noTempFiles(t, dst)
		})
	}
}

// cancelStore cancels a context at the nth pack read it serves.
type cancelStore struct {
	remote.Store
	n      int64
	reads  atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelStore) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.HasPrefix(key, packsDir) && c.reads.Add(1) == c.n {
		c.cancel()
	}
	return c.Store.Open(ctx, key, off, length)
}

// A canceled restore stops, leaves no temporary file, and every file is
// either what it was or the backup's.
func TestCanceledRestoreLeavesNoTempFiles(t *testing.T) {
	v, st := newMemVault(t, KindBackup, "a")
	src, dst := t.TempDir(), t.TempDir()
	mt := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 8 {
		p := fmt.Sprintf("f%d", i)
		writeFile(t, filepath.Join(src, p), randomBytes(uint64(i), 2<<20+i), 0o644, mt)
		writeFile(t, filepath.Join(dst, p), []byte("old"), 0o644, mt)
	}
	m, err := v.Create(context.Background(), src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := &cancelStore{Store: st, n: 5, cancel: cancel}
	cv, err := Open(ctx, cs, Options{Name: "v", Account: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cv.Restore(ctx, m.ID, dst, RestoreOptions{Workers: 2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("restore = %v; want context.Canceled", err)
	}
	for i := range 8 {
		p := fmt.Sprintf("f%d", i)
		got, _ := os.ReadFile(filepath.Join(dst, p))
		want, _ := os.ReadFile(filepath.Join(src, p))
		if string(got) != "old" && !bytes.Equal(got, want) {
			t.Errorf("%s holds %d bytes: neither the old nor the backup's content", p, len(got))
		}
	}
	noTempFiles(t, dst)
}

// A file or symlink of the backup is never put where a directory is, and
// the entries under a directory that cannot be made fail with it; the
// rest of the restore goes on.
func TestRestoreDoesNotReplaceDirectories(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "a")
	src := t.TempDir()
	mt := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	writeFile(t, filepath.Join(src, "x"), []byte("file x"), 0o644, mt)
	writeFile(t, filepath.Join(src, "d/e/f"), []byte("under d"), 0o644, mt)
	writeFile(t, filepath.Join(src, "ok"), []byte("ok"), 0o644, mt)
	if err := os.Symlink("x", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "x/keep"), []byte("mine"), 0o644, mt)
	writeFile(t, filepath.Join(dst, "l/keep"), []byte("mine"), 0o644, mt)
	writeFile(t, filepath.Join(dst, "d"), []byte("a file where d goes"), 0o644, mt)
	rs, err := v.Restore(ctx, m.ID, dst, RestoreOptions{})
	if !errors.Is(err, ErrNotRestored) {
		t.Fatalf("restore = %v; want ErrNotRestored", err)
	}
	if got, want := failedPaths(rs.Failed), []string{"d", "d/e", "d/e/f", "l", "x"}; !slices.Equal(got, want) {
		t.Errorf("failed = %v; want %v", rs.Failed, want)
	}
	for _, p := range []string{"x/keep", "l/keep"} {
		if b, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(b) != "mine" {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "d")); err != nil || string(b) != "a file where d goes" {
		t.Errorf("d: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "ok")); err != nil || string(b) != "ok" || rs.Files != 1 {
		t.Errorf("ok: %q, %v; stats %+v", b, err, rs)
	}
	noTempFiles(t, dst)
}

// The temporary files of a restore that was killed (its process is gone)
// are removed by the next restore into the same directories; those of a
// running process, and names that only look alike, stay.
func TestRestoreRemovesStaleTempFiles(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "a")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "d/f"), []byte("f"), 0o644, time.Now())
	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	// No Linux pid reaches 1<<30 (PID_MAX_LIMIT is 1<<22).
	dead := fmt.Sprintf("%s%d-%016x%s", tempPrefix, 1<<30, 42, tempSuffix)
	live := fmt.Sprintf("%s%d-%016x%s", tempPrefix, os.Getpid(), 43, tempSuffix)
	alike := tempPrefix + "notes" + tempSuffix
	for _, p := range []string{dead, "d/" + dead, live, alike} {
		writeFile(t, filepath.Join(dst, p), []byte("x"), 0o600, time.Now())
	}
	deadLink := fmt.Sprintf("%s%d-%016x%s", tempPrefix, 1<<30, 44, tempSuffix)
	if err := os.Symlink("f", filepath.Join(dst, "d", deadLink)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Restore(ctx, m.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, d := range []string{".", "d"} {
		ents, err := os.ReadDir(filepath.Join(dst, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			left = append(left, path.Join(d, e.Name()))
		}
	}
	slices.Sort(left)
	want := []string{alike, live, "d", "d/f"}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("target holds %q; want %q", left, want)
	}
}

// A file of the backup whose name looks like a temporary file of a killed
// restore is not removed by a later restore of the same backup that does
// not write it (--path of another file).
func TestRestoreKeepsBackupFilesNamedLikeTempFiles(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "a")
	src := t.TempDir()
	alike := fmt.Sprintf("%s%d-%016x%s", tempPrefix, 1<<30, 42, tempSuffix)
	writeFile(t, filepath.Join(src, alike), []byte("mine"), 0o644, time.Now())
	writeFile(t, filepath.Join(src, "e/g"), []byte("g"), 0o644, time.Now())
	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := v.Restore(ctx, m.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Restore(ctx, m.ID, dst, RestoreOptions{Path: "e/g"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, alike)); err != nil || string(b) != "mine" {
		t.Errorf("%s: %q, %v; want it kept", alike, b, err)
	}
}
