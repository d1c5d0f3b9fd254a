// Package treetest compares two directory trees for tests: the tree a
// restore, a mount or a sync produced against the one it came from.
package treetest

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Options say what Compare checks besides entries, types, modes, mtimes,
// contents and symlink targets.
type Options struct {
	// Where names got in messages, e.g. "the mount" or "the restore".
	Where string
	// Owners compares uid and gid.
	Owners bool
	// SymlinkSize checks that a symlink's size is its target's length.
	SymlinkSize bool
}

// Compare checks that got holds exactly what want holds: the same entries
// with the same types, modes, mtimes (symlinks' too), contents and symlink
// targets, and what o asks for.
func Compare(t testing.TB, want, got string, o Options) {
	t.Helper()
	if o.Where == "" {
		o.Where = got
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		if rel == "." {
			return nil
		}
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gp := filepath.Join(got, rel)
		gi, err := os.Lstat(gp)
		if err != nil {
			t.Errorf("%s: missing in %s: %v", rel, o.Where, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		if !wi.ModTime().Equal(gi.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		if o.Owners {
			ws, gs := wi.Sys().(*syscall.Stat_t), gi.Sys().(*syscall.Stat_t)
			if ws.Uid != gs.Uid || ws.Gid != gs.Gid {
				t.Errorf("%s: owner %d:%d, want %d:%d", rel, gs.Uid, gs.Gid, ws.Uid, ws.Gid)
			}
		}
		switch {
		case wi.Mode()&fs.ModeSymlink != 0:
			wt, _ := os.Readlink(p)
			gt, err := os.Readlink(gp)
			if err != nil || gt != wt {
				t.Errorf("%s: symlink target %q (%v), want %q", rel, gt, err, wt)
			}
			if o.SymlinkSize && gi.Size() != int64(len(wt)) {
				t.Errorf("%s: symlink size %d, want %d", rel, gi.Size(), len(wt))
			}
		case wi.Mode().IsRegular():
			if gi.Size() != wi.Size() {
				t.Errorf("%s: size %d, want %d", rel, gi.Size(), wi.Size())
			}
			if same, err := sameContent(p, gp); err != nil {
				t.Errorf("%s: %v", rel, err)
			} else if !same {
				t.Errorf("%s: content differs", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", want, err)
	}
	err = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if !seen[rel] {
			t.Errorf("%s: in %s but not in %s", rel, o.Where, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", got, err)
	}
}

// sameContent compares two files a MiB at a time.
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		aEnd := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bEnd := eb == io.EOF || eb == io.ErrUnexpectedEOF
		switch {
		case ea != nil && !aEnd:
			return false, ea
		case eb != nil && !bEnd:
			return false, eb
		case aEnd || bEnd:
			return aEnd && bEnd, nil
		}
	}
}
