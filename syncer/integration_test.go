package syncer

// Integration tests of the sync engine against real stores: MinIO servers
// (internal/testenv) for S3 and temporary directories for local. They cover
// every pairing of source and destination, each conflict policy, filters,
// path rules, files mode, deletes and their guards, verify = "all", an
// unchanged re-run, and the resumable path of a large file. Helpers carry an
// "it" prefix so they do not collide with engine_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/local"
	"github.com/ferrysync/ferry/remote/s3"
	"github.com/ferrysync/ferry/state"
)

// itPartSize is the S3 part size (and so the multipart threshold) in these
// tests: the smallest S3 accepts.
const itPartSize = s3.MinPartSize

// itMtime is the base mtime of source files: far from "now" and with
// nanoseconds, so a destination that kept its own write time, or only whole
// seconds, is caught.
var itMtime = time.Date(2021, 5, 6, 7, 8, 9, 123456789, time.UTC)

func itS3(t *testing.T, srv *testenv.S3Server, bucket, prefix string) *s3.Store {
	t.Helper()
	st, err := s3.New(context.Background(), s3.Config{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		Prefix:    prefix,
		Region:    srv.Region,
		TLS:       srv.TLS,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PartSize:  itPartSize,
	})
	if err != nil {
		t.Fatalf("s3.New(%s/%s): %v", bucket, prefix, err)
	}
	return st
}

