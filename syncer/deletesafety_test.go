package syncer

// Tests that attack the promise of the delete pass: nothing the source
// still has is deleted, whether Ferry could read it or not, and nothing is
// deleted through a symlink or when source and destination overlap.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// dsNames is the small namespace both trees draw from, so that source and
// destination share many paths.
var dsNames = []string{"a", "b", "c", "a.txt", "b-x"}

// dsTree is one random source tree built in a local directory: regular
// files and directories, with some entries the store lists but cannot read.
type dsTree struct {
	dir      string
	locked   []string // directories made mode 000 after the truth is taken
	skipping int      // entries of kinds the listing skips
}

// dsRandomPath returns a random relative path of 1 to 3 components.
func dsRandomPath(rng *rand.Rand) string {
	n := 1 + rng.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = dsNames[rng.IntN(len(dsNames))]
	}
	return strings.Join(parts, "/")
}

// dsWrite creates a regular file at rel under dir unless something is in
// the way (a file where a directory is needed, or the reverse). It never
// writes through a symlink.
func dsWrite(dir, rel string, content []byte) bool {
	parts := strings.Split(rel, "/")
	p := dir
	for _, c := range parts[:len(parts)-1] {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if os.Mkdir(p, 0o755) != nil {
				return false
			}
		case err != nil || !fi.IsDir():
			return false
		}
	}
	p = filepath.Join(p, parts[len(parts)-1])
	if _, err := os.Lstat(p); err == nil {
		return false
	}
	return os.WriteFile(p, content, 0o644) == nil
}

