package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/connect"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

// Options configure a daemon.
type Options struct {
	// ConfigPath is the configuration file; SIGHUP reloads it.
	ConfigPath string
	Logger     *slog.Logger
	// ShutdownGrace bounds how long running jobs may take to checkpoint
	// after SIGTERM before they are stopped hard (default 30s).
	ShutdownGrace time.Duration
	// Notify sends an sd_notify state; nil uses the systemd socket from
	// NOTIFY_SOCKET (a no-op outside systemd).
	Notify func(state string)
	// Signals, when set, replaces the process signals (tests).
	Signals <-chan os.Signal
}

// Daemon is a running Ferry service.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	db      *state.DB
	eng     *syncer.Engine
	metrics *metrics
	alerts  *alerter

	mu  sync.Mutex
	cfg *config.Config
	// boot is the configuration the daemon started with: its state_dir,
	// socket, metrics_listen and mounts stay in force until a restart.
	boot   *config.Config
	queues map[string]*planQueue
	// generation is canceled when the config is replaced: it stops the
	// schedule timers, probes and watchers of the old config.
	genCancel context.CancelFunc
	// remoteDown holds the remotes that raised remote_unreachable and have
	// not recovered; it outlives a reload, so a reload neither repeats the
	// alert nor loses the remote_recovered that follows it.
	remoteDown map[string]bool

	started time.Time
	wg      sync.WaitGroup
	drain   chan struct{}
}

// New loads the configuration; it opens nothing yet.
func New(opts Options) (*Daemon, *config.Config, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.Notify == nil {
		opts.Notify = sdNotify
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, nil, err
	}
	d := &Daemon{opts: opts, log: opts.Logger, cfg: cfg, boot: cfg, queues: map[string]*planQueue{},
		remoteDown: map[string]bool{}, metrics: newMetrics(), drain: make(chan struct{})}
	d.alerts = newAlerter(d.log.With(slog.String("component", "alerts")))
	return d, cfg, nil
}

