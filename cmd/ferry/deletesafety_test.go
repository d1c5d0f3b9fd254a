package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/internal/testenv"
)

// A sync that would delete its own source is refused, however the two ends
// are named: through a symlink to the source's parent, through a local
// remote whose path holds the source, and in a plan of the configuration
// (refused when the file is loaded, with its line). Nothing is written or
// deleted.
func TestOverlappingSyncIsRefused(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	x := filepath.Join(data, "x")
	for _, f := range []string{"sub/a.txt", "sub/b.txt", "other.txt"} {
		p := filepath.Join(x, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(x, link); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ferry.toml")
	base := "state_dir = \"" + filepath.Join(dir, "state") + "\"\n[remotes.loc]\ntype = \"local\"\npath = \"" + data + "\"\n"
	if err := os.WriteFile(cfg, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	tree := func() []string {
		var out []string
		filepath.WalkDir(x, func(p string, d os.DirEntry, err error) error {
			out = append(out, p)
			return nil
		})
		return out
	}
	before := tree()
	for _, args := range [][]string{
		{"sync", filepath.Join(x, "sub"), link, "--delete", "--max-delete", "100%"},
		{"sync", filepath.Join(x, "sub"), "loc:x", "--delete"},
		{"sync", "loc:x/sub", "loc:x", "--delete"},
		{"sync", link, filepath.Join(x, "sub")},
	} {
		_, stderr, code := runFerry(t, append([]string{"--config", cfg}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "overlap") {
			t.Errorf("ferry %v: exit %d, %s; want a usage error saying the two overlap", args, code, stderr)
		}
	}
	if after := tree(); !slices.Equal(before, after) {
		t.Fatalf("the source changed: %q → %q", before, after)
	}

	// The plan: source inside destination, deletes on.
	plan := base + "[[plans]]\nname = \"p\"\nsource = \"loc:x/sub\"\ndestination = \"loc:x\"\ndelete = true\nmax_delete = \"100%\"\n"
	if err := os.WriteFile(cfg, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runFerry(t, "--config", cfg, "config", "check")
	if code == exitOK || !strings.Contains(stderr, "ferry.toml:8") || !strings.Contains(stderr, "plans[0].destination") || !strings.Contains(stderr, "would delete the source itself") {
		t.Errorf("config check: exit %d, %s; want the problem at ferry.toml:8, plans[0].destination", code, stderr)
	}
	if _, _, code := runFerry(t, "--config", cfg, "plan", "run", "p"); code == exitOK {
		t.Error("plan run of the overlapping plan succeeded")
	}
	if after := tree(); !slices.Equal(before, after) {
		t.Fatalf("the source changed: %q → %q", before, after)
	}
}

// ferry sync --delete keeps the destination's copies of what the source
// lists but cannot read (a directory of mode 000), says so in its summary,
// and does not delete through a symlink in the destination.
func TestSyncDeleteKeepsUnreadableAndSymlinked(t *testing.T) {
	if testenv.Unprivileged(t) {
		return
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	write := func(root string, files ...string) {
		for _, f := range files {
			p := filepath.Join(root, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(src, "locked/a.txt", "real/b.txt", "top.txt")
	write(dst, "locked/a.txt", "real/b.txt", "top.txt", "gone.txt")
	if err := os.Symlink("real", filepath.Join(dst, "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(src, "locked"), 0o755) })
	cfg := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfg, []byte("state_dir = \""+filepath.Join(dir, "state")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runFerry(t, "--config", cfg, "sync", src, dst, "--delete", "--max-delete", "100%")
	if code != exitOK {
		t.Fatalf("ferry sync: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"locked/a.txt", "real/b.txt", "top.txt"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("%s, which the source has, is gone from the destination: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "gone.txt")); !os.IsNotExist(err) {
		t.Errorf("gone.txt: %v; want it deleted", err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "alias")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("alias: %v, %v; want the symlink left alone", fi, err)
	}
	if !strings.Contains(stdout, "deletes withheld: 1 destination file not deleted") || !strings.Contains(stdout, "locked/") {
		t.Errorf("summary does not say what was kept:\n%s", stdout)
	}
	// The success list gives a deleted file its size at the destination.
	id := strings.Fields(stdout)[1]
	list, stderr, code := runFerry(t, "--config", cfg, "job", "files", id, "--list", "success", "--format", "csv")
	if code != exitOK || !strings.Contains(list, "gone.txt,8,,deleted") {
		t.Errorf("ferry job files %s: exit %d, %s\n%s; want gone.txt with its 8 bytes", id, code, stderr, list)
	}
}

// A sync --delete with a failed file deletes nothing, and its summary and
// ferry job show say so, and why.
func TestSyncDeleteNotRunWhenFilesFail(t *testing.T) {
	if testenv.Unprivileged(t) {
		return
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for _, f := range []string{filepath.Join(src, "ok.txt"), filepath.Join(src, "secret.txt"), filepath.Join(dst, "gone.txt")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "secret.txt"), 0); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfg, []byte("state_dir = \""+filepath.Join(dir, "state")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runFerry(t, "--config", cfg, "sync", src, dst, "--delete", "--max-delete", "100%")
	if code != exitPartial {
		t.Fatalf("ferry sync: exit %d, want %d\n%s\n%s", code, exitPartial, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dst, "gone.txt")); err != nil {
		t.Errorf("gone.txt deleted by a job with a failed file: %v", err)
	}
	const want = "1 file failed; run again"
	if !strings.Contains(stdout, "deletes not run: "+want) || !strings.Contains(stdout, "error: 1 file failed\n") {
		t.Errorf("summary does not say the deletes did not run:\n%s", stdout)
	}
	id := strings.Fields(stdout)[1]
	show, stderr, code := runFerry(t, "--config", cfg, "job", "show", id)
	if code != exitOK || !strings.Contains(show, "Deletes not run") || !strings.Contains(show, want) {
		t.Errorf("ferry job show %s: exit %d, %s\n%s", id, code, stderr, show)
	}
}
