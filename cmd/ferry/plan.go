package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/config"
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
		Short: "List the configured plans with their last job",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.openSession(false)
			if err != nil {
				return err
			}
			defer s.close()
			type row struct {
				Name        string     `json:"name"`
				Source      string     `json:"source"`
				Destination string     `json:"destination"`
				Schedule    string     `json:"schedule"`
				LastJob     *jobView   `json:"last_job,omitempty"`
				last        *state.Job `json:"-"`
			}
			var rows []row
			for _, p := range s.cfg.Plans {
				r := row{Name: p.Name, Source: p.Source, Destination: p.Destination, Schedule: scheduleStr(p)}
				err := s.db.ListJobs(state.JobFilter{Plan: p.Name, Newest: true}, func(j *state.Job) error {
					r.last = j
					v := jobJSON(j)
					r.LastJob = &v
					return errStop
				})
				if err != nil && err != errStop {
					return err
				}
				rows = append(rows, r)
			}
			if g.json {
				return printJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(g.stdout, "No plans in %s.\n", s.cfg.File)
				return nil
			}
			tw := newTable(g.stdout)
			fmt.Fprintln(tw, "NAME\tSOURCE\tDESTINATION\tSCHEDULE\tLAST JOB\tSTATUS\tENDED")
			for _, r := range rows {
				id, status, ended := "-", "-", "-"
				if r.last != nil {
					id, status, ended = r.last.ID, r.last.Status, timeStr(r.last.Ended)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Source, r.Destination, r.Schedule, id, status, ended)
			}
			return tw.Flush()
		},
	}
}

var errStop = fmt.Errorf("stop")

func scheduleStr(p *config.Plan) string {
	var parts []string
	if p.Schedule != nil {
		parts = append(parts, "every "+p.Schedule.Every.String())
	}
	if p.Watch {
		parts = append(parts, "watch")
	}
	if p.Changelist != "" {
		parts = append(parts, "changelist")
	}
	if len(parts) == 0 {
		return "Run Now only"
	}
	return strings.Join(parts, ", ")
}

func newPlanRunCommand(g *globalOptions) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a plan now and wait for its job",
		Long: `Run a plan now (Run Now) and wait for its job, showing progress on a
terminal. The exit code tells completed (0), partial (4) and failed (1) apart.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("plan run needs the plan's NAME; see ferry plan list")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openSession(false)
			if err != nil {
				return err
			}
			defer s.close()
			cp, ok := s.cfg.LookupPlan(args[0])
			if !ok {
				var names []string
				for _, p := range s.cfg.Plans {
					names = append(names, p.Name)
				}
				return usageErrorf("no plan named %q in %s (plans: %s)", args[0], s.cfg.File, strings.Join(names, ", "))
			}
			return g.runPlanInProcess(cmd.Context(), s, cp, dryRun, "manual")
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be copied and deleted; write nothing")
	return cmd
}
