package syncer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ferrysync/ferry/state"
)

// destCheckNamespace is the state database namespace of the last
// destination check of each plan (key: the plan's name).
const destCheckNamespace = "destcheck"

// destCheck is the record of a plan's last scan that read the
// destination's listing.
type destCheck struct {
	// At is when that scan started: changes at the destination after it
	// may not have been seen.
	At  time.Time `json:"at"`
	Job string    `json:"job"`
}

// LastDestinationCheck returns when the last scan of plan that checked
// its destination started (zero when none has).
func LastDestinationCheck(db *state.DB, plan string) (time.Time, error) {
	var c destCheck
	if _, err := db.GetRecord(destCheckNamespace, plan, &c); err != nil {
		return time.Time{}, fmt.Errorf("read the last destination check of plan %s: %w", plan, err)
	}
	return c.At, nil
}

// wantDestCheck decides whether this job's scan reads the destination's
// listing to check the files the index says are there: always when asked
// to (RunOptions.CheckDestination) or when Plan.RecheckDestination is 0,
// otherwise when the last check is older than RecheckDestination. Only
// scans check: an incremental job touches only the changed paths.
func (r *run) wantDestCheck() bool {
	if r.opt.Changes != nil || r.p.Mode != ModeScan {
		return false
	}
	if r.opt.CheckDestination || r.p.RecheckDestination <= 0 {
		return true
	}
	last, err := LastDestinationCheck(r.e.DB, r.p.Name)
	if err != nil {
		r.log.Warn("checking the destination this time", slog.Any("err", err))
		return true
	}
	due := last.Add(r.p.RecheckDestination)
	if !r.start.Before(due) {
		return true
	}
	r.log.Info("destination not listed: the file index is trusted for files it knows",
		slog.Time("last_check", last), slog.Time("next_check_after", due))
	return false
}

// recordDestCheck remembers a scan that checked the destination and
// reached every file, so that later scans within RecheckDestination trust
// the index. A scan whose listing failed is not a check.
func (r *run) recordDestCheck() {
	if !r.look.check || r.p.DryRun || r.look.listErr() != nil {
		return
	}
	switch r.job.Status {
	case state.JobCompleted, state.JobPartial:
	default:
		return
	}
	if err := r.e.DB.PutRecord(destCheckNamespace, r.p.Name, destCheck{At: r.job.Started, Job: r.job.ID}); err != nil {
		r.log.Warn("record the destination check", slog.Any("err", err))
	}
}
