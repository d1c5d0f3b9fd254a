package fusefs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ferrysync/ferry/remote"
)

// skipAhead is how far a read may jump forward on an open reader by
// discarding bytes instead of opening a new ranged read.
const skipAhead = 256 << 10

// fileNode is a regular file: an object in the store, or a file being
// written that is not uploaded yet.
type fileNode struct {
	node

	// upMu serialises uploads of this file with unlink and rename, so an
	// upload never lands at a key the file has left.
	upMu sync.Mutex

	mu        sync.Mutex
	key       string
	info      remote.ObjectInfo // the object as last seen in the store
	infoTime  time.Time         // when info was seen
	inStore   bool              // an object exists at key, as far as the mount knows
	unlinked  bool              // removed from its directory: never uploaded again
	sp        *spool            // the write spool, while writers > 0 or an upload is due
	writers   int               // open handles that may write (and temporary users)
	cacheETag string            // ETag of the content the kernel's page cache holds
}

var (
	_ = (fs.NodeGetattrer)((*fileNode)(nil))
	_ = (fs.NodeSetattrer)((*fileNode)(nil))
	_ = (fs.NodeOpener)((*fileNode)(nil))
	_ = (fs.NodeReader)((*fileNode)(nil))
	_ = (fs.NodeWriter)((*fileNode)(nil))
	_ = (fs.NodeFlusher)((*fileNode)(nil))
	_ = (fs.NodeFsyncer)((*fileNode)(nil))
	_ = (fs.NodeReleaser)((*fileNode)(nil))
)

// spool is a local copy of a file being written. Its data is guarded by
// io (writes, truncation, filling and closing hold it exclusively; reads
// and uploads share it); the other fields by the owning fileNode's mu.
type spool struct {
	io     sync.RWMutex
	f      *os.File
	closed bool

	filled bool      // f holds the file's whole content (downloaded, truncated or new)
	size   int64     // the content's size, once filled
	dirty  bool      // the content or mtime differ from the store's object
	gen    uint64    // bumped on every change, so an upload knows whether it saw the last one
	mtime  time.Time // the mtime to record: the last write, or what setattr set
}

// handle is an open file.
type handle struct {
	n     *fileNode
	write bool // opened for writing: its close uploads

	// ctx carries the handle's ranged reads, which outlive single FUSE
	// requests; Release cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	st     *stream  // the current ranged read, nil when none
	bufs   [][]byte // bytes received from st and not yet passed, from bufOff on
	bufOff int64
	bufLen int64
}

func (f *remoteFS) newHandle(n *fileNode, write bool) *handle {
	ctx, cancel := context.WithCancel(f.bg)
	return &handle{n: n, write: write, ctx: ctx, cancel: cancel}
}

func (f *remoteFS) newSpool() (*spool, error) {
	file, err := os.CreateTemp(f.spoolDir, "spool-*")
	if err != nil {
		return nil, fmt.Errorf("create spool file: %w", err)
	}
	return &spool{f: file}, nil
}

// close discards the spool's file.
func (sp *spool) close() {
	sp.io.Lock()
	defer sp.io.Unlock()
	if sp.closed {
		return
	}
	sp.closed = true
	sp.f.Close()
	os.Remove(sp.f.Name())
}

// seen records e, the file's entry in a listing, unless the file has
// local changes that are newer.
func (n *fileNode) seen(e entry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sp != nil && n.sp.dirty {
		return
	}
	n.info = e.info(n.key)
	n.infoTime = time.Now()
	n.inStore = true
}

func (n *fileNode) mode() uint32 {
	if n.fsys.readOnly {
		return roFileMode
	}
	return fileMode
}