func itLocal(t *testing.T, dir string) *local.Store {
	t.Helper()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func itEngine(t *testing.T) (*Engine, *state.DB) {
	t.Helper()
	db, err := state.Open("", state.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Engine{DB: db, Backoff: 10 * time.Millisecond}, db
}

func itRun(t *testing.T, e *Engine, p *Plan) *state.Job {
	t.Helper()
	return itRunCtx(t, context.Background(), e, p)
}

func itRunCtx(t *testing.T, ctx context.Context, e *Engine, p *Plan) *state.Job {
	t.Helper()
	j, err := e.Run(ctx, p, RunOptions{Trigger: "test"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return j
}

// itRecords returns one of a job's lists by path, failing on a path listed
// twice.
func itRecords(t *testing.T, db *state.DB, j *state.Job, kind state.ListKind) map[string]state.FileRecord {
	t.Helper()
	out := map[string]state.FileRecord{}
	err := db.IterateFileRecords(j.ID, kind, func(r state.FileRecord) error {
		if _, dup := out[r.Path]; dup {
			t.Errorf("%s is twice in the %s list", r.Path, kind)
		}
		out[r.Path] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// itOneListEach checks that no file is in two of the job's lists.
func itOneListEach(t *testing.T, db *state.DB, j *state.Job) {
	t.Helper()
	seen := map[string]state.ListKind{}
	for _, kind := range []state.ListKind{state.ListSuccess, state.ListSkipped, state.ListFailed} {
		for p := range itRecords(t, db, j, kind) {
			if other, ok := seen[p]; ok {
				t.Errorf("%s is in both the %s and the %s list", p, other, kind)
			}
			seen[p] = kind
		}
	}
}

func itWantStatus(t *testing.T, j *state.Job, want string) {
	t.Helper()
	if j.Status != want {
		t.Fatalf("job %s: status %s (error %q), want %s; counters %+v", j.ID, j.Status, j.Error, want, j.Counters)
	}
}

func itRandom(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'f', 'e', 'r', 'r', 'y'}).Read(b)
	return b
}

func itSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// itTree is a small tree with the cases that go wrong: an empty file, deep
// directories, non-ASCII and spaces in names, a file of a few parts' worth
// of bytes below the multipart threshold.
func itTree(seed uint64) map[string][]byte {
	return map[string][]byte{
		"a.txt":                    []byte("hello ferry\n"),
		"empty":                    {},
		"dir1/example.txt":         itRandom(seed, 3000),
		"dir1/sub/deep/file.bin":   itRandom(seed+1, 100<<10),
		"ünïcode/名前.txt":           []byte("名前\n"),
		"with space/file name.txt": itRandom(seed+2, 17),
		"medium.bin":               itRandom(seed+3, 1<<20+3),
	}
}

func itTotal(files map[string][]byte) (n int64) {
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

// itPut stores one file with the given mtime.
func itPut(t *testing.T, s remote.Store, key string, data []byte, mtime time.Time) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), remote.PutMeta{ModTime: mtime}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// itPutAll stores files, each with its own mtime (itMtime plus its rank in
// key order, in seconds).
func itPutAll(t *testing.T, s remote.Store, files map[string][]byte) {
	t.Helper()
	for i, k := range slices.Sorted(maps.Keys(files)) {
		itPut(t, s, k, files[k], itMtime.Add(time.Duration(i)*time.Second))
	}
}

// itKeys lists a store's copyable keys; skipped entries are returned apart.
func itKeys(t *testing.T, s remote.Store) (keys, skipped []string) {
	t.Helper()
	err := s.List(context.Background(), "", func(info remote.ObjectInfo) error {
		if info.SkipReason != "" {
			skipped = append(skipped, info.Key)
		} else {
			keys = append(keys, info.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return keys, skipped
}

func itRead(t *testing.T, s remote.Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

// itSame checks that dst holds exactly src's files, byte for byte, each
// with the source's mtime (for S3 the x-amz-meta-mtime, read back by Stat).
func itSame(t *testing.T, src, dst remote.Store) {
	t.Helper()
	sk, _ := itKeys(t, src)
	dk, _ := itKeys(t, dst)
	if !slices.Equal(sk, dk) {
		t.Fatalf("destination keys %q, want the source's %q", dk, sk)
	}
	for _, k := range sk {
		if !bytes.Equal(itRead(t, src, k), itRead(t, dst, k)) {
			t.Errorf("%s: content differs at the destination", k)
		}
		si, err := src.Stat(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		di, err := dst.Stat(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if !di.ModTime.Equal(si.ModTime) {
			t.Errorf("%s: destination mtime %v, want the source's %v", k, di.ModTime, si.ModTime)
		}
		if di.Size != si.Size {
			t.Errorf("%s: destination size %d, want %d", k, di.Size, si.Size)
		}
	}
}

func TestIntegrationPairings(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	tests := []struct {
		name   string
		stores func(t *testing.T) (src, dst remote.Store)
	}{
		{"local to s3", func(t *testing.T) (remote.Store, remote.Store) {
			return itLocal(t, t.TempDir()), itS3(t, srv, srv.NewBucket(t), "backup/")
		}},
		{"s3 to local", func(t *testing.T) (remote.Store, remote.Store) {
			return itS3(t, srv, srv.NewBucket(t), "data/"), itLocal(t, t.TempDir())
		}},
		{"s3 to s3 on another endpoint", func(t *testing.T) (remote.Store, remote.Store) {
			other := testenv.MinIO(t) // a second server: a second cloud
			if other.Endpoint == srv.Endpoint {
				t.Skip("one external endpoint only: no second cloud")
			}
			return itS3(t, srv, srv.NewBucket(t), "data/"), itS3(t, other, other.NewBucket(t), "")
		}},
		{"local to local", func(t *testing.T) (remote.Store, remote.Store) {
			return itLocal(t, t.TempDir()), itLocal(t, t.TempDir())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, dst := tt.stores(t)
			files := itTree(1)
			itPutAll(t, src, files)
			e, db := itEngine(t)
			plan := func() *Plan { return &Plan{Name: "p", Source: src, Dest: dst, Workers: 4} }

			j := itRun(t, e, plan())
			itWantStatus(t, j, state.JobCompleted)
			n := int64(len(files))
			if c := j.Counters; c.FilesTotal != n || c.FilesTransferred != n || c.BytesTransferred != itTotal(files) {
				t.Errorf("first run counters %+v, want %d files and %d bytes transferred", c, n, itTotal(files))
			}
			succ := itRecords(t, db, j, state.ListSuccess)
			for k, b := range files {
				if r, ok := succ[k]; !ok || r.SHA256 != itSHA(b) || r.Size != int64(len(b)) {
					t.Errorf("success list entry of %s: %+v, want size %d sha256 %s", k, r, len(b), itSHA(b))
				}
			}
			itSame(t, src, dst)

			j2 := itRun(t, e, plan())
			itWantStatus(t, j2, state.JobCompleted)
			if c := j2.Counters; c.FilesTransferred != 0 || c.FilesUnchanged != n {
				t.Errorf("unchanged re-run counters %+v, want 0 transferred and %d unchanged", c, n)
			}
			if l := itRecords(t, db, j2, state.ListSuccess); len(l) != 0 {
				t.Errorf("unchanged re-run lists %d files as copied", len(l))
			}

			changed := []byte("changed at the source\n")
			itPut(t, src, "dir1/example.txt", changed, itMtime.Add(time.Hour))
			j3 := itRun(t, e, plan())
			itWantStatus(t, j3, state.JobCompleted)
			if c := j3.Counters; c.FilesTransferred != 1 || c.FilesUnchanged != n-1 {
				t.Errorf("after one change: counters %+v, want 1 transferred", c)
			}
			if r := itRecords(t, db, j3, state.ListSuccess)["dir1/example.txt"]; r.Reason != "changed" {
				t.Errorf("changed file listed with reason %q, want changed", r.Reason)
			}
			itSame(t, src, dst)
		})
	}
}

// itCounting counts every request made to a store.
type itCounting struct {
	remote.Store
	stat, list, open, put, del atomic.Int64
}

func (c *itCounting) Stat(ctx context.Context, k string) (remote.ObjectInfo, error) {
	c.stat.Add(1)
	return c.Store.Stat(ctx, k)
}

func (c *itCounting) List(ctx context.Context, p string, fn func(remote.ObjectInfo) error) error {
	c.list.Add(1)
	return c.Store.List(ctx, p, fn)
}

func (c *itCounting) Open(ctx context.Context, k string, off, n int64) (io.ReadCloser, error) {
	c.open.Add(1)
	return c.Store.Open(ctx, k, off, n)
}

func (c *itCounting) Put(ctx context.Context, k string, r io.Reader, n int64, m remote.PutMeta) (remote.ObjectInfo, error) {
	c.put.Add(1)
	return c.Store.Put(ctx, k, r, n, m)
}

func (c *itCounting) Delete(ctx context.Context, k string) error {
	c.del.Add(1)
	return c.Store.Delete(ctx, k)
}

func (c *itCounting) String() string {
	return fmt.Sprintf("stat %d, list %d, open %d, put %d, delete %d",
		c.stat.Load(), c.list.Load(), c.open.Load(), c.put.Load(), c.del.Load())
}

func TestIntegrationUnchangedRerunMakesNoRequests(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	src := itLocal(t, t.TempDir())
	dst := itS3(t, srv, srv.NewBucket(t), "")
	files := itTree(2)
	for i := range 200 {
		files[fmt.Sprintf("many/%02d/f%03d", i%7, i)] = itRandom(uint64(100+i), 100+i)
	}
	itPutAll(t, src, files)
	e, _ := itEngine(t)
	itWantStatus(t, itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst}), state.JobCompleted)

	cs, cd := &itCounting{Store: src}, &itCounting{Store: dst}
	j := itRun(t, e, &Plan{Name: "p", Source: cs, Dest: cd})
	itWantStatus(t, j, state.JobCompleted)
	if c := j.Counters; c.FilesTransferred != 0 || c.BytesTransferred != 0 || c.FilesUnchanged != int64(len(files)) {
		t.Errorf("re-run counters %+v, want nothing transferred and %d unchanged", c, len(files))
	}
	// One listing of the destination (a request per thousand keys) checks
	// that every copy is still there; nothing is asked per file.
	if cd.stat.Load()+cd.open.Load()+cd.put.Load()+cd.del.Load() != 0 || cd.list.Load() != 1 {
		t.Errorf("re-run asked the destination: %s; want one listing and nothing else", cd)
	}
	if cs.open.Load() != 0 || cs.stat.Load() != 0 {
		t.Errorf("re-run read the source per file: %s; want one listing and nothing else", cs)
	}
	if cs.list.Load() != 1 {
		t.Errorf("re-run listed the source %d times, want 1", cs.list.Load())
	}
}

func TestIntegrationConflictPolicies(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	older, newer := itMtime, itMtime.Add(time.Hour)
	tests := []struct {
		name             string
		policy           Conflict
		srcData, dstData string
		srcTime, dstTime time.Time
		wantDst          string
		wantSkip         string // a part of the skip reason; "" when not skipped
		wantSent         int64  // of a.txt
		wantUnchanged    int64
	}{
		{"skip keeps an existing file", ConflictSkip, "source", "dest!", newer, older, "dest!", "exists at the destination and conflict is skip", 0, 0},
		{"update replaces an older file", ConflictUpdate, "source", "dest!", newer, older, "source", "", 1, 0},
		{"update keeps a newer file", ConflictUpdate, "source", "dest!", older, newer, "dest!", "destination is newer", 0, 0},
		{"update adopts an identical file", ConflictUpdate, "same", "same", older, older, "same", "", 0, 1},
		{"overwrite replaces a newer file", ConflictOverwrite, "source", "dest!", older, newer, "source", "", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := itLocal(t, t.TempDir())
			dst := itS3(t, srv, srv.NewBucket(t), "c/")
			itPut(t, src, "a.txt", []byte(tt.srcData), tt.srcTime)
			itPut(t, src, "new.txt", []byte("new"), older)
			itPut(t, dst, "a.txt", []byte(tt.dstData), tt.dstTime)
			e, db := itEngine(t)
			j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Conflict: tt.policy})
			itWantStatus(t, j, state.JobCompleted)
			if got := string(itRead(t, dst, "a.txt")); got != tt.wantDst {
				t.Errorf("destination a.txt holds %q, want %q", got, tt.wantDst)
			}
			if got := string(itRead(t, dst, "new.txt")); got != "new" {
				t.Errorf("new.txt at the destination: %q", got)
			}
			skipped := itRecords(t, db, j, state.ListSkipped)
			switch r, ok := skipped["a.txt"]; {
			case tt.wantSkip == "" && ok:
				t.Errorf("a.txt skipped (%q), want it handled", r.Reason)
			case tt.wantSkip != "" && !strings.Contains(r.Reason, tt.wantSkip):
				t.Errorf("a.txt skip reason %q, want it to say %q", r.Reason, tt.wantSkip)
			}
			c := j.Counters
			if c.FilesTransferred != tt.wantSent+1 || c.FilesUnchanged != tt.wantUnchanged {
				t.Errorf("counters %+v, want %d transferred and %d unchanged", c, tt.wantSent+1, tt.wantUnchanged)
			}
			if tt.wantSkip == "" {
				if _, ok, _ := db.GetFile("p", "a.txt"); !ok {
					t.Error("a.txt is not in the file index after it was copied or adopted")
				}
			} else if _, ok, _ := db.GetFile("p", "a.txt"); ok {
				t.Error("a.txt is in the file index although it was skipped")
			}
			itOneListEach(t, db, j)
		})
	}

	// A change at the source to a file Ferry copied before: skip refuses
	// it, update sends it.
	t.Run("a change to a copied file", func(t *testing.T) {
		t.Parallel()
		src := itLocal(t, t.TempDir())
		dst := itS3(t, srv, srv.NewBucket(t), "")
		itPut(t, src, "a.txt", []byte("v1"), older)
		e, db := itEngine(t)
		itWantStatus(t, itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst}), state.JobCompleted)
		itPut(t, src, "a.txt", []byte("version 2"), newer)

		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Conflict: ConflictSkip})
		itWantStatus(t, j, state.JobCompleted)
		if got := string(itRead(t, dst, "a.txt")); got != "v1" {
			t.Errorf("skip overwrote the destination: %q", got)
		}
		if r := itRecords(t, db, j, state.ListSkipped)["a.txt"]; !strings.Contains(r.Reason, "conflict is skip") {
			t.Errorf("skip reason %q", r.Reason)
		}

		j = itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Conflict: ConflictUpdate})
		itWantStatus(t, j, state.JobCompleted)
		if j.Counters.FilesTransferred != 1 {
			t.Errorf("update sent %d files, want 1", j.Counters.FilesTransferred)
		}
		itSame(t, src, dst)
	})
}

func TestIntegrationFilters(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	all := []string{"a.txt", "b.log", "logs/c.log", "keep/d.txt", "tmp/e.txt", "sub/tmp/f.txt",
		"photos/2024/x.jpg", "photos/y.jpg", "photos/2024/z.png"}
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"exclude", nil, []string{"*.log", "/tmp/"},
			[]string{"a.txt", "keep/d.txt", "photos/2024/x.jpg", "photos/2024/z.png", "photos/y.jpg", "sub/tmp/f.txt"}},
		{"include", []string{"photos/**/*.jpg"}, nil,
			[]string{"photos/2024/x.jpg", "photos/y.jpg"}},
		{"include several", []string{"*.txt", "/logs/"}, nil,
			[]string{"a.txt", "keep/d.txt", "logs/c.log", "sub/tmp/f.txt", "tmp/e.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := itLocal(t, t.TempDir())
			for _, k := range all {
				itPut(t, src, k, []byte(k), itMtime)
			}
			dst := itS3(t, srv, srv.NewBucket(t), "f/")
			flt, err := NewFilter(tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			e, db := itEngine(t)
			j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Filter: flt})
			itWantStatus(t, j, state.JobCompleted)
			got, _ := itKeys(t, dst)
			if !slices.Equal(got, tt.want) {
				t.Errorf("destination holds %q, want %q", got, tt.want)
			}
			if c := j.Counters; c.FilesTotal != int64(len(tt.want)) || c.FilesTransferred != int64(len(tt.want)) || c.FilesSkipped != 0 {
				t.Errorf("counters %+v: filtered-out files must be neither counted nor listed", c)
			}
			if l := itRecords(t, db, j, state.ListSkipped); len(l) != 0 {
				t.Errorf("skipped list %v, want empty (filtered files are not skipped)", l)
			}
		})
	}
}

