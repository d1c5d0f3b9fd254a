package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/vault"
)

func init() { commandConstructors = append(commandConstructors, newBackupCommand) }

func newBackupCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Create, list, restore, verify, delete and replicate backups",
		Long: `A backup is a point-in-time, deduplicated copy of a local directory kept in a
vault. Backups are incremental: files with the same size, mtime and inode as
in the previous backup of the same source are not read again, and only chunks
the vault lacks are uploaded.

Commands that take a backup ID find it in every configured vault; use --vault
when it is in several (an original and its replica).`,
	}
	cmd.AddCommand(newBackupCreateCommand(g), newBackupListCommand(g), newBackupShowCommand(g),
		newBackupRestoreCommand(g), newBackupVerifyCommand(g), newBackupDeleteCommand(g),
		newBackupReplicateCommand(g))
	return cmd
}

// backupJSON is a backup in --json output.
type backupJSON struct {
	Vault string `json:"vault"`
	*vault.Manifest
	DedupRatio   float64              `json:"dedup_ratio"`
	Replications []*vault.Replication `json:"replications,omitempty"`
}

func backupsJSON(vaultName string, ms []*vault.Manifest) []backupJSON {
	out := make([]backupJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, backupJSON{Vault: vaultName, Manifest: m, DedupRatio: ratio(m.Stats.LogicalBytes, m.Stats.StoredBytes)})
	}
	return out
}

// printBackupTable prints backups, one a line.
func printBackupTable(w io.Writer, bs []backupJSON, withVault bool) error {
	tw := newTable(w)
	if withVault {
		fmt.Fprint(tw, "VAULT\t")
	}
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tCREATED\tSOURCE\tFILES\tLOGICAL\tSTORED\tFROM")
	for _, b := range bs {
		m := b.Manifest
		if withVault {
			fmt.Fprintf(tw, "%s\t", b.Vault)
		}
		from, name := "-", m.Name
		if rf := m.ReplicatedFrom; rf != nil {
			from = rf.Vault + " (" + rf.Account + ")"
		}
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s:%s\t%s\t%s\t%s\t%s\n", m.ID, name, m.Status, timeStr(m.Started), m.Host, m.Source,
			countStr(m.Stats.Files), bytesStr(m.Stats.LogicalBytes), bytesStr(m.Stats.StoredBytes), from)
	}
	return tw.Flush()
}

// findBackup finds backup id in the named vault, or in every configured
// vault. When it is in several, the original (not a replica) wins if there
// is exactly one; otherwise the user must choose with --vault.
func (s *vaultSession) findBackup(ctx context.Context, id, vaultName string) (*vault.Vault, *vault.Manifest, error) {
	if err := checkBackupID(id); err != nil {
		return nil, nil, err
	}
	if vaultName != "" {
		v, err := s.openVault(ctx, vaultName)
		if err != nil {
			return nil, nil, err
		}
		m, err := v.Backup(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		return v, m, nil
	}
	if len(s.cfg.Vaults) == 0 {
		return nil, nil, usageErrorf("no vaults configured in %s; add a [vaults.NAME] table", s.cfg.File)
	}
	type hit struct {
		v *vault.Vault
		m *vault.Manifest
	}
	var hits []hit
	var failed []string
	vs, errs := s.openVaults(ctx)
	for name, err := range errs {
		failed = append(failed, fmt.Sprintf("%s: %v", name, err))
	}
	for _, v := range vs {
		m, err := v.Backup(ctx, id)
		switch {
		case err == nil:
			hits = append(hits, hit{v, m})
		case !errors.Is(err, vault.ErrNoBackup):
			failed = append(failed, fmt.Sprintf("%s: %v", v.Name(), err))
		}
	}
	slices.Sort(failed)
	switch {
	case len(hits) == 1:
		return hits[0].v, hits[0].m, nil
	case len(hits) == 0:
		msg := fmt.Sprintf("backup %s: %v in any configured vault (%s)", id, vault.ErrNoBackup, vaultNames(s.cfg))
		if len(failed) > 0 {
			msg += "; could not search " + strings.Join(failed, "; ")
		}
		return nil, nil, errors.New(msg)
	}
	var originals []hit
	var names []string
	for _, h := range hits {
		names = append(names, h.v.Name())
		if !h.m.IsReplica() {
			originals = append(originals, h)
		}
	}
	if len(originals) == 1 {
		return originals[0].v, originals[0].m, nil
	}
	return nil, nil, usageErrorf("backup %s is in vaults %s; choose one with --vault", id, strings.Join(names, ", "))
}

// checkBackupID refuses what is not a backup ID.
func checkBackupID(id string) error {
	if !vault.ValidID(id) {
		return usageErrorf("%q is not a backup ID (they look like 20250102T030405Z-1a2b3c4d); see ferry backup list", id)
	}
	return nil
}

// checkBackupArgs wants exactly n arguments, the first a backup ID.
func checkBackupArgs(use string, n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("usage: ferry backup %s; see ferry backup list for IDs", use)
		}
		return nil
	}
}

