package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/vault"
)

// A program reading a large file of a backup sequentially (a read that
// continues the last one) is served by a stream of its own rather than
// through the chunk cache. The stream reads the file's chunks in order on its own
// goroutine, one ranged GET per run of chunks adjacent in a pack (the next
// GET opened while the current one is read), into pooled buffers, hashing
// each piece as it arrives; a chunk reaches the reader only once its
// check passed (vault.ChunkCheck: XXH3-128, or SHA-256 in older trees).
// Nothing of it is cached: such a file would push everything else out of
// the caches, and the kernel's page cache keeps what was read.
//
// Streaming saves what a pass through the cache costs per byte: a fresh
// buffer per chunk (page faults, zeroing, cache misses on every copy and
// on the hash) and the bookkeeping of chunks nobody asks for again.
const (
	// vaultStreamWindow is how many pieces of chunkSize bytes (8 MiB) a
	// stream holds: the reader's current chunk and what is read ahead of
	// it. The reader keeps its chunk until the next one is there, so the
	// window holds two of the largest the chunker makes.
	vaultStreamWindow = 32
	// vaultStreams bounds the streams of one mount, and so the memory
	// they hold; reads of handles beyond it go through the chunk cache.
	vaultStreams = 8
	// vaultStreamSkip is how many chunks a read may jump ahead on a
	// stream, the chunks in between read and dropped.
	vaultStreamSkip = 2
)

// vaultStream is the stream of one handle.
type vaultStream struct {
	cancel context.CancelFunc
	chunks chan streamChunk // checked chunks, in order; closed after the last or a failure
	grant  chan struct{}    // one token per piece the stream may fill ahead
	next   int              // index of the chunk the next receive returns
	slots  chan struct{}    // the mount's stream slots, one of them this stream's
}

// streamChunk is chunk i of the file, in pieces of chunkPool, or the error
// that ended the stream there.
type streamChunk struct {
	i      int
	pieces []*[]byte
	err    error
}

// release returns the chunk's pieces to the pool and their tokens to st.
func (c *streamChunk) release(st *vaultStream) {
	for _, p := range c.pieces {
		chunkPool.Put(p)
		select {
		case st.grant <- struct{}{}:
		default:
		}
	}
	c.pieces = nil
}

// streamable reports whether a file's sequential reads may be streamed:
// it is larger than the caches take whole, and no chunk is larger than
// half a stream's window (the reader holds one while the next arrives).
func (n *vaultFileNode) streamable() bool {
	if n.fsys.streams == nil || n.e.Size <= n.fsys.streamMin {
		return false
	}
	for _, c := range n.e.Chunks {
		if c.Size > vaultStreamWindow/2*chunkSize {
			return false
		}
	}
	return true
}

// startStream starts a stream of the node's chunks from chunk from, or
// returns nil when the mount runs vaultStreams streams already. The
// stream holds its slot until the handle stops it.
func (n *vaultFileNode) startStream(from int) *vaultStream {
	select {
	case n.fsys.streams <- struct{}{}:
	default:
		return nil
	}
	ctx, cancel := context.WithCancel(n.fsys.bg)
	st := &vaultStream{
		cancel: cancel,
		chunks: make(chan streamChunk, vaultStreamWindow),
		grant:  make(chan struct{}, vaultStreamWindow),
		next:   from,
		slots:  n.fsys.streams,
	}
	for range vaultStreamWindow {
		st.grant <- struct{}{}
	}
	n.fsys.chunks.wg.Go(func() { st.run(ctx, n.fsys.chunks.store, n.e.Chunks, from) })
	return st
}

// streamPiece is up to chunkSize bytes of chunk i, as read, or the error
// that ended the reading there.
type streamPiece struct {
	i   int
	buf *[]byte // from chunkPool; nil with err
	n   int
	err error
}