// fillAttr fills a with what the mount knows, without asking the store.
func (n *fileNode) fillAttr(a *fuse.Attr) {
	n.mu.Lock()
	size, mtime := n.info.Size, n.info.ModTime
	if sp := n.sp; sp != nil && sp.filled {
		size = sp.size
		if !sp.mtime.IsZero() {
			mtime = sp.mtime
		}
	}
	unlinked := n.unlinked
	n.mu.Unlock()
	a.Mode = syscall.S_IFREG | n.mode()
	a.Size = uint64(size)
	a.Nlink = 1
	if unlinked {
		a.Nlink = 0
	}
	a.Uid, a.Gid = n.fsys.uid, n.fsys.gid
	a.SetTimes(&mtime, &mtime, &mtime)
}

// Getattr implements fs.NodeGetattrer. Attributes older than the listing
// TTL are refreshed with a Stat of the object.
func (n *fileNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	refresh := n.inStore && !n.unlinked && n.sp == nil && time.Since(n.infoTime) >= n.fsys.ttl
	key := n.key
	n.mu.Unlock()
	if refresh {
		info, err := n.fsys.store.Stat(ctx, key)
		switch {
		case err == nil:
			n.mu.Lock()
			if n.key == key && n.sp == nil {
				n.info, n.infoTime = info, time.Now()
			}
			n.mu.Unlock()
		case toErrno(err) == syscall.ENOENT:
			// Gone from the store: the next lookup drops the name; an open
			// descriptor keeps what it knew.
		default:
			return n.fsys.errno("getattr", key, err)
		}
	}
	n.fillAttr(&out.Attr)
	return 0
}

// Setattr implements fs.NodeSetattrer: truncate, and mtime (kept with the
// upload of an open file; a closed file's object is written again with the
// new mtime). chmod and chown to anything but the shown mode and owner are
// EPERM; atime is ignored.
func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := checkOwnerMode(in, n.mode(), n.fsys); errno != 0 {
		return errno
	}
	size, hasSize := in.GetSize()
	mtime, hasMtime := in.GetMTime()
	if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		mtime, hasMtime = time.Now(), true
	}
	if (hasSize || hasMtime) && n.fsys.readOnly {
		return syscall.EROFS
	}
	if hasSize {
		if errno := n.setSize(ctx, int64(size)); errno != 0 {
			return errno
		}
	}
	if hasMtime {
		if errno := n.setMtime(ctx, mtime); errno != 0 {
			return errno
		}
	}
	n.fillAttr(&out.Attr)
	return 0
}

// acquireSpool makes sure the file has a spool and counts one more writer.
func (n *fileNode) acquireSpool() (*spool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sp == nil {
		sp, err := n.fsys.newSpool()
		if err != nil {
			return nil, err
		}
		n.sp = sp
	}
	n.writers++
	return n.sp, nil
}

// releaseWriter drops one writer after uploading what is dirty; the last
// writer discards the spool.
func (n *fileNode) releaseWriter() {
	err := n.uploadNow()
	n.mu.Lock()
	for err == nil && n.writers == 1 && n.sp != nil && n.sp.dirty && !n.unlinked {
		// Changed while the upload ran (a setattr of the mtime arrives
		// while the kernel releases the file): the last writer sends it
		// again, or the change would go with the spool.
		n.mu.Unlock()
		err = n.uploadNow()
		n.mu.Lock()
	}
	n.writers--
	var drop *spool
	if n.writers == 0 && n.sp != nil {
		drop = n.sp
		n.sp = nil
		if drop.dirty && !n.unlinked {
			n.fsys.log.Error("upload failed when the file was closed; what was written is lost",
				slog.String("key", remote.PrintableKey(n.key)), slog.Any("err", err))
		}
	}
	key, inStore, unlinked := n.key, n.inStore, n.unlinked
	n.mu.Unlock()
	if drop != nil {
		drop.close()
		if !inStore && !unlinked {
			// Never made it to the store: the name goes away.
			dir, name := splitKey(key)
			n.fsys.removePending(dir, name)
		}
	}
}

