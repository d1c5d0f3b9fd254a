package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// entry is one name in a directory being listed.
type entry struct {
	name    string
	dir     bool        // a directory, or a symlink to one
	symlink bool        // fi is the symlink target's
	fi      fs.FileInfo // what name is (for a symlink: what it points to)
	reason  string      // why the entry cannot be copied, or ""
}

// sortKey orders entries so that the walk emits full keys in byte-wise
// order: a directory's children all start with "name/".
func (e *entry) sortKey() string {
	if e.dir {
		return e.name + "/"
	}
	return e.name
}

func joinPath(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// prefixDir is the directory, relative to the root, a listing prefix names.
func prefixDir(prefix string) string {
	if prefix == "" {
		return "."
	}
	return strings.TrimSuffix(prefix, "/")
}

// readDir reads and classifies the entries of the directory d, whose path
// relative to the store's root is dirPath, sorted for the walk. It skips
// Put's temporary files.
func (s *Store) readDir(d *os.Root, dirPath string) ([]entry, error) {
	f, err := d.Open(".")
	if err != nil {
		return nil, err
	}
	// In a directory opened through a Root, ReadDir has already done an
	// lstat of every entry, relative to the directory.
	des, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	entries := make([]entry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we were reading
		}
		if err != nil {
			// There is something by this name that cannot be looked at: it
			// is present, and must not be taken for absent.
			entries = append(entries, entry{name: name, fi: unknownInfo{name}, reason: "cannot stat: " + errText(err)})
			continue
		}
		if strings.HasPrefix(name, tempPrefix) && fi.Mode().IsRegular() {
			// A Put in progress, or one a crash interrupted: that one is
			// removed once its inode has not changed for staleTemp (ctime:
			// a Put sets the file's mtime to the source's before the
			// rename). Only names Put makes are touched, never a file of
			// someone else's that happens to start the same.
			if isTempName(name) && staleSince(fi, staleTemp) {
				d.Remove(name) // best effort: a read-only source keeps it
			}
			continue
		}
		e := entry{name: name, fi: fi}
		mode := fi.Mode()
		if mode&fs.ModeSymlink != 0 {
			e.symlink = true
			tfi, err := s.root.Stat(joinPath(dirPath, name))
			if err != nil {
				e.reason = s.symlinkReason(joinPath(dirPath, name), err)
				entries = append(entries, e)
				continue
			}
			e.fi, mode = tfi, tfi.Mode()
			if mode.IsDir() {
				// Never entered: a listing through a symlink would report
				// the same files twice, and a delete pass working from it
				// would remove the target's files through the link.
				e.reason = "symlink to a directory; not followed (copy the directory itself, or make the symlink's target the source)"
			}
		}
		switch {
		case mode.IsDir():
			e.dir = true
		case !mode.IsRegular():
			e.reason = specialReason(mode)
		}
		// The name's own problems come first: such a file is never copied,
		// whatever it is.
		var ke *remote.KeyError
		if errors.As(remote.ValidateKey(name), &ke) {
			e.reason = ke.Reason
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.sortKey(), b.sortKey()) })
	return entries, nil
}

// symlinkReason says why the symlink p (relative to the root) cannot be
// followed, given the error from following it.
func (s *Store) symlinkReason(p string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return "dangling symlink (its target does not exist)"
	case errors.Is(err, syscall.ELOOP):
		return "symlink loop"
	case errors.Is(err, fs.ErrPermission):
		return "symlink target cannot be reached (permission denied)"
	}
	if target, rerr := s.root.Readlink(p); rerr == nil {
		if path.IsAbs(target) {
			return "symlink has an absolute target (" + target + "); only relative symlinks that stay inside the store's root are followed"
		}
		if j := path.Join(path.Dir(p), target); j == ".." || strings.HasPrefix(j, "../") {
			return "symlink points outside the store's root"
		}
	}
	return "symlink cannot be followed inside the store's root: " + err.Error()
}

