package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferrysync/ferry/changelist"
	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote/connect"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

// retryEvery is how long a watcher or inbox that could not start waits
// before trying again.
var retryEvery = time.Minute

// startIncremental starts the watchers and changelist inboxes of the
// configuration's plans; they stop when ctx (the config generation) ends.
func (d *Daemon) startIncremental(ctx context.Context, cfg *config.Config) {
	for _, p := range cfg.Plans {
		q := d.queues[p.Name]
		if p.Watch {
			d.wg.Go(func() { d.watchLoop(ctx, cfg, p, q) })
		}
		if p.Changelist != "" {
			d.wg.Go(func() { d.inboxLoop(ctx, cfg, p, q) })
		}
	}
}

// watchLoop turns a watched source's batches into incremental jobs. When it
// starts it queues one full run, since changes made while nothing watched
// are not seen; an overflow does the same.
func (d *Daemon) watchLoop(ctx context.Context, cfg *config.Config, p *config.Plan, q *planQueue) {
	log := q.log.With(slog.String("component", "watch"))
	root := p.SourceLocation().Path
	degraded := func(msg string) {
		d.metrics.watcherOverflows.WithLabelValues(p.Name).Inc()
		log.Warn("watcher degraded; a full scan follows", slog.String("reason", msg))
		d.alerts.fire(p.AlertNames(cfg), Event{Type: EventWatcherDegraded, Plan: p.Name, Message: msg})
	}
	for {
		w, err := changelist.NewWatcher(root, changelist.WatchOptions{Delay: p.WatchDelay.Duration,
			MaxDelay: p.WatchMaxDelay.Duration, Logger: log, OnDegraded: degraded})
		if err != nil {
			degraded(fmt.Sprintf("cannot watch %s: %v (retrying in %s; scheduled runs continue)", root, err, retryEvery))
			if !sleepCtx(ctx, retryEvery) {
				return
			}
			continue
		}
		log.Info("watching source", slog.String("root", root))
		if _, err := q.enqueue(request{trigger: TriggerWatch}); err != nil {
			log.Error("queue the initial scan", slog.Any("err", err))
		}
		batches := make(chan changelist.Batch, 16)
		served := make(chan error, 1)
		go func() { served <- w.Serve(ctx, batches) }()
		for {
			select {
			case <-ctx.Done():
				<-served
				return
			case err := <-served:
				log.Error("watcher stopped", slog.Any("err", err))
				if !sleepCtx(ctx, retryEvery) {
					return
				}
			case b := <-batches:
				d.watchBatch(q, p, b, log)
				continue
			}
			break
		}
	}
}

func (d *Daemon) watchBatch(q *planQueue, p *config.Plan, b changelist.Batch, log *slog.Logger) {
	if b.Empty() {
		return
	}
	if b.Overflow {
		log.Warn("watcher lost changes; queuing a full scan", slog.String("reason", b.Reason))
		if _, err := q.enqueue(request{trigger: TriggerWatch}); err != nil {
			log.Error("queue a full scan", slog.Any("err", err))
		}
		return
	}
	cs := &syncer.ChangeSet{Origin: "watch", Upserts: b.Upserts, Deletes: b.Deletes}
	upserted := make(map[string]bool, len(b.Upserts))
	for _, k := range b.Upserts {
		upserted[k] = true
	}
	for _, dir := range b.DeletedDirs {
		// The watcher cannot list a vanished directory; the index of what
		// was synced can. The engine still checks each path is gone. A key
		// upserted in the same batch (the directory was made again) is not
		// gone: it would only land in the skipped list as "still exists".
		err := d.db.IterateFiles(p.Name, strings.TrimSuffix(dir, "/")+"/", func(path string, _ state.FileEntry) error {
			if !upserted[path] {
				cs.Deletes = append(cs.Deletes, path)
			}
			return nil
		})
		if err != nil {
			log.Error("expand deleted directory", slog.String("dir", dir), slog.Any("err", err))
		}
	}
	for _, s := range b.Skipped {
		cs.Skipped = append(cs.Skipped, syncer.SkippedEntry{Path: s.Path, Reason: s.Reason})
	}
	d.metrics.watcherEvents.WithLabelValues(p.Name).Add(float64(len(cs.Upserts) + len(cs.Deletes) + len(cs.Skipped)))
	if id, err := q.enqueue(request{trigger: TriggerWatch, changes: cs}); err != nil {
		log.Error("queue a watch batch", slog.Any("err", err))
	} else {
		log.Info("watch batch queued", slog.String("job", id), slog.Int("upserts", len(cs.Upserts)),
			slog.Int("deletes", len(cs.Deletes)))
	}
}

