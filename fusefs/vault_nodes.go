package fusefs

import (
	"context"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ferrysync/ferry/vault"
)

// treeIndex is a backup's tree arranged for lookups: the entries of each
// directory sorted by name.
type treeIndex struct {
	root     vault.RootMeta
	children map[string][]*vault.Entry // directory path ("" for the top) → entries
	subdirs  map[string]int            // directory path → number of sub-directories
}

func newTreeIndex(t *vault.Tree) *treeIndex {
	ix := &treeIndex{
		root:     t.Root,
		children: make(map[string][]*vault.Entry),
		subdirs:  make(map[string]int),
	}
	for _, e := range t.Entries {
		dir := path.Dir(e.Path)
		if dir == "." {
			dir = ""
		}
		ix.children[dir] = append(ix.children[dir], e)
		if e.Type == vault.TypeDir {
			ix.subdirs[dir]++
		}
	}
	for _, list := range ix.children {
		slices.SortFunc(list, func(a, b *vault.Entry) int { return strings.Compare(path.Base(a.Path), path.Base(b.Path)) })
	}
	return ix
}

// lookup returns the entry name of directory dir, or nil.
func (ix *treeIndex) lookup(dir, name string) *vault.Entry {
	list := ix.children[dir]
	i, ok := slices.BinarySearchFunc(list, name, func(e *vault.Entry, name string) int {
		return strings.Compare(path.Base(e.Path), name)
	})
	if !ok {
		return nil
	}
	return list[i]
}

// vaultNode is what every node of the vault view shares: the file system,
// and a refusal of every change (the mount is also read-only for the
// kernel, which refuses most changes itself).
type vaultNode struct {
	fs.Inode
	fsys *vaultFS
}

var (
	_ = (fs.NodeStatfser)((*vaultNode)(nil))
	_ = (fs.NodeSetattrer)((*vaultNode)(nil))
	_ = (fs.NodeCreater)((*vaultNode)(nil))
	_ = (fs.NodeMkdirer)((*vaultNode)(nil))
	_ = (fs.NodeMknoder)((*vaultNode)(nil))
	_ = (fs.NodeLinker)((*vaultNode)(nil))
	_ = (fs.NodeSymlinker)((*vaultNode)(nil))
	_ = (fs.NodeUnlinker)((*vaultNode)(nil))
	_ = (fs.NodeRmdirer)((*vaultNode)(nil))
	_ = (fs.NodeRenamer)((*vaultNode)(nil))
)

// Statfs reports a file system with no free space.
func (n *vaultNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize, out.Frsize = 4096, 4096
	out.NameLen = maxNameLen
	return 0
}

// Setattr implements fs.NodeSetattrer: EROFS.
func (n *vaultNode) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// Create implements fs.NodeCreater: EROFS.
func (n *vaultNode) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

// Mkdir implements fs.NodeMkdirer: EROFS.
func (n *vaultNode) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Mknod implements fs.NodeMknoder: EROFS.
func (n *vaultNode) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Link implements fs.NodeLinker: EROFS.
func (n *vaultNode) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Symlink implements fs.NodeSymlinker: EROFS.
func (n *vaultNode) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Unlink implements fs.NodeUnlinker: EROFS.
func (n *vaultNode) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }

// Rmdir implements fs.NodeRmdirer: EROFS.
func (n *vaultNode) Rmdir(context.Context, string) syscall.Errno { return syscall.EROFS }

// Rename implements fs.NodeRenamer: EROFS.
func (n *vaultNode) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}

// syntheticDirAttr fills the attributes of a directory the view makes up
// (the root, by-id, a backup's directory): r-x for everyone, owned by the
// user who mounted.
func (f *vaultFS) syntheticDirAttr(a *fuse.Attr, mtime time.Time, nlink uint32) {
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = nlink
	a.Uid, a.Gid = f.uid, f.gid
	a.SetTimes(&mtime, &mtime, &mtime)
}

