package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/ferrysync/ferry/config"
)

// testScheduleEvery, when set, replaces every schedule's interval. It is
// set only by a test build (testhook_ferrytest.go, build tag ferrytest) and
// is never reachable from a configuration file.
var testScheduleEvery time.Duration

// scheduleLoop queues a job of q at each tick of s until ctx is done.
// Ticks missed while the daemon was down are not made up: the next tick is
// always the first one after now.
func (d *Daemon) scheduleLoop(ctx context.Context, q *planQueue, s config.Schedule) {
	if testScheduleEvery > 0 {
		s = config.Schedule{Start: time.Now(), Every: config.Duration{Duration: testScheduleEvery}}
	}
	for {
		next := s.Next(time.Now())
		if next.IsZero() {
			return
		}
		d.metrics.nextRun.WithLabelValues(q.name).Set(float64(next.Unix()))
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if id, err := q.enqueue(request{trigger: TriggerSchedule}); err != nil {
			q.log.Error("scheduled run", slog.Any("err", err))
		} else {
			q.log.Info("scheduled run queued", slog.String("job", id))
		}
	}
}

// nextRun returns a plan's next scheduled run, zero when it has none.
func nextRun(p *config.Plan, now time.Time) time.Time {
	if p.Schedule == nil {
		return time.Time{}
	}
	if testScheduleEvery > 0 {
		return now.Add(testScheduleEvery)
	}
	return p.Schedule.Next(now)
}
