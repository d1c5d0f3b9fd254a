package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/vault"
)

// Kernel cache timeouts of the vault view. A backup never changes, so what
// is inside one may be cached long; the root (and by-id/) changes when
// backups are made or deleted, so its names are cached briefly.
const (
	vaultContentTimeout = time.Hour
	vaultRootTimeout    = 5 * time.Second
)

// vaultListTTL is how long the list of backups is used before the root's
// next lookup or readdir lists the vault's manifests again.
const vaultListTTL = 5 * time.Second

// vaultListTimeout bounds one refresh of the backup list, which runs on the
// mount's context (shared by every request waiting for it), not on the
// request's.
const vaultListTimeout = 2 * time.Minute

// vaultManifestWorkers is how many manifests a refresh reads at once.
const vaultManifestWorkers = 16

// Names in the root of the vault view.
const (
	vaultLatestName = "latest"
	vaultByIDName   = "by-id"
	vaultTimeLayout = "2006-01-02T150405Z"
)

// MountVault mounts the backups of v, read-only, on mountpoint and returns
// once the mount is ready. ctx bounds the setup, which lists the vault's
// backups so that an unreachable vault fails here.
//
// The root holds one directory per available backup, named by its creation
// time (UTC) and name ("2026-11-23T020000Z-photos"; without a name just the
// time), a symlink "latest" to the newest and a directory "by-id" with a
// symlink per backup id. Inside a backup directory is the backup's tree, with
// the sizes, modes, owners, mtimes and symlinks the tree records; the tree
// is read once, on the first access to the backup, and every stat and
// readdir is answered from it. Reads fetch whole chunks (each checked,
// vault.ChunkCheck; a mismatch is EIO), read ahead for sequential reads
// and keep chunks in a cache: 64 MiB in memory and, when opts.CacheDir is
// set, 1 GiB on disk in CacheDir/vault-<vault id>/, kept across mounts. A
// file larger than 1/16 of the disk cache (without one, than the memory
// cache) read sequentially is streamed instead, past both caches
// (vault_stream.go). Every change fails with EROFS.
// docs/mount.md is the user-facing description.
//
// Of opts, AllowOther, CacheDir, Logger, Context (chunk fetches, read-ahead
// and listings run on it) and Source are used; ReadOnly is implied; ListTTL,
// DB and CacheID are for the remote view and ignored.
func MountVault(ctx context.Context, mountpoint string, v *vault.Vault, opts Options) (*Mount, error) {
	m, _, err := mountVault(ctx, mountpoint, v, opts, vaultCacheConfig{})
	return m, err
}

// vaultCacheConfig sizes the chunk cache; zero fields take the defaults.
type vaultCacheConfig struct {
	memBytes  int64
	diskBytes int64
}

// Chunk cache sizes.
const (
	defaultVaultMemCache  = 64 << 20
	defaultVaultDiskCache = 1 << 30
)

