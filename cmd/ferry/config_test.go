package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/config"
)

// runFerry executes the root command in-process, as main does, and returns
// stdout, stderr (what main would print for the error) and the exit code.
func runFerry(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &globalOptions{stdout: &out, stderr: &errOut}
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.Execute()
	reportError(&errOut, err)
	return out.String(), errOut.String(), exitCode(err)
}

func TestConfigCheckQuickstart(t *testing.T) {
	stdout, stderr, code := runFerry(t, "config", "check", "--config", "../../examples/quickstart.toml")
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"Configuration ../../examples/quickstart.toml is valid.",
		"state_dir      /tmp/ferry-quickstart/state",
		"live: /tmp/ferry-quickstart/src → /tmp/ferry-quickstart/dst/live",
		"schedule: Run Now only",
		"watch: on (run 10s after the last change, at most 1m after the first)",
		"every-15m: /tmp/ferry-quickstart/src → /tmp/ferry-quickstart/dst/scheduled",
		"mode scan, conflict skip, verify transferred",
		"schedule: every 15m from ",
		"Remotes: none",
		"Mounts: none",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

// fullConfig writes examples/full.toml with its secret files into a
// temporary directory and returns its path.
func fullConfig(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, secret := range map[string]string{"aws-main.key": "AWS-SECRET-VALUE", "wasabi.key": "WASABI-SECRET-VALUE"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "ferry.toml")
	text := strings.ReplaceAll(string(data), "/etc/ferry/secrets/", dir+"/")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheckFullSummary(t *testing.T) {
	path := fullConfig(t)
	stdout, stderr, code := runFerry(t, "config", "check", path)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"https://s3.eu-central-1.amazonaws.com  bucket example-company-data  prefix ferry/  region eu-central-1  credential aws-main (account aws-123456789012)",
		"archive  local  /srv/archive",
		"photos: /srv/photos → aws:photos",
		"schedule: every 1d from 2025-01-01 02:00",
		"changelist: /var/spool/ferry/ingest (checked every 30s)",
		"delete: on (at most 10% of the destination per run)",
		"alerts: all: ops, pager",
		"alerts: none",
		"main     backup       aws:vaults/main/",
		"home-nightly: /home → vault main",
		"keep: last 7, daily 14, weekly 8, monthly 12",
		"to-wasabi: vault main → vault offsite",
		"keep: at most 30 replicas, those younger than 90 days",
		"ops    webhook  https://hooks.example.com/…",
		"pager  command  /usr/local/bin/page-oncall --team storage",
		"/mnt/ferry/main    vault main     (read-only, allow_other)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "SECRET-VALUE") {
		t.Errorf("summary shows a secret:\n%s", stdout)
	}
}

func TestConfigCheckJSON(t *testing.T) {
	path := fullConfig(t)
	stdout, stderr, code := runFerry(t, "--json", "config", "check", "--config", path)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout, "SECRET-VALUE") {
		t.Fatalf("JSON shows a secret:\n%s", stdout)
	}
	var got struct {
		File        string `json:"file"`
		Credentials map[string]struct {
			SecretKey string `json:"secret_key"`
		} `json:"credentials"`
		Plans []struct {
			Name     string `json:"name"`
			Schedule *struct {
				Every string `json:"every"`
			} `json:"schedule"`
			MaxBytesPerTask string `json:"max_bytes_per_task"`
		} `json:"plans"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if got.File != path || got.Credentials["aws-main"].SecretKey != "***" || len(got.Plans) != 4 ||
		got.Plans[0].Schedule == nil || got.Plans[0].Schedule.Every != "1d" || got.Plans[0].MaxBytesPerTask != "4GiB" {
		t.Errorf("JSON = %+v", got)
	}
}

// The acceptance case of issue 2: an unknown key, a schedule below 10
// minutes and a plan naming a missing remote give exit code 3 and all three
// problems, each with file, line and key path.
func TestConfigCheckReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.toml")
	text := `state_dir = "/tmp/ferry-test"

[[plans]]
name = "docs"
source = "/srv/docs"
destination = "s3b:docs"
shedule = "daily"

[[plans]]
name = "photos"
source = "/srv/photos"
destination = "/backup/photos"
schedule = { every = "5m" }
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runFerry(t, "config", "check", "--config", path)
	if code != exitConfig {
		t.Errorf("exit code %d, want %d", code, exitConfig)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	want := []string{
		"ferry: invalid configuration " + path + ": 3 problems",
		path + `:6: plans[0].destination: unknown remote "s3b" in "s3b:docs"`,
		path + `:7: plans[0].shedule: unknown key; did you mean "schedule"?`,
		path + `:13: plans[1].schedule.every: "5m" is below the minimum of "10m"`,
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(want), stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}

	// With --json the problems also go to stdout as JSON.
	stdout, _, code = runFerry(t, "--json", "config", "check", "--config", path)
	var ve config.ValidationError
	if err := json.Unmarshal([]byte(stdout), &ve); err != nil || code != exitConfig {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, stdout)
	}
	if len(ve.Problems) != 3 || ve.Problems[2].Key != "plans[1].schedule.every" || ve.Problems[2].Line != 13 {
		t.Errorf("--json problems = %+v", ve.Problems)
	}
}

func TestConfigCheckMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, stderr, code := runFerry(t, "config", "check", "--config", path)
	if code != exitConfig || !strings.Contains(stderr, path) || !strings.Contains(stderr, "--config") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestConfigCheckSyntaxError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(path, []byte("[[plans]]\nname = \"a\nsource = \"/a\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runFerry(t, "config", "check", path)
	if code != exitConfig || !strings.Contains(stderr, path+":2: TOML syntax error") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestConfigCheckUsage(t *testing.T) {
	_, _, code := runFerry(t, "config", "check", "a", "b")
	if code != exitUsage {
		t.Errorf("two arguments: exit %d, want %d", code, exitUsage)
	}
}
