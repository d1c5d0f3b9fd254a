package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/syncer"
)

func init() { commandConstructors = append(commandConstructors, newSyncCommand) }

type syncOptions struct {
	conflict        string
	include         []string
	exclude         []string
	filesFrom       string
	verify          string
	workers         int
	maxFilesPerTask int
	maxBytesPerTask string
	delete          bool
	maxDelete       string
	dryRun          bool
	recheckDest     string
	checkDest       bool
}

func newSyncCommand(g *globalOptions) *cobra.Command {
	var o syncOptions
	cmd := &cobra.Command{
		Use:   "sync SRC DST",
		Short: "Copy SRC to DST once (a one-off sync plan)",
		Long: `Copy every file of SRC to DST once, as a plan run would.

SRC and DST are a local directory or REMOTE:prefix, where REMOTE is a remote
of the configuration file (e.g. "s3a:photos/2026"). DST must exist (a local
directory, or the bucket of an S3 remote). Ferry remembers what it copied, so
running the same sync again only sends what changed. It trusts that record of
what DST holds for --recheck-destination (24h) and then lists DST again, to
send copies deleted or changed there behind Ferry's back.

The sync runs in this process, with the state directory of the
configuration; while a daemon runs with it, ferry sync refuses (exit 5): stop
the daemon, or make the sync a plan and run it with ferry plan run NAME.

Conflict policy for files that exist at DST:
  skip       never overwrite
  update     overwrite when the source changed (default)
  overwrite  always overwrite

Filters (--include or --exclude, not both) are globs matched against the path
relative to SRC: "*.log" matches a name at any depth, "photos/**/*.jpg" a
path, "/tmp/*" is anchored at the root, "cache/" a whole directory.`,
		Example: `  ferry sync /srv/data s3a:backup/data
  ferry sync /srv/data /mnt/nas/data --exclude '*.tmp' --exclude 'cache/'
  ferry sync s3a:photos /srv/photos --files-from wanted.txt --conflict skip
  ferry sync /srv/data s3a:mirror --delete --max-delete 10% --dry-run`,
		Args: exactArgs(2, "sync needs SRC and DST; see ferry sync --help"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSync(cmd, g, &o, args[0], args[1])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.conflict, "conflict", config.DefaultConflict, "policy for files that exist at DST: skip, update, overwrite")
	f.StringArrayVar(&o.include, "include", nil, "sync only paths matching this glob (repeatable)")
	f.StringArrayVar(&o.exclude, "exclude", nil, "do not sync paths matching this glob (repeatable)")
	f.StringVar(&o.filesFrom, "files-from", "", "sync exactly the paths listed in FILE, one per line, relative to SRC (- for stdin)")
	f.StringVar(&o.verify, "verify", config.DefaultVerify, "checksum verification: transferred, all, none")
	f.IntVar(&o.workers, "workers", config.DefaultWorkers, "files transferred at once")
	f.IntVar(&o.maxFilesPerTask, "max-files-per-task", config.DefaultMaxFilesPerTask, "files per task (the unit of checkpoint)")
	f.StringVar(&o.maxBytesPerTask, "max-bytes-per-task", "1GiB", "bytes per task, e.g. 512MiB")
	f.BoolVar(&o.delete, "delete", false, "delete files at DST that are not at SRC (after all copies succeed)")
	f.StringVar(&o.maxDelete, "max-delete", "50%", "refuse to delete more than this share or count of DST")
	f.BoolVar(&o.dryRun, "dry-run", false, "show what would be copied and deleted; write nothing")
	f.StringVar(&o.recheckDest, "recheck-destination", "24h", "trust the record of what DST holds this long before listing DST again, e.g. 6h or 7d (0s: every run)")
	f.BoolVar(&o.checkDest, "check-destination", false, checkDestinationUsage)
	return cmd
}

func runSync(cmd *cobra.Command, g *globalOptions, o *syncOptions, srcArg, dstArg string) error {
	if cmd.Flags().Changed("max-delete") && !o.delete {
		return usageErrorf("--max-delete limits --delete, which is not given: add --delete, or drop --max-delete")
	}
	cp, err := o.plan(srcArg, dstArg)
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig(true)
	if err != nil {
		return err
	}
	// Each end obeys the path rules, and a local one exists, before the
	// two are compared and before anything is opened: a refused command
	// line creates nothing, not even the state directory.
	for _, end := range []struct {
		what string
		loc  config.Location
	}{{"SRC", cp.SourceLocation()}, {"DST", cp.DestinationLocation()}} {
		if err := cfg.CheckLocation(end.loc); err != nil {
			return usageErrorf("%s: %v", end.what, err)
		}
	}
	if err := checkLocalDir(cfg, cp.SourceLocation(), true); err != nil {
		return usageError{err}
	}
	if err := checkLocalDir(cfg, cp.DestinationLocation(), false); err != nil {
		return usageError{err}
	}
	// Compared by what they are (symlinks resolved; endpoint, bucket and
	// prefix), not by how they are written.
	if err := cfg.CheckOverlap(cp.SourceLocation(), cp.DestinationLocation(), o.delete); err != nil {
		return usageErrorf("SRC %s and DST %s: %v", cp.SourceLocation(), cp.DestinationLocation(), err)
	}
	if c := g.dialDaemon(cmd.Context(), cfg); c != nil {
		// The daemon holds the state database, and its API runs the
		// configured plans only.
		return unavailableError{fmt.Errorf("a ferry daemon runs with this configuration (socket %s) and holds the state directory %s; "+
			"ferry sync runs in-process only: stop the daemon for the sync, or make it a plan of the configuration "+
			"and run it with ferry plan run NAME", cfg.Socket, cfg.StateDir)}
	}
	s, err := g.openSession(cfg)
	if err != nil {
		return err
	}
	defer s.close()
	return g.runPlanInProcess(cmd.Context(), s, cp, runFlags{dryRun: o.dryRun, checkDest: o.checkDest}, "cli")
}

func remoteNames(cfg *config.Config) string {
	var names []string
	for n := range cfg.Remotes {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// plan turns the flags into a plan, checking each value.
func (o *syncOptions) plan(srcArg, dstArg string) (*config.Plan, error) {
	src, err := config.ParseLocation(srcArg)
	if err != nil {
		return nil, usageErrorf("SRC: %v", err)
	}
	dst, err := config.ParseLocation(dstArg)
	if err != nil {
		return nil, usageErrorf("DST: %v", err)
	}
	// Local paths are made absolute: the one-off plan is named after its
	// two ends, so the same directories must give the same name from any
	// working directory, and different ones never share a file index.
	for _, l := range []*config.Location{&src, &dst} {
		if l.IsLocal() {
			abs, err := filepath.Abs(l.Path)
			if err != nil {
				return nil, usageErrorf("%s: %v", l.Path, err)
			}
			l.Path = abs
		}
	}
	if !slices.Contains([]string{config.ConflictSkip, config.ConflictUpdate, config.ConflictOverwrite}, o.conflict) {
		return nil, usageErrorf("--conflict %q: valid values are skip, update, overwrite", o.conflict)
	}
	if !slices.Contains([]string{config.VerifyTransferred, config.VerifyAll, config.VerifyNone}, o.verify) {
		return nil, usageErrorf("--verify %q: valid values are transferred, all, none", o.verify)
	}
	if len(o.include) > 0 && len(o.exclude) > 0 {
		return nil, usageErrorf("--include and --exclude cannot be used together")
	}
	if _, err := syncer.NewFilter(o.include, o.exclude); err != nil {
		flag := "--exclude"
		if len(o.include) > 0 {
			flag = "--include"
		}
		return nil, usageErrorf("%s: %v", flag, err)
	}
	if o.workers < 1 {
		return nil, usageErrorf("--workers %d: must be at least 1", o.workers)
	}
	if o.maxFilesPerTask < 1 {
		return nil, usageErrorf("--max-files-per-task %d: must be at least 1", o.maxFilesPerTask)
	}
	maxBytes, err := config.ParseSize(o.maxBytesPerTask)
	if err != nil || maxBytes < 1 {
		return nil, usageErrorf("--max-bytes-per-task %q: a size such as 512MiB or 1GiB", o.maxBytesPerTask)
	}
	maxDelete, err := config.ParseLimit(o.maxDelete)
	if err != nil {
		return nil, usageErrorf("--max-delete %q: %v", o.maxDelete, err)
	}
	recheck, err := config.ParseDuration(o.recheckDest)
	if err != nil {
		return nil, usageErrorf("--recheck-destination: %v; 0s lists DST on every run", err)
	}
	cp := &config.Plan{
		Name:            adhocPlanName(src, dst),
		Source:          src.String(),
		Destination:     dst.String(),
		Conflict:        o.conflict,
		Mode:            config.ModeScan,
		Include:         o.include,
		Exclude:         o.exclude,
		Verify:          o.verify,
		Workers:         o.workers,
		MaxFilesPerTask: o.maxFilesPerTask,
		MaxBytesPerTask: maxBytes,
		Delete:          o.delete,
		MaxDelete:       maxDelete,

		RecheckDestination: recheck,
	}
	if o.filesFrom != "" {
		files, err := readFilesFrom(o.filesFrom)
		if err != nil {
			return nil, err
		}
		cp.Mode, cp.Files = config.ModeFiles, files
	}
	return cp, nil
}

// adhocPlanName names the plan of a one-off sync after its two ends, so the
// next sync between them finds the same file index.
func adhocPlanName(src, dst config.Location) string {
	sum := sha256.Sum256([]byte(src.String() + "\x00" + dst.String()))
	return "sync-" + hex.EncodeToString(sum[:6])
}

// readFilesFrom reads one path per line; blank lines and lines starting
// with # are ignored.
func readFilesFrom(name string) ([]string, error) {
	f := os.Stdin
	if name != "-" {
		var err error
		if f, err = os.Open(name); err != nil {
			return nil, usageErrorf("--files-from: %v", err)
		}
		defer f.Close()
	}
	var files []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "#") {
			continue
		}
		files = append(files, t)
	}
	if err := sc.Err(); err != nil {
		return nil, usageErrorf("--files-from %s: %v", name, err)
	}
	if len(files) == 0 {
		return nil, usageErrorf("--files-from %s: no paths in the file", name)
	}
	return files, nil
}
