package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/fusefs"
	"github.com/ferrysync/ferry/internal/testenv"
)

func TestParseRemoteArg(t *testing.T) {
	for _, c := range []struct {
		arg, name, prefix string
		ok                bool
	}{
		{"s3a", "s3a", "", true},
		{"s3a:", "s3a", "", true},
		{"s3a:photos", "s3a", "photos/", true},
		{"s3a:/photos/2026/", "s3a", "photos/2026/", true},
		{":photos", "", "", false},
		{"/local/path", "", "", false},
		{"s3a:a//b", "", "", false},
		{"s3a:../x", "", "", false},
	} {
		name, prefix, err := parseRemoteArg(c.arg)
		if (err == nil) != c.ok || name != c.name || prefix != c.prefix {
			t.Errorf("parseRemoteArg(%q) = %q, %q, %v; want %q, %q, ok=%v", c.arg, name, prefix, err, c.name, c.prefix, c.ok)
		}
	}
}

func TestUmountNotMounted(t *testing.T) {
	_, stderr, code := runFerry(t, "umount", t.TempDir())
	if code != exitFailure || !strings.Contains(stderr, "not a FUSE mount") {
		t.Errorf("umount of a plain directory: exit %d, %s", code, stderr)
	}
}

func TestMountRemoteUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := mountConfig(t, dir)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"mount", "remote", "loc:"}, exitUsage, "needs REMOTE[:PREFIX] and MOUNTPOINT"},
		{[]string{"mount", "remote", "nope:x", dir}, exitUsage, `no remote named "nope"`},
		{[]string{"mount", "remote", "loc:a//b", dir}, exitUsage, "empty path component"},
		{[]string{"mount", "remote", "loc:", filepath.Join(dir, "missing")}, exitFailure, "does not exist"},
	} {
		_, stderr, code := runFerry(t, append(c.args, "--config", cfg)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("ferry %s: exit %d, %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
}

// mountConfig writes a configuration with a local remote "loc" at
// dir/data and returns its path.
func mountConfig(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ferry.toml")
	toml := "state_dir = \"" + filepath.Join(dir, "state") + "\"\nsocket = \"" + filepath.Join(dir, "ferry.sock") +
		"\"\n\n[remotes.loc]\ntype = \"local\"\npath = \"" + filepath.Join(dir, "data") + "\"\n"
	if err := os.WriteFile(p, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lockedBuffer is a bytes.Buffer safe for a command running on another
// goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startMount runs `ferry mount remote` on its own goroutine and waits until
// the mount is up. The returned channel yields the exit code.
func startMount(t *testing.T, ctx context.Context, cfg string, args ...string) (<-chan int, *lockedBuffer) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, testenv.PartFUSE, "no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		testenv.Missing(t, testenv.PartFUSE, "no fusermount3 on PATH")
	}
	mp := args[len(args)-1]
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		g := &globalOptions{stdout: &out, stderr: &out}
		root := newRootCommand(g)
		root.SetArgs(append([]string{"mount", "remote", "--config", cfg}, args...))
		err := root.ExecuteContext(ctx)
		if err != nil {
			out.Write([]byte("ferry: " + err.Error() + "\n"))
		}
		done <- exitCode(err)
	}()
	t.Cleanup(func() {
		if mounted(mp) {
			t.Errorf("%s still mounted at the end of the test", mp)
			fusefs.Unmount(mp)
		}
	})
	for deadline := time.Now().Add(time.Minute); !mounted(mp); {
		select {
		case code := <-done:
			t.Fatalf("ferry mount exited %d before mounting:\n%s", code, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mounted after a minute:\n%s", mp, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done, &out
}

func mounted(mp string) bool {
	mounts, _ := fusefs.FuseMounts()
	return slices.Contains(mounts, mp)
}

func waitExit(t *testing.T, done <-chan int, out *lockedBuffer) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(time.Minute):
		t.Fatalf("ferry mount did not exit within a minute:\n%s", out.String())
		return -1
	}
}

func TestMountRemoteUntilUmount(t *testing.T) {
	dir := t.TempDir()
	cfg := mountConfig(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "data/sub/photos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data/sub/photos/a.txt"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, "mnt")
	os.Mkdir(mp, 0o755)
	done, out := startMount(t, context.Background(), cfg, "loc:sub", mp)

	if b, err := os.ReadFile(filepath.Join(mp, "photos/a.txt")); err != nil || string(b) != "A" {
		t.Errorf("read through the mount: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(mp, "photos/b.txt"), []byte("B"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "data/sub/photos/b.txt")); err != nil || string(b) != "B" {
		t.Errorf("written through the mount: %q %v", b, err)
	}

	stdout, stderr, code := runFerry(t, "umount", mp)
	if code != exitOK || !strings.Contains(stdout, "Unmounted "+mp) {
		t.Errorf("ferry umount: exit %d\n%s%s", code, stdout, stderr)
	}
	if code := waitExit(t, done, out); code != exitOK {
		t.Errorf("ferry mount exited %d after umount:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "Mounted loc:sub/ on "+mp) {
		t.Errorf("ferry mount said:\n%s", out.String())
	}
}

func TestMountRemoteUntilInterrupt(t *testing.T) {
	dir := t.TempDir()
	cfg := mountConfig(t, dir)
	mp := filepath.Join(dir, "mnt")
	os.Mkdir(mp, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, out := startMount(t, ctx, cfg, "--read-only", "loc", mp)
	if err := os.WriteFile(filepath.Join(mp, "x"), nil, 0o644); err == nil {
		t.Error("write to a --read-only mount succeeded")
	}
	cancel() // Ctrl-C
	if code := waitExit(t, done, out); code != exitOK {
		t.Errorf("ferry mount exited %d after Ctrl-C:\n%s", code, out.String())
	}
	if mounted(mp) {
		t.Errorf("%s still mounted after Ctrl-C", mp)
	}
}
