package vault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/internal/atomicfile"
	"github.com/ferrysync/ferry/remote"
)

// packIndex knows the packs of a vault and where each chunk is: the union
// of the packs' trailers, plus the chunks claimed by the running backup
// that are not stored yet. It is safe for concurrent use.
type packIndex struct {
	mu     sync.Mutex
	packs  map[[32]byte]int32 // pack name → position in list
	list   []packInfo
	chunks map[[32]byte]chunkLoc
}

// packInfo is one pack found in the vault's listing (or stored by the
// running operation).
type packInfo struct {
	sum   string
	size  int64
	mtime time.Time
	// chunks is the number of chunks its trailer lists; -1 when the trailer
	// could not be read.
	chunks int
}

// chunkLoc is where a chunk is: pack is a position in packIndex.list, or
// claimed for a chunk the running backup is storing.
type chunkLoc struct {
	pack   int32
	offset uint32 // < MaxPackSize
	size   uint32 // ≤ MaxChunkSize
}

const claimed = -1

func newPackIndex() *packIndex {
	return &packIndex{packs: make(map[[32]byte]int32), chunks: make(map[[32]byte]chunkLoc)}
}

// addPack records a pack and its chunks. A chunk already located in
// another pack stays there; a claimed one is located here. A pack known
// already is updated: a backup that stores again the chunks of a pack
// whose trailer was damaged writes a pack of the same name (and bytes, so
// it repairs it).
func (x *packIndex) addPack(p packInfo, entries []PackEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := hexKey(p.sum)
	pos, ok := x.packs[k]
	if ok {
		x.list[pos] = p
	} else {
		pos = int32(len(x.list))
		x.list = append(x.list, p)
		x.packs[k] = pos
	}
	for _, e := range entries {
		ck := hexKey(e.SHA256)
		if loc, ok := x.chunks[ck]; ok && loc.pack != claimed {
			continue
		}
		x.chunks[ck] = chunkLoc{pack: pos, offset: uint32(e.Offset), size: uint32(e.Size)}
	}
}

// hasPack reports whether the vault holds the pack named sum.
func (x *packIndex) hasPack(sum string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.packs[hexKey(sum)]
	return ok
}

// trusted reports whether the vault holds the pack named sum and its
// chunks can be relied on: its trailer was read, and no verify on this
// host found it damaged.
func (x *packIndex) trusted(sum string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos, ok := x.packs[hexKey(sum)]
	return ok && x.list[pos].chunks >= 0
}

// claim reports whether the chunk sum is neither in a pack nor claimed,
// and claims it: the caller must then store it.
func (x *packIndex) claim(sum string) bool {
	k := hexKey(sum)
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.chunks[k]; ok {
		return false
	}
	x.chunks[k] = chunkLoc{pack: claimed}
	return true
}

// locate returns where chunk sum is stored: its pack and offset.
func (x *packIndex) locate(sum string) (pack string, offset int64, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	loc, ok := x.chunks[hexKey(sum)]
	if !ok || loc.pack == claimed {
		return "", 0, false
	}
	return x.list[loc.pack].sum, int64(loc.offset), true
}

// packList returns the packs known, in no particular order.
func (x *packIndex) packList() []packInfo {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]packInfo(nil), x.list...)
}

// listPacks lists packs/, calling fn for each pack with its info.
func (v *Vault) listPacks(ctx context.Context, fn func(sum string, oi remote.ObjectInfo) error) error {
	err := v.store.List(ctx, packsDir, func(oi remote.ObjectInfo) error {
		if oi.SkipReason != "" {
			return nil
		}
		sum, ok := parsePackKey(oi.Key)
		if !ok {
			return nil
		}
		return fn(sum, oi)
	})
	if err != nil {
		return fmt.Errorf("list packs of vault %s: %w", v.name, err)
	}
	return nil
}

// indexReaders is how many pack trailers are read from the store at once.
const indexReaders = 8

