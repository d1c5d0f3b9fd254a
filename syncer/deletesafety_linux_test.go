package syncer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/state"
)

// The source bind-mounted inside the destination passes the check of the
// two roots (neither path contains the other), and the destination's
// listing walks into the mount. Deleting what the source "lacks" there
// would delete the source: each delete is refused when the directory
// holding the file is the source.
func TestDeleteRefusedThroughMountOfSource(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	live := filepath.Join(dst, "live")
	for _, d := range []string{src, live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dsWrite(src, "a.txt", []byte("precious"))
	if err := unix.Mount(src, live, "", unix.MS_BIND, ""); err != nil {
		if os.Geteuid() == 0 {
			t.Fatalf("bind-mount as root: %v", err)
		}
		t.Skipf("cannot bind-mount without root: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(live, unix.MNT_DETACH) })
	e, db := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: itLocal(t, src), Dest: itLocal(t, dst), Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
	if b, err := os.ReadFile(filepath.Join(src, "a.txt")); err != nil || string(b) != "precious" {
		t.Fatalf("the source's a.txt = %q, %v: deleted through the mount inside the destination", b, err)
	}
	if r, ok := itRecords(t, db, j, state.ListFailed)["live/a.txt"]; !ok || !strings.Contains(r.Reason, "inside it") {
		t.Errorf("failed list entry for live/a.txt = %+v; want the refusal", r)
	}
}
