package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/config"
)

func init() { commandConstructors = append(commandConstructors, newConfigCommand) }

func newConfigCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file",
	}
	cmd.AddCommand(newConfigCheckCommand(g))
	return cmd
}

func newConfigCheckCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate the configuration and print what it configures",
		Long: `Check reads the configuration file (FILE, else --config), validates all of it
and prints a summary: remotes, plans with their schedules, vaults, policies,
alerts and mounts. Secrets are never printed. With --json the summary is the
configuration as JSON, secrets shown as ***.

When the file is invalid, every problem is printed on its own line as
FILE:LINE: KEY: MESSAGE and the exit code is 3. docs/config.md describes
every key.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("config check takes at most one FILE, not %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.configPath
			if len(args) == 1 {
				path = args[0]
			}
			return runConfigCheck(g, path, time.Now())
		},
	}
}

// runConfigCheck loads path and prints its summary, or returns the error
// that lists every problem (main prints it on stderr and exits 3).
func runConfigCheck(g *globalOptions, path string, now time.Time) error {
	cfg, err := config.Load(path)
	if err != nil {
		var ve *config.ValidationError
		if g.json && errors.As(err, &ve) {
			if jerr := writeCheckJSON(g.stdout, ve); jerr != nil {
				return errors.Join(err, jerr)
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w (choose the file with --config FILE or FERRY_CONFIG)", err)
		}
		return err
	}
	if g.json {
		return writeCheckJSON(g.stdout, cfg)
	}
	return writeCheckSummary(g.text(), cfg, now)
}

func writeCheckJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeCheckSummary prints what cfg configures, for people. It never
// prints a secret: credentials show only their access key ID and account,
// webhook URLs only their scheme and host.
func writeCheckSummary(out io.Writer, cfg *config.Config, now time.Time) error {
	w := &checkWriter{w: out}
	w.printf("Configuration %s is valid.\n\n", cfg.File)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "state_dir\t%s\n", cfg.StateDir)
	fmt.Fprintf(tw, "socket\t%s\n", cfg.Socket)
	fmt.Fprintf(tw, "log_level\t%s\n", cfg.LogLevel)
	metrics := "off"
	if cfg.MetricsListen != "" {
		metrics = "http://" + cfg.MetricsListen + "/metrics"
	}
	fmt.Fprintf(tw, "metrics\t%s\n", metrics)
	fmt.Fprintf(tw, "job_retention\t%s\n", cfg.JobRetention)
	tw.Flush()

	w.section("Remotes", len(cfg.Remotes))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range checkSortedNames(cfg.Remotes) {
		r := cfg.Remotes[name]
		switch r.Type {
		case config.RemoteLocal:
			fmt.Fprintf(tw, "  %s\tlocal\t%s\n", name, r.Path)
		default:
			scheme := "https"
			if !r.TLS {
				scheme = "http"
			}
			desc := fmt.Sprintf("%s://%s  bucket %s", scheme, r.Endpoint, r.Bucket)
			if r.Prefix != "" {
				desc += "  prefix " + r.Prefix
			}
			if r.Region != "" {
				desc += "  region " + r.Region
			}
			if r.Credential != "" {
				desc += fmt.Sprintf("  credential %s (account %s)", r.Credential, cfg.RemoteAccount(name))
			} else {
				desc += "  anonymous"
			}
			fmt.Fprintf(tw, "  %s\ts3\t%s\n", name, desc)
		}
	}
	tw.Flush()

	w.section("Credentials", len(cfg.Credentials))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range checkSortedNames(cfg.Credentials) {
		c := cfg.Credentials[name]
		secret := "inline secret_key"
		if c.SecretKeyFile != "" {
			secret = "secret_key_file " + c.SecretKeyFile
		}
		fmt.Fprintf(tw, "  %s\taccess key %s\taccount %s\t%s\n", name, c.AccessKey, c.Account, secret)
	}
	tw.Flush()

	w.section("Plans", len(cfg.Plans))
	for _, p := range cfg.Plans {
		w.printf("  %s: %s → %s\n", p.Name, p.Source, p.Destination)
		w.printf("      mode %s, conflict %s, verify %s, workers %d, tasks of ≤%d files / ≤%s\n",
			p.Mode, p.Conflict, p.Verify, p.Workers, p.MaxFilesPerTask, p.MaxBytesPerTask)
		w.printf("      schedule: %s\n", checkScheduleText(p.Schedule, now))
		if p.Mode == config.ModeScan {
			if p.RecheckDestination.Duration == 0 {
				w.printf("      destination: listed on every scan\n")
			} else {
				w.printf("      destination: listed when the last listing is %s old (recheck_destination)\n", p.RecheckDestination)
			}
		}
		if p.Watch {
			w.printf("      watch: on (run %s after the last change, at most %s after the first)\n", p.WatchDelay, p.WatchMaxDelay)
		}
		if p.Changelist != "" {
			w.printf("      changelist: %s (checked every %s)\n", p.Changelist, p.ChangelistPoll)
		}
		if p.Mode == config.ModeFiles {
			w.printf("      files: %d listed\n", len(p.Files))
		}
		if len(p.Include) > 0 {
			w.printf("      include: %s\n", strings.Join(p.Include, ", "))
		}
		if len(p.Exclude) > 0 {
			w.printf("      exclude: %s\n", strings.Join(p.Exclude, ", "))
		}
		if p.Delete {
			w.printf("      delete: on (at most %s of the destination per run)\n", p.MaxDelete)
		} else {
			w.printf("      delete: off\n")
		}
		w.printf("      alerts: %s\n", checkAlertsText(p, cfg))
	}

	w.section("Vaults", len(cfg.Vaults))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range checkSortedNames(cfg.Vaults) {
		v := cfg.Vaults[name]
		fmt.Fprintf(tw, "  %s\t%s\t%s:%s\taccount %s\n", name, v.Kind, v.Remote, v.Prefix, cfg.RemoteAccount(v.Remote))
	}
	tw.Flush()

	w.section("Backup policies", len(cfg.BackupPolicies))
	for _, b := range cfg.BackupPolicies {
		w.printf("  %s: %s → vault %s\n", b.Name, b.Source, b.Vault)
		w.printf("      schedule: %s\n", checkScheduleText(b.Schedule, now))
		w.printf("      keep: %s\n", checkKeepText(b.Keep))
	}

	w.section("Replication policies", len(cfg.ReplicationPolicies))
	for _, r := range cfg.ReplicationPolicies {
		w.printf("  %s: vault %s → vault %s\n", r.Name, r.SourceVault, r.DestinationVault)
		w.printf("      schedule: %s\n", checkScheduleText(r.Schedule, now))
		w.printf("      keep: %s\n", checkReplicaKeepText(r))
	}

	w.section("Alerts", len(cfg.Alerts))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range checkSortedNames(cfg.Alerts) {
		a := cfg.Alerts[name]
		target := checkCommandText(a.Command)
		if a.Type == config.AlertWebhook {
			target = checkWebhookText(a.URL)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, a.Type, target)
	}
	tw.Flush()

	w.section("Mounts", len(cfg.Mounts))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range cfg.Mounts {
		what, flags := "remote "+m.Remote, []string{}
		if m.Vault != "" {
			what = "vault " + m.Vault
		}
		if m.ReadOnly || m.Vault != "" {
			flags = append(flags, "read-only")
		} else {
			flags = append(flags, "read-write")
		}
		if m.AllowOther {
			flags = append(flags, "allow_other")
		}
		fmt.Fprintf(tw, "  %s\t%s\t(%s)\n", m.Path, what, strings.Join(flags, ", "))
	}
	tw.Flush()
	return w.err
}

// checkWriter remembers the first write error so the summary code can
// print freely and check once.
type checkWriter struct {
	w   io.Writer
	err error
}

func (s *checkWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, err
}

func (s *checkWriter) printf(format string, args ...any) { fmt.Fprintf(s, format, args...) }

func (s *checkWriter) section(title string, n int) {
	if n == 0 {
		s.printf("\n%s: none\n", title)
		return
	}
	s.printf("\n%s (%d)\n", title, n)
}

func checkSortedNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// checkScheduleText is "every 1h from 2025-01-01 02:00 CET (next …)" or "Run Now
// only".
func checkScheduleText(s *config.Schedule, now time.Time) string {
	if s == nil {
		return "Run Now only"
	}
	const layout = "2006-01-02 15:04 MST"
	return fmt.Sprintf("every %s from %s (next %s)", s.Every, s.Start.Local().Format(layout), s.Next(now).Local().Format(layout))
}

func checkAlertsText(p *config.Plan, cfg *config.Config) string {
	names := p.AlertNames(cfg)
	switch {
	case p.Alerts == nil && len(names) == 0:
		return "all (none configured)"
	case p.Alerts == nil:
		return "all: " + strings.Join(names, ", ")
	case len(names) == 0:
		return "none"
	}
	return strings.Join(names, ", ")
}

func checkKeepText(k config.Keep) string {
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{k.Last, "last"}, {k.Daily, "daily"}, {k.Weekly, "weekly"}, {k.Monthly, "monthly"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", x.what, x.n))
		}
	}
	if len(parts) == 0 {
		return "every backup"
	}
	return strings.Join(parts, ", ")
}

func checkReplicaKeepText(r *config.ReplicationPolicy) string {
	var parts []string
	if r.KeepCount > 0 {
		parts = append(parts, fmt.Sprintf("at most %d replicas", r.KeepCount))
	}
	if r.KeepDays > 0 {
		parts = append(parts, fmt.Sprintf("those younger than %d days", r.KeepDays))
	}
	if len(parts) == 0 {
		return "every replica"
	}
	return strings.Join(parts, ", ")
}

// checkWebhookText shows a webhook's scheme and host only: its path and query
// often hold a token.
func checkWebhookText(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

func checkCommandText(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
