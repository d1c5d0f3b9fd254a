package syncer

// Tests of the job-level breaker: a MinIO server stopped in the middle of a
// job of many small files, on the destination and on the source side, and
// per-file errors that must not trip it.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

// itUnreachableBound is the acceptance bound: a job whose remote died ends
// within it. It is an upper bound only, far above the breaker's default
// 60 s window, not a performance expectation.
const itUnreachableBound = 2 * time.Minute

// itSmallFiles is n small files in a few directories.
func itSmallFiles(n int) map[string][]byte {
	files := make(map[string][]byte, n)
	for i := range n {
		files[fmt.Sprintf("d%02d/file-%05d.bin", i%7, i)] = itRandom(uint64(i), 512+i%1024)
	}
	return files
}

// itStopMidJob runs a job of p, stops srv once the job has transferred
// after files, and returns the job once it ended and how long after the
// stop that was. The job is canceled (and the test fails) if it has not
// ended itUnreachableBound after the stop.
func itStopMidJob(t *testing.T, e *Engine, p *Plan, srv *testenv.S3Server, after int64) (*state.Job, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var transferred atomic.Int64
	type result struct {
		j   *state.Job
		err error
	}
	done := make(chan result, 1)
	go func() {
		j, err := e.Run(ctx, p, RunOptions{Trigger: "test", ProgressEvery: 10 * time.Millisecond,
			Progress: func(pr Progress) { transferred.Store(pr.FilesTransferred) }})
		done <- result{j, err}
	}()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for transferred.Load() < after {
		select {
		case res := <-done:
			t.Fatalf("the job ended before the server was stopped: %+v, %v", res.j, res.err)
		case <-poll.C:
		}
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Logf("server stopped after %d files", transferred.Load())
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("Run: %v", res.err)
		}
		return res.j, time.Since(stopped)
	case <-time.After(itUnreachableBound):
		cancel()
		res := <-done
		t.Fatalf("the job still ran %s after the server stopped (%d files transferred); it was canceled: %+v",
			itUnreachableBound, transferred.Load(), res.j)
		return nil, 0
	}
}

// itWantUnreachable checks that j failed because the named side was
// unreachable, and that the files it did not get to are in no list.
func itWantUnreachable(t *testing.T, db *state.DB, j *state.Job, side string, n int) {
	t.Helper()
	itWantStatus(t, j, state.JobFailed)
	if !strings.HasPrefix(j.Error, side+" ") || !strings.Contains(j.Error, "unreachable") ||
		!strings.Contains(j.Error, "connection refused") {
		t.Errorf("job error %q: want the %s unreachable, with the last error", j.Error, side)
	}
	if j.Meta[MetaUnreachable] != side {
		t.Errorf("job meta %v: want %s=%s", j.Meta, MetaUnreachable, side)
	}
	itOneListEach(t, db, j)
	c := j.Counters
	listed := len(itRecords(t, db, j, state.ListSuccess)) + len(itRecords(t, db, j, state.ListFailed))
	if int64(listed) != c.FilesTransferred+c.FilesFailed || listed >= n {
		t.Errorf("%d files listed (%d transferred, %d failed) of %d: the files not started must be in no list",
			listed, c.FilesTransferred, c.FilesFailed, n)
	}
}

// itWantRest checks the run after the server is back: it completed,
// copied none of the files the first job recorded as done, and left the
// destination equal to the source.
func itWantRest(t *testing.T, db *state.DB, first, second *state.Job, src, dst remote.Store, n int) {
	t.Helper()
	itWantStatus(t, second, state.JobCompleted)
	done := itRecords(t, db, first, state.ListSuccess)
	again := itRecords(t, db, second, state.ListSuccess)
	for k := range again {
		if _, ok := done[k]; ok {
			t.Errorf("%s was sent again, though the first job recorded it as done", k)
		}
	}
	if got, want := second.Counters.FilesTransferred, int64(n)-first.Counters.FilesTransferred; got > want || got == 0 {
		t.Errorf("the second job transferred %d files, want at most the %d the first did not", got, want)
	}
	itSame(t, src, dst)
}