type backupCreateOptions struct {
	vault   string
	name    string
	full    bool
	workers int
}

func newBackupCreateCommand(g *globalOptions) *cobra.Command {
	var o backupCreateOptions
	cmd := &cobra.Command{
		Use:   "create --vault VAULT SOURCE",
		Short: "Back up a local directory into a vault",
		Example: `  ferry backup create --vault main /home
  ferry backup create --vault main /srv/db --name before-upgrade`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("backup create needs one SOURCE directory (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackupCreate(cmd.Context(), g, &o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.vault, "vault", "", "vault to back up into (required)")
	f.StringVar(&o.name, "name", "", "a label for the backup")
	f.BoolVar(&o.full, "full", false, "read every file again instead of trusting size, mtime and inode")
	f.IntVar(&o.workers, "workers", 8, "packs uploaded at once (each up to 16 MiB in memory)")
	return cmd
}

func runBackupCreate(ctx context.Context, g *globalOptions, o *backupCreateOptions, source string) error {
	if o.vault == "" {
		return usageErrorf("backup create needs --vault; see ferry vault list")
	}
	if o.workers < 1 {
		return usageErrorf("--workers %d: must be at least 1", o.workers)
	}
	if fi, err := os.Stat(source); err != nil {
		if loc, lerr := config.ParseLocation(source); lerr == nil && !loc.IsLocal() {
			return usageErrorf("SOURCE %s: backups are made of local directories; %s is a remote location", source, source)
		}
		return usageErrorf("SOURCE: %v", err)
	} else if !fi.IsDir() {
		return usageErrorf("SOURCE %s is not a directory", source)
	}
	s, err := g.openVaultSession(o.vault)
	if err != nil {
		return err
	}
	defer s.close()
	v, err := s.openVault(ctx, o.vault)
	if err != nil {
		return err
	}
	if err := s.makeCacheDir(); err != nil {
		return err
	}
	bar := newByteBar(g.stderr, !g.json)
	var mu sync.Mutex // Skipped is called from several goroutines
	var skipped []string
	m, err := v.Create(ctx, source, vault.BackupOptions{
		Name: o.name, Full: o.full, Workers: o.workers,
		Progress: func(p vault.BackupProgress) {
			desc := fmt.Sprintf("backup: %d/%d files", p.FilesDone, p.FilesTotal)
			if !p.ScanDone {
				desc += "+"
			}
			desc += ", " + bytesStr(p.UploadedBytes) + " new"
			bar.set(desc, p.BytesDone, p.BytesTotal)
		},
		Skipped: func(path, reason string) {
			mu.Lock()
			defer mu.Unlock()
			skipped = append(skipped, remote.PrintableKey(path)+": "+reason)
		},
	})
	bar.finish()
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, backupsJSON(v.Name(), []*vault.Manifest{m})[0])
	}
	st := m.Stats
	fmt.Fprintf(g.text(), "Backup %s of %s created in vault %s in %s.\n", m.ID, m.Source, v.Name(), durationStr(m.Finished.Sub(m.Started)))
	fmt.Fprintf(g.text(), "  %s (%s unchanged), %s, %s, %s\n",
		nounStr(st.Files, "file", "files"), countStr(st.Unchanged), nounStr(st.Dirs, "directory", "directories"),
		nounStr(st.Symlinks, "symlink", "symlinks"), bytesStr(st.LogicalBytes))
	fmt.Fprintf(g.text(), "  uploaded %s in %s (backup references %s, %s)\n",
		bytesStr(st.NewBytes), nounStr(st.NewChunks, "new chunk", "new chunks"), nounStr(st.Chunks, "chunk", "chunks"), bytesStr(st.StoredBytes))
	if len(skipped) > 0 {
		fmt.Fprintf(g.text(), "  %s not backed up:\n", nounStr(int64(len(skipped)), "entry", "entries"))
		slices.Sort(skipped)
		for _, line := range skipped {
			fmt.Fprintf(g.text(), "    %s\n", line)
		}
	}
	return nil
}

