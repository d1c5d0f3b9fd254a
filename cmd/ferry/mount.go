package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/fusefs"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/connect"
	"github.com/ferrysync/ferry/state"
)

func init() {
	commandConstructors = append(commandConstructors, newMountCommand, newUmountCommand)
}

// mountSubcommands are the views `ferry mount` offers; each view's file
// adds its constructor from init (the remote view here, the vault view in
// its own file).
var mountSubcommands = []func(*globalOptions) *cobra.Command{newMountRemoteCommand}

func newMountCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mount",
		Short: "Show a remote or a vault as a directory (FUSE), in the foreground",
		Long: `Mount a view as a directory through FUSE. The command runs in the
foreground until Ctrl-C, SIGTERM or ` + "`ferry umount MOUNTPOINT`" + `, then
unmounts cleanly and exits 0. Only the mounting user sees the mount unless
--allow-other is given. For mounts that come up with the service, use
[[mounts]] in the configuration. See docs/mount.md.`,
	}
	for _, c := range mountSubcommands {
		cmd.AddCommand(c(g))
	}
	return cmd
}

type mountRemoteOptions struct {
	readOnly   bool
	allowOther bool
}

func newMountRemoteCommand(g *globalOptions) *cobra.Command {
	var o mountRemoteOptions
	cmd := &cobra.Command{
		Use:   "remote REMOTE[:PREFIX] MOUNTPOINT",
		Short: "Mount a remote's objects as files you can read and write",
		Long: `Show the objects of REMOTE (under PREFIX) as files and their key prefixes
as directories on MOUNTPOINT, an existing empty directory. REMOTE is a remote
of the configuration file.

Reads stream from the remote with ranged reads. Writes go to a spool file
under the state directory and are uploaded, with their SHA-256 and mtime,
when the file is closed or fsynced: a program that opens a file after
another closed it sees the new content (close-to-open). cp -r, rsync -r,
editors that save through a temporary file, and mv of files work. Hard
links, symlinks, chmod/chown and renaming a non-empty directory are not
possible on object storage and fail with a clear error (docs/mount.md lists
them). Directory listings are cached for 10 s, and the cache is kept across
mounts.

Runs in the foreground until Ctrl-C, SIGTERM or ` + "`ferry umount MOUNTPOINT`" + `, then
unmounts (lazily, when a program still uses the mount) and exits 0.`,
		Example: `  ferry mount remote s3a: /mnt/s3a
  ferry mount remote s3a:photos/2026 ~/photos --read-only`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("mount remote needs REMOTE[:PREFIX] and MOUNTPOINT (got %d arguments); see ferry mount remote --help", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMountRemote(cmd.Context(), g, &o, args[0], args[1])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.readOnly, "read-only", false, "refuse every change through the mount (EROFS)")
	f.BoolVar(&o.allowOther, "allow-other", false, "let other users see the mount (needs user_allow_other in /etc/fuse.conf); the kernel then checks permissions")
	return cmd
}

// parseRemoteArg reads REMOTE[:PREFIX].
func parseRemoteArg(arg string) (name, prefix string, err error) {
	name, path, _ := strings.Cut(arg, ":")
	loc := config.Location{Remote: name, Path: path}
	if name == "" || strings.ContainsAny(name, "/ ") {
		return "", "", usageErrorf("%q: want REMOTE[:PREFIX], a remote of the configuration and an optional prefix, e.g. s3a:photos/2026", arg)
	}
	prefix = loc.Prefix()
	if err := remote.ValidatePrefix(prefix); err != nil {
		return "", "", usageErrorf("%q: the prefix %v", arg, err)
	}
	return name, prefix, nil
}

func runMountRemote(ctx context.Context, g *globalOptions, o *mountRemoteOptions, remoteArg, mountpoint string) error {
	name, prefix, err := parseRemoteArg(remoteArg)
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig(false)
	if err != nil {
		return err
	}
	r, ok := cfg.Remotes[name]
	if !ok {
		return usageErrorf("%s: no remote named %q in %s (configured: %s)", remoteArg, name, cfg.File, remoteNames(cfg))
	}
	log := g.logger("warn").With(slog.String("component", "mount"))
	store, err := connect.OpenRemote(ctx, cfg, r, prefix)
	if err != nil {
		if remote.IsRetryable(err) {
			return unavailableError{err}
		}
		return err
	}
	source := name + ":" + prefix
	cacheID := mountCacheID(r, source)
	db, closeDB := openMountCache(cfg.StateDir, cacheID, log)
	defer closeDB()

	m, err := fusefs.MountRemote(ctx, mountpoint, store, fusefs.Options{
		ReadOnly:   o.readOnly,
		AllowOther: o.allowOther,
		CacheDir:   filepath.Join(cfg.StateDir, "spool"),
		DB:         db,
		CacheID:    cacheID,
		Logger:     log,
		// Uploads of files closed during the shutdown still finish.
		Context: context.WithoutCancel(ctx),
		Source:  source,
	})
	return serveMount(ctx, g, m, err, source)
}

// serveMount reports the mount of what (or why it failed: err), then waits
// until the mount ends (ferry umount, fusermount -u) or ctx is canceled
// (Ctrl-C, SIGTERM), and unmounts it.
func serveMount(ctx context.Context, g *globalOptions, m *fusefs.Mount, err error, what string) error {
	if err != nil {
		if remote.IsRetryable(err) {
			return unavailableError{err}
		}
		return err
	}
	fmt.Fprintf(g.text(), "Mounted %s on %s. Ctrl-C or `ferry umount %s` unmounts it.\n", what, m.Mountpoint(), m.Mountpoint())
	select {
	case <-m.Done():
		fmt.Fprintf(g.text(), "%s was unmounted.\n", m.Mountpoint())
		return nil
	case <-ctx.Done():
	}
	if err := m.Unmount(); err != nil {
		return fmt.Errorf("%w (run `ferry umount %s` to retry)", err, m.Mountpoint())
	}
	select {
	case <-m.Done():
		fmt.Fprintf(g.text(), "Unmounted %s.\n", m.Mountpoint())
		return nil
	default:
	}
	// Lazily unmounted: programs still hold files in it, and their writes
	// are uploaded when they close them.
	fmt.Fprintf(g.textErr(), "%s is busy: it is gone from the file tree, and Ferry keeps serving the programs\n"+
		"that still have files open in it until they close them. Ctrl-C again to stop waiting\n"+
		"(files still open for writing then lose what was not uploaded).\n", m.Mountpoint())
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	select {
	case <-m.Done():
		fmt.Fprintf(g.text(), "Unmounted %s.\n", m.Mountpoint())
		return nil
	case <-again:
		return &exitError{code: exitCanceled, err: fmt.Errorf("stopped waiting for the programs using %s", m.Mountpoint())}
	}
}

// mountCacheID names a mount's listing cache: the remote and prefix shown,
// and a hash of where the remote points, so that a remote changed to
// another bucket does not inherit the old listings.
func mountCacheID(r *config.Remote, source string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{r.Type, r.Endpoint, r.Bucket, r.Prefix, r.Path}, "\x00")))
	return source + "@" + hex.EncodeToString(h[:6])
}

