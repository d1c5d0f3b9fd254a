package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/connect"
)

// probeEvery is how often each remote a plan uses is probed; probeFailures
// consecutive failures raise remote_unreachable.
var probeEvery = 30 * time.Second

const probeFailures = 3

// probeKey is looked up at each probe; its absence is the healthy answer.
const probeKey = ".ferry-health-probe"

// startProbes probes every remote that a plan, vault or mount uses.
func (d *Daemon) startProbes(ctx context.Context, cfg *config.Config) {
	used := map[string]bool{}
	for _, p := range cfg.Plans {
		for _, l := range []config.Location{p.SourceLocation(), p.DestinationLocation()} {
			if !l.IsLocal() {
				used[l.Remote] = true
			}
		}
	}
	for _, v := range cfg.Vaults {
		used[v.Remote] = true
	}
	for _, name := range sortedNames(used) {
		r, ok := cfg.Remotes[name]
		if !ok {
			continue
		}
		d.wg.Go(func() { d.probeLoop(ctx, cfg, r) })
	}
}

func (d *Daemon) probeLoop(ctx context.Context, cfg *config.Config, r *config.Remote) {
	log := d.log.With(slog.String("remote", r.Name))
	failures := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := d.probe(ctx, cfg, r)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			d.metrics.remoteUp.WithLabelValues(r.Name).Set(1)
			if d.setRemoteDown(r.Name, false) {
				log.Info("remote recovered")
				d.alerts.fire(d.allAlerts(), Event{Type: EventRemoteRecovered, Remote: r.Name,
					Message: fmt.Sprintf("remote %s answers again", r.Name)})
			}
		} else {
			failures++
			d.metrics.remoteUp.WithLabelValues(r.Name).Set(0)
			log.Warn("remote probe failed", slog.Int("consecutive", failures), slog.Any("err", err))
			if failures >= probeFailures {
				d.remoteUnreachable(Event{Remote: r.Name,
					Message: fmt.Sprintf("remote %s failed %d health probes in a row: %v", r.Name, failures, err)})
			}
		}
		t.Reset(probeEvery)
	}
}

func (d *Daemon) probe(ctx context.Context, cfg *config.Config, r *config.Remote) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := connect.OpenRemote(ctx, cfg, r, "")
	if err != nil {
		return err
	}
	defer closeStore(s)
	if _, err := s.Stat(ctx, probeKey); err != nil && !errors.Is(err, remote.ErrNotExist) {
		return err
	}
	return nil
}

func (d *Daemon) allAlerts() []string {
	return sortedNames(d.config().Alerts)
}

// remoteUnreachable marks ev.Remote down and fires remote_unreachable with
// ev, unless the remote is down already: the health probes and the jobs
// that found it unreachable raise one alert per outage, and the probes'
// remote_recovered ends it.
func (d *Daemon) remoteUnreachable(ev Event) {
	if !d.setRemoteDown(ev.Remote, true) {
		return
	}
	ev.Type = EventRemoteUnreachable
	d.metrics.remoteUp.WithLabelValues(ev.Remote).Set(0)
	d.log.Warn("remote unreachable", slog.String("remote", ev.Remote), slog.String("reason", ev.Message))
	d.alerts.fire(d.allAlerts(), ev)
}

// setRemoteDown records whether the remote is down and reports whether
// that changed.
func (d *Daemon) setRemoteDown(name string, down bool) (changed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.remoteDown[name] == down {
		return false
	}
	if down {
		d.remoteDown[name] = true
	} else {
		delete(d.remoteDown, name)
	}
	return true
}
