package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/remote"
)

// maxKeyLen is the longest key S3 accepts (1,024 bytes); longer paths get
// ENAMETOOLONG before anything is written.
const maxKeyLen = 1024

// Permission bits shown for the remote view. Object storage keeps none;
// chmod to anything else fails with EPERM.
const (
	fileMode   = 0o644
	dirMode    = 0o755
	roFileMode = 0o444
	roDirMode  = 0o555
)

// remoteFS is the state shared by the nodes of one remote view.
type remoteFS struct {
	store    remote.Store
	cache    *listCache
	bg       context.Context // uploads and listing fetches
	log      *slog.Logger
	readOnly bool
	spoolDir string
	uid, gid uint32
	mounted  time.Time
	ttl      time.Duration

	pmu sync.Mutex
	// pending holds names that exist in the mount but not (yet) in the
	// store: files being written, directories made with mkdir or emptied
	// through the mount. dir key → name → is a directory.
	pending map[string]map[string]bool

	uploads sync.WaitGroup // uploads started for a Flush that may return early
}

// node is what every node of the remote view shares.
type node struct {
	fs.Inode
	fsys *remoteFS
}

var _ = (fs.NodeStatfser)((*node)(nil))

// Statfs reports a large, mostly free file system: object storage has no
// fixed size, and some programs refuse to write where df shows no space.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const blocks = 1 << 40 // 4 PiB in 4 KiB blocks
	out.Bsize, out.Frsize = 4096, 4096
	out.Blocks, out.Bfree, out.Bavail = blocks, blocks, blocks
	out.Files, out.Ffree = 1<<40, 1<<40
	out.NameLen = maxNameLen
	return 0
}

// errno maps err for the kernel, logging what the program will only see
// as a number.
func (f *remoteFS) errno(op, key string, err error) syscall.Errno {
	e := toErrno(err)
	switch e {
	case syscall.ENOENT, syscall.EINTR:
		f.log.Debug("fuse "+op, slog.String("key", remote.PrintableKey(key)), slog.Any("err", err))
	default:
		f.log.Warn("fuse "+op, slog.String("key", remote.PrintableKey(key)), slog.Any("err", err),
			slog.String("errno", e.Error()))
	}
	return e
}

// splitKey returns the directory key ("" or ending in "/") and the name of
// a file key.
func splitKey(key string) (dir, name string) {
	i := strings.LastIndexByte(key, '/')
	return key[:i+1], key[i+1:]
}

func (f *remoteFS) addPending(dir, name string, isDir bool) {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	m := f.pending[dir]
	if m == nil {
		m = make(map[string]bool)
		f.pending[dir] = m
	}
	m[name] = isDir
}

func (f *remoteFS) removePending(dir, name string) {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	if m := f.pending[dir]; m != nil {
		delete(m, name)
		if len(m) == 0 {
			delete(f.pending, dir)
		}
	}
}

func (f *remoteFS) pendingEntry(dir, name string) (isDir, ok bool) {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	isDir, ok = f.pending[dir][name]
	return isDir, ok
}

func (f *remoteFS) hasPendingChildren(dir string) bool {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	return len(f.pending[dir]) > 0
}

// keepDir keeps the directory dir (a key ending in "/") in the mount after
// its last object went away through the mount: object storage would drop
// it, but a program that emptied a directory expects it to stay.
func (f *remoteFS) keepDir(dir string) {
	if dir == "" {
		return
	}
	parent, name := splitKey(strings.TrimSuffix(dir, "/"))
	f.addPending(parent, name, true)
}

// lookup finds name in the directory dir.
func (f *remoteFS) lookup(ctx context.Context, dir, name string) (entry, bool, error) {
	if isDir, ok := f.pendingEntry(dir, name); ok {
		return entry{Name: name, Dir: isDir, pending: true}, true, nil
	}
	l, err := f.cache.get(ctx, dir)
	if err != nil {
		return entry{}, false, err
	}
	e, ok := l.find(name)
	return e, ok, nil
}

