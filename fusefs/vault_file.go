package fusefs

import (
	"context"
	"errors"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ferrysync/ferry/vault"
)

// Read-ahead of the vault view: once a handle reads sequentially (a read
// in the chunk of the previous one or the next), the chunks after it are
// fetched in the background, up to vaultReadAheadBytes and at most
// vaultReadAheadChunks ahead, and at least one.
const (
	vaultReadAheadBytes  = 32 << 20
	vaultReadAheadChunks = 32
)

// vaultFileNode is a file of a backup.
type vaultFileNode struct {
	vaultNode
	st   *backupState
	e    *vault.Entry
	offs []int64 // offs[i] is where chunk i starts; offs[len(chunks)] is the size
	// stream: sequential reads are streamed (vault_stream.go).
	stream bool
}

var (
	_ = (fs.NodeGetattrer)((*vaultFileNode)(nil))
	_ = (fs.NodeOpener)((*vaultFileNode)(nil))
	_ = (fs.NodeReader)((*vaultFileNode)(nil))
	_ = (fs.NodeReleaser)((*vaultFileNode)(nil))
)

func newVaultFileNode(fsys *vaultFS, st *backupState, e *vault.Entry) *vaultFileNode {
	offs := make([]int64, len(e.Chunks)+1)
	for i, c := range e.Chunks {
		offs[i+1] = offs[i] + c.Size
	}
	n := &vaultFileNode{vaultNode: vaultNode{fsys: fsys}, st: st, e: e, offs: offs}
	n.stream = n.streamable()
	return n
}

func (n *vaultFileNode) describe() string { return n.st.m.ID + "/" + n.e.Path }

// Getattr implements fs.NodeGetattrer.
func (n *vaultFileNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	entryAttr(&out.Attr, n.e, nil)
	return 0
}

// Open implements fs.NodeOpener: read-only, and the kernel keeps what it
// cached of the file (a backup never changes).
func (n *vaultFileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	return &vaultHandle{last: -1, ahead: -1, pin: -1}, fuse.FOPEN_KEEP_CACHE, 0
}

// Release implements fs.NodeReleaser: the handle's stream ends.
func (n *vaultFileNode) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if h, ok := fh.(*vaultHandle); ok {
		h.mu.Lock()
		h.stopStreamLocked()
		h.mu.Unlock()
	}
	return 0
}

// vaultHandle is an open file: where it read last (for read-ahead) and the
// chunk it read from, kept so that the next reads in it need no lookup.
type vaultHandle struct {
	mu      sync.Mutex
	last    int // chunk of the last read's end; -1 before the first
	ahead   int // last chunk read-ahead was started for
	pin     int // chunk held in pinData; -1 for none
	pinData []byte

	// The handle's stream (vault_stream.go), nil when its reads go
	// through the chunk cache, and the chunk it took last.
	st  *vaultStream
	cur *streamChunk
}

// chunkAt returns the index of the chunk holding offset off (< size).
func (n *vaultFileNode) chunkAt(off int64) int {
	return sort.Search(len(n.e.Chunks), func(i int) bool { return n.offs[i+1] > off })
}

// Read implements fs.NodeReader: the chunks covering the range, from the
// cache or the store, each checked (vault.ChunkCheck).
func (n *vaultFileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*vaultHandle)
	if !ok {
		return nil, syscall.EBADF
	}
	size := n.e.Size
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), size)
	first, lastChunk := n.chunkAt(off), n.chunkAt(end-1)
	if n.stream {
		k, err := n.readStream(ctx, h, dest, off, end, first, lastChunk)
		if err == nil {
			return fuse.ReadResultData(dest[:k]), 0
		}
		if !errors.Is(err, errNotStreamed) {
			return nil, n.fsys.errno("read", n.describe(), err)
		}
	}
	n.readAhead(h, first, lastChunk)

	if first == lastChunk {
		// Within one chunk: hand the kernel the cached bytes themselves
		// (chunks never change once fetched), no copy into dest.
		data, err := n.chunk(ctx, h, first)
		if err != nil {
			return nil, n.fsys.errno("read", n.describe(), err)
		}
		return fuse.ReadResultData(data[off-n.offs[first] : end-n.offs[first]]), 0
	}
	w := 0
	for i, pos := first, off; pos < end; i++ {
		data, err := n.chunk(ctx, h, i)
		if err != nil {
			return nil, n.fsys.errno("read", n.describe(), err)
		}
		k := copy(dest[w:end-off], data[pos-n.offs[i]:])
		w += k
		pos += int64(k)
	}
	return fuse.ReadResultData(dest[:w]), 0
}

// chunk returns chunk i's content: the handle's pinned chunk, or from the
// cache (which fetches it when needed).
func (n *vaultFileNode) chunk(ctx context.Context, h *vaultHandle, i int) ([]byte, error) {
	h.mu.Lock()
	if h.pin == i {
		data := h.pinData
		h.mu.Unlock()
		return data, nil
	}
	h.mu.Unlock()
	data, err := n.fsys.chunks.get(ctx, n.e.Chunks[i])
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.pin, h.pinData = i, data
	h.mu.Unlock()
	return data, nil
}

// readAhead notes a read of chunks first..last and, when it continues the
// previous read, starts fetching the chunks after it.
func (n *vaultFileNode) readAhead(h *vaultHandle, first, last int) {
	h.mu.Lock()
	sequential := h.last >= 0 && first >= h.last-1 && first <= h.last+1
	if last > h.last || !sequential {
		h.last = last
	}
	if !sequential {
		h.ahead = last
		h.mu.Unlock()
		return
	}
	from := max(h.ahead, last) + 1
	to := last
	var bytes int64
	for j := last + 1; j < len(n.e.Chunks) && j-last <= vaultReadAheadChunks; j++ {
		if j > last+1 && bytes >= vaultReadAheadBytes {
			break
		}
		bytes += n.e.Chunks[j].Size
		to = j
	}
	// The window is topped up in steps of half of it (or to the file's
	// end), not a chunk at a time, so that chunks adjacent in a pack go in
	// one GET (chunkCache.prefetch).
	if to < len(n.e.Chunks)-1 && to-from+1 < (to-last+1)/2 {
		h.mu.Unlock()
		return
	}
	if to > h.ahead {
		h.ahead = to
	}
	h.mu.Unlock()
	if from <= to {
		n.fsys.chunks.prefetch(n.e.Chunks[from:to+1], n.e.Size)
	}
}
