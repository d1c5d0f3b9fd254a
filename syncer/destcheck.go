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
	// Source and Destination are the plan's two ends then: a check of
	// other ends says nothing of these.
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// LastDestinationCheck returns when the last scan of plan that checked
// its destination started (zero when none has).
func LastDestinationCheck(db *state.DB, plan string) (time.Time, error) {
	c, err := lastCheck(db, plan)
	return c.At, err
}

func lastCheck(db *state.DB, plan string) (destCheck, error) {
	var c destCheck
	if _, err := db.GetRecord(destCheckNamespace, plan, &c); err != nil {
		return destCheck{}, fmt.Errorf("read the last destination check of plan %s: %w", plan, err)
	}
	return c, nil
}

// MetaDestCheck is the job meta key that says whether the job checked the
// destination for the files the index knows ("checked: " and why), or
// trusted the index (DestCheckTrusted, or DestCheckListedForDeletes when
// the delete pass then listed the destination in full).
const MetaDestCheck = "destination_check"

// The beginnings of a MetaDestCheck that trusted the index; what follows
// says when the destination was last checked and when it will be next.
const (
	DestCheckTrusted          = "trusted the file index: "
	DestCheckListedForDeletes = "listed for the deletes; the copies trusted the file index: "
)

// wantDestCheck decides whether this job checks the destination for the
// files the index says are there. A scan lists the destination (one
// listing); a job of listed files (mode files) looks each of them up. It
// checks when asked to (RunOptions.CheckDestination), when
// Plan.RecheckDestination is 0, when the plan's source or destination is
// not the one the last check saw, and when that check is older than
// RecheckDestination — a job of listed files always, as it records no
// check. An incremental job never does: it touches only the changed
// paths. The decision goes into the job's meta (destination_check).
func (r *run) wantDestCheck() bool {
	if r.opt.Changes != nil {
		return false
	}
	why := r.destCheckReason()
	if why == "" {
		return false
	}
	r.job.Meta[MetaDestCheck] = "checked: " + why
	return true
}

// destCheckReason says why the job checks the destination, or "" when it
// trusts the index (and notes that in the job's meta).
func (r *run) destCheckReason() string {
	switch {
	case r.opt.CheckDestination:
		return "asked for"
	case r.p.RecheckDestination <= 0:
		return "every run (recheck_destination 0)"
	case r.p.Mode != ModeScan:
		return "the listed files are looked up"
	}
	last, err := lastCheck(r.e.DB, r.p.Name)
	switch {
	case err != nil:
		r.log.Warn("checking the destination this time", slog.Any("err", err))
		return "the last check could not be read"
	case last.At.IsZero():
		return "no earlier check"
	case last.Source != r.p.SourceDesc || last.Destination != r.p.DestDesc:
		return fmt.Sprintf("the plan's ends changed since the last check (%s → %s)", last.Source, last.Destination)
	}
	due := last.At.Add(r.p.RecheckDestination)
	if !r.start.Before(due) {
		return "the last check was at " + last.At.UTC().Format(time.RFC3339)
	}
	r.job.Meta[MetaDestCheck] = fmt.Sprintf("%slast checked %s, next check after %s", DestCheckTrusted,
		last.At.UTC().Format(time.RFC3339), due.UTC().Format(time.RFC3339))
	r.log.Info("destination not listed: the file index is trusted for files it knows",
		slog.Time("last_check", last.At), slog.Time("next_check_after", due))
	return ""
}

// recordDestCheck remembers a scan that checked the destination and
// reached every file, so that later scans within RecheckDestination trust
// the index. A scan whose listing failed is not a check.
func (r *run) recordDestCheck() {
	if !r.look.check || !r.look.ordered || r.p.DryRun || r.look.listErr() != nil {
		return
	}
	switch r.job.Status {
	case state.JobCompleted, state.JobPartial:
	default:
		return
	}
	c := destCheck{At: r.job.Started, Job: r.job.ID, Source: r.p.SourceDesc, Destination: r.p.DestDesc}
	if err := r.e.DB.PutRecord(destCheckNamespace, r.p.Name, c); err != nil {
		r.log.Warn("record the destination check", slog.Any("err", err))
	}
}
