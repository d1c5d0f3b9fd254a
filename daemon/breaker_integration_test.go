//go:build linux

package daemon

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/state"
)

// unreachableBound is the acceptance bound: a job whose destination died
// ends within it (the breaker's default window is 60 s). It is an upper
// bound only, not a performance expectation.
const unreachableBound = 2 * time.Minute

// A MinIO destination stopped in the middle of a daemon job of 2,000 small
// files: the job ends failed within two minutes, naming the remote, with
// job_failed and one remote_unreachable (raised by the job: the health
// probes are too slow here to see the outage); `ferry job show` says why.
// Once MinIO is back, the next run copies the rest and sends nothing the
// first job recorded as done.
func TestDaemonDestinationDiesMidJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv := testenv.StoppableMinIO(t)
	bucket := srv.NewBucket(t)
	hook := newWebhook(t)

	const n = 2000
	src := f.mkdir("src")
	writeTree(t, src, n, 1024, 11)
	f.writeConfig(minioRemoteTOML(srv, bucket, hook.URL) +
		planTOML("offsite", src, "minio:backup/", "workers = 4", "max_files_per_task = 20"))
	// One probe at the start, none during the outage.
	f.startDaemon("FERRY_TEST_PROBE_EVERY=1h")
	c := f.client()
	ctx := context.Background()

	id, err := c.RunPlan(ctx, "offsite")
	if err != nil {
		t.Fatal(err)
	}
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if terminal(j.Status) {
			t.Fatalf("the job ended before MinIO was stopped: %s (%s)", j.Status, j.Error)
		}
		if j.Counters.FilesTransferred >= 300 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	var first *state.Job
	for {
		if first, err = c.Job(ctx, id); err != nil {
			t.Fatal(err)
		}
		if terminal(first.Status) {
			break
		}
		if time.Since(stopped) > unreachableBound {
			t.Fatalf("job %s still %s %s after MinIO stopped (%d files transferred, %d failed)",
				id, first.Status, unreachableBound, first.Counters.FilesTransferred, first.Counters.FilesFailed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the job ended %s after MinIO stopped: %s", time.Since(stopped).Round(time.Second), first.Error)
	if first.Status != state.JobFailed || !strings.Contains(first.Error, "destination minio:backup/ unreachable") {
		t.Fatalf("job %s: %s (%s), want failed with the destination unreachable", id, first.Status, first.Error)
	}
	if show := f.mustFerry("job", "show", id); !strings.Contains(show, "destination minio:backup/ unreachable") {
		t.Errorf("ferry job show does not say why the job failed:\n%s", show)
	}

	if ev := hook.wait(EventJobFailed); ev.Job != id || !strings.Contains(ev.Message, "unreachable") {
		t.Errorf("job_failed event %+v: want job %s, with the cause", ev, id)
	}
	hook.wait(EventRemoteUnreachable)
	if evs := hook.of(EventRemoteUnreachable); len(evs) != 1 || evs[0].Remote != "minio" || evs[0].Job != id {
		t.Errorf("remote_unreachable events %+v: want one, of remote minio and job %s", evs, id)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	id2, err := c.RunPlan(ctx, "offsite")
	if err != nil {
		t.Fatal(err)
	}
	second := f.waitJob(c, id2)
	if second.Status != state.JobCompleted {
		t.Fatalf("job after MinIO came back: %s (%s)", second.Status, second.Error)
	}
	done := map[string]bool{}
	if err := c.JobFiles(ctx, id, state.ListSuccess, func(r state.FileRecord) error {
		done[r.Path] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if int64(len(done)) != first.Counters.FilesTransferred || len(done) >= n {
		t.Errorf("the first job lists %d files copied, counts %d, of %d", len(done), first.Counters.FilesTransferred, n)
	}
	if err := c.JobFiles(ctx, id2, state.ListSuccess, func(r state.FileRecord) error {
		if done[r.Path] {
			t.Errorf("%s was sent again, though the first job recorded it as done", r.Path)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	assertBucketHolds(t, srv, bucket, "backup/", src)
}

// assertBucketHolds fails unless the bucket holds under prefix exactly the
// files under dir, each with its content (single-part objects: the ETag is
// the MD5 of the content).
func assertBucketHolds(t *testing.T, srv *testenv.S3Server, bucket, prefix, dir string) {
	t.Helper()
	want := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := md5.Sum(data)
		want[prefix+filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(srv.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Secure: srv.TLS, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for obj := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		got++
		switch sum, ok := want[obj.Key]; {
		case !ok:
			t.Errorf("%s is in the bucket but not in the source", obj.Key)
		case strings.Trim(obj.ETag, `"`) != sum:
			t.Errorf("%s: ETag %s, want the MD5 of the source file %s", obj.Key, obj.ETag, sum)
		}
	}
	if got != len(want) {
		t.Errorf("the bucket holds %d objects under %s, want the source's %d files", got, prefix, len(want))
	}
}
