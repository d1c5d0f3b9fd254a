package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

func init() { commandConstructors = append(commandConstructors, newJobCommand) }

func newJobCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Inspect jobs and their file lists",
	}
	cmd.AddCommand(newJobListCommand(g), newJobShowCommand(g), newJobFilesCommand(g),
		newJobCancelCommand(g), newJobExportCommand(g))
	return cmd
}

func newJobListCommand(g *globalOptions) *cobra.Command {
	var plan, status string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			valid := []string{state.JobQueued, state.JobRunning, state.JobCompleted, state.JobPartial, state.JobFailed, state.JobCanceled}
			if status != "" && !slices.Contains(valid, status) {
				return usageErrorf("--status %q: valid values are %v", status, valid)
			}
			if limit < 0 {
				return usageErrorf("--limit %d: a number of jobs, or 0 for all", limit)
			}
			src, err := g.openJobSource(cmd.Context())
			if err != nil {
				return err
			}
			defer src.close()
			jobs, err := src.jobs(cmd.Context(), state.JobFilter{Plan: plan, Status: status, Newest: true, Limit: limit})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, jobs)
			}
			if len(jobs) == 0 {
				fmt.Fprintln(g.text(), "No jobs.")
				return nil
			}
			tw := newTable(g.text())
			fmt.Fprintln(tw, "ID\tPLAN\tTRIGGER\tSTATUS\tSTARTED\tDURATION\tFILES\tBYTES\tSKIPPED\tFAILED")
			for _, j := range jobs {
				c := j.Counters
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\n", j.ID, j.Plan, j.Trigger, statusStr(j),
					timeStr(j.Started), jobDuration(j), c.FilesTransferred, bytesStr(c.BytesTransferred), c.FilesSkipped, c.FilesFailed)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&plan, "plan", "", "only jobs of this plan")
	cmd.Flags().StringVar(&status, "status", "", "only jobs with this status (queued, running, completed, partial, failed, canceled)")
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many jobs (0: all)")
	return cmd
}

// statusStr is a job's status for people: a dry run says so.
func statusStr(j *state.Job) string {
	if j.Meta["dry_run"] == "true" {
		return j.Status + " (dry run)"
	}
	return j.Status
}

func jobDuration(j *state.Job) string {
	if j.Started.IsZero() {
		return "-"
	}
	end := j.Ended
	if end.IsZero() {
		end = time.Now()
	}
	return durationStr(end.Sub(j.Started))
}

func newJobShowCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one job: status, times and counters",
		Args:  exactArgs(1, "job show needs a job ID; see ferry job list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := g.openJobSource(cmd.Context())
			if err != nil {
				return err
			}
			defer src.close()
			j, err := src.job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, j)
			}
			tw := newTable(g.text())
			fmt.Fprintf(tw, "Job\t%s\n", j.ID)
			fmt.Fprintf(tw, "Plan\t%s\n", j.Plan)
			fmt.Fprintf(tw, "Trigger\t%s\n", j.Trigger)
			fmt.Fprintf(tw, "Status\t%s\n", statusStr(j))
			if j.Error != "" {
				fmt.Fprintf(tw, "Error\t%s\n", j.Error)
			}
			fmt.Fprintf(tw, "Source\t%s\n", j.Meta["source"])
			fmt.Fprintf(tw, "Destination\t%s\n", j.Meta["destination"])
			if o := j.Meta["origin"]; o != "" {
				fmt.Fprintf(tw, "Changes from\t%s\n", o)
			}
			if c := j.Meta[syncer.MetaDestCheck]; c != "" {
				fmt.Fprintf(tw, "Destination check\t%s\n", c)
			}
			if n := j.Meta[syncer.MetaDeletesNotRun]; n != "" {
				fmt.Fprintf(tw, "Deletes not run\t%s\n", n)
			}
			if k := j.Meta[syncer.MetaDeletesWithheld]; k != "" {
				fmt.Fprintf(tw, "Deletes withheld\t%s\n", k)
			}
			fmt.Fprintf(tw, "Started\t%s\n", timeStr(j.Started))
			fmt.Fprintf(tw, "Ended\t%s\n", timeStr(j.Ended))
			fmt.Fprintf(tw, "Duration\t%s\n", jobDuration(j))
			if j.Resumes > 0 {
				fmt.Fprintf(tw, "Resumed\t%d times\n", j.Resumes)
			}
			tw.Flush()
			printJobCounters(g.text(), j)
			return nil
		},
	}
}

func newJobFilesCommand(g *globalOptions) *cobra.Command {
	var list, format string
	cmd := &cobra.Command{
		Use:   "files ID --list success|skipped|failed",
		Short: "Print one of a job's file lists as CSV or JSON",
		Long: `Print one of a job's file lists. Every file a job considered is in exactly
one list, except unchanged files, which are only counted.

CSV columns: success: path,size,sha256,note; skipped: path,size,reason;
failed: path,size,error.`,
		Args: exactArgs(1, "job files needs a job ID; see ferry job list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if list == "" {
				return usageErrorf("--list is required: success, skipped or failed")
			}
			kind := state.ListKind(list)
			if !slices.Contains([]state.ListKind{state.ListSuccess, state.ListSkipped, state.ListFailed}, kind) {
				return usageErrorf("--list %q: valid values are success, skipped, failed", list)
			}
			format, err := g.outputFormat(format)
			if err != nil {
				return err
			}
			src, err := g.openJobSource(cmd.Context())
			if err != nil {
				return err
			}
			defer src.close()
			j, err := src.job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeFileList(cmd.Context(), g, src, j.ID, kind, format)
		},
	}
	cmd.Flags().StringVar(&list, "list", "", "which list: success, skipped, failed (required)")
	cmd.Flags().StringVar(&format, "format", "csv", "output format: csv, json")
	return cmd
}

