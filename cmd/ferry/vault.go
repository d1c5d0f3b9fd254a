package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/connect"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/vault"
)

func init() { commandConstructors = append(commandConstructors, newVaultCommand) }

func newVaultCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Create, inspect and prune backup vaults",
		Long: `A vault is a prefix on a remote holding deduplicated backups ([vaults.NAME] in
the configuration: remote, prefix, kind "backup" or "replication"). Its format
is documented in docs/vault-format.md.`,
	}
	cmd.AddCommand(newVaultInitCommand(g), newVaultListCommand(g), newVaultShowCommand(g), newVaultPruneCommand(g))
	return cmd
}

// vaultSession is a session with the vaults it opened; close closes their
// stores and the state database.
type vaultSession struct {
	*session
	g        *globalOptions
	stores   []remote.Store
	vaults   map[string]*vault.Vault
	dbLocked bool // the daemon holds the state database
}

// openVaultSession opens the config and checks that the vaults named (empty
// names are skipped) are configured. It opens nothing else: vault commands
// need the state directory only for the vault index cache (see
// makeCacheDir) and for this host's copy of the replication records (see
// stateDB), so a listing, or a command refused or failed before its work,
// leaves a missing state directory missing.
func (g *globalOptions) openVaultSession(names ...string) (*vaultSession, error) {
	cfg, err := g.loadConfig(false)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, ok := cfg.Vaults[name]; name != "" && !ok {
			return nil, noVault(cfg, name)
		}
	}
	return &vaultSession{session: &session{cfg: cfg, log: g.logger("warn")}, g: g, vaults: map[string]*vault.Vault{}}, nil
}

