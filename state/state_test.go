package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func openMem(t *testing.T) *DB {
	t.Helper()
	db, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openDisk(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenLockedAndReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDisk(t, dir)
	if err := db.PutFiles("p", map[string]FileEntry{"a": {Size: 1}}); err != nil {
		t.Fatal(err)
	}

	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	for _, want := range []string{dir, "another ferry process", "daemon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lock error %q does not mention %q", err, want)
		}
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	db2 := openDisk(t, dir)
	e, found, err := db2.GetFile("p", "a")
	if err != nil || !found || e.Size != 1 {
		t.Fatalf("after reopen: %+v %v %v", e, found, err)
	}
}

func TestUseAfterClose(t *testing.T) {
	db, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, _, err := db.GetFile("p", "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("GetFile after Close: %v", err)
	}
	if err := db.PutFiles("p", map[string]FileEntry{"a": {}}); !errors.Is(err, ErrClosed) {
		t.Errorf("PutFiles after Close: %v", err)
	}
	if err := db.CreateJob(&Job{Plan: "p"}); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateJob after Close: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	db := openDisk(t, dir)
	if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(keySchema, []byte{2}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for i := 0; i < 2; i++ { // the second time proves the failed Open released the lock
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "newer ferry") || errors.Is(err, ErrLocked) {
			t.Fatalf("Open of a newer schema: %v", err)
		}
	}
}

// captureHandler records log records.
type captureHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func TestBadgerLogsGoToSlog(t *testing.T) {
	h := &captureHandler{}
	db, err := Open(t.TempDir(), Options{Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recs) == 0 {
		t.Fatal("no badger log lines reached the slog logger")
	}
	for _, r := range h.recs {
		if r.Message != "badger" {
			t.Errorf("message %q, want the fixed message %q", r.Message, "badger")
		}
		if r.Level > slog.LevelDebug && r.Level != slog.LevelWarn && r.Level != slog.LevelError {
			t.Errorf("level %v", r.Level)
		}
	}
}

func TestInvalidNames(t *testing.T) {
	db := openMem(t)
	cases := []struct {
		name string
		err  error
	}{
		{"empty plan", db.PutFiles("", map[string]FileEntry{"a": {}})},
		{"NUL in plan", db.PutFiles("a\x00b", map[string]FileEntry{"a": {}})},
		{"NUL in path", db.PutFiles("p", map[string]FileEntry{"a\x00": {}})},
		{"empty path", db.DeleteFiles("p", []string{""})},
		{"bad UTF-8 path", db.PutFiles("p", map[string]FileEntry{"\xff": {}})},
		{"job without plan", db.CreateJob(&Job{})},
		{"unknown status", db.CreateJob(&Job{Plan: "p", Status: "done"})},
		{"unknown list kind", db.AppendFileRecords("j", "ok", []FileRecord{{Path: "a"}})},
		{"empty namespace", db.PutRecord("", "k", 1)},
		{"part number 0", db.PutUpload(&Upload{Plan: "p", Key: "k", UploadID: "u", Parts: []UploadPart{{Number: 0}}})},
		{"empty upload id", db.PutUpload(&Upload{Plan: "p", Key: "k"})},
	}
	for _, c := range cases {
		if !errors.Is(c.err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, c.err)
		}
	}
	// Nothing was written.
	if n, _ := db.CountFiles("p"); n != 0 {
		t.Errorf("%d entries written by refused calls", n)
	}
}

