package fusefs

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/internal/atomicfile"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/vault"
)

// Fetching chunks.
const (
	// vaultFetchers bounds the chunk GETs a mount runs at once.
	vaultFetchers = 8
	// vaultMaxPrefetch bounds the read-ahead fetches waiting or running.
	vaultMaxPrefetch = 48
	// vaultFetchAttempts is how often a chunk GET is tried when it fails
	// transiently (remote.IsRetryable).
	vaultFetchAttempts = 3
	vaultRetryDelay    = 200 * time.Millisecond
)

// errChunkMissing: a chunk the tree names is not in the vault. A read of
// it is EIO, not ENOENT: the file exists, its data is lost.
var errChunkMissing = errors.New("chunk missing from the vault")

// chunkCache serves a vault's chunks: from memory, from the disk cache, or
// fetched whole from the store and checked (vault.ChunkCheck). One
// fetch per chunk runs at a time however many readers want it, on the
// mount's context, so a reader interrupted by a signal does not cancel it
// for the others (and finds the chunk cached when it retries).
type chunkCache struct {
	store remote.Store
	bg    context.Context
	log   *slog.Logger
	mem   *memChunkCache
	disk  *diskChunkCache // nil: memory only

	fetchers   chan struct{} // a slot per running store GET
	prefetches atomic.Int64  // read-ahead fetches not yet done

	mu       sync.Mutex
	inflight map[string]*chunkCall
	wg       sync.WaitGroup // fetches and disk writes

	// Counters, for tests and logs.
	memHits    atomic.Int64
	storeReads atomic.Int64
	diskHits   atomic.Int64
}

type chunkCall struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(store remote.Store, bg context.Context, memBytes int64, disk *diskChunkCache, log *slog.Logger) *chunkCache {
	return &chunkCache{
		store:    store,
		bg:       bg,
		log:      log,
		mem:      newMemChunkCache(memBytes),
		disk:     disk,
		fetchers: make(chan struct{}, vaultFetchers),
		inflight: make(map[string]*chunkCall),
	}
}

// How chunks reach the disk cache (see chunkCache.start).
type diskPolicy int

const (
	diskSkip diskPolicy = iota // not stored
	diskTry                    // stored unless the writer is behind
	diskKeep                   // stored
)

// get returns the content of c. ctx ends the wait, not the fetch.
func (cc *chunkCache) get(ctx context.Context, c vault.Chunk) ([]byte, error) {
	if data := cc.mem.get(c.SHA256); data != nil {
		cc.memHits.Add(1)
		return data, nil
	}
	call, _ := cc.start(c, false, diskKeep)
	select {
	case <-call.done:
		return call.data, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// prefetch starts fetching chunks, the next chunks of a file of fileSize
// bytes, except those cached or on their way, while fewer than
// vaultMaxPrefetch read-ahead fetches wait. Chunks that lie one after the
// other in the same pack are fetched together, with one ranged GET of up
// to vaultRunBytes: a server serves one long read for much less than
// many short ones.
func (cc *chunkCache) prefetch(chunks []vault.Chunk, fileSize int64) {
	if cc.bg.Err() != nil {
		return
	}
	policy := diskSkip
	if cc.disk != nil && fileSize <= cc.disk.max/streamFraction {
		policy = diskTry
	}
	var run []vault.Chunk
	var runBytes int64
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			cc.start(run[0], true, policy)
		default:
			cc.startRun(run, policy)
		}
		run, runBytes = nil, 0
	}
	for _, c := range chunks {
		if cc.prefetches.Load()+int64(len(run)) >= vaultMaxPrefetch {
			break
		}
		if cc.mem.has(c.SHA256) || cc.isInflight(c.SHA256) {
			flush()
			continue
		}
		if len(run) > 0 {
			last := run[len(run)-1]
			if !continuesRun(last, c, runBytes) {
				flush()
			}
		}
		run = append(run, c)
		runBytes += c.Size
	}
	flush()
}

// vaultRunBytes bounds the bytes of one ranged GET of adjacent chunks.
const vaultRunBytes = 16 << 20

// continuesRun reports whether c can join a run of runBytes bytes that
// ends with last: it follows last in the same pack, and the run stays
// within vaultRunBytes.
func continuesRun(last, c vault.Chunk, runBytes int64) bool {
	return c.Pack == last.Pack && c.Offset == last.Offset+last.Size && runBytes+c.Size <= vaultRunBytes
}