// readDir returns the entries of dir: its listing and its pending names,
// sorted by name.
func (f *remoteFS) readDir(ctx context.Context, dir string) ([]fuse.DirEntry, error) {
	l, err := f.cache.get(ctx, dir)
	if err != nil {
		return nil, err
	}
	f.pmu.Lock()
	var extra []entry
	for name, isDir := range f.pending[dir] {
		if _, ok := l.find(name); !ok {
			extra = append(extra, entry{Name: name, Dir: isDir})
		}
	}
	f.pmu.Unlock()
	if len(extra) > 0 {
		for _, e := range extra {
			l = l.with(e.Name, &e)
		}
	}
	out := make([]fuse.DirEntry, len(l.entries))
	for i, e := range l.entries {
		out[i] = fuse.DirEntry{Name: e.Name, Mode: syscall.S_IFREG}
		if e.Dir {
			out[i].Mode = syscall.S_IFDIR
		}
	}
	return out, nil
}

// dirEmpty reports whether nothing is under the directory key dir: no
// pending name and no object in the store (asked directly, not the cache).
func (f *remoteFS) dirEmpty(ctx context.Context, dir string) (bool, error) {
	if f.hasPendingChildren(dir) {
		return false, nil
	}
	found := false
	stop := func() error { found = true; return errStopList }
	var err error
	if dl, ok := f.store.(remote.DirLister); ok {
		err = dl.ListDir(ctx, dir, func(remote.DirEntry) error { return stop() })
	} else {
		err = f.store.List(ctx, dir, func(remote.ObjectInfo) error { return stop() })
	}
	if err != nil && !errors.Is(err, errStopList) {
		return false, fmt.Errorf("list %s: %w", printableDir(dir), err)
	}
	return !found, nil
}

// uploaded records that key now holds info in the store.
func (f *remoteFS) uploaded(key string, info remote.ObjectInfo) {
	dir, name := splitKey(key)
	f.removePending(dir, name)
	e := entryFromInfo(name, info)
	f.cache.set(dir, name, &e)
	// The object makes its ancestors real directories of the store.
	for d := dir; d != ""; {
		parent, sub := splitKey(strings.TrimSuffix(d, "/"))
		f.cache.ensureDir(parent, sub)
		d = parent
	}
}

// removed records that name is gone from dir through the mount.
func (f *remoteFS) removed(dir, name string) {
	f.removePending(dir, name)
	f.cache.set(dir, name, nil)
	f.keepDir(dir)
}

// newFileKey checks that name can be created in dir and returns its key.
func newFileKey(dir, name string) (string, syscall.Errno) {
	if !validName(name) {
		return "", syscall.EINVAL
	}
	key := dir + name
	if remote.ValidateKey(key) != nil {
		return "", syscall.EINVAL
	}
	if len(key)+1 > maxKeyLen { // +1: room for a directory's "/"
		return "", syscall.ENAMETOOLONG
	}
	return key, 0
}

// dirNode is a directory: the root ("") or a key prefix ending in "/".
type dirNode struct {
	node
	mu  sync.Mutex
	key string
}

var (
	_ = (fs.NodeGetattrer)((*dirNode)(nil))
	_ = (fs.NodeSetattrer)((*dirNode)(nil))
	_ = (fs.NodeLookuper)((*dirNode)(nil))
	_ = (fs.NodeReaddirer)((*dirNode)(nil))
	_ = (fs.NodeCreater)((*dirNode)(nil))
	_ = (fs.NodeMkdirer)((*dirNode)(nil))
	_ = (fs.NodeUnlinker)((*dirNode)(nil))
	_ = (fs.NodeRmdirer)((*dirNode)(nil))
	_ = (fs.NodeRenamer)((*dirNode)(nil))
	_ = (fs.NodeLinker)((*dirNode)(nil))
	_ = (fs.NodeSymlinker)((*dirNode)(nil))
	_ = (fs.NodeMknoder)((*dirNode)(nil))
)