// stateDB opens the state database on first use, for the replication
// records this host keeps besides the vaults' own. With create, it creates
// the state directory (a replication writes its record); without, a
// missing one holds no records and nil is returned. While the daemon holds
// the database it returns nil: the records then come from the vaults only.
func (s *vaultSession) stateDB(create bool) (*state.DB, error) {
	if s.db != nil || s.dbLocked {
		return s.db, nil
	}
	if !create {
		if ok, err := stateExists(s.cfg); err != nil || !ok {
			return nil, err
		}
	}
	o, err := s.g.openSession(s.cfg)
	if errors.Is(err, state.ErrLocked) {
		s.log.Info("the state database is in use (by the daemon?); replication records come from the vaults only")
		s.dbLocked = true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.db = o.db
	return s.db, nil
}

// makeCacheDir creates the state directory for the vault index cache
// (state_dir/vaultindex), which a vault fills as it reads the indexes of
// its packs (backup create, vault show, vault prune, a replication's
// destination). A command calls it once its inputs were checked and its
// vault answered. Listings read no pack index and never create it.
func (s *vaultSession) makeCacheDir() error { return makeStateDir(s.cfg) }

func (s *vaultSession) close() {
	for _, st := range s.stores {
		if c, ok := st.(io.Closer); ok {
			_ = c.Close()
		}
	}
	s.session.close()
}

// vaultConfig returns the configured vault name, or a usage error listing
// the configured ones.
func (s *vaultSession) vaultConfig(name string) (*config.Vault, error) {
	vc, ok := s.cfg.Vaults[name]
	if !ok {
		return nil, noVault(s.cfg, name)
	}
	return vc, nil
}

func noVault(cfg *config.Config, name string) error {
	return usageErrorf("no vault named %q in %s (configured: %s)", name, cfg.File, vaultNames(cfg))
}

func vaultNames(cfg *config.Config) string {
	names := sortedVaultNames(cfg)
	if len(names) == 0 {
		return "none; add a [vaults.NAME] table"
	}
	return strings.Join(names, ", ")
}

func sortedVaultNames(cfg *config.Config) []string {
	var names []string
	for n := range cfg.Vaults {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// openStore opens a vault's store, marking connection failures as
// unavailable.
func (s *vaultSession) openStore(ctx context.Context, vc *config.Vault) (remote.Store, error) {
	st, err := connect.OpenRemote(ctx, s.cfg, s.cfg.Remotes[vc.Remote], vc.Prefix)
	if err != nil {
		if remote.IsRetryable(err) {
			return nil, unavailableError{fmt.Errorf("vault %s: %w", vc.Name, err)}
		}
		return nil, fmt.Errorf("vault %s: %w", vc.Name, err)
	}
	s.stores = append(s.stores, st)
	return st, nil
}

// openVault opens a configured vault (once per session).
func (s *vaultSession) openVault(ctx context.Context, name string) (*vault.Vault, error) {
	if v, ok := s.vaults[name]; ok {
		return v, nil
	}
	vc, err := s.vaultConfig(name)
	if err != nil {
		return nil, err
	}
	notVault := func() error {
		return fmt.Errorf("vault %s (%s): %w %s", name, vaultLocation(vc), vault.ErrNotVault, name)
	}
	st, err := s.openStore(ctx, vc)
	if errors.Is(err, remote.ErrNotExist) {
		return nil, notVault() // a local remote without the vault's directory
	}
	if err != nil {
		return nil, err
	}
	v, err := vault.Open(ctx, st, s.vaultOptions(vc))
	if err != nil {
		if errors.Is(err, vault.ErrNotVault) {
			return nil, notVault()
		}
		if remote.IsRetryable(err) {
			return nil, unavailableError{err}
		}
		return nil, err
	}
	if v.Kind() != vc.Kind {
		s.log.Warn("vault kind differs from the configuration", slog.String("vault", name),
			slog.String("stored", v.Kind()), slog.String("configured", vc.Kind))
	}
	s.vaults[name] = v
	return v, nil
}

// openVaults opens every configured vault; those that fail are returned
// as errors by name.
func (s *vaultSession) openVaults(ctx context.Context) ([]*vault.Vault, map[string]error) {
	var out []*vault.Vault
	errs := map[string]error{}
	for _, name := range sortedVaultNames(s.cfg) {
		v, err := s.openVault(ctx, name)
		if err != nil {
			errs[name] = err
			continue
		}
		out = append(out, v)
	}
	return out, errs
}

func (s *vaultSession) vaultOptions(vc *config.Vault) vault.Options {
	return vault.Options{Name: vc.Name, Account: s.cfg.RemoteAccount(vc.Remote),
		Log: s.log.With(slog.String("component", "vault")), CacheDir: filepath.Join(s.cfg.StateDir, "vaultindex")}
}

func vaultLocation(vc *config.Vault) string {
	return vc.Remote + ":" + vc.Prefix
}

func exactlyOneVault(use string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("%s needs a vault name; see ferry vault list", use)
		}
		return nil
	}
}

func newVaultInitCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init NAME",
		Short: "Initialize a configured vault on its remote",
		Long: `Write ferry-vault.json at the vault's prefix, with a new vault id, the kind
and the account from the configuration. A local remote's directory is created
if needed; an S3 bucket must exist.`,
		Args: exactlyOneVault("vault init"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openVaultSession(args[0])
			if err != nil {
				return err
			}
			defer s.close()
			vc, err := s.vaultConfig(args[0])
			if err != nil {
				return err
			}
			if r := s.cfg.Remotes[vc.Remote]; r.Type == config.RemoteLocal {
				if err := os.MkdirAll(filepath.Join(r.Path, filepath.FromSlash(vc.Prefix)), 0o750); err != nil {
					return fmt.Errorf("vault init %s: %w", vc.Name, err)
				}
			}
			st, err := s.openStore(cmd.Context(), vc)
			if err != nil {
				return err
			}
			v, err := vault.Init(cmd.Context(), st, vc.Kind, s.vaultOptions(vc))
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, vaultJSON{Name: vc.Name, Remote: vc.Remote, Prefix: vc.Prefix, Account: v.Account(), Info: v.Info()})
			}
			fmt.Fprintf(g.text(), "Initialized vault %s (%s, kind %s, account %s, id %s).\n",
				vc.Name, vaultLocation(vc), v.Kind(), v.Account(), v.ID())
			return nil
		},
	}
}

// vaultJSON is a vault in --json output.
type vaultJSON struct {
	Name    string          `json:"name"`
	Remote  string          `json:"remote"`
	Prefix  string          `json:"prefix"`
	Kind    string          `json:"kind"`
	Account string          `json:"account"`
	Status  string          `json:"status"` // ok, not initialized, error
	Error   string          `json:"error,omitempty"`
	Info    vault.Info      `json:"info,omitzero"`
	Backups int             `json:"backups"`
	Usage   *vaultUsageJSON `json:"usage,omitempty"`
}

