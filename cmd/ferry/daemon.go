package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/daemon"
)

func init() {
	commandConstructors = append(commandConstructors, newDaemonCommand, newStatusCommand)
}

func newDaemonCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run every configured plan and keep running (the service)",
		Long: `Run Ferry as a service: every plan runs on its schedule, on Run Now
(ferry plan run), and — when configured — on watcher batches and changelist
arrivals. The CLI talks to it through the control socket (the config's
"socket"). Alerts fire when a job fails or a remote stops answering;
Prometheus metrics are served at "metrics_listen" when set.

Signals: SIGHUP reloads the configuration (an invalid one is refused and the
running one kept); SIGTERM and Ctrl-C stop new work, let running jobs
checkpoint, and exit 0. A job interrupted by a crash resumes at the next start.

Under systemd (Type=notify) it reports READY=1, STATUS=, WATCHDOG=1 and
STOPPING=1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), g)
		},
	}
}

func runDaemon(ctx context.Context, g *globalOptions) error {
	// Load once for the log level; the daemon loads again to own it.
	cfg, err := g.loadConfig(false)
	if err != nil {
		return err
	}
	level := g.logLevel
	if level == "" {
		level = cfg.LogLevel
	}
	log := daemonLogger(g.stderr, level)
	d, cfg, err := daemon.New(daemon.Options{ConfigPath: g.configPath, Logger: log})
	if err != nil {
		return err
	}
	if isTerminal(g.stderr) {
		fmt.Fprintf(g.textErr(), `Ferry daemon starting with %s (%d plans). Ctrl-C stops it.
In another terminal, try:
  ferry --config %s status
  ferry --config %s plan list
  ferry --config %s plan run %s --wait
  ferry --config %s job list

`, cfg.File, len(cfg.Plans), cfg.File, cfg.File, cfg.File, firstPlan(cfg.Plans), cfg.File)
	}
	// The daemon handles SIGINT/SIGTERM itself (graceful drain), so it runs
	// on a context the CLI's signal handling does not cancel. A signal that
	// came while the configuration loaded, before the daemon listens for
	// signals, stops it here.
	if ctx.Err() != nil {
		log.Info("stopped before the daemon started")
		return nil
	}
	if err := d.Serve(context.WithoutCancel(ctx)); err != nil {
		return unavailableError{err}
	}
	return nil
}

func firstPlan(plans []*config.Plan) string {
	if len(plans) == 0 {
		return "NAME"
	}
	return plans[0].Name
}

// daemonLogger logs text to w. Under systemd (JOURNAL_STREAM set) it drops
// the timestamp, which journald adds itself.
func daemonLogger(w io.Writer, level string) *slog.Logger {
	l, _ := parseLogLevel(level) // checked: --log-level by the root command, log_level by config
	opts := &slog.HandlerOptions{Level: l}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon runs and what it is doing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(true)
			if err != nil {
				// A file being edited may be invalid while the daemon
				// runs on what it loaded before: ask it anyway, on the
				// socket the file names.
				sock, ok := config.SocketOf(g.configPath)
				if !ok {
					return err
				}
				fmt.Fprintf(g.textErr(), "warning: %v\n(asking the daemon on %s, the socket the file names; it runs with the configuration it loaded last)\n\n", err, sock)
				cfg = &config.Config{Socket: sock}
			}
			c := g.dialDaemon(cmd.Context(), cfg)
			if c == nil {
				if g.json {
					// Scripts get an answer on stdout too; the exit code is 5.
					if err := printJSON(g.stdout, struct {
						Running bool   `json:"running"`
						Socket  string `json:"socket"`
					}{false, cfg.Socket}); err != nil {
						return err
					}
				}
				return unavailableError{fmt.Errorf("no ferry daemon answers on %s (start one: ferry daemon, or systemctl start ferry)", cfg.Socket)}
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return unavailableError{err}
			}
			if g.json {
				return printJSON(g.stdout, st)
			}
			fmt.Fprintf(g.text(), "Ferry daemon pid %d, up since %s\nconfig %s, socket %s\n\n", st.PID, timeStr(st.Started), st.Config, st.Socket)
			tw := newTable(g.text())
			fmt.Fprintln(tw, "PLAN\tSCHEDULE\tRUNNING\tQUEUED\tNEXT RUN\tLAST STATUS")
			for _, p := range st.Plans {
				last := "-"
				if p.LastJob != nil {
					last = p.LastJob.Status
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Schedule, dash(p.RunningJob), dash(p.QueuedJob), timeStr(p.NextRun), last)
			}
			return tw.Flush()
		},
	}
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
