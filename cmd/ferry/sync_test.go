package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A re-run trusts the file index for --recheck-destination: a copy deleted
// at the destination comes back at the next check, which
// --check-destination forces.
func TestSyncRecheckDestination(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfg, []byte("state_dir = \""+filepath.Join(dir, "state")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for _, d := range []string{filepath.Join(src, "sub"), dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a.txt", "sub/b.txt"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte("content of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type counters struct {
		Counters struct {
			FilesTransferred int `json:"files_transferred"`
			FilesUnchanged   int `json:"files_unchanged"`
		} `json:"counters"`
	}
	sync := func(extra ...string) counters {
		t.Helper()
		args := append([]string{"--config", cfg, "--json", "sync", src, dst}, extra...)
		stdout, stderr, code := runFerry(t, args...)
		if code != exitOK {
			t.Fatalf("ferry %v: exit %d\n%s", args, code, stderr)
		}
		var c counters
		if err := json.Unmarshal([]byte(stdout), &c); err != nil {
			t.Fatalf("ferry %v: %v\n%s", args, err, stdout)
		}
		return c
	}
	if c := sync(); c.Counters.FilesTransferred != 2 {
		t.Fatalf("first sync: %+v", c)
	}
	if err := os.Remove(filepath.Join(dst, "sub/b.txt")); err != nil {
		t.Fatal(err)
	}
	if c := sync(); c.Counters.FilesUnchanged != 2 || c.Counters.FilesTransferred != 0 {
		t.Errorf("re-run within --recheck-destination: %+v, want both unchanged on the index's word", c)
	}
	if _, err := os.Stat(filepath.Join(dst, "sub/b.txt")); err == nil {
		t.Fatal("the deleted copy came back without a destination check")
	}
	if c := sync("--check-destination"); c.Counters.FilesTransferred != 1 {
		t.Errorf("--check-destination: %+v, want the deleted copy sent again", c)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "sub/b.txt")); err != nil || string(got) != "content of sub/b.txt" {
		t.Errorf("restored copy: %q, %v", got, err)
	}
	if err := os.Remove(filepath.Join(dst, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if c := sync("--recheck-destination", "0s"); c.Counters.FilesTransferred != 1 {
		t.Errorf("--recheck-destination 0s: %+v, want the deleted copy sent again", c)
	}

	// The summary says when the destination was not looked at.
	stdout, stderr, code := runFerry(t, "--config", cfg, "sync", src, dst)
	if code != exitOK || !strings.Contains(stdout, "destination not listed (last checked ") || !strings.Contains(stdout, "--check-destination") {
		t.Errorf("summary of a run that trusted the index (exit %d):\n%s%s", code, stdout, stderr)
	}
	// The delete pass lists the destination in full, and it says so.
	stdout, stderr, code = runFerry(t, "--config", cfg, "sync", src, dst, "--delete")
	if code != exitOK || !strings.Contains(stdout, "destination listed for the deletes; the copies trusted the file index (last checked ") || strings.Contains(stdout, "not listed") {
		t.Errorf("summary of a run with deletes that trusted the index for the copies (exit %d):\n%s%s", code, stdout, stderr)
	}

	// A sync of listed files looks each one up at the destination.
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("sub/b.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := sync("--files-from", list); c.Counters.FilesUnchanged != 1 {
		t.Fatalf("first sync of the list (the file is there): %+v", c)
	}
	if err := os.Remove(filepath.Join(dst, "sub/b.txt")); err != nil {
		t.Fatal(err)
	}
	if c := sync("--files-from", list); c.Counters.FilesTransferred != 1 {
		t.Errorf("--files-from after a copy was deleted: %+v, want it sent again", c)
	}

	_, stderr, code = runFerry(t, "--config", cfg, "sync", src, dst, "--recheck-destination", "soon")
	if code != exitUsage || !strings.Contains(stderr, `--recheck-destination: invalid duration "soon"`) {
		t.Errorf("bad --recheck-destination: exit %d, %s", code, stderr)
	}
}

func TestSyncMaxDeleteNeedsDelete(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runFerry(t, "sync", dir, filepath.Join(dir, "x"), "--max-delete", "10")
	if code != exitUsage || !strings.Contains(stderr, "--max-delete limits --delete") {
		t.Errorf("exit %d, %s; want a usage error naming --delete", code, stderr)
	}
}

// statusConfig writes a configuration file naming a socket in a fresh
// directory, followed by the line extra, and returns the file and socket.
func statusConfig(t *testing.T, extra string) (cfg, sock string) {
	t.Helper()
	dir := t.TempDir()
	cfg = filepath.Join(dir, "ferry.toml")
	sock = filepath.Join(dir, "ferry.sock")
	if err := os.WriteFile(cfg, []byte("socket = \""+sock+"\"\n"+extra+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, sock
}

// ferry status --json answers on stdout even when no daemon runs.
func TestStatusJSONWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg, sock := statusConfig(t, "state_dir = \""+filepath.Join(dir, "state")+"\"")
	stdout, stderr, code := runFerry(t, "--config", cfg, "--json", "status")
	var got struct {
		Running *bool  `json:"running"`
		Socket  string `json:"socket"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Running == nil || *got.Running || got.Socket != sock {
		t.Errorf("stdout %q (%v); want running false and socket %s", stdout, err, sock)
	}
	if code != exitUnavailable || !strings.Contains(stderr, "no ferry daemon answers") {
		t.Errorf("exit %d, %s", code, stderr)
	}
}

// ferry status with a configuration file that is being edited (invalid)
// still asks the daemon, on the socket the file names, and says what is
// wrong with the file.
func TestStatusWithInvalidConfig(t *testing.T) {
	cfg, sock := statusConfig(t, `log_level = "loud"`)
	_, stderr, code := runFerry(t, "--config", cfg, "status")
	if code != exitUnavailable || !strings.Contains(stderr, "log_level") || !strings.Contains(stderr, "no ferry daemon answers on "+sock) {
		t.Errorf("exit %d, %s; want the config problem named and no daemon on %s (exit %d)", code, stderr, sock, exitUnavailable)
	}
	// Not TOML at all: the configuration error, as for every command.
	if err := os.WriteFile(cfg, []byte("socket = [[[\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runFerry(t, "--config", cfg, "status"); code != exitConfig {
		t.Errorf("status with a file that is not TOML: exit %d, %s; want %d", code, stderr, exitConfig)
	}
}
