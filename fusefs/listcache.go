package fusefs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// maxNameLen is the longest file name the kernel passes through FUSE.
// Objects with a longer last component are left out of listings.
const maxNameLen = 255

// entry is one name in a directory listing: an object or a sub-directory.
// The JSON names are short because a listing of a large directory is
// stored as one record.
type entry struct {
	Name    string    `json:"n"`
	Dir     bool      `json:"d,omitempty"`
	Size    int64     `json:"s,omitempty"`
	ModTime time.Time `json:"m,omitzero"`
	ETag    string    `json:"e,omitempty"`
	SHA256  string    `json:"h,omitempty"`
	// pending marks a name that exists only in the mount (a file not yet
	// uploaded, a directory only made with mkdir): it has no attributes.
	pending bool
}

func entryFromInfo(name string, info remote.ObjectInfo) entry {
	return entry{Name: name, Size: info.Size, ModTime: info.ModTime, ETag: info.ETag, SHA256: info.SHA256}
}

func (e entry) info(key string) remote.ObjectInfo {
	return remote.ObjectInfo{Key: key, Size: e.Size, ModTime: e.ModTime, ETag: e.ETag, SHA256: e.SHA256}
}

// listing is an immutable snapshot of one directory: its entries sorted by
// name, names unique. Changes make a new listing (with), so a reader holds
// a consistent snapshot without a lock.
type listing struct {
	fetched time.Time // when the store listing it comes from was started
	entries []entry
}

// find returns the entry called name.
func (l *listing) find(name string) (entry, bool) {
	i, ok := slices.BinarySearchFunc(l.entries, name, func(e entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return entry{}, false
	}
	return l.entries[i], true
}

// with returns a copy of l in which name is e, or is absent when e is nil.
func (l *listing) with(name string, e *entry) *listing {
	i, ok := slices.BinarySearchFunc(l.entries, name, func(e entry, n string) int { return strings.Compare(e.Name, n) })
	out := &listing{fetched: l.fetched}
	switch {
	case e == nil && !ok:
		return l
	case e == nil:
		out.entries = slices.Concat(l.entries[:i], l.entries[i+1:])
	case ok:
		out.entries = slices.Clone(l.entries)
		out.entries[i] = *e
	default:
		out.entries = slices.Concat(l.entries[:i], []entry{*e}, l.entries[i:])
	}
	return out
}

// validName reports whether name can be a file name in the mount: a valid
// key component that the kernel accepts.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= maxNameLen &&
		utf8.ValidString(name) && !strings.ContainsAny(name, "/\\\x00")
}

// collector builds a listing of the directory prefix from a store's
// one-level listing (addDir, addObject) or its recursive List (addObject
// with deeper keys). Names that cannot be shown are dropped; when an object
// and a sub-directory share a name, the directory wins.
type collector struct {
	prefix  string
	entries []entry
	lastDir string // the last sub-directory added from a deep key
	dropped int
}

func (c *collector) addDir(name string) {
	if !validName(name) {
		c.dropped++
		return
	}
	c.entries = append(c.entries, entry{Name: name, Dir: true})
}

// addObject adds an object whose key starts with c.prefix.
func (c *collector) addObject(info remote.ObjectInfo) {
	rest, ok := strings.CutPrefix(info.Key, c.prefix)
	if !ok || rest == "" || info.SkipReason != "" {
		c.dropped++
		return
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		// A key below a sub-directory (recursive List): the keys under one
		// sub-directory are contiguous in key order.
		if dir := rest[:i]; dir != c.lastDir {
			c.lastDir = dir
			c.addDir(dir)
		}
		return
	}
	if !validName(rest) {
		c.dropped++
		return
	}
	c.entries = append(c.entries, entryFromInfo(rest, info))
}

// listing sorts the entries by name and removes duplicates, keeping a
// directory over an object of the same name.
func (c *collector) listing(fetched time.Time) *listing {
	slices.SortStableFunc(c.entries, func(a, b entry) int {
		if n := strings.Compare(a.Name, b.Name); n != 0 {
			return n
		}
		switch {
		case a.Dir == b.Dir:
			return 0
		case a.Dir:
			return -1
		}
		return 1
	})
	c.entries = slices.CompactFunc(c.entries, func(a, b entry) bool {
		if a.Name == b.Name {
			c.dropped++
			return true
		}
		return false
	})
	return &listing{fetched: fetched, entries: c.entries}
}

// record is how a listing is kept in the state database.
type record struct {
	Version int       `json:"v"`
	Fetched time.Time `json:"fetched"`
	Entries []entry   `json:"entries"`
}

const recordVersion = 1

