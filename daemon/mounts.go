package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

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
	clearDeadMount(mc.Path, log)
	if mc.Vault != "" {
		v, closeFn, err := d.openVault(ctx, cfg, mc.Vault)
		if err != nil {
			return nil, err
		}
		opts.CacheDir = filepath.Join(cfg.StateDir, "vaultcache")
		m, err := fusefs.MountVault(ctx, mc.Path, v, opts)
		if err != nil {
			closeFn()
			return nil, err
		}
		return &mounted{path: mc.Path, m: m, release: closeFn}, nil
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

// clearDeadMount unmounts a FUSE mount at path whose server is gone — a
// daemon killed before it could unmount leaves one, on which every access
// fails with ENOTCONN — so that a restarted daemon can mount there again
// instead of failing, or stacking its mount on the dead one. A live mount
// is left alone. statfs is asked, not stat: the kernel answers a stat from
// its attribute cache for a while after the server died.
func clearDeadMount(path string, log *slog.Logger) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); !errors.Is(err, syscall.ENOTCONN) {
		return
	}
	if _, err := fusefs.Unmount(path); err != nil {
		log.Warn("cannot remove the dead FUSE mount a previous run left", slog.Any("err", err))
		return
	}
	log.Warn("removed the dead FUSE mount a previous run left")
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
