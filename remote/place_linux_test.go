//go:build linux

package remote

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A bind mount is a second path to one directory: the paths differ, the
// directory does not, and the overlap is refused.
func TestCheckOverlapSeesBindMounts(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mnt := filepath.Join(dir, "mnt")
	for _, d := range []string{filepath.Join(data, "photos"), mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(data, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount (needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	place := func(p string) Place {
		pl, err := LocalPlace(p)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	for _, tt := range []struct {
		src, dst string
		always   bool
	}{
		{filepath.Join(data, "photos"), mnt, false},                         // the source inside the destination
		{mnt, filepath.Join(data, "photos"), true},                          // the destination inside the source
		{filepath.Join(mnt, "photos"), filepath.Join(data, "photos"), true}, // one directory
		{filepath.Join(mnt, "new"), filepath.Join(data, "new", "x"), true},  // one directory, not made yet
	} {
		for _, dels := range []bool{false, true} {
			err := CheckOverlap(place(tt.src), place(tt.dst), dels)
			if want := tt.always || dels; (err != nil) != want || err != nil && !errors.Is(err, ErrOverlap) {
				t.Errorf("CheckOverlap(%s, %s, deletes=%v) = %v; want refused=%v", tt.src, tt.dst, dels, err, want)
			}
		}
	}
	if err := CheckOverlap(place(filepath.Join(mnt, "photos")), place(filepath.Join(data, "photosx")), true); err != nil {
		t.Errorf("siblings through a bind mount: %v; want allowed", err)
	}
}
