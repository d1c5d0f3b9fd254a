//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A command line ferry refuses — a bad argument, flag value, remote,
// pattern, vault or id — exits with the usage code, names what is wrong,
// and creates nothing: not even the state directory.
func TestRefusedCommandLineCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "ferry.toml")
	toml := fmt.Sprintf(`state_dir = %q
socket    = %q

[remotes.loc]
type = "local"
path = %q

[vaults.v]
remote = "loc"
prefix = "v"
`, stateDir, filepath.Join(dir, "ferry.sock"), filepath.Join(dir, "remote"))
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	src, dst, target := filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "restore")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const id = "20250102T030405Z-1a2b3c4d"
	for _, tc := range []struct {
		args []string
		want string // in the message
	}{
		{[]string{"sync", src, "nosuch:x"}, `no remote named "nosuch"`},
		{[]string{"sync", src, dst, "--include", "["}, `--include: filter pattern "["`},
		{[]string{"sync", src, dst, "--exclude", " "}, `--exclude: filter pattern " " is empty`},
		{[]string{"sync", src, dst, "--conflict", "always"}, "--conflict"},
		{[]string{"sync", src, dst, "--verify", "some"}, "--verify"},
		{[]string{"sync", src, dst, "--workers", "0"}, "--workers"},
		{[]string{"sync", src, dst, "--max-bytes-per-task", "big"}, "--max-bytes-per-task"},
		{[]string{"sync", src, dst, "--delete", "--max-delete", "most"}, "--max-delete"},
		{[]string{"sync", src, dst, "--recheck-destination", "soon"}, "--recheck-destination"},
		{[]string{"backup", "restore", "BADID", target}, `"BADID" is not a backup ID`},
		{[]string{"backup", "restore", id, target, "--vault", "nope"}, `no vault named "nope"`},
		{[]string{"backup", "show", "BADID"}, `"BADID" is not a backup ID`},
		{[]string{"backup", "replicate", "BADID", "--to", "v"}, `"BADID" is not a backup ID`},
		{[]string{"backup", "replicate", id, "--to", "nope"}, `no vault named "nope"`},
		{[]string{"backup", "create", "--vault", "nope", src}, `no vault named "nope"`},
		{[]string{"backup", "list", "--vault", "nope"}, `no vault named "nope"`},
		{[]string{"vault", "show", "nope"}, `no vault named "nope"`},
		{[]string{"vault", "prune", "v", "--grace", "0s"}, "--grace"},
		{[]string{"replication", "list", "--vault", "nope"}, `no vault named "nope"`},
		{[]string{"job", "show", "nosuchjob"}, `no job "nosuchjob"`},
		{[]string{"job", "files", "nosuchjob", "--list", "success"}, `no job "nosuchjob"`},
		{[]string{"job", "files", "nosuchjob", "--list", "all"}, "--list"},
		{[]string{"job", "files", "nosuchjob", "--list", "success", "--format", "xml"}, "--format"},
		{[]string{"job", "list", "--status", "done"}, "--status"},
		{[]string{"job", "list", "--limit", "-1"}, "--limit"},
		{[]string{"job", "export", "--since", "yesterday"}, "--since"},
		{[]string{"--log-level", "loud", "job", "list"}, `--log-level "loud": valid values are debug, info, warn, error`},
		{[]string{"--log-level", "WARN", "sync", src, dst}, "--log-level"},
		// Every location obeys the path rules, checked before the overlap
		// of the two ends and before anything is opened.
		{[]string{"sync", src, "loc:./x"}, `prefix "./x" has a "." component`},
		{[]string{"sync", src, "loc:../x"}, `prefix "../x" has a ".." component`},
		{[]string{"sync", "loc:../", dst}, `prefix "../" has a ".." component`},
		{[]string{"sync", filepath.Join(dir, "nosuch"), dst}, "the source directory " + filepath.Join(dir, "nosuch") + " does not exist (is it mounted?)"},
		{[]string{"sync", src, filepath.Join(dir, "nosuchdst")}, "the destination directory " + filepath.Join(dir, "nosuchdst") + " does not exist"},
		{[]string{"backup", "restore", id, target, "--path", "../.."}, `--path "../.."`},
	} {
		_, stderr, code := binFerry(t, nil, append([]string{"--config", cfg}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("ferry %s: exit %d, %q; want %d and a message with %q", strings.Join(tc.args, " "), code, stderr, exitUsage, tc.want)
		}
		for _, p := range []string{stateDir, target, filepath.Join(dir, "remote")} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("ferry %s created %s", strings.Join(tc.args, " "), p)
				os.RemoveAll(p)
			}
		}
	}
	// A command that fails before it does anything leaves no state
	// directory either: here a backup no vault has (the vault is not
	// initialized, so none has it).
	if _, stderr, code := binFerry(t, nil, "--config", cfg, "backup", "restore", id, target); code != exitFailure || !strings.Contains(stderr, "no such backup") {
		t.Errorf("ferry backup restore %s: exit %d, %q; want %d and no such backup", id, code, stderr, exitFailure)
	}
	for _, p := range []string{stateDir, target} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("ferry backup restore of a backup no vault has created %s", p)
			os.RemoveAll(p)
		}
	}
	// Reading commands find no jobs in a state directory that does not
	// exist, and leave it so; listings of vaults and backups read the
	// vaults only.
	for _, args := range [][]string{{"job", "list"}, {"plan", "list"}, {"job", "export"}, {"backup", "list"}, {"vault", "list"}} {
		if _, stderr, code := binFerry(t, nil, append([]string{"--config", cfg}, args...)...); code != exitOK {
			t.Errorf("ferry %s: exit %d, %s", strings.Join(args, " "), code, stderr)
		}
		if _, err := os.Stat(stateDir); err == nil {
			t.Errorf("ferry %s created the state directory", strings.Join(args, " "))
			os.RemoveAll(stateDir)
		}
	}
	// Without vaults, a backup ID is a bad argument.
	noVaults := filepath.Join(dir, "novaults.toml")
	if err := os.WriteFile(noVaults, []byte(fmt.Sprintf("state_dir = %q\nsocket = %q\n", stateDir, filepath.Join(dir, "ferry.sock"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := binFerry(t, nil, "--config", noVaults, "backup", "restore", id, target); code != exitUsage || !strings.Contains(stderr, "no vaults configured") {
		t.Errorf("ferry backup restore with no vaults: exit %d, %q; want %d and no vaults configured", code, stderr, exitUsage)
	}
	if _, err := os.Stat(stateDir); err == nil {
		t.Errorf("ferry backup restore with no vaults created the state directory")
	}
}