// dsSource builds a random source tree: files, then entries of the kinds
// a listing reports but cannot copy or enter.
func dsSource(t *testing.T, rng *rand.Rand) *dsTree {
	tr := &dsTree{dir: t.TempDir()}
	for range 4 + rng.IntN(12) {
		dsWrite(tr.dir, dsRandomPath(rng), []byte("src "+strconv.Itoa(rng.IntN(1000))))
	}
	for range rng.IntN(5) {
		rel := dsRandomPath(rng)
		p := filepath.Join(tr.dir, rel)
		if fi, err := os.Lstat(filepath.Dir(p)); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			// An existing directory becomes unreadable.
			if fi, _ := os.Lstat(p); fi.IsDir() && rng.IntN(2) == 0 {
				tr.locked = append(tr.locked, p)
				tr.skipping++
			}
			continue
		}
		var err error
		switch rng.IntN(5) {
		case 0: // a relative symlink to a directory of the tree
			err = os.Symlink(strings.Repeat("../", strings.Count(rel, "/"))+dsNames[rng.IntN(3)], p)
		case 1: // an absolute symlink to a directory (the tree itself)
			err = os.Symlink(tr.dir, p)
		case 2: // a dangling symlink
			err = os.Symlink("nowhere/"+dsNames[rng.IntN(3)], p)
		case 3: // a name that breaks the path rules, as a directory
			bad := filepath.Join(filepath.Dir(p), `bad\`+filepath.Base(p))
			err = os.Mkdir(bad, 0o755)
			if errors.Is(err, fs.ErrExist) {
				continue // made by an earlier pick
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(bad, "f"), []byte("x"), 0o644)
			}
		case 4: // a symlink to a name at the root, which may be a file
			err = os.Symlink(strings.Repeat("../", strings.Count(rel, "/"))+dsNames[3+rng.IntN(2)], p)
		}
		if err != nil {
			t.Fatal(err)
		}
		tr.skipping++
	}
	return tr
}

// dsPresentAtSource reports whether the path rel exists at the source (the
// kernel's answer, following symlinks), and whether some directory on the
// way is something the listing skips — a symlink or an unreadable
// directory — so that the source may have it without Ferry knowing.
func (tr *dsTree) presence(rel string) (exists, covered bool) {
	// A directory of the same name is not the file: a sync replaces the
	// one with the other, as every mirroring tool does.
	if fi, err := os.Stat(filepath.Join(tr.dir, rel)); err == nil && !fi.IsDir() {
		exists = true
	}
	parts := strings.Split(rel, "/")
	p := tr.dir
	for i, c := range parts {
		p = filepath.Join(p, c)
		last := i == len(parts)-1
		fi, err := os.Lstat(p)
		if err != nil {
			return exists, false // the path ends here: nothing under it
		}
		if slices.Contains(tr.locked, p) {
			// A directory Ferry cannot read covers what is under it, not
			// a file of its own name.
			return exists, !last
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// Followed, and so known, only when it leads to a file inside
			// the tree; a symlink to a directory is reported as one (it
			// covers what is under it), any other (dangling, a loop, an
			// absolute target) as an entry that may be anything.
			target, _ := os.Readlink(p)
			tfi, err := os.Stat(p)
			switch {
			case filepath.IsAbs(target) || err != nil:
				return exists, true
			case tfi.IsDir():
				return exists, !last
			}
			return exists, false
		}
		if !fi.IsDir() {
			return exists, false
		}
	}
	return exists, false
}

// TestDeleteNeverRemovesWhatTheSourceHas is the property test of the delete
// pass: random source trees with unreadable directories, symlinks of every
// kind and names that break the rules, random destination trees (local,
// with symlinked directories of their own, and MinIO); after a sync with
// deletes on, no destination file whose path exists at the source has been
// removed, and (the pass still works) every other destination file the
// source cannot have is gone.
func TestDeleteNeverRemovesWhatTheSourceHas(t *testing.T) {
	if testenv.Unprivileged(t) {
		return
	}
	seed := testenv.Seed(t)
	srv := testenv.SharedMinIO(t)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for round := range 40 {
		toS3 := round%4 == 3
		t.Run(fmt.Sprintf("round%02d", round), func(t *testing.T) {
			tr := dsSource(t, rng)
			var dst remote.Store
			var dstDir string
			if toS3 {
				dst = itS3(t, srv, srv.NewBucket(t), "")
			} else {
				dstDir = t.TempDir()
				dst = itLocal(t, dstDir)
			}
			// The destination: files at random paths, many shared with the
			// source, and for a local one a symlinked directory.
			want := map[string]bool{} // key → must survive
			gone := map[string]bool{} // key → must be deleted (when the job completes)
			for range 5 + rng.IntN(15) {
				rel := dsRandomPath(rng)
				if dstDir != "" {
					if !dsWrite(dstDir, rel, []byte("dst")) {
						continue
					}
				} else {
					// MinIO keeps one of "a" and "a/b": a file and a
					// directory of one name, as a file system does.
					if dsClash(rel, want, gone) {
						continue
					}
					itPut(t, dst, rel, []byte("dst"), itMtime)
				}
				exists, covered := tr.presence(rel)
				switch {
				case exists || covered:
					want[rel] = true
				default:
					gone[rel] = true
				}
			}
			if dstDir != "" && rng.IntN(2) == 0 {
				if err := os.Symlink(dsNames[rng.IntN(3)], filepath.Join(dstDir, "alias")); err != nil {
					t.Fatal(err)
				}
			}
			// The deepest first: a locked directory's parent must still be
			// open to lock it.
			slices.SortFunc(tr.locked, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
			for _, p := range tr.locked {
				if err := os.Chmod(p, 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(p, 0o755) })
			}
			e, db := itEngine(t)
			j := itRun(t, e, &Plan{Name: "p", Source: itLocal(t, tr.dir), Dest: dst, Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
			itOneListEach(t, db, j)
			keys, _ := itKeys(t, dst)
			have := map[string]bool{}
			for _, k := range keys {
				have[k] = true
			}
			for k := range want {
				if !have[k] {
					t.Errorf("%s was deleted, but the source has it (or cannot say it has not); job %s %s, skipped %v", k, j.Status, j.Error, itRecords(t, db, j, state.ListSkipped))
				}
			}
			if j.Status != state.JobCompleted {
				return // deletes run only after every copy succeeded
			}
			for k := range gone {
				if have[k] {
					t.Errorf("%s is still at the destination; the source has no such path and nothing covers it; skipped %v; source %s", k, itRecords(t, db, j, state.ListSkipped), dsDescribe(tr.dir))
				}
			}
		})
	}
}

// The same promise at the job's edges, named one by one: an unreadable
// directory covers everything under it, and the job says how many files
// its delete pass kept.
func TestDeleteKeepsFilesUnderUnreadableDirectory(t *testing.T) {
	if testenv.Unprivileged(t) {
		return
	}
	src, dst := t.TempDir(), t.TempDir()
	for _, rel := range []string{"open/a", "locked/b", "locked/deep/c"} {
		dsWrite(src, rel, []byte("x"))
		dsWrite(dst, rel, []byte("x"))
	}
	dsWrite(dst, "gone", []byte("old"))
	if err := os.Chmod(filepath.Join(src, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(src, "locked"), 0o755) })
	e, db := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: itLocal(t, src), Dest: itLocal(t, dst), Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
	itWantStatus(t, j, state.JobCompleted)
	for _, rel := range []string{"open/a", "locked/b", "locked/deep/c"} {
		if _, err := os.Stat(filepath.Join(dst, rel)); err != nil {
			t.Errorf("%s: %v; the delete pass removed a file the source has", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("gone: %v; want it deleted", err)
	}
	skipped := itRecords(t, db, j, state.ListSkipped)
	for _, rel := range []string{"locked/b", "locked/deep/c"} {
		if r, ok := skipped[rel]; !ok || !strings.Contains(r.Reason, "not deleted") || !strings.Contains(r.Reason, "locked/") {
			t.Errorf("skipped list for %s = %+v; want \"not deleted\" naming locked/", rel, r)
		}
	}
	if m := j.Meta[MetaDeletesWithheld]; !strings.HasPrefix(m, "2 destination files not deleted") || !strings.Contains(m, "locked/") {
		t.Errorf("job meta %s = %q; want the count and the unreadable directory", MetaDeletesWithheld, m)
	}
}

// A symlink in a local destination does not carry deletes into its
// target: destination alias -> real, source real/ only.
func TestDeleteDoesNotFollowDestinationSymlink(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	dsWrite(src, "real/a.txt", []byte("a"))
	dsWrite(dst, "real/a.txt", []byte("a"))
	if err := os.Symlink("real", filepath.Join(dst, "alias")); err != nil {
		t.Fatal(err)
	}
	e, _ := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: itLocal(t, src), Dest: itLocal(t, dst), Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
	itWantStatus(t, j, state.JobCompleted)
	if _, err := os.Stat(filepath.Join(dst, "real", "a.txt")); err != nil {
		t.Fatalf("real/a.txt, which the source has, is gone: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "alias")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("alias: %v, %v; want the symlink left alone", fi, err)
	}
	if j.Counters.FilesDeleted != 0 {
		t.Errorf("deleted %d files; want 0", j.Counters.FilesDeleted)
	}
}

// A job whose source lies inside its destination (or the reverse) is
// refused before it writes, whatever the names: here the destination is
// reached through a symlink to the source's parent.
func TestOverlapRefusedAtRunTime(t *testing.T) {
	root := t.TempDir()
	x := filepath.Join(root, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	dsWrite(x, "sub/a", []byte("a"))
	dsWrite(x, "other", []byte("o"))
	link := filepath.Join(root, "link")
	if err := os.Symlink(x, link); err != nil {
		t.Fatal(err)
	}
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	itPut(t, itS3(t, srv, bucket, ""), "x/sub/a", []byte("a"), itMtime)
	itPut(t, itS3(t, srv, bucket, ""), "x/other", []byte("o"), itMtime)
	tests := []struct {
		name     string
		src, dst func(t *testing.T) remote.Store
		deletes  bool
	}{
		{"local source inside destination symlink", func(t *testing.T) remote.Store { return itLocal(t, filepath.Join(x, "sub")) },
			func(t *testing.T) remote.Store { return itLocal(t, link) }, true},
		{"local destination inside source", func(t *testing.T) remote.Store { return itLocal(t, link) },
			func(t *testing.T) remote.Store { return itLocal(t, filepath.Join(x, "sub")) }, false},
		{"s3 source inside destination", func(t *testing.T) remote.Store { return itS3(t, srv, bucket, "x/sub/") },
			func(t *testing.T) remote.Store { return itS3(t, srv, bucket, "x/") }, true},
		{"s3 same prefix", func(t *testing.T) remote.Store { return itS3(t, srv, bucket, "x/") },
			func(t *testing.T) remote.Store { return itS3(t, srv, bucket, "x/") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := itEngine(t)
			src, dst := tt.src(t), tt.dst(t)
			before, _ := itKeys(t, dst)
			j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst, Delete: tt.deletes, MaxDelete: DeleteLimit{Percent: 100}})
			itWantStatus(t, j, state.JobFailed)
			if !strings.Contains(j.Error, "overlap") || !strings.Contains(j.Error, "nothing was written") {
				t.Errorf("job error %q; want the overlap named", j.Error)
			}
			after, _ := itKeys(t, dst)
			if !slices.Equal(before, after) {
				t.Errorf("destination changed: %q → %q", before, after)
			}
		})
	}
}

// The presence cursor, on a listing with skipped entries of every shape:
// a skipped file covers itself and what may be under it, a skipped
// directory everything under it, and nothing else.
func TestPresenceCursorCovers(t *testing.T) {
	listing := []remote.ObjectInfo{
		{Key: "a"},
		{Key: "arch", SkipReason: "archived (GLACIER)"},
		{Key: "arch.txt"},
		{Key: "b/", SkipReason: "cannot read directory: permission denied"},
		{Key: "b0"},
		{Key: "c/d"},
		{Key: "c/e/", SkipReason: "symlink to a directory"},
		{Key: "z"},
	}
	list := func(ctx context.Context, _ string, fn func(remote.ObjectInfo) error) error {
		for _, info := range listing {
			if err := fn(info); err != nil {
				return err
			}
		}
		return nil
	}
	c := startCursorFunc(t.Context(), list)
	c.presence = true
	defer c.stop()
	for _, tt := range []struct {
		key           string
		found, listed bool
	}{
		{"a", true, true},
		{"a/x", false, false},
		{"arch", true, false},
		{"arch.txt", true, true},
		{"arch/deep/x", true, false},
		{"b", false, false}, // a directory covers what is under it, not a file of its name
		{"b/x", true, false},
		{"b/y/z", true, false},
		{"b0", true, true},
		{"c/d", true, true},
		{"c/e", false, false},
		{"c/e/f", true, false},
		{"c/f", false, false},
		{"y", false, false},
		{"z", true, true},
		{"zz", false, false},
	} {
		skipped, found, err := c.present(tt.key)
		if err != nil || found != tt.found || (found && (skipped == nil) != tt.listed) {
			t.Errorf("present(%q) = %v, %v, %v; want found %v, listed %v", tt.key, skipped, found, err, tt.found, tt.listed)
		}
	}
}

// dsDescribe lists a tree's entries for a failure message.
func dsDescribe(dir string) string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		switch {
		case err != nil:
			out = append(out, rel+" (unreadable)")
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			out = append(out, rel)
		}
		return nil
	})
	return strings.Join(out, ", ")
}

// dsClash reports whether rel and a key of one of the sets are a file and
// a directory of the same name.
func dsClash(rel string, sets ...map[string]bool) bool {
	for _, set := range sets {
		for k := range set {
			if strings.HasPrefix(rel, k+"/") || strings.HasPrefix(k, rel+"/") {
				return true
			}
		}
	}
	return false
}

// An object named like a local store's temporary file is a skip with its
// reason, not a failure: the job completes and its deletes run.
func TestTempLikeNameIsSkippedNotFailed(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	src := itS3(t, srv, srv.NewBucket(t), "")
	const odd = "dir/.ferry-tmp-0123456789abcdef"
	itPut(t, src, odd, []byte("not a temporary file"), itMtime)
	itPut(t, src, "dir/plain", []byte("plain"), itMtime)
	dstDir := t.TempDir()
	dsWrite(dstDir, "stale", []byte("old"))
	e, db := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: itLocal(t, dstDir), Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
	itWantStatus(t, j, state.JobCompleted)
	if r, ok := itRecords(t, db, j, state.ListSkipped)[odd]; !ok || !strings.Contains(r.Reason, "reserve for temporary files") {
		t.Errorf("skipped list entry for %s = %+v; want the reason", odd, r)
	}
	if _, err := os.Stat(filepath.Join(dstDir, "stale")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale: %v; want it deleted (the job's deletes run)", err)
	}
	if b, err := os.ReadFile(filepath.Join(dstDir, "dir", "plain")); err != nil || string(b) != "plain" {
		t.Errorf("dir/plain = %q, %v", b, err)
	}
}

// A skipped source entry whose name is a valid key with characters a
// terminal shows badly (a tab, a no-break space) still covers what is
// under it: its key is the key, not a quoted form of it.
func TestDeleteKeepsFilesUnderSkippedEntryWithUnprintableName(t *testing.T) {
	if testenv.Unprivileged(t) {
		return
	}
	src, dst := t.TempDir(), t.TempDir()
	dsWrite(src, "real/a.txt", []byte("a"))
	dsWrite(src, "keep", []byte("k"))
	for _, name := range []string{"link\u00a0nbsp", "link\ttab"} {
		if err := os.Symlink("real", filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
		dsWrite(dst, name+"/a.txt", []byte("a"))
	}
	dsWrite(src, "locked\x01dir/b.txt", []byte("b"))
	dsWrite(dst, "locked\x01dir/b.txt", []byte("b"))
	dsWrite(dst, "real/a.txt", []byte("a"))
	dsWrite(dst, "keep", []byte("k"))
	locked := filepath.Join(src, "locked\x01dir")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	e, _ := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: itLocal(t, src), Dest: itLocal(t, dst), Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
	itWantStatus(t, j, state.JobCompleted)
	for _, rel := range []string{"link\u00a0nbsp/a.txt", "link\ttab/a.txt", "locked\x01dir/b.txt"} {
		if _, err := os.Stat(filepath.Join(dst, rel)); err != nil {
			t.Errorf("%q: %v; the delete pass removed a file the source has", rel, err)
		}
	}
}

// The check at the job's start looks at the directory the destination
// store has open, not at what its path names now: a symlink moved after
// the store was opened (here from the source's parent to a directory
// apart) does not hide the overlap.
func TestOverlapRefusedWhenSymlinkMovesAfterOpen(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	other := filepath.Join(root, "other")
	for _, d := range []string{src, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dsWrite(src, "a.txt", []byte("a"))
	dsWrite(src, "sub/b.txt", []byte("b"))
	link := filepath.Join(root, "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	dst := itLocal(t, link)
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	e, _ := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: itLocal(t, src), Dest: dst, Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
	itWantStatus(t, j, state.JobFailed)
	for _, rel := range []string{"a.txt", "sub/b.txt"} {
		if _, err := os.Stat(filepath.Join(src, rel)); err != nil {
			t.Errorf("source %s: %v; the job deleted the source", rel, err)
		}
	}
}

// A symlinked directory in a local destination is not written through
// either: a copy of loop/a.txt into a destination holding "loop -> ."
// must not land on a.txt, and one of alias/a.txt must not replace
// real/a.txt through "alias -> real". The file is failed, naming the
// symlink; the job is partial and so deletes nothing.
func TestCopiesDoNotFollowDestinationSymlinks(t *testing.T) {
	for _, tt := range []struct {
		name, link, target string
		src                map[string]string
		keep               map[string]string // destination file → content it must keep
	}{
		{"loop", "loop", ".", map[string]string{"a.txt": "A", "loop/a.txt": "LOOP"}, map[string]string{"a.txt": "A"}},
		{"alias", "alias", "real", map[string]string{"alias/a.txt": "fromsrc", "f1": "1", "f2": "2"}, map[string]string{"real/a.txt": "precious"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			for k, v := range tt.src {
				dsWrite(src, k, []byte(v))
			}
			for k, v := range tt.keep {
				if tt.src[k] != v {
					dsWrite(dst, k, []byte(v))
				}
			}
			if err := os.Symlink(tt.target, filepath.Join(dst, tt.link)); err != nil {
				t.Fatal(err)
			}
			e, db := itEngine(t)
			j := itRun(t, e, &Plan{Name: "p", Source: itLocal(t, src), Dest: itLocal(t, dst), Delete: true, MaxDelete: DeleteLimit{Percent: 100}})
			itWantStatus(t, j, state.JobPartial)
			for k, v := range tt.keep {
				if b, err := os.ReadFile(filepath.Join(dst, k)); err != nil || string(b) != v {
					t.Errorf("destination %s = %q, %v; want %q (written or deleted through the symlink)", k, b, err, v)
				}
			}
			failed := itRecords(t, db, j, state.ListFailed)
			if r, ok := failed[tt.link+"/a.txt"]; !ok || !strings.Contains(r.Reason, "symlink") {
				t.Errorf("failed list %v; want %s/a.txt with the symlink named", failed, tt.link)
			}
			if fi, err := os.Lstat(filepath.Join(dst, tt.link)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s: %v, %v; want the symlink left alone", tt.link, fi, err)
			}
		})
	}
}

// A change set naming paths under a symlinked source directory treats them
// as a scan does: the upsert is skipped (not copied through the link) and
// the delete is not carried out (the source cannot say the file is gone).
func TestChangesUnderSourceSymlinkedDirectory(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	dsWrite(src, "real/a.txt", []byte("a"))
	dsWrite(dst, "alias/b.txt", []byte("b"))
	if err := os.Symlink("real", filepath.Join(src, "alias")); err != nil {
		t.Fatal(err)
	}
	e, db := itEngine(t)
	p := &Plan{Name: "p", Source: itLocal(t, src), Dest: itLocal(t, dst), Delete: true, MaxDelete: DeleteLimit{Percent: 100}}
	j, err := e.Run(t.Context(), p, RunOptions{Trigger: "test", Changes: &ChangeSet{Origin: "test", Upserts: []string{"alias/a.txt"}, Deletes: []string{"alias/b.txt"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := itRecords(t, db, j, state.ListSkipped)["alias/a.txt"]; !ok || !strings.Contains(r.Reason, "symlink") {
		t.Errorf("alias/a.txt: skipped %+v; want it skipped, naming the symlink", r)
	}
	if _, err := os.Stat(filepath.Join(dst, "alias", "a.txt")); err == nil {
		t.Error("alias/a.txt was copied through the source's symlink")
	}
	if b, err := os.ReadFile(filepath.Join(dst, "alias", "b.txt")); err != nil || string(b) != "b" {
		t.Errorf("alias/b.txt = %q, %v; want it kept", b, err)
	}
}
