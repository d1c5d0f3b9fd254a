package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

// runFlags are the command-line options of an in-process run.
type runFlags struct {
	dryRun    bool
	checkDest bool              // list the destination whatever recheck_destination says
	changes   *syncer.ChangeSet // an incremental job of these changes only
}

// checkDestinationUsage is the help of --check-destination.
const checkDestinationUsage = "list the destination to find copies deleted or changed there, however recent the last check (see recheck_destination)"

// runPlanInProcess opens the plan's stores and runs one job here, with a
// progress bar on a terminal, then prints the summary. The returned error
// carries the exit code for the job's status.
func (g *globalOptions) runPlanInProcess(ctx context.Context, s *session, cp *config.Plan, rf runFlags, trigger string) error {
	job, err := g.runJobInProcess(ctx, s, cp, rf, trigger)
	if err != nil {
		return err
	}
	return jobExit(job)
}

// runJobInProcess is runPlanInProcess up to the job's end: it returns the
// job, or an error when none could run.
func (g *globalOptions) runJobInProcess(ctx context.Context, s *session, cp *config.Plan, rf runFlags, trigger string) (*state.Job, error) {
	what := "plan " + cp.Name + ": "
	if trigger == "cli" {
		what = "" // a one-off ferry sync: its plan name means nothing to the user
	}
	src, err := s.openLocation(ctx, cp.SourceLocation())
	if err != nil {
		if d := localDir(s.cfg, cp.SourceLocation()); d != "" && errors.Is(err, remote.ErrNotExist) {
			return nil, fmt.Errorf("%s%w", what, &missingDirError{dir: d, source: true})
		}
		return nil, fmt.Errorf("%ssource: %w", what, err)
	}
	dst, err := s.openLocation(ctx, cp.DestinationLocation())
	if err != nil {
		if d := localDir(s.cfg, cp.DestinationLocation()); d != "" && errors.Is(err, remote.ErrNotExist) {
			return nil, fmt.Errorf("%s%w", what, &missingDirError{dir: d})
		}
		return nil, fmt.Errorf("%sdestination: %w", what, err)
	}
	p, err := syncer.FromConfig(cp, src, dst)
	if err != nil {
		return nil, usageErrorf("plan %s: %v", cp.Name, err)
	}
	p.DryRun = rf.dryRun
	bar := newJobProgress(g.stderr, !g.json)
	job, err := s.eng.Run(ctx, p, syncer.RunOptions{Trigger: trigger, Changes: rf.changes, Progress: bar.update, CheckDestination: rf.checkDest})
	bar.finish()
	if err != nil {
		return nil, err
	}
	if g.json {
		err = printJSON(g.stdout, job)
	} else {
		printJobSummary(g.text(), job)
	}
	return job, err
}

// missingDirError is a plan's local source or destination directory that
// does not exist, with the advice for that end: a missing source may be a
// disk that is not mounted, and creating it would hide that; a missing
// destination is created by the user.
type missingDirError struct {
	dir    string
	source bool
}

func (e *missingDirError) Error() string {
	if e.source {
		return fmt.Sprintf("the source directory %s does not exist (is it mounted?)", e.dir)
	}
	return fmt.Sprintf("the destination directory %s does not exist (create it first, e.g. mkdir -p %s)", e.dir, e.dir)
}

func (e *missingDirError) Unwrap() error { return remote.ErrNotExist }

// localDir returns the directory a local location, or a prefix on a local
// remote, names; "" for other locations.
func localDir(cfg *config.Config, loc config.Location) string {
	if loc.IsLocal() {
		return loc.Path
	}
	if r, ok := cfg.Remotes[loc.Remote]; ok && r.Type == config.RemoteLocal {
		return filepath.Join(r.Path, filepath.FromSlash(loc.Prefix()))
	}
	return ""
}

// checkLocalDir refuses a local end of a plan whose directory does not
// exist, before anything is opened. Other problems (not a directory, no
// permission) are reported when the store is opened.
func checkLocalDir(cfg *config.Config, loc config.Location, source bool) error {
	d := localDir(cfg, loc)
	if d == "" {
		return nil
	}
	if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
		return &missingDirError{dir: d, source: source}
	}
	return nil
}