func TestIntegrationPathRules(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.txt", "good")
	write("dir/ok.txt", "ok")
	write("dir/back\\slash.txt", "backslash")
	write("bad\xffname.txt", "invalid utf-8")
	write("bad\\dir/inner.txt", "inside a directory with a backslash")
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := itLocal(t, dir)
	bucket := srv.NewBucket(t)
	dst := itS3(t, srv, bucket, "dst/")
	e, db := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
	itWantStatus(t, j, state.JobCompleted)

	want := map[string]string{ // path as listed → a part of the reason
		"dir/back\\slash.txt": "backslash",
		`"bad\xffname.txt"`:   "UTF-8",
		"bad\\dir/":           "backslash", // a directory: skipped whole
		"pipe":                "named pipe",
	}
	skipped := itRecords(t, db, j, state.ListSkipped)
	if len(skipped) != len(want) {
		t.Errorf("skipped list %v, want exactly %v", skipped, slices.Sorted(maps.Keys(want)))
	}
	for p, reason := range want {
		if r, ok := skipped[p]; !ok || !strings.Contains(r.Reason, reason) {
			t.Errorf("skipped %q: %+v, want a reason saying %q (list: %v)", p, r, reason, skipped)
		}
	}
	if c := j.Counters; c.FilesSkipped != int64(len(want)) || c.FilesTransferred != 2 {
		t.Errorf("counters %+v, want 2 transferred and %d skipped", c, len(want))
	}
	// Nothing else was written anywhere in the bucket.
	root := itS3(t, srv, bucket, "")
	keys, odd := itKeys(t, root)
	if !slices.Equal(keys, []string{"dst/dir/ok.txt", "dst/good.txt"}) || len(odd) != 0 {
		t.Errorf("bucket holds %q and unlisted %q, want only the two good files", keys, odd)
	}
	itOneListEach(t, db, j)
}

