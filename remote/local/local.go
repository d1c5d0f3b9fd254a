package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// tempPrefix starts the name of every temporary file a Put writes. List
// never reports such names and Put refuses keys that use it.
const tempPrefix = ".ferry-tmp-"

// staleTemp is how long a temporary file's inode must have been left
// unchanged (ctime) before a listing removes it as the leftover of a Put
// that a crash (or a SIGKILL) interrupted. A Put in progress writes to its
// file all along.
const staleTemp = 24 * time.Hour

// isTempName reports whether name is one Put gives its temporary files:
// tempPrefix and 16 lower-case hex digits.
func isTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok || len(rest) != 16 {
		return false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Store is a remote.Store over a local directory. It is safe for
// concurrent use. Close releases the directory.
type Store struct {
	root *os.Root
	dir  string
}

var (
	_ remote.Store       = (*Store)(nil)
	_ remote.Copier      = (*Store)(nil)
	_ remote.DirLister   = (*Store)(nil)
	_ remote.Placer      = (*Store)(nil)
	_ remote.NameChecker = (*Store)(nil)
	_ remote.KeyPlacer   = (*Store)(nil)
)

// New opens the existing directory dir as a store. It fails with an error
// wrapping remote.ErrNotExist if dir does not exist, and with a clear
// error if it is not a directory.
func New(dir string) (*Store, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("directory %s does not exist (create it first, e.g. mkdir -p %s): %w", dir, dir, errNoDir)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("local store %s: %w: %w", dir, remote.ErrPermission, err)
	case err != nil:
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("local store %s: not a directory (a store's root must be a directory)", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("local store %s: %w: %w", dir, remote.ErrPermission, err)
		}
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	return &Store{root: root, dir: dir}, nil
}

// Dir returns the directory the store was opened with.
func (s *Store) Dir() string { return s.dir }

// CheckName implements remote.NameChecker: a name starting with
// ".ferry-tmp-" is the store's own, for temporary files.
func (s *Store) CheckName(key string) error {
	if strings.HasPrefix(path.Base(key), tempPrefix) {
		return &remote.KeyError{Key: key, Reason: "its name starts with " + tempPrefix + ", which local stores reserve for temporary files"}
	}
	return nil
}

// Place implements remote.Placer: the directory with its symlinks resolved
// as they are now. The store works on the directory it opened, so when the
// path names another one now (it was moved, or a symlink on the way was
// changed) Place fails rather than describe a directory the store does not
// write to.
func (s *Store) Place() (remote.Place, error) {
	p, err := remote.LocalPlace(s.dir)
	if err != nil {
		return remote.Place{}, err
	}
	open, err := s.root.Stat(".")
	if err != nil {
		return remote.Place{}, fmt.Errorf("local store %s: %w", s.dir, err)
	}
	if now, err := os.Stat(p.Path); err != nil || !os.SameFile(open, now) {
		return remote.Place{}, fmt.Errorf("local store %s: the path no longer names the directory the store opened (it was moved, or a symlink on the way changed); open it again", s.dir)
	}
	return p, nil
}

// PlaceOf implements remote.KeyPlacer: the directory holding key, resolved
// as it is now.
func (s *Store) PlaceOf(key string) (remote.Place, error) {
	if err := remote.ValidateKey(key); err != nil {
		return remote.Place{}, err
	}
	return remote.LocalPlace(filepath.Join(s.dir, filepath.FromSlash(path.Dir(key))))
}

// errNoDir wraps remote.ErrNotExist with a shorter message, for a store
// whose root directory is missing.
var errNoDir = fmt.Errorf("missing directory: %w", remote.ErrNotExist)

// IsLocal reports true: the files are on this machine (remote.Local).
func (s *Store) IsLocal() bool { return true }

// Close releases the store's directory. The store must not be used after.
func (s *Store) Close() error { return s.root.Close() }

// Stat implements remote.Store. A directory is not an object: its Stat is
// ErrNotExist.
func (s *Store) Stat(ctx context.Context, key string) (remote.ObjectInfo, error) {
	if err := remote.CheckKey(ctx, "stat", key); err != nil {
		return remote.ObjectInfo{}, err
	}
	if err := s.checkParents("stat", key); err != nil {
		return remote.ObjectInfo{}, err
	}
	fi, err := s.root.Stat(key)
	if err != nil {
		return remote.ObjectInfo{}, mapErr("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return remote.ObjectInfo{}, notObject("stat", key, fi.Mode())
	}
	return describe(s.root, key, key, fi), nil
}

// describe returns the ObjectInfo of the regular file name (opened through
// r) whose key is key and whose stat is fi. It opens the file to read the
// SHA-256 attribute; if it cannot, the SHA-256 is unknown.
func describe(r *os.Root, name, key string, fi fs.FileInfo) remote.ObjectInfo {
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		defer f.Close()
		if ffi, err := f.Stat(); err == nil && ffi.Mode().IsRegular() {
			return fileInfo(key, ffi, storedSHA(f, ffi))
		}
	}
	return fileInfo(key, fi, "")
}

func fileInfo(key string, fi fs.FileInfo, sum string) remote.ObjectInfo {
	return remote.ObjectInfo{
		Key:     key,
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		ETag:    etag(fi),
		SHA256:  sum,
	}
}

// storedSHA returns the SHA-256 recorded on f if it was recorded for f's
// current size and mtime, or "".
func storedSHA(f *os.File, fi fs.FileInfo) string {
	v, ok := getXattr(f)
	if !ok {
		return ""
	}
	sum, size, mtime, ok := parseSHAXattr(v)
	if !ok || size != fi.Size() || mtime != fi.ModTime().UnixNano() {
		return ""
	}
	return sum
}

// Open implements remote.Store.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := remote.CheckKey(ctx, "open", key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("open %s: negative offset %d", key, offset)
	}
	f, _, err := s.openObject("open", key)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: seek to %d: %w", key, offset, err)
		}
	}
	if length < 0 {
		return f, nil
	}
	return &limitedFile{Reader: io.LimitReader(f, length), f: f}, nil
}

