package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// Engine runs sync jobs and records them in the state database.
type Engine struct {
	DB  *state.DB
	Log *slog.Logger

	// Attempts is how many times a file is tried before it is failed
	// (default 4). Backoff is the wait before the second attempt; it grows
	// four-fold for each further one (default 250ms).
	Attempts int
	Backoff  time.Duration

	// UnreachableAfter is how long the source or the destination may fail
	// only at the connection level (remote.IsUnreachable: refused, timed
	// out, unknown host), with no success in between, before a job stops
	// starting files and ends failed (default 60s). Per-file errors
	// (permission, checksum, not found) do not count.
	UnreachableAfter time.Duration

	// PartSlots bounds how many parts of resumable uploads are in flight
	// across the engine, each holding one part in memory (default 8).
	PartSlots int

	mu        sync.Mutex
	running   map[string]bool
	slotsOnce sync.Once
	partSlots chan struct{}
	partBufs  sync.Pool
}

// partBuf returns a buffer of size bytes for one part, reusing freed ones.
func (e *Engine) partBuf(size int64) []byte {
	if b, ok := e.partBufs.Get().(*[]byte); ok && int64(cap(*b)) >= size {
		return (*b)[:size]
	}
	return make([]byte, size)
}

func (e *Engine) freePartBuf(b []byte) {
	e.partBufs.Put(&b)
}

func (e *Engine) slots() chan struct{} {
	e.slotsOnce.Do(func() {
		n := e.PartSlots
		if n <= 0 {
			n = 8
		}
		e.partSlots = make(chan struct{}, n)
	})
	return e.partSlots
}

// RunOptions are what a trigger adds to a plan for one job.
type RunOptions struct {
	// Trigger names what started the job: "manual", "schedule", "watch",
	// "changelist", "cli".
	Trigger string
	// Changes, when set, makes the job incremental: only these paths.
	Changes *ChangeSet
	// Progress, when set, is called about every ProgressEvery (default
	// 250ms) and once at the end, from a goroutine of the engine.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Job, when set, is a job record the caller created already (status
	// queued); the engine runs it instead of creating one.
	Job *state.Job
	// Drain, when closed, stops the job gently: no new file is started,
	// files in flight finish and their tasks commit, and the job stays
	// "running" in the state database so the next run of the plan resumes
	// it. The daemon closes it on SIGTERM; canceling ctx is the hard stop.
	Drain <-chan struct{}
	// CheckDestination makes a scan read the destination's listing to
	// check every file the index says is there, however recent the last
	// check (see Plan.RecheckDestination).
	CheckDestination bool
}

// errDrained stops an enumeration when RunOptions.Drain is closed.
var errDrained = errors.New("job drained for shutdown")

// Job meta keys the engine sets.
const (
	metaKind   = "kind"   // "full" or "incremental"
	metaOrigin = "origin" // the change set's origin
	metaSource = "source"
	metaDest   = "destination"
	metaDryRun = "dry_run"
	// MetaUnreachable is set on a job that failed because its source or
	// destination stopped answering: "source" or "destination".
	MetaUnreachable = "unreachable"
	// MetaDeletesWithheld says how many destination files the delete pass
	// kept because the source could not read them (see scanVictims).
	MetaDeletesWithheld = "deletes_withheld"
	// MetaDeletesNotRun says that the delete pass did not run because
	// files of the job failed, and how many.
	MetaDeletesNotRun = "deletes_not_run"
)

// Run runs one job of the plan to its end and returns the job record. A job
// that fails (the source cannot be listed, a delete guard refuses, the source
// or destination is unreachable for UnreachableAfter) is returned with
// status failed and a nil error; the error is for problems
// recording the job at all. A job of the plan interrupted earlier (still
// "running" in the state database) is resumed when this run is a full one:
// files it already copied are not sent again.
func (e *Engine) Run(ctx context.Context, p *Plan, opt RunOptions) (*state.Job, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if !e.acquire(p.Name) {
		return nil, fmt.Errorf("plan %s: %w", p.Name, ErrPlanRunning)
	}
	defer e.release(p.Name)

	job, err := e.startJob(p, opt)
	if err != nil {
		return nil, err
	}
	r := newRun(e, p, job, opt)
	r.execute(ctx)
	if err := r.finish(ctx); err != nil {
		return job, err
	}
	return job, nil
}

func (e *Engine) acquire(plan string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running == nil {
		e.running = make(map[string]bool)
	}
	if e.running[plan] {
		return false
	}
	e.running[plan] = true
	return true
}

func (e *Engine) release(plan string) {
	e.mu.Lock()
	delete(e.running, plan)
	e.mu.Unlock()
}

func (e *Engine) logger() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