func TestIntegrationFilesMode(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	files := map[string][]byte{"a.txt": []byte("a"), "b.txt": []byte("b"), "dir1/example.txt": []byte("example"),
		"dir1/other.txt": []byte("other")}
	list := []string{"/dir1/example.txt", "a.txt", "/a.txt", "/missing.txt", "../escape", "dir1//x"}
	tests := []struct {
		name   string
		stores func(t *testing.T) (src, dst remote.Store)
	}{
		{"local to s3", func(t *testing.T) (remote.Store, remote.Store) {
			return itLocal(t, t.TempDir()), itS3(t, srv, srv.NewBucket(t), "out/")
		}},
		{"s3 to local", func(t *testing.T) (remote.Store, remote.Store) {
			return itS3(t, srv, srv.NewBucket(t), "in/"), itLocal(t, t.TempDir())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, dst := tt.stores(t)
			itPutAll(t, src, files)
			e, db := itEngine(t)
			j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Mode: ModeFiles, Files: list})
			itWantStatus(t, j, state.JobPartial) // one listed file does not exist
			got, _ := itKeys(t, dst)
			if !slices.Equal(got, []string{"a.txt", "dir1/example.txt"}) {
				t.Errorf("destination holds %q, want exactly the two listed files that exist", got)
			}
			for _, k := range got {
				if !bytes.Equal(itRead(t, dst, k), files[k]) {
					t.Errorf("%s differs", k)
				}
			}
			succ := itRecords(t, db, j, state.ListSuccess)
			if len(succ) != 2 {
				t.Errorf("success list %v, want the two copied files once each", succ)
			}
			if r := itRecords(t, db, j, state.ListFailed)["missing.txt"]; !strings.Contains(r.Reason, "no such file") {
				t.Errorf("missing.txt failed record %+v", r)
			}
			skipped := itRecords(t, db, j, state.ListSkipped)
			for _, bad := range []string{"../escape", "dir1//x"} {
				if !strings.Contains(skipped[bad].Reason, "invalid path") {
					t.Errorf("%s: skipped %+v, want an invalid path reason", bad, skipped[bad])
				}
			}
			itOneListEach(t, db, j)
		})
	}
}