// openObject opens the regular file at key for reading.
func (s *Store) openObject(op, key string) (*os.File, fs.FileInfo, error) {
	if err := s.checkParents(op, key); err != nil {
		return nil, nil, err
	}
	// O_NONBLOCK: opening a named pipe must not wait for a writer; it has
	// no effect on regular files.
	f, err := s.root.OpenFile(key, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		// Opening a socket fails (ENXIO); say what it is instead.
		if fi, serr := s.root.Stat(key); serr == nil && !fi.Mode().IsRegular() {
			return nil, nil, notObject(op, key, fi.Mode())
		}
		return nil, nil, mapErr(op, key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, mapErr(op, key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, notObject(op, key, fi.Mode())
	}
	return f, fi, nil
}

type limitedFile struct {
	io.Reader
	f *os.File
}

func (l *limitedFile) Close() error { return l.f.Close() }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Put implements remote.Store: temporary file in the key's directory,
// hashed while written, checked against meta.SHA256, mtime set, SHA-256
// attribute recorded, fsynced, renamed into place, directory fsynced.
// Missing parent directories are created; on failure the temporary file
// and the directories this Put created are removed.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, meta remote.PutMeta) (remote.ObjectInfo, error) {
	if err := remote.CheckKey(ctx, "put", key); err != nil {
		return remote.ObjectInfo{}, err
	}
	if err := s.CheckName(key); err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("put: %w", err)
	}
	if err := s.checkParents("put", key); err != nil {
		return remote.ObjectInfo{}, err
	}
	dir := path.Dir(key)
	f, tmp, created, err := s.createTemp(dir)
	if err != nil {
		s.removeCreatedDirs(dir, created)
		return remote.ObjectInfo{}, mapPutErr(key, err)
	}
	info, err := s.fillAndRename(ctx, f, tmp, key, r, size, meta)
	if err != nil {
		f.Close()
		if rmErr := s.root.Remove(tmp); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = fmt.Errorf("%w (and removing the temporary file %s failed: %v)", err, tmp, rmErr)
		}
		s.removeCreatedDirs(dir, created)
		return remote.ObjectInfo{}, err
	}
	return info, nil
}

// createTemp creates a new temporary file in dir, creating dir and its
// missing parents if needed. created is the top-most directory it created,
// or "".
func (s *Store) createTemp(dir string) (f *os.File, name, created string, err error) {
	for attempt := 0; ; attempt++ {
		name = path.Join(dir, fmt.Sprintf("%s%016x", tempPrefix, rand.Uint64()))
		f, err = s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		switch {
		case err == nil:
			return f, name, created, nil
		case errors.Is(err, fs.ErrExist) && attempt < 10:
			continue // name collision, try another
		case errors.Is(err, fs.ErrNotExist) && dir != "." && attempt < 5:
			// The directory is missing, or a concurrent Delete removed the
			// one we created before our file was in it: (re)create it.
			c, err := s.mkdirs(dir)
			if created == "" {
				created = c
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, "", created, err
			}
			// ENOENT: a concurrent Delete removed a parent as it became
			// empty, between two of mkdirs' steps; the next attempt
			// creates it again.
		default:
			return nil, "", created, err
		}
	}
}

// mkdirs creates dir and its missing parents and returns the top-most one
// it created.
func (s *Store) mkdirs(dir string) (created string, err error) {
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		err := s.root.Mkdir(p, 0o777)
		switch {
		case err == nil:
			if created == "" {
				created = p
			}
		case errors.Is(err, fs.ErrExist):
		default:
			return created, err
		}
	}
	return created, nil
}

