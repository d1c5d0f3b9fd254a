package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote/connect"
	"github.com/ferrysync/ferry/vault"
)

// Alert events of vault policies.
const (
	EventBackupFailed      = "backup_failed"
	EventReplicationFailed = "replication_failed"
)

// openVault opens a configured vault; close releases its store.
func (d *Daemon) openVault(ctx context.Context, cfg *config.Config, name string) (v *vault.Vault, closeFn func(), err error) {
	vc, ok := cfg.Vaults[name]
	if !ok {
		return nil, nil, fmt.Errorf("no vault named %q in the configuration", name)
	}
	st, err := connect.OpenRemote(ctx, cfg, cfg.Remotes[vc.Remote], vc.Prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("vault %s: %w", name, err)
	}
	closeFn = func() {
		if c, ok := st.(io.Closer); ok {
			_ = c.Close()
		}
	}
	v, err = vault.Open(ctx, st, vault.Options{Name: name, Account: cfg.RemoteAccount(vc.Remote),
		Log: d.log.With(slog.String("component", "vault"), slog.String("vault", name)), CacheDir: filepath.Join(d.boot.StateDir, "vaultindex")})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return v, closeFn, nil
}

// startPolicies runs the backup and replication policies on their
// schedules. A policy never runs twice at once: a tick during a run is
// skipped (the next tick comes).
func (d *Daemon) startPolicies(ctx context.Context, cfg *config.Config) {
	for _, p := range cfg.BackupPolicies {
		if p.Schedule != nil {
			d.wg.Go(func() {
				d.policyLoop(ctx, "backup policy "+p.Name, *p.Schedule, func(ctx context.Context) { d.runBackupPolicy(ctx, cfg, p) })
			})
		}
	}
	for _, p := range cfg.ReplicationPolicies {
		if p.Schedule != nil {
			d.wg.Go(func() {
				d.policyLoop(ctx, "replication policy "+p.Name, *p.Schedule, func(ctx context.Context) { d.runReplicationPolicy(ctx, cfg, p) })
			})
		}
	}
}

func (d *Daemon) policyLoop(ctx context.Context, what string, s config.Schedule, run func(context.Context)) {
	if testScheduleEvery > 0 {
		s = config.Schedule{Start: time.Now(), Every: config.Duration{Duration: testScheduleEvery}}
	}
	var running atomic.Bool
	for {
		next := s.Next(time.Now())
		if next.IsZero() || !sleepCtx(ctx, time.Until(next)) {
			return
		}
		if !running.CompareAndSwap(false, true) {
			d.log.Warn("skipping a tick: the previous run is still going", slog.String("policy", what))
			continue
		}
		d.wg.Go(func() {
			defer running.Store(false)
			run(ctx)
		})
	}
}

// runBackupPolicy makes one backup of the policy's source and applies its
// keep rules to the backups of that source.
func (d *Daemon) runBackupPolicy(ctx context.Context, cfg *config.Config, p *config.BackupPolicy) {
	log := d.log.With(slog.String("backup_policy", p.Name))
	fail := func(err error) {
		d.metrics.policyRuns.WithLabelValues("backup", p.Name, "failed").Inc()
		log.Error("backup failed", slog.Any("err", err))
		d.alerts.fire(d.allAlerts(), Event{Type: EventBackupFailed, Plan: p.Name,
			Message: fmt.Sprintf("backup policy %s: %v", p.Name, err)})
	}
	loc := p.SourceLocation()
	if !loc.IsLocal() {
		fail(fmt.Errorf("source %s: backups are made of local directories only", p.Source))
		return
	}
	v, closeFn, err := d.openVault(ctx, cfg, p.Vault)
	if err != nil {
		fail(err)
		return
	}
	defer closeFn()
	m, err := v.Create(ctx, loc.Path, vault.BackupOptions{Name: p.Name})
	if err != nil {
		if ctx.Err() == nil {
			fail(err)
		}
		return
	}
	d.metrics.policyRuns.WithLabelValues("backup", p.Name, "completed").Inc()
	log.Info("backup created", slog.String("backup", m.ID), slog.String("vault", p.Vault))
	abs, _ := filepath.Abs(loc.Path)
	deleted, err := v.ApplyRetention(ctx, vault.Keep(p.Keep), func(m *vault.Manifest) bool {
		return !m.IsReplica() && m.Source == abs
	}, false)
	if err != nil {
		log.Error("apply keep rules", slog.Any("err", err))
	} else if len(deleted) > 0 {
		log.Info("old backups deleted by the keep rules", slog.Any("backups", deleted))
	}
}