// run reads chunks[from:] and hands them over, until the end, a failure
// or ctx ends. Reading the GETs and hashing run on two goroutines, so that
// one piece is hashed while the next arrives.
func (st *vaultStream) run(ctx context.Context, store remote.Store, chunks []vault.Chunk, from int) {
	pieces := make(chan streamPiece, vaultStreamWindow)
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		st.check(ctx, chunks, pieces)
	}()
	defer func() {
		close(pieces)
		<-checked
	}()
	send := func(p streamPiece) bool {
		select {
		case pieces <- p:
			return true
		case <-ctx.Done():
			if p.buf != nil {
				chunkPool.Put(p.buf)
			}
			return false
		}
	}
	type opened struct {
		rc  io.ReadCloser
		err error
	}
	// open starts the GET of the run of chunks starting at i and returns
	// where it ends and where its body will arrive.
	open := func(i int) (int, chan opened) {
		j := i + 1
		for bytes := chunks[i].Size; j < len(chunks) && continuesRun(chunks[j-1], chunks[j], bytes); j++ {
			bytes += chunks[j].Size
		}
		ch := make(chan opened, 1)
		first, last := chunks[i], chunks[j-1]
		go func() {
			rc, err := openRun(ctx, store, first, last)
			ch <- opened{rc, err}
		}()
		return j, ch
	}
	var next chan opened // the GET after the current one
	defer func() {
		if next != nil {
			if o := <-next; o.rc != nil {
				o.rc.Close()
			}
		}
	}()
	end, cur := open(from)
	for i := from; i < len(chunks); {
		o := <-cur
		if o.err != nil {
			send(streamPiece{i: i, err: fmt.Errorf("read %s: %w", vaultChunkKey(chunks[i]), o.err)})
			return
		}
		runEnd := end
		if runEnd < len(chunks) {
			end, next = open(runEnd)
		}
		for ; i < runEnd; i++ {
			c := chunks[i]
			for left := c.Size; left > 0; {
				select {
				case <-st.grant:
				case <-ctx.Done():
					o.rc.Close()
					return
				}
				buf := chunkPool.Get().(*[]byte)
				n, err := io.ReadFull(o.rc, (*buf)[:min(left, chunkSize)])
				left -= int64(n)
				if err != nil {
					chunkPool.Put(buf)
					if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
						err = fmt.Errorf("%w: %d bytes stored at offset %d, the tree says %d", remote.ErrChecksum, c.Size-left, c.Offset, c.Size)
					}
					o.rc.Close()
					send(streamPiece{i: i, err: fmt.Errorf("read %s: %w", vaultChunkKey(c), err)})
					return
				}
				if !send(streamPiece{i: i, buf: buf, n: n}) {
					o.rc.Close()
					return
				}
			}
		}
		o.rc.Close()
		cur, next = next, nil
	}
}

// check hashes the pieces run reads and hands each chunk that passes its
// check to the reader, in order; a mismatch or a read error ends the
// stream. It closes st.chunks when pieces is closed.
func (st *vaultStream) check(ctx context.Context, chunks []vault.Chunk, pieces <-chan streamPiece) {
	defer close(st.chunks)
	var h *vault.ChunkCheck
	cur := streamChunk{i: -1}
	var got int64
	failed := false
	for p := range pieces {
		if failed {
			if p.buf != nil {
				chunkPool.Put(p.buf)
			}
			continue
		}
		if p.err != nil {
			cur.release(st)
			st.fail(ctx, p.i, p.err)
			failed = true
			continue
		}
		if p.i != cur.i {
			cur = streamChunk{i: p.i}
			h = vault.NewChunkCheck(chunks[p.i])
			got = 0
		}
		h.Write((*p.buf)[:p.n])
		cur.pieces = append(cur.pieces, p.buf)
		got += int64(p.n)
		c := chunks[p.i]
		if got < c.Size {
			continue
		}
		if err := h.Verify(); err != nil {
			cur.release(st)
			st.fail(ctx, p.i, fmt.Errorf("read %s at offset %d: %w", vaultChunkKey(c), c.Offset, err))
			failed = true
			continue
		}
		select {
		case st.chunks <- cur:
		case <-ctx.Done():
			cur.release(st)
			failed = true
		}
		cur = streamChunk{i: -1}
	}
	cur.release(st)
}

