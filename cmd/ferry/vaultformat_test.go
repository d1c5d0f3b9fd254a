package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A vault of an earlier format is not "no backups": backup list says what
// it is and what to do, and exits non-zero.
func TestBackupListOldVaultFormat(t *testing.T) {
	dir := t.TempDir()
	vdir := filepath.Join(dir, "vault")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	info := `{"format":1,"id":"f2f922d595bbf94ffdc6298261e65e83","kind":"backup","account":"old","created":"2025-01-02T03:04:05Z",` +
		`"chunker":{"algorithm":"fastcdc-v1.0.0","small_file":1048576,"min":524288,"avg":1048576,"max":4194304}}`
	if err := os.WriteFile(filepath.Join(vdir, "ferry-vault.json"), []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ferry.toml")
	toml := "state_dir = \"" + filepath.Join(dir, "state") + "\"\n\n[remotes.disk]\ntype = \"local\"\npath = \"" + vdir + "\"\n\n[vaults.old]\nremote = \"disk\"\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"backup", "list"}, {"--json", "backup", "list"}} {
		stdout, stderr, code := runFerry(t, append([]string{"--config", cfg}, args...)...)
		if code != exitUnavailable {
			t.Errorf("ferry %v: exit %d, want %d", args, code, exitUnavailable)
		}
		if strings.Contains(stdout, "No backups") {
			t.Errorf("ferry %v says there are no backups:\n%s", args, stdout)
		}
		if !strings.Contains(stderr, "vault format 1, written by an earlier Ferry") || !strings.Contains(stderr, "ferry vault init") {
			t.Errorf("ferry %v: stderr does not say the vault is of an earlier format and what to do:\n%s", args, stderr)
		}
	}
}