// decodeRecord reads a stored listing. A record that does not hold a
// sorted list of unique, valid names is refused: the caller lists the
// store again.
func decodeRecord(raw []byte) (*listing, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode listing: %w", err)
	}
	if r.Version != recordVersion {
		return nil, fmt.Errorf("decode listing: version %d, want %d", r.Version, recordVersion)
	}
	for i, e := range r.Entries {
		if !validName(e.Name) {
			return nil, fmt.Errorf("decode listing: entry %d has an invalid name %q", i, e.Name)
		}
		if i > 0 && r.Entries[i-1].Name >= e.Name {
			return nil, fmt.Errorf("decode listing: entry %d (%q) is out of order or repeated", i, e.Name)
		}
		if e.Size < 0 {
			return nil, fmt.Errorf("decode listing: entry %d (%q) has a negative size", i, e.Name)
		}
	}
	if r.Entries == nil {
		r.Entries = []entry{}
	}
	return &listing{fetched: r.Fetched, entries: r.Entries}, nil
}

func encodeRecord(l *listing) record {
	return record{Version: recordVersion, Fetched: l.fetched, Entries: l.entries}
}

// listCache caches directory listings of a store for ttl: in memory (at
// most maxDirs directories) and, with a database, persistently. Keys of
// directories are "" for the root and otherwise end in "/".
type listCache struct {
	store   remote.Store
	ttl     time.Duration
	db      *state.DB // nil: memory only
	ns      string    // record namespace in db
	log     *slog.Logger
	bg      context.Context // fetches run on it, so one interrupted caller does not fail the others
	maxDirs int
	now     func() time.Time

	mu       sync.Mutex
	dirs     map[string]*cachedDir
	inflight map[string]*fetchCall
}

type cachedDir struct {
	l     *listing
	dirty bool      // changed through the mount since it was stored in db
	used  time.Time // for eviction
}

// fetchCall is one store listing in progress; callers for the same
// directory wait for it. Changes made through the mount while it runs are
// kept in overrides and applied to its result.
type fetchCall struct {
	done      chan struct{}
	l         *listing
	err       error
	overrides []override
}

type override struct {
	name string
	e    *entry // nil: removed
}

func newListCache(store remote.Store, ttl time.Duration, db *state.DB, ns string, log *slog.Logger, bg context.Context) *listCache {
	return &listCache{
		store: store, ttl: ttl, db: db, ns: ns, log: log, bg: bg,
		maxDirs:  4096,
		now:      time.Now,
		dirs:     make(map[string]*cachedDir),
		inflight: make(map[string]*fetchCall),
	}
}

func recordKey(dir string) string { return "/" + dir }

func (c *listCache) fresh(l *listing) bool {
	return c.now().Sub(l.fetched) < c.ttl
}

// get returns the listing of dir: the cached one while it is fresh, else
// one fetched from the store. When the store cannot be reached (a
// retryable error) and an expired listing is known, that one is served.
func (c *listCache) get(ctx context.Context, dir string) (*listing, error) {
	c.mu.Lock()
	cd := c.dirs[dir]
	if cd == nil {
		cd = c.loadLocked(dir)
	}
	var stale *listing
	if cd != nil {
		cd.used = c.now()
		l := cd.l
		if c.fresh(l) {
			c.mu.Unlock()
			return l, nil
		}
		stale = l
	}
	call := c.inflight[dir]
	if call == nil {
		call = &fetchCall{done: make(chan struct{})}
		c.inflight[dir] = call
		go c.fetch(dir, call)
	}
	c.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("list %s: %w", printableDir(dir), ctx.Err())
	}
	if call.err != nil {
		if stale != nil && remote.IsRetryable(call.err) {
			c.log.Warn("listing failed; serving the cached one", slog.String("dir", printableDir(dir)),
				slog.Time("fetched", stale.fetched), slog.Any("err", call.err))
			return stale, nil
		}
		return nil, call.err
	}
	return call.l, nil
}

// loadLocked reads dir's stored listing into memory, or returns nil.
func (c *listCache) loadLocked(dir string) *cachedDir {
	if c.db == nil {
		return nil
	}
	var raw json.RawMessage
	found, err := c.db.GetRecord(c.ns, recordKey(dir), &raw)
	if err != nil || !found {
		if err != nil {
			c.log.Warn("read cached listing", slog.String("dir", printableDir(dir)), slog.Any("err", err))
		}
		return nil
	}
	l, err := decodeRecord(raw)
	if err != nil {
		c.log.Warn("ignoring a cached listing", slog.String("dir", printableDir(dir)), slog.Any("err", err))
		return nil
	}
	cd := &cachedDir{l: l, used: c.now()}
	c.insertLocked(dir, cd)
	return cd
}

// fetch lists dir from the store, installs the result and wakes the
// callers waiting on call.
func (c *listCache) fetch(dir string, call *fetchCall) {
	start := c.now()
	l, err := c.listStore(c.bg, dir, start)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, dir)
	if err == nil {
		for _, o := range call.overrides {
			l = l.with(o.name, o.e)
		}
		cd := &cachedDir{l: l, used: c.now()}
		c.insertLocked(dir, cd)
		c.storeLocked(dir, cd)
	}
	call.l, call.err = l, err
	close(call.done)
}