func TestIntegrationDelete(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	files := itTree(3)

	t.Run("removes what the source lacks, inside the prefix only", func(t *testing.T) {
		t.Parallel()
		bucket := srv.NewBucket(t)
		src := itLocal(t, t.TempDir())
		dst := itS3(t, srv, bucket, "mirror/")
		itPutAll(t, src, files)
		itPut(t, dst, "gone.txt", []byte("gone"), itMtime)
		itPut(t, dst, "old/extra.bin", []byte("extra"), itMtime)
		outside := itS3(t, srv, bucket, "other/")
		itPut(t, outside, "keep.txt", []byte("not ours"), itMtime)
		e, db := itEngine(t)
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Delete: true, MaxDelete: DeleteLimit{Count: 2}})
		itWantStatus(t, j, state.JobCompleted)
		itSame(t, src, dst)
		if j.Counters.FilesDeleted != 2 {
			t.Errorf("deleted %d, want 2", j.Counters.FilesDeleted)
		}
		succ := itRecords(t, db, j, state.ListSuccess)
		for _, k := range []string{"gone.txt", "old/extra.bin"} {
			if succ[k].Reason != "deleted" {
				t.Errorf("%s: success record %+v, want deleted", k, succ[k])
			}
		}
		if got := string(itRead(t, outside, "keep.txt")); got != "not ours" {
			t.Errorf("an object outside the destination prefix was touched: %q", got)
		}
	})

	guards := []struct {
		name      string
		src       func(t *testing.T) remote.Store
		limit     DeleteLimit
		wantError string
	}{
		{"empty local source", func(t *testing.T) remote.Store { return itLocal(t, t.TempDir()) },
			DeleteLimit{Percent: 100}, "empty or missing"},
		{"missing s3 source prefix", func(t *testing.T) remote.Store { return itS3(t, srv, srv.NewBucket(t), "nothing/here/") },
			DeleteLimit{Percent: 100}, "empty or missing"},
		{"more than max_delete percent", func(t *testing.T) remote.Store {
			s := itLocal(t, t.TempDir())
			itPut(t, s, "a.txt", files["a.txt"], itMtime) // same as at the destination
			return s
		}, DeleteLimit{Percent: 50}, "max_delete"},
		{"more than max_delete count", func(t *testing.T) remote.Store {
			s := itLocal(t, t.TempDir())
			itPutAll(t, s, map[string][]byte{"a.txt": files["a.txt"], "empty": nil, "medium.bin": files["medium.bin"], "dir1/example.txt": files["dir1/example.txt"]})
			return s
		}, DeleteLimit{Count: 2}, "max_delete"},
	}
	for _, tt := range guards {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			t.Parallel()
			src := tt.src(t)
			dst := itS3(t, srv, srv.NewBucket(t), "")
			itPutAll(t, dst, files)
			before, _ := itKeys(t, dst)
			e, _ := itEngine(t)
			j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Delete: true, MaxDelete: tt.limit})
			itWantStatus(t, j, state.JobFailed)
			if !strings.Contains(j.Error, tt.wantError) || !strings.Contains(j.Error, "nothing was deleted") {
				t.Errorf("job error %q, want it to say %q and that nothing was deleted", j.Error, tt.wantError)
			}
			after, _ := itKeys(t, dst)
			if !slices.Equal(before, after) || j.Counters.FilesDeleted != 0 {
				t.Errorf("destination went from %q to %q (deleted counter %d): a refused delete must delete nothing",
					before, after, j.Counters.FilesDeleted)
			}
		})
	}
}

func TestIntegrationVerifyAllResendsAlteredObject(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	src := itLocal(t, t.TempDir())
	dst := itS3(t, srv, bucket, "v/")
	files := itTree(4)
	itPutAll(t, src, files)
	e, db := itEngine(t)
	itWantStatus(t, itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst}), state.JobCompleted)

	// Another client replaces one object: same size, same mtime metadata,
	// other bytes.
	const key = "dir1/example.txt"
	before, err := dst.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Clone(files[key])
	altered[len(altered)/2] ^= 0xff
	itPut(t, itS3(t, srv, bucket, "v/"), key, altered, before.ModTime)
	after, err := dst.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size != before.Size || !after.ModTime.Equal(before.ModTime) {
		t.Fatalf("the alteration changed size or mtime: %+v → %+v", before, after)
	}

	// verify = "all" re-reads both sides and re-sends the altered object.
	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Verify: VerifyAll})
	itWantStatus(t, j, state.JobCompleted)
	succ := itRecords(t, db, j, state.ListSuccess)
	if len(succ) != 1 || !strings.Contains(succ[key].Reason, "re-sent") || succ[key].SHA256 != itSHA(files[key]) {
		t.Errorf("success list %v, want only %s, re-sent, with the source's sha256", succ, key)
	}
	n := int64(len(files))
	if c := j.Counters; c.FilesTransferred != 1 || c.FilesUnchanged != n-1 || c.FilesFailed != 0 {
		t.Errorf("counters %+v, want 1 re-sent and %d verified unchanged", c, n-1)
	}
	itSame(t, src, dst)

	// Verified again: all good now.
	j = itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Verify: VerifyAll})
	itWantStatus(t, j, state.JobCompleted)
	if c := j.Counters; c.FilesTransferred != 0 || c.FilesUnchanged != n {
		t.Errorf("second verify counters %+v, want all unchanged", c)
	}

	// Altered again: the default verification notices too, without reading
	// any content, because the destination's listing shows another ETag
	// than the one recorded for Ferry's copy.
	itPut(t, itS3(t, srv, bucket, "v/"), key, altered, before.ModTime)
	j = itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
	itWantStatus(t, j, state.JobCompleted)
	succ = itRecords(t, db, j, state.ListSuccess)
	if len(succ) != 1 || !strings.Contains(succ[key].Reason, "changed at the destination") {
		t.Errorf("success list %v, want only %s, changed at the destination", succ, key)
	}
	itSame(t, src, dst)
}

// itParts is an S3 destination that counts parts and single puts, and can
// cancel the job when a given part starts (as a kill would stop it).
type itParts struct {
	*s3.Store
	parts, puts      atomic.Int64
	completed        sync.Map // part number → true once uploaded
	given            sync.Map // part number → the SHA-256 the engine gave with it
	cancelAt         int      // cancel when this part starts
	cancelOnComplete bool     // cancel when the upload is completed
	cancel           context.CancelFunc
	failOnceAt       int // fail this part once, retryably, sending nothing
	failed           atomic.Bool
}

func (p *itParts) UploadPart(ctx context.Context, key, id string, n int, r io.Reader, size int64, sha string) (remote.Part, error) {
	p.parts.Add(1)
	p.given.Store(n, sha)
	if n == p.cancelAt && p.cancel != nil {
		// Parts upload in parallel: let the earlier ones finish first, so
		// the interruption falls after exactly cancelAt-1 parts.
		deadline := time.Now().Add(30 * time.Second)
		for !p.doneBelow(n) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		p.cancel()
		return remote.Part{}, context.Canceled
	}
	if n == p.failOnceAt && !p.failed.Swap(true) {
		return remote.Part{}, remote.Retryable(errors.New("injected failure"))
	}
	part, err := p.Store.UploadPart(ctx, key, id, n, r, size, sha)
	if err == nil {
		p.completed.Store(n, true)
	}
	return part, err
}