func writeFileList(ctx context.Context, g *globalOptions, src jobSource, jobID string, kind state.ListKind, format string) error {
	if format == "json" {
		// Streamed as a JSON array, one record per line.
		// The keys are the CSV's column names: note, reason or error.
		reasonKey := map[state.ListKind]string{state.ListSuccess: "note", state.ListSkipped: "reason", state.ListFailed: "error"}[kind]
		fmt.Fprint(g.stdout, "[")
		first := true
		err := src.files(ctx, jobID, kind, func(r state.FileRecord) error {
			rec := map[string]any{"path": r.Path, "size": r.Size}
			if r.SHA256 != "" {
				rec["sha256"] = r.SHA256
			}
			if r.Reason != "" {
				rec[reasonKey] = r.Reason
			}
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if !first {
				fmt.Fprint(g.stdout, ",")
			}
			first = false
			_, err = fmt.Fprintf(g.stdout, "\n  %s", b)
			return err
		})
		fmt.Fprintln(g.stdout, "\n]")
		return err
	}
	w := csv.NewWriter(g.stdout)
	path, text := csvFields(g)
	header := map[state.ListKind][]string{
		state.ListSuccess: {"path", "size", "sha256", "note"},
		state.ListSkipped: {"path", "size", "reason"},
		state.ListFailed:  {"path", "size", "error"},
	}[kind]
	if err := w.Write(header); err != nil {
		return err
	}
	err := src.files(ctx, jobID, kind, func(r state.FileRecord) error {
		row := []string{path(r.Path), strconv.FormatInt(r.Size, 10)}
		if kind == state.ListSuccess {
			row = append(row, r.SHA256)
		}
		return w.Write(append(row, text(r.Reason)))
	})
	w.Flush()
	if err != nil {
		return err
	}
	return w.Error()
}

func newJobCancelCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running job of the daemon",
		Args:  exactArgs(1, "job cancel needs a job ID; see ferry job list --status running"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig(true)
			if err != nil {
				return err
			}
			c := g.dialDaemon(cmd.Context(), cfg)
			if c == nil {
				return unavailableError{fmt.Errorf("no ferry daemon answers on %s; a job run in-process stops with Ctrl-C", cfg.Socket)}
			}
			if err := c.CancelJob(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.text(), "Job %s canceled.\n", args[0])
			return nil
		},
	}
}

func newJobExportCommand(g *globalOptions) *cobra.Command {
	var since, format string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write an audit report of the retained jobs (CSV or JSON)",
		Long: `Write every retained job (job_retention, default 180 days) as CSV with a
header, or as JSON: id, plan, trigger, status, times, counters and error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f state.JobFilter
			if since != "" {
				t, err := parseSince(since)
				if err != nil {
					return usageErrorf("--since %q: a date (2026-11-01) or an RFC 3339 time", since)
				}
				f.Since = t
			}
			format, err := g.outputFormat(format)
			if err != nil {
				return err
			}
			src, err := g.openJobSource(cmd.Context())
			if err != nil {
				return err
			}
			defer src.close()
			jobs, err := src.jobs(cmd.Context(), f)
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(g.stdout, jobs)
			}
			w := csv.NewWriter(g.stdout)
			_, text := csvFields(g)
			_ = w.Write([]string{"id", "plan", "trigger", "status", "created", "started", "ended",
				"files_total", "files_transferred", "files_unchanged", "files_skipped", "files_failed", "files_deleted",
				"bytes_total", "bytes_transferred", "error"})
			rfc := func(t time.Time) string {
				if t.IsZero() {
					return ""
				}
				return t.UTC().Format(time.RFC3339)
			}
			for _, j := range jobs {
				c := j.Counters
				n := func(v int64) string { return strconv.FormatInt(v, 10) }
				_ = w.Write([]string{j.ID, j.Plan, j.Trigger, j.Status, rfc(j.Created), rfc(j.Started), rfc(j.Ended),
					n(c.FilesTotal), n(c.FilesTransferred), n(c.FilesUnchanged), n(c.FilesSkipped), n(c.FilesFailed), n(c.FilesDeleted),
					n(c.BytesTotal), n(c.BytesTransferred), text(j.Error)})
			}
			w.Flush()
			return w.Error()
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only jobs created on or after this date (2026-11-01) or time")
	cmd.Flags().StringVar(&format, "format", "csv", "output format: csv, json")
	return cmd
}

// csvFields returns how CSV output writes a path and a free-text field:
// exact for a program reading a pipe or a file, and on a terminal made
// printable (remote.PrintableKey, printable) so that no byte of a name
// reaches the terminal as a command.
func csvFields(g *globalOptions) (path, text func(string) string) {
	if !isTerminal(g.stdout) {
		exact := func(s string) string { return s }
		return exact, exact
	}
	return remote.PrintableKey, printable
}

func parseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02", s, time.Local)
}

// outputFormat checks a --format value; the global --json means json.
func (g *globalOptions) outputFormat(format string) (string, error) {
	if g.json {
		return "json", nil
	}
	if format != "csv" && format != "json" {
		return "", usageErrorf("--format %q: valid values are csv, json", format)
	}
	return format, nil
}