// listStore lists one level of dir from the store: with ListDir when the
// store is a remote.DirLister, else by filtering a recursive List.
func (c *listCache) listStore(ctx context.Context, dir string, fetched time.Time) (*listing, error) {
	col := collector{prefix: dir}
	var err error
	if dl, ok := c.store.(remote.DirLister); ok {
		err = dl.ListDir(ctx, dir, func(de remote.DirEntry) error {
			if de.Dir {
				name, _ := strings.CutSuffix(strings.TrimPrefix(de.Info.Key, dir), "/")
				if de.Info.SkipReason != "" {
					col.dropped++
					return nil
				}
				col.addDir(name)
				return nil
			}
			col.addObject(de.Info)
			return nil
		})
	} else {
		err = c.store.List(ctx, dir, func(info remote.ObjectInfo) error {
			col.addObject(info)
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", printableDir(dir), err)
	}
	l := col.listing(fetched)
	if col.dropped > 0 {
		c.log.Debug("listing left out names that cannot be shown", slog.String("dir", printableDir(dir)),
			slog.Int("count", col.dropped))
	}
	return l, nil
}

// insertLocked keeps cd for dir, evicting the least recently used
// directory when the cache is full.
func (c *listCache) insertLocked(dir string, cd *cachedDir) {
	c.dirs[dir] = cd
	if len(c.dirs) <= c.maxDirs {
		return
	}
	var oldest string
	var oldestUsed time.Time
	first := true
	for d, x := range c.dirs {
		if d == dir {
			continue
		}
		if first || x.used.Before(oldestUsed) {
			oldest, oldestUsed, first = d, x.used, false
		}
	}
	if !first {
		if x := c.dirs[oldest]; x.dirty {
			c.storeLocked(oldest, x)
		}
		delete(c.dirs, oldest)
	}
}

// storeLocked writes cd to the database.
func (c *listCache) storeLocked(dir string, cd *cachedDir) {
	if c.db == nil {
		return
	}
	if err := c.db.PutRecord(c.ns, recordKey(dir), encodeRecord(cd.l)); err != nil {
		c.log.Warn("store listing", slog.String("dir", printableDir(dir)), slog.Any("err", err))
		return
	}
	cd.dirty = false
}

// dropStoredLocked removes dir's stored listing, which a change made
// through the mount has made stale.
func (c *listCache) dropStoredLocked(dir string) {
	if c.db == nil {
		return
	}
	if err := c.db.DeleteRecord(c.ns, recordKey(dir)); err != nil {
		c.log.Warn("drop stored listing", slog.String("dir", printableDir(dir)), slog.Any("err", err))
	}
}

// set records a change made through the mount: name in dir is now e, or
// is gone when e is nil.
func (c *listCache) set(dir, name string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cd := c.dirs[dir]; cd != nil {
		cd.l = cd.l.with(name, e)
		if !cd.dirty {
			cd.dirty = true
			c.dropStoredLocked(dir)
		}
	} else {
		c.dropStoredLocked(dir)
	}
	if call := c.inflight[dir]; call != nil {
		call.overrides = append(call.overrides, override{name: name, e: e})
	}
}

// ensureDir records that dir has the sub-directory name, when the cached
// listing of dir does not show it yet.
func (c *listCache) ensureDir(dir, name string) {
	c.mu.Lock()
	cd := c.dirs[dir]
	known := false
	if cd != nil {
		e, ok := cd.l.find(name)
		known = ok && e.Dir
	}
	c.mu.Unlock()
	if !known {
		c.set(dir, name, &entry{Name: name, Dir: true})
	}
}

// invalidate forgets dir's listing, in memory and stored, so that its next
// use lists the store.
func (c *listCache) invalidate(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.dirs, dir)
	c.dropStoredLocked(dir)
}

// flush stores every listing changed through the mount. It is called at
// unmount.
func (c *listCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for dir, cd := range c.dirs {
		if cd.dirty {
			c.storeLocked(dir, cd)
		}
	}
}

// printableDir names a directory key in messages.
func printableDir(dir string) string {
	if dir == "" {
		return "/"
	}
	return remote.PrintableKey(dir)
}

// errStopList ends a listing early.
var errStopList = errors.New("stop listing")

// seedEmpty caches an empty listing for dir, a directory just made through
// the mount, so that looking up names in it asks the store nothing.
func (c *listCache) seedEmpty(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.dirs[dir]; ok {
		return
	}
	c.insertLocked(dir, &cachedDir{l: &listing{fetched: c.now(), entries: []entry{}}, used: c.now()})
}
