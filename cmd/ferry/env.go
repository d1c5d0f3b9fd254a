package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/connect"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

// loadConfig reads the configuration. When optional is true and the user
// did not name a file (flag or FERRY_CONFIG) and the default file does not
// exist, the built-in defaults are used, so `ferry sync /a /b` works with no
// configuration at all.
func (g *globalOptions) loadConfig(optional bool) (*config.Config, error) {
	if optional && g.configPath == defaultConfigPath {
		if _, err := os.Stat(g.configPath); errors.Is(err, fs.ErrNotExist) {
			return config.Parse(nil, "(built-in defaults)")
		}
	}
	return config.Load(g.configPath)
}

// session is what a command that runs jobs needs: the config, the state
// database and a sync engine.
type session struct {
	cfg *config.Config
	db  *state.DB
	eng *syncer.Engine
	log *slog.Logger
}

// openSession opens the state database of cfg, creating state_dir. A
// command checks its arguments, flags and names before: a command line it
// refuses leaves nothing behind.
func (g *globalOptions) openSession(cfg *config.Config) (*session, error) {
	// CLI commands log warnings only, unless --log-level says otherwise; the
	// daemon uses the config's log_level.
	log := g.logger("warn")
	if err := makeStateDir(cfg); err != nil {
		return nil, err
	}
	db, err := state.Open(cfg.StateDir, state.Options{Logger: log.With(slog.String("component", "state"))})
	if err != nil {
		return nil, unavailableError{err}
	}
	return &session{cfg: cfg, db: db, log: log,
		eng: &syncer.Engine{DB: db, Log: log.With(slog.String("component", "syncer"))}}, nil
}

// makeStateDir creates cfg's state directory when it is missing.
func makeStateDir(cfg *config.Config) error {
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return unavailableError{fmt.Errorf("state directory: %w", err)}
	}
	return nil
}

// stateExists reports whether cfg's state directory exists. Commands that
// only read records take a missing one as holding none, and leave it
// missing.
func stateExists(cfg *config.Config) (bool, error) {
	_, err := os.Stat(cfg.StateDir)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, unavailableError{fmt.Errorf("state directory: %w", err)}
}

func (s *session) close() {
	if s.db == nil {
		return
	}
	if err := s.db.Close(); err != nil {
		s.log.Error("close state database", slog.Any("err", err))
	}
}

// openLocation opens a store, marking connection failures as unavailable.
func (s *session) openLocation(ctx context.Context, loc config.Location) (remote.Store, error) {
	st, err := connect.Open(ctx, s.cfg, loc)
	if err != nil && remote.IsRetryable(err) {
		return nil, unavailableError{err}
	}
	return st, err
}