// openRun starts the ranged GET of the chunks first to last, adjacent in
// one pack.
func openRun(ctx context.Context, store remote.Store, first, last vault.Chunk) (io.ReadCloser, error) {
	return store.Open(ctx, vaultChunkKey(first), first.Offset, last.Offset+last.Size-first.Offset)
}

func (cc *chunkCache) isInflight(sum string) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	_, ok := cc.inflight[sum]
	return ok
}

// startRun fetches run — chunks adjacent in one pack, in order — with one
// ranged GET, handing each chunk to its waiters as soon as it is read and
// checked. Chunks another fetch has meanwhile taken on are read but left
// to it. After a failed read the chunks not yet delivered are fetched one
// by one, with retries, as start would.
func (cc *chunkCache) startRun(run []vault.Chunk, policy diskPolicy) {
	calls := make([]*chunkCall, len(run)) // nil: someone else's
	cc.mu.Lock()
	n := 0
	for i, c := range run {
		if _, ok := cc.inflight[c.SHA256]; ok || cc.mem.has(c.SHA256) {
			continue
		}
		calls[i] = &chunkCall{done: make(chan struct{})}
		cc.inflight[c.SHA256] = calls[i]
		n++
	}
	cc.mu.Unlock()
	if n == 0 {
		return
	}
	cc.prefetches.Add(int64(n))
	cc.wg.Go(func() {
		deliver := func(i int, data []byte, fromStore bool, err error) {
			call := calls[i]
			calls[i] = nil
			cc.prefetches.Add(-1)
			cc.finish(run[i], call, data, fromStore, err, true, policy)
		}
		left := 0 // chunks to fetch: not in the disk cache
		for i, c := range run {
			if calls[i] == nil {
				continue
			}
			if cc.disk != nil {
				if data := cc.disk.get(c); data != nil {
					cc.diskHits.Add(1)
					deliver(i, data, false, nil)
					continue
				}
			}
			left++
		}
		if left > 0 {
			cc.readRun(run, calls, deliver)
		}
		// What the run did not deliver (a read failed): one by one.
		for i := range run {
			if calls[i] != nil {
				data, fromStore, err := cc.load(run[i])
				deliver(i, data, fromStore, err)
			}
		}
	})
}

// readRun reads run with one ranged GET and delivers the chunks that have
// a call, in order, until the end or the first failure.
func (cc *chunkCache) readRun(run []vault.Chunk, calls []*chunkCall, deliver func(int, []byte, bool, error)) {
	select {
	case cc.fetchers <- struct{}{}:
	case <-cc.bg.Done():
		return
	}
	defer func() { <-cc.fetchers }()
	first, last := run[0], run[len(run)-1]
	rc, err := openRun(cc.bg, cc.store, first, last)
	if err != nil {
		return
	}
	defer rc.Close()
	cc.storeReads.Add(1)
	for i, c := range run {
		data, err := readChunkFrom(rc, c)
		if err != nil {
			return
		}
		if calls[i] != nil {
			deliver(i, data, true, nil)
		}
	}
}

// streamFraction: the chunks read ahead in a file larger than the disk
// cache's size / streamFraction are not stored there. Reading such a file
// through would push out everything else (a disk image streams through
// the whole cache), and writing it would compete with the read; chunks a
// program asks for itself are stored whatever the file.
const streamFraction = 16

// start returns the fetch of c, starting one when none runs; policy says
// whether a chunk fetched from the store goes to the disk cache.
func (cc *chunkCache) start(c vault.Chunk, prefetch bool, policy diskPolicy) (*chunkCall, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if call, ok := cc.inflight[c.SHA256]; ok {
		return call, false
	}
	call := &chunkCall{done: make(chan struct{})}
	if data := cc.mem.get(c.SHA256); data != nil { // fetched meanwhile
		call.data = data
		close(call.done)
		return call, false
	}
	cc.inflight[c.SHA256] = call
	if prefetch {
		cc.prefetches.Add(1)
	}
	cc.wg.Go(func() {
		if prefetch {
			defer cc.prefetches.Add(-1)
		}
		data, fromStore, err := cc.load(c)
		cc.finish(c, call, data, fromStore, err, prefetch, policy)
	})
	return call, true
}