// removeCreatedDirs removes, after a failed Put, the directories it
// created (dir up to created) that are still empty.
func (s *Store) removeCreatedDirs(dir, created string) {
	if created != "" {
		s.removeEmptyParents(dir, created)
	}
}

// removeEmptyParents removes dir and its parents while they are empty, up
// to and including stop ("" means up to, not including, the root). It never
// removes a symlink or a non-empty directory.
func (s *Store) removeEmptyParents(dir, stop string) {
	for d := dir; d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if rmdir(s.root, d) != nil || d == stop {
			return
		}
	}
}

func (s *Store) fillAndRename(ctx context.Context, f *os.File, tmp, key string, r io.Reader, size int64, meta remote.PutMeta) (remote.ObjectInfo, error) {
	h := sha256.New()
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return remote.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
		}
		limit := int64(len(buf))
		if size >= 0 {
			limit = min(limit, size+1-n) // one byte more reveals a long reader
		}
		m, rerr := r.Read(buf[:limit])
		if m > 0 {
			h.Write(buf[:m])
			if _, err := f.Write(buf[:m]); err != nil {
				return remote.ObjectInfo{}, mapPutErr(key, err)
			}
			n += int64(m)
		}
		if size >= 0 && n > size {
			return remote.ObjectInfo{}, fmt.Errorf("put %s: the reader gave more than the announced %d bytes", key, size)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return remote.ObjectInfo{}, fmt.Errorf("put %s: reading content: %w", key, rerr)
		}
	}
	if size >= 0 && n != size {
		return remote.ObjectInfo{}, fmt.Errorf("put %s: the reader gave %d bytes, the caller announced %d", key, n, size)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if meta.SHA256 != "" && !strings.EqualFold(meta.SHA256, sum) {
		return remote.ObjectInfo{}, fmt.Errorf("put %s: %w: received content hashes to %s, the caller gave %s",
			key, remote.ErrChecksum, sum, meta.SHA256)
	}
	if !meta.ModTime.IsZero() {
		if err := s.root.Chtimes(tmp, time.Time{}, meta.ModTime); err != nil {
			return remote.ObjectInfo{}, mapPutErr(key, err)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return remote.ObjectInfo{}, mapPutErr(key, err)
	}
	// A filesystem without user xattrs just leaves the SHA-256 unknown.
	_ = setXattr(f, formatSHAXattr(sum, fi.Size(), fi.ModTime().UnixNano()))
	if err := f.Sync(); err != nil {
		return remote.ObjectInfo{}, mapPutErr(key, err)
	}
	if err := ctx.Err(); err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	// Into place without following a symlink: a parent directory swapped
	// for one since the temporary file was made cannot carry the rename
	// elsewhere (the temporary file is not there, or the walk refuses).
	if err := renameNoFollow(s.root, tmp, key); err != nil {
		if errors.Is(err, errSymlinkParent) {
			return remote.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
		}
		if fi, serr := s.root.Lstat(key); serr == nil && fi.IsDir() {
			return remote.ObjectInfo{}, fmt.Errorf("put %s: a directory exists at this key", key)
		}
		return remote.ObjectInfo{}, mapPutErr(key, err)
	}
	// The rename changed the file's ctime, which the ETag includes.
	fi, err = f.Stat()
	cerr := f.Close()
	if err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(s.root, path.Dir(key))
	}
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("put %s: after writing the object: %w", key, err)
	}
	return fileInfo(key, fi, sum), nil
}

func syncDir(r *os.Root, dir string) error {
	d, err := r.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete implements remote.Store. It removes the file (a symlink itself,
// not its target) and then the parent directories that became empty, up
// to but not including the root. A directory is not an object: deleting
// one does nothing. It never goes through a symlink: when a parent
// directory of key is a symlink (which List reports as skipped, never
// entering it), nothing is removed and the error wraps errSymlinkParent.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := remote.CheckKey(ctx, "delete", key); err != nil {
		return err
	}
	if err := s.checkParents("delete", key); err != nil {
		return err
	}
	fi, err := s.root.Lstat(key)
	if err != nil {
		if err := mapErr("delete", key, err); !errors.Is(err, remote.ErrNotExist) {
			return err
		}
		return nil
	}
	if fi.IsDir() {
		return nil
	}
	if err := removeNoFollow(s.root, key); err != nil {
		if errors.Is(err, errSymlinkParent) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		if err := mapErr("delete", key, err); !errors.Is(err, remote.ErrNotExist) {
			return err
		}
	}
	s.removeEmptyParents(path.Dir(key), "")
	return nil
}