// Serve runs the daemon until ctx is done or SIGTERM/SIGINT arrives, then
// shuts down gracefully and returns nil. Startup failures are returned.
func (d *Daemon) Serve(ctx context.Context) error {
	cfg := d.config()
	d.started = time.Now()
	// Signals are caught from the start: a SIGHUP during startup must not
	// kill the process (its default action), nor a SIGTERM go unnoticed.
	sigs := d.opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}
	d.opts.Notify("STATUS=starting")

	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	db, err := state.Open(cfg.StateDir, state.Options{Logger: d.log.With(slog.String("component", "state"))})
	if err != nil {
		return err
	}
	defer db.Close()
	d.db = db
	d.eng = &syncer.Engine{DB: db, Log: d.log.With(slog.String("component", "syncer"))}

	ln, err := listenSocket(cfg.Socket)
	if err != nil {
		return err
	}
	api := &http.Server{Handler: d.apiHandler(), ReadHeaderTimeout: 10 * time.Second}
	defer os.Remove(cfg.Socket)

	var metricsSrv *http.Server
	if cfg.MetricsListen != "" {
		if metricsSrv, err = d.serveMetrics(cfg.MetricsListen); err != nil {
			ln.Close()
			return err
		}
	}

	runCtx, stopRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRuns()
	if err := d.apply(runCtx, cfg); err != nil {
		ln.Close()
		return err
	}
	d.recover()
	d.wg.Go(func() { d.sweepLoop(runCtx) })
	d.wg.Go(func() { d.recoverReplications(runCtx, cfg) })
	mounts := d.startMounts(runCtx, cfg)
	defer func() { d.stopMounts(mounts) }() // nil after a normal stop
	// The API answers only now that every plan has its queue and the
	// interrupted jobs are queued again: a Run Now that arrived earlier
	// waited in the listen backlog instead of finding no plan, or taking the
	// place of the job to resume.
	go func() {
		if err := api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("control API stopped", slog.Any("err", err))
		}
	}()

	d.opts.Notify("READY=1")
	d.opts.Notify("STATUS=" + d.statusLine())
	d.log.Info("ferry daemon ready", slog.String("config", cfg.File), slog.String("socket", cfg.Socket),
		slog.Int("plans", len(cfg.Plans)))
	stopWatchdog := startWatchdog(d.opts.Notify)

	statusTick := time.NewTicker(10 * time.Second)
	defer statusTick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload(runCtx)
				continue
			}
			d.log.Info("shutting down", slog.String("signal", sig.String()))
			break loop
		case <-statusTick.C:
			d.opts.Notify("STATUS=" + d.statusLine())
		}
	}

	// Graceful stop: no new work; running jobs checkpoint within the grace.
	d.opts.Notify("STOPPING=1")
	stopWatchdog()
	close(d.drain)
	d.mu.Lock()
	if d.genCancel != nil {
		d.genCancel()
	}
	d.mu.Unlock()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = api.Shutdown(shutdownCtx)
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(shutdownCtx)
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.opts.ShutdownGrace):
		d.log.Warn("jobs did not checkpoint in time; stopping them", slog.Duration("grace", d.opts.ShutdownGrace))
		stopRuns()
		<-done
	}
	d.stopMounts(mounts)
	mounts = nil
	d.alerts.wait(5 * time.Second)
	d.log.Info("ferry daemon stopped")
	return nil
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// listenSocket opens the control socket with mode 0660, replacing a stale
// socket file but refusing to steal one a live daemon answers on.
func listenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another ferry daemon is answering on it", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// apply starts what a configuration asks for: a queue per plan, schedule
// timers, remote health probes. Queues of plans that remain keep running.
func (d *Daemon) apply(runCtx context.Context, cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.genCancel != nil {
		d.genCancel()
	}
	genCtx, cancel := context.WithCancel(runCtx)
	d.genCancel = cancel
	d.cfg = cfg
	d.alerts.configure(cfg)
	for _, p := range cfg.Plans {
		q, ok := d.queues[p.Name]
		if !ok {
			q = newPlanQueue(d, p.Name)
			d.queues[p.Name] = q
			d.wg.Go(func() { q.Serve(runCtx, d.drain) })
		}
		if p.Schedule != nil {
			s := *p.Schedule
			d.wg.Go(func() { d.scheduleLoop(genCtx, q, s) })
		}
	}
	d.startProbes(genCtx, cfg)
	d.startIncremental(genCtx, cfg)
	d.startPolicies(genCtx, cfg)
	return nil
}

// reload re-reads the configuration; an invalid one is logged and the old
// one kept.
func (d *Daemon) reload(runCtx context.Context) {
	d.opts.Notify("RELOADING=1")
	defer d.opts.Notify("READY=1")
	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		d.log.Error("reload refused: the new configuration is invalid; keeping the running one",
			slog.String("config", d.opts.ConfigPath), slog.String("problems", err.Error()))
		return
	}
	if err := d.apply(runCtx, cfg); err != nil {
		d.log.Error("reload failed", slog.Any("err", err))
		return
	}
	d.log.Info("configuration reloaded", slog.String("config", cfg.File), slog.Int("plans", len(cfg.Plans)))
	for _, key := range restartOnly(d.boot, cfg) {
		d.log.Warn("a changed setting takes effect at the next start of the daemon, not at a reload; the daemon keeps the value it started with",
			slog.String("key", key))
	}
}

// restartOnly names the settings that differ between old (the
// configuration the daemon started with) and cfg but that a reload does
// not apply: where the daemon keeps its state and listens, and its mounts.
func restartOnly(old, cfg *config.Config) []string {
	var keys []string
	for _, s := range []struct{ key, old, new string }{
		{"state_dir", old.StateDir, cfg.StateDir},
		{"socket", old.Socket, cfg.Socket},
		{"metrics_listen", old.MetricsListen, cfg.MetricsListen},
	} {
		if s.old != s.new {
			keys = append(keys, fmt.Sprintf("%s (in use %q, in the file %q)", s.key, s.old, s.new))
		}
	}
	if !reflect.DeepEqual(old.Mounts, cfg.Mounts) {
		keys = append(keys, "mounts")
	}
	return keys
}