func (n *dirNode) dirKey() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.key
}

func (n *dirNode) mode() uint32 {
	if n.fsys.readOnly {
		return roDirMode
	}
	return dirMode
}

func (n *dirNode) fillAttr(a *fuse.Attr) {
	a.Mode = syscall.S_IFDIR | n.mode()
	a.Nlink = 1 // unknown number of sub-directories (find must not assume leaves)
	a.Uid, a.Gid = n.fsys.uid, n.fsys.gid
	t := n.fsys.mounted
	a.SetTimes(&t, &t, &t)
}

// Getattr implements fs.NodeGetattrer.
func (n *dirNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fillAttr(&out.Attr)
	return 0
}

// Setattr implements fs.NodeSetattrer: times are accepted and not kept (a
// directory has no stored times); a mode or owner other than the shown one
// is EPERM.
func (n *dirNode) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := checkOwnerMode(in, n.mode(), n.fsys); errno != 0 {
		return errno
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	n.fillAttr(&out.Attr)
	return 0
}

// checkOwnerMode refuses a chmod or chown that would change anything.
func checkOwnerMode(in *fuse.SetAttrIn, perm uint32, f *remoteFS) syscall.Errno {
	if m, ok := in.GetMode(); ok && m&0o7777 != perm {
		return syscall.EPERM
	}
	if uid, ok := in.GetUID(); ok && uid != f.uid {
		return syscall.EPERM
	}
	if gid, ok := in.GetGID(); ok && gid != f.gid {
		return syscall.EPERM
	}
	return 0
}

// Lookup implements fs.NodeLookuper from the directory's listing.
func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !validName(name) {
		return nil, syscall.ENOENT
	}
	dir := n.dirKey()
	e, ok, err := n.fsys.lookup(ctx, dir, name)
	if err != nil {
		return nil, n.fsys.errno("lookup", dir+name, err)
	}
	if !ok {
		return nil, syscall.ENOENT
	}
	return n.child(ctx, dir, e, &out.Attr), 0
}

// child returns the node for entry e of this directory (the known one when
// there is one of the right type) and fills its attributes.
func (n *dirNode) child(ctx context.Context, dir string, e entry, attr *fuse.Attr) *fs.Inode {
	if ch := n.GetChild(e.Name); ch != nil {
		switch op := ch.Operations().(type) {
		case *fileNode:
			if !e.Dir {
				if !e.pending {
					op.seen(e)
				}
				op.fillAttr(attr)
				return ch
			}
		case *dirNode:
			if e.Dir {
				op.fillAttr(attr)
				return ch
			}
		}
	}
	if e.Dir {
		d := &dirNode{node: node{fsys: n.fsys}, key: dir + e.Name + "/"}
		d.fillAttr(attr)
		return n.NewInode(ctx, d, fs.StableAttr{Mode: syscall.S_IFDIR})
	}
	f := &fileNode{node: node{fsys: n.fsys}, key: dir + e.Name}
	if !e.pending {
		f.seen(e)
	}
	f.fillAttr(attr)
	return n.NewInode(ctx, f, fs.StableAttr{Mode: syscall.S_IFREG})
}

// Readdir implements fs.NodeReaddirer.
func (n *dirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	dir := n.dirKey()
	entries, err := n.fsys.readDir(ctx, dir)
	if err != nil {
		return nil, n.fsys.errno("readdir", dir, err)
	}
	return fs.NewListDirStream(entries), 0
}

