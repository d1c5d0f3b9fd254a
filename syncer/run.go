package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// action is what a job does with one file.
type action int

const (
	actTransfer action = iota // copy source → destination
	actVerify                 // re-read both sides; re-send on a difference
)

// work is one file handed to a worker.
type work struct {
	task   *task
	act    action
	info   remote.ObjectInfo // the source file
	reason string            // why it is sent: "new", "changed", …
}

// run is the state of one job while it runs.
type run struct {
	e      *Engine
	p      *Plan
	job    *state.Job
	opt    RunOptions
	log    *slog.Logger
	start  time.Time
	resume bool // the job is a resumed one

	c            counters
	checkpointMu sync.Mutex // one checkpoint of the job record at a time

	phase   atomicString
	scanned atomic.Bool

	// records waiting to be committed outside of tasks (skipped, adopted).
	pendMu      sync.Mutex
	pendSkipped []state.FileRecord
	pendIndex   map[string]state.FileEntry

	look *destLookup

	srcPlace *remote.Place // where the source is, when its store says
	brk      *breaker      // set by execute

	fatal   error // the job-level failure, if any
	drained bool  // stopped by RunOptions.Drain
}

func newRun(e *Engine, p *Plan, job *state.Job, opt RunOptions) *run {
	r := &run{
		e: e, p: p, job: job, opt: opt,
		log:       e.logger().With(slog.String("plan", p.Name), slog.String("job", job.ID)),
		start:     time.Now(),
		resume:    job.Resumes > 0,
		pendIndex: make(map[string]state.FileEntry),
	}
	if r.resume {
		// What earlier attempts sent, as of their last checkpoint.
		r.c.bytesSent.Store(job.Counters.BytesSent)
	}
	r.phase.Store("scanning")
	return r
}

// execute runs the job's phases. Job-level failures end up in r.fatal.
func (r *run) execute(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	stopProgress := r.reportProgress(ctx)
	defer stopProgress()

	scan := r.opt.Changes == nil && r.p.Mode == ModeScan
	r.look = newDestLookup(r.p.Dest, scan, r.wantDestCheck())
	defer r.look.close()

	// The workers' context ends when the breaker trips: transfers in
	// flight stop, and the files still queued are released unstarted.
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	r.brk = newBreaker(r.e.UnreachableAfter, r.p, stopWorkers)

	if err := r.checkOverlap(); err != nil {
		r.fatal = err
		return
	}

	workCh := make(chan *work, 2*r.p.Workers)
	var wg sync.WaitGroup
	for range r.p.Workers {
		wg.Go(func() {
			for w := range workCh {
				r.process(wctx, w)
			}
		})
	}

	sl := &slicer{r: r, out: workCh}
	err := r.enumerate(ctx, sl)
	sl.flush()
	r.scanned.Store(true) // every candidate is known: progress has a total now
	r.phase.Store("copying")
	close(workCh)
	wg.Wait()
	if down, cause := r.brk.state(); cause != nil {
		// Whatever the enumeration returned, the breaker is why; deletes
		// do not run.
		r.log.Error("job stopped: remote unreachable", slog.String("side", down.String()), slog.Any("err", cause))
		err = cause
	} else if errors.Is(err, errDrained) {
		r.drained = true
		err = nil
	}
	if ferr := r.flushPending(); ferr != nil && err == nil {
		err = ferr
	}
	if r.drained {
		return
	}
	if err == nil && ctx.Err() == nil {
		r.sweepUploads(ctx)
		err = r.deletes(ctx)
	}
	if err != nil && ctx.Err() == nil {
		r.fatal = err
	}
}

// checkOverlap refuses the job, before it writes anything, when its source
// and destination overlap as they are now (symlinks resolved): see
// remote.CheckOverlap. A configuration is checked when it is loaded; this
// catches what changed since, and plans built without one.
func (r *run) checkOverlap() error {
	sp, sok := r.p.Source.(remote.Placer)
	dp, dok := r.p.Dest.(remote.Placer)
	if !sok || !dok {
		return nil // a store of a test's; every store of Ferry's says where it is
	}
	src, err := sp.Place()
	if err != nil {
		return failJob("refused: cannot resolve where the source %s is: %v; nothing was written", r.p.SourceDesc, err)
	}
	dst, err := dp.Place()
	if err != nil {
		return failJob("refused: cannot resolve where the destination %s is: %v; nothing was written", r.p.DestDesc, err)
	}
	if err := remote.CheckOverlap(src, dst, r.p.Delete); err != nil {
		return failJob("refused: %v; nothing was written", err)
	}
	r.srcPlace = &src
	return nil
}