// loadIndex lists the vault's packs and reads their trailers: from the
// local cache when it has them (packs never change, so a cached trailer is
// never stale), from the store otherwise (one or two ranged reads each,
// several at a time), adding those to the cache. A pack whose trailer is
// damaged is known (hasPack) but its chunks are not: a backup stores them
// again rather than trust it. Cache files of packs gone from the vault are
// removed. onPack, when set, is called with each pack whose trailer was
// read, from several goroutines at once.
func (v *Vault) loadIndex(ctx context.Context, onPack func(packInfo, []PackEntry)) (*packIndex, error) {
	idx := newPackIndex()
	add := func(p packInfo, entries []PackEntry) {
		p.chunks = len(entries)
		idx.addPack(p, entries)
		if onPack != nil {
			onPack(p, entries)
		}
	}
	var fetch []packInfo
	listed := map[string]bool{}
	err := v.listPacks(ctx, func(sum string, oi remote.ObjectInfo) error {
		p := packInfo{sum: sum, size: oi.Size, mtime: oi.ModTime}
		listed[sum] = true
		if v.cache.isDamaged(sum) {
			// Verify found it damaged: known, but none of its chunks
			// is trusted.
			p.chunks = -1
			idx.addPack(p, nil)
			return nil
		}
		if entries, ok := v.cache.get(sum, oi.Size); ok {
			add(p, entries)
			return nil
		}
		fetch = append(fetch, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = forEach(ctx, fetch, indexReaders, func(ctx context.Context, p packInfo) error {
		key := PackKey(p.sum)
		entries, tail, err := readPackIndex(ctx, v.store, key, p.size)
		switch {
		case err == nil:
			v.cache.put(p.sum, tail)
			add(p, entries)
		case errors.Is(err, remote.ErrNotExist):
			// Pruned since the listing.
		case errors.Is(err, ErrFormat), errors.Is(err, remote.ErrChecksum):
			v.log.Warn("pack index unreadable: its chunks are not reused; run ferry backup verify",
				slog.String("vault", v.name), slog.String("pack", key), slog.Any("err", err))
			p.chunks = -1
			idx.addPack(p, nil)
		default:
			return fmt.Errorf("vault %s: read pack index: %w", v.name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.cache.keepOnly(listed)
	return idx, nil
}

// forEach calls fn for every item, n at a time; the first error cancels
// the rest and is returned.
func forEach[T any](ctx context.Context, items []T, n int, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan T)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for it := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := fn(ctx, it); err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, it := range items {
		select {
		case jobs <- it:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// indexCache keeps the tails (trailer and footer) of a vault's packs in a
// local directory, one file per pack: <dir>/<xx>/<pack sha256>. Files are
// written whole (temporary file, rename), so several processes may share
// the directory. A nil *indexCache caches nothing. Failures are logged,
// never returned: the cache only saves reads.
type indexCache struct {
	dir string
	log *slog.Logger
}

func newIndexCache(base, vaultID string, log *slog.Logger) *indexCache {
	if base == "" {
		return nil
	}
	return &indexCache{dir: filepath.Join(base, vaultID), log: log}
}

func (c *indexCache) path(sum string) string { return filepath.Join(c.dir, sum[:2], sum) }

// get returns the entries of the pack sum of size bytes when the cache
// holds its tail and the tail is sound; a damaged file is removed.
func (c *indexCache) get(sum string, size int64) ([]PackEntry, bool) {
	if c == nil {
		return nil, false
	}
	p := c.path(sum)
	tail, err := readFileLimit(p, maxTrailerSize+PackFooterSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err == nil {
		var entries []PackEntry
		if entries, err = DecodePackIndex(tail, size); err == nil {
			return entries, true
		}
	}
	c.log.Warn("pack index cache: damaged file removed", slog.String("file", p), slog.Any("err", err))
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Debug("pack index cache: remove", slog.String("file", p), slog.Any("err", err))
	}
	return nil, false
}

// readFileLimit reads a file of at most limit bytes.
func readFileLimit(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", p, limit)
	}
	buf := make([]byte, fi.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// put stores the tail of pack sum.
func (c *indexCache) put(sum string, tail []byte) {
	if c == nil {
		return
	}
	p := c.path(sum)
	if err := atomicfile.WriteFile(p, tail, time.Time{}); err != nil {
		c.log.Debug("pack index cache: write", slog.String("file", p), slog.Any("err", err))
	}
}

// staleTemp is how old a temporary file of the cache must be before it is
// taken for the leftover of a killed process.
const staleTemp = time.Hour

// keepOnly removes the cached tails of packs not in keep, and leftover
// temporary files.
func (c *indexCache) keepOnly(keep map[string]bool) {
	if c == nil {
		return
	}
	subs, err := os.ReadDir(c.dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Debug("pack index cache: read", slog.String("dir", c.dir), slog.Any("err", err))
		}
		return
	}
	for _, sub := range subs {
		if !sub.IsDir() {
			continue
		}
		dir := filepath.Join(c.dir, sub.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, f := range files {
			name := f.Name()
			switch {
			case ValidSHA256(name) && name[:2] == sub.Name() && keep[name]:
				continue
			case strings.HasSuffix(name, damagedSuffix) && keep[strings.TrimSuffix(name, damagedSuffix)]:
				continue
			case ValidSHA256(name), ValidSHA256(strings.TrimSuffix(name, damagedSuffix)):
			default:
				if fi, err := f.Info(); err != nil || time.Since(fi.ModTime()) < staleTemp {
					continue // another process may be writing it
				}
			}
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				c.log.Debug("pack index cache: remove", slog.String("file", name), slog.Any("err", err))
			}
		}
	}
}

// damagedSuffix marks a pack that verify found damaged: the file
// <sum>.damaged beside its cached tail.
const damagedSuffix = ".damaged"

// markDamaged records that verify found pack sum damaged.
func (c *indexCache) markDamaged(sum string) {
	if c == nil {
		return
	}
	p := c.path(sum) + damagedSuffix
	if err := atomicfile.WriteFile(p, nil, time.Time{}); err != nil {
		c.log.Warn("pack index cache: record a damaged pack", slog.String("file", p), slog.Any("err", err))
	}
}

// isDamaged reports whether verify found pack sum damaged.
func (c *indexCache) isDamaged(sum string) bool {
	if c == nil {
		return false
	}
	_, err := os.Lstat(c.path(sum) + damagedSuffix)
	return err == nil
}

// clearDamaged forgets the damage of pack sum: a backup wrote it anew.
func (c *indexCache) clearDamaged(sum string) {
	if c == nil {
		return
	}
	if err := os.Remove(c.path(sum) + damagedSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Debug("pack index cache: remove", slog.String("file", c.path(sum)+damagedSuffix), slog.Any("err", err))
	}
}

// forget removes the cached tail of a pack (prune deleted it).
func (c *indexCache) forget(sum string) {
	if c == nil {
		return
	}
	if err := os.Remove(c.path(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Debug("pack index cache: remove", slog.String("file", c.path(sum)), slog.Any("err", err))
	}
	c.clearDamaged(sum)
}