// doneBelow reports whether parts 1 to n-1 have finished.
func (p *itParts) doneBelow(n int) bool {
	for i := 1; i < n; i++ {
		if _, ok := p.completed.Load(i); !ok {
			return false
		}
	}
	return true
}

func (p *itParts) CompleteUpload(ctx context.Context, key, id string, parts []remote.Part, meta remote.PutMeta) (remote.ObjectInfo, error) {
	if p.cancelOnComplete && p.cancel != nil {
		p.cancel()
	}
	return p.Store.CompleteUpload(ctx, key, id, parts, meta)
}

func (p *itParts) Put(ctx context.Context, k string, r io.Reader, n int64, m remote.PutMeta) (remote.ObjectInfo, error) {
	p.puts.Add(1)
	return p.Store.Put(ctx, k, r, n, m)
}

// itInterrupted is a sync of a local file big.bin to a fresh bucket that
// its destination canceled, as a kill would stop it.
type itInterrupted struct {
	src *local.Store
	dst *s3.Store
	e   *Engine
	db  *state.DB
	big []byte        // the file's content
	up  *state.Upload // the upload the canceled job left recorded
}

// itInterrupt syncs size random bytes from seed through first (an itParts
// set to cancel the job) and returns what the canceled job left.
func itInterrupt(t *testing.T, srv *testenv.S3Server, seed uint64, size int, first *itParts) *itInterrupted {
	t.Helper()
	it := &itInterrupted{src: itLocal(t, t.TempDir()), dst: itS3(t, srv, srv.NewBucket(t), ""), big: itRandom(seed, size)}
	itPut(t, it.src, "big.bin", it.big, itMtime)
	it.e, it.db = itEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first.Store, first.cancel = it.dst, cancel
	j := itRunCtx(t, ctx, it.e, &Plan{Name: "p", Source: it.src, Dest: first})
	itWantStatus(t, j, state.JobCanceled)
	up, ok, err := it.db.GetUpload("p", "big.bin")
	if err != nil || !ok {
		t.Fatalf("no upload recorded (found %v, err %v)", ok, err)
	}
	it.up = up
	return it
}