// enumerate finds the candidates and feeds them, decided, to the slicer.
func (r *run) enumerate(ctx context.Context, sl *slicer) error {
	switch {
	case r.opt.Changes != nil:
		return r.enumerateChanges(ctx, sl)
	case r.p.Mode == ModeFiles:
		return r.enumerateFiles(ctx, sl)
	default:
		return r.enumerateScan(ctx, sl)
	}
}

func (r *run) enumerateScan(ctx context.Context, sl *slicer) error {
	// The listing runs in its own goroutine, so reading the source and
	// deciding (index lookups) use both cores; the channel keeps memory
	// bounded.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	entries := make(chan []remote.ObjectInfo, 8)
	listed := make(chan error, 1)
	go func() {
		defer close(entries)
		const batch = 256
		buf := make([]remote.ObjectInfo, 0, batch)
		// The index decides on size and mtime; a SHA-256 the store keeps
		// beside the file is not worth its cost here.
		list := r.p.Source.List
		if sl, ok := r.p.Source.(remote.StatLister); ok {
			list = sl.ListStat
		}
		err := list(lctx, "", func(info remote.ObjectInfo) error {
			buf = append(buf, info)
			if len(buf) < batch {
				return nil
			}
			select {
			case entries <- buf:
				buf = make([]remote.ObjectInfo, 0, batch)
				return nil
			case <-lctx.Done():
				return lctx.Err()
			}
		})
		if err == nil && len(buf) > 0 {
			select {
			case entries <- buf:
			case <-lctx.Done():
				err = lctx.Err()
			}
		}
		listed <- err
	}()
	var err error
	for infos := range entries {
		if err != nil {
			continue // drain after a failure; the lister stops on cancel
		}
		for _, info := range infos {
			if err = r.consider(ctx, sl, info); err != nil {
				cancel()
				break
			}
		}
	}
	if lerr := <-listed; err == nil {
		err = lerr // after a consider error the lister only reports its cancel
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, errDrained) && !isJobFailure(err) {
		return failJob("list source %s: %v", r.p.SourceDesc, err)
	}
	return err
}