// finish ends the fetch of c: the chunk goes to the memory cache, its
// waiters get it (or err), and one fetched from the store goes to the
// disk cache as policy says.
func (cc *chunkCache) finish(c vault.Chunk, call *chunkCall, data []byte, fromStore bool, err error, prefetch bool, policy diskPolicy) {
	if err == nil {
		cc.mem.add(c.SHA256, data)
	}
	cc.mu.Lock()
	delete(cc.inflight, c.SHA256)
	cc.mu.Unlock()
	call.data, call.err = data, err
	close(call.done)
	switch {
	case err != nil:
		if prefetch && cc.bg.Err() == nil {
			cc.log.Warn("read-ahead of a chunk failed", slog.String("chunk", c.SHA256), slog.Any("err", err))
		}
	case fromStore && cc.disk != nil && policy != diskSkip:
		cc.disk.offer(c.SHA256, data, policy == diskKeep)
	}
}

// load reads c from the disk cache or, failing that, the store.
func (cc *chunkCache) load(c vault.Chunk) (data []byte, fromStore bool, err error) {
	if cc.disk != nil {
		if data := cc.disk.get(c); data != nil {
			cc.diskHits.Add(1)
			return data, false, nil
		}
	}
	select {
	case cc.fetchers <- struct{}{}:
	case <-cc.bg.Done():
		return nil, false, cc.bg.Err()
	}
	defer func() { <-cc.fetchers }()
	for attempt := range vaultFetchAttempts {
		if attempt > 0 {
			select {
			case <-cc.bg.Done():
				return nil, false, cc.bg.Err()
			case <-time.After(time.Duration(attempt) * vaultRetryDelay):
			}
		}
		data, err = cc.fetch(c)
		if err == nil || !remote.IsRetryable(err) {
			break
		}
	}
	return data, true, err
}