// runReplicationPolicy replicates every available original backup of the
// source vault that the destination lacks, then applies the keep rules to
// the replicas this policy made.
func (d *Daemon) runReplicationPolicy(ctx context.Context, cfg *config.Config, p *config.ReplicationPolicy) {
	log := d.log.With(slog.String("replication_policy", p.Name))
	failed := func(err error) {
		d.metrics.policyRuns.WithLabelValues("replication", p.Name, "failed").Inc()
		log.Error("replication failed", slog.Any("err", err))
		d.alerts.fire(d.allAlerts(), Event{Type: EventReplicationFailed, Plan: p.Name,
			Message: fmt.Sprintf("replication policy %s: %v", p.Name, err)})
	}
	src, closeSrc, err := d.openVault(ctx, cfg, p.SourceVault)
	if err != nil {
		failed(err)
		return
	}
	defer closeSrc()
	dst, closeDst, err := d.openVault(ctx, cfg, p.DestinationVault)
	if err != nil {
		failed(err)
		return
	}
	defer closeDst()
	backups, err := src.Backups(ctx)
	if err != nil {
		failed(err)
		return
	}
	// What the destination already has is passed over without a call to
	// Replicate: that would add a skip record to the source vault for every
	// backup at every run.
	have, err := dst.Backups(ctx)
	if err != nil {
		failed(err)
		return
	}
	present := map[string]bool{}
	for _, m := range have {
		if m.Status == vault.StatusAvailable {
			present[m.ID] = true
		}
	}
	var errs []error
	for _, m := range backups {
		if m.Status != vault.StatusAvailable || m.IsReplica() || present[m.ID] || ctx.Err() != nil {
			continue
		}
		rec, err := vault.Replicate(ctx, src, m.ID, dst, vault.ReplicateOptions{DB: d.db})
		switch {
		case errors.Is(err, vault.ErrSecondAccount), errors.Is(err, vault.ErrNotAvailable):
			log.Warn("backup not replicated", slog.String("backup", m.ID), slog.Any("reason", err))
		case err != nil:
			errs = append(errs, fmt.Errorf("backup %s: %w", m.ID, err))
		case rec != nil && rec.Status == vault.ReplSuccess:
			log.Info("backup replicated", slog.String("backup", m.ID), slog.Int64("bytes", rec.Bytes),
				slog.Int64("chunks", rec.Chunks))
		}
	}
	if len(errs) > 0 && ctx.Err() == nil {
		failed(errors.Join(errs...))
	} else if ctx.Err() == nil {
		d.metrics.policyRuns.WithLabelValues("replication", p.Name, "completed").Inc()
	}
	if p.KeepCount > 0 || p.KeepDays > 0 {
		deleted, err := dst.ApplyReplicaRetention(ctx, p.KeepCount, p.KeepDays, func(m *vault.Manifest) bool {
			return m.ReplicatedFrom != nil && m.ReplicatedFrom.VaultID == src.ID()
		}, time.Now(), false)
		if err != nil {
			log.Error("apply replica keep rules", slog.Any("err", err))
		} else if len(deleted) > 0 {
			log.Info("old replicas deleted by the keep rules", slog.Any("backups", deleted))
		}
	}
}

// recoverReplications resumes (or marks failed) the replications a killed
// process left waiting or replicating; failures fire alerts.
func (d *Daemon) recoverReplications(ctx context.Context, cfg *config.Config) {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	open := func(ctx context.Context, name string) (*vault.Vault, error) {
		v, c, err := d.openVault(ctx, cfg, name)
		if err == nil {
			closers = append(closers, c)
		}
		return v, err
	}
	recs, err := vault.RecoverReplications(ctx, d.db, open, vault.ReplicateOptions{DB: d.db})
	if err != nil {
		d.log.Error("recover replications", slog.Any("err", err))
	}
	for _, r := range recs {
		d.log.Info("interrupted replication recovered", slog.String("replication", r.ID),
			slog.String("backup", r.BackupID), slog.String("status", r.Status))
		if r.Status == vault.ReplFail {
			d.alerts.fire(d.allAlerts(), Event{Type: EventReplicationFailed,
				Message: fmt.Sprintf("replication %s of backup %s to %s failed: %s", r.ID, r.BackupID, r.DestinationVault, r.Error)})
		}
	}
}