func (n *fileNode) setSize(ctx context.Context, size int64) syscall.Errno {
	sp, err := n.acquireSpool()
	if err != nil {
		return n.fsys.errno("truncate", n.currentKey(), err)
	}
	errno := n.truncate(ctx, sp, size)
	if errno == 0 {
		// A truncate of a path (no open writer) is published now; an open
		// file's is published when it is closed.
		n.mu.Lock()
		alone := n.writers == 1
		n.mu.Unlock()
		if alone {
			errno = n.upload()
		}
	}
	n.releaseWriter()
	return errno
}

// truncate sets the spool's size, filling it first when bytes are kept.
func (n *fileNode) truncate(ctx context.Context, sp *spool, size int64) syscall.Errno {
	sp.io.Lock()
	defer sp.io.Unlock()
	if size > 0 {
		if err := n.fillLocked(ctx, sp); err != nil {
			return n.fsys.errno("truncate", n.currentKey(), err)
		}
	}
	if err := sp.f.Truncate(size); err != nil {
		return n.fsys.errno("truncate", n.currentKey(), err)
	}
	n.mu.Lock()
	sp.filled, sp.size, sp.dirty, sp.mtime = true, size, true, time.Now()
	sp.gen++
	n.mu.Unlock()
	return 0
}

// fillLocked downloads the object into the spool unless it holds the
// content already. sp.io must be held exclusively.
func (n *fileNode) fillLocked(ctx context.Context, sp *spool) error {
	n.mu.Lock()
	filled, key, inStore := sp.filled, n.key, n.inStore
	n.mu.Unlock()
	if filled {
		return nil
	}
	var size int64
	if inStore {
		rd, err := n.fsys.store.Open(ctx, key, 0, -1)
		if err != nil {
			return fmt.Errorf("download %s to the spool: %w", remote.PrintableKey(key), err)
		}
		size, err = io.Copy(io.NewOffsetWriter(sp.f, 0), rd)
		rd.Close()
		if err == nil {
			err = sp.f.Truncate(size)
		}
		if err != nil {
			sp.f.Truncate(0)
			return fmt.Errorf("download %s to the spool: %w", remote.PrintableKey(key), err)
		}
	}
	n.mu.Lock()
	if !sp.filled {
		sp.filled, sp.size = true, size
		if sp.mtime.IsZero() {
			sp.mtime = n.info.ModTime
		}
	}
	n.mu.Unlock()
	return nil
}

func (n *fileNode) setMtime(ctx context.Context, mtime time.Time) syscall.Errno {
	n.mu.Lock()
	if sp := n.sp; sp != nil && sp.filled {
		uploaded := !sp.dirty
		sp.mtime = mtime
		sp.dirty = true
		sp.gen++
		n.mu.Unlock()
		if uploaded {
			// The content is in the store already (a close uploaded it,
			// and the kernel has not released the file yet, as after
			// cp -p or touch): the new mtime is published now, as for a
			// closed file, not at a release nobody waits for.
			return n.upload()
		}
		return 0
	}
	if sp := n.sp; sp != nil {
		// Open for writing but nothing written: the mtime goes with the
		// upload at close.
		n.mu.Unlock()
		sp.io.Lock()
		err := n.fillLocked(ctx, sp)
		sp.io.Unlock()
		if err != nil {
			return n.fsys.errno("set mtime", n.currentKey(), err)
		}
		return n.setMtime(ctx, mtime)
	}
	key, inStore, unlinked := n.key, n.inStore, n.unlinked
	n.mu.Unlock()
	if !inStore || unlinked {
		return 0
	}
	// A closed file: write the object again with the new mtime.
	n.upMu.Lock()
	defer n.upMu.Unlock()
	st, err := n.fsys.store.Stat(ctx, key)
	if err != nil {
		return n.fsys.errno("set mtime", key, err)
	}
	if st.ModTime.Equal(mtime) {
		return 0
	}
	info, err := n.fsys.rewrite(ctx, key, key, st, mtime)
	if err != nil {
		return n.fsys.errno("set mtime", key, err)
	}
	n.mu.Lock()
	if n.key == key {
		n.info, n.infoTime = info, time.Now()
	}
	n.mu.Unlock()
	n.fsys.uploaded(key, info)
	return 0
}

