//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/vault"
)

// countVaultChunks counts the chunks in the packs under a local vault's
// packs/ (each pack's trailer lists them).
func countVaultChunks(dir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, "packs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !vault.ValidSHA256(d.Name()) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if entries, err := vault.DecodePack(data); err == nil {
			n += len(entries)
		}
		return nil
	})
	return n
}

// killFerryWhen runs the ferry binary with args and SIGKILLs it once dir
// holds at least n chunks; the command must not have ended by itself.
func killFerryWhen(t *testing.T, dir string, n int, args ...string) {
	t.Helper()
	cmd := exec.Command(ferryBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(ktCmdTimeout)
	for countVaultChunks(dir) < n {
		select {
		case err := <-exited:
			t.Fatalf("ferry %s ended before the kill (%v):\n%s", strings.Join(args, " "), err, stderr.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("ferry %s stored fewer than %d chunks in %s", strings.Join(args, " "), n, ktCmdTimeout)
		case <-time.After(ktPollEvery):
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatalf("ferry %s exited 0: it finished before the kill", strings.Join(args, " "))
	}
}

// TestKillBackupAndReplicateCLI SIGKILLs `ferry backup create` and `ferry
// backup replicate` half way and runs them again: both complete, the
// second run reuses what the first stored, and nothing partial is ever
// listed.
func TestKillBackupAndReplicateCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the ferry binary")
	}
	cfg, dir := vaultConfig(t)
	c := "--config=" + cfg
	mustFerry(t, "vault", "init", "main", c)
	mustFerry(t, "vault", "init", "offsite", c)
	mainDir := filepath.Join(dir, "cloud1", "vaults", "main")
	offDir := filepath.Join(dir, "cloud2", "offsite")

	src := backupSource(t)
	big := make([]byte, 96<<20)
	_, _ = rand.NewChaCha8([32]byte{1, 2, 3}).Read(big)
	if err := os.WriteFile(filepath.Join(src, "disk.img"), big, 0o600); err != nil {
		t.Fatal(err)
	}

	// One pack in flight at a time (--workers 1): with several, the few
	// packs of this source land together and the run may end before the
	// kill.
	killFerryWhen(t, mainDir, 4, "backup", "create", "--vault", "main", src, "--workers", "1", c)
	if out := mustFerry(t, "backup", "list", "--vault", "main", "--json", c); strings.TrimSpace(out) != "[]" {
		t.Fatalf("after the kill, backup list shows:\n%s", out)
	}
	stored := countVaultChunks(mainDir)
	var created struct {
		ID    string      `json:"id"`
		Stats vault.Stats `json:"stats"`
	}
	if err := json.Unmarshal([]byte(mustFerry(t, "backup", "create", "--vault", "main", src, "--json", c)), &created); err != nil {
		t.Fatal(err)
	}
	if reused := created.Stats.Chunks - created.Stats.NewChunks; reused < int64(stored) {
		t.Errorf("the re-run reused %d chunks; %d were stored before the kill", reused, stored)
	}

	killFerryWhen(t, offDir, 4, "backup", "replicate", created.ID, "--to", "offsite", "--workers", "1", c)
	if out := mustFerry(t, "backup", "list", "--vault", "offsite", "--json", c); strings.TrimSpace(out) != "[]" {
		t.Fatalf("after the kill, the destination lists:\n%s", out)
	}
	var recs []vault.Replication
	if err := json.Unmarshal([]byte(mustFerry(t, "replication", "list", "--json", c)), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Status != vault.ReplReplicating {
		t.Fatalf("records after the kill: %+v", recs)
	}
	copied := countVaultChunks(offDir)
	out := mustFerry(t, "backup", "replicate", created.ID, "--to", "offsite", c)
	if !strings.Contains(out, "Replicated backup "+created.ID) || !strings.Contains(out, recs[0].ID) {
		t.Errorf("re-run of the replication:\n%s", out)
	}
	if err := json.Unmarshal([]byte(mustFerry(t, "replication", "list", "--json", c)), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Status != vault.ReplSuccess || recs[0].Chunks != created.Stats.Chunks-int64(copied) {
		t.Errorf("records after the re-run: %+v; want the same record, success, %d chunks copied", recs, created.Stats.Chunks-int64(copied))
	}

	target := filepath.Join(t.TempDir(), "restore")
	mustFerry(t, "backup", "restore", created.ID, target, "--vault", "offsite", c)
	got, err := os.ReadFile(filepath.Join(target, "disk.img"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("disk.img restored from the replica differs (%v)", err)
	}
}