func (r *run) enumerateFiles(ctx context.Context, sl *slicer) error {
	seen := make(map[string]bool, len(r.p.Files))
	for _, raw := range r.p.Files {
		key, err := remote.UserPathToKey(raw)
		if err != nil {
			r.skip(remote.PrintableKey(raw), 0, "invalid path: "+reasonOf(err))
			continue
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if err := r.considerKey(ctx, sl, key, false); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) enumerateChanges(ctx context.Context, sl *slicer) error {
	cs := r.opt.Changes
	for _, s := range cs.Skipped {
		r.skip(s.Path, 0, s.Reason)
	}
	keys := append([]string(nil), cs.Upserts...)
	sort.Strings(keys)
	for i, key := range keys {
		if i > 0 && keys[i-1] == key {
			continue
		}
		if err := remote.ValidateKey(key); err != nil {
			r.skip(remote.PrintableKey(key), 0, "invalid path: "+reasonOf(err))
			continue
		}
		if err := r.considerKey(ctx, sl, key, true); err != nil {
			return err
		}
	}
	return nil
}

// considerKey stats one named source file and considers it. A missing file
// fails (files mode: the user named it) or is skipped (a change set: it was
// removed again before the job ran).
func (r *run) considerKey(ctx context.Context, sl *slicer, key string, vanishedIsSkip bool) error {
	info, err := r.p.Source.Stat(ctx, key)
	switch {
	case err == nil:
		return r.consider(ctx, sl, info)
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, remote.ErrNotExist) && vanishedIsSkip:
		r.skip(key, 0, "no longer exists at the source")
	case errors.Is(err, remote.ErrSymlinkParent):
		// As a scan, which reports the symlinked directory and never
		// enters it.
		r.skip(key, 0, "not copied: "+err.Error())
	case errors.Is(err, remote.ErrNotExist):
		r.failFile(key, 0, "no such file at the source")
	default:
		r.failFile(key, 0, err.Error())
	}
	return nil
}

// consider applies the path rules, the filter and the decision to one
// source file.
func (r *run) consider(ctx context.Context, sl *slicer, info remote.ObjectInfo) error {
	if info.SkipReason != "" {
		r.c.filesTotal.Add(1)
		r.skip(info.Key, info.Size, info.SkipReason)
		return nil
	}
	if err := remote.ValidateKey(info.Key); err != nil {
		r.c.filesTotal.Add(1)
		r.skip(remote.PrintableKey(info.Key), info.Size, "invalid path: "+reasonOf(err))
		return nil
	}
	if !r.p.Filter.Match(info.Key) || r.p.reserved(info.Key) {
		return nil
	}
	r.c.filesTotal.Add(1)
	if nc, ok := r.p.Dest.(remote.NameChecker); ok {
		if err := nc.CheckName(info.Key); err != nil {
			why := err.Error()
			if ke := (*remote.KeyError)(nil); errors.As(err, &ke) {
				why = ke.Reason
			}
			r.skip(info.Key, info.Size, "the destination cannot store this name: "+why)
			return nil
		}
	}
	r.c.bytesTotal.Add(info.Size)
	return r.decide(ctx, sl, info)
}

// decide applies the state index and the conflict policy to one file.
func (r *run) decide(ctx context.Context, sl *slicer, src remote.ObjectInfo) error {
	entry, known, err := r.e.DB.GetFile(r.p.Name, src.Key)
	if err != nil {
		return fmt.Errorf("read file index: %w", err)
	}
	if known && entry.Size == src.Size && entry.ModTime.Equal(src.ModTime) {
		switch {
		case r.resume && !entry.VerifiedAt.Before(r.job.Started):
			// Copied (and verified) by an earlier attempt of this same job.
			r.c.filesTransferred.Add(1)
			r.c.bytesTransferred.Add(src.Size)
			r.c.filesResumed.Add(1)
			r.c.bytesResumed.Add(src.Size)
		case r.p.Verify == VerifyAll:
			return sl.add(ctx, &work{act: actVerify, info: src, reason: "verify"})
		default:
			return r.checkDestination(ctx, sl, src, entry)
		}
		return nil
	}

	switch {
	case r.p.Conflict == ConflictOverwrite:
		return sl.add(ctx, &work{act: actTransfer, info: src, reason: changeReason(known)})
	case known && r.p.Conflict == ConflictSkip:
		r.skip(src.Key, src.Size, "changed at the source, but the destination copy exists and conflict is skip")
		return nil
	case known:
		return sl.add(ctx, &work{act: actTransfer, info: src, reason: "changed"})
	}

	dst, exists, err := r.look.find(ctx, src.Key)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.failFile(src.Key, src.Size, "check destination: "+err.Error())
		return nil
	}
	switch {
	case !exists:
		return sl.add(ctx, &work{act: actTransfer, info: src, reason: "new"})
	case r.p.Conflict == ConflictSkip:
		r.skip(src.Key, src.Size, "exists at the destination and conflict is skip")
		return nil
	case dst.Size == src.Size && sameSecond(dst.ModTime, src.ModTime):
		// The destination already holds this version (an earlier tool or a
		// lost index): adopt it instead of copying.
		if r.p.Verify == VerifyAll {
			return sl.add(ctx, &work{act: actVerify, info: src, reason: "verify"})
		}
		r.c.filesUnchanged.Add(1)
		r.adopt(src, dst)
		return nil
	case src.ModTime.Before(dst.ModTime):
		r.skip(src.Key, src.Size, "the destination is newer than the source and conflict is update")
		return nil
	default:
		return sl.add(ctx, &work{act: actTransfer, info: src, reason: "changed"})
	}
}