type vaultUsageJSON struct {
	LogicalBytes int64   `json:"logical_bytes"`
	StoredBytes  int64   `json:"stored_bytes"`
	Chunks       int64   `json:"chunks"`
	Trees        int64   `json:"trees"`
	DedupRatio   float64 `json:"dedup_ratio"`
}

func newVaultListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the configured vaults and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.openVaultSession()
			if err != nil {
				return err
			}
			defer s.close()
			var rows []vaultJSON
			for _, name := range sortedVaultNames(s.cfg) {
				vc := s.cfg.Vaults[name]
				row := vaultJSON{Name: name, Remote: vc.Remote, Prefix: vc.Prefix, Kind: vc.Kind,
					Account: s.cfg.RemoteAccount(vc.Remote), Status: "ok"}
				v, err := s.openVault(cmd.Context(), name)
				switch {
				case errors.Is(err, vault.ErrNotVault), errors.Is(err, remote.ErrNotExist):
					row.Status = "not initialized"
				case err != nil:
					row.Status, row.Error = "error", err.Error()
				default:
					row.Info = v.Info()
					ms, err := v.Backups(cmd.Context())
					if err != nil {
						row.Status, row.Error = "error", err.Error()
					}
					row.Backups = len(ms)
				}
				rows = append(rows, row)
			}
			if g.json {
				if rows == nil {
					rows = []vaultJSON{}
				}
				return printJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(g.text(), "No vaults configured in %s.\n", s.cfg.File)
				return nil
			}
			tw := newTable(g.text())
			fmt.Fprintln(tw, "NAME\tKIND\tLOCATION\tACCOUNT\tSTATUS\tBACKUPS")
			for _, r := range rows {
				status := r.Status
				if r.Error != "" {
					status += ": " + r.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%s\t%s\t%d\n", r.Name, r.Kind, r.Remote, r.Prefix, r.Account, status, r.Backups)
			}
			return tw.Flush()
		},
	}
}

func newVaultShowCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a vault: its backups, logical and stored size, dedup ratio",
		Args:  exactlyOneVault("vault show"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.openVaultSession(args[0])
			if err != nil {
				return err
			}
			defer s.close()
			v, err := s.openVault(ctx, args[0])
			if err != nil {
				return err
			}
			if err := s.makeCacheDir(); err != nil {
				return err
			}
			vc := s.cfg.Vaults[args[0]]
			ms, err := v.Backups(ctx)
			if err != nil {
				return err
			}
			u, err := v.Usage(ctx)
			if err != nil {
				return err
			}
			running, err := v.Running(ctx)
			if err != nil {
				return err
			}
			var logical int64
			for _, m := range ms {
				logical += m.Stats.LogicalBytes
			}
			usage := &vaultUsageJSON{LogicalBytes: logical, StoredBytes: u.StoredBytes, Chunks: u.Chunks, Trees: u.Trees,
				DedupRatio: ratio(logical, u.StoredBytes)}
			if g.json {
				return printJSON(g.stdout, struct {
					vaultJSON
					BackupList []backupJSON   `json:"backup_list"`
					Running    []vault.Marker `json:"running"`
				}{
					vaultJSON: vaultJSON{Name: vc.Name, Remote: vc.Remote, Prefix: vc.Prefix, Kind: v.Kind(), Account: v.Account(),
						Status: "ok", Info: v.Info(), Backups: len(ms), Usage: usage},
					BackupList: backupsJSON(vc.Name, ms),
					Running:    running,
				})
			}
			tw := newTable(g.text())
			fmt.Fprintf(tw, "Vault\t%s\n", vc.Name)
			fmt.Fprintf(tw, "Location\t%s\n", vaultLocation(vc))
			fmt.Fprintf(tw, "Kind\t%s\n", v.Kind())
			fmt.Fprintf(tw, "Account\t%s\n", v.Account())
			fmt.Fprintf(tw, "ID\t%s\n", v.ID())
			fmt.Fprintf(tw, "Created\t%s\n", timeStr(v.Info().Created))
			fmt.Fprintf(tw, "Backups\t%d\n", len(ms))
			fmt.Fprintf(tw, "Logical size\t%s\n", bytesStr(logical))
			fmt.Fprintf(tw, "Stored size\t%s: %s in %s (and %s, %s)\n", bytesStr(u.StoredBytes),
				nounStr(u.Chunks, "chunk", "chunks"), nounStr(u.Packs, "pack", "packs"), nounStr(u.Trees, "tree", "trees"), bytesStr(u.TreeBytes))
			fmt.Fprintf(tw, "Dedup ratio\t%s\n", ratioStr(logical, u.StoredBytes))
			for _, r := range running {
				fmt.Fprintf(tw, "Running\t%s %s on %s (pid %d) since %s\n", r.Kind, r.ID, r.Host, r.PID, timeStr(r.Started))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(ms) == 0 {
				return nil
			}
			fmt.Fprintln(g.text())
			return printBackupTable(g.text(), backupsJSON(vc.Name, ms), false)
		},
	}
}