// The issue this guards against: with the destination's server gone, every
// remaining file was tried four times with backoff, so the job ran for
// about an hour. With the breaker's default window the job ends failed
// within two minutes of the stop, the next run copies the rest.
func TestIntegrationDestinationDiesMidJob(t *testing.T) {
	t.Parallel()
	srv := testenv.StoppableMinIO(t)
	const n = 2000
	files := itSmallFiles(n)
	src := itLocal(t, t.TempDir())
	itPutAll(t, src, files)
	dst := itS3(t, srv, srv.NewBucket(t), "backup/")
	e, db := itEngine(t) // the default breaker window
	p := &Plan{Name: "p", Source: src, Dest: dst, SourceDesc: "src", DestDesc: "minio:backup/",
		Workers: 4, MaxFilesPerTask: 20}

	j, took := itStopMidJob(t, e, p, srv, 300)
	t.Logf("the job ended %s after the server stopped: %s", took.Round(time.Second), j.Error)
	itWantUnreachable(t, db, j, "destination", n)
	if !strings.Contains(j.Error, "minio:backup/") {
		t.Errorf("job error %q does not name the destination", j.Error)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	itWantRest(t, db, j, itRun(t, e, p), src, dst, n)
}

// A dead source trips the breaker as well (here with a short window); the
// deletes of the plan do not run; the next run copies the rest and deletes.
func TestIntegrationSourceDiesMidJob(t *testing.T) {
	t.Parallel()
	srv := testenv.StoppableMinIO(t)
	const n = 1500
	files := itSmallFiles(n)
	src := itS3(t, srv, srv.NewBucket(t), "data/")
	itPutAll(t, src, files)
	dst := itLocal(t, t.TempDir())
	itPut(t, dst, "stale.txt", []byte("only at the destination"), itMtime)
	e, db := itEngine(t)
	e.UnreachableAfter = 2 * time.Second
	p := &Plan{Name: "p", Source: src, Dest: dst, SourceDesc: "minio:data/", DestDesc: "dst",
		Workers: 4, MaxFilesPerTask: 20, Delete: true, MaxDelete: DeleteLimit{Count: 1}}

	j, _ := itStopMidJob(t, e, p, srv, 200)
	itWantUnreachable(t, db, j, "source", n)
	if _, err := dst.Stat(context.Background(), "stale.txt"); err != nil {
		t.Errorf("stale.txt at the destination: %v; deletes must not run in a job stopped by the breaker", err)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	second := itRun(t, e, p)
	if second.Counters.FilesDeleted != 1 {
		t.Errorf("the second job deleted %d files, want stale.txt", second.Counters.FilesDeleted)
	}
	itWantRest(t, db, j, second, src, dst, n)
}

// Errors that are the file's own — here a full disk — never trip the
// breaker, however short its window: every file is tried and listed failed.
func TestBreakerIgnoresPerFileErrors(t *testing.T) {
	t.Parallel()
	const n = 50
	src := itLocal(t, t.TempDir())
	itPutAll(t, src, itSmallFiles(n))
	dst := &itFullDisk{Store: itLocal(t, t.TempDir())}
	e, db := itEngine(t)
	e.UnreachableAfter = time.Nanosecond
	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Workers: 4})
	itWantStatus(t, j, state.JobFailed)
	if j.Meta[MetaUnreachable] != "" || strings.Contains(j.Error, "unreachable") {
		t.Errorf("job %q (meta %v) blames an unreachable store for per-file errors", j.Error, j.Meta)
	}
	if failed := len(itRecords(t, db, j, state.ListFailed)); failed != n || dst.puts.Load() != n {
		t.Errorf("%d files listed failed and %d tried, want all %d", failed, dst.puts.Load(), n)
	}
}

// itCutOffPuts is a destination whose single PUTs fail as a dropped
// connection does, while the parts of a multipart upload go through, each
// once a few more PUTs have failed, and the last one once all of them have:
// a large upload that keeps making progress for as long as the small files
// fail.
type itCutOffPuts struct {
	*mem.Store
	failures  chan struct{} // one value per failed Put
	puts      atomic.Int64
	allPuts   int64
	allFailed chan struct{} // closed at the allPuts-th failed Put
	lastPart  int
}

func (d *itCutOffPuts) Put(ctx context.Context, k string, r io.Reader, n int64, m remote.PutMeta) (remote.ObjectInfo, error) {
	io.CopyN(io.Discard, r, 10)
	d.failures <- struct{}{}
	if d.puts.Add(1) == d.allPuts {
		close(d.allFailed)
	}
	return remote.ObjectInfo{}, fmt.Errorf("put %s: %w", k, syscall.ECONNRESET)
}

func (d *itCutOffPuts) UploadPart(ctx context.Context, key, id string, n int, r io.Reader, size int64, sum string) (remote.Part, error) {
	if n == d.lastPart {
		select {
		case <-d.allFailed:
		case <-ctx.Done():
			return remote.Part{}, ctx.Err()
		}
	}
	// Spread over the failures, so that parts keep landing while they go on.
	for range int(d.allPuts) / d.lastPart {
		select {
		case <-d.failures:
		case <-d.allFailed:
		case <-ctx.Done():
			return remote.Part{}, ctx.Err()
		}
	}
	return d.Store.UploadPart(ctx, key, id, n, r, size, sum)
}

// A part the destination takes shows that it answers: a large upload going
// on while small files fail at the connection level for longer than the
// window does not trip the breaker. The job ends partial (the small files
// failed, each after its attempts), not failed for an unreachable remote,
// and the large file is there.
func TestBreakerCountsFinishedParts(t *testing.T) {
	t.Parallel()
	const small, attempts = 100, 4
	src := itLocal(t, t.TempDir())
	itPutAll(t, src, itSmallFiles(small))
	big := itRandom(99, 30*4096)
	itPut(t, src, "big.bin", big, itMtime)
	m := mem.New()
	m.SetPartSize(4096)
	dst := &itCutOffPuts{Store: m, failures: make(chan struct{}, small*attempts), allPuts: small * attempts,
		allFailed: make(chan struct{}), lastPart: len(big) / 4096}
	e, db := itEngine(t)
	e.Attempts = attempts
	e.UnreachableAfter = 3 * time.Second
	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Workers: 4})
	itWantStatus(t, j, state.JobPartial)
	if j.Meta[MetaUnreachable] != "" || strings.Contains(j.Error, "unreachable") {
		t.Fatalf("job %q (meta %v): the breaker tripped while the destination took parts", j.Error, j.Meta)
	}
	if got := itRead(t, m, "big.bin"); !bytes.Equal(got, big) {
		t.Errorf("big.bin: %d bytes at the destination, want the %d of the source", len(got), len(big))
	}
	if failed := len(itRecords(t, db, j, state.ListFailed)); failed != small {
		t.Errorf("%d files failed, want the %d small ones", failed, small)
	}
}