// checkDestination handles a file the index says is in sync: in a job
// that checks the destination (wantDestCheck) it looks the file up — in a
// scan in the destination's listing (read once, in the background, no
// request per file), in a job of listed files with a Stat — so that a copy
// deleted or changed behind Ferry's back is noticed and, as the conflict
// policy allows, sent again.
func (r *run) checkDestination(ctx context.Context, sl *slicer, src remote.ObjectInfo, entry state.FileEntry) error {
	if !r.look.check {
		r.c.filesUnchanged.Add(1)
		return nil
	}
	var dst remote.ObjectInfo
	var exists bool
	var err error
	if r.look.ordered {
		dst, exists, err = r.look.listed(ctx, src.Key)
	} else {
		dst, exists, err = r.look.find(ctx, src.Key) // a job of listed files: a Stat each
	}
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.failFile(src.Key, src.Size, "check destination: "+err.Error())
	case !exists:
		return sl.add(ctx, &work{act: actTransfer, info: src, reason: "missing at the destination"})
	case entry.DestETag != "" && dst.ETag != entry.DestETag && r.p.Conflict == ConflictSkip:
		r.skip(src.Key, src.Size, "changed at the destination since Ferry copied it, and conflict is skip")
	case entry.DestETag != "" && dst.ETag != entry.DestETag:
		return sl.add(ctx, &work{act: actTransfer, info: src, reason: "changed at the destination"})
	default:
		r.c.filesUnchanged.Add(1)
	}
	return nil
}

func changeReason(known bool) string {
	if known {
		return "changed"
	}
	return "new"
}

func sameSecond(a, b time.Time) bool {
	return a.Unix() == b.Unix()
}

func reasonOf(err error) string {
	var ke *remote.KeyError
	if errors.As(err, &ke) {
		return "path " + ke.Reason
	}
	return err.Error()
}

// skip records a file in the skipped list.
func (r *run) skip(key string, size int64, reason string) {
	r.c.filesSkipped.Add(1)
	r.c.bytesSkipped.Add(size)
	r.pend(state.FileRecord{Path: key, Size: size, Reason: reason})
}

// failFile records a file that failed before it reached a task.
func (r *run) failFile(key string, size int64, msg string) {
	r.c.filesFailed.Add(1)
	r.c.bytesFailed.Add(size)
	if err := r.e.DB.AppendFileRecords(r.job.ID, state.ListFailed,
		[]state.FileRecord{{Path: key, Size: size, Reason: msg}}); err != nil {
		r.log.Error("record failed file", slog.String("path", key), slog.Any("err", err))
	}
}

func (r *run) pend(rec state.FileRecord) {
	r.pendMu.Lock()
	r.pendSkipped = append(r.pendSkipped, rec)
	full := len(r.pendSkipped) >= 1000
	r.pendMu.Unlock()
	if full {
		if err := r.flushPending(); err != nil {
			r.log.Error("record skipped files", slog.Any("err", err))
		}
	}
}

func (r *run) adopt(src, dst remote.ObjectInfo) {
	if r.p.DryRun {
		return
	}
	sum := dst.SHA256
	if sum == "" {
		sum = src.SHA256
	}
	r.pendMu.Lock()
	r.pendIndex[src.Key] = state.FileEntry{Size: src.Size, ModTime: src.ModTime, SHA256: sum,
		DestETag: dst.ETag, DestModTime: dst.ModTime, VerifiedAt: time.Now().UTC()}
	full := len(r.pendIndex) >= 1000
	r.pendMu.Unlock()
	if full {
		if err := r.flushPending(); err != nil {
			r.log.Error("record adopted files", slog.Any("err", err))
		}
	}
}

func (r *run) flushPending() error {
	r.pendMu.Lock()
	skipped, index := r.pendSkipped, r.pendIndex
	r.pendSkipped, r.pendIndex = nil, make(map[string]state.FileEntry)
	r.pendMu.Unlock()
	if len(skipped) > 0 {
		if err := r.e.DB.AppendFileRecords(r.job.ID, state.ListSkipped, skipped); err != nil {
			return err
		}
	}
	if len(index) > 0 {
		return r.e.DB.PutFiles(r.p.Name, index)
	}
	return nil
}

