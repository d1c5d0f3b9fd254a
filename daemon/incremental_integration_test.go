//go:build linux

package daemon

// Integration tests of incremental sync through the real `ferry daemon`:
// changelists dropped into a local inbox and into source:/changelist on
// MinIO, and a watched local source. They use the fixture of
// integration_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/state"
)

// dropList puts a changelist into a local inbox as the docs ask writers
// to: under a hidden name first, then renamed into place.
func dropList(t *testing.T, inbox, name, content string) {
	t.Helper()
	tmp := filepath.Join(inbox, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond until it holds; after waitLimit it fails the test
// with what() saying what was seen instead.
func waitUntil(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// waitPath waits until path exists.
func waitPath(t *testing.T, path string) {
	t.Helper()
	waitUntil(t, func() string {
		return fmt.Sprintf("%s never appeared; its directory holds %v", path, dirNames(filepath.Dir(path)))
	}, func() bool { return exists(path) })
}

func dirNames(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []string{err.Error()}
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// liveTree maps each regular file under dir (slash path) to its content.
// Unlike treeDigest it tolerates a tree that changes while it is read:
// files that vanish are left out; a local store's temporary files are
// ignored.
func liveTree(dir string) map[string]string {
	out := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), localTempPrefix) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	return out
}

// sameTree reports whether dst holds exactly src's files with the same
// content, and if not, how they differ.
func sameTree(src, dst string) (bool, string) {
	a, b := liveTree(src), liveTree(dst)
	var diff []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			diff = append(diff, "missing at the destination: "+k)
		} else if w != v {
			diff = append(diff, "different content: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, "only at the destination: "+k)
		}
	}
	slices.Sort(diff)
	return len(diff) == 0, strings.Join(diff, "; ")
}

// assertHolds fails unless dst holds exactly the files want (slash paths)
// with the content they have in src.
func assertHolds(t *testing.T, src, dst string, want ...string) {
	t.Helper()
	srcFiles, _ := treeDigest(t, src)
	dstFiles, temps := treeDigest(t, dst)
	var got []string
	for k, sum := range dstFiles {
		got = append(got, k)
		if srcFiles[k] != sum {
			t.Errorf("destination file %s does not have the source's content", k)
		}
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("destination holds %q, want exactly %q", got, want)
	}
	if len(temps) > 0 {
		t.Errorf("temporary files left at the destination: %v", temps)
	}
}

// cliJobs is `ferry job list --json`.
func (f *fixture) cliJobs() []*state.Job {
	f.t.Helper()
	var jobs []*state.Job
	if err := json.Unmarshal([]byte(f.mustFerry("job", "list", "--json")), &jobs); err != nil {
		f.t.Fatalf("job list --json: %v", err)
	}
	return jobs
}

// fileRecord is one entry of `ferry job files ID --list KIND --format json`.
type fileRecord struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Reason string `json:"reason"`
}

func (f *fixture) cliJobFiles(id string, kind state.ListKind) []fileRecord {
	f.t.Helper()
	var recs []fileRecord
	out := f.mustFerry("job", "files", id, "--list", string(kind), "--format", "json")
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		f.t.Fatalf("job files %s --list %s: %v\n%s", id, kind, err, out)
	}
	return recs
}

// waitIdle waits until the plan has no job running or queued, and returns
// its jobs, oldest first.
func (f *fixture) waitIdle(c *Client, plan string) []*state.Job {
	f.t.Helper()
	var jobs []*state.Job
	waitUntil(f.t, func() string { return fmt.Sprintf("plan %s still busy: %+v", plan, jobs) }, func() bool {
		jobs = f.planJobs(c, plan)
		for _, j := range jobs {
			if !terminal(j.Status) {
				return false
			}
		}
		return true
	})
	return jobs
}

// jobsWithTrigger returns the jobs of trigger.
func jobsWithTrigger(jobs []*state.Job, trigger string) []*state.Job {
	var out []*state.Job
	for _, j := range jobs {
		if j.Trigger == trigger {
			out = append(out, j)
		}
	}
	return out
}