// Create implements fs.NodeCreater: a new file starts as an empty, dirty
// spool and is uploaded when it is closed.
func (n *dirNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if n.fsys.readOnly {
		return nil, nil, 0, syscall.EROFS
	}
	dir := n.dirKey()
	key, errno := newFileKey(dir, name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	e, exists, err := n.fsys.lookup(ctx, dir, name)
	if err != nil {
		return nil, nil, 0, n.fsys.errno("create", key, err)
	}
	if exists {
		if e.Dir {
			return nil, nil, 0, syscall.EISDIR
		}
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		ch := n.child(ctx, dir, e, &out.Attr)
		fh, fflags, errno := ch.Operations().(*fileNode).Open(ctx, flags)
		if errno != 0 {
			return nil, nil, 0, errno
		}
		ch.Operations().(*fileNode).fillAttr(&out.Attr)
		return ch, fh, fflags, 0
	}
	sp, err := n.fsys.newSpool()
	if err != nil {
		return nil, nil, 0, n.fsys.errno("create", key, err)
	}
	sp.filled, sp.dirty, sp.mtime = true, true, time.Now()
	f := &fileNode{node: node{fsys: n.fsys}, key: key, sp: sp, writers: 1}
	n.fsys.addPending(dir, name, false)
	f.fillAttr(&out.Attr)
	ch := n.NewInode(ctx, f, fs.StableAttr{Mode: syscall.S_IFREG})
	return ch, n.fsys.newHandle(f, true), 0, 0
}

// Mkdir implements fs.NodeMkdirer: the directory exists in memory until a
// file is written into it (nothing is written to the store).
func (n *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.fsys.readOnly {
		return nil, syscall.EROFS
	}
	dir := n.dirKey()
	key, errno := newFileKey(dir, name)
	if errno != 0 {
		return nil, errno
	}
	if _, exists, err := n.fsys.lookup(ctx, dir, name); err != nil {
		return nil, n.fsys.errno("mkdir", key, err)
	} else if exists {
		return nil, syscall.EEXIST
	}
	n.fsys.addPending(dir, name, true)
	n.fsys.cache.seedEmpty(key + "/")
	d := &dirNode{node: node{fsys: n.fsys}, key: key + "/"}
	d.fillAttr(&out.Attr)
	return n.NewInode(ctx, d, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Unlink implements fs.NodeUnlinker: the object is deleted; a file still
// open keeps its data until it is closed, and is not uploaded.
func (n *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.fsys.readOnly {
		return syscall.EROFS
	}
	dir := n.dirKey()
	key := dir + name
	var f *fileNode
	inStore := true
	if ch := n.GetChild(name); ch != nil {
		switch op := ch.Operations().(type) {
		case *dirNode:
			return syscall.EISDIR
		case *fileNode:
			f = op
			f.upMu.Lock()
			defer f.upMu.Unlock()
			f.mu.Lock()
			inStore = f.inStore
			f.mu.Unlock()
		}
	} else {
		e, ok, err := n.fsys.lookup(ctx, dir, name)
		switch {
		case err != nil:
			return n.fsys.errno("unlink", key, err)
		case !ok:
			return syscall.ENOENT
		case e.Dir:
			return syscall.EISDIR
		}
	}
	if inStore {
		dctx, done := n.fsys.detached(ctx)
		err := n.fsys.store.Delete(dctx, key)
		done()
		if err != nil {
			return n.fsys.errno("unlink", key, err)
		}
	}
	if f != nil {
		f.markUnlinked()
	}
	n.fsys.removed(dir, name)
	return 0
}

// Rmdir implements fs.NodeRmdirer: only an empty directory is removed
// (ENOTEMPTY otherwise); there is nothing to delete in the store.
func (n *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.fsys.readOnly {
		return syscall.EROFS
	}
	dir := n.dirKey()
	sub := dir + name + "/"
	if ch := n.GetChild(name); ch != nil {
		if _, ok := ch.Operations().(*dirNode); !ok {
			return syscall.ENOTDIR
		}
	} else {
		e, ok, err := n.fsys.lookup(ctx, dir, name)
		switch {
		case err != nil:
			return n.fsys.errno("rmdir", sub, err)
		case !ok:
			return syscall.ENOENT
		case !e.Dir:
			return syscall.ENOTDIR
		}
	}
	empty, err := n.fsys.dirEmpty(ctx, sub)
	if err != nil {
		return n.fsys.errno("rmdir", sub, err)
	}
	if !empty {
		return syscall.ENOTEMPTY
	}
	n.fsys.removed(dir, name)
	n.fsys.cache.invalidate(sub)
	return 0
}

// Rename implements fs.NodeRenamer. A file is copied (server-side when the
// store is a remote.Copier) and the old object deleted; a file not yet
// uploaded just changes its key. An empty directory is renamed in memory;
// a non-empty one is EXDEV, so that mv copies it instead.
func (n *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if n.fsys.readOnly {
		return syscall.EROFS
	}
	if flags&unix.RENAME_EXCHANGE != 0 || flags&^uint32(unix.RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EXDEV
	}
	dir, newDir := n.dirKey(), np.dirKey()
	newKey, errno := newFileKey(newDir, newName)
	if errno != 0 {
		return errno
	}
	src, ok, err := n.fsys.lookup(ctx, dir, name)
	if err != nil {
		return n.fsys.errno("rename", dir+name, err)
	}
	if ch := n.GetChild(name); ch != nil {
		// The kernel's node wins over a listing that may be older.
		_, isDir := ch.Operations().(*dirNode)
		if !ok || src.Dir != isDir {
			src, ok = entry{Name: name, Dir: isDir, pending: true}, true
		}
	}
	if !ok {
		return syscall.ENOENT
	}
	dst, dstExists, err := n.fsys.lookup(ctx, newDir, newName)
	if err != nil {
		return n.fsys.errno("rename", newKey, err)
	}
	if ch := np.GetChild(newName); ch != nil && !dstExists {
		_, isDir := ch.Operations().(*dirNode)
		dst, dstExists = entry{Name: newName, Dir: isDir, pending: true}, true
	}
	if dstExists && flags&unix.RENAME_NOREPLACE != 0 {
		return syscall.EEXIST
	}
	if src.Dir {
		return n.renameDir(ctx, name, np, newName, dst, dstExists)
	}
	if dstExists && dst.Dir {
		return syscall.EISDIR
	}
	return n.renameFile(ctx, name, np, newName, src)
}

func (n *dirNode) renameDir(ctx context.Context, name string, np *dirNode, newName string, dst entry, dstExists bool) syscall.Errno {
	dir, newDir := n.dirKey(), np.dirKey()
	oldSub, newSub := dir+name+"/", newDir+newName+"/"
	if strings.HasPrefix(newSub, oldSub) {
		return syscall.EINVAL // into itself
	}
	if dstExists {
		if !dst.Dir {
			return syscall.ENOTDIR
		}
		empty, err := n.fsys.dirEmpty(ctx, newSub)
		if err != nil {
			return n.fsys.errno("rename", newSub, err)
		}
		if !empty {
			return syscall.ENOTEMPTY
		}
	}
	var d *dirNode
	if ch := n.GetChild(name); ch != nil {
		d, _ = ch.Operations().(*dirNode)
		if d == nil || len(ch.Children()) > 0 {
			return syscall.EXDEV
		}
	}
	empty, err := n.fsys.dirEmpty(ctx, oldSub)
	if err != nil {
		return n.fsys.errno("rename", oldSub, err)
	}
	if !empty {
		return syscall.EXDEV
	}
	n.fsys.removed(dir, name)
	n.fsys.cache.invalidate(oldSub)
	n.fsys.cache.set(newDir, newName, nil)
	n.fsys.addPending(newDir, newName, true)
	n.fsys.cache.seedEmpty(newSub)
	if d != nil {
		d.mu.Lock()
		d.key = newSub
		d.mu.Unlock()
	}
	return 0
}

func (n *dirNode) renameFile(ctx context.Context, name string, np *dirNode, newName string, src entry) syscall.Errno {
	dir, newDir := n.dirKey(), np.dirKey()
	oldKey, newKey := dir+name, newDir+newName
	if oldKey == newKey {
		return 0
	}
	var f, target *fileNode
	if ch := n.GetChild(name); ch != nil {
		f, _ = ch.Operations().(*fileNode)
	}
	if ch := np.GetChild(newName); ch != nil {
		target, _ = ch.Operations().(*fileNode)
	}
	if f == nil {
		// Not known to the kernel (it normally is): make a node for the
		// move's bookkeeping.
		f = &fileNode{node: node{fsys: n.fsys}, key: oldKey}
		if !src.pending {
			f.seen(src)
		}
	}
	// Hold both files' upload locks, in key order, so no upload to either
	// key runs during the move.
	first, second := f, target
	if second != nil && second != f && newKey < oldKey {
		first, second = second, first
	}
	first.upMu.Lock()
	defer first.upMu.Unlock()
	if second != nil && second != first {
		second.upMu.Lock()
		defer second.upMu.Unlock()
	}

	f.mu.Lock()
	dirty := f.sp != nil && f.sp.dirty
	inStore := f.inStore
	f.mu.Unlock()

	// From here the store changes: a signal to the program does not stop
	// the move half-way (both names, or neither) — only the unmount does.
	ctx, done := n.fsys.detached(ctx)
	defer done()
	var info remote.ObjectInfo
	switch {
	case dirty:
		// The content is uploaded to the new key when the file is closed;
		// the old object goes now.
		if inStore {
			if err := n.fsys.store.Delete(ctx, oldKey); err != nil {
				return n.fsys.errno("rename", oldKey, err)
			}
		}
		inStore = false
	case inStore:
		var err error
		info, err = n.fsys.copyObject(ctx, oldKey, newKey)
		if err != nil {
			return n.fsys.errno("rename", oldKey, err)
		}
		if err := n.fsys.store.Delete(ctx, oldKey); err != nil {
			return n.fsys.errno("rename", oldKey, err)
		}
	}
	if target != nil && target != f {
		target.markUnlinked()
	}
	f.mu.Lock()
	f.key = newKey
	f.inStore = inStore
	if inStore {
		f.info, f.infoTime = info, time.Now()
	}
	f.mu.Unlock()

	n.fsys.removed(dir, name)
	if inStore {
		n.fsys.uploaded(newKey, info)
	} else {
		n.fsys.addPending(newDir, newName, false)
	}
	return 0
}

// detached returns a context for a change to the store that, once begun,
// should finish: it is not canceled when the FUSE call is interrupted (a
// signal to the program), only when the mount stops. Call done after.
func (f *remoteFS) detached(ctx context.Context) (_ context.Context, done func()) {
	c, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(f.bg, cancel)
	return c, func() { stop(); cancel() }
}

// copyObject copies srcKey to dstKey: server-side when the store can, else
// by reading and writing it again with its mtime and SHA-256.
func (f *remoteFS) copyObject(ctx context.Context, srcKey, dstKey string) (remote.ObjectInfo, error) {
	if c, ok := f.store.(remote.Copier); ok {
		info, err := c.Copy(ctx, srcKey, dstKey)
		if err != nil {
			return remote.ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, err)
		}
		return info, nil
	}
	st, err := f.store.Stat(ctx, srcKey)
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, err)
	}
	return f.rewrite(ctx, srcKey, dstKey, st, st.ModTime)
}

// rewrite reads the object at srcKey (described by st) and puts it at
// dstKey with mtime.
func (f *remoteFS) rewrite(ctx context.Context, srcKey, dstKey string, st remote.ObjectInfo, mtime time.Time) (remote.ObjectInfo, error) {
	rd, err := f.store.Open(ctx, srcKey, 0, -1)
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, err)
	}
	defer rd.Close()
	info, err := f.store.Put(ctx, dstKey, rd, st.Size, remote.PutMeta{ModTime: mtime, SHA256: st.SHA256})
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, err)
	}
	return info, nil
}

// Link implements fs.NodeLinker: object storage has no hard links.
func (n *dirNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

// Symlink implements fs.NodeSymlinker: object storage has no symlinks.
func (n *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

// Mknod implements fs.NodeMknoder: no device nodes, FIFOs or sockets.
func (n *dirNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}