// finish sets the job's final status and records it.
func (r *run) finish(ctx context.Context) error {
	r.phase.Store("done")
	j := r.job
	r.c.into(&j.Counters)
	if !r.drained || r.fatal != nil {
		j.Ended = time.Now().UTC()
	}
	failed := j.Counters.FilesFailed
	switch {
	case r.drained && r.fatal == nil:
		// Left "running" on purpose: the next run of the plan resumes it.
		j.Status = state.JobRunning
		j.Error = "interrupted by shutdown; resumes at the next run"
	case r.fatal != nil:
		j.Status = state.JobFailed
		j.Error = r.fatal.Error()
		if down, cause := r.brk.state(); cause != nil {
			if j.Meta == nil {
				j.Meta = map[string]string{}
			}
			j.Meta[MetaUnreachable] = down.String()
		}
	case ctx.Err() != nil:
		j.Status = state.JobCanceled
		j.Error = "canceled"
	case failed > 0 && j.Counters.FilesTransferred+j.Counters.FilesUnchanged+j.Counters.FilesDeleted > 0:
		j.Status = state.JobPartial
		j.Error = nounStr(failed, "file", "files") + " failed"
	case failed > 0:
		j.Status = state.JobFailed
		j.Error = "all " + nounStr(failed, "file", "files") + " failed"
		if failed == 1 {
			j.Error = "its only file failed"
		}
	default:
		j.Status = state.JobCompleted
	}
	if r.opt.Progress != nil {
		r.opt.Progress(r.snapshot())
	}
	msg := "job finished"
	if j.Status == state.JobRunning {
		msg = "job interrupted; it resumes at the next run"
	}
	r.log.Info(msg, slog.String("status", j.Status),
		slog.Int64("transferred", j.Counters.FilesTransferred), slog.Int64("skipped", j.Counters.FilesSkipped),
		slog.Int64("failed", j.Counters.FilesFailed), slog.Int64("unchanged", j.Counters.FilesUnchanged),
		slog.String("error", j.Error))
	if err := r.e.DB.UpdateJob(j); err != nil {
		return fmt.Errorf("record job %s: %w", j.ID, err)
	}
	r.recordDestCheck()
	return nil
}

// reportProgress calls the progress callback and checkpoints the job's
// counters until the returned stop function is called.
func (r *run) reportProgress(ctx context.Context) (stop func()) {
	every := r.opt.ProgressEvery
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		lastSave := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if r.opt.Progress != nil {
					r.opt.Progress(r.snapshot())
				}
				if time.Since(lastSave) >= 2*time.Second {
					lastSave = time.Now()
					r.checkpoint()
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// checkpoint records the job with its counters as they are now, so that a
// process killed later loses only what it counted since. Checkpoints are
// written one at a time, so the record's counters never go back.
func (r *run) checkpoint() {
	r.checkpointMu.Lock()
	defer r.checkpointMu.Unlock()
	j := *r.job
	r.c.into(&j.Counters)
	if err := r.e.DB.UpdateJob(&j); err != nil {
		r.log.Warn("checkpoint job", slog.Any("err", err))
	}
}

func (r *run) snapshot() Progress {
	c := &r.c
	return Progress{
		JobID:            r.job.ID,
		Phase:            r.phase.Load(),
		FilesTotal:       c.filesTotal.Load(),
		BytesTotal:       c.bytesTotal.Load(),
		FilesDone:        c.filesTransferred.Load() + c.filesSkipped.Load() + c.filesFailed.Load() + c.filesUnchanged.Load(),
		FilesTransferred: c.filesTransferred.Load(),
		BytesTransferred: c.bytesMoved.Load() + c.bytesResumed.Load(),
		BytesToTransfer:  c.bytesToTransfer.Load() + c.bytesResumed.Load(),
		FilesFailed:      c.filesFailed.Load(),
		ScanDone:         r.scanned.Load(),
		Elapsed:          time.Since(r.start),
	}
}

// atomicString is a string read and written from several goroutines.
type atomicString struct {
	mu sync.Mutex
	s  string
}

func (a *atomicString) Load() string   { a.mu.Lock(); defer a.mu.Unlock(); return a.s }
func (a *atomicString) Store(s string) { a.mu.Lock(); a.s = s; a.mu.Unlock() }
