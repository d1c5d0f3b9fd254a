package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/local"
	"github.com/ferrysync/ferry/remote/storetest"
)

func newStore(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) remote.Store { return newStore(t) }, storetest.Options{})
}

func ctx(t *testing.T) context.Context { return t.Context() }

func put(t *testing.T, s *local.Store, key, content string, meta remote.PutMeta) remote.ObjectInfo {
	t.Helper()
	info, err := s.Put(ctx(t), key, strings.NewReader(content), int64(len(content)), meta)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func listAll(t *testing.T, s *local.Store, prefix string) []remote.ObjectInfo {
	t.Helper()
	var got []remote.ObjectInfo
	if err := s.List(ctx(t), prefix, func(info remote.ObjectInfo) error {
		got = append(got, info)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

// byKey indexes a listing; it fails on a duplicate key.
func byKey(t *testing.T, infos []remote.ObjectInfo) map[string]remote.ObjectInfo {
	t.Helper()
	m := map[string]remote.ObjectInfo{}
	for _, info := range infos {
		if _, dup := m[info.Key]; dup {
			t.Errorf("key %q listed twice", info.Key)
		}
		m[info.Key] = info
	}
	return m
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// onDisk lists every name under dir (relative, slash-separated), including
// temporary files and empty directories.
func onDisk(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestNewErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := local.New(missing)
	if !errors.Is(err, remote.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("New(missing dir) = %v; want ErrNotExist naming the directory", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = local.New(file)
	if err == nil || !strings.Contains(err.Error(), "not a directory") || !strings.Contains(err.Error(), file) {
		t.Errorf("New(a file) = %v; want a 'not a directory' error naming it", err)
	}
}

func TestSymlinksCannotEscape(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rel, err := filepath.Rel(dir, outside)
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"abs-dir":  outside,                      // absolute, to a directory outside
		"rel-dir":  rel,                          // relative, climbing out
		"abs-file": secret,                       // absolute, to a file outside
		"rel-file": filepath.Join(rel, "secret"), // relative, to a file outside
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"abs-dir/secret", "rel-dir/secret", "abs-file", "rel-file"} {
		if _, err := s.Stat(ctx(t), key); err == nil {
			t.Errorf("Stat(%q) through a symlink out of the root succeeded", key)
		}
		if rc, err := s.Open(ctx(t), key, 0, -1); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Errorf("Open(%q) through a symlink out of the root read %q", key, b)
		}
		if _, err := s.Put(ctx(t), "abs-dir/new", strings.NewReader("x"), 1, remote.PutMeta{}); err == nil {
			t.Error("Put through a symlink out of the root succeeded")
		}
		if strings.Contains(key, "/") {
			_ = s.Delete(ctx(t), key) // through the link: must not reach the target
		}
		if c, ok := any(s).(remote.Copier); ok {
			if _, err := c.Copy(ctx(t), key, "copied"); err == nil {
				t.Errorf("Copy(%q) through a symlink out of the root succeeded", key)
			}
		}
	}
	// Nothing outside changed.
	if b, err := os.ReadFile(secret); err != nil || string(b) != "secret" {
		t.Errorf("the file outside the root is now %q, %v", b, err)
	}
	if names := onDisk(t, outside); !slices.Equal(names, []string{"secret"}) {
		t.Errorf("outside the root there is now %q, want [secret]", names)
	}
	// The listing reports every such link with a reason.
	got := byKey(t, listAll(t, s, ""))
	for name := range links {
		info, ok := got[name]
		if !ok || info.SkipReason == "" {
			t.Errorf("List entry for %q = %+v, %v; want it with a SkipReason", name, info, ok)
			continue
		}
		t.Logf("%s: %s", name, info.SkipReason)
	}
	if len(got) != len(links) {
		t.Errorf("List = %v, want only the %d links", got, len(links))
	}

	// A Put at a symlink's key replaces the link, inside the root.
	put(t, s, "abs-file", "replaced", remote.PutMeta{})
	if fi, err := os.Lstat(filepath.Join(dir, "abs-file")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("after Put the key is %v, %v; want a regular file", fi, err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Errorf("Put at a symlink's key wrote through it: outside file is %q", b)
	}
}

func TestSymlinksInsideRoot(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	put(t, s, "real/file", "content", remote.PutMeta{})
	put(t, s, "real/sub/deep", "deep", remote.PutMeta{})
	mustSymlink(t, "real/file", filepath.Join(dir, "file-link"))
	mustSymlink(t, "real", filepath.Join(dir, "dir-link"))
	mustSymlink(t, "../..", filepath.Join(dir, "real/sub/up")) // to the root
	mustSymlink(t, ".", filepath.Join(dir, "real/dot"))        // to its own directory
	mustSymlink(t, "self", filepath.Join(dir, "self"))         // to itself
	mustSymlink(t, "nowhere", filepath.Join(dir, "dangling"))  // to nothing
	mustSymlink(t, "real/file/x", filepath.Join(dir, "through-file"))

	got := listAll(t, s, "")
	var keys []string
	for _, info := range got {
		keys = append(keys, info.Key)
	}
	// Symlinks to directories are reported, never entered.
	want := []string{
		"dangling",
		"dir-link/",
		"file-link",
		"real/dot/", "real/file", "real/sub/deep", "real/sub/up/",
		"self",
		"through-file",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("List = %q\nwant   %q", keys, want)
	}
	m := byKey(t, got)
	reasons := map[string]string{
		"dangling":     "dangling symlink",
		"through-file": "dangling symlink",
		"self":         "symlink loop",
		"dir-link/":    "symlink to a directory",
		"real/dot/":    "symlink to a directory",
		"real/sub/up/": "symlink to a directory",
	}
	for key, info := range m {
		if want := reasons[key]; !strings.HasPrefix(info.SkipReason, want) || (want == "") != (info.SkipReason == "") {
			t.Errorf("List entry %q SkipReason = %q, want %q", key, info.SkipReason, want)
		}
	}
	if fl := m["file-link"]; fl.Size != int64(len("content")) || fl.SHA256 != sha("content") {
		t.Errorf("a symlink to a file is listed as %+v; want the target's size and SHA-256", fl)
	}
	// ListDir reports them the same way.
	var dirEntries []string
	err := s.ListDir(ctx(t), "", func(e remote.DirEntry) error {
		if e.Info.SkipReason != "" {
			dirEntries = append(dirEntries, e.Info.Key)
		}
		return nil
	})
	if err != nil || !slices.Contains(dirEntries, "dir-link/") {
		t.Errorf("ListDir skipped entries = %q, %v; want dir-link/ among them", dirEntries, err)
	}
	// Nothing is read or written through a directory symlink either: the
	// store's objects are what its listing shows.
	if info, err := s.Stat(ctx(t), "dir-link/sub/deep"); err == nil {
		t.Errorf("Stat through a directory symlink = %+v; want a refusal", info)
	}
	if rc, err := s.Open(ctx(t), "dir-link/sub/deep", 0, -1); err == nil {
		rc.Close()
		t.Error("Open through a directory symlink succeeded; want a refusal")
	}
	if _, err := s.Put(ctx(t), "dir-link/sub/deep", strings.NewReader("over"), 4, remote.PutMeta{}); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Put through a directory symlink = %v; want a refusal naming the symlink", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "real", "sub", "deep")); err != nil || string(b) != "deep" {
		t.Errorf("real/sub/deep = %q, %v; a Put went through the symlink", b, err)
	}
	// Delete of a symlink removes the link, not the target.
	if err := s.Delete(ctx(t), "file-link"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx(t), "real/file"); err != nil {
		t.Errorf("Delete of a symlink removed its target: %v", err)
	}
	// Delete through a directory symlink is refused and removes nothing.
	for _, key := range []string{"dir-link/sub/deep", "real/sub/up/real/sub/deep", "real/dot/sub/deep"} {
		if err := s.Delete(ctx(t), key); err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("Delete(%s) through a directory symlink = %v; want a refusal naming the symlink", key, err)
		}
	}
	if _, err := s.Stat(ctx(t), "real/sub/deep"); err != nil {
		t.Errorf("real/sub/deep after deletes through symlinks: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "dir-link")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("dir-link after deleting through it: %v, %v", fi, err)
	}
}

// A directory replaced by a symlink between the listing and the delete
// (the race a delete pass runs) does not make Delete remove the target's
// file: every parent is opened without following symlinks.
func TestDeleteParentSwappedForSymlink(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	put(t, s, "a/f", "old", remote.PutMeta{})
	put(t, s, "keep/f", "precious", remote.PutMeta{})
	if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "keep", filepath.Join(dir, "a"))
	if err := s.Delete(ctx(t), "a/f"); err == nil {
		t.Error("Delete(a/f) with a now a symlink to keep/ succeeded; want a refusal")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep", "f")); err != nil || string(b) != "precious" {
		t.Errorf("keep/f = %q, %v; Delete went through the symlink", b, err)
	}
	// A plain file as a parent is simply nothing to delete.
	put(t, s, "plain", "x", remote.PutMeta{})
	if err := s.Delete(ctx(t), "plain/f"); err != nil {
		t.Errorf("Delete(plain/f) under a file = %v; want nil (absent)", err)
	}
}

// An entry of a readable directory that cannot be looked at is reported,
// not left out: a delete pass takes what a listing leaves out for gone.
func TestUnreadableDirectoryIsReported(t *testing.T) {
	if testenv.Unprivileged(t) {
		return
	}
	s := newStore(t)
	dir := s.Dir()
	put(t, s, "locked/inner", "x", remote.PutMeta{})
	put(t, s, "open/f", "y", remote.PutMeta{})
	if err := os.Chmod(filepath.Join(dir, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "locked"), 0o755) })
	m := byKey(t, listAll(t, s, ""))
	if _, ok := m["open/f"]; !ok {
		t.Errorf("List = %v; want open/f", m)
	}
	if e, ok := m["locked/"]; !ok || !strings.HasPrefix(e.SkipReason, "cannot read directory") {
		t.Errorf("List = %v; want locked/ with \"cannot read directory\"", m)
	}
}

func mustSymlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func TestSpecialFilesSkipped(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	put(t, s, "a-regular", "x", remote.PutMeta{})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A relative socket path keeps it under the length limit.
	t.Chdir(dir)
	ln, err := net.Listen("unix", "sock")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	m := byKey(t, listAll(t, s, ""))
	if len(m) != 3 || m["a-regular"].SkipReason != "" {
		t.Errorf("List = %v; want a-regular, fifo, sock", m)
	}
	if r := m["fifo"].SkipReason; !strings.Contains(r, "named pipe") {
		t.Errorf("fifo SkipReason = %q", r)
	}
	if r := m["sock"].SkipReason; r != "is a socket (not a regular file)" {
		t.Errorf("sock SkipReason = %q", r)
	}
	for _, key := range []string{"fifo", "sock"} {
		if _, err := s.Stat(ctx(t), key); !errors.Is(err, remote.ErrNotExist) {
			t.Errorf("Stat(%s) = %v; want ErrNotExist", key, err)
		}
		// Opening a FIFO must not wait for a writer.
		if rc, err := s.Open(ctx(t), key, 0, -1); !errors.Is(err, remote.ErrNotExist) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("Open(%s) = %v; want ErrNotExist", key, err)
		}
	}
	var dirEntries []string
	err = s.ListDir(ctx(t), "", func(e remote.DirEntry) error {
		dirEntries = append(dirEntries, e.Info.Key+"|"+e.Info.SkipReason)
		return nil
	})
	if err != nil || len(dirEntries) != 3 || !strings.HasPrefix(dirEntries[1], "fifo|is a named pipe") {
		t.Errorf("ListDir = %q, %v", dirEntries, err)
	}
}

func TestBadNamesSkipped(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	for _, name := range []string{"bad\xffname", "back\\slash", "baddir\xfe"} {
		p := filepath.Join(dir, name)
		var err error
		if strings.HasPrefix(name, "baddir") {
			err = os.MkdirAll(filepath.Join(p, "inside"), 0o755)
		} else {
			err = os.WriteFile(p, []byte("x"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, "good", "g", remote.PutMeta{})
	got := listAll(t, s, "")
	want := []remote.ObjectInfo{
		{Key: `back\slash`, SkipReason: "contains a backslash"},
		{Key: `"baddir\xfe/"`, SkipReason: "is not valid UTF-8"},
		{Key: `"bad\xffname"`, SkipReason: "is not valid UTF-8"},
		{Key: "good"},
	}
	if len(got) != len(want) {
		t.Fatalf("List = %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].SkipReason != want[i].SkipReason {
			t.Errorf("List[%d] = %q (%q), want %q (%q)", i, got[i].Key, got[i].SkipReason, want[i].Key, want[i].SkipReason)
		}
	}
}

func xattrsSupported(t *testing.T, dir string) bool {
	p := filepath.Join(dir, ".probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	return unix.Setxattr(p, "user.ferry.probe", []byte("1"), 0) == nil
}

func TestSHA256Attribute(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	if !xattrsSupported(t, dir) {
		t.Skip("the filesystem of t.TempDir() has no user xattrs; Stat reports no SHA-256 there")
	}
	mtime := time.Date(2022, 2, 2, 2, 2, 2, 2, time.UTC)
	put(t, s, "f", "original", remote.PutMeta{ModTime: mtime})
	stat := func(key string) remote.ObjectInfo {
		t.Helper()
		info, err := s.Stat(ctx(t), key)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	before := stat("f")
	if before.SHA256 != sha("original") || !before.ModTime.Equal(mtime) {
		t.Fatalf("Stat = %+v; want SHA-256 of the content and mtime %v", before, mtime)
	}
	p := filepath.Join(dir, "f")
	var attr [200]byte
	n, err := unix.Getxattr(p, "user.ferry.sha256", attr[:])
	if err != nil || !strings.HasPrefix(string(attr[:n]), sha("original")+" 8 ") {
		t.Errorf("xattr user.ferry.sha256 = %q, %v", attr[:n], err)
	}

	// Someone else rewrites the file (same size): the recorded hash is stale.
	if err := os.WriteFile(p, []byte("modified"), 0o644); err != nil {
		t.Fatal(err)
	}
	after := stat("f")
	if after.SHA256 != "" {
		t.Errorf("after an outside write Stat SHA256 = %q; want \"\" (stale)", after.SHA256)
	}
	if after.ETag == before.ETag {
		t.Error("ETag did not change after an outside write")
	}
	if l := listAll(t, s, ""); len(l) != 1 || l[0].SHA256 != "" {
		t.Errorf("List after an outside write = %+v; want no SHA-256", l)
	}
	// Only the mtime moves: stale as well.
	put(t, s, "g", "content", remote.PutMeta{})
	if err := os.Chtimes(filepath.Join(dir, "g"), time.Time{}, mtime); err != nil {
		t.Fatal(err)
	}
	if got := stat("g").SHA256; got != "" {
		t.Errorf("after an outside touch Stat SHA256 = %q; want \"\"", got)
	}
	// A file written by others has none; a malformed attribute is ignored.
	if err := os.WriteFile(filepath.Join(dir, "h"), []byte("h"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := stat("h").SHA256; got != "" {
		t.Errorf("a file without the attribute has SHA256 %q", got)
	}
	if err := unix.Setxattr(filepath.Join(dir, "h"), "user.ferry.sha256", []byte("garbage"), 0); err != nil {
		t.Fatal(err)
	}
	if got := stat("h").SHA256; got != "" {
		t.Errorf("a file with a malformed attribute has SHA256 %q", got)
	}
	// Copy keeps the hash and the mtime.
	put(t, s, "src", "copy me", remote.PutMeta{ModTime: mtime})
	if _, err := s.Copy(ctx(t), "src", "dst"); err != nil {
		t.Fatal(err)
	}
	if c := stat("dst"); c.SHA256 != sha("copy me") || !c.ModTime.Equal(mtime) {
		t.Errorf("Stat of a copy = %+v", c)
	}
}

func TestTempFilesNeverListed(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	put(t, s, "d/x", "x", remote.PutMeta{})
	for _, p := range []string{".ferry-tmp-abc", "d/.ferry-tmp-def"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if l := listAll(t, s, ""); len(l) != 1 || l[0].Key != "d/x" {
		t.Errorf("List = %+v; want only d/x", l)
	}
	var entries []string
	if err := s.ListDir(ctx(t), "d/", func(e remote.DirEntry) error {
		entries = append(entries, e.Info.Key)
		return nil
	}); err != nil || !slices.Equal(entries, []string{"d/x"}) {
		t.Errorf("ListDir(d/) = %q, %v", entries, err)
	}
	if _, err := s.Put(ctx(t), "d/.ferry-tmp-mine", strings.NewReader("x"), 1, remote.PutMeta{}); !errors.Is(err, remote.ErrInvalidKey) {
		t.Errorf("Put of a key named like a temporary file = %v; want ErrInvalidKey", err)
	}
	for _, p := range []string{".ferry-tmp-abc", "d/.ferry-tmp-def"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("a fresh temporary file (a Put in progress) was touched: %v", err)
		}
	}

	// A file that only looks like a temporary one is never removed, even
	// with an old mtime (its ctime is what counts, and it is not a name
	// Put makes).
	old := time.Now().Add(-local.StaleTemp - time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "d/.ferry-tmp-def"), old, old); err != nil {
		t.Fatal(err)
	}
	listAll(t, s, "")
	if _, err := os.Stat(filepath.Join(dir, "d/.ferry-tmp-def")); err != nil {
		t.Errorf("a user's file named like a temporary one was removed: %v", err)
	}
}

// Which names are Put's temporary files, and when one is stale (its ctime,
// which a test cannot set, so the rule is checked on a fresh file).
func TestTempFileRules(t *testing.T) {
	for name, want := range map[string]bool{
		".ferry-tmp-0123456789abcdef":  true,
		".ferry-tmp-0123456789ABCDEF":  false,
		".ferry-tmp-0123456789abcde":   false,
		".ferry-tmp-notes":             false,
		".ferry-tmp-0123456789abcdefg": false,
		"ferry-tmp-0123456789abcdef":   false,
	} {
		if got := local.IsTempName(name); got != want {
			t.Errorf("IsTempName(%q) = %v, want %v", name, got, want)
		}
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if local.StaleSince(fi, time.Hour) {
		t.Error("a file changed just now (ctime) is stale because of its old mtime")
	}
	if !local.StaleSince(fi, -time.Hour) {
		t.Error("a file is not stale for a negative age")
	}
}

func TestFailedPutLeavesNothingOnDisk(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	put(t, s, "keep/x", "x", remote.PutMeta{})
	before := onDisk(t, dir)
	bad := io.MultiReader(strings.NewReader("half"), iotest.ErrReader(errors.New("boom")))
	for _, key := range []string{"new/deep/key", "keep/new/key", "keep/x", "top"} {
		if _, err := s.Put(ctx(t), key, bad, 100, remote.PutMeta{}); err == nil {
			t.Fatalf("Put(%q) with a failing reader succeeded", key)
		}
		if _, err := s.Put(ctx(t), key, strings.NewReader("abc"), 3, remote.PutMeta{SHA256: sha("xyz")}); !errors.Is(err, remote.ErrChecksum) {
			t.Fatalf("Put(%q) with a wrong checksum = %v", key, err)
		}
	}
	if after := onDisk(t, dir); !slices.Equal(after, before) {
		t.Errorf("after failed puts the directory holds %q, before %q", after, before)
	}
}

func TestPutConflictsWithDirectoriesAndFiles(t *testing.T) {
	s := newStore(t)
	put(t, s, "dir/x", "x", remote.PutMeta{})
	if _, err := s.Put(ctx(t), "dir", strings.NewReader("y"), 1, remote.PutMeta{}); err == nil || !strings.Contains(err.Error(), "directory exists") {
		t.Errorf("Put onto a directory = %v; want a 'directory exists' error", err)
	}
	if _, err := s.Put(ctx(t), "dir/x/y", strings.NewReader("y"), 1, remote.PutMeta{}); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("Put below a file = %v; want a 'parent is a file' error", err)
	}
	if after := onDisk(t, s.Dir()); !slices.Equal(after, []string{"dir", "dir/x"}) {
		t.Errorf("after refused puts the directory holds %q", after)
	}
}

func TestDeleteRemovesEmptyParents(t *testing.T) {
	s := newStore(t)
	put(t, s, "a/b/c/d", "d", remote.PutMeta{})
	put(t, s, "a/keep", "k", remote.PutMeta{})
	if err := s.Delete(ctx(t), "a/b/c/d"); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, s.Dir()); !slices.Equal(got, []string{"a", "a/keep"}) {
		t.Errorf("after Delete the directory holds %q, want [a a/keep]", got)
	}
	if err := s.Delete(ctx(t), "a/keep"); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, s.Dir()); len(got) != 0 {
		t.Errorf("after deleting everything the directory holds %q", got)
	}
	if _, err := os.Stat(s.Dir()); err != nil {
		t.Errorf("the root itself was removed: %v", err)
	}
}

// TestConcurrentPutDelete races puts into a directory with deletes that
// remove it when it becomes empty: no Put may fail for it.
func TestConcurrentPutDelete(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			key := fmt.Sprintf("p/q/k%d", g)
			for i := range 40 {
				if _, err := s.Put(ctx(t), key, strings.NewReader("x"), 1, remote.PutMeta{}); err != nil {
					t.Errorf("Put(%s) #%d: %v", key, i, err)
					return
				}
				if err := s.Delete(ctx(t), key); err != nil {
					t.Errorf("Delete(%s) #%d: %v", key, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := onDisk(t, s.Dir()); len(got) != 0 {
		t.Errorf("after all deletes the directory holds %q", got)
	}
}

func TestPermissionDenied(t *testing.T) {
	if testenv.Unprivileged(t) {
		return
	}
	s := newStore(t)
	put(t, s, "locked", "x", remote.PutMeta{})
	if err := os.Chmod(filepath.Join(s.Dir(), "locked"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx(t), "locked", 0, -1); !errors.Is(err, remote.ErrPermission) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("Open of an unreadable file = %v; want ErrPermission naming the key", err)
	}
}

func FuzzParseSHAXattr(f *testing.F) {
	f.Add(sha("x") + " 1 1700000000000000000")
	f.Add(sha("") + " 0 -5")
	f.Add("garbage")
	f.Add(sha("x") + "  1 2")
	f.Add(strings.ToUpper(sha("x")) + " 1 2")
	f.Fuzz(func(t *testing.T, v string) {
		sum, size, mtime, ok := local.ParseSHAXattr(v)
		if !ok {
			return
		}
		if size < 0 || len(sum) != 64 || strings.ToLower(sum) != sum {
			t.Fatalf("ParseSHAXattr(%q) accepted %q %d", v, sum, size)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			t.Fatalf("ParseSHAXattr(%q) accepted non-hex %q", v, sum)
		}
		if back := local.FormatSHAXattr(sum, size, mtime); back != v {
			t.Fatalf("ParseSHAXattr(%q) then format = %q", v, back)
		}
	})
}

// A parent directory swapped back and forth with a symlink to the root
// while Puts run under it never lets a Put land on the root's file of the
// same name: the rename into place walks the parents without following
// symlinks.
func TestPutRacingParentSwap(t *testing.T) {
	s := newStore(t)
	dir := s.Dir()
	put(t, s, "b.txt", "precious", remote.PutMeta{})
	put(t, s, "a/keep", "x", remote.PutMeta{})
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		a, aside := filepath.Join(dir, "a"), filepath.Join(dir, "a.real")
		for {
			select {
			case <-stop:
				return
			default:
			}
			if os.Rename(a, aside) != nil {
				t.Error("move a aside failed")
				return
			}
			// A Put may make a new a/ meanwhile; then a stays a directory
			// for this round.
			if os.Symlink(".", a) == nil {
				n++
			}
			// Puts keep making a new a/ until the real one is back.
			back := false
			for range 1000 {
				os.RemoveAll(a)
				if os.Rename(aside, a) == nil {
					back = true
					break
				}
			}
			if !back {
				t.Error("put a back failed")
				return
			}
		}
	}()
	for i := range 2000 {
		s.Put(ctx(t), "a/b.txt", strings.NewReader(fmt.Sprint("new ", i)), -1, remote.PutMeta{})
	}
	close(stop)
	t.Logf("%d swaps", <-swapped)
	if b, err := os.ReadFile(filepath.Join(dir, "b.txt")); err != nil || string(b) != "precious" {
		t.Fatalf("b.txt = %q, %v: a Put under a/ landed on it through the symlink", b, err)
	}
}
