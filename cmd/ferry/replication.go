package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/vault"
)

func init() { commandConstructors = append(commandConstructors, newReplicationCommand) }

func newReplicationCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replication",
		Short: "Inspect replication records",
		Long: `Every replication of a backup leaves a record (id, backup, source and
destination vault and account, status waiting_replicate → replicating →
success | fail | skip, times, bytes, error) in the source vault, where other
hosts see it, and in this host's state database.`,
	}
	cmd.AddCommand(newReplicationListCommand(g))
	return cmd
}

func newReplicationListCommand(g *globalOptions) *cobra.Command {
	var backupID, vaultName string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List replication records, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if backupID != "" && !vault.ValidID(backupID) {
				return usageErrorf("--backup %q is not a backup ID (they look like 20250102T030405Z-1a2b3c4d)", backupID)
			}
			s, err := g.openVaultSession(vaultName)
			if err != nil {
				return err
			}
			defer s.close()
			if vaultName != "" {
				if _, err := s.vaultConfig(vaultName); err != nil {
					return err
				}
			}
			all, err := s.replicationHistory(ctx, backupID)
			if err != nil {
				return err
			}
			recs := all[:0:0]
			for _, r := range all {
				if vaultName == "" || r.SourceVault == vaultName || r.DestinationVault == vaultName {
					recs = append(recs, r)
				}
			}
			if g.json {
				return printJSON(g.stdout, recs)
			}
			if len(recs) == 0 {
				fmt.Fprintln(g.text(), "No replications.")
				return nil
			}
			return printReplicationTable(g.text(), recs)
		},
	}
	cmd.Flags().StringVar(&backupID, "backup", "", "only replications of this backup")
	cmd.Flags().StringVar(&vaultName, "vault", "", "only replications from or to this vault")
	return cmd
}

func printReplicationTable(w io.Writer, recs []*vault.Replication) error {
	recs = slices.Clone(recs)
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tBACKUP\tFROM\tTO\tSTATUS\tSTARTED\tDURATION\tCHUNKS\tBYTES\tERROR")
	for _, r := range recs {
		dur := "-"
		if !r.Started.IsZero() && !r.Ended.IsZero() {
			dur = durationStr(r.Ended.Sub(r.Started))
		}
		started := r.Started
		if started.IsZero() {
			started = r.Created
		}
		errText := r.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s (%s)\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.BackupID,
			r.SourceVault, r.SourceAccount, r.DestinationVault, r.DestinationAccount, r.Status,
			timeStr(started), dur, countStr(r.Chunks), bytesStr(r.Bytes), errText)
	}
	return tw.Flush()
}