func newBackupListCommand(g *globalOptions) *cobra.Command {
	var vaultName string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the backups of one or every vault",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := g.openVaultSession(vaultName)
			if err != nil {
				return err
			}
			defer s.close()
			names := sortedVaultNames(s.cfg)
			if vaultName != "" {
				if _, err := s.vaultConfig(vaultName); err != nil {
					return err
				}
				names = []string{vaultName}
			}
			var all []backupJSON
			var failed []error
			for _, name := range names {
				v, err := s.openVault(ctx, name)
				if err == nil {
					var ms []*vault.Manifest
					ms, err = v.Backups(ctx)
					all = append(all, backupsJSON(name, ms)...)
				}
				switch {
				case err == nil:
				case vaultName != "":
					return err
				case errors.Is(err, vault.ErrNotVault):
					// Not initialized yet: it has no backups; say so.
					fmt.Fprintf(g.textErr(), "ferry: %v\n", err)
				default:
					failed = append(failed, err)
				}
			}
			for _, err := range failed {
				fmt.Fprintf(g.textErr(), "ferry: %v\n", err)
			}
			var perr error
			switch {
			case g.json:
				if all == nil {
					all = []backupJSON{}
				}
				perr = printJSON(g.stdout, all)
			case len(all) > 0:
				perr = printBackupTable(g.text(), all, true)
			case len(failed) == 0:
				fmt.Fprintln(g.text(), "No backups.")
			}
			if perr == nil && len(failed) > 0 {
				// Printed above; the exit code says the list is incomplete.
				perr = &exitError{code: exitUnavailable, err: fmt.Errorf("%d of %s could not be read", len(failed), nounStr(int64(len(names)), "vault", "vaults")), silent: true}
			}
			return perr
		},
	}
	cmd.Flags().StringVar(&vaultName, "vault", "", "only this vault")
	return cmd
}

func newBackupShowCommand(g *globalOptions) *cobra.Command {
	var vaultName string
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a backup: times, sizes, dedup ratio and replication history",
		Args:  checkBackupArgs("show ID", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, v, m, err := g.openBackup(ctx, args[0], vaultName)
			if err != nil {
				return err
			}
			defer s.close()
			history, err := s.replicationHistory(ctx, m.ID)
			if err != nil {
				return err
			}
			if g.json {
				b := backupsJSON(v.Name(), []*vault.Manifest{m})[0]
				b.Replications = history
				return printJSON(g.stdout, b)
			}
			st := m.Stats
			tw := newTable(g.text())
			fmt.Fprintf(tw, "Backup\t%s\n", m.ID)
			if m.Name != "" {
				fmt.Fprintf(tw, "Name\t%s\n", m.Name)
			}
			fmt.Fprintf(tw, "Vault\t%s (account %s)\n", v.Name(), v.Account())
			fmt.Fprintf(tw, "Status\t%s\n", m.Status)
			fmt.Fprintf(tw, "Source\t%s:%s\n", m.Host, m.Source)
			fmt.Fprintf(tw, "Made in account\t%s\n", m.Account)
			fmt.Fprintf(tw, "Started\t%s\n", timeStr(m.Started))
			fmt.Fprintf(tw, "Finished\t%s (%s)\n", timeStr(m.Finished), durationStr(m.Finished.Sub(m.Started)))
			if m.Parent != "" {
				fmt.Fprintf(tw, "Parent\t%s\n", m.Parent)
			}
			if rf := m.ReplicatedFrom; rf != nil {
				fmt.Fprintf(tw, "Replicated from\tvault %s (account %s, id %s) at %s\n", rf.Vault, rf.Account, rf.VaultID, timeStr(rf.Replicated))
			}
			fmt.Fprintf(tw, "Entries\t%s (%s unchanged), %s, %s, %s skipped\n",
				nounStr(st.Files, "file", "files"), countStr(st.Unchanged), nounStr(st.Dirs, "directory", "directories"),
				nounStr(st.Symlinks, "symlink", "symlinks"), countStr(st.Skipped))
			fmt.Fprintf(tw, "Logical size\t%s\n", bytesStr(st.LogicalBytes))
			fmt.Fprintf(tw, "Stored size\t%s in %s\n", bytesStr(st.StoredBytes), nounStr(st.Chunks, "chunk", "chunks"))
			fmt.Fprintf(tw, "Dedup ratio\t%s\n", ratioStr(st.LogicalBytes, st.StoredBytes))
			fmt.Fprintf(tw, "Uploaded\t%s in %s new chunks\n", bytesStr(st.NewBytes), countStr(st.NewChunks))
			fmt.Fprintf(tw, "Tree\t%s\n", m.Tree)
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(g.text())
			if len(history) == 0 {
				fmt.Fprintln(g.text(), "Replication history: none.")
				return nil
			}
			fmt.Fprintln(g.text(), "Replication history:")
			return printReplicationTable(g.text(), history)
		},
	}
	cmd.Flags().StringVar(&vaultName, "vault", "", "the vault holding the backup (when it is in several)")
	return cmd
}

