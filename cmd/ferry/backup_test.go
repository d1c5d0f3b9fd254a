package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/vault"
)

// vaultConfig writes a configuration with three local remotes standing for
// three accounts, and vaults main (backup), offsite and third
// (replication) on them.
func vaultConfig(t *testing.T) (cfgPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	text := fmt.Sprintf(`
state_dir = %[1]q

[remotes.one]
type = "local"
path = %[2]q

[remotes.two]
type = "local"
path = %[3]q

[remotes.three]
type = "local"
path = %[4]q

[vaults.main]
remote = "one"
prefix = "vaults/main/"

[vaults.offsite]
remote = "two"
prefix = "offsite/"
kind = "replication"

[vaults.third]
remote = "three"
kind = "replication"
`, filepath.Join(dir, "state"), filepath.Join(dir, "cloud1"), filepath.Join(dir, "cloud2"), filepath.Join(dir, "cloud3"))
	for _, d := range []string{"cloud1", "cloud2", "cloud3"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath = filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dir
}

func mustFerry(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runFerry(t, args...)
	if code != exitOK {
		t.Fatalf("ferry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func backupSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	mt := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	files := map[string]string{
		"a/b/deep.txt": strings.Repeat("deep ", 5000),
		"top.txt":      "top\n",
		"empty":        "",
	}
	for p, content := range files {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a/b/deep.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestBackupCLI(t *testing.T) {
	cfg, dir := vaultConfig(t)
	c := "--config=" + cfg
	src := backupSource(t)

	// Before init: the vault is listed as not initialized; a backup fails clearly.
	out := mustFerry(t, "vault", "list", c)
	if !strings.Contains(out, "main") || !strings.Contains(out, "not initialized") {
		t.Errorf("vault list before init:\n%s", out)
	}
	_, errOut, code := runFerry(t, "backup", "create", "--vault", "main", src, c)
	if code != exitFailure || !strings.Contains(errOut, "ferry vault init") {
		t.Errorf("backup into an uninitialized vault: exit %d, %s", code, errOut)
	}
	for _, v := range []string{"main", "offsite", "third"} {
		if out := mustFerry(t, "vault", "init", v, c); !strings.Contains(out, "Initialized vault "+v) {
			t.Errorf("vault init %s: %s", v, out)
		}
	}
	if _, errOut, code := runFerry(t, "vault", "init", "main", c); code != exitFailure || !strings.Contains(errOut, "already initialized") {
		t.Errorf("second init: exit %d, %s", code, errOut)
	}
	if _, errOut, code := runFerry(t, "vault", "init", "nope", c); code != exitUsage || !strings.Contains(errOut, "configured: main, offsite, third") {
		t.Errorf("init of an unknown vault: exit %d, %s", code, errOut)
	}

	// Create, list, show.
	out = mustFerry(t, "backup", "create", "--vault", "main", "--name", "first", src, c)
	if !strings.Contains(out, "4 files") || !strings.Contains(out, "1 symlink,") {
		t.Errorf("backup create:\n%s", out)
	}
	var created struct {
		ID    string `json:"id"`
		Vault string `json:"vault"`
		Stats struct {
			Unchanged int `json:"unchanged"`
			NewBytes  int `json:"new_bytes"`
		} `json:"stats"`
	}
	jsonOut := mustFerry(t, "backup", "create", "--vault", "main", src, c, "--json")
	if err := json.Unmarshal([]byte(jsonOut), &created); err != nil {
		t.Fatalf("backup create --json: %v\n%s", err, jsonOut)
	}
	if created.Vault != "main" || created.Stats.Unchanged != 4 || created.Stats.NewBytes != 0 {
		t.Errorf("second backup = %+v; want 4 unchanged files, nothing uploaded", created)
	}
	id := created.ID
	var list []map[string]any
	if err := json.Unmarshal([]byte(mustFerry(t, "backup", "list", c, "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("backup list --json: %v, %d backups", err, len(list))
	}
	out = mustFerry(t, "vault", "show", "main", c)
	for _, want := range []string{"Backups       2", "Dedup ratio   2.00x", "first"} {
		if !strings.Contains(out, want) {
			t.Errorf("vault show lacks %q:\n%s", want, out)
		}
	}

	// Replicate, repeat (skip), refuse a second account, show history.
	out = mustFerry(t, "backup", "replicate", id, "--to", "offsite", c)
	if !strings.Contains(out, "Replicated backup "+id+" from vault main (one) to vault offsite (two)") {
		t.Errorf("replicate:\n%s", out)
	}
	if out := mustFerry(t, "backup", "replicate", id, "--to", "offsite", c); !strings.Contains(out, "Skipped") {
		t.Errorf("repeat:\n%s", out)
	}
	_, errOut, code = runFerry(t, "backup", "replicate", id, "--to", "third", c)
	if code != exitFailure || !strings.Contains(errOut, "at most one account") {
		t.Errorf("second account: exit %d, %s", code, errOut)
	}
	out = mustFerry(t, "backup", "show", id, c)
	for _, want := range []string{"Vault            main (account one)", "Replication history:", "success", "skip"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup show lacks %q:\n%s", want, out)
		}
	}
	out = mustFerry(t, "replication", "list", "--vault", "offsite", c)
	if strings.Count(out, id) != 2 {
		t.Errorf("replication list:\n%s", out)
	}
	if out := mustFerry(t, "replication", "list", "--vault", "third", c); !strings.Contains(out, "No replications.") {
		t.Errorf("replication list --vault third:\n%s", out)
	}

	// Restore from the replica (the ID is in two vaults: --vault picks).
	target := filepath.Join(t.TempDir(), "restore")
	mustFerry(t, "backup", "restore", id, target, "--vault", "offsite", c)
	for _, p := range []string{"a/b/deep.txt", "top.txt", "empty", "big.bin"} {
		want, _ := os.ReadFile(filepath.Join(src, p))
		got, err := os.ReadFile(filepath.Join(target, p))
		if err != nil || !bytes.Equal(want, got) {
			t.Errorf("%s restored wrong: %v", p, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(target, "link")); err != nil || l != "a/b/deep.txt" {
		t.Errorf("link: %q, %v", l, err)
	}
	sub := filepath.Join(t.TempDir(), "sub")
	mustFerry(t, "backup", "restore", id, sub, "--path", "a/b", c)
	if _, err := os.Stat(filepath.Join(sub, "top.txt")); err == nil {
		t.Error("--path a/b restored top.txt")
	}

	// Verify, then damage the first chunk of every pack behind Ferry's back.
	if out := mustFerry(t, "backup", "verify", id, "--read-data", c); !strings.Contains(out, "structure and data OK") {
		t.Errorf("verify:\n%s", out)
	}
	chunks, _ := filepath.Glob(filepath.Join(dir, "cloud2", "offsite", "packs", "*", "*"))
	if len(chunks) == 0 {
		t.Fatal("no pack files in the offsite vault")
	}
	for _, ch := range chunks {
		data, _ := os.ReadFile(ch)
		data[0] ^= 0xff
		if err := os.WriteFile(ch, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, _, code = runFerry(t, "backup", "verify", id, "--vault", "offsite", "--read-data", c)
	if code != exitFailure || !strings.Contains(out, "is damaged") || !strings.Contains(out, "checksum mismatch") {
		t.Errorf("verify of damaged data: exit %d\n%s", code, out)
	}

	// Delete the original and prune; the damaged replica cannot come back.
	mustFerry(t, "backup", "delete", id, "--vault", "main", c)
	_, errOut, code = runFerry(t, "backup", "replicate", id, "--to", "main", c)
	if code != exitFailure || !strings.Contains(errOut, "only available backups replicate") {
		t.Errorf("replicate a damaged replica: exit %d, %s", code, errOut)
	}
	out = mustFerry(t, "vault", "prune", "main", "--dry-run", c)
	if !strings.Contains(out, "Would delete 0 packs (0 chunks, 0 B)") {
		t.Errorf("prune --dry-run (the other backup shares every chunk):\n%s", out)
	}

	// Bad input.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "show", "nope"}, "not a backup ID"},
		{[]string{"backup", "show", "20200101T000000Z-00000000"}, "no such backup"},
		{[]string{"backup", "create", src}, "needs --vault"},
		{[]string{"backup", "create", "--vault", "main", filepath.Join(dir, "missing")}, "SOURCE"},
		{[]string{"backup", "replicate", id}, "needs --to"},
		{[]string{"backup", "list", "--vault", "nope"}, `no vault named "nope"`},
		{[]string{"vault", "prune", "main", "--grace", "0s"}, "--grace"},
	} {
		_, errOut, code := runFerry(t, append(tc.args, c)...)
		if code == exitOK || !strings.Contains(errOut, tc.want) {
			t.Errorf("ferry %s: exit %d, %s; want %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
	if !vault.ValidID(id) {
		t.Errorf("id %q", id)
	}
}
