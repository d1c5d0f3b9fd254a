package main

import (
	"context"
	"errors"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/daemon"
	"github.com/ferrysync/ferry/state"
)

// jobSource is where job commands read jobs: the running daemon (through
// its socket) or, without one, the state database directly.
type jobSource interface {
	jobs(ctx context.Context, f state.JobFilter) ([]*state.Job, error)
	job(ctx context.Context, id string) (*state.Job, error)
	files(ctx context.Context, id string, kind state.ListKind, fn func(state.FileRecord) error) error
	close()
}

// openJobSource prefers a running daemon; without one it opens the state
// database in-process, or, when there is no state directory, answers that
// there are no jobs.
func (g *globalOptions) openJobSource(ctx context.Context) (jobSource, error) {
	cfg, err := g.loadConfig(true)
	if err != nil {
		return nil, err
	}
	if c, err := daemon.Dial(ctx, cfg.Socket); err == nil {
		return clientSource{c}, nil
	}
	if ok, err := stateExists(cfg); err != nil || !ok {
		return noJobs{}, err
	}
	s, err := g.openSession(cfg)
	if err != nil {
		return nil, err
	}
	return dbSource{s}, nil
}

// dialDaemon returns a client for the daemon of the configuration, or nil
// when none runs.
func (g *globalOptions) dialDaemon(ctx context.Context, cfg *config.Config) *daemon.Client {
	c, err := daemon.Dial(ctx, cfg.Socket)
	if err != nil {
		return nil
	}
	return c
}

type dbSource struct{ s *session }

func (d dbSource) jobs(_ context.Context, f state.JobFilter) ([]*state.Job, error) {
	var out []*state.Job
	err := d.s.db.ListJobs(f, func(j *state.Job) error { out = append(out, j); return nil })
	return out, err
}

func (d dbSource) job(_ context.Context, id string) (*state.Job, error) {
	j, err := d.s.db.GetJob(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, noJob(id)
	}
	return j, err
}

func noJob(id string) error { return usageErrorf("no job %q; see ferry job list", id) }

func (d dbSource) files(_ context.Context, id string, kind state.ListKind, fn func(state.FileRecord) error) error {
	return d.s.db.IterateFileRecords(id, kind, fn)
}

func (d dbSource) close() { d.s.close() }

// noJobs is the job source of a state directory that does not exist.
type noJobs struct{}

func (noJobs) jobs(context.Context, state.JobFilter) ([]*state.Job, error) { return nil, nil }
func (noJobs) job(_ context.Context, id string) (*state.Job, error)        { return nil, noJob(id) }
func (noJobs) files(_ context.Context, id string, _ state.ListKind, _ func(state.FileRecord) error) error {
	return noJob(id)
}
func (noJobs) close() {}

type clientSource struct{ c *daemon.Client }

func (c clientSource) jobs(ctx context.Context, f state.JobFilter) ([]*state.Job, error) {
	return c.c.Jobs(ctx, f)
}

func (c clientSource) job(ctx context.Context, id string) (*state.Job, error) {
	j, err := c.c.Job(ctx, id)
	var ae *daemon.APIError
	if errors.As(err, &ae) && ae.Status == 404 {
		return nil, usageErrorf("%s; see ferry job list", ae.Message)
	}
	return j, err
}

func (c clientSource) files(ctx context.Context, id string, kind state.ListKind, fn func(state.FileRecord) error) error {
	return c.c.JobFiles(ctx, id, kind, fn)
}

func (c clientSource) close() {}