// fail hands the reader the error that ended the stream at chunk i, and
// ends the reading: nothing after it will be served.
func (st *vaultStream) fail(ctx context.Context, i int, err error) {
	select {
	case st.chunks <- streamChunk{i: i, err: err}:
	case <-ctx.Done():
	}
	st.cancel()
}

// errNotStreamed: the read is not one a stream serves; the chunk cache
// does.
var errNotStreamed = errors.New("not streamed")

// readStream serves the read of [off, end), chunks first..last, from the
// handle's stream when it continues it, or starts one when the read
// continues the last read. It copies into dest and
// returns the bytes copied, or errNotStreamed when the chunk cache is to
// serve the read (the stream stopped: a jump, or a failure the cache's
// fetch, with its retries, reports).
func (n *vaultFileNode) readStream(ctx context.Context, h *vaultHandle, dest []byte, off, end int64, first, last int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.st; st != nil && ((h.cur != nil && first < h.cur.i) || first > st.next+vaultStreamSkip) {
		h.stopStreamLocked()
	}
	if h.st == nil {
		// A read that continues the last one: a program reading one block
		// of the file (file(1), a thumbnailer) starts no stream.
		sequential := h.last >= 0 && first >= h.last-1 && first <= h.last+1
		if !sequential {
			return 0, errNotStreamed
		}
		if h.st = n.startStream(first); h.st == nil {
			return 0, errNotStreamed
		}
		n.fsys.streamReads.Add(1)
	}
	h.last = last
	w := 0
	for i, pos := first, off; pos < end; i++ {
		for h.cur == nil || h.cur.i != i {
			// The chunk held goes back once the next one is here, so
			// that a read interrupted meanwhile finds it on its retry.
			c, err := h.st.receive(ctx)
			if err != nil {
				return 0, err // interrupted: the stream goes on
			}
			if c.err != nil || c.i > i {
				if c.err != nil {
					n.fsys.log.Debug("stream stopped; reading through the cache", slog.String("file", n.describe()), slog.Any("err", c.err))
				}
				h.stopStreamLocked()
				return 0, errNotStreamed
			}
			if h.cur != nil {
				h.cur.release(h.st)
			}
			h.cur = &c
		}
		k := copyPieces(dest[w:end-off], h.cur.pieces, pos-n.offs[i], n.e.Chunks[i].Size)
		w += k
		pos += int64(k)
	}
	return w, nil
}

// copyPieces copies into dst the bytes from offset at of a chunk of size
// bytes held in pieces of chunkSize, and returns how many it copied.
func copyPieces(dst []byte, pieces []*[]byte, at, size int64) int {
	w := 0
	for at < size && w < len(dst) {
		p := at / chunkSize
		in := at % chunkSize
		pieceLen := min(int64(chunkSize), size-p*chunkSize)
		k := copy(dst[w:], (*pieces[p])[in:pieceLen])
		w += k
		at += int64(k)
	}
	return w
}

// receive takes the stream's next chunk, or fails with ctx's error.
func (st *vaultStream) receive(ctx context.Context) (streamChunk, error) {
	select {
	case c, ok := <-st.chunks:
		if !ok {
			return streamChunk{err: io.ErrUnexpectedEOF}, nil
		}
		st.next = c.i + 1
		return c, nil
	case <-ctx.Done():
		return streamChunk{}, ctx.Err()
	}
}

// stopStreamLocked ends the handle's stream, if any.
func (h *vaultHandle) stopStreamLocked() {
	if h.st == nil {
		return
	}
	if h.cur != nil {
		h.cur.release(h.st)
		h.cur = nil
	}
	h.st.cancel()
	<-h.st.slots // the stream's slot: what it read ahead is dropped
	h.st = nil
}