// fetch GETs c from its pack (a ranged read of c.Size bytes at c.Offset)
// and checks it (vault.ChunkCheck).
func (cc *chunkCache) fetch(c vault.Chunk) ([]byte, error) {
	cc.storeReads.Add(1)
	if c.Size <= 0 || c.Size > vault.MaxChunkSize || c.Offset < 0 || !vault.ValidSHA256(c.Pack) {
		return nil, fmt.Errorf("chunk %s: %w: size %d, pack %q, offset %d", c.SHA256, vault.ErrFormat, c.Size, c.Pack, c.Offset)
	}
	key := vaultChunkKey(c)
	rc, err := cc.store.Open(cc.bg, key, c.Offset, c.Size)
	if errors.Is(err, remote.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w (%v)", key, errChunkMissing, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	return readChunkFrom(rc, c)
}

// hashPiece is how much of a chunk readChunkFrom reads before hashing it,
// while the bytes are still in the CPU's cache.
const hashPiece = 64 << 10

// readChunkFrom reads c's bytes from r, positioned at them, and checks
// them (vault.ChunkCheck).
func readChunkFrom(r io.Reader, c vault.Chunk) ([]byte, error) {
	key := vaultChunkKey(c)
	data := make([]byte, c.Size)
	h := vault.NewChunkCheck(c)
	var n int
	var err error
	for n < len(data) && err == nil {
		var k int
		k, err = io.ReadFull(r, data[n:min(n+hashPiece, len(data))])
		h.Write(data[n : n+k])
		n += k
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return nil, fmt.Errorf("read %s: %w: %d bytes stored at offset %d, the tree says %d", key, remote.ErrChecksum, n, c.Offset, c.Size)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if err := h.Verify(); err != nil {
		return nil, fmt.Errorf("read %s at offset %d: %w", key, c.Offset, err)
	}
	return data, nil
}

// close waits for the fetches and disk writes (the mount's context is
// canceled by then) and releases the disk cache.
func (cc *chunkCache) close() {
	cc.wg.Wait()
	if cc.disk != nil {
		cc.disk.close()
	}
}

// drop empties the memory cache (tests and benchmarks).
func (cc *chunkCache) drop() {
	cc.mem.mu.Lock()
	defer cc.mem.mu.Unlock()
	cc.mem.lru.Init()
	clear(cc.mem.idx)
	cc.mem.total = 0
}

// memChunkCache keeps chunks in memory, least recently used first out,
// up to a total size. A chunk larger than the whole cache is not kept.
type memChunkCache struct {
	max   int64
	mu    sync.Mutex
	lru   *list.List // of *memChunk, most recently used first
	idx   map[string]*list.Element
	total int64
}

type memChunk struct {
	sum  string
	data []byte
}

func newMemChunkCache(max int64) *memChunkCache {
	return &memChunkCache{max: max, lru: list.New(), idx: make(map[string]*list.Element)}
}

func (m *memChunkCache) get(sum string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.idx[sum]
	if !ok {
		return nil
	}
	m.lru.MoveToFront(el)
	return el.Value.(*memChunk).data
}

func (m *memChunkCache) has(sum string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.idx[sum]
	return ok
}

func (m *memChunkCache) add(sum string, data []byte) {
	size := int64(len(data))
	if size > m.max {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.idx[sum]; ok {
		m.lru.MoveToFront(el)
		return
	}
	m.idx[sum] = m.lru.PushFront(&memChunk{sum: sum, data: data})
	m.total += size
	for m.total > m.max {
		el := m.lru.Back()
		mc := el.Value.(*memChunk)
		m.lru.Remove(el)
		delete(m.idx, mc.sum)
		m.total -= int64(len(mc.data))
	}
}

// diskChunkCache keeps chunks as files dir/<xx>/<sha256>, up to a total
// size. The least recently used go first; a file's mtime is the time of
// its last use, so the order survives a remount. Each file is checked
// against its name when read; a damaged one is removed. One mount at a
// time uses a directory (a lock file, flock), so their totals stay true.
type diskChunkCache struct {
	dir  string
	max  int64
	log  *slog.Logger
	lock *os.File

	// Chunks offered for storing wait here for the one writer, so that
	// storing them does not hold up a fetch. Offers that may be dropped
	// are when the writer lags: the cache is an optimization and must not
	// compete with the reads it serves.
	queue   chan diskWrite
	pending atomic.Int64 // bytes in the queue
	writing sync.WaitGroup
	dropped atomic.Int64

	mu    sync.Mutex
	lru   *list.List // of *diskChunk, most recently used first
	idx   map[string]*list.Element
	total int64
}

type diskChunk struct {
	sum  string
	size int64
}

type diskWrite struct {
	sum  string
	data []byte
}

// The disk cache's queue: how many chunks, and how many bytes of chunks
// that may be dropped, wait for its writer.
const (
	diskWriteQueue   = 256
	diskWritePending = 32 << 20
)

const diskCacheLock = ".lock"

// openDiskChunkCache opens (or creates) the cache in dir, indexing the
// chunks it holds and removing leftovers of writes that did not finish.
func openDiskChunkCache(dir string, max int64, log *slog.Logger) (*diskChunkCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("chunk cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, diskCacheLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("chunk cache: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("chunk cache %s: another mount of the vault uses it", dir)
		}
		return nil, fmt.Errorf("chunk cache %s: lock: %w", dir, err)
	}
	d := &diskChunkCache{dir: dir, max: max, log: log, lock: lock, lru: list.New(), idx: make(map[string]*list.Element),
		queue: make(chan diskWrite, diskWriteQueue)}
	type found struct {
		sum   string
		size  int64
		mtime time.Time
	}
	var files []found
	err = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if p != dir && filepath.Dir(p) != dir {
				return filepath.SkipDir // nothing of ours is deeper
			}
			return nil
		}
		name := de.Name()
		if name == diskCacheLock && filepath.Dir(p) == dir {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		sub := filepath.Base(filepath.Dir(p))
		if !de.Type().IsRegular() || !vault.ValidSHA256(name) || sub != name[:2] {
			// A temporary file of an unfinished write, or a stranger.
			if err := os.Remove(p); err != nil {
				log.Debug("chunk cache: remove leftover", slog.String("file", p), slog.Any("err", err))
			}
			return nil
		}
		files = append(files, found{name, fi.Size(), fi.ModTime()})
		return nil
	})
	if err != nil {
		d.close()
		return nil, fmt.Errorf("chunk cache %s: %w", dir, err)
	}
	slices.SortFunc(files, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	for _, f := range files { // oldest first, so the newest end up in front
		d.idx[f.sum] = d.lru.PushFront(&diskChunk{sum: f.sum, size: f.size})
		d.total += f.size
	}
	d.mu.Lock()
	d.evictLocked()
	d.mu.Unlock()
	d.writing.Go(func() {
		for w := range d.queue {
			d.put(w.sum, w.data)
			d.pending.Add(-int64(len(w.data)))
		}
	})
	return d, nil
}

// offer hands a chunk (already checked) to the background writer. With
// wait it waits for room in the queue; without, it drops the chunk when
// the writer is behind (diskWritePending bytes wait already, or the queue
// is full). It reports whether the chunk was queued, and must
// not be called after close.
func (d *diskChunkCache) offer(sum string, data []byte, wait bool) bool {
	size := int64(len(data))
	if wait {
		d.pending.Add(size)
		d.queue <- diskWrite{sum, data}
		return true
	}
	if d.pending.Add(size) <= diskWritePending {
		select {
		case d.queue <- diskWrite{sum, data}:
			return true
		default:
		}
	}
	d.pending.Add(-size)
	d.dropped.Add(1)
	return false
}

func (d *diskChunkCache) path(sum string) string {
	return filepath.Join(d.dir, sum[:2], sum)
}

// get returns c's content when the cache holds it whole and unaltered.
func (d *diskChunkCache) get(c vault.Chunk) []byte {
	d.mu.Lock()
	el, ok := d.idx[c.SHA256]
	if ok {
		d.lru.MoveToFront(el)
	}
	d.mu.Unlock()
	if !ok {
		return nil
	}
	p := d.path(c.SHA256)
	data, err := readFileLimit(p, c.Size)
	if err == nil {
		if vault.CheckChunk(c, data) == nil {
			now := time.Now()
			if err := os.Chtimes(p, now, now); err != nil {
				d.log.Debug("chunk cache: record use", slog.String("file", p), slog.Any("err", err))
			}
			return data
		}
		err = errors.New("content does not match its name")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("chunk cache: damaged file removed; the chunk is read from the vault", slog.String("file", p), slog.Any("err", err))
	}
	d.remove(c.SHA256)
	return nil
}

// readFileLimit reads a file of at most limit bytes (one more tells it is
// too long).
func readFileLimit(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	buf.Grow(int(limit))
	if _, err := io.Copy(&buf, io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// put stores a chunk (already checked) unless it is there, then removes
// the least recently used chunks beyond the limit. Failures are logged:
// the cache is an optimization.
func (d *diskChunkCache) put(sum string, data []byte) {
	size := int64(len(data))
	if size > d.max {
		return
	}
	d.mu.Lock()
	_, ok := d.idx[sum]
	d.mu.Unlock()
	if ok {
		return
	}
	if err := d.write(sum, data); err != nil {
		d.log.Warn("chunk cache: write", slog.String("chunk", sum), slog.Any("err", err))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.idx[sum]; ok {
		return
	}
	d.idx[sum] = d.lru.PushFront(&diskChunk{sum: sum, size: size})
	d.total += size
	d.evictLocked()
}

// write stores data at its path, whole or not at all, with the time of use
// (from the clock get uses: the file system's own mtime may lag it by a
// tick) as its mtime.
func (d *diskChunkCache) write(sum string, data []byte) error {
	return atomicfile.WriteFile(d.path(sum), data, time.Now())
}

func (d *diskChunkCache) evictLocked() {
	for d.total > d.max {
		el := d.lru.Back()
		dc := el.Value.(*diskChunk)
		d.lru.Remove(el)
		delete(d.idx, dc.sum)
		d.total -= dc.size
		if err := os.Remove(d.path(dc.sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("chunk cache: evict", slog.String("chunk", dc.sum), slog.Any("err", err))
		}
	}
}

func (d *diskChunkCache) remove(sum string) {
	d.mu.Lock()
	if el, ok := d.idx[sum]; ok {
		d.lru.Remove(el)
		delete(d.idx, sum)
		d.total -= el.Value.(*diskChunk).size
	}
	d.mu.Unlock()
	if err := os.Remove(d.path(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("chunk cache: remove", slog.String("chunk", sum), slog.Any("err", err))
	}
}

// size returns the total size of the chunks held (tests).
func (d *diskChunkCache) size() (int64, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total, len(d.idx)
}

// close stores what was offered and releases the directory.
func (d *diskChunkCache) close() {
	if d.queue != nil {
		close(d.queue)
		d.writing.Wait()
		d.queue = nil
	}
	if d.lock != nil {
		d.lock.Close() // releases the flock
		d.lock = nil
	}
}