// mountVault is MountVault with the cache sizes, returning the file system
// so tests can look inside.
func mountVault(ctx context.Context, mountpoint string, v *vault.Vault, opts Options, cc vaultCacheConfig) (*Mount, *vaultFS, error) {
	if v == nil {
		return nil, nil, errors.New("mount vault: no vault given")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("vault", v.Name()))
	parent := opts.Context
	if parent == nil {
		parent = context.WithoutCancel(ctx)
	}
	mp, err := checkMountpoint(mountpoint)
	if err != nil {
		return nil, nil, err
	}
	if cc.memBytes <= 0 {
		cc.memBytes = defaultVaultMemCache
	}
	if cc.diskBytes <= 0 {
		cc.diskBytes = defaultVaultDiskCache
	}

	bg, cancel := context.WithCancel(parent)
	var disk *diskChunkCache
	if opts.CacheDir != "" {
		dir := filepath.Join(opts.CacheDir, "vault-"+v.ID())
		disk, err = openDiskChunkCache(dir, cc.diskBytes, log)
		if err != nil {
			// The mount still works, from the store and memory.
			log.Warn("chunk cache on disk not used; caching in memory only", slog.String("dir", dir), slog.Any("err", err))
			disk = nil
		}
	}
	fsys := &vaultFS{
		v:       v,
		bg:      bg,
		log:     log,
		uid:     uint32(os.Getuid()),
		gid:     uint32(os.Getgid()),
		mounted: time.Now(),
		chunks:  newChunkCache(v.Store(), bg, cc.memBytes, disk, log),
		streams: make(chan struct{}, vaultStreams),
		states:  make(map[string]*backupState),
	}
	// A file the disk cache would not keep when read through, or without
	// one a file larger than the memory cache, is streamed.
	fsys.streamMin = cc.memBytes
	if disk != nil {
		fsys.streamMin = disk.max / streamFraction
	}
	stop := func() {
		cancel()
		fsys.chunks.close()
	}
	if _, err := fsys.backups(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("mount %s: %w", mp, err)
	}

	root := &vaultRootNode{vaultNode: vaultNode{fsys: fsys}}
	content, negative := vaultContentTimeout, vaultContentTimeout
	fsOpts := &fs.Options{
		AttrTimeout:     &content,
		EntryTimeout:    &content,
		NegativeTimeout: &negative,
		// The tree's modes and owners are shown as they are: mode 0 and
		// owner root too.
		NullPermissions: true,
	}
	mo := opts
	mo.ReadOnly = true
	fsOpts.MountOptions = mountOptions(mo, log)
	fsOpts.MountOptions.MaxReadAhead = maxRequest
	fsOpts.MountOptions.SyncRead = true // ordered reads keep a stream going
	fsOpts.Logger = slog.NewLogLogger(log.Handler(), slog.LevelWarn)

	m, err := mount(mp, root, fsOpts, remoteReadAheadKB, log, stop, stop)
	if err != nil {
		return nil, nil, err
	}
	return m, fsys, nil
}

// vaultFS is the state shared by the nodes of one vault view.
type vaultFS struct {
	v        *vault.Vault
	bg       context.Context // chunk fetches, read-ahead, listings; canceled at unmount
	log      *slog.Logger
	uid, gid uint32
	mounted  time.Time
	chunks   *chunkCache

	// Streams of sequential reads (vault_stream.go): files larger than
	// streamMin bytes are streamed, by at most vaultStreams at once.
	streamMin   int64
	streams     chan struct{}
	streamReads atomic.Int64 // streams started (tests)

	mu      sync.Mutex
	set     *backupSet // nil until the first listing
	listed  time.Time  // when set was listed
	listing *listCall  // the refresh running, if any
	// states holds one state per backup id seen, with its tree once
	// loaded; a manifest that changes (its status) gets a new state.
	states map[string]*backupState
	known  map[string]manifestSeen
}

// manifestSeen is a manifest as read, with what the listing said of its
// object, to tell whether it changed since.
type manifestSeen struct {
	etag  string
	size  int64
	mtime time.Time
	m     *vault.Manifest // nil: unreadable (logged once)
}

type listCall struct {
	done chan struct{}
	set  *backupSet
	err  error
}

// errno maps err for the kernel, logging what the program will only see
// as a number.
func (f *vaultFS) errno(op, p string, err error) syscall.Errno {
	e := toErrno(err)
	switch e {
	case syscall.ENOENT, syscall.EINTR:
		f.log.Debug("fuse "+op, slog.String("path", p), slog.Any("err", err))
	default:
		f.log.Warn("fuse "+op, slog.String("path", p), slog.Any("err", err), slog.String("errno", e.Error()))
	}
	return e
}

// backups returns the current list of backups, listing the vault again
// when the last listing is older than vaultListTTL. When that listing
// fails and an older one exists, the older one is served (and the failure
// logged). Concurrent callers share one listing, which runs on the mount's
// context; a caller whose ctx ends stops waiting for it.
func (f *vaultFS) backups(ctx context.Context) (*backupSet, error) {
	f.mu.Lock()
	if f.set != nil && time.Since(f.listed) < vaultListTTL {
		set := f.set
		f.mu.Unlock()
		return set, nil
	}
	call := f.listing
	if call == nil {
		call = &listCall{done: make(chan struct{})}
		f.listing = call
		go f.refresh(call)
	}
	f.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return call.set, call.err
}

func (f *vaultFS) refresh(call *listCall) {
	ctx, cancel := context.WithTimeout(f.bg, vaultListTimeout)
	defer cancel()
	set, err := f.list(ctx)
	f.mu.Lock()
	switch {
	case err == nil:
		f.set, f.listed = set, time.Now()
	case f.set != nil:
		f.log.Warn("list backups; showing the previous list", slog.Any("err", err))
		set, err = f.set, nil
		f.listed = time.Now() // try again after another TTL, not at once
	}
	f.listing = nil
	f.mu.Unlock()
	call.set, call.err = set, err
	close(call.done)
}