func TestIntegrationMultipartResumes(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	const size = 2*itPartSize + 12345 // three parts

	t.Run("large file goes in parts and verifies", func(t *testing.T) {
		t.Parallel()
		src := itLocal(t, t.TempDir())
		big := itRandom(10, size)
		itPut(t, src, "big.bin", big, itMtime)
		itPut(t, src, "at-threshold.bin", itRandom(11, itPartSize), itMtime)
		dst := &itParts{Store: itS3(t, srv, srv.NewBucket(t), "")}
		e, db := itEngine(t)
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Verify: VerifyAll})
		itWantStatus(t, j, state.JobCompleted)
		if dst.parts.Load() != 3 || dst.puts.Load() != 1 {
			t.Errorf("%d parts and %d single puts, want 3 parts (big.bin) and 1 put (a file of exactly one part)",
				dst.parts.Load(), dst.puts.Load())
		}
		info, err := dst.Stat(context.Background(), "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		if info.SHA256 != itSHA(big) || info.Size != size || !info.ModTime.Equal(itMtime) {
			t.Errorf("stored object %+v, want sha256 %s size %d mtime %v", info, itSHA(big), size, itMtime)
		}
		if r := itRecords(t, db, j, state.ListSuccess)["big.bin"]; r.SHA256 != itSHA(big) {
			t.Errorf("success record %+v", r)
		}
		itSame(t, src, dst.Store)
		itNoUploads(t, db)
		// The pass that hashed the local file before the upload hashed
		// the parts too: each went out with its SHA-256.
		for n := 1; n <= 3; n++ {
			part := big[(n-1)*itPartSize : min(n*itPartSize, size)]
			if got, _ := dst.given.Load(n); got != itSHA(part) {
				t.Errorf("part %d went out with SHA-256 %q, want %s", n, got, itSHA(part))
			}
		}
	})

	t.Run("an interrupted upload continues from its last part", func(t *testing.T) {
		t.Parallel()
		it := itInterrupt(t, srv, 12, size, &itParts{cancelAt: 3})
		src, s3dst, e, db, big, up := it.src, it.dst, it.e, it.db, it.big, it.up
		if len(up.Parts) != 2 {
			t.Fatalf("recorded upload %+v, want two finished parts", up)
		}
		if _, err := s3dst.Stat(context.Background(), "big.bin"); !errors.Is(err, remote.ErrNotExist) {
			t.Fatalf("an unfinished upload is visible: %v", err)
		}

		second := &itParts{Store: s3dst}
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: second})
		itWantStatus(t, j, state.JobCompleted)
		if second.parts.Load() != 1 {
			t.Errorf("the resumed upload sent %d parts, want only the last one", second.parts.Load())
		}
		if c := j.Counters; c.BytesResumed != 2*itPartSize || c.BytesTransferred-c.BytesResumed != size-2*itPartSize {
			t.Errorf("counters %+v, want %d bytes resumed", c, 2*itPartSize)
		}
		if got := itRead(t, s3dst, "big.bin"); itSHA(got) != itSHA(big) {
			t.Error("resumed object differs from the source")
		}
		if info, _ := s3dst.Stat(context.Background(), "big.bin"); info.SHA256 != itSHA(big) || !info.ModTime.Equal(itMtime) {
			t.Errorf("resumed object info %+v", info)
		}
		itNoUploads(t, db)
		if _, err := s3dst.ListMultipartParts(context.Background(), s3.Upload{Key: "big.bin", UploadID: up.UploadID}); !errors.Is(err, remote.ErrNotExist) {
			t.Errorf("the upload is still open after completion: %v", err)
		}
	})

	// The process died after the store took parts 1 and 2 but before it
	// recorded them (so the record has no hash state), and the record has
	// a part 4 the store lost: the resume asks the store, keeps 1 and 2
	// (their size and SHA-256 match the source) and 3, and sends only
	// part 4.
	t.Run("a resume sends only the parts the store does not hold", func(t *testing.T) {
		t.Parallel()
		const size = 3*itPartSize + 12345 // four parts
		it := itInterrupt(t, srv, 15, size, &itParts{cancelAt: 4})
		src, s3dst, e, db, big, up := it.src, it.dst, it.e, it.db, it.big, it.up
		if len(up.Parts) != 3 {
			t.Fatalf("recorded upload %+v, want parts 1 to 3", up)
		}
		// The record as a kill would have left it: part 3, no hash state
		// (part 1 is missing), and a part 4 the store does not hold.
		tail := big[3*itPartSize:]
		up.Parts = []state.UploadPart{up.Parts[2], {Number: 4, Size: int64(len(tail)), SHA256: itSHA(tail), ETag: "0123456789abcdef0123456789abcdef"}}
		up.SourceSHA256State = nil
		if err := db.PutUpload(up); err != nil {
			t.Fatal(err)
		}

		second := &itParts{Store: s3dst}
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: second})
		itWantStatus(t, j, state.JobCompleted)
		for n := 1; n <= 3; n++ {
			if _, sent := second.given.Load(n); sent {
				t.Errorf("the resume sent part %d, which the store held", n)
			}
		}
		if _, sent := second.given.Load(4); !sent || second.parts.Load() != 1 {
			t.Errorf("the resume sent %d parts, want only part 4", second.parts.Load())
		}
		if c := j.Counters; c.BytesResumed != 3*itPartSize || c.BytesSent != int64(len(tail)) || c.BytesTransferred != size {
			t.Errorf("counters %+v, want %d bytes resumed and %d sent of %d", c, 3*itPartSize, len(tail), size)
		}
		if info, err := s3dst.Stat(context.Background(), "big.bin"); err != nil || info.SHA256 != itSHA(big) || info.Size != size {
			t.Errorf("stored object %+v (err %v), want sha256 %s", info, err, itSHA(big))
		}
		if got := itRead(t, s3dst, "big.bin"); !bytes.Equal(got, big) {
			t.Error("resumed object differs from the source")
		}
		itNoUploads(t, db)
	})

	t.Run("an upload of a since changed file is aborted", func(t *testing.T) {
		t.Parallel()
		it := itInterrupt(t, srv, 13, size, &itParts{cancelAt: 2})
		src, s3dst, e, db, up := it.src, it.dst, it.e, it.db, it.up
		if len(up.Parts) == 0 || up.Parts[0].Number != 1 {
			t.Fatalf("recorded upload %+v, want part 1 finished", up)
		}

		changed := itRandom(14, size+1)
		itPut(t, src, "big.bin", changed, itMtime.Add(time.Minute))
		second := &itParts{Store: s3dst}
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: second})
		itWantStatus(t, j, state.JobCompleted)
		if second.parts.Load() != 3 || j.Counters.BytesResumed != 0 {
			t.Errorf("%d parts sent, %d bytes resumed: a changed file must be sent whole", second.parts.Load(), j.Counters.BytesResumed)
		}
		if got := itRead(t, s3dst, "big.bin"); !bytes.Equal(got, changed) {
			t.Error("destination does not hold the changed file")
		}
		if _, err := s3dst.ListMultipartParts(context.Background(), s3.Upload{Key: "big.bin", UploadID: up.UploadID}); !errors.Is(err, remote.ErrNotExist) {
			t.Errorf("the stale upload %s was not aborted: %v", up.UploadID, err)
		}
		itNoUploads(t, db)
	})
}

func TestIntegrationMultipartRetries(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	const size = 2*itPartSize + 777 // three parts

	// A part that fails after a resume is retried; the parts this run sent
	// before the failure are not counted as resumed.
	t.Run("retry after a resume counts only the earlier run's parts", func(t *testing.T) {
		t.Parallel()
		it := itInterrupt(t, srv, 20, size, &itParts{cancelAt: 2})
		src, s3dst, e, big, up := it.src, it.dst, it.e, it.big, it.up
		// Part 1 finished before the cancel; part 3, started beside
		// part 2, may have too. Part 2 did not.
		if len(up.Parts) == 0 || up.Parts[0].Number != 1 || slices.ContainsFunc(up.Parts, func(p state.UploadPart) bool { return p.Number == 2 }) {
			t.Fatalf("recorded upload %+v, want part 1 finished and part 2 not", up)
		}
		// What the earlier run sent is what the server holds: part 3 may
		// have landed after the cancel, unrecorded, and a resume keeps it.
		held, err := s3dst.ListMultipartParts(context.Background(), s3.Upload{Key: "big.bin", UploadID: up.UploadID})
		if err != nil {
			t.Fatal(err)
		}
		var earlier int64
		for _, p := range held {
			earlier += p.Size
		}

		second := &itParts{Store: s3dst, failOnceAt: 2}
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: second})
		itWantStatus(t, j, state.JobCompleted)
		if c := j.Counters; c.BytesResumed != earlier || c.BytesTransferred != size || c.BytesSent != size-earlier {
			t.Errorf("counters %+v, want %d bytes resumed (the canceled run's parts) of %d, and the other %d sent", c, earlier, size, size-earlier)
		}
		if got := itRead(t, s3dst, "big.bin"); !bytes.Equal(got, big) {
			t.Error("object differs from the source")
		}
	})

	// All parts were sent but the upload vanished before it was completed
	// (a lifecycle rule aborted it): the next run starts over instead of
	// failing on every run.
	t.Run("an upload that vanished before completion starts over", func(t *testing.T) {
		t.Parallel()
		it := itInterrupt(t, srv, 21, size, &itParts{cancelOnComplete: true})
		src, s3dst, e, db, big, up := it.src, it.dst, it.e, it.db, it.big, it.up
		if len(up.Parts) != 3 {
			t.Fatalf("recorded upload %+v, want all three parts", up)
		}
		if err := s3dst.AbortUpload(context.Background(), "big.bin", up.UploadID); err != nil {
			t.Fatal(err)
		}

		second := &itParts{Store: s3dst}
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: second})
		itWantStatus(t, j, state.JobCompleted)
		if second.parts.Load() != 3 || j.Counters.BytesResumed != 0 {
			t.Errorf("%d parts sent, %d bytes resumed; want a fresh upload of 3 parts", second.parts.Load(), j.Counters.BytesResumed)
		}
		if got := itRead(t, s3dst, "big.bin"); !bytes.Equal(got, big) {
			t.Error("object differs from the source")
		}
		itNoUploads(t, db)
	})
}

