//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// inboxConfig writes a configuration with plan "p" from src to dst and a
// local changelist inbox, and returns the file and its directories.
func inboxConfig(t *testing.T) (cfg, src, dst, inbox string) {
	t.Helper()
	dir := t.TempDir()
	src, dst, inbox = filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "inbox")
	for _, d := range []string{src, dst, inbox} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg = filepath.Join(dir, "ferry.toml")
	toml := fmt.Sprintf(`state_dir = %q
socket    = %q

[[plans]]
name        = "p"
source      = %q
destination = %q
changelist  = %q
`, filepath.Join(dir, "state"), filepath.Join(dir, "ferry.sock"), src, dst, inbox)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, src, dst, inbox
}

// dropList writes a changelist into the inbox, old enough to be taken.
func dropList(t *testing.T, inbox, name, text string) {
	t.Helper()
	p := filepath.Join(inbox, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// ferry plan run without a daemon takes the lists waiting in the plan's
// inbox as the daemon would: each runs as a job and is filed under done/
// or rejected/, and the command says how many it took.
func TestPlanRunTakesInboxWithoutDaemon(t *testing.T) {
	cfg, src, _, inbox := inboxConfig(t)
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	dropList(t, inbox, "one.csv", "path,op\n/a.txt,upsert\n")

	// A dry run leaves the list, and says so.
	_, stderr, code := binFerry(t, nil, "--config", cfg, "plan", "run", "p", "--dry-run")
	if code != exitOK || !strings.Contains(stderr, "A dry run does not take the changelists waiting in the inbox "+inbox) {
		t.Errorf("plan run --dry-run: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(inbox, "one.csv")); err != nil {
		t.Errorf("the dry run took the list: %v", err)
	}

	stdout, stderr, code := binFerry(t, nil, "--config", cfg, "plan", "run", "p")
	if code != exitOK || !strings.Contains(stdout, "Changelist one.csv:") || !strings.Contains(stderr, "Took 1 changelist from the inbox "+inbox) {
		t.Errorf("plan run: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(inbox, "done", "one.csv")); err != nil {
		t.Errorf("the list is not in done/: %v", err)
	}
	var jobs []struct {
		Trigger string `json:"trigger"`
		Status  string `json:"status"`
		Meta    map[string]string
	}
	stdout, _, _ = binFerry(t, nil, "--config", cfg, "--json", "job", "list")
	if err := json.Unmarshal([]byte(stdout), &jobs); err != nil || len(jobs) != 3 ||
		jobs[0].Trigger != "changelist" || jobs[0].Status != "completed" || jobs[0].Meta["origin"] != "changelist one.csv" {
		t.Errorf("jobs (newest first): %v %+v; want the list's job after the dry run and the scan", err, jobs)
	}

	// A broken list is rejected and the exit code says so.
	dropList(t, inbox, "two.csv", "garbage \"x\n")
	_, stderr, code = binFerry(t, nil, "--config", cfg, "plan", "run", "p")
	if code != exitFailure || !strings.Contains(stderr, "changelist two.csv was rejected") {
		t.Errorf("plan run with a broken list: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(inbox, "rejected", "two.csv.error")); err != nil {
		t.Errorf("the broken list is not in rejected/: %v", err)
	}
}