// list lists backups/ and reads the manifests that are new or changed
// since the last listing: one LIST, and a GET per new manifest.
func (f *vaultFS) list(ctx context.Context) (*backupSet, error) {
	type listed struct {
		id   string
		info remote.ObjectInfo
	}
	var found []listed
	err := f.v.Store().List(ctx, vaultBackupsDir, func(oi remote.ObjectInfo) error {
		if oi.SkipReason != "" {
			return nil
		}
		if id, ok := parseVaultManifestKey(oi.Key); ok {
			found = append(found, listed{id, oi})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups of vault %s: %w", f.v.Name(), err)
	}

	f.mu.Lock()
	known := f.known
	f.mu.Unlock()
	next := make(map[string]manifestSeen, len(found))
	var toRead []listed
	for _, l := range found {
		k, ok := known[l.id]
		if ok && k.etag == l.info.ETag && k.size == l.info.Size && k.mtime.Equal(l.info.ModTime) {
			next[l.id] = k
			continue
		}
		toRead = append(toRead, l)
	}

	// Read the new and changed manifests, a few at a time.
	type result struct {
		l   listed
		m   *vault.Manifest
		err error
	}
	results := make([]result, len(toRead))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(vaultManifestWorkers, len(toRead)) {
		wg.Go(func() {
			for i := range jobs {
				m, err := f.v.Backup(ctx, toRead[i].id)
				results[i] = result{toRead[i], m, err}
			}
		})
	}
	for i := range toRead {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, r := range results {
		switch {
		case errors.Is(r.err, vault.ErrNoBackup):
			// deleted since the listing
		case errors.Is(r.err, vault.ErrFormat):
			f.log.Warn("backup left out of the mount: its manifest is unreadable",
				slog.String("backup", r.l.id), slog.Any("err", r.err))
			next[r.l.id] = manifestSeen{etag: r.l.info.ETag, size: r.l.info.Size, mtime: r.l.info.ModTime}
		case r.err != nil:
			return nil, r.err
		default:
			next[r.l.id] = manifestSeen{etag: r.l.info.ETag, size: r.l.info.Size, mtime: r.l.info.ModTime, m: r.m}
		}
	}

	var available []*vault.Manifest
	for _, k := range next {
		if k.m != nil && k.m.Status == vault.StatusAvailable {
			available = append(available, k.m)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known = next
	states := make(map[string]*backupState, len(available))
	for _, m := range available {
		st := f.states[m.ID]
		if st == nil || st.m != m {
			st = newBackupState(m, st)
		}
		states[m.ID] = st
	}
	f.states = states
	return newBackupSet(available, states), nil
}

// Vault object names (docs/vault-format.md).
const vaultBackupsDir = "backups/"

func parseVaultManifestKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, vaultBackupsDir)
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, ".json")
	return id, ok && vault.ValidID(id)
}

// vaultChunkKey is the key of the pack holding a chunk:
// packs/<xx>/<pack sha256>; the chunk is c.Size bytes at c.Offset in it.
func vaultChunkKey(c vault.Chunk) string { return vault.PackKey(c.Pack) }

// backupSet is one listing of the available backups, with the names the
// root shows. It is not changed once built.
type backupSet struct {
	names  []string // directory names, sorted
	byName map[string]*backupState
	byID   map[string]*backupState
	dirOf  map[string]string // backup id → directory name
	ids    []string          // sorted
	latest string            // directory name of the newest backup; "" when none
}

func newBackupSet(ms []*vault.Manifest, states map[string]*backupState) *backupSet {
	names := backupDirNames(ms)
	set := &backupSet{
		byName: make(map[string]*backupState, len(ms)),
		byID:   make(map[string]*backupState, len(ms)),
		dirOf:  make(map[string]string, len(ms)),
	}
	var newest *vault.Manifest
	for _, m := range ms {
		name := names[m.ID]
		st := states[m.ID]
		set.names = append(set.names, name)
		set.byName[name] = st
		set.byID[m.ID] = st
		set.dirOf[m.ID] = name
		set.ids = append(set.ids, m.ID)
		if newest == nil || newerBackup(m, newest) {
			newest = m
		}
	}
	slices.Sort(set.names)
	slices.Sort(set.ids)
	if newest != nil {
		set.latest = names[newest.ID]
	}
	return set
}

// newerBackup orders backups by creation time, then id.
func newerBackup(a, b *vault.Manifest) bool {
	if c := a.Started.Compare(b.Started); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

// backupDirNames names the directory of each backup: creation time (UTC,
// to the second) and the backup's name made safe for a file name. When
// several backups would get the same name, the oldest keeps it and the
// others get their id's random part appended (then the whole id).
func backupDirNames(ms []*vault.Manifest) map[string]string {
	sorted := slices.Clone(ms)
	slices.SortFunc(sorted, func(a, b *vault.Manifest) int {
		if newerBackup(a, b) {
			return 1
		}
		if newerBackup(b, a) {
			return -1
		}
		return 0
	})
	out := make(map[string]string, len(ms))
	used := make(map[string]bool, len(ms))
	// Plain names first, so a backup whose own name looks like another's
	// suffixed one cannot take it away.
	var later []*vault.Manifest
	for _, m := range sorted {
		base := backupDirBase(m)
		if !used[base] {
			used[base] = true
			out[m.ID] = base
			continue
		}
		later = append(later, m)
	}
	for _, m := range later {
		base := backupDirBase(m)
		_, random, _ := strings.Cut(m.ID, "-")
		name := base + "-" + random
		if used[name] {
			name = base + "-" + m.ID
		}
		for i := 2; used[name]; i++ {
			name = fmt.Sprintf("%s-%s-%d", base, m.ID, i)
		}
		used[name] = true
		out[m.ID] = name
	}
	return out
}

// maxBackupLabel bounds the name part of a backup directory, so that the
// time, the name and the longest collision suffix ("-", the id, "-" and a
// counter) fit in a file name.
const maxBackupLabel = maxNameLen - len(vaultTimeLayout) - 1 - len("-20060102T150405Z-01234567") - len("-1000000000")

// backupDirBase is a backup's directory name before collisions are
// resolved.
func backupDirBase(m *vault.Manifest) string {
	t := m.Started.UTC().Format(vaultTimeLayout)
	if label := sanitizeLabel(m.Name); label != "" {
		return t + "-" + label
	}
	return t
}

// sanitizeLabel makes a backup's name usable in a file name: invalid
// UTF-8, "/", backslash, NUL and other control characters become "_",
// surrounding spaces are dropped, and it is cut to maxBackupLabel bytes (at
// a character boundary).
func sanitizeLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r == utf8.RuneError || r == '/' || r == '\\' || unicode.IsControl(r) {
			r = '_'
		}
		if b.Len()+utf8.RuneLen(r) > maxBackupLabel {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// backupState is one backup as the mount shows it: its manifest and, once
// read, its tree.
type backupState struct {
	m *vault.Manifest

	mu      sync.Mutex
	tree    *treeIndex
	loading *treeCall
}

type treeCall struct {
	done chan struct{}
	tree *treeIndex
	err  error
}

// newBackupState makes the state of m, taking over the tree of old when it
// is the same tree.
func newBackupState(m *vault.Manifest, old *backupState) *backupState {
	st := &backupState{m: m}
	if old != nil && old.m.Tree == m.Tree {
		old.mu.Lock()
		st.tree = old.tree
		old.mu.Unlock()
	}
	return st
}

// index returns the backup's tree, reading it on first use. Concurrent
// callers share one read, which runs on the mount's context; a failed read
// is tried again by the next caller.
func (st *backupState) index(ctx context.Context, f *vaultFS) (*treeIndex, error) {
	st.mu.Lock()
	if st.tree != nil {
		ix := st.tree
		st.mu.Unlock()
		return ix, nil
	}
	call := st.loading
	if call == nil {
		call = &treeCall{done: make(chan struct{})}
		st.loading = call
		go func() {
			t, err := f.v.Tree(f.bg, st.m)
			var ix *treeIndex
			if err == nil {
				ix = newTreeIndex(t)
			}
			st.mu.Lock()
			st.tree, st.loading = ix, nil
			st.mu.Unlock()
			call.tree, call.err = ix, err
			close(call.done)
		}()
	}
	st.mu.Unlock()
	select {
	case <-call.done:
		return call.tree, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
