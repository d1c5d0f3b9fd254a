package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/changelist"
	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/daemon"
	"github.com/ferrysync/ferry/state"
)

func init() { commandConstructors = append(commandConstructors, newPlanCommand) }

func newPlanCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "List and run the sync plans of the configuration",
	}
	cmd.AddCommand(newPlanListCommand(g), newPlanRunCommand(g))
	return cmd
}

func newPlanListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the configured plans with their last job and next run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plans, err := g.planInfos(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, plans)
			}
			if len(plans) == 0 {
				fmt.Fprintln(g.text(), "No plans in the configuration.")
				return nil
			}
			tw := newTable(g.text())
			fmt.Fprintln(tw, "NAME\tSOURCE\tDESTINATION\tSCHEDULE\tNEXT RUN\tLAST JOB\tSTATUS\tENDED")
			for _, p := range plans {
				id, status, ended := "-", "-", "-"
				if p.LastJob != nil {
					id, status, ended = p.LastJob.ID, p.LastJob.Status, timeStr(p.LastJob.Ended)
				}
				if p.RunningJob != "" {
					id, status, ended = p.RunningJob, state.JobRunning, "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Source, p.Destination, p.Schedule,
					timeStr(p.NextRun), id, status, ended)
			}
			return tw.Flush()
		},
	}
}