// inboxLoop claims the changelists dropped into a plan's inbox one at a
// time, runs each as an incremental job, and files it under done/ — or
// rejected/ with a .error saying why. A list whose job could not run (a
// remote down, the daemon stopping) is released and tried again later.
func (d *Daemon) inboxLoop(ctx context.Context, cfg *config.Config, p *config.Plan, q *planQueue) {
	log := q.log.With(slog.String("component", "changelist"))
	var inbox *changelist.Inbox
	for inbox == nil {
		var err error
		if inbox, err = OpenInbox(ctx, cfg, p, d.db, log); err != nil {
			log.Error("changelist inbox unavailable; retrying", slog.Any("err", err), slog.Duration("in", retryEvery))
			if !sleepCtx(ctx, retryEvery) {
				return
			}
		}
	}
	wake := make(chan struct{}, 1)
	notify := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	if inbox.IsLocal() {
		go func() {
			if err := inbox.Watch(ctx, notify); err != nil {
				log.Warn("inbox not watched; polling only", slog.Any("err", err))
			}
		}()
	}
	poll := time.NewTicker(p.ChangelistPoll.Duration)
	defer poll.Stop()
	log.Info("changelist inbox open", slog.String("inbox", inbox.String()))
	for {
		c, err := inbox.Next(ctx)
		if err != nil {
			if !errors.Is(err, changelist.ErrNoList) {
				log.Error("changelist inbox", slog.Any("err", err))
			}
			select {
			case <-ctx.Done():
				return
			case <-d.drain:
				return
			case <-wake:
			case <-poll.C:
			}
			continue
		}
		if !d.runClaim(ctx, q, c, log) {
			return
		}
	}
}

// runClaim processes one claimed list; false means stop (shutdown).
func (d *Daemon) runClaim(ctx context.Context, q *planQueue, c *changelist.Claim, log *slog.Logger) bool {
	bg := context.WithoutCancel(ctx)
	cs, err := ClaimChanges(ctx, c, log)
	if err != nil {
		return sleepCtx(ctx, retryEvery)
	}
	if cs == nil {
		return true // rejected
	}
	done := make(chan *state.Job, 1)
	id, err := q.enqueue(request{trigger: TriggerChangelist, changes: cs, done: func(j *state.Job) { done <- j }})
	if err != nil {
		log.Error("queue changelist job", slog.Any("err", err))
		_ = c.Release(bg)
		return sleepCtx(ctx, retryEvery)
	}
	log.Info("changelist job queued", slog.String("list", c.Name()), slog.String("job", id),
		slog.Int("upserts", len(cs.Upserts)), slog.Int("deletes", len(cs.Deletes)), slog.Int("skipped", len(cs.Skipped)))
	var j *state.Job
	select {
	case j = <-done:
	case <-d.drain:
		_ = c.Release(bg)
		return false
	}
	if !FinishClaim(bg, c, j, log) {
		return sleepCtx(ctx, retryEvery)
	}
	return true
}

