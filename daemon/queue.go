package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

// Trigger kinds.
const (
	TriggerSchedule   = "schedule"
	TriggerManual     = "manual"
	TriggerWatch      = "watch"
	TriggerChangelist = "changelist"
	TriggerResume     = "resume"
)

// request is one reason to run a plan.
type request struct {
	trigger string
	// changes, when set, asks for an incremental job; nil asks for a full
	// one. A full request absorbs incremental ones.
	changes *syncer.ChangeSet
	// checkDest asks a full job to list the destination whatever the
	// plan's recheck_destination (syncer.RunOptions.CheckDestination).
	checkDest bool
	// done is called with the finished job (nil if it never ran).
	done func(*state.Job)
}

// pending is the one follow-up job of a plan: every trigger that arrives
// while it waits is merged into it.
type pending struct {
	job       *state.Job
	trigger   string
	full      bool
	checkDest bool
	changes   *syncer.ChangeSet
	done      []func(*state.Job)
}

func (p *pending) merge(r request) {
	if r.changes == nil {
		if !p.full {
			// The job becomes the full run this request asked for; it
			// is recorded with its trigger, not the incremental one's.
			p.trigger = r.trigger
			if p.job != nil {
				p.job.Trigger = r.trigger
			}
		}
		p.full = true
		p.changes = nil
	} else if !p.full {
		if p.changes == nil {
			p.changes = &syncer.ChangeSet{Origin: r.changes.Origin}
		} else if p.changes.Origin != r.changes.Origin {
			p.changes.Origin = "several"
		}
		p.changes.Upserts = append(p.changes.Upserts, r.changes.Upserts...)
		p.changes.Deletes = append(p.changes.Deletes, r.changes.Deletes...)
		p.changes.Skipped = append(p.changes.Skipped, r.changes.Skipped...)
	}
	p.checkDest = p.checkDest || r.checkDest
	if r.done != nil {
		p.done = append(p.done, r.done)
	}
}

// planQueue runs the jobs of one plan, one at a time.
type planQueue struct {
	name string
	d    *Daemon
	log  *slog.Logger

	mu      sync.Mutex
	running *state.Job
	cancel  context.CancelFunc // of the running job
	next    *pending
	wake    chan struct{}
}

func newPlanQueue(d *Daemon, name string) *planQueue {
	return &planQueue{name: name, d: d, log: d.log.With(slog.String("plan", name)), wake: make(chan struct{}, 1)}
}

// enqueue records a trigger and returns the id of the job that will serve
// it: the queued follow-up (created now, or an existing one it joins).
func (q *planQueue) enqueue(r request) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.next == nil {
		job := &state.Job{Plan: q.name, Trigger: r.trigger, Status: state.JobQueued, Created: time.Now().UTC()}
		if err := q.d.db.CreateJob(job); err != nil {
			return "", fmt.Errorf("queue a job of plan %s: %w", q.name, err)
		}
		q.next = &pending{job: job, trigger: r.trigger}
		q.d.metrics.queueDepth.WithLabelValues(q.name).Set(1)
	}
	q.next.merge(r)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return q.next.job.ID, nil
}

// cancelJob cancels the running job or drops the queued one with this id.
func (q *planQueue) cancelJob(id string) bool {
	q.mu.Lock()
	if q.running != nil && q.running.ID == id {
		q.cancel()
		q.mu.Unlock()
		return true
	}
	if q.next == nil || q.next.job.ID != id {
		q.mu.Unlock()
		return false
	}
	p := q.next
	q.next = nil
	q.d.metrics.queueDepth.WithLabelValues(q.name).Set(0)
	j := p.job
	j.Status, j.Error, j.Ended = state.JobCanceled, "canceled before it started", time.Now().UTC()
	if err := q.d.db.UpdateJob(j); err != nil {
		q.log.Error("cancel queued job", slog.Any("err", err))
	}
	q.mu.Unlock()
	// Outside the lock: a callback may trigger the plan again.
	for _, fn := range p.done {
		fn(j)
	}
	return true
}

// state returns the running and queued job ids, "" for none.
func (q *planQueue) state() (running, queued string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running != nil {
		running = q.running.ID
	}
	if q.next != nil {
		queued = q.next.job.ID
	}
	return running, queued
}

// Serve runs queued jobs until ctx is done. drain is closed on a graceful
// shutdown: the running job stops starting files and checkpoints.
func (q *planQueue) Serve(ctx context.Context, drain <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-drain:
			return
		case <-q.wake:
		}
		q.mu.Lock()
		p := q.next
		q.next = nil
		if p == nil {
			q.mu.Unlock()
			continue
		}
		jctx, cancel := context.WithCancel(ctx)
		q.running, q.cancel = p.job, cancel
		q.d.metrics.queueDepth.WithLabelValues(q.name).Set(0)
		q.mu.Unlock()

		job := q.d.runJob(jctx, q.name, p, drain)
		cancel()

		q.mu.Lock()
		q.running, q.cancel = nil, nil
		q.mu.Unlock()
		for _, fn := range p.done {
			fn(job)
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