// planInfos asks the daemon, or reads the config and the state database
// when none runs (then there is no next run: nothing schedules).
func (g *globalOptions) planInfos(ctx context.Context) ([]daemon.PlanInfo, error) {
	cfg, err := g.loadConfig(false)
	if err != nil {
		return nil, err
	}
	if c := g.dialDaemon(ctx, cfg); c != nil {
		return c.Plans(ctx)
	}
	var s *session
	if ok, err := stateExists(cfg); err != nil {
		return nil, err
	} else if ok {
		if s, err = g.openSession(cfg); err != nil {
			return nil, err
		}
		defer s.close()
	}
	out := []daemon.PlanInfo{}
	for _, p := range cfg.Plans {
		every := ""
		if p.Schedule != nil {
			every = p.Schedule.Every.String()
		}
		pi := daemon.PlanInfo{Name: p.Name, Source: p.Source, Destination: p.Destination,
			Schedule: daemon.ScheduleString(p.Schedule != nil, p.Watch, p.Changelist != "", every)}
		if s == nil {
			out = append(out, pi) // no state directory: no jobs yet
			continue
		}
		err := s.db.ListJobs(state.JobFilter{Plan: p.Name, Newest: true}, func(j *state.Job) error {
			pi.LastJob = j
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, err
		}
		out = append(out, pi)
	}
	return out, nil
}

var errStop = errors.New("stop")

func newPlanRunCommand(g *globalOptions) *cobra.Command {
	var rf runFlags
	var wait bool
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a plan now (Run Now)",
		Long: `Run a plan now.

With a daemon running, the job is queued there and its id printed at once;
--wait follows it with a progress bar until it ends. A plan never runs twice
at once: a Run Now during a run queues one follow-up, and further Run Nows
join it. Without a daemon, the job runs here and the command waits for it.

A scan trusts the file index's record of what the destination holds for
the plan's recheck_destination (default 24h); the first scan after that lists
the destination and sends again copies deleted or changed there behind
Ferry's back. --check-destination does that now.

A plan with a changelist inbox run without a daemon then takes the lists
waiting in the inbox, as the daemon does: each runs as a job of its own and
is filed under done/ or rejected/.

The exit code tells completed (0), partial (4) and failed (1) apart.`,
		Args: exactArgs(1, "plan run needs the plan's NAME; see ferry plan list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := g.loadConfig(false)
			if err != nil {
				return err
			}
			cp, ok := cfg.LookupPlan(args[0])
			if !ok {
				return usageErrorf("no plan named %q in %s (plans: %s)", args[0], cfg.File, planNames(cfg))
			}
			if c := g.dialDaemon(ctx, cfg); c != nil {
				if rf.dryRun {
					return usageErrorf("--dry-run runs in-process only, and the daemon holds the state directory: stop the daemon for the dry run")
				}
				return g.runPlanOnDaemon(ctx, c, cp.Name, daemon.RunPlanOptions{CheckDestination: rf.checkDest}, wait)
			}
			s, err := g.openSession(cfg)
			if err != nil {
				return err
			}
			defer s.close()
			err = g.runPlanInProcess(ctx, s, cp, rf, "manual")
			var ran *exitError // the job ran, and did not complete
			switch {
			case cp.Changelist == "":
			case rf.dryRun:
				fmt.Fprintf(g.textErr(), "A dry run does not take the changelists waiting in the inbox %s; the daemon, or a ferry plan run %s, does.\n", cp.Changelist, cp.Name)
			case ctx.Err() == nil && (err == nil || errors.As(err, &ran)):
				// The exit code is that of the first job that did not
				// complete.
				if ierr := g.runInboxInProcess(ctx, s, cp); err == nil {
					err = ierr
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&rf.dryRun, "dry-run", false, "show what would be copied and deleted; write nothing (in-process only)")
	cmd.Flags().BoolVar(&rf.checkDest, "check-destination", false, checkDestinationUsage)
	cmd.Flags().BoolVar(&wait, "wait", false, "with a daemon: follow the job until it ends, with a progress bar")
	return cmd
}

// runInboxInProcess takes the changelists waiting in plan cp's inbox as
// the daemon does (daemon.ClaimChanges, daemon.FinishClaim): each runs as
// an incremental job here and is filed under done/ or rejected/. It stops
// at a list that could not be processed, which stays in the inbox.
func (g *globalOptions) runInboxInProcess(ctx context.Context, s *session, cp *config.Plan) error {
	log := s.log.With(slog.String("component", "changelist"))
	inbox, err := daemon.OpenInbox(ctx, s.cfg, cp, s.db, log)
	if err != nil {
		return fmt.Errorf("plan %s: changelist inbox %s: %w", cp.Name, cp.Changelist, err)
	}
	taken := 0
	defer func() {
		if taken > 0 {
			fmt.Fprintf(g.textErr(), "Took %s from the inbox %s, as the daemon would.\n", nounStr(int64(taken), "changelist", "changelists"), inbox)
		}
	}()
	var first error // the first list that did not complete
	for {
		c, err := inbox.Next(ctx)
		if errors.Is(err, changelist.ErrNoList) {
			return first
		}
		if err != nil {
			return cmp.Or(first, fmt.Errorf("plan %s: changelist inbox %s: %w", cp.Name, inbox, err))
		}
		taken++
		if !g.json {
			fmt.Fprintf(g.text(), "\nChangelist %s:\n", c.Name())
		}
		cs, err := daemon.ClaimChanges(ctx, c, log)
		if err != nil {
			return cmp.Or(first, err)
		}
		if cs == nil {
			first = cmp.Or(first, error(fmt.Errorf("plan %s: changelist %s was rejected", cp.Name, c.Name())))
			continue
		}
		job, err := g.runJobInProcess(ctx, s, cp, runFlags{changes: cs}, daemon.TriggerChangelist)
		if err == nil {
			err = jobExit(job)
		}
		first = cmp.Or(first, err)
		if !daemon.FinishClaim(context.WithoutCancel(ctx), c, job, log) {
			return first // released: it stays for the daemon or the next run
		}
	}
}

func planNames(cfg *config.Config) string {
	var names []string
	for _, p := range cfg.Plans {
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// runPlanOnDaemon queues a Run Now and, with wait, follows the job.
func (g *globalOptions) runPlanOnDaemon(ctx context.Context, c *daemon.Client, plan string, o daemon.RunPlanOptions, wait bool) error {
	id, err := c.RunPlanWith(ctx, plan, o)
	if err != nil {
		return err
	}
	if !wait {
		if g.json {
			return printJSON(g.stdout, daemon.RunResult{JobID: id})
		}
		fmt.Fprintf(g.text(), "Job %s queued. Follow it: ferry job show %s\n", id, id)
		return nil
	}
	bar := newJobProgress(g.stderr, !g.json)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			bar.finish()
			return err
		}
		switch j.Status {
		case state.JobQueued, state.JobRunning:
			bar.updateJob(j)
		default:
			bar.finish()
			if g.json {
				if err := printJSON(g.stdout, j); err != nil {
					return err
				}
			} else {
				printJobSummary(g.text(), j)
			}
			return jobExit(j)
		}
		select {
		case <-ctx.Done():
			bar.finish()
			fmt.Fprintf(g.textErr(), "Stopped following job %s; it keeps running in the daemon (ferry job cancel %s stops it).\n", id, id)
			return nil
		case <-tick.C:
		}
	}
}