func ratio(logical, stored int64) float64 {
	if stored <= 0 {
		return 0
	}
	return float64(logical) / float64(stored)
}

func ratioStr(logical, stored int64) string {
	if stored <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", ratio(logical, stored))
}

func newVaultPruneCommand(g *globalOptions) *cobra.Command {
	var dryRun bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "prune NAME",
		Short: "Delete the packs and trees no backup of the vault references",
		Long: `Delete what no backup references: the packs and trees only deleted backups
used, and what failed backups left. Packs are deleted whole: a pack that
holds one chunk a backup uses stays, with its unused chunks (counted in the
output). Safe while a backup runs: prune refuses to start while a backup or
replication into the vault is running, a backup that starts during a prune
waits for it, and objects younger than --grace are kept (a backup may be
about to use them).`,
		Args: exactlyOneVault("vault prune"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if grace <= 0 {
				return usageErrorf("--grace %s: must be longer than zero, e.g. 1h (objects younger than it are kept)", grace)
			}
			s, err := g.openVaultSession(args[0])
			if err != nil {
				return err
			}
			defer s.close()
			v, err := s.openVault(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := s.makeCacheDir(); err != nil {
				return err
			}
			st, err := v.Prune(cmd.Context(), vault.PruneOptions{Grace: grace, DryRun: dryRun})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, st)
			}
			verb := "Deleted"
			if dryRun {
				verb = "Would delete"
			}
			fmt.Fprintf(g.text(), "%s %d packs (%d chunks, %s) and %d trees no backup references.\n",
				verb, st.PacksDeleted, st.ChunksDeleted, bytesStr(st.BytesDeleted), st.TreesDeleted)
			fmt.Fprintf(g.text(), "The backups use %d chunks in %d packs.\n", st.ReferencedChunks, st.ReferencedPacks)
			if st.UnusedChunks > 0 {
				fmt.Fprintf(g.text(), "Kept %d unused chunks (%s) inside packs that also hold used ones.\n", st.UnusedChunks, bytesStr(st.UnusedBytes))
			}
			if st.Young > 0 {
				fmt.Fprintf(g.text(), "Kept %d unreferenced objects younger than %s.\n", st.Young, grace)
			}
			if st.ManifestsRemoved > 0 {
				fmt.Fprintf(g.text(), "Finished %d interrupted backup deletions.\n", st.ManifestsRemoved)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be deleted; delete nothing")
	cmd.Flags().DurationVar(&grace, "grace", vault.DefaultPruneGrace, "keep unreferenced objects younger than this")
	return cmd
}

// byteBar is a progress bar of bytes on a terminal; elsewhere it prints
// nothing.
type byteBar struct {
	bar *progressbar.ProgressBar
}

func newByteBar(w io.Writer, enabled bool) *byteBar {
	if !enabled || !isTerminal(w) {
		return &byteBar{}
	}
	return &byteBar{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)}
}

// set shows desc and done of total bytes (total <= 0: unknown yet).
func (b *byteBar) set(desc string, done, total int64) {
	if b.bar == nil {
		return
	}
	b.bar.Describe(desc)
	if total > 0 {
		b.bar.ChangeMax64(total)
	}
	_ = b.bar.Set64(done)
}

func (b *byteBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
		_ = b.bar.Clear()
	}
}

func countStr(n int64) string { return humanize.Comma(n) }

// nounStr is n (with thousands separators) and the noun, singular for one:
// "1 file", "2,048 files".
func nounStr(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return countStr(n) + " " + many
}