func (f *vaultFS) syntheticLinkAttr(a *fuse.Attr, target string) {
	a.Mode = syscall.S_IFLNK | 0o777
	a.Nlink = 1
	a.Size = uint64(len(target))
	a.Uid, a.Gid = f.uid, f.gid
	t := f.mounted
	a.SetTimes(&t, &t, &t)
}

// vaultRootNode is the root: a directory per backup, latest and by-id.
type vaultRootNode struct {
	vaultNode
}

var (
	_ = (fs.NodeGetattrer)((*vaultRootNode)(nil))
	_ = (fs.NodeLookuper)((*vaultRootNode)(nil))
	_ = (fs.NodeReaddirer)((*vaultRootNode)(nil))
)

// Getattr implements fs.NodeGetattrer.
func (n *vaultRootNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.syntheticDirAttr(&out.Attr, n.fsys.mounted, 1)
	out.SetTimeout(vaultRootTimeout)
	return 0
}

// Lookup implements fs.NodeLookuper from the backup list (listed again
// when older than vaultListTTL).
func (n *vaultRootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	out.SetEntryTimeout(vaultRootTimeout) // also for a negative answer
	set, err := n.fsys.backups(ctx)
	if err != nil {
		return nil, n.fsys.errno("lookup", name, err)
	}
	switch name {
	case vaultByIDName:
		n.fsys.syntheticDirAttr(&out.Attr, n.fsys.mounted, 1)
		out.SetAttrTimeout(vaultRootTimeout)
		if ch := n.GetChild(name); ch != nil {
			if _, ok := ch.Operations().(*vaultByIDNode); ok {
				return ch, 0
			}
		}
		return n.NewInode(ctx, &vaultByIDNode{vaultNode: vaultNode{fsys: n.fsys}}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	case vaultLatestName:
		if set.latest == "" {
			return nil, syscall.ENOENT
		}
		return n.fsys.linkChild(ctx, &n.Inode, name, func(s *backupSet) string { return s.latest }, out), 0
	}
	st := set.byName[name]
	if st == nil {
		return nil, syscall.ENOENT
	}
	n.fsys.backupDirAttr(&out.Attr, st)
	if ch := n.GetChild(name); ch != nil {
		if d, ok := ch.Operations().(*vaultDirNode); ok && d.st == st {
			return ch, 0
		}
	}
	d := &vaultDirNode{vaultNode: vaultNode{fsys: n.fsys}, st: st}
	return n.NewInode(ctx, d, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Readdir implements fs.NodeReaddirer.
func (n *vaultRootNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	set, err := n.fsys.backups(ctx)
	if err != nil {
		return nil, n.fsys.errno("readdir", "/", err)
	}
	entries := make([]fuse.DirEntry, 0, len(set.names)+2)
	for _, name := range set.names {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
	}
	entries = append(entries, fuse.DirEntry{Name: vaultByIDName, Mode: syscall.S_IFDIR})
	if set.latest != "" {
		entries = append(entries, fuse.DirEntry{Name: vaultLatestName, Mode: syscall.S_IFLNK})
	}
	return fs.NewListDirStream(entries), 0
}

// backupDirAttr fills the attributes of a backup's directory: made up
// (0555, the mounting user), with the backup's creation time as mtime, so
// that showing the root does not read every backup's tree.
func (f *vaultFS) backupDirAttr(a *fuse.Attr, st *backupState) {
	f.syntheticDirAttr(a, st.m.Started, 1)
}

// linkChild returns the node of a symlink of the root or by-id whose
// target the current backup list gives, and fills its attributes.
func (f *vaultFS) linkChild(ctx context.Context, parent *fs.Inode, name string, target func(*backupSet) string, out *fuse.EntryOut) *fs.Inode {
	set, _ := f.backups(ctx)
	t := ""
	if set != nil {
		t = target(set)
	}
	f.syntheticLinkAttr(&out.Attr, t)
	out.SetAttrTimeout(vaultRootTimeout)
	if ch := parent.GetChild(name); ch != nil {
		if _, ok := ch.Operations().(*vaultLinkNode); ok {
			return ch
		}
	}
	return parent.NewInode(ctx, &vaultLinkNode{vaultNode: vaultNode{fsys: f}, target: target}, fs.StableAttr{Mode: syscall.S_IFLNK})
}

// vaultLinkNode is latest or an entry of by-id: a symlink whose target
// follows the backup list.
type vaultLinkNode struct {
	vaultNode
	target func(*backupSet) string
}

var (
	_ = (fs.NodeGetattrer)((*vaultLinkNode)(nil))
	_ = (fs.NodeReadlinker)((*vaultLinkNode)(nil))
)

func (n *vaultLinkNode) current(ctx context.Context) (string, syscall.Errno) {
	set, err := n.fsys.backups(ctx)
	if err != nil {
		return "", n.fsys.errno("readlink", n.Path(nil), err)
	}
	t := n.target(set)
	if t == "" {
		return "", syscall.ENOENT // the backup is gone
	}
	return t, 0
}

// Getattr implements fs.NodeGetattrer.
func (n *vaultLinkNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	t, errno := n.current(ctx)
	if errno != 0 {
		return errno
	}
	n.fsys.syntheticLinkAttr(&out.Attr, t)
	out.SetTimeout(vaultRootTimeout)
	return 0
}

// Readlink implements fs.NodeReadlinker.
func (n *vaultLinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, errno := n.current(ctx)
	if errno != 0 {
		return nil, errno
	}
	return []byte(t), 0
}

// vaultByIDNode is by-id: a symlink "../<directory>" per backup id.
type vaultByIDNode struct {
	vaultNode
}

var (
	_ = (fs.NodeGetattrer)((*vaultByIDNode)(nil))
	_ = (fs.NodeLookuper)((*vaultByIDNode)(nil))
	_ = (fs.NodeReaddirer)((*vaultByIDNode)(nil))
)

// Getattr implements fs.NodeGetattrer.
func (n *vaultByIDNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.syntheticDirAttr(&out.Attr, n.fsys.mounted, 1)
	out.SetTimeout(vaultRootTimeout)
	return 0
}

// Lookup implements fs.NodeLookuper.
func (n *vaultByIDNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	out.SetEntryTimeout(vaultRootTimeout)
	set, err := n.fsys.backups(ctx)
	if err != nil {
		return nil, n.fsys.errno("lookup", vaultByIDName+"/"+name, err)
	}
	if _, ok := set.dirOf[name]; !ok {
		return nil, syscall.ENOENT
	}
	id := name
	return n.fsys.linkChild(ctx, &n.Inode, name, func(s *backupSet) string {
		if dir, ok := s.dirOf[id]; ok {
			return "../" + dir
		}
		return ""
	}, out), 0
}

// Readdir implements fs.NodeReaddirer.
func (n *vaultByIDNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	set, err := n.fsys.backups(ctx)
	if err != nil {
		return nil, n.fsys.errno("readdir", vaultByIDName, err)
	}
	entries := make([]fuse.DirEntry, len(set.ids))
	for i, id := range set.ids {
		entries[i] = fuse.DirEntry{Name: id, Mode: syscall.S_IFLNK}
	}
	return fs.NewListDirStream(entries), 0
}

// vaultDirNode is a directory of a backup: its top (dir "") or one of the
// tree's directories.
type vaultDirNode struct {
	vaultNode
	st  *backupState
	dir string       // path in the tree; "" for the backup's top
	e   *vault.Entry // nil for the top
}

var (
	_ = (fs.NodeGetattrer)((*vaultDirNode)(nil))
	_ = (fs.NodeLookuper)((*vaultDirNode)(nil))
	_ = (fs.NodeReaddirer)((*vaultDirNode)(nil))
)

// Getattr implements fs.NodeGetattrer.
func (n *vaultDirNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if n.e == nil {
		n.fsys.backupDirAttr(&out.Attr, n.st)
		return 0
	}
	ix, err := n.st.index(ctx, n.fsys)
	if err != nil {
		return n.fsys.errno("getattr", n.describe(), err)
	}
	entryAttr(&out.Attr, n.e, ix)
	return 0
}

func (n *vaultDirNode) describe() string {
	if n.dir == "" {
		return n.st.m.ID
	}
	return n.st.m.ID + "/" + n.dir
}

// Lookup implements fs.NodeLookuper from the tree.
func (n *vaultDirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ix, err := n.st.index(ctx, n.fsys)
	if err != nil {
		return nil, n.fsys.errno("lookup", n.describe(), err)
	}
	e := ix.lookup(n.dir, name)
	if e == nil {
		return nil, syscall.ENOENT
	}
	entryAttr(&out.Attr, e, ix)
	if ch := n.GetChild(name); ch != nil && entryOf(ch) == e {
		return ch, 0
	}
	var child fs.InodeEmbedder
	var mode uint32
	switch e.Type {
	case vault.TypeDir:
		child, mode = &vaultDirNode{vaultNode: vaultNode{fsys: n.fsys}, st: n.st, dir: e.Path, e: e}, syscall.S_IFDIR
	case vault.TypeSymlink:
		child, mode = &vaultSymlinkNode{vaultNode: vaultNode{fsys: n.fsys}, e: e}, syscall.S_IFLNK
	default:
		child, mode = newVaultFileNode(n.fsys, n.st, e), syscall.S_IFREG
	}
	return n.NewInode(ctx, child, fs.StableAttr{Mode: mode}), 0
}

// entryOf returns the tree entry of a node of a backup, or nil.
func entryOf(ch *fs.Inode) *vault.Entry {
	switch op := ch.Operations().(type) {
	case *vaultDirNode:
		return op.e
	case *vaultSymlinkNode:
		return op.e
	case *vaultFileNode:
		return op.e
	}
	return nil
}

// Readdir implements fs.NodeReaddirer from the tree.
func (n *vaultDirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ix, err := n.st.index(ctx, n.fsys)
	if err != nil {
		return nil, n.fsys.errno("readdir", n.describe(), err)
	}
	list := ix.children[n.dir]
	entries := make([]fuse.DirEntry, 0, len(list))
	for _, e := range list {
		name := path.Base(e.Path)
		if len(name) > maxNameLen {
			continue // the kernel cannot pass it
		}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: entryType(e)})
	}
	return fs.NewListDirStream(entries), 0
}

func entryType(e *vault.Entry) uint32 {
	switch e.Type {
	case vault.TypeDir:
		return syscall.S_IFDIR
	case vault.TypeSymlink:
		return syscall.S_IFLNK
	}
	return syscall.S_IFREG
}

// entryAttr fills the attributes of a tree entry, as the tree records
// them.
func entryAttr(a *fuse.Attr, e *vault.Entry, ix *treeIndex) {
	a.Mode = entryType(e) | e.Mode&0o7777
	a.Nlink = 1
	switch e.Type {
	case vault.TypeDir:
		a.Nlink = 2 + uint32(ix.subdirs[e.Path])
	case vault.TypeSymlink:
		a.Size = uint64(len(e.Target))
	default:
		a.Size = uint64(e.Size)
	}
	a.Uid, a.Gid = ownerID(e.UID), ownerID(e.GID)
	t := e.MTime
	a.SetTimes(&t, &t, &t)
}

// ownerID converts a recorded owner; an impossible one shows as nobody.
func ownerID(id int) uint32 {
	if id < 0 || id > 1<<32-2 {
		return 65534
	}
	return uint32(id)
}

// vaultSymlinkNode is a symlink of a backup.
type vaultSymlinkNode struct {
	vaultNode
	e *vault.Entry
}

var (
	_ = (fs.NodeGetattrer)((*vaultSymlinkNode)(nil))
	_ = (fs.NodeReadlinker)((*vaultSymlinkNode)(nil))
)

// Getattr implements fs.NodeGetattrer.
func (n *vaultSymlinkNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	entryAttr(&out.Attr, n.e, nil)
	return 0
}

// Readlink implements fs.NodeReadlinker: the target as stored.
func (n *vaultSymlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(n.e.Target), 0
}
