package syncer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/local"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

// fixture is a state database and an engine for one test.
type fixture struct {
	t   *testing.T
	db  *state.DB
	eng *Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{t: t, db: db, eng: &Engine{DB: db, Backoff: time.Millisecond}}
}

func (f *fixture) run(p *Plan, opt RunOptions) *state.Job {
	f.t.Helper()
	j, err := f.eng.Run(context.Background(), p, opt)
	if err != nil {
		f.t.Fatalf("Run: %v", err)
	}
	return j
}

// list returns a job's file list as path → reason.
func (f *fixture) list(j *state.Job, kind state.ListKind) map[string]string {
	f.t.Helper()
	out := map[string]string{}
	err := f.db.IterateFileRecords(j.ID, kind, func(r state.FileRecord) error {
		if _, dup := out[r.Path]; dup {
			f.t.Errorf("%s listed twice in %s list", r.Path, kind)
		}
		out[r.Path] = r.Reason
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func put(t *testing.T, s remote.Store, key, content string, mtime time.Time) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, strings.NewReader(content), int64(len(content)),
		remote.PutMeta{ModTime: mtime}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func read(t *testing.T, s remote.Store, key string) (string, bool) {
	t.Helper()
	rc, err := s.Open(context.Background(), key, 0, -1)
	if errors.Is(err, remote.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// contents returns every key → content of a store.
func contents(t *testing.T, s remote.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.List(context.Background(), "", func(info remote.ObjectInfo) error {
		if info.SkipReason != "" {
			return nil
		}
		c, _ := read(t, s, info.Key)
		out[info.Key] = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalContents(t *testing.T, src, dst remote.Store) {
	t.Helper()
	a, b := contents(t, src), contents(t, dst)
	if len(a) != len(b) {
		t.Errorf("source has %d files, destination %d", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s differs at the destination", k)
		}
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func seed(t *testing.T, s remote.Store, n int) {
	for i := range n {
		put(t, s, fmt.Sprintf("d%d/f%03d.txt", i%3, i), fmt.Sprintf("content %d", i), t0)
	}
}

func TestScanCopiesAndRerunIsUnchanged(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 50)
	p := &Plan{Name: "p", Source: src, Dest: dst, MaxFilesPerTask: 7}
	j := f.run(p, RunOptions{Trigger: "test"})
	if j.Status != state.JobCompleted || j.Counters.FilesTransferred != 50 {
		t.Fatalf("first run: %s, %+v", j.Status, j.Counters)
	}
	equalContents(t, src, dst)
	if got := len(f.list(j, state.ListSuccess)); got != 50 {
		t.Errorf("success list has %d entries, want 50", got)
	}

	// A re-run with nothing changed sends nothing and asks the
	// destination for one listing, nothing per file.
	counting := &countingStore{Store: dst}
	p2 := &Plan{Name: "p", Source: src, Dest: counting}
	j2 := f.run(p2, RunOptions{})
	if j2.Counters.FilesTransferred != 0 || j2.Counters.FilesUnchanged != 50 {
		t.Errorf("re-run: %+v", j2.Counters)
	}
	if counting.calls.Load() != 1 || counting.lists.Load() != 1 {
		t.Errorf("re-run made %d destination requests (%d listings), want one listing", counting.calls.Load(), counting.lists.Load())
	}

	// A copy deleted at the destination behind Ferry's back comes back.
	if err := dst.Delete(context.Background(), "d2/f005.txt"); err != nil {
		t.Fatal(err)
	}
	j2 = f.run(&Plan{Name: "p", Source: src, Dest: dst}, RunOptions{})
	if c, _ := read(t, dst, "d2/f005.txt"); c != "content 5" || j2.Counters.FilesTransferred != 1 {
		t.Errorf("deleted copy not restored: %q, %+v", c, j2.Counters)
	}
	if r := f.list(j2, state.ListSuccess)["d2/f005.txt"]; r != "missing at the destination" {
		t.Errorf("success reason %q, want missing at the destination", r)
	}

	// One changed file is the only one sent.
	put(t, src, "d1/f001.txt", "changed", t0.Add(time.Hour))
	j3 := f.run(&Plan{Name: "p", Source: src, Dest: dst}, RunOptions{})
	if j3.Counters.FilesTransferred != 1 || j3.Counters.FilesUnchanged != 49 {
		t.Errorf("after one change: %+v", j3.Counters)
	}
	if c, _ := read(t, dst, "d1/f001.txt"); c != "changed" {
		t.Errorf("changed file not copied: %q", c)
	}
}

func TestConflictPolicies(t *testing.T) {
	older, newer := t0, t0.Add(time.Hour)
	tests := []struct {
		policy   Conflict
		srcTime  time.Time
		dstTime  time.Time
		wantDst  string
		skipped  bool
		wantSent int64
	}{
		{ConflictSkip, newer, older, "dst", true, 0},
		{ConflictUpdate, newer, older, "src", false, 1},
		{ConflictUpdate, older, newer, "dst", true, 0},
		{ConflictOverwrite, older, newer, "src", false, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/src-newer=%v", tt.policy, tt.srcTime.After(tt.dstTime)), func(t *testing.T) {
			f := newFixture(t)
			src, dst := mem.New(), mem.New()
			put(t, src, "a.txt", "src", tt.srcTime)
			put(t, dst, "a.txt", "dst", tt.dstTime)
			put(t, src, "new.txt", "new", older)
			j := f.run(&Plan{Name: "p", Source: src, Dest: dst, Conflict: tt.policy}, RunOptions{})
			if c, _ := read(t, dst, "a.txt"); c != tt.wantDst {
				t.Errorf("destination holds %q, want %q", c, tt.wantDst)
			}
			if c, _ := read(t, dst, "new.txt"); c != "new" {
				t.Errorf("new file not copied")
			}
			skipped := f.list(j, state.ListSkipped)
			if _, ok := skipped["a.txt"]; ok != tt.skipped {
				t.Errorf("skipped list %v, want a.txt skipped=%v", skipped, tt.skipped)
			}
			if j.Counters.FilesTransferred != tt.wantSent+1 {
				t.Errorf("transferred %d, want %d", j.Counters.FilesTransferred, tt.wantSent+1)
			}
			if j.Status != state.JobCompleted {
				t.Errorf("status %s", j.Status)
			}
		})
	}
}

func TestUpdateAdoptsIdenticalDestination(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	put(t, src, "same.txt", "same", t0)
	put(t, dst, "same.txt", "same", t0)
	j := f.run(&Plan{Name: "p", Source: src, Dest: dst}, RunOptions{})
	if j.Counters.FilesTransferred != 0 || j.Counters.FilesUnchanged != 1 {
		t.Fatalf("identical file was not adopted: %+v", j.Counters)
	}
	if _, ok, _ := f.db.GetFile("p", "same.txt"); !ok {
		t.Error("adopted file missing from the index")
	}
}

func TestFiltersAndFilesMode(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	for _, k := range []string{"a.txt", "b.log", "logs/c.log", "keep/d.txt", "dir1/example.txt"} {
		put(t, src, k, k, t0)
	}
	flt, err := NewFilter(nil, []string{"*.log"})
	if err != nil {
		t.Fatal(err)
	}
	f.run(&Plan{Name: "ex", Source: src, Dest: dst, Filter: flt}, RunOptions{})
	got := contents(t, dst)
	if _, ok := got["b.log"]; ok || len(got) != 3 {
		t.Errorf("exclude *.log gave %v", got)
	}

	dst2 := mem.New()
	j := f.run(&Plan{Name: "files", Source: src, Dest: dst2, Mode: ModeFiles,
		Files: []string{"/dir1/example.txt", "a.txt", "missing.txt", "../etc/passwd", "a//b"}}, RunOptions{})
	got = contents(t, dst2)
	if len(got) != 2 || got["dir1/example.txt"] == "" || got["a.txt"] == "" {
		t.Errorf("files mode copied %v", got)
	}
	if failed := f.list(j, state.ListFailed); failed["missing.txt"] == "" {
		t.Errorf("missing file not in the failed list: %v", failed)
	}
	skipped := f.list(j, state.ListSkipped)
	for _, bad := range []string{"../etc/passwd", "a//b"} {
		if !strings.Contains(skipped[bad], "invalid path") {
			t.Errorf("%s: skipped reason %q, want invalid path", bad, skipped[bad])
		}
	}
	if j.Status != state.JobPartial {
		t.Errorf("status %s, want partial (one listed file is missing)", j.Status)
	}
}

func TestPathRulesSkipBadNames(t *testing.T) {
	f := newFixture(t)
	srcDir, dstDir := t.TempDir(), t.TempDir()
	for _, name := range []string{"good.txt", "back\\slash.txt", "bad\xffutf8.txt"} {
		if err := os.WriteFile(filepath.Join(srcDir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := local.New(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := local.New(dstDir)
	if err != nil {
		t.Fatal(err)
	}
	j := f.run(&Plan{Name: "p", Source: src, Dest: dst}, RunOptions{})
	skipped := f.list(j, state.ListSkipped)
	if len(skipped) != 2 {
		t.Errorf("skipped %v, want the two bad names", skipped)
	}
	for p, reason := range skipped {
		if reason == "" {
			t.Errorf("%s skipped without a reason", p)
		}
	}
	entries, _ := os.ReadDir(dstDir)
	if len(entries) != 1 || entries[0].Name() != "good.txt" {
		t.Errorf("destination holds %v, want only good.txt", entries)
	}
}

func TestDeleteAndGuards(t *testing.T) {
	t.Run("deletes extras", func(t *testing.T) {
		f := newFixture(t)
		src, dst := mem.New(), mem.New()
		seed(t, src, 10)
		put(t, dst, "extra.txt", "x", t0)
		j := f.run(&Plan{Name: "p", Source: src, Dest: dst, Delete: true}, RunOptions{})
		if _, ok := read(t, dst, "extra.txt"); ok || j.Counters.FilesDeleted != 1 {
			t.Errorf("extra not deleted: %+v", j.Counters)
		}
		if f.list(j, state.ListSuccess)["extra.txt"] != "deleted" {
			t.Error("deletion not in the success list")
		}
	})
	t.Run("a deleted file keeps its size in the success list", func(t *testing.T) {
		f := newFixture(t)
		src, dst := mem.New(), mem.New()
		seed(t, src, 3)
		put(t, dst, "scanned.txt", "12345", t0)
		put(t, dst, "changed.txt", "1234567", t0)
		p := &Plan{Name: "p", Source: src, Dest: dst, Delete: true, MaxDelete: DeleteLimit{Count: 2}}
		sizes := func(j *state.Job) map[string]int64 {
			out := map[string]int64{}
			if err := f.db.IterateFileRecords(j.ID, state.ListSuccess, func(r state.FileRecord) error {
				out[r.Path] = r.Size
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		// One by a change set (the size from the lookup), one by a scan
		// (from the listing).
		j := f.run(p, RunOptions{Changes: &ChangeSet{Origin: "test", Deletes: []string{"changed.txt"}}})
		if got := sizes(j)["changed.txt"]; got != 7 || j.Counters.FilesDeleted != 1 {
			t.Errorf("change set delete: size %d, counters %+v; want 7 bytes deleted", got, j.Counters)
		}
		j = f.run(p, RunOptions{})
		if got := sizes(j)["scanned.txt"]; got != 5 || j.Counters.FilesDeleted != 1 {
			t.Errorf("scan delete: size %d, counters %+v; want 5 bytes deleted", got, j.Counters)
		}
	})
	t.Run("empty source refused", func(t *testing.T) {
		f := newFixture(t)
		src, dst := mem.New(), mem.New()
		seed(t, dst, 5)
		j := f.run(&Plan{Name: "p", Source: src, Dest: dst, Delete: true}, RunOptions{})
		if j.Status != state.JobFailed || !strings.Contains(j.Error, "empty") {
			t.Errorf("status %s error %q", j.Status, j.Error)
		}
		if n := len(contents(t, dst)); n != 5 {
			t.Errorf("%d destination files left, want 5", n)
		}
	})
	t.Run("max_delete refused", func(t *testing.T) {
		f := newFixture(t)
		src, dst := mem.New(), mem.New()
		put(t, src, "keep.txt", "k", t0)
		seed(t, dst, 9)
		j := f.run(&Plan{Name: "p", Source: src, Dest: dst, Delete: true, MaxDelete: DeleteLimit{Percent: 50}}, RunOptions{})
		if j.Status != state.JobFailed || !strings.Contains(j.Error, "max_delete") {
			t.Errorf("status %s error %q", j.Status, j.Error)
		}
		if n := len(contents(t, dst)); n != 10 {
			t.Errorf("%d destination files, want 10 (nothing deleted)", n)
		}
	})
	t.Run("change set deletes only what is gone", func(t *testing.T) {
		f := newFixture(t)
		src, dst := mem.New(), mem.New()
		seed(t, src, 4)
		put(t, dst, "gone.txt", "g", t0)
		put(t, dst, "d0/f000.txt", "old", t0)
		j := f.run(&Plan{Name: "p", Source: src, Dest: dst, Delete: true, MaxDelete: DeleteLimit{Count: 10}},
			RunOptions{Changes: &ChangeSet{Deletes: []string{"gone.txt", "d0/f000.txt"}}})
		if _, ok := read(t, dst, "gone.txt"); ok {
			t.Error("gone.txt not deleted")
		}
		if _, ok := read(t, dst, "d0/f000.txt"); !ok {
			t.Error("a file that still exists at the source was deleted")
		}
		if !strings.Contains(f.list(j, state.ListSkipped)["d0/f000.txt"], "still exists") {
			t.Error("refused delete not explained in the skipped list")
		}
	})
}

func TestChangeSetTouchesOnlyChangedPaths(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 20)
	counting := &countingStore{Store: src}
	j := f.run(&Plan{Name: "p", Source: counting, Dest: dst},
		RunOptions{Changes: &ChangeSet{Upserts: []string{"d0/f000.txt", "d1/f001.txt", "vanished.txt"},
			Skipped: []SkippedEntry{{Path: "../x", Reason: "bad row"}}}})
	if counting.lists.Load() != 0 {
		t.Errorf("an incremental job listed the source %d times", counting.lists.Load())
	}
	if got := len(contents(t, dst)); got != 2 || j.Counters.FilesTransferred != 2 {
		t.Errorf("copied %d files, counters %+v", got, j.Counters)
	}
	sk := f.list(j, state.ListSkipped)
	if sk["../x"] != "bad row" || sk["vanished.txt"] == "" {
		t.Errorf("skipped list %v", sk)
	}
}

func TestVerifyAllResendsAlteredDestination(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 5)
	f.run(&Plan{Name: "p", Source: src, Dest: dst}, RunOptions{})
	// Alter a destination file behind Ferry's back, keeping size and mtime.
	put(t, dst, "d1/f001.txt", "CONTENT 1", t0)
	j := f.run(&Plan{Name: "p", Source: src, Dest: dst, Verify: VerifyAll}, RunOptions{})
	if c, _ := read(t, dst, "d1/f001.txt"); c != "content 1" {
		t.Errorf("altered file not repaired: %q", c)
	}
	succ := f.list(j, state.ListSuccess)
	if !strings.Contains(succ["d1/f001.txt"], "re-sent") || len(succ) != 1 {
		t.Errorf("success list %v, want only the re-sent file", succ)
	}
	if j.Counters.FilesUnchanged != 4 {
		t.Errorf("unchanged %d, want 4", j.Counters.FilesUnchanged)
	}
}

func TestFailedFileMakesPartialJob(t *testing.T) {
	f := newFixture(t)
	src := mem.New()
	seed(t, src, 6)
	dst := &failingStore{Store: mem.New(), failKey: "d2/f002.txt"}
	j := f.run(&Plan{Name: "p", Source: src, Dest: dst}, RunOptions{})
	if j.Status != state.JobPartial || j.Counters.FilesFailed != 1 || j.Counters.FilesTransferred != 5 {
		t.Fatalf("status %s counters %+v", j.Status, j.Counters)
	}
	if f.list(j, state.ListFailed)["d2/f002.txt"] == "" {
		t.Error("failed file not in the failed list with its error")
	}
	if dst.attempts.Load() < 2 {
		t.Errorf("a retryable failure was tried %d times", dst.attempts.Load())
	}
	// Every file is in exactly one list.
	total := len(f.list(j, state.ListSuccess)) + len(f.list(j, state.ListFailed)) + len(f.list(j, state.ListSkipped))
	if total != 6 {
		t.Errorf("lists hold %d files, want 6", total)
	}
}

func TestResumeSkipsRecordedFiles(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 30)
	// A job that "crashed": running in the database, with some files
	// already copied and recorded.
	crashed := &state.Job{Plan: "p", Status: state.JobQueued, Started: time.Now().UTC().Add(-time.Minute),
		Meta: map[string]string{metaKind: "full"}}
	if err := f.db.CreateJob(crashed); err != nil {
		t.Fatal(err)
	}
	first := &Plan{Name: "p", Source: src, Dest: dst, Filter: mustFilter(t, []string{"d0/**"})}
	if _, err := f.eng.Run(context.Background(), first, RunOptions{Job: crashed}); err != nil {
		t.Fatal(err)
	}
	crashed.Status = state.JobRunning // as if killed before the end
	if err := f.db.UpdateJob(crashed); err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: dst}
	j := f.run(&Plan{Name: "p", Source: src, Dest: counting}, RunOptions{})
	if j.ID != crashed.ID || j.Resumes != 1 {
		t.Errorf("job %s resumes %d, want the crashed job %s resumed", j.ID, j.Resumes, crashed.ID)
	}
	if counting.puts.Load() != 20 || j.Counters.FilesResumed != 10 || j.Counters.FilesTransferred != 30 {
		t.Errorf("puts %d, counters %+v", counting.puts.Load(), j.Counters)
	}
	equalContents(t, src, dst)
}

func mustFilter(t *testing.T, include []string) *Filter {
	f, err := NewFilter(include, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDryRunWritesNothing(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 5)
	put(t, dst, "extra", "x", t0)
	put(t, dst, "d0/f000.txt", "content 0", t0) // identical: adopted, not copied
	j := f.run(&Plan{Name: "p", Source: src, Dest: dst, DryRun: true, Delete: true}, RunOptions{})
	if got := contents(t, dst); len(got) != 2 {
		t.Errorf("dry run wrote: %v", got)
	}
	succ := f.list(j, state.ListSuccess)
	if len(succ) != 5 || !strings.Contains(succ["extra"], "would delete") {
		t.Errorf("dry-run list %v", succ)
	}
	if j.Counters.FilesDeleted != 1 {
		t.Errorf("dry run counts %d deletions, want the 1 it would make", j.Counters.FilesDeleted)
	}
	n := 0
	_ = f.db.IterateFiles("p", "", func(string, state.FileEntry) error { n++; return nil })
	if n != 0 {
		t.Errorf("dry run wrote %d index entries", n)
	}
}

func TestTransferChecksumsMatchContent(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	data := bytes.Repeat([]byte("ferry"), 100000)
	if _, err := src.Put(context.Background(), "big", bytes.NewReader(data), int64(len(data)), remote.PutMeta{ModTime: t0}); err != nil {
		t.Fatal(err)
	}
	j := f.run(&Plan{Name: "p", Source: src, Dest: dst}, RunOptions{})
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	var got []string
	_ = f.db.IterateFileRecords(j.ID, state.ListSuccess, func(r state.FileRecord) error {
		got = append(got, r.SHA256)
		return nil
	})
	sort.Strings(got)
	if len(got) != 1 || got[0] != want {
		t.Errorf("recorded sha256 %v, want %s", got, want)
	}
	e, _, _ := f.db.GetFile("p", "big")
	if e.SHA256 != want || e.VerifiedAt.IsZero() {
		t.Errorf("index entry %+v", e)
	}
}

// countingStore counts the requests made to a store.
type countingStore struct {
	remote.Store
	calls, lists, puts atomic.Int64
}

func (c *countingStore) Stat(ctx context.Context, k string) (remote.ObjectInfo, error) {
	c.calls.Add(1)
	return c.Store.Stat(ctx, k)
}

func (c *countingStore) List(ctx context.Context, p string, fn func(remote.ObjectInfo) error) error {
	c.calls.Add(1)
	c.lists.Add(1)
	return c.Store.List(ctx, p, fn)
}

func (c *countingStore) Put(ctx context.Context, k string, r io.Reader, n int64, m remote.PutMeta) (remote.ObjectInfo, error) {
	c.calls.Add(1)
	c.puts.Add(1)
	return c.Store.Put(ctx, k, r, n, m)
}

// failingStore fails every Put of one key with a retryable error.
type failingStore struct {
	remote.Store
	failKey  string
	attempts atomic.Int64
}

func (s *failingStore) Put(ctx context.Context, k string, r io.Reader, n int64, m remote.PutMeta) (remote.ObjectInfo, error) {
	if k == s.failKey {
		s.attempts.Add(1)
		return remote.ObjectInfo{}, remote.Retryable(errors.New("injected failure"))
	}
	return s.Store.Put(ctx, k, r, n, m)
}

func TestDrainLeavesJobResumable(t *testing.T) {
	f := newFixture(t)
	src := mem.New()
	seed(t, src, 200)
	drain := make(chan struct{})
	dst := &drainingStore{Store: mem.New(), after: 20, drain: drain}
	p := &Plan{Name: "p", Source: src, Dest: dst, Workers: 2, MaxFilesPerTask: 5}
	j := f.run(p, RunOptions{Drain: drain})
	if j.Status != state.JobRunning {
		t.Fatalf("drained job status %s, want running (resumable)", j.Status)
	}
	sent := j.Counters.FilesTransferred
	if sent == 0 || sent >= 200 {
		t.Fatalf("drained job transferred %d files, want some but not all", sent)
	}
	if n := len(f.list(j, state.ListSuccess)); int64(n) != sent {
		t.Errorf("success list %d entries, counters say %d: in-flight files must commit", n, sent)
	}
	j2 := f.run(&Plan{Name: "p", Source: src, Dest: dst.Store}, RunOptions{})
	if j2.ID != j.ID || j2.Status != state.JobCompleted || j2.Counters.FilesResumed != sent {
		t.Errorf("resumed job %s status %s resumed %d, want %s completed with %d resumed",
			j2.ID, j2.Status, j2.Counters.FilesResumed, j.ID, sent)
	}
	equalContents(t, src, dst.Store)
}

// drainingStore closes drain after a number of puts.
type drainingStore struct {
	remote.Store
	after int64
	n     atomic.Int64
	drain chan struct{}
}

func (s *drainingStore) Put(ctx context.Context, k string, r io.Reader, n int64, m remote.PutMeta) (remote.ObjectInfo, error) {
	if s.n.Add(1) == s.after {
		close(s.drain)
	}
	return s.Store.Put(ctx, k, r, n, m)
}

func TestReservedPrefixNeverCopiedOrDeleted(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 4)
	put(t, src, "changelist/2026-11-23.csv", "path\nd0/f000.txt\n", t0)
	put(t, dst, "changelist/done/old.csv", "path\n", t0)
	put(t, dst, "extra.txt", "x", t0)
	p := &Plan{Name: "p", Source: src, Dest: dst, Delete: true, Reserved: []string{"changelist/"}}
	j := f.run(p, RunOptions{})
	got := contents(t, dst)
	if _, ok := got["changelist/2026-11-23.csv"]; ok {
		t.Error("a list in the reserved inbox was copied")
	}
	if _, ok := got["changelist/done/old.csv"]; !ok {
		t.Error("a file under the reserved prefix was deleted at the destination")
	}
	if _, ok := got["extra.txt"]; ok || j.Counters.FilesDeleted != 1 {
		t.Errorf("extra.txt not deleted: %+v", j.Counters)
	}
}
