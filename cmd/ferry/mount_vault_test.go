package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/fusefs"
	"github.com/ferrysync/ferry/internal/testenv"
)

func TestMountVaultUsage(t *testing.T) {
	cfg, dir := vaultConfig(t)
	c := "--config=" + cfg
	mustFerry(t, "vault", "init", "main", c)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"mount", "vault", "main"}, exitUsage, "needs VAULT and MOUNTPOINT"},
		{[]string{"mount", "vault", "nope", dir}, exitUsage, `no vault named "nope"`},
		{[]string{"mount", "vault", "offsite", dir}, exitFailure, "ferry vault init"},
		{[]string{"mount", "vault", "main", filepath.Join(dir, "missing")}, exitFailure, "does not exist"},
	} {
		_, stderr, code := runFerry(t, append(tc.args, c)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("ferry %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
}

// startVaultMount runs `ferry mount vault` on its own goroutine and waits
// until the mount is up. The returned channel yields the exit code.
func startVaultMount(t *testing.T, ctx context.Context, cfg, name, mp string) (<-chan int, *lockedBuffer) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, testenv.PartFUSE, "no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		testenv.Missing(t, testenv.PartFUSE, "no fusermount3 on PATH")
	}
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		g := &globalOptions{stdout: &out, stderr: &out}
		root := newRootCommand(g)
		root.SetArgs([]string{"mount", "vault", "--config", cfg, name, mp})
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
			t.Fatalf("ferry mount vault exited %d before mounting:\n%s", code, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mounted after a minute:\n%s", mp, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done, &out
}

func TestMountVaultUntilUmount(t *testing.T) {
	cfg, dir := vaultConfig(t)
	c := "--config=" + cfg
	src := backupSource(t)
	mustFerry(t, "vault", "init", "main", c)
	mustFerry(t, "backup", "create", "--vault", "main", "--name", "first", src, c)
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	done, out := startVaultMount(t, context.Background(), cfg, "main", mp)

	entries, err := os.ReadDir(mp)
	if err != nil || len(entries) != 3 || !strings.HasSuffix(entries[0].Name(), "-first") {
		t.Errorf("root of the vault mount: %v, %v", entries, err)
	}
	for _, p := range []string{"top.txt", "big.bin", "a/b/deep.txt", "empty"} {
		want, _ := os.ReadFile(filepath.Join(src, p))
		got, err := os.ReadFile(filepath.Join(mp, "latest", p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("latest/%s: %d bytes, %v; want %d bytes", p, len(got), err, len(want))
		}
	}
	if err := os.WriteFile(filepath.Join(mp, "latest", "x"), nil, 0o644); err == nil {
		t.Error("write into a vault mount succeeded")
	}
	// The mount holds no lock on the state database: other commands run.
	mustFerry(t, "backup", "list", c)

	stdout, stderr, code := runFerry(t, "umount", mp)
	if code != exitOK || !strings.Contains(stdout, "Unmounted "+mp) {
		t.Errorf("ferry umount: exit %d\n%s%s", code, stdout, stderr)
	}
	if code := waitExit(t, done, out); code != exitOK {
		t.Errorf("ferry mount vault exited %d after umount:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "Mounted vault main on "+mp) {
		t.Errorf("ferry mount vault said:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "vaultcache")); err != nil {
		t.Errorf("no chunk cache under the state directory: %v", err)
	}
}

func TestMountVaultUntilInterrupt(t *testing.T) {
	cfg, dir := vaultConfig(t)
	mustFerry(t, "vault", "init", "main", "--config="+cfg)
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, out := startVaultMount(t, ctx, cfg, "main", mp)
	cancel() // Ctrl-C
	if code := waitExit(t, done, out); code != exitOK {
		t.Errorf("ferry mount vault exited %d after Ctrl-C:\n%s", code, out.String())
	}
	if mounted(mp) {
		t.Errorf("%s still mounted after Ctrl-C", mp)
	}
}
