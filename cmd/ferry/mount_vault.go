package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/fusefs"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/connect"
	"github.com/ferrysync/ferry/vault"
)

func init() { mountSubcommands = append(mountSubcommands, newMountVaultCommand) }

type mountVaultOptions struct {
	allowOther bool
}

func newMountVaultCommand(g *globalOptions) *cobra.Command {
	var o mountVaultOptions
	cmd := &cobra.Command{
		Use:   "vault VAULT MOUNTPOINT",
		Short: "Mount a vault's backups as read-only directories",
		Long: `Show the backups of VAULT (a vault of the configuration file) on MOUNTPOINT, an
existing empty directory, read-only. The top holds one directory per available
backup, named by its creation time (UTC) and name, e.g.
2026-11-23T020000Z-photos, a symlink "latest" to the newest backup, and
by-id/ with a symlink per backup id. New backups appear within a few seconds.

Inside a backup directory are its files, directories and symlinks, with the
sizes, modes, owners and mtimes the backup recorded. Listing and stat need no
request to the remote once a backup's tree has been read (on first access).
Reads fetch the file's chunks, check each one's SHA-256 (a damaged chunk is an
I/O error, never wrong data), read ahead for sequential reads, and keep chunks
in a cache: 64 MiB in memory and 1 GiB on disk under the state directory
(vaultcache/), kept across mounts.

Runs in the foreground until Ctrl-C, SIGTERM or ` + "`ferry umount MOUNTPOINT`" + `, then
unmounts (lazily, when a program still uses the mount) and exits 0.`,
		Example: `  ferry mount vault main /mnt/backups
  cp /mnt/backups/latest/etc/hosts /tmp/hosts.restored`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("mount vault needs VAULT and MOUNTPOINT (got %d arguments); see ferry mount vault --help", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMountVault(cmd.Context(), g, &o, args[0], args[1])
		},
	}
	cmd.Flags().BoolVar(&o.allowOther, "allow-other", false, "let other users see the mount (needs user_allow_other in /etc/fuse.conf); the kernel then checks the backed-up modes and owners")
	return cmd
}

func runMountVault(ctx context.Context, g *globalOptions, o *mountVaultOptions, name, mountpoint string) error {
	cfg, err := g.loadConfig(false)
	if err != nil {
		return err
	}
	vc, ok := cfg.Vaults[name]
	if !ok {
		return noVault(cfg, name)
	}
	log := g.logger("warn").With(slog.String("component", "mount"))
	// The state database is not opened: the mount runs for long, and would
	// lock out the daemon and other commands.
	notVault := fmt.Errorf("vault %s (%s): %w %s", name, vaultLocation(vc), vault.ErrNotVault, name)
	st, err := connect.OpenRemote(ctx, cfg, cfg.Remotes[vc.Remote], vc.Prefix)
	switch {
	case errors.Is(err, remote.ErrNotExist):
		return notVault // a local remote without the vault's directory
	case err != nil && remote.IsRetryable(err):
		return unavailableError{fmt.Errorf("vault %s: %w", name, err)}
	case err != nil:
		return fmt.Errorf("vault %s: %w", name, err)
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	v, err := vault.Open(ctx, st, vault.Options{Name: name, Account: cfg.RemoteAccount(vc.Remote),
		Log: log.With(slog.String("component", "vault")), CacheDir: filepath.Join(cfg.StateDir, "vaultindex")})
	switch {
	case errors.Is(err, vault.ErrNotVault):
		return notVault
	case err != nil && remote.IsRetryable(err):
		return unavailableError{err}
	case err != nil:
		return err
	}

	source := "vault:" + name
	m, err := fusefs.MountVault(ctx, mountpoint, v, fusefs.Options{
		AllowOther: o.allowOther,
		CacheDir:   filepath.Join(cfg.StateDir, "vaultcache"),
		Logger:     log,
		// Chunk fetches still running at shutdown end with the mount.
		Context: context.WithoutCancel(ctx),
		Source:  source,
	})
	return serveMount(ctx, g, m, err, "vault "+name)
}