func TestFileIndex(t *testing.T) {
	db := openMem(t)
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	in := map[string]FileEntry{
		"b/c.txt":  {Size: 3, ModTime: mtime, SHA256: testSHA, DestETag: testETag, DestModTime: mtime, VerifiedAt: mtime},
		"a":        {Size: 1},
		"b/a.txt":  {Size: 2, ModTime: mtime},
		"b0":       {Size: 4},
		"ä é, \"q": {Size: 5},
	}
	if err := db.PutFiles("plan", in); err != nil {
		t.Fatal(err)
	}
	// A plan whose name extends the first must not leak into it.
	if err := db.PutFiles("plan2", map[string]FileEntry{"a": {Size: 99}}); err != nil {
		t.Fatal(err)
	}

	for path, want := range in {
		got, found, err := db.GetFile("plan", path)
		if err != nil || !found {
			t.Fatalf("GetFile(%q): found=%v err=%v", path, found, err)
		}
		assertEntryEqual(t, got, want)
	}
	if _, found, err := db.GetFile("plan", "missing"); found || err != nil {
		t.Fatalf("missing file: found=%v err=%v", found, err)
	}

	iter := func(plan, prefix string) []string {
		t.Helper()
		var paths []string
		err := db.IterateFiles(plan, prefix, func(p string, e FileEntry) error {
			if e.Size != in[p].Size && plan == "plan" {
				t.Errorf("%s: size %d", p, e.Size)
			}
			paths = append(paths, p)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return paths
	}
	tests := []struct {
		plan, prefix string
		want         string
	}{
		{"plan", "", "a,b/a.txt,b/c.txt,b0,ä é, \"q"},
		{"plan", "b/", "b/a.txt,b/c.txt"},
		{"plan", "b", "b/a.txt,b/c.txt,b0"},
		{"plan", "zzz", ""},
		{"plan2", "", "a"},
		{"nosuch", "", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(iter(tt.plan, tt.prefix), ","); got != tt.want {
			t.Errorf("IterateFiles(%q, %q) = %q, want %q", tt.plan, tt.prefix, got, tt.want)
		}
	}

	// Overwrite, delete (with an absent path), count.
	if err := db.PutFiles("plan", map[string]FileEntry{"a": {Size: 10}}); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := db.GetFile("plan", "a"); e.Size != 10 {
		t.Errorf("overwrite: size %d", e.Size)
	}
	if err := db.DeleteFiles("plan", []string{"a", "b0", "never-there"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(iter("plan", ""), ","); got != "b/a.txt,b/c.txt,ä é, \"q" {
		t.Errorf("after delete: %q", got)
	}
	if n, err := db.CountFiles("plan"); err != nil || n != 3 {
		t.Errorf("CountFiles = %d, %v", n, err)
	}

	// The callback's error comes back as-is.
	stop := errors.New("stop")
	if err := db.IterateFiles("plan", "", func(string, FileEntry) error { return stop }); err != stop {
		t.Errorf("callback error: %v", err)
	}

	if err := db.DropPlanIndex("plan"); err != nil {
		t.Fatal(err)
	}
	if got := iter("plan", ""); len(got) != 0 {
		t.Errorf("after drop: %q", got)
	}
	if got := iter("plan2", ""); len(got) != 1 {
		t.Errorf("drop of plan removed plan2's index: %q", got)
	}
}

// TestIterateFilesManyChunks crosses the scan chunk size and writes from
// inside the callback.
func TestIterateFilesManyChunks(t *testing.T) {
	db := openMem(t)
	const n = 2*scanChunk + 17
	batch := map[string]FileEntry{}
	for i := 0; i < n; i++ {
		batch[fmt.Sprintf("d/%05d", i)] = FileEntry{Size: int64(i)}
	}
	if err := db.PutFiles("p", batch); err != nil {
		t.Fatal(err)
	}
	i := 0
	err := db.IterateFiles("p", "d/", func(path string, e FileEntry) error {
		if want := fmt.Sprintf("d/%05d", i); path != want || e.Size != int64(i) {
			return fmt.Errorf("entry %d: %s %d", i, path, e.Size)
		}
		i++
		// Writing while iterating: delete the entry just seen.
		return db.DeleteFiles("p", []string{path})
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("iterated %d, want %d", i, n)
	}
	if c, _ := db.CountFiles("p"); c != 0 {
		t.Fatalf("%d left after deleting during iteration", c)
	}
}

// TestDropPlanIndexWithConcurrentWriters: writers wait for the drop
// instead of failing with badger's "writes are blocked".
func TestDropPlanIndexWithConcurrentWriters(t *testing.T) {
	db := openMem(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	done := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := db.PutFiles("other", map[string]FileEntry{fmt.Sprint(w, "/", i): {Size: 1}}); err != nil {
					errs <- err
					return
				}
				if err := db.AppendFileRecords("job", ListSuccess, []FileRecord{{Path: "x"}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 5; i++ {
		if err := db.PutFiles("p", map[string]FileEntry{"a": {}, "b": {}}); err != nil {
			t.Fatal(err)
		}
		if err := db.DropPlanIndex("p"); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer failed during drop: %v", err)
	}
	if n, _ := db.CountFiles("p"); n != 0 {
		t.Errorf("%d entries left after drop", n)
	}
}

var jobIDPattern = regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{4}$`)

func TestJobs(t *testing.T) {
	db := openMem(t)
	t0 := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

	// Three jobs in the same second, one later, one earlier, two plans.
	var created []*Job
	for i, spec := range []struct {
		plan string
		at   time.Time
	}{
		{"a", t0}, {"b", t0.Add(300 * time.Millisecond)}, {"a", t0.Add(900 * time.Millisecond)},
		{"a", t0.Add(time.Hour)}, {"b", t0.Add(-time.Hour)},
	} {
		j := &Job{Plan: spec.plan, Trigger: "manual", Status: JobRunning, Created: spec.at,
			Started: spec.at, Meta: map[string]string{"n": fmt.Sprint(i)}}
		if err := db.CreateJob(j); err != nil {
			t.Fatal(err)
		}
		if !jobIDPattern.MatchString(j.ID) {
			t.Fatalf("job id %q does not look like %s", j.ID, jobIDPattern)
		}
		created = append(created, j)
	}
	if created[0].ID != "20261123T020000Z-0001" || created[1].ID != "20261123T020000Z-0002" {
		t.Errorf("ids in one second: %s %s", created[0].ID, created[1].ID)
	}

	list := func(f JobFilter) string {
		t.Helper()
		var ns []string
		if err := db.ListJobs(f, func(j *Job) error { ns = append(ns, j.Meta["n"]); return nil }); err != nil {
			t.Fatal(err)
		}
		return strings.Join(ns, ",")
	}
	tests := []struct {
		name string
		f    JobFilter
		want string
	}{
		{"all oldest first", JobFilter{}, "4,0,1,2,3"},
		{"all newest first", JobFilter{Newest: true}, "3,2,1,0,4"},
		{"plan a", JobFilter{Plan: "a"}, "0,2,3"},
		{"plan a newest", JobFilter{Plan: "a", Newest: true}, "3,2,0"},
		{"plan b", JobFilter{Plan: "b"}, "4,1"},
		{"since", JobFilter{Since: t0.Add(500 * time.Millisecond)}, "2,3"},
		{"limit", JobFilter{Newest: true, Limit: 2}, "3,2"},
		{"plan and limit", JobFilter{Plan: "a", Limit: 1}, "0"},
		{"no such plan", JobFilter{Plan: "zz"}, ""},
		{"status", JobFilter{Status: JobCompleted}, ""},
	}
	for _, tt := range tests {
		if got := list(tt.f); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}

	// Update: counters, status, end; a changed plan moves the index.
	j := created[2]
	j.Status = JobPartial
	j.Error = "2 files failed"
	j.Ended = t0.Add(2 * time.Hour)
	j.Counters = Counters{FilesTotal: 10, FilesTransferred: 7, FilesSkipped: 1, FilesFailed: 2, BytesTotal: 1000, BytesTransferred: 700}
	j.Resumes = 1
	j.Plan = "b"
	if err := db.UpdateJob(j); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetJob(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != JobPartial || got.Error != j.Error || got.Counters != j.Counters || got.Resumes != 1 ||
		!got.Ended.Equal(j.Ended) || !got.Created.Equal(j.Created) || got.Meta["n"] != "2" || got.Trigger != "manual" {
		t.Errorf("GetJob after update: %+v", got)
	}
	if s := list(JobFilter{Plan: "a"}); s != "0,3" {
		t.Errorf("plan a after move: %q", s)
	}
	if s := list(JobFilter{Plan: "b"}); s != "4,1,2" {
		t.Errorf("plan b after move: %q", s)
	}
	if s := list(JobFilter{Status: JobPartial}); s != "2" {
		t.Errorf("status partial: %q", s)
	}

	if _, err := db.GetJob("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetJob missing: %v", err)
	}
	if err := db.UpdateJob(&Job{ID: "nope", Plan: "a", Status: JobFailed}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateJob missing: %v", err)
	}
	if err := db.CreateJob(&Job{ID: j.ID, Plan: "a"}); !errors.Is(err, ErrExists) {
		t.Errorf("CreateJob with a taken id: %v", err)
	}
	custom := &Job{ID: "my-job", Plan: "a"}
	if err := db.CreateJob(custom); err != nil || custom.ID != "my-job" || custom.Status != JobQueued || custom.Created.IsZero() {
		t.Errorf("CreateJob with an id: %+v %v", custom, err)
	}

	stop := errors.New("stop")
	if err := db.ListJobs(JobFilter{}, func(*Job) error { return stop }); err != stop {
		t.Errorf("callback error: %v", err)
	}
	if err := db.ListJobs(JobFilter{Plan: "a"}, func(*Job) error { return stop }); err != stop {
		t.Errorf("callback error with plan: %v", err)
	}
}

func TestJobIDsKeepOrderAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	db := openDisk(t, dir)
	a := &Job{Plan: "p", Created: at}
	if err := db.CreateJob(a); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDisk(t, dir)
	b := &Job{Plan: "p", Created: at}
	if err := db.CreateJob(b); err != nil {
		t.Fatal(err)
	}
	if !(a.ID < b.ID) {
		t.Fatalf("ids %s then %s", a.ID, b.ID)
	}
	if got, err := db.GetJob(a.ID); err != nil || got.Plan != "p" {
		t.Fatalf("job from before reopen: %+v %v", got, err)
	}
}

func TestConcurrentCreateJob(t *testing.T) {
	db := openMem(t)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	ids := make([]string, 50)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := &Job{Plan: "p", Created: at}
			if err := db.CreateJob(j); err != nil {
				t.Error(err)
			}
			ids[i] = j.ID
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestFileLists(t *testing.T) {
	db := openMem(t)
	j := &Job{Plan: "p", Status: JobRunning}
	if err := db.CreateJob(j); err != nil {
		t.Fatal(err)
	}
	ok1 := []FileRecord{{Path: "b", Size: 2, SHA256: testSHA}, {Path: "a", Size: 1}}
	ok2 := []FileRecord{{Path: "c", Size: 3}}
	skipped := []FileRecord{{Path: `a\b`, Reason: "name contains a backslash"}}
	failed := []FileRecord{{Path: "d", Size: 4, Reason: "permission denied"}}
	for _, step := range []struct {
		kind ListKind
		recs []FileRecord
	}{{ListSuccess, ok1}, {ListSkipped, skipped}, {ListSuccess, ok2}, {ListFailed, failed}, {ListFailed, nil}} {
		if err := db.AppendFileRecords(j.ID, step.kind, step.recs); err != nil {
			t.Fatal(err)
		}
	}
	read := func(id string, kind ListKind) []FileRecord {
		t.Helper()
		var out []FileRecord
		if err := db.IterateFileRecords(id, kind, func(r FileRecord) error { out = append(out, r); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := map[ListKind][]FileRecord{ListSuccess: append(append([]FileRecord{}, ok1...), ok2...), ListSkipped: skipped, ListFailed: failed}
	for kind, w := range want {
		got := read(j.ID, kind)
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s list: %+v, want %+v", kind, got, w)
		}
		if n, err := db.CountFileRecords(j.ID, kind); err != nil || n != int64(len(w)) {
			t.Errorf("%s count: %d %v", kind, n, err)
		}
	}
	if got := read("other-job", ListSuccess); len(got) != 0 {
		t.Errorf("records of an unknown job: %v", got)
	}

	if err := db.DeleteJob(j.ID); err != nil {
		t.Fatal(err)
	}
	for kind := range want {
		if n, _ := db.CountFileRecords(j.ID, kind); n != 0 {
			t.Errorf("%s list survived DeleteJob: %d", kind, n)
		}
	}
	if _, err := db.GetJob(j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("job survived DeleteJob: %v", err)
	}
	if err := db.DeleteJob(j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteJob: %v", err)
	}
	if s := fmt.Sprint(jobsOf(t, db, "p")); s != "[]" {
		t.Errorf("plan index survived DeleteJob: %s", s)
	}
}

func jobsOf(t *testing.T, db *DB, plan string) []string {
	t.Helper()
	var ids []string
	if err := db.ListJobs(JobFilter{Plan: plan}, func(j *Job) error { ids = append(ids, j.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestConcurrentAppend: many writers append at once; every record is kept
// once, each call's records are contiguous and in order, and each writer's
// calls are in the order it made them.
func TestConcurrentAppend(t *testing.T) {
	db := openMem(t)
	const writers, calls, per = 8, 50, 7
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				recs := make([]FileRecord, per)
				for i := range recs {
					recs[i] = FileRecord{Path: fmt.Sprintf("w%d/c%03d/r%d", w, c, i), Size: int64(i)}
				}
				if err := db.AppendFileRecords("job", ListSuccess, recs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	var got []FileRecord
	if err := db.IterateFileRecords("job", ListSuccess, func(r FileRecord) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*calls*per {
		t.Fatalf("%d records, want %d", len(got), writers*calls*per)
	}
	lastCall := map[int]int{}
	for i := 0; i < len(got); i += per {
		var w, c, r int
		if _, err := fmt.Sscanf(got[i].Path, "w%d/c%d/r%d", &w, &c, &r); err != nil || r != 0 {
			t.Fatalf("record %d %q does not start a call", i, got[i].Path)
		}
		for k := 1; k < per; k++ {
			if want := fmt.Sprintf("w%d/c%03d/r%d", w, c, k); got[i+k].Path != want {
				t.Fatalf("record %d is %q, want %q: a call was split or reordered", i+k, got[i+k].Path, want)
			}
		}
		if prev, ok := lastCall[w]; ok && c != prev+1 {
			t.Fatalf("writer %d: call %d after call %d", w, c, prev)
		}
		lastCall[w] = c
	}
	if n, _ := db.CountFileRecords("job", ListSuccess); n != writers*calls*per {
		t.Fatalf("count %d", n)
	}
}

func TestFileListOrderAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDisk(t, dir)
	if err := db.AppendFileRecords("j", ListFailed, []FileRecord{{Path: "1"}, {Path: "2"}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDisk(t, dir)
	if err := db.AppendFileRecords("j", ListFailed, []FileRecord{{Path: "3"}}); err != nil {
		t.Fatal(err)
	}
	var paths []string
	db.IterateFileRecords("j", ListFailed, func(r FileRecord) error { paths = append(paths, r.Path); return nil })
	if s := strings.Join(paths, ","); s != "1,2,3" {
		t.Fatalf("order after reopen: %s", s)
	}
}

func TestSweepJobs(t *testing.T) {
	db := openMem(t)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	specs := []struct {
		status  string
		created time.Time
		ended   time.Time
		kept    bool
	}{
		{JobCompleted, now.Add(-200 * day), now.Add(-200 * day), false},
		{JobFailed, now.Add(-190 * day), time.Time{}, false},        // no end: counts from creation
		{JobPartial, now.Add(-200 * day), now.Add(-10 * day), true}, // ended recently
		{JobRunning, now.Add(-400 * day), time.Time{}, true},        // never swept while running
		{JobQueued, now.Add(-400 * day), time.Time{}, true},         // nor queued
		{JobCanceled, now.Add(-181 * day), now.Add(-180*day - time.Second), false},
		{JobCompleted, now.Add(-1 * day), now, true},
	}
	var ids []string
	for _, s := range specs {
		j := &Job{Plan: "p", Status: s.status, Created: s.created, Ended: s.ended}
		if err := db.CreateJob(j); err != nil {
			t.Fatal(err)
		}
		if err := db.AppendFileRecords(j.ID, ListSuccess, []FileRecord{{Path: "x"}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	n, err := db.SweepJobs(now.Add(-180 * day))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("swept %d, want 3", n)
	}
	for i, s := range specs {
		_, err := db.GetJob(ids[i])
		recs, _ := db.CountFileRecords(ids[i], ListSuccess)
		if s.kept && (err != nil || recs != 1) {
			t.Errorf("job %d (%s) should be kept: %v, %d records", i, s.status, err, recs)
		}
		if !s.kept && (!errors.Is(err, ErrNotFound) || recs != 0) {
			t.Errorf("job %d (%s) should be swept: %v, %d records", i, s.status, err, recs)
		}
	}
}

func TestUploads(t *testing.T) {
	db := openMem(t)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &Upload{Plan: "p", Key: "big/disk.img", UploadID: "upload-1", Size: 300 << 20, ModTime: mtime,
		PartSize: 16 << 20, SourceSHA256State: []byte{1, 2, 3},
		Parts: []UploadPart{{Number: 2, Size: 16 << 20, SHA256: testSHA, ETag: "e2"}, {Number: 1, Size: 16 << 20, ETag: "e1"}}}
	if err := db.PutUpload(u); err != nil {
		t.Fatal(err)
	}
	if err := db.PutUploadPart("p", "big/disk.img", "upload-1", UploadPart{Number: 3, Size: 5, ETag: "e3"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.PutUploadPart("p", "big/disk.img", "other-id", UploadPart{Number: 4}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("part for another upload id: %v", err)
	}
	if err := db.PutUploadPart("p", "nothing", "upload-1", UploadPart{Number: 1}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("part for no upload: %v", err)
	}

	got, found, err := db.GetUpload("p", "big/disk.img")
	if err != nil || !found {
		t.Fatalf("GetUpload: %v %v", found, err)
	}
	if got.UploadID != "upload-1" || got.Size != u.Size || got.PartSize != u.PartSize || !got.ModTime.Equal(mtime) ||
		!bytes.Equal(got.SourceSHA256State, []byte{1, 2, 3}) || got.Created.IsZero() || got.Plan != "p" || got.Key != "big/disk.img" {
		t.Errorf("GetUpload: %+v", got)
	}
	if s := fmt.Sprint(got.Parts); s != fmt.Sprint([]UploadPart{{1, 16 << 20, "", "e1"}, {2, 16 << 20, testSHA, "e2"}, {3, 5, "", "e3"}}) {
		t.Errorf("parts: %s", s)
	}

	// A new upload of the same key replaces the old one and all its parts.
	if err := db.PutUpload(&Upload{Plan: "p", Key: "big/disk.img", UploadID: "upload-2"}); err != nil {
		t.Fatal(err)
	}
	got, _, _ = db.GetUpload("p", "big/disk.img")
	if got.UploadID != "upload-2" || len(got.Parts) != 0 {
		t.Errorf("replaced upload: %+v", got)
	}

	for _, k := range []string{"a", "c", "b"} {
		if err := db.PutUpload(&Upload{Plan: "q", Key: k, UploadID: "id-" + k, Parts: []UploadPart{{Number: 1, ETag: k}}}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	err = db.ListUploads("q", func(u *Upload) error {
		if len(u.Parts) != 1 || u.Parts[0].ETag != u.Key {
			t.Errorf("upload %s parts %+v", u.Key, u.Parts)
		}
		keys = append(keys, u.Key)
		return db.DeleteUpload(u.Plan, u.Key) // writing from the callback
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(keys, ","); s != "a,b,c" {
		t.Errorf("ListUploads order: %s", s)
	}
	if err := db.ListUploads("q", func(u *Upload) error { return fmt.Errorf("left: %s", u.Key) }); err != nil {
		t.Error(err)
	}
	if err := db.DeleteUpload("p", "big/disk.img"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := db.GetUpload("p", "big/disk.img"); found {
		t.Error("upload survived DeleteUpload")
	}
	if err := db.DeleteUpload("p", "big/disk.img"); err != nil {
		t.Errorf("deleting an absent upload: %v", err)
	}
	// No part keys are left behind.
	var left int
	db.scan([]byte{pPart}, false, true, func(_, _ []byte) error { left++; return nil })
	if left != 0 {
		t.Errorf("%d part keys left", left)
	}
}

func TestRecords(t *testing.T) {
	db := openMem(t)
	type ledger struct {
		SHA256    string    `json:"sha256"`
		Processed time.Time `json:"processed"`
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, k := range []string{"plan1/b.csv", "plan1/a.csv", "plan2/c.csv"} {
		if err := db.PutRecord("changelist", k, ledger{SHA256: k, Processed: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutRecord("other", "plan1/x", 1); err != nil {
		t.Fatal(err)
	}
	var l ledger
	if found, err := db.GetRecord("changelist", "plan1/a.csv", &l); err != nil || !found || l.SHA256 != "plan1/a.csv" || !l.Processed.Equal(at) {
		t.Fatalf("GetRecord: %v %v %+v", found, err, l)
	}
	if found, err := db.GetRecord("changelist", "nope", &l); err != nil || found {
		t.Fatalf("GetRecord missing: %v %v", found, err)
	}
	var keys []string
	err := db.IterateRecords("changelist", "plan1/", func(k string, raw []byte) error {
		keys = append(keys, k+"="+string(raw[:10]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(keys, " "); s != `plan1/a.csv={"sha256": plan1/b.csv={"sha256":` {
		t.Errorf("IterateRecords: %s", s)
	}

	created, err := db.CreateRecord("claim", "inbox/list.csv", "host-a")
	if err != nil || !created {
		t.Fatalf("first CreateRecord: %v %v", created, err)
	}
	created, err = db.CreateRecord("claim", "inbox/list.csv", "host-b")
	var owner string
	db.GetRecord("claim", "inbox/list.csv", &owner)
	if err != nil || created || owner != "host-a" {
		t.Fatalf("second CreateRecord: %v %v, owner %q", created, err, owner)
	}

	if err := db.DeleteRecord("changelist", "plan1/a.csv"); err != nil {
		t.Fatal(err)
	}
	if found, _ := db.GetRecord("changelist", "plan1/a.csv", &l); found {
		t.Error("record survived DeleteRecord")
	}
	if err := db.DeleteRecord("changelist", "plan1/a.csv"); err != nil {
		t.Errorf("deleting an absent record: %v", err)
	}
	if err := db.PutRecord("ns", "k", func() {}); err == nil {
		t.Error("a value JSON cannot encode was stored")
	}
	stop := errors.New("stop")
	if err := db.IterateRecords("changelist", "", func(string, []byte) error { return stop }); err != stop {
		t.Errorf("callback error: %v", err)
	}
}

// TestLargeRecordSurvivesReopen: a value above the LSM threshold goes to
// the value log, which value-log GC must leave readable.
func TestLargeRecordSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDisk(t, dir)
	big := strings.Repeat("x", 3*valueThreshold)
	if err := db.PutRecord("backup", "catalog", big); err != nil {
		t.Fatal(err)
	}
	db.valueLogGC()
	db.Close()
	db = openDisk(t, dir)
	var got string
	if found, err := db.GetRecord("backup", "catalog", &got); err != nil || !found || got != big {
		t.Fatalf("large record after reopen: found=%v err=%v len=%d", found, err, len(got))
	}
}

func TestDiskSize(t *testing.T) {
	db := openDisk(t, t.TempDir())
	n, err := db.DiskSize()
	if err != nil || n <= 0 {
		t.Fatalf("DiskSize = %d, %v", n, err)
	}
	if n, _ := openMem(t).DiskSize(); n != 0 {
		t.Fatalf("in-memory DiskSize = %d", n)
	}
}

// TestListJobsManyChunks: newest-first listing crosses scan chunks in
// reverse without losing or repeating a job; so does a record iteration.
func TestListJobsManyChunks(t *testing.T) {
	db := openMem(t)
	const n = 2*scanChunk + 3
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		// Spread over seconds and within seconds.
		if err := db.CreateJob(&Job{Plan: "p", Created: at.Add(time.Duration(i) * 300 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		if err := db.PutRecord("ns", fmt.Sprintf("k%05d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []JobFilter{{Newest: true}, {Newest: true, Plan: "p"}, {}, {Plan: "p"}} {
		var ids []string
		if err := db.ListJobs(f, func(j *Job) error { ids = append(ids, j.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(ids) != n {
			t.Fatalf("%+v: %d jobs, want %d", f, len(ids), n)
		}
		for i := 1; i < len(ids); i++ {
			if (f.Newest && ids[i] >= ids[i-1]) || (!f.Newest && ids[i] <= ids[i-1]) {
				t.Fatalf("%+v: %s after %s", f, ids[i], ids[i-1])
			}
		}
	}
	i := 0
	err := db.IterateRecords("ns", "k", func(k string, raw []byte) error {
		if want := fmt.Sprintf("k%05d", i); k != want || string(raw) != fmt.Sprint(i) {
			return fmt.Errorf("record %d: %s=%s", i, k, raw)
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("IterateRecords: %d records, %v", i, err)
	}
}

func TestClearFileRecords(t *testing.T) {
	db := openMem(t)
	for _, kind := range []ListKind{ListSuccess, ListSkipped, ListFailed} {
		if err := db.AppendFileRecords("job", kind, []FileRecord{{Path: "a"}, {Path: "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AppendFileRecords("job2", ListFailed, []FileRecord{{Path: "c"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.ClearFileRecords("job", ListFailed); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		job  string
		kind ListKind
		want int64
	}{{"job", ListSuccess, 2}, {"job", ListSkipped, 2}, {"job", ListFailed, 0}, {"job2", ListFailed, 1}} {
		if n, err := db.CountFileRecords(c.job, c.kind); err != nil || n != c.want {
			t.Errorf("%s %s: %d records, %v; want %d", c.job, c.kind, n, err, c.want)
		}
	}
	// Appending after a clear keeps working and keeps order.
	if err := db.AppendFileRecords("job", ListFailed, []FileRecord{{Path: "x"}, {Path: "y"}}); err != nil {
		t.Fatal(err)
	}
	var paths []string
	db.IterateFileRecords("job", ListFailed, func(r FileRecord) error { paths = append(paths, r.Path); return nil })
	if s := strings.Join(paths, ","); s != "x,y" {
		t.Errorf("after clear and append: %s", s)
	}
	if err := db.ClearFileRecords("job", "bogus"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad kind: %v", err)
	}
}

// TestUploadProgress: the way a resumable transfer records progress, with
// PutUpload after every part or with PutUploadPart; the hash state always
// matches the parts.
func TestUploadProgress(t *testing.T) {
	db := openMem(t)
	u := &Upload{Plan: "p", Key: "k", UploadID: "id1", Size: 10, PartSize: 2}
	if err := db.PutUpload(u); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		u.Parts = append(u.Parts, UploadPart{Number: n, Size: 2, ETag: fmt.Sprint("e", n)})
		u.SourceSHA256State = []byte{byte(n)}
		if err := db.PutUpload(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutUploadPart("p", "k", "id1", UploadPart{Number: 4, Size: 2, ETag: "e4"}, []byte{4}); err != nil {
		t.Fatal(err)
	}
	got, _, err := db.GetUpload("p", "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parts) != 4 || got.Parts[3].ETag != "e4" || !bytes.Equal(got.SourceSHA256State, []byte{4}) {
		t.Fatalf("after progress: %+v", got)
	}
	// PutUpload with a shorter list drops the parts it no longer has.
	got.Parts = got.Parts[:2]
	if err := db.PutUpload(got); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := db.GetUpload("p", "k"); len(again.Parts) != 2 {
		t.Fatalf("parts after shrinking: %+v", again.Parts)
	}
	if err := db.PutUpload(&Upload{Plan: "p", Key: "k", UploadID: "id2", Parts: []UploadPart{{Number: 1}, {Number: 1}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate part numbers: %v", err)
	}

	// Parts orphaned by a DeleteUpload that a crash cut short (header gone,
	// parts left) are removed by the next PutUpload of the key.
	if err := db.update(func(txn *badger.Txn) error { return txn.Delete(uploadKey("p", "k")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.PutUpload(&Upload{Plan: "p", Key: "k", UploadID: "id3", Parts: []UploadPart{{Number: 1, ETag: "new"}}}); err != nil {
		t.Fatal(err)
	}
	var keys int
	db.scan([]byte{pPart}, false, true, func(_, _ []byte) error { keys++; return nil })
	if keys != 1 {
		t.Errorf("%d part keys stored, want only the new upload's one", keys)
	}
}
