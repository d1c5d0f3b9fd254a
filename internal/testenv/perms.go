package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PartPerms is the part "file permissions apply to the test": a test that
// makes a directory unreadable needs it. Root ignores file modes, so as root
// the test runs again in a child process without that power (see
// Unprivileged), which needs setpriv (util-linux).
const PartPerms = "perms"

// unprivilegedEnv marks the child process Unprivileged starts.
const unprivilegedEnv = "FERRY_TEST_UNPRIVILEGED"

// Unprivileged makes file permissions apply to the calling test. As a user
// other than root it checks that they do and returns false: the test goes
// on. As root it runs the same test again in a child process of the test
// binary without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (the
// capabilities that let root read what its mode forbids), logs the child's
// output, fails when the child failed, and returns true: the caller must
// return at once. Call it first, from a top-level test.
func Unprivileged(t *testing.T) (ranInChild bool) {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv(unprivilegedEnv) == "1" {
		if !permsApply(t) {
			Missing(t, PartPerms, "file permissions do not stop this process (it can read a directory of mode 000)")
		}
		return false
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		Missing(t, PartPerms, "running as root, and setpriv (util-linux) is not installed to drop root's file-mode override")
		return true
	}
	caps := "-dac_override,-dac_read_search"
	args := []string{"--inh-caps=" + caps, "--bounding-set=" + caps, "--",
		os.Args[0], "-test.run=^" + t.Name() + "$", "-test.count=1", "-test.v"}
	cmd := exec.CommandContext(t.Context(), setpriv, args...)
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s without CAP_DAC_OVERRIDE (child process):\n%s", t.Name(), strings.TrimSpace(string(out)))
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		t.Fatalf("the test failed in the child process (exit %d)", ee.ExitCode())
	case err != nil:
		t.Fatalf("run the test in a child process: %v", err)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()):
		t.Skip("skipped in the child process (see its output above)")
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("the child process did not run %s", t.Name())
	}
	return true
}

// permsApply reports whether this process is refused a directory of mode
// 000.
func permsApply(t *testing.T) bool {
	dir := filepath.Join(t.TempDir(), "locked")
	if err := os.Mkdir(dir, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	_, err := os.ReadDir(dir)
	return err != nil
}
