//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// While a daemon runs, ferry sync refuses with a message that says what to
// do, and copies nothing; a plan run goes through the daemon.
func TestSyncWhileDaemonRuns(t *testing.T) {
	cfg, src, dst, _ := inboxConfig(t)
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	d := ferryCommand(ferryBinary(t), &out, &errOut, "--config", cfg, "daemon")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	t.Cleanup(func() {
		d.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			d.Process.Kill()
			<-exited
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, _, code := binFerry(t, nil, "--config", cfg, "status"); code == exitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not answer within 30s:\n%s", errOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	other := t.TempDir()
	_, stderr, code := binFerry(t, nil, "--config", cfg, "sync", src, other)
	if code != exitUnavailable || !strings.Contains(stderr, "a ferry daemon runs with this configuration") ||
		!strings.Contains(stderr, "ferry plan run NAME") {
		t.Errorf("sync while the daemon runs: exit %d, %s; want %d and what to do", code, stderr, exitUnavailable)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 {
		t.Errorf("the refused sync wrote %v", entries)
	}

	stdout, stderr, code := binFerry(t, nil, "--config", cfg, "plan", "run", "p", "--wait")
	if code != exitOK || !strings.Contains(stdout, "completed") {
		t.Errorf("plan run through the daemon: exit %d\n%s%s", code, stdout, stderr)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "a.txt")); err != nil || string(got) != "a" {
		t.Errorf("the plan's copy: %q, %v", got, err)
	}
}
