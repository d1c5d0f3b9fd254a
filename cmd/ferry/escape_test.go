//go:build linux

package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Names that would drive a terminal: set the window title, clear the screen.
const (
	evilDir  = "src\x1b]0;title\a"
	evilFile = "a\x1b[2J.txt"
)

// binFerry runs the ferry binary with stdout going to out (a pipe when nil)
// and returns what it wrote there and to stderr, and its exit code.
func binFerry(t *testing.T, out *os.File, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	var w io.Writer = &o
	if out != nil {
		w = out
	}
	code = waitFerry(t, ferryCommand(ferryBinary(t), w, &e, args...), &e)
	return o.String(), e.String(), code
}

// onTerminal runs the ferry binary with stdout on a pseudo-terminal and
// returns what the terminal received.
func onTerminal(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ptmx, pts := openPTY(t)
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once no one holds pts
		read <- b
	}()
	_, stderr, code = binFerry(t, pts, args...)
	pts.Close()
	b := <-read
	ptmx.Close()
	return string(b), stderr, code
}

// openPTY opens a pseudo-terminal pair (ptmx is the side the test reads).
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	return ptmx, pts
}

// noControl fails when human output holds a byte a terminal acts on.
func noControl(t *testing.T, what, out string) {
	t.Helper()
	if i := strings.IndexAny(out, "\x1b\a"); i >= 0 {
		t.Errorf("%s sends a raw %q to the terminal:\n%q", what, out[i], out)
	}
}

// A file name with terminal escapes reaches people quoted — in tables, CSV
// on a terminal, summaries, errors and logs — and programs exactly, in JSON
// and in CSV through a pipe.
func TestHumanOutputQuotesControlBytes(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ferry.toml")
	toml := fmt.Sprintf("state_dir = %q\nsocket = %q\n", filepath.Join(dir, "state"), filepath.Join(dir, "ferry.sock"))
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	src, dst := filepath.Join(dir, evilDir), filepath.Join(dir, "dst")
	// A directory where the copy should go makes the file fail, so that its
	// name is in an error too.
	for _, d := range []string{src, filepath.Join(dst, evilFile, "x")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, evilFile), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "ok.txt"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	ferry := func(args ...string) []string { return append([]string{"--config", cfg}, args...) }

	stdout, stderr, code := onTerminal(t, ferry("sync", src, dst)...)
	if code != exitPartial {
		t.Fatalf("sync: exit %d, want %d (the file fails)\n%s%s", code, exitPartial, stdout, stderr)
	}
	noControl(t, "the sync summary", stdout)
	noControl(t, "the sync's log", stderr)
	if !strings.Contains(stderr, `a\x1b[2J.txt`) {
		t.Errorf("the log does not name the failed file, quoted:\n%s", stderr)
	}
	var jobs []struct {
		ID string `json:"id"`
	}
	stdout, stderr, _ = binFerry(t, nil, ferry("--json", "job", "list")...)
	if err := json.Unmarshal([]byte(stdout), &jobs); err != nil || len(jobs) != 1 {
		t.Fatalf("job list: %v\n%s%s", err, stdout, stderr)
	}
	id := jobs[0].ID

	stdout, _, _ = onTerminal(t, ferry("job", "show", id)...)
	noControl(t, "job show", stdout)
	if !strings.Contains(stdout, `src\x1b]0;title\a`) {
		t.Errorf("job show does not show the source, quoted:\n%s", stdout)
	}

	for _, list := range []string{"success", "failed"} {
		want := map[string]string{"success": "ok.txt", "failed": evilFile}[list]
		stdout, stderr, code = onTerminal(t, ferry("job", "files", id, "--list", list)...)
		noControl(t, "job files --list "+list+" on a terminal", stdout)
		if code != exitOK || !strings.Contains(stdout, strings.Trim(fmt.Sprintf("%q", want), `"`)) {
			t.Errorf("job files --list %s on a terminal: exit %d\n%s%s", list, code, stdout, stderr)
		}

		stdout, stderr, code = binFerry(t, nil, ferry("job", "files", id, "--list", list)...)
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if code != exitOK || err != nil || len(rows) != 2 || rows[1][0] != want {
			t.Errorf("job files --list %s through a pipe: exit %d, %v, rows %q; want the path %q exactly\n%s", list, code, err, rows, want, stderr)
		}
		if list == "failed" && !strings.Contains(rows[1][2], evilFile) {
			t.Errorf("the piped error column %q lacks the exact name", rows[1][2])
		}

		stdout, _, _ = onTerminal(t, ferry("job", "files", id, "--list", list, "--format", "json")...)
		var recs []struct {
			Path string `json:"path"`
		}
		if err := json.Unmarshal([]byte(strings.ReplaceAll(stdout, "\r\n", "\n")), &recs); err != nil || len(recs) != 1 || recs[0].Path != want {
			t.Errorf("job files --list %s --format json: %v, %+v; want the path %q exactly\n%s", list, err, recs, want, stdout)
		}
	}

	stdout, _, _ = onTerminal(t, ferry("job", "export")...)
	noControl(t, "job export on a terminal", stdout)

	// An error naming the file.
	_, stderr, code = binFerry(t, nil, ferry("sync", filepath.Join(src, evilFile, "nosuch"), dst)...)
	noControl(t, "an error", stderr)
	if code == exitOK || !strings.Contains(stderr, `a\x1b[2J.txt`) {
		t.Errorf("sync from a missing source: exit %d, %s; want an error naming it, quoted", code, stderr)
	}
}

// The pseudo-terminal of the test is one: what the test proves would not
// hold if the binary saw a pipe.
func TestOnTerminalIsATerminal(t *testing.T) {
	ptmx, pts := openPTY(t)
	defer ptmx.Close()
	defer pts.Close()
	if !isTerminal(pts) {
		t.Fatal("the pseudo-terminal is not a terminal")
	}
}
