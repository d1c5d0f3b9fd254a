package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/fusefs"
	"github.com/ferrysync/ferry/remote/connect"
)

// mounted is one [[mounts]] entry the daemon holds.
type mounted struct {
	path    string
	m       *fusefs.Mount
	release func()
}

// startMounts mounts every [[mounts]] entry. A mount that fails is logged
// and alerted; the daemon runs on without it. Mounts are not changed by a
// reload: they follow the configuration the daemon started with.
func (d *Daemon) startMounts(ctx context.Context, cfg *config.Config) []*mounted {
	var out []*mounted
	for _, mc := range cfg.Mounts {
		m, err := d.mountOne(ctx, cfg, mc)
		if err != nil {
			d.log.Error("mount failed", slog.String("path", mc.Path), slog.Any("err", err))
			d.alerts.fire(d.allAlerts(), Event{Type: EventMountFailed, Message: fmt.Sprintf("mount %s: %v", mc.Path, err)})
			continue
		}
		d.log.Info("mounted", slog.String("path", mc.Path), slog.String("what", mountSource(mc)))
		out = append(out, m)
	}
	return out
}

// EventMountFailed: a [[mounts]] entry could not be mounted.
const EventMountFailed = "mount_failed"

func mountSource(mc *config.Mount) string {
	if mc.Vault != "" {
		return "vault " + mc.Vault
	}
	return mc.Remote
}

func (d *Daemon) mountOne(ctx context.Context, cfg *config.Config, mc *config.Mount) (*mounted, error) {
	log := d.log.With(slog.String("component", "mount"), slog.String("path", mc.Path))
	opts := fusefs.Options{
		ReadOnly:   mc.ReadOnly,
		AllowOther: mc.AllowOther,
		CacheDir:   filepath.Join(cfg.StateDir, "cache", "mounts"),
		DB:         d.db,
		CacheID:    mountSource(mc),
		Logger:     log,
		Context:    ctx,
		Source:     "ferry:" + mountSource(mc),
	}
	if err := os.MkdirAll(opts.CacheDir, 0o750); err != nil {
		return nil, err
	}
	if mc.Vault != "" {
		return nil, fmt.Errorf("vault %s: vault mounts are not available in this version", mc.Vault)
	}
	st, err := connect.Open(ctx, cfg, config.Location{Remote: mc.Remote})
	if err != nil {
		return nil, err
	}
	m, err := fusefs.MountRemote(ctx, mc.Path, st, opts)
	if err != nil {
		return nil, err
	}
	return &mounted{path: mc.Path, m: m, release: func() {}}, nil
}

// stopMounts unmounts everything the daemon mounted (lazily when busy), so
// no stale mount is left behind.
func (d *Daemon) stopMounts(ms []*mounted) {
	for _, m := range ms {
		if err := m.m.Unmount(); err != nil {
			d.log.Error("unmount", slog.String("path", m.path), slog.Any("err", err))
		} else {
			d.log.Info("unmounted", slog.String("path", m.path))
		}
		m.release()
	}
}
