package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

const defaultConfigPath = "/etc/ferry/ferry.toml"

// globalOptions holds the persistent flags every command sees.
type globalOptions struct {
	configPath string
	logLevel   string
	json       bool

	stdout io.Writer
	stderr io.Writer
}

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Sync, back up and replicate data across clouds",
		Long: `Ferry syncs directories and S3 buckets by plan, on a schedule or as files
change, keeps point-in-time backups in vaults and replicates them to another
cloud, and mounts vaults and remotes as directories.

The configuration file is TOML; see docs/config.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("config") {
				if env := os.Getenv("FERRY_CONFIG"); env != "" {
					g.configPath = env
				}
			}
			if g.logLevel != "" {
				if _, err := parseLogLevel(g.logLevel); err != nil {
					return usageErrorf("--log-level %v", err)
				}
			}
			return nil
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetHelpTemplate(root.HelpTemplate() + "\n" + exitCodesHelp())

	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", defaultConfigPath, "configuration file (env FERRY_CONFIG)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error (default: warn for commands, the config's log_level for the daemon)")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON instead of text")

	root.AddCommand(
		newVersionCommand(g),
	)
	addCommands(root, g)
	return root
}

// commandConstructors is filled by init functions of the command files, so
// each command group stays in its own file.
var commandConstructors []func(*globalOptions) *cobra.Command

func addCommands(root *cobra.Command, g *globalOptions) {
	for _, c := range commandConstructors {
		root.AddCommand(c(g))
	}
}

// exactArgs accepts exactly n positional arguments; otherwise it is a usage
// error with msg (which says what is needed and where to look).
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s (got %d arguments)", msg, len(args))
		}
		return nil
	}
}

// logger builds the CLI's logger: text on stderr at the level of
// --log-level, or else defaultLevel (checked values both: see
// parseLogLevel). The text handler quotes every value holding a control
// byte, so a logged name cannot drive the terminal.
func (g *globalOptions) logger(defaultLevel string) *slog.Logger {
	level := g.logLevel
	if level == "" {
		level = defaultLevel
	}
	l, _ := parseLogLevel(level)
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: l}))
}

// parseLogLevel reads a log level: debug, info, warn or error, as
// log_level in the configuration. Anything else is an error (and info).
func parseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("%q: valid values are debug, info, warn, error", s)
}

// version is set by the linker (-X main.version=...).
var version = "dev"

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Ferry's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(g.stdout, "ferry "+version+"\n")
			return err
		},
	}
}