// replicationHistory gathers the records of backup id from every vault
// that can be opened and from the state database.
func (s *vaultSession) replicationHistory(ctx context.Context, id string) ([]*vault.Replication, error) {
	var all []*vault.Replication
	vs, _ := s.openVaults(ctx)
	for _, v := range vs {
		rs, err := v.Replications(ctx, id)
		if err != nil {
			s.log.Warn("cannot read replication records", "vault", v.Name(), "err", err)
			continue
		}
		all = append(all, rs...)
	}
	sdb, err := s.stateDB(false)
	if err != nil {
		return nil, err
	}
	db, err := vault.DBReplications(sdb)
	if err != nil {
		return nil, err
	}
	for _, r := range db {
		if id == "" || r.BackupID == id {
			all = append(all, r)
		}
	}
	return vault.MergeRecords(all), nil
}

func newBackupRestoreCommand(g *globalOptions) *cobra.Command {
	var vaultName, path string
	var workers int
	cmd := &cobra.Command{
		Use:   "restore ID TARGET",
		Short: "Restore a backup (or --path of it) into a local directory",
		Long: `Restore files, directories and symlinks with their modes and mtimes (and
owners when run as root) into TARGET, which is created if missing. Files and
symlinks at the same paths are replaced, each only once its new content is
whole and verified: it is written under a temporary name
(.ferry-restore-PID-RANDOM.tmp) in its directory and renamed over the old one.
Nothing is ever written outside TARGET.

A file that cannot be restored (a damaged chunk, a directory in its way)
leaves what was at its path untouched and does not stop the others. The
summary lists every entry not restored and why, and the command exits 4.
A restore that is killed leaves at most the temporary files of the files it
was writing; the next restore into the same directories removes them.`,
		Example: `  ferry backup restore 20250102T030405Z-1a2b3c4d /tmp/restore
  ferry backup restore 20250102T030405Z-1a2b3c4d /tmp/restore --path home/alice/docs`,
		Args: checkBackupArgs("restore ID TARGET", 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if workers < 1 {
				return usageErrorf("--workers %d: must be at least 1", workers)
			}
			if _, err := vault.RestorePathKey(path); err != nil {
				return usageError{err}
			}
			s, v, m, err := g.openBackup(ctx, args[0], vaultName)
			if err != nil {
				return err
			}
			defer s.close()
			bar := newByteBar(g.stderr, !g.json)
			st, err := v.Restore(ctx, m.ID, args[1], vault.RestoreOptions{Path: path, Workers: workers,
				Progress: func(p vault.RestoreProgress) {
					bar.set(fmt.Sprintf("restore: %d/%d files", p.FilesDone, p.FilesTotal), p.BytesDone, p.BytesTotal)
				}})
			bar.finish()
			if err != nil && !errors.Is(err, vault.ErrNotRestored) {
				return err
			}
			if g.json {
				if st.Failed == nil {
					st.Failed = []vault.RestoreFailure{}
				}
				if perr := printJSON(g.stdout, st); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintf(g.text(), "Restored backup %s from vault %s to %s: %s (%s), %s, %s.\n",
					m.ID, v.Name(), args[1], nounStr(st.Files, "file", "files"), bytesStr(st.Bytes),
					nounStr(st.Dirs, "directory", "directories"), nounStr(st.Symlinks, "symlink", "symlinks"))
				if len(st.Failed) > 0 {
					fmt.Fprintf(g.text(), "  %s not restored (what was at their paths is left as it was):\n",
						nounStr(int64(len(st.Failed)), "entry", "entries"))
					for _, f := range st.Failed {
						fmt.Fprintf(g.text(), "    %s: %v\n", remote.PrintableKey(f.Path), f.Err)
					}
				}
			}
			if err != nil {
				return &exitError{code: exitPartial, err: fmt.Errorf("backup %s: %s not restored", m.ID, nounStr(int64(len(st.Failed)), "entry was", "entries were")), silent: !g.json}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&vaultName, "vault", "", "the vault holding the backup (when it is in several)")
	f.StringVar(&path, "path", "", "restore only this file or directory of the backup")
	f.IntVar(&workers, "workers", 4, "files restored at once")
	return cmd
}

func newBackupVerifyCommand(g *globalOptions) *cobra.Command {
	var vaultName string
	var readData bool
	cmd := &cobra.Command{
		Use:   "verify ID",
		Short: "Check that a backup is whole (and with --read-data, undamaged)",
		Long: `Check that the backup's tree is present and well-formed and that every chunk
it references is stored with the right size; with --read-data, read every
chunk and check its SHA-256 (and the XXH3-128 the tree records for mounts).
A backup found damaged is marked "error" and no
longer replicates. Exits 1 when anything is wrong.`,
		Args: checkBackupArgs("verify ID", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, v, m, err := g.openBackup(ctx, args[0], vaultName)
			if err != nil {
				return err
			}
			defer s.close()
			bar := newByteBar(g.stderr, !g.json && readData)
			rep, err := v.Verify(ctx, m.ID, vault.VerifyOptions{ReadData: readData, MarkError: true,
				Progress: func(done, total int64) { bar.set("verify: chunks", done, total) }})
			bar.finish()
			if err != nil {
				return err
			}
			if g.json {
				if err := printJSON(g.stdout, rep); err != nil {
					return err
				}
			} else {
				what := "structure"
				if readData {
					what = "structure and data"
				}
				if rep.OK() {
					fmt.Fprintf(g.text(), "Backup %s in vault %s: %s OK (%s chunks, %s).\n", m.ID, v.Name(), what, countStr(rep.Chunks), bytesStr(rep.Bytes))
				} else {
					fmt.Fprintf(g.text(), "Backup %s in vault %s is damaged: %s.\n", m.ID, v.Name(), nounStr(int64(len(rep.Problems)), "problem", "problems"))
					for _, p := range rep.Problems {
						fmt.Fprintf(g.text(), "  %s\n", p)
					}
					if rep.Marked {
						fmt.Fprintln(g.text(), "Its status is now error.")
					}
				}
			}
			if !rep.OK() {
				return &exitError{code: exitFailure, err: fmt.Errorf("backup %s is damaged", m.ID), silent: !g.json}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&vaultName, "vault", "", "the vault holding the backup (when it is in several)")
	cmd.Flags().BoolVar(&readData, "read-data", false, "read every chunk and check its SHA-256 and XXH3")
	return cmd
}

func newBackupDeleteCommand(g *globalOptions) *cobra.Command {
	var vaultName string
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a backup (its data goes at the next vault prune)",
		Args:  checkBackupArgs("delete ID", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, v, m, err := g.openBackup(ctx, args[0], vaultName)
			if err != nil {
				return err
			}
			defer s.close()
			if err := v.Delete(ctx, m.ID); err != nil {
				return err
			}
			if !g.json {
				fmt.Fprintf(g.text(), "Deleted backup %s from vault %s; run ferry vault prune %s to free its data.\n", m.ID, v.Name(), v.Name())
				return nil
			}
			return printJSON(g.stdout, map[string]string{"deleted": m.ID, "vault": v.Name()})
		},
	}
	cmd.Flags().StringVar(&vaultName, "vault", "", "the vault holding the backup (when it is in several)")
	return cmd
}

func newBackupReplicateCommand(g *globalOptions) *cobra.Command {
	var vaultName, to string
	var workers int
	cmd := &cobra.Command{
		Use:   "replicate ID --to VAULT",
		Short: "Copy a backup to another vault (another cloud)",
		Long: `Copy a backup to another vault, sending only the chunks the destination lacks
and checking each chunk's SHA-256 on arrival; the replica's manifest is written
last. Rules: only available backups replicate; a backup replicates to at most
one account besides its own; a replica may go back to the account it came
from; replicating what the destination already has is a skip.`,
		Example: `  ferry backup replicate 20250102T030405Z-1a2b3c4d --to offsite
  ferry backup replicate 20250102T030405Z-1a2b3c4d --vault offsite --to main   # bring a replica home`,
		Args: checkBackupArgs("replicate ID --to VAULT", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if to == "" {
				return usageErrorf("backup replicate needs --to VAULT; see ferry vault list")
			}
			if workers < 1 {
				return usageErrorf("--workers %d: must be at least 1", workers)
			}
			if err := checkBackupID(args[0]); err != nil {
				return err
			}
			s, err := g.openVaultSession(vaultName, to)
			if err != nil {
				return err
			}
			defer s.close()
			if _, err := s.vaultConfig(to); err != nil {
				return err
			}
			src, m, err := s.findBackup(ctx, args[0], vaultName)
			if err != nil {
				return err
			}
			dst, err := s.openVault(ctx, to)
			if err != nil {
				return err
			}
			// A replication of the same backup that a killed ferry left
			// behind is resumed under its record.
			db, err := s.stateDB(true)
			if err != nil {
				return err
			}
			resume, err := vault.Interrupted(db, m.ID, src, dst)
			if err != nil {
				return err
			}
			bar := newByteBar(g.stderr, !g.json)
			rec, err := vault.Replicate(ctx, src, m.ID, dst, vault.ReplicateOptions{DB: db, Workers: workers, RecordID: resume,
				Progress: func(p vault.ReplicateProgress) {
					bar.set(fmt.Sprintf("replicate: %d/%d chunks", p.ChunksDone, p.ChunksTotal), p.BytesDone, p.BytesTotal)
				}})
			bar.finish()
			if g.json && rec != nil {
				if perr := printJSON(g.stdout, rec); perr != nil {
					return perr
				}
			}
			if err != nil {
				return err
			}
			if g.json {
				return nil
			}
			switch rec.Status {
			case vault.ReplSkip:
				fmt.Fprintf(g.text(), "Skipped: vault %s already has backup %s (record %s).\n", dst.Name(), m.ID, rec.ID)
			default:
				fmt.Fprintf(g.text(), "Replicated backup %s from vault %s (%s) to vault %s (%s) in %s: %s chunks, %s copied (record %s).\n",
					m.ID, src.Name(), src.Account(), dst.Name(), dst.Account(), durationStr(rec.Ended.Sub(rec.Started)),
					countStr(rec.Chunks), bytesStr(rec.Bytes), rec.ID)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&vaultName, "vault", "", "the vault holding the backup (when it is in several)")
	f.StringVar(&to, "to", "", "destination vault (required)")
	f.IntVar(&workers, "workers", 8, "packs copied at once (each read whole into memory, up to 16 MiB)")
	return cmd
}

// openBackup opens a vault session and finds backup id in it (in vaultName,
// or in whichever vault holds it); the caller closes the session.
func (g *globalOptions) openBackup(ctx context.Context, id, vaultName string) (*vaultSession, *vault.Vault, *vault.Manifest, error) {
	if err := checkBackupID(id); err != nil {
		return nil, nil, nil, err
	}
	s, err := g.openVaultSession(vaultName)
	if err != nil {
		return nil, nil, nil, err
	}
	v, m, err := s.findBackup(ctx, id, vaultName)
	if err != nil {
		s.close()
		return nil, nil, nil, err
	}
	return s, v, m, nil
}