// openMountCache opens the listing cache of a foreground mount: a small
// database of its own under the state directory, so that the mount does
// not hold the main state database (and lock out other commands and the
// daemon) while it runs. Without it (another mount of the same place holds
// it, or the state directory is not writable), the mount caches in memory
// only.
func openMountCache(stateDir, cacheID string, log *slog.Logger) (*state.DB, func()) {
	h := sha256.Sum256([]byte(cacheID))
	dir := filepath.Join(stateDir, "mountcache", hex.EncodeToString(h[:8]))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		log.Warn("listing cache not kept across mounts", slog.String("dir", dir), slog.Any("err", err))
		return nil, func() {}
	}
	db, err := state.Open(dir, state.Options{Logger: log.With(slog.String("component", "state"))})
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			log.Warn("another mount of the same remote holds the listing cache; caching in memory only", slog.String("dir", dir))
		} else {
			log.Warn("listing cache not kept across mounts", slog.String("dir", dir), slog.Any("err", err))
		}
		return nil, func() {}
	}
	return db, func() {
		if err := db.Close(); err != nil {
			log.Warn("close listing cache", slog.Any("err", err))
		}
	}
}

func newUmountCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount a Ferry mount (a foreground `ferry mount` then exits)",
		Long: `Unmount the FUSE mount at MOUNTPOINT with fusermount3 -u. When a program
still has a file or its working directory in it, the mount is unmounted
lazily instead (fusermount3 -u -z): it leaves the file tree at once, and
ends when the last program lets go of it.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("umount needs MOUNTPOINT (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			lazy, err := fusefs.Unmount(args[0])
			if errors.Is(err, fusefs.ErrNotMounted) {
				return fmt.Errorf("%s: not a FUSE mount (nothing to unmount)", args[0])
			}
			if err != nil {
				return err
			}
			if lazy {
				fmt.Fprintf(g.text(), "%s was busy and is unmounted lazily: it is gone from the file tree, and ends when the programs using it close their files.\n", args[0])
				return nil
			}
			fmt.Fprintf(g.text(), "Unmounted %s.\n", args[0])
			return nil
		},
	}
}