// ClaimChanges reads a claimed list into the changes of its incremental
// job. A broken list, or one whose content was processed already, is
// rejected (filed under rejected/ with the reason) and nil is returned; a
// list that could not be read is released, to be tried again, and the
// error returned. The daemon's inbox and `ferry plan run` without a daemon
// both process lists with ClaimChanges, then FinishClaim.
func ClaimChanges(ctx context.Context, c *changelist.Claim, log *slog.Logger) (*syncer.ChangeSet, error) {
	bg := context.WithoutCancel(ctx)
	list, err := c.Parse(ctx)
	if err != nil {
		var rej *changelist.RejectError
		var dup *changelist.DuplicateError
		if errors.As(err, &rej) || errors.As(err, &dup) {
			where, rerr := c.Reject(bg, err.Error())
			log.Warn("changelist rejected", slog.String("list", c.Name()), slog.String("to", where),
				slog.String("reason", err.Error()), slog.Any("err", rerr))
			return nil, nil
		}
		log.Error("read changelist; will retry", slog.String("list", c.Name()), slog.Any("err", err))
		_ = c.Release(bg)
		return nil, err
	}
	cs := &syncer.ChangeSet{Origin: c.Origin(), Upserts: list.Upserts, Deletes: list.Deletes}
	for _, s := range list.Skipped {
		cs.Skipped = append(cs.Skipped, syncer.SkippedEntry{Path: s.Path, Reason: s.Reason})
	}
	return cs, nil
}

// FinishClaim files a claimed list by the outcome of its job j (nil when
// the job could not run): under done/ when it completed or was partial,
// under rejected/ with the job's error when it failed (dropping the list
// again retries it), and otherwise — canceled, interrupted, not run — it
// releases the list to be claimed again later and returns false.
func FinishClaim(ctx context.Context, c *changelist.Claim, j *state.Job, log *slog.Logger) bool {
	switch {
	case j != nil && (j.Status == state.JobCompleted || j.Status == state.JobPartial):
		where, err := c.Done(ctx)
		log.Info("changelist done", slog.String("list", c.Name()), slog.String("job", j.ID),
			slog.String("to", where), slog.Any("err", err))
		return true
	case j != nil && j.Status == state.JobFailed && j.Meta[syncer.MetaUnreachable] != "":
		// The list is fine; a remote stopped answering. Its changes would
		// be lost with a rejection: it is tried again, as the job's
		// remaining files are.
		log.Warn("changelist job stopped, a remote is unreachable; the list will be tried again", slog.String("list", c.Name()),
			slog.String("job", j.ID), slog.String("side", j.Meta[syncer.MetaUnreachable]))
		_ = c.Release(ctx)
		return false
	case j != nil && j.Status == state.JobFailed:
		where, err := c.Reject(ctx, fmt.Sprintf("job %s failed: %s", j.ID, j.Error))
		log.Warn("changelist job failed; list rejected", slog.String("list", c.Name()), slog.String("job", j.ID),
			slog.String("to", where), slog.Any("err", err))
		return true
	default:
		status := "not run"
		if j != nil {
			status = j.Status
		}
		log.Warn("changelist job did not finish; the list will be tried again", slog.String("list", c.Name()),
			slog.String("status", status))
		_ = c.Release(ctx)
		return false
	}
}

// OpenInbox opens plan p's changelist inbox, with db for its ledger: a
// local directory, or DIR on the plan's own source or destination (a local
// directory when that side is local).
func OpenInbox(ctx context.Context, cfg *config.Config, p *config.Plan, db *state.DB, log *slog.Logger) (*changelist.Inbox, error) {
	opts := changelist.InboxOptions{Plan: p.Name, DB: db, Logger: log}
	side, dir := p.ChangelistInbox()
	if side == "" {
		return changelist.NewLocalInbox(dir, opts)
	}
	loc := p.SourceLocation()
	if side == config.ChangelistDestination {
		loc = p.DestinationLocation()
	}
	rel := strings.Trim(dir, "/")
	if loc.IsLocal() {
		path := filepath.Join(loc.Path, filepath.FromSlash(rel))
		if err := os.MkdirAll(path, 0o750); err != nil {
			return nil, err
		}
		return changelist.NewLocalInbox(path, opts)
	}
	store, err := connect.Open(ctx, cfg, loc)
	if err != nil {
		return nil, err
	}
	return changelist.NewRemoteInbox(store, rel+"/", p.Changelist, opts)
}

// sleepCtx waits d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