// errText is err without the path a *fs.PathError adds.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// unknownInfo stands for the FileInfo of an entry that could not be
// looked at: a zero file.
type unknownInfo struct{ name string }

func (u unknownInfo) Name() string     { return u.name }
func (unknownInfo) Size() int64        { return 0 }
func (unknownInfo) Mode() fs.FileMode  { return fs.ModeIrregular }
func (unknownInfo) ModTime() time.Time { return time.Time{} }
func (unknownInfo) IsDir() bool        { return false }
func (unknownInfo) Sys() any           { return nil }

// skipInfo is the ObjectInfo of an entry that cannot be copied.
func (e *entry) skipInfo(key string) remote.ObjectInfo {
	if e.dir {
		key += "/"
	}
	info := remote.ObjectInfo{Key: remote.PrintableKey(key), SkipReason: e.reason, ModTime: e.fi.ModTime()}
	if e.fi.Mode().IsRegular() {
		info.Size = e.fi.Size()
	}
	return info
}

// entryInfo describes a regular-file entry of the directory d (dirPath).
func (s *Store) entryInfo(d *os.Root, dirPath string, e *entry, key string, withSHA bool) remote.ObjectInfo {
	if !withSHA {
		return fileInfo(key, e.fi, "") // e.fi is the lstat of the file, or the stat of a symlink's target
	}
	if e.symlink {
		// The target may be anywhere in the root, outside d.
		return describe(s.root, joinPath(dirPath, e.name), key, e.fi)
	}
	return describe(d, e.name, key, e.fi)
}

// List implements remote.Store. It walks the tree depth first, one sorted
// directory at a time, so that keys come in byte-wise order and memory
// holds only the directories on the current path. A symlink to a file is
// followed when it stays inside the root; a symlink to a directory is never
// entered but reported with a SkipReason (its key ending in "/"), as is a
// directory already on the current path (a bind mount loop).
func (s *Store) List(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	return s.list(ctx, prefix, true, fn)
}

// ListStat implements remote.StatLister: List without opening each file
// for its SHA-256 attribute, the stat of the directory listing alone.
func (s *Store) ListStat(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	return s.list(ctx, prefix, false, fn)
}

// ListPlain implements remote.PlainLister with ListStat: the local store
// records mtimes, so the plain listing loses nothing else.
func (s *Store) ListPlain(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	return s.list(ctx, prefix, false, fn)
}

func (s *Store) list(ctx context.Context, prefix string, withSHA bool, fn func(remote.ObjectInfo) error) error {
	return s.listing(ctx, prefix, func(d *os.Root, dirPath string, entries []entry) error {
		w := &walker{s: s, ctx: ctx, fn: fn, prefix: prefix, withSHA: withSHA, ancestors: s.ancestors(dirPath)}
		return w.walk(d, dirPath, prefix, entries)
	})
}

// listing opens the directory a listing prefix names and calls fn with it,
// its path relative to the root and its sorted entries; nothing when there
// is no such directory.
func (s *Store) listing(ctx context.Context, prefix string, fn func(d *os.Root, dirPath string, entries []entry) error) error {
	if err := remote.CheckPrefix(ctx, "list", prefix); err != nil {
		return err
	}
	dirPath := prefixDir(prefix)
	d, err := s.openPrefix(dirPath, prefix)
	if d == nil || err != nil {
		return err
	}
	defer d.Close()
	entries, err := s.readDir(d, dirPath)
	if err != nil {
		return mapErr("list", prefix, err)
	}
	return fn(d, dirPath, entries)
}

// openPrefix opens the directory a listing prefix names. It returns nil
// and no error when there is no such directory (nothing to list).
func (s *Store) openPrefix(dirPath, prefix string) (*os.Root, error) {
	fi, err := s.root.Stat(dirPath)
	if err == nil && !fi.IsDir() {
		return nil, nil // a file: nothing is under it
	}
	var d *os.Root
	if err == nil {
		d, err = s.root.OpenRoot(dirPath)
	}
	if err != nil {
		if err := mapErr("list", prefix, err); !errors.Is(err, remote.ErrNotExist) {
			return nil, err
		}
		return nil, nil
	}
	return d, nil
}