// recover closes queued jobs a stopped daemon left behind and resumes each
// plan's interrupted job.
func (d *Daemon) recover() {
	now := time.Now().UTC()
	err := d.db.ListJobs(state.JobFilter{Status: state.JobQueued}, func(j *state.Job) error {
		j.Status, j.Error, j.Ended = state.JobCanceled, "the daemon stopped before the job started", now
		return d.db.UpdateJob(j)
	})
	if err != nil {
		d.log.Error("close stale queued jobs", slog.Any("err", err))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// A job left running by a plan the configuration no longer has can
	// never resume: close it, rather than show it running for ever.
	err = d.db.ListJobs(state.JobFilter{Status: state.JobRunning}, func(j *state.Job) error {
		if _, ok := d.queues[j.Plan]; ok {
			return nil
		}
		d.log.Warn("closing an interrupted job of a plan no longer configured", slog.String("plan", j.Plan), slog.String("job", j.ID))
		j.Status, j.Ended = state.JobCanceled, now
		j.Error = "interrupted, and its plan is no longer in the configuration"
		return d.db.UpdateJob(j)
	})
	if err != nil {
		d.log.Error("close interrupted jobs of removed plans", slog.Any("err", err))
	}
	for name, q := range d.queues {
		var newest *state.Job
		err := d.db.ListJobs(state.JobFilter{Plan: name, Status: state.JobRunning, Newest: true}, func(j *state.Job) error {
			newest = j
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			d.log.Error("look for interrupted jobs", slog.String("plan", name), slog.Any("err", err))
			continue
		}
		if newest == nil {
			continue
		}
		d.log.Info("resuming interrupted job", slog.String("plan", name), slog.String("job", newest.ID))
		q.mu.Lock()
		q.next = &pending{job: newest, trigger: TriggerResume, full: newest.Meta["kind"] != "incremental"}
		if !q.next.full {
			// An incremental job's change set is gone with the process; a
			// full run covers its files.
			q.next.full = true
		}
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

var errStop = errors.New("stop")

// runJob runs one job of a plan with the current configuration.
func (d *Daemon) runJob(ctx context.Context, plan string, p *pending, drain <-chan struct{}) *state.Job {
	cfg := d.config()
	job := p.job
	fail := func(err error) *state.Job {
		job.Status, job.Error, job.Ended = state.JobFailed, err.Error(), time.Now().UTC()
		if job.Started.IsZero() {
			job.Started = job.Ended
		}
		if uerr := d.db.UpdateJob(job); uerr != nil {
			d.log.Error("record job", slog.Any("err", uerr))
		}
		d.finished(cfg, job)
		return job
	}
	cp, ok := cfg.LookupPlan(plan)
	if !ok {
		return fail(fmt.Errorf("plan %s is no longer in the configuration", plan))
	}
	src, err := connect.Open(ctx, cfg, cp.SourceLocation())
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	defer closeStore(src)
	dst, err := connect.Open(ctx, cfg, cp.DestinationLocation())
	if err != nil {
		return fail(fmt.Errorf("destination: %w", err))
	}
	defer closeStore(dst)
	sp, err := syncer.FromConfig(cp, src, dst)
	if err != nil {
		return fail(err)
	}
	opt := syncer.RunOptions{Trigger: p.trigger, Job: job, Drain: drain, CheckDestination: p.checkDest}
	if !p.full {
		opt.Changes = p.changes
	}
	d.opts.Notify("STATUS=" + d.statusLine())
	got, err := d.eng.Run(ctx, sp, opt)
	if err != nil {
		return fail(err)
	}
	d.finished(cfg, got)
	return got
}

// closeStore releases what a store holds open (a local store's directory
// handle), when it holds anything.
func closeStore(s remote.Store) {
	if c, ok := s.(io.Closer); ok {
		_ = c.Close()
	}
}

// finished updates metrics and fires alerts for a finished job. A job
// drained for shutdown is still running (the next start resumes it): it is
// neither counted nor alerted.
func (d *Daemon) finished(cfg *config.Config, j *state.Job) {
	if j.Status == state.JobRunning || j.Status == state.JobQueued {
		return
	}
	d.metrics.jobFinished(j)
	d.jobFoundRemoteDown(cfg, j)
	var kind string
	switch j.Status {
	case state.JobFailed:
		kind = EventJobFailed
	case state.JobPartial:
		kind = EventJobPartial
	default:
		return
	}
	names := []string{}
	if cp, ok := cfg.LookupPlan(j.Plan); ok {
		names = cp.AlertNames(cfg)
	}
	d.alerts.fire(names, Event{Type: kind, Plan: j.Plan, Job: j.ID, Status: j.Status,
		Message: fmt.Sprintf("job %s of plan %s %s: %s", j.ID, j.Plan, j.Status, j.Error), Counters: &j.Counters})
}

// jobFoundRemoteDown raises remote_unreachable for a job that failed
// because its source or destination stopped answering
// (syncer.MetaUnreachable), when that side is a remote.
func (d *Daemon) jobFoundRemoteDown(cfg *config.Config, j *state.Job) {
	cp, ok := cfg.LookupPlan(j.Plan)
	if !ok || j.Status != state.JobFailed {
		return
	}
	var loc config.Location
	switch j.Meta[syncer.MetaUnreachable] {
	case "source":
		loc = cp.SourceLocation()
	case "destination":
		loc = cp.DestinationLocation()
	}
	if loc.IsLocal() {
		return
	}
	d.remoteUnreachable(Event{Remote: loc.Remote, Plan: j.Plan, Job: j.ID,
		Message: fmt.Sprintf("remote %s unreachable during job %s of plan %s: %s", loc.Remote, j.ID, j.Plan, j.Error)})
}

// Trigger queues a job of the plan and returns its id.
func (d *Daemon) Trigger(plan string, r request) (string, error) {
	d.mu.Lock()
	q, ok := d.queues[plan]
	if ok {
		// A plan removed by a reload keeps its queue (a job may still
		// run), but takes no new work.
		_, ok = d.cfg.LookupPlan(plan)
	}
	d.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("%w: %q", errNoPlan, plan)
	}
	select {
	case <-d.drain:
		return "", errShuttingDown
	default:
	}
	return q.enqueue(r)
}

var (
	errNoPlan       = errors.New("no such plan")
	errShuttingDown = errors.New("the daemon is shutting down")
)

// statusLine summarizes what runs, for systemd's STATUS=.
func (d *Daemon) statusLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	running, queued := 0, 0
	for _, q := range d.queues {
		r, n := q.state()
		if r != "" {
			running++
		}
		if n != "" {
			queued++
		}
	}
	return fmt.Sprintf("%d plans, %d jobs running, %d queued", len(d.cfg.Plans), running, queued)
}

// sweepLoop removes jobs older than job_retention, at start and daily.
func (d *Daemon) sweepLoop(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.drain:
			return
		case <-t.C:
			cfg := d.config()
			n, err := d.db.SweepJobs(time.Now().Add(-cfg.JobRetention.Duration))
			if err != nil {
				d.log.Error("sweep old jobs", slog.Any("err", err))
			} else if n > 0 {
				d.log.Info("swept old jobs", slog.Int("jobs", n), slog.String("retention", cfg.JobRetention.String()))
			}
			t.Reset(24 * time.Hour)
		}
	}
}