// jobExit maps a finished job's status to the exit code table.
func jobExit(j *state.Job) error {
	switch j.Status {
	case state.JobCompleted:
		return nil
	case state.JobPartial:
		return &exitError{code: exitPartial, err: fmt.Errorf("job %s partial: %s", j.ID, j.Error), silent: true}
	case state.JobCanceled:
		return &exitError{code: exitCanceled, err: fmt.Errorf("job %s canceled", j.ID), silent: true}
	default:
		return &exitError{code: exitFailure, err: fmt.Errorf("job %s failed: %s", j.ID, j.Error), silent: true}
	}
}

func printJobSummary(w io.Writer, j *state.Job) {
	fmt.Fprintf(w, "Job %s (plan %s): %s in %s\n", j.ID, j.Plan, statusStr(j), jobDuration(j))
	if j.Meta["dry_run"] == "true" {
		fmt.Fprintln(w, "  dry run: nothing was written; \"transferred\" is what would be copied, \"deleted\" what would be deleted")
	}
	if j.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", j.Error)
	}
	if n := j.Meta[syncer.MetaDeletesNotRun]; n != "" {
		fmt.Fprintf(w, "  deletes not run: %s\n", n)
	}
	if k := j.Meta[syncer.MetaDeletesWithheld]; k != "" {
		fmt.Fprintf(w, "  deletes withheld: %s\n", k)
	}
	// Say it when the copies trusted the index: "unchanged" then rests on
	// Ferry's records, not a look.
	dc := j.Meta[syncer.MetaDestCheck]
	if c, ok := strings.CutPrefix(dc, syncer.DestCheckTrusted); ok {
		fmt.Fprintf(w, "  destination not listed (%s); --check-destination lists it now\n", c)
	} else if c, ok := strings.CutPrefix(dc, syncer.DestCheckListedForDeletes); ok {
		fmt.Fprintf(w, "  destination listed for the deletes; the copies trusted the file index (%s); --check-destination checks them now\n", c)
	}
	printJobCounters(w, j)
}

func files(n int64) string { return nounStr(n, "file", "files") }

// printJobCounters prints a job's counters as a small table, and where to
// find its skipped and failed files.
func printJobCounters(w io.Writer, j *state.Job) {
	c := j.Counters
	tw := newTable(w)
	fmt.Fprintf(tw, "  found\t%s\t%s\n", files(c.FilesTotal), bytesStr(c.BytesTotal))
	speed := ""
	if s := j.Ended.Sub(j.Started).Seconds(); !j.Ended.IsZero() && s > 0 && c.BytesTransferred > c.BytesResumed {
		speed = fmt.Sprintf("(%s/s)", bytesStr(int64(float64(c.BytesTransferred-c.BytesResumed)/s)))
	}
	fmt.Fprintf(tw, "  transferred\t%s\t%s\t%s\n", files(c.FilesTransferred), bytesStr(c.BytesTransferred), speed)
	if c.FilesResumed > 0 {
		fmt.Fprintf(tw, "  …by an earlier attempt\t%s\t%s\n", files(c.FilesResumed), bytesStr(c.BytesResumed))
	}
	// What went over the wire, over all attempts: more than transferred
	// when parts were sent again, less when the job continued an upload
	// another job began.
	fmt.Fprintf(tw, "  sent\t\t%s\n", bytesStr(c.BytesSent))
	fmt.Fprintf(tw, "  unchanged\t%s\t\n", files(c.FilesUnchanged))
	fmt.Fprintf(tw, "  skipped\t%s\t%s\n", files(c.FilesSkipped), bytesStr(c.BytesSkipped))
	fmt.Fprintf(tw, "  failed\t%s\t%s\n", files(c.FilesFailed), bytesStr(c.BytesFailed))
	if c.FilesDeleted > 0 {
		fmt.Fprintf(tw, "  deleted\t%s\t\n", files(c.FilesDeleted))
	}
	tw.Flush()
	for _, l := range []struct {
		n    int64
		kind state.ListKind
	}{{c.FilesSkipped, state.ListSkipped}, {c.FilesFailed, state.ListFailed}} {
		if l.n > 0 {
			fmt.Fprintf(w, "  see: ferry job files %s --list %s\n", j.ID, l.kind)
		}
	}
}