// checkParents refuses key when a directory on its way is a symlink,
// with an error wrapping errSymlinkParent. The store's objects are the
// files reached without going through a symlinked directory (List never
// enters one), so nothing is read, written or deleted through a link: a
// sync into a destination holding "loop -> ." must not write loop/a.txt
// over a.txt. A parent missing or not a directory is left to the
// operation (Put creates it; the others find nothing). This checks the
// directories as they are now; Delete also opens them without following
// symlinks, so that a parent replaced meanwhile cannot redirect it.
func (s *Store) checkParents(op, key string) error {
	for i := 0; i < len(key); i++ {
		if key[i] != '/' {
			continue
		}
		dir := key[:i]
		fi, err := s.root.Lstat(dir)
		switch {
		case err != nil:
			if err := mapErr(op, key, err); !errors.Is(err, remote.ErrNotExist) {
				return err
			}
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s %s: %s: %w", op, key, dir, errSymlinkParent)
		case !fi.IsDir():
			return nil
		}
	}
	return nil
}

// errSymlinkParent: a parent directory of the key is a symlink.
var errSymlinkParent = remote.ErrSymlinkParent

// parentErr describes the failure to open the parent directory dir
// (relative to r) on the way to a file without following symlinks.
func parentErr(r *os.Root, dir string, err error) error {
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		if fi, lerr := r.Lstat(dir); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s: %w", dir, errSymlinkParent)
		}
	}
	return err
}

// Copy implements remote.Copier: it copies the file through the same
// atomic path as Put and keeps the source's mtime and known SHA-256 (which
// the copy is verified against).
func (s *Store) Copy(ctx context.Context, srcKey, dstKey string) (remote.ObjectInfo, error) {
	if err := remote.CheckKey(ctx, "copy", srcKey); err != nil {
		return remote.ObjectInfo{}, err
	}
	if err := remote.ValidateKey(dstKey); err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("copy %s: %w", srcKey, err)
	}
	f, fi, err := s.openObject("copy", srcKey)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	defer f.Close()
	meta := remote.PutMeta{ModTime: fi.ModTime(), SHA256: storedSHA(f, fi)}
	info, err := s.Put(ctx, dstKey, f, fi.Size(), meta)
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, err)
	}
	return info, nil
}

// mapErr translates an os error about key into the remote sentinels.
func mapErr(op, key string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s %s: %w", op, key, remote.ErrNotExist)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s %s: %w: %w", op, key, remote.ErrPermission, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// mapPutErr is mapErr for writes, where a missing directory is not a
// missing object.
func mapPutErr(key string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("put %s: %w: %w", key, remote.ErrPermission, err)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("put %s: a parent of the key is a file, not a directory: %w", key, err)
	}
	return fmt.Errorf("put %s: %w", key, err)
}

// notObject is the error for a key that names something other than a
// regular file.
func notObject(op, key string, mode fs.FileMode) error {
	if mode.IsDir() {
		return fmt.Errorf("%s %s: %w (it is a directory)", op, key, remote.ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w (it %s)", op, key, remote.ErrNotExist, specialReason(mode))
}

// specialReason says why a file of this mode is not an object.
func specialReason(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSocket != 0:
		return "is a socket (not a regular file)"
	case mode&fs.ModeNamedPipe != 0:
		return "is a named pipe (not a regular file)"
	case mode&fs.ModeCharDevice != 0:
		return "is a character device (not a regular file)"
	case mode&fs.ModeDevice != 0:
		return "is a block device (not a regular file)"
	}
	return fmt.Sprintf("is not a regular file (mode %v)", mode)
}

// formatSHAXattr is the value of the user.ferry.sha256 attribute: the hex
// SHA-256, and the size and mtime (Unix nanoseconds) it was computed for.
func formatSHAXattr(sum string, size, mtimeNanos int64) string {
	return sum + " " + strconv.FormatInt(size, 10) + " " + strconv.FormatInt(mtimeNanos, 10)
}

// parseSHAXattr parses a formatSHAXattr value, strictly: numbers in
// canonical decimal, lower-case hex. Anything else — written by another
// program or version — is not ok.
func parseSHAXattr(v string) (sum string, size, mtimeNanos int64, ok bool) {
	parts := strings.Split(v, " ")
	if len(parts) != 3 || len(parts[0]) != 64 {
		return "", 0, 0, false
	}
	for _, c := range []byte(parts[0]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", 0, 0, false
		}
	}
	size, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != parts[1] {
		return "", 0, 0, false
	}
	mtimeNanos, err = strconv.ParseInt(parts[2], 10, 64)
	if err != nil || strconv.FormatInt(mtimeNanos, 10) != parts[2] {
		return "", 0, 0, false
	}
	return parts[0], size, mtimeNanos, true
}

func hexUint64(v uint64) string {
	s := strconv.FormatUint(v, 16)
	return strings.Repeat("0", 16-len(s)) + s
}