// A source whose recorded SHA-256 is stale (here a local xattr; on S3 an
// x-amz-meta-sha256 that a tool kept when it rewrote the object) is copied
// as its bytes are, not failed on every run.
func TestIntegrationStaleSourceChecksum(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	dir := t.TempDir()
	src := itLocal(t, dir)
	itPut(t, src, "f.txt", []byte("version one"), itMtime) // records the hash in an xattr
	// Rewrite in place (the xattr stays), same size, mtime put back.
	p := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(p, []byte("version TWO"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, itMtime, itMtime); err != nil {
		t.Fatal(err)
	}
	info, err := src.Stat(context.Background(), "f.txt")
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA256 == "" {
		t.Skip("the temporary directory's filesystem keeps no user xattrs: no recorded hash to go stale")
	}
	if info.SHA256 == itSHA([]byte("version TWO")) {
		t.Fatal("the local store noticed the change; this test needs a stale recorded hash")
	}
	for _, dst := range []remote.Store{itS3(t, srv, srv.NewBucket(t), ""), itLocal(t, t.TempDir())} {
		e, _ := itEngine(t)
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
		itWantStatus(t, j, state.JobCompleted)
		if got := string(itRead(t, dst, "f.txt")); got != "version TWO" {
			t.Errorf("destination holds %q", got)
		}
		if di, _ := dst.Stat(context.Background(), "f.txt"); di.SHA256 != "" && di.SHA256 != itSHA([]byte("version TWO")) {
			t.Errorf("destination records sha256 %s, not the content's", di.SHA256)
		}
	}
}

// itNoUploads fails when the state database still records an upload.
func itNoUploads(t *testing.T, db *state.DB) {
	t.Helper()
	err := db.ListUploads("p", func(u *state.Upload) error {
		t.Errorf("upload of %s (%s) still recorded", u.Key, u.UploadID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// itFullDisk is a destination that takes a few bytes of a Put and then
// fails as a full disk would.
type itFullDisk struct {
	remote.Store
	puts atomic.Int64
}

func (d *itFullDisk) Put(ctx context.Context, k string, r io.Reader, n int64, m remote.PutMeta) (remote.ObjectInfo, error) {
	d.puts.Add(1)
	io.CopyN(io.Discard, r, 10)
	return remote.ObjectInfo{}, fmt.Errorf("put %s: %w", k, syscall.ENOSPC)
}

// itGrowing is a source whose file grows (size and mtime change) right
// after its first Open, as a log file being written would.
type itGrowing struct {
	*local.Store
	dir    string
	opened atomic.Int64
}

func (g *itGrowing) Open(ctx context.Context, k string, off, n int64) (io.ReadCloser, error) {
	rc, err := g.Store.Open(ctx, k, off, n)
	if err == nil && g.opened.Add(1) == 1 {
		p := filepath.Join(g.dir, k)
		f, ferr := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if ferr == nil {
			f.WriteString(" and more")
			f.Close()
			ferr = os.Chtimes(p, itMtime.Add(time.Hour), itMtime.Add(time.Hour))
		}
		if ferr != nil {
			rc.Close()
			return nil, ferr
		}
	}
	return rc, err
}

// A Put that stops part-way is the source changing only when the source
// did change; otherwise the destination's own error is what the failed
// list says.
func TestIntegrationShortPutCause(t *testing.T) {
	t.Parallel()
	t.Run("the destination failed", func(t *testing.T) {
		t.Parallel()
		src := itLocal(t, t.TempDir())
		itPut(t, src, "f.txt", []byte("some content that is longer than ten bytes"), itMtime)
		dst := &itFullDisk{Store: itLocal(t, t.TempDir())}
		e, db := itEngine(t)
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
		itWantStatus(t, j, state.JobFailed)
		r := itRecords(t, db, j, state.ListFailed)["f.txt"]
		if !strings.Contains(r.Reason, "no space left on device") || strings.Contains(r.Reason, "changed") {
			t.Errorf("failed record %+v, want the destination's error", r)
		}
		if dst.puts.Load() != 1 {
			t.Errorf("a permanent destination error was tried %d times", dst.puts.Load())
		}
	})
	t.Run("the source grew", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		src := &itGrowing{Store: itLocal(t, dir), dir: dir}
		itPut(t, src, "log.txt", []byte("first line"), itMtime)
		dst := itLocal(t, t.TempDir())
		e, _ := itEngine(t)
		j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
		itWantStatus(t, j, state.JobCompleted)
		if got := string(itRead(t, dst, "log.txt")); got != "first line and more" {
			t.Errorf("destination holds %q, want the file as it was after it grew", got)
		}
		itSame(t, src, dst)
	})
}
