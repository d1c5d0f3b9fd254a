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
// database in-process.
func (g *globalOptions) openJobSource(ctx context.Context) (jobSource, error) {
	cfg, err := g.loadConfig(true)
	if err != nil {
		return nil, err
	}
	if c, err := daemon.Dial(ctx, cfg.Socket); err == nil {
		return clientSource{c}, nil
	}
	s, err := g.openSession(true)
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
		return nil, usageErrorf("no job %q; see ferry job list", id)
	}
	return j, err
}

func (d dbSource) files(_ context.Context, id string, kind state.ListKind, fn func(state.FileRecord) error) error {
	return d.s.db.IterateFileRecords(id, kind, fn)
}

func (d dbSource) close() { d.s.close() }

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