var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// 1. A local inbox: a list syncs exactly its files and moves to done/; the
// same content again is a rejected duplicate; a broken list is rejected
// whole; a hostile row is skipped with the list's name and line while the
// good rows run, and nothing is written outside the destination.
func TestDaemonChangelistLocalInbox(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src, dst, inbox := f.mkdir("src"), f.mkdir("out", "dst"), f.mkdir("inbox")
	writeTree(t, src, 40, 512, 21)
	if err := os.MkdirAll(filepath.Join(src, "special"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "special", "report, final.txt"), []byte("a name with a comma\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// What a row escaping the source would reach: the source's sibling.
	if err := os.WriteFile(f.path("escape.txt"), []byte("outside the source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.writeConfig(planTOML("inbox", src, dst, fmt.Sprintf("changelist = %q", inbox)))
	p := f.startDaemon()

	// A list of three files: one with a leading "/", one quoted because
	// its name holds a comma.
	first := "d00/file-00000.bin\n/d01/file-00001.bin\n\"special/report, final.txt\"\n"
	dropList(t, inbox, "first.csv", first)
	waitPath(t, filepath.Join(inbox, "done", "first.csv"))
	assertHolds(t, src, dst, "d00/file-00000.bin", "d01/file-00001.bin", "special/report, final.txt")
	if exists(filepath.Join(inbox, "first.csv")) || exists(filepath.Join(inbox, "first.csv.processing")) {
		t.Errorf("the processed list is still in the inbox: %v", dirNames(inbox))
	}
	jobs := f.cliJobs()
	if len(jobs) != 1 {
		t.Fatalf("job list shows %d jobs after one list, want 1: %+v", len(jobs), jobs)
	}
	j := jobs[0]
	if j.Plan != "inbox" || j.Trigger != TriggerChangelist || j.Status != state.JobCompleted {
		t.Errorf("job %+v: want plan inbox, trigger changelist, completed", j)
	}
	if j.Meta["kind"] != "incremental" || j.Meta["origin"] != "changelist first.csv" {
		t.Errorf("job meta %v: want an incremental job from changelist first.csv", j.Meta)
	}
	if c := j.Counters; c.FilesTransferred != 3 || c.FilesTotal != 3 || c.FilesFailed != 0 || c.FilesSkipped != 0 {
		t.Errorf("job counters %+v: want exactly the 3 listed files transferred", c)
	}

	// The same content under another name is a duplicate: rejected, with
	// the list it repeats and when that was processed.
	dropList(t, inbox, "again.csv", first)
	waitPath(t, filepath.Join(inbox, "rejected", "again.csv"))
	waitPath(t, filepath.Join(inbox, "rejected", "again.csv.error"))
	msg, err := os.ReadFile(filepath.Join(inbox, "rejected", "again.csv.error"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(msg); !strings.Contains(s, "duplicate") || !strings.Contains(s, "first.csv") || !rfc3339.MatchString(s) {
		t.Errorf("again.csv.error says %q; want that it is a duplicate of first.csv and when that was processed", s)
	}

	// A structurally broken list: rejected whole, the .error names the
	// line, and its valid first row is not synced.
	dropList(t, inbox, "broken.csv", "d02/file-00002.bin\n\"d03/file-00003.bin\nd04/file-00004.bin\n")
	waitPath(t, filepath.Join(inbox, "rejected", "broken.csv.error"))
	waitPath(t, filepath.Join(inbox, "rejected", "broken.csv"))
	msg, err = os.ReadFile(filepath.Join(inbox, "rejected", "broken.csv.error"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(msg); !strings.Contains(s, "broken.csv") || !strings.Contains(s, "line 2") {
		t.Errorf("broken.csv.error says %q; want it to name the list and line 2, where the quote starts", s)
	}
	if n := len(f.cliJobs()); n != 1 {
		t.Errorf("%d jobs after a duplicate and a broken list; want still 1 (neither runs a job)", n)
	}
	assertHolds(t, src, dst, "d00/file-00000.bin", "d01/file-00001.bin", "special/report, final.txt")

	// A list with hostile rows and a good one: the good one syncs, the
	// hostile ones are skipped with the list's name and line.
	dropList(t, inbox, "hostile.csv", "../../etc/passwd\n../escape.txt\nd05/file-00005.bin\n")
	waitPath(t, filepath.Join(inbox, "done", "hostile.csv"))
	assertHolds(t, src, dst, "d00/file-00000.bin", "d01/file-00001.bin", "special/report, final.txt", "d05/file-00005.bin")
	jobs = jobsWithTrigger(f.cliJobs(), TriggerChangelist)
	if len(jobs) != 2 {
		t.Fatalf("%d changelist jobs, want 2 (first.csv and hostile.csv): %+v", len(jobs), jobs)
	}
	var hostile *state.Job
	for _, j := range jobs {
		if j.Meta["origin"] == "changelist hostile.csv" {
			hostile = j
		}
	}
	if hostile == nil {
		t.Fatalf("no job from changelist hostile.csv among %+v", jobs)
	}
	if hostile.Status != state.JobCompleted || hostile.Counters.FilesTransferred != 1 || hostile.Counters.FilesSkipped != 2 {
		t.Errorf("hostile.csv job %s: %s, counters %+v; want completed, 1 transferred, 2 skipped", hostile.ID, hostile.Status, hostile.Counters)
	}
	skipped := map[string]string{}
	for _, r := range f.cliJobFiles(hostile.ID, state.ListSkipped) {
		skipped[r.Path] = r.Reason
	}
	for path, line := range map[string]string{"../../etc/passwd": "line 1", "../escape.txt": "line 2"} {
		reason, ok := skipped[path]
		if !ok {
			t.Errorf("skipped list %v lacks %s", skipped, path)
			continue
		}
		if !strings.Contains(reason, "changelist hostile.csv "+line) || !strings.Contains(reason, "..") {
			t.Errorf("skipped %s: reason %q; want the list's name, %s and the \"..\" rule", path, reason, line)
		}
	}
	if len(skipped) != 2 {
		t.Errorf("skipped list %v, want exactly the two hostile rows", skipped)
	}
	// Nothing outside the destination: its parent holds only it, and no
	// etc/ appeared above it.
	if names := dirNames(f.path("out")); !slices.Equal(names, []string{"dst"}) {
		t.Errorf("the destination's parent holds %v, want only dst", names)
	}
	for _, p := range []string{f.path("etc"), f.path("out", "escape.txt"), f.path("out", "etc")} {
		if exists(p) {
			t.Errorf("%s was written outside the destination", p)
		}
	}
	if b, err := os.ReadFile(f.path("escape.txt")); err != nil || string(b) != "outside the source\n" {
		t.Errorf("the file beside the source changed: %q, %v", b, err)
	}
	if l := p.log(); !strings.Contains(l, "changelist rejected") {
		t.Errorf("the daemon log does not mention the rejected lists")
	}
}

// 2. A remote inbox at source:/changelist on MinIO: a list object syncs
// exactly its files and moves to changelist/done/; the inbox's objects are
// never copied, not even by a full run.
func TestDaemonChangelistRemoteInbox(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	f := newFixture(t)
	bucket := srv.NewBucket(t)
	dst := f.mkdir("dst")
	f.writeConfig(fmt.Sprintf(`[remotes.s3r]
type = "s3"
endpoint = %q
bucket = %q
region = %q
tls = %v
credential = "minio"

[credentials.minio]
access_key = %q
secret_key = %q

`, srv.Endpoint, bucket, srv.Region, srv.TLS, srv.AccessKey, srv.SecretKey) +
		planTOML("remote", "s3r:data", dst, `changelist = "source:/changelist"`, `changelist_poll = "1s"`))
	if fi, err := os.Stat(f.cfg); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config %s: %v, %v; want mode 0600 (it holds an inline secret)", f.cfg, fi, err)
	}

	mc, err := minio.New(srv.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Secure: srv.TLS, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	put := func(key, content string) {
		t.Helper()
		if _, err := mc.PutObject(ctx, bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	objectExists := func(key string) bool {
		_, err := mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Fatalf("stat %s: %v", key, err)
		}
		return err == nil
	}
	srcFiles := map[string]string{
		"a.txt":             "alpha\n",
		"dir/b.txt":         "bravo\n",
		"sp ace, comma.txt": "charlie\n",
		"unlisted.txt":      "not in the list\n",
	}
	for k, v := range srcFiles {
		put("data/"+k, v)
	}

	p := f.startDaemon()
	// The list names three files, one of them quoted, and its own key,
	// which lies under the reserved inbox prefix.
	put("data/changelist/list1.csv", "path,op\na.txt,upsert\n/dir/b.txt,M\n\"sp ace, comma.txt\",\nchangelist/list1.csv,\n")
	waitUntil(t, func() string { return "data/changelist/done/list1.csv never appeared\n" + p.log() },
		func() bool { return objectExists("data/changelist/done/list1.csv") })
	waitUntil(t, func() string { return "data/changelist/list1.csv is still in the inbox" },
		func() bool { return !objectExists("data/changelist/list1.csv") })

	want := func(keys ...string) {
		t.Helper()
		got := liveTree(dst)
		var names []string
		for k, v := range got {
			names = append(names, k)
			if srcFiles[k] != v {
				t.Errorf("destination %s holds %q, want the source's %q", k, v, srcFiles[k])
			}
		}
		slices.Sort(names)
		slices.Sort(keys)
		if !slices.Equal(names, keys) {
			t.Errorf("destination holds %q, want exactly %q", names, keys)
		}
	}
	want("a.txt", "dir/b.txt", "sp ace, comma.txt")

	c := f.client()
	jobs := f.waitIdle(c, "remote")
	if len(jobs) != 1 || jobs[0].Trigger != TriggerChangelist || jobs[0].Status != state.JobCompleted ||
		jobs[0].Meta["origin"] != "changelist list1.csv" {
		t.Fatalf("plan remote has jobs %+v; want one completed changelist job from list1.csv", jobs)
	}
	if cs := jobs[0].Counters; cs.FilesTransferred != 3 || cs.FilesFailed != 0 {
		t.Errorf("changelist job counters %+v: want 3 transferred", cs)
	}

	// A full run copies the rest of the source but still nothing of the
	// inbox (changelist/done/list1.csv is there now).
	f.mustFerry("plan", "run", "remote", "--wait")
	want("a.txt", "dir/b.txt", "sp ace, comma.txt", "unlisted.txt")
	if exists(filepath.Join(dst, "changelist")) {
		t.Errorf("the inbox prefix was copied to the destination: %v", dirNames(filepath.Join(dst, "changelist")))
	}
}

// 3. A watched local source: a new file, a modified file, a file in a new
// directory, a renamed file and a renamed directory each reach the
// destination (with delete = true the old names go), by jobs with trigger
// watch; after the first, full one they are incremental.
func TestDaemonWatchedSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src, dst := f.mkdir("src"), f.mkdir("dst")
	writeTree(t, src, 20, 256, 31)
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modify.txt", "before\n")
	write("rename-me.txt", "moving\n")
	write("olddir/x1.txt", "x1\n")
	write("olddir/sub/x2.txt", "x2\n")
	f.writeConfig(planTOML("watched", src, dst, "watch = true", `watch_delay = "200ms"`, `watch_max_delay = "1s"`,
		"delete = true", `max_delete = "100%"`))
	f.startDaemon()
	c := f.client()

	// Watching starts with a full scan.
	waitUntil(t, func() string { _, d := sameTree(src, dst); return "initial scan: " + d }, func() bool {
		ok, _ := sameTree(src, dst)
		return ok
	})
	jobs := f.waitIdle(c, "watched")
	if len(jobs) < 1 || jobs[0].Meta["kind"] != "full" || jobs[0].Status != state.JobCompleted {
		t.Fatalf("jobs after watching started: %+v; want a completed full scan first", jobs)
	}
	initial := len(jobs)

	waitSynced := func(what string) {
		t.Helper()
		var diff string
		waitUntil(t, func() string { return what + ": " + diff }, func() bool {
			var ok bool
			ok, diff = sameTree(src, dst)
			return ok
		})
	}
	// A new file, a modified file (another size), and a file in a
	// directory made just now.
	write("new.txt", "brand new\n")
	write("modify.txt", "after, and longer\n")
	write("fresh/deep/in-new-dir.txt", "in a new directory\n")
	waitSynced("new, modified and new-directory files")

	// A renamed file and a renamed directory: the new names appear, the
	// old ones go (delete = true).
	if err := os.Rename(filepath.Join(src, "rename-me.txt"), filepath.Join(src, "renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(src, "olddir"), filepath.Join(src, "newdir")); err != nil {
		t.Fatal(err)
	}
	waitSynced("renames")
	// The files match as soon as the job has deleted the old ones; the
	// directories they leave empty go right after, before the job ends.
	jobs = f.waitIdle(c, "watched")
	for _, gone := range []string{"rename-me.txt", "olddir"} {
		if exists(filepath.Join(dst, gone)) {
			t.Errorf("%s is still at the destination after its rename", gone)
		}
	}

	var incremental, deleted int
	for _, j := range jobs {
		if j.Trigger != TriggerWatch {
			t.Errorf("job %s has trigger %q; only the watcher runs this plan", j.ID, j.Trigger)
		}
		if j.Status != state.JobCompleted {
			t.Errorf("job %s ended %s (%s), want completed", j.ID, j.Status, j.Error)
		}
		if j.Meta["kind"] == "incremental" {
			incremental++
			deleted += int(j.Counters.FilesDeleted)
			if j.Counters.FilesTotal >= 20 {
				t.Errorf("incremental job %s considered %d files; it should touch only the changed ones", j.ID, j.Counters.FilesTotal)
			}
		}
	}
	if len(jobs) <= initial || incremental < 2 {
		t.Errorf("%d jobs (%d incremental) after two rounds of changes; want at least one incremental job per round", len(jobs), incremental)
	}
	if deleted != 3 {
		t.Errorf("incremental jobs deleted %d files, want 3 (rename-me.txt, olddir/x1.txt, olddir/sub/x2.txt)", deleted)
	}
	// The skipped lists stay empty: no path was both deleted and kept.
	for _, j := range jobs {
		if recs := f.cliJobFiles(j.ID, state.ListSkipped); len(recs) > 0 {
			t.Errorf("job %s skipped %+v", j.ID, recs)
		}
	}
}