func (n *fileNode) currentKey() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.key
}

// markUnlinked records that the file left its directory: it is never
// uploaded again.
func (n *fileNode) markUnlinked() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unlinked = true
	n.inStore = false
}

// Open implements fs.NodeOpener. A handle that may write gets the shared
// spool; O_TRUNC empties it. A read-only open keeps the kernel's page cache
// when the object has not changed since the last open.
func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	trunc := flags&syscall.O_TRUNC != 0
	if n.fsys.readOnly && (write || trunc) {
		return nil, 0, syscall.EROFS
	}
	h := n.fsys.newHandle(n, write || trunc)
	if h.write {
		sp, err := n.acquireSpool()
		if err != nil {
			return nil, 0, n.fsys.errno("open", n.currentKey(), err)
		}
		if trunc {
			if errno := n.truncate(ctx, sp, 0); errno != 0 {
				n.releaseWriter()
				return nil, 0, errno
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var fuseFlags uint32
	switch {
	case n.sp != nil:
		n.cacheETag = ""
	case n.info.ETag != "" && n.info.ETag == n.cacheETag:
		fuseFlags = fuse.FOPEN_KEEP_CACHE
	default:
		n.cacheETag = n.info.ETag
	}
	return h, fuseFlags, 0
}

// Read implements fs.NodeReader: from the spool when it holds the content,
// else from the store.
func (n *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	n.mu.Lock()
	sp := n.sp
	useSpool := sp != nil && sp.filled
	size, key := n.info.Size, n.key
	n.mu.Unlock()
	if useSpool {
		sp.io.RLock()
		if !sp.closed {
			k, err := sp.f.ReadAt(dest, off)
			sp.io.RUnlock()
			if err != nil && err != io.EOF {
				return nil, n.fsys.errno("read", key, err)
			}
			return fuse.ReadResultData(dest[:k]), 0
		}
		sp.io.RUnlock()
	}
	k, err := h.readRemote(ctx, key, size, dest, off)
	if err != nil {
		return nil, n.fsys.errno("read", key, err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// Read-ahead of ranged reads: a stream reads chunks of chunkSize on its
// own goroutine, at most its window ahead of what the handle took. The
// window starts at initialWindow chunks and grows by one with every chunk
// taken, up to maxWindow: a sequential reader soon has 4 MiB on the way
// while the kernel asks for the next 128 KiB, and a reader that seeks wastes
// little.
const (
	chunkSize     = 256 << 10
	initialWindow = 2
	maxWindow     = 16
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// stream is one ranged read of an object, from some offset to the end.
type stream struct {
	cancel context.CancelFunc
	chunks chan chunk    // in order; closed after the last
	grant  chan struct{} // one token per chunk the reader may read ahead
	window int
	err    error // set once the last chunk came: io.EOF at the end
}

type chunk struct {
	buf  *[]byte // from chunkPool; nil with an error before any byte
	data []byte
	err  error
}

func startStream(hctx context.Context, store remote.Store, key string, off int64) *stream {
	ctx, cancel := context.WithCancel(hctx)
	st := &stream{cancel: cancel, chunks: make(chan chunk, maxWindow+1), grant: make(chan struct{}, maxWindow), window: initialWindow}
	for range initialWindow {
		st.grant <- struct{}{}
	}
	go st.run(ctx, store, key, off)
	return st
}

func (st *stream) run(ctx context.Context, store remote.Store, key string, off int64) {
	defer close(st.chunks)
	rd, err := store.Open(ctx, key, off, -1)
	if err != nil {
		st.chunks <- chunk{err: err} // never blocks: the channel has room
		return
	}
	defer rd.Close()
	for {
		select {
		case <-st.grant:
		case <-ctx.Done():
			return
		}
		buf := chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(rd, *buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case st.chunks <- chunk{buf: buf, data: (*buf)[:n], err: err}:
		case <-ctx.Done():
			chunkPool.Put(buf)
			return
		}
		if err != nil {
			return
		}
	}
}

// receive takes the next chunk, or fails with ctx's error (the chunk then
// stays for the next call). It grants the reader one more chunk, two while
// the window grows.
func (st *stream) receive(ctx context.Context) (chunk, error) {
	select {
	case c, ok := <-st.chunks:
		if !ok {
			return chunk{err: io.ErrUnexpectedEOF}, nil
		}
		grants := 1
		if st.window < maxWindow {
			st.window++
			grants = 2
		}
		for range grants {
			select {
			case st.grant <- struct{}{}:
			default:
			}
		}
		return c, nil
	case <-ctx.Done():
		return chunk{}, ctx.Err()
	}
}

// readRemote reads [off, off+len(dest)) of the object (no further than
// size) from the store. It continues the handle's stream when off is among
// the bytes it has read or a little ahead of them, and otherwise starts a
// new one at off. An interrupted request returns EINTR and keeps what
// arrived, for the request the program retries.
func (h *handle) readRemote(ctx context.Context, key string, size int64, dest []byte, off int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off >= size {
		return 0, nil
	}
	end := min(off+int64(len(dest)), size)
	if h.st != nil && (off < h.bufOff || off > h.bufOff+h.bufLen+skipAhead) {
		h.n.fsys.log.Debug("ranged read moves", slog.String("key", remote.PrintableKey(key)),
			slog.Int64("from", h.bufOff+h.bufLen), slog.Int64("to", off))
		h.stopStreamLocked()
	}
	if h.st == nil {
		h.st = startStream(h.ctx, h.n.fsys.store, key, off)
		h.bufOff = off
	}
	h.trimLocked(off)
	retried := false
	for h.bufOff+h.bufLen < end && h.st.err == nil {
		c, err := h.st.receive(ctx)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", remote.PrintableKey(key), err)
		}
		if len(c.data) > 0 {
			h.bufs = append(h.bufs, c.data)
			h.bufLen += int64(len(c.data))
			h.trimLocked(off)
		} else if c.buf != nil {
			chunkPool.Put(c.buf)
		}
		switch {
		case c.err == nil, c.err == io.EOF:
			h.st.err = c.err
		case !retried && remote.IsRetryable(c.err):
			// One new ranged read from where this one broke.
			retried = true
			h.n.fsys.log.Debug("ranged read failed; reading again", slog.String("key", remote.PrintableKey(key)), slog.Any("err", c.err))
			at := h.bufOff + h.bufLen
			h.st.cancel()
			h.st = startStream(h.ctx, h.n.fsys.store, key, at)
		default:
			err := c.err
			h.stopStreamLocked()
			return 0, fmt.Errorf("read %s: %w", remote.PrintableKey(key), err)
		}
	}
	k := 0
	for _, b := range h.bufs {
		if int64(k) >= end-off {
			break
		}
		k += copy(dest[k:end-off], b)
	}
	return k, nil
}

// trimLocked drops the buffered bytes before off, returning whole chunks
// to the pool.
func (h *handle) trimLocked(off int64) {
	for len(h.bufs) > 0 && off > h.bufOff {
		b := h.bufs[0]
		drop := min(int64(len(b)), off-h.bufOff)
		if drop == int64(len(b)) {
			if cap(b) == chunkSize {
				full := b[:chunkSize]
				chunkPool.Put(&full)
			}
			h.bufs = h.bufs[1:]
		} else {
			h.bufs[0] = b[drop:]
		}
		h.bufOff += drop
		h.bufLen -= drop
	}
	// After a jump ahead (within skipAhead) bufOff stays behind off until
	// the bytes up to off have arrived and been dropped here.
}

func (h *handle) stopStreamLocked() {
	if h.st != nil {
		h.st.cancel()
		h.st = nil
	}
	h.bufs, h.bufOff, h.bufLen = nil, 0, 0
}

// release ends the handle's reads.
func (h *handle) release() {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopStreamLocked()
}

// Write implements fs.NodeWriter, into the spool (filled first when the
// file had content that this write does not replace).
func (n *fileNode) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok || !h.write {
		return 0, syscall.EBADF
	}
	n.mu.Lock()
	sp := n.sp
	n.mu.Unlock()
	if sp == nil {
		return 0, syscall.EBADF
	}
	sp.io.Lock()
	defer sp.io.Unlock()
	if err := n.fillLocked(ctx, sp); err != nil {
		return 0, n.fsys.errno("write", n.currentKey(), err)
	}
	k, err := sp.f.WriteAt(data, off)
	n.mu.Lock()
	if end := off + int64(k); end > sp.size {
		sp.size = end
	}
	if k > 0 {
		sp.dirty, sp.mtime = true, time.Now()
		sp.gen++
	}
	n.mu.Unlock()
	if err != nil {
		return uint32(k), n.fsys.errno("write", n.currentKey(), err)
	}
	return uint32(k), 0
}

// Flush implements fs.NodeFlusher: the close of a descriptor that may have
// written uploads the file (close-to-open consistency) and reports the
// upload's failure. It waits for the upload even when the program is
// interrupted: close(2) cannot be retried after EINTR, and Go programs see
// interrupts all the time (the runtime preempts with SIGURG). A program
// killed meanwhile stops waiting; the upload, on the mount's context, goes
// on.
func (n *fileNode) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if h, ok := fh.(*handle); !ok || !h.write {
		return 0
	}
	return n.upload()
}

// Fsync implements fs.NodeFsyncer: uploads what is dirty, as Flush does.
func (n *fileNode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	return n.upload()
}

// Release implements fs.NodeReleaser: the last chance to upload; the
// kernel ignores its result, so a failure is logged.
func (n *fileNode) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	h, ok := fh.(*handle)
	if !ok {
		return 0
	}
	h.release()
	if h.write {
		n.fsys.uploads.Add(1)
		defer n.fsys.uploads.Done()
		n.releaseWriter()
	}
	return 0
}

// upload uploads a dirty spool and waits for it.
func (n *fileNode) upload() syscall.Errno {
	// A clean spool has no upload in flight either: an upload clears
	// dirty only when it is done.
	n.mu.Lock()
	idle := n.sp == nil || !n.sp.dirty || n.unlinked
	n.mu.Unlock()
	if idle {
		return 0
	}
	n.fsys.uploads.Add(1)
	defer n.fsys.uploads.Done()
	if err := n.uploadNow(); err != nil {
		return n.fsys.errno("upload", n.currentKey(), err)
	}
	return 0
}

// uploadNow puts the spool's content at the file's key when it is dirty,
// with its SHA-256 and mtime.
func (n *fileNode) uploadNow() error {
	n.upMu.Lock()
	defer n.upMu.Unlock()
	n.mu.Lock()
	sp := n.sp
	if sp == nil || !sp.dirty || n.unlinked {
		n.mu.Unlock()
		return nil
	}
	key, size, mtime, gen := n.key, sp.size, sp.mtime, sp.gen
	n.mu.Unlock()

	sp.io.RLock()
	defer sp.io.RUnlock()
	if sp.closed {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(sp.f, 0, size)); err != nil {
		return fmt.Errorf("upload %s: read spool: %w", remote.PrintableKey(key), err)
	}
	info, err := n.fsys.store.Put(n.fsys.bg, key, io.NewSectionReader(sp.f, 0, size), size,
		remote.PutMeta{ModTime: mtime, SHA256: hex.EncodeToString(h.Sum(nil))})
	if err != nil {
		return fmt.Errorf("upload %s: %w", remote.PrintableKey(key), err)
	}
	n.mu.Lock()
	if sp.gen == gen {
		sp.dirty = false
	}
	n.info, n.infoTime, n.inStore = info, time.Now(), true
	unlinked := n.unlinked
	n.mu.Unlock()
	if !unlinked {
		n.fsys.uploaded(key, info)
	}
	return nil
}