// ancestors returns the FileInfos of the directories from the root down to
// dirPath, the path a walk starting at dirPath is already on.
func (s *Store) ancestors(dirPath string) []fs.FileInfo {
	var out []fs.FileInfo
	add := func(p string) {
		if fi, err := s.root.Stat(p); err == nil {
			out = append(out, fi)
		}
	}
	add(".")
	if dirPath == "." {
		return out
	}
	for i := range len(dirPath) + 1 {
		if i == len(dirPath) || dirPath[i] == '/' {
			add(dirPath[:i])
		}
	}
	return out
}

type walker struct {
	s         *Store
	ctx       context.Context
	fn        func(remote.ObjectInfo) error
	prefix    string
	withSHA   bool          // read each file's SHA-256 attribute
	ancestors []fs.FileInfo // the directories on the current path
}

func (w *walker) onPath(fi fs.FileInfo) bool {
	for _, a := range w.ancestors {
		if os.SameFile(a, fi) {
			return true
		}
	}
	return false
}

// walk emits the sorted entries of directory d (at dirPath, keys starting
// with keyPrefix) and recurses into sub-directories.
func (w *walker) walk(d *os.Root, dirPath, keyPrefix string, entries []entry) error {
	for i := range entries {
		e := &entries[i]
		if err := w.ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", w.prefix, err)
		}
		key := keyPrefix + e.name
		switch {
		case e.reason != "":
			if err := w.fn(e.skipInfo(key)); err != nil {
				return err
			}
		case !e.dir:
			if err := w.fn(w.s.entryInfo(d, dirPath, e, key, w.withSHA)); err != nil {
				return err
			}
		default:
			if err := w.walkDir(d, dirPath, e, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkDir enters the sub-directory e of d, or reports why it cannot.
func (w *walker) walkDir(d *os.Root, dirPath string, e *entry, key string) error {
	if w.onPath(e.fi) {
		e.reason = "directory loop (the directory is mounted inside itself)"
		return w.fn(e.skipInfo(key))
	}
	subPath := joinPath(dirPath, e.name)
	sub, err := d.OpenRoot(e.name)
	var entries []entry
	if err == nil {
		defer sub.Close()
		entries, err = w.s.readDir(sub, subPath)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we were listing
		}
		e.reason = "cannot read directory: " + errText(err)
		return w.fn(e.skipInfo(key))
	}
	w.ancestors = append(w.ancestors, e.fi)
	defer func() { w.ancestors = w.ancestors[:len(w.ancestors)-1] }()
	return w.walk(sub, subPath, key+"/", entries)
}

// ListDir implements remote.DirLister: the entries directly under prefix,
// sub-directories (and symlinks to directories) as Dir entries with keys
// ending in "/", in byte-wise key order.
func (s *Store) ListDir(ctx context.Context, prefix string, fn func(remote.DirEntry) error) error {
	return s.listing(ctx, prefix, func(d *os.Root, dirPath string, entries []entry) error {
		for i := range entries {
			e := &entries[i]
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list %s: %w", prefix, err)
			}
			key := prefix + e.name
			var de remote.DirEntry
			switch {
			case e.reason != "":
				de = remote.DirEntry{Dir: e.dir, Info: e.skipInfo(key)}
			case e.dir:
				de = remote.DirEntry{Dir: true, Info: remote.ObjectInfo{Key: key + "/", ModTime: e.fi.ModTime()}}
			default:
				de = remote.DirEntry{Info: s.entryInfo(d, dirPath, e, key, true)}
			}
			if err := fn(de); err != nil {
				return err
			}
		}
		return nil
	})
}