// startJob creates the job record, or picks up an interrupted one.
func (e *Engine) startJob(p *Plan, opt RunOptions) (*state.Job, error) {
	kind := "full"
	if opt.Changes != nil {
		kind = "incremental"
	}
	now := time.Now().UTC()
	var interrupted []*state.Job
	err := e.DB.ListJobs(state.JobFilter{Plan: p.Name, Status: state.JobRunning}, func(j *state.Job) error {
		if opt.Job == nil || j.ID != opt.Job.ID {
			interrupted = append(interrupted, j)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan %s: look for interrupted jobs: %w", p.Name, err)
	}
	var resume *state.Job
	if opt.Job != nil && opt.Job.Status == state.JobRunning {
		// The caller hands back an interrupted job to resume.
		resume = opt.Job
	}
	for _, j := range interrupted {
		if resume == nil && kind == "full" && j.Meta[metaKind] == "full" && !p.DryRun && opt.Job == nil {
			resume = j
			continue
		}
		j.Status = state.JobFailed
		j.Error = "interrupted (the process stopped during the job); a later job covers its files"
		j.Ended = now
		if err := e.DB.UpdateJob(j); err != nil {
			return nil, fmt.Errorf("plan %s: close interrupted job %s: %w", p.Name, j.ID, err)
		}
	}
	if resume != nil {
		resume.Resumes++
		resume.Error = ""
		resume.Ended = time.Time{}
		// Skipped and failed files are decided again; the success list
		// keeps what the earlier attempt copied.
		for _, kind := range []state.ListKind{state.ListSkipped, state.ListFailed} {
			if err := e.DB.ClearFileRecords(resume.ID, kind); err != nil {
				return nil, fmt.Errorf("resume job %s: %w", resume.ID, err)
			}
		}
		e.logger().Info("resuming interrupted job", slog.String("plan", p.Name), slog.String("job", resume.ID),
			slog.Int("resumes", resume.Resumes))
		return resume, e.DB.UpdateJob(resume)
	}

	job := opt.Job
	if job == nil {
		job = &state.Job{Plan: p.Name, Created: now}
	}
	job.Trigger = opt.Trigger
	job.Status = state.JobRunning
	job.Started = now
	if job.Meta == nil {
		job.Meta = map[string]string{}
	}
	job.Meta[metaKind] = kind
	job.Meta[metaSource] = p.SourceDesc
	job.Meta[metaDest] = p.DestDesc
	if opt.Changes != nil && opt.Changes.Origin != "" {
		job.Meta[metaOrigin] = opt.Changes.Origin
	}
	if p.DryRun {
		job.Meta[metaDryRun] = "true"
	}
	if opt.Job == nil {
		err = e.DB.CreateJob(job)
	} else {
		err = e.DB.UpdateJob(job)
	}
	if err != nil {
		return nil, fmt.Errorf("plan %s: record job: %w", p.Name, err)
	}
	return job, nil
}

// counters are the live numbers of a run, updated from many goroutines.
type counters struct {
	filesTotal, bytesTotal             atomic.Int64
	filesTransferred, bytesTransferred atomic.Int64
	filesSkipped, bytesSkipped         atomic.Int64
	filesFailed, bytesFailed           atomic.Int64
	filesUnchanged                     atomic.Int64
	filesDeleted                       atomic.Int64
	filesResumed, bytesResumed         atomic.Int64
	bytesToTransfer                    atomic.Int64
	bytesMoved                         atomic.Int64 // bytes read from the source so far, for speed
	bytesSent                          atomic.Int64 // bytes the destination accepted, across attempts
}

func (c *counters) into(dst *state.Counters) {
	dst.FilesTotal = c.filesTotal.Load()
	dst.BytesTotal = c.bytesTotal.Load()
	dst.FilesTransferred = c.filesTransferred.Load()
	dst.BytesTransferred = c.bytesTransferred.Load()
	dst.FilesSkipped = c.filesSkipped.Load()
	dst.BytesSkipped = c.bytesSkipped.Load()
	dst.FilesFailed = c.filesFailed.Load()
	dst.BytesFailed = c.bytesFailed.Load()
	dst.FilesUnchanged = c.filesUnchanged.Load()
	dst.FilesDeleted = c.filesDeleted.Load()
	dst.FilesResumed = c.filesResumed.Load()
	dst.BytesResumed = c.bytesResumed.Load()
	dst.BytesSent = c.bytesSent.Load()
}

// errJobFailed wraps the reason a whole job failed.
type jobFailure struct{ msg string }

func (f *jobFailure) Error() string { return f.msg }

func failJob(format string, args ...any) error {
	return &jobFailure{fmt.Sprintf(format, args...)}
}

func isJobFailure(err error) bool {
	var f *jobFailure
	return errors.As(err, &f)
}

var _ = remote.ErrNotExist
