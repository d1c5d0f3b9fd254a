package fusefs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/vault"
)

// A file larger than the disk cache's share for streams, read through,
// is streamed after its first read: it arrives whole and right, and
// neither cache keeps what the stream read. A read elsewhere in it
// afterwards goes through the chunk cache.
func TestVaultStreamLargeFile(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		const size = 24 << 20
		_, big, want := backupBig(t, v, size, vault.BackupOptions{Name: "x"}, 8)
		// The disk cache's stream share (diskBytes / streamFraction) is
		// smaller than the file; the cache could hold the whole file.
		cc := vaultCacheConfig{memBytes: 64 << 20, diskBytes: 2 * size}
		mp, mnt, fsys := mountVaultTest(t, v, Options{CacheDir: filepath.Join(t.TempDir(), "cache")}, cc)
		p := filepath.Join(mp, "latest", "big.img")
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read: %d bytes, %v", len(got), err)
		}
		if n := fsys.streamReads.Load(); n != 1 {
			t.Errorf("%d streams started for one read through, want 1", n)
		}
		// The first read (at most 1 MiB, two chunks) went through the
		// cache; the rest was streamed.
		for i, c := range big.Chunks[2:] {
			if fsys.chunks.mem.has(c.SHA256) {
				t.Errorf("chunk %d, read by the stream, is in the memory cache", i+2)
			}
		}
		// A read in the middle, past the page cache: through the cache.
		dropPageCache(t, p)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		mid := make([]byte, 100_000)
		off := size / 2
		before := fsys.chunks.storeReads.Load()
		if _, err := f.ReadAt(mid, int64(off)); err != nil || !bytes.Equal(mid, want[off:off+len(mid)]) {
			t.Errorf("read at %d: %v (or wrong data)", off, err)
		}
		f.Close()
		if fsys.chunks.storeReads.Load() == before {
			t.Error("the read in the middle did not go through the chunk cache")
		}
		disk := fsys.chunks.disk
		unmountTest(t, mnt) // waits for the disk writer
		if _, stored := disk.size(); stored == 0 || stored > 4 {
			t.Errorf("the disk cache holds %d chunks; want only those the first read and the read in the middle asked for", stored)
		}
	})
}

// streamNode is a node of big.img of a backup with opts of a tree with a
// file of size bytes in store st, in a vault view without FUSE whose
// files all stream.
func streamNode(t *testing.T, st remote.Store, size int, opts vault.BackupOptions) (*vaultFileNode, *vaultFS, []byte) {
	t.Helper()
	v := newTestVault(t, st)
	m, big, want := backupBig(t, v, size, opts, 4)
	bg, cancel := context.WithCancel(context.Background())
	log := testLogger(t, slog.LevelWarn)
	fsys := &vaultFS{v: v, bg: bg, log: log, chunks: newChunkCache(st, bg, 64<<20, nil, log),
		streams: make(chan struct{}, vaultStreams)}
	t.Cleanup(func() {
		cancel()
		fsys.chunks.close() // waits for the streams' goroutines
		if n := len(fsys.streams); n != 0 {
			t.Errorf("%d stream slots taken after every stream ended", n)
		}
	})
	n := newVaultFileNode(fsys, newBackupState(m, nil), big)
	if !n.stream {
		t.Fatal("big.img is not streamed")
	}
	return n, fsys, want
}

// readNode reads len(buf) bytes at off through n and checks them.
func readNode(t *testing.T, ctx context.Context, n *vaultFileNode, fh fs.FileHandle, buf []byte, off int64, want []byte) {
	t.Helper()
	res, errno := n.Read(ctx, fh, buf, off)
	if errno != 0 {
		t.Fatalf("read at %d: %v", off, errno)
	}
	got, _ := res.Bytes(nil)
	if !bytes.Equal(got, want[min(off, int64(len(want))):min(off+int64(len(buf)), int64(len(want)))]) {
		t.Fatalf("read at %d: wrong data (%d bytes)", off, len(got))
	}
}

// cacheReads counts the reads the chunk cache served.
func cacheReads(fsys *vaultFS) int64 {
	return fsys.chunks.storeReads.Load() + fsys.chunks.memHits.Load() + fsys.chunks.diskHits.Load()
}

// Sequential reads are streamed from the second on, whatever their size
// and however they cut the chunks; a jump within vaultStreamSkip chunks
// stays on the stream, a longer one goes through the chunk cache, and
// reading on sequentially from there starts a new stream.
func TestVaultStreamReads(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n, fsys, want := streamNode(t, mem.New(), 16<<20, vault.BackupOptions{})
	for _, size := range []int{128 << 10, 1 << 20, 3<<20 + 17} {
		fh, _, errno := n.Open(ctx, syscall.O_RDONLY)
		if errno != 0 {
			t.Fatal(errno)
		}
		streams, cached := fsys.streamReads.Load(), cacheReads(fsys)
		buf := make([]byte, size)
		readNode(t, ctx, n, fh, buf, 0, want)
		firstRead := cacheReads(fsys) - cached
		for off := int64(size); off < int64(len(want)); off += int64(size) {
			readNode(t, ctx, n, fh, buf, off, want)
		}
		readNode(t, ctx, n, fh, buf, int64(len(want)), want) // at the end: nothing
		if got := fsys.streamReads.Load() - streams; got != 1 {
			t.Errorf("reads of %d bytes: %d streams, want 1", size, got)
		}
		if firstRead == 0 || cacheReads(fsys)-cached != firstRead {
			t.Errorf("reads of %d bytes: the cache served %d chunks for the first read and %d after it, want some and none",
				size, firstRead, cacheReads(fsys)-cached-firstRead)
		}
		n.Release(ctx, fh)
	}

	fh, _, _ := n.Open(ctx, syscall.O_RDONLY)
	defer n.Release(ctx, fh)
	buf := make([]byte, 64<<10)
	streams := fsys.streamReads.Load()
	readNode(t, ctx, n, fh, buf, 0, want)
	readNode(t, ctx, n, fh, buf, int64(len(buf)), want) // the stream starts
	// Two chunks on: the stream drops the one in between.
	cached := cacheReads(fsys)
	readNode(t, ctx, n, fh, buf, n.offs[2]+5, want)
	if got := cacheReads(fsys) - cached; got != 0 || fsys.streamReads.Load()-streams != 1 {
		t.Errorf("a jump of two chunks: %d cache reads and %d streams, want 0 and 1", got, fsys.streamReads.Load()-streams)
	}
	// To the last chunk (the cache), and on from there (a new stream).
	lastStart := n.offs[len(n.e.Chunks)-1]
	readNode(t, ctx, n, fh, buf, lastStart-int64(len(buf)), want)
	if cacheReads(fsys) == cached {
		t.Error("a long jump did not go through the chunk cache")
	}
	for off := lastStart; off < int64(len(want)); off += int64(len(buf)) {
		readNode(t, ctx, n, fh, buf, off, want)
	}
	// Back to the start: the cache (the chunk the handle read first).
	readNode(t, ctx, n, fh, buf, 100, want)
	if fh.(*vaultHandle).st != nil {
		t.Error("a read back at the start kept the stream")
	}
	if got := fsys.streamReads.Load() - streams; got != 2 {
		t.Errorf("%d streams for a read, two jumps and a read on, want 2", got)
	}
}

// passStore lets the first pass Opens of packs through and holds the
// others until gate is closed.
type passStore struct {
	remote.Store
	pass  int64
	opens atomic.Int64
	gate  chan struct{}
}

func (s *passStore) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.HasPrefix(key, "packs/") && s.opens.Add(1) > s.pass {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.Open(ctx, key, off, length)
}

// A read interrupted while its stream waits for the next chunk is EINTR,
// and the stream goes on: the retry gets the data from it, chunk it had
// read included.
func TestVaultStreamInterrupted(t *testing.T) {
	t.Parallel()
	// Every chunk in a pack of its own: a GET per chunk.
	st := &passStore{Store: mem.New(), pass: 1 << 40, gate: make(chan struct{})}
	n, fsys, want := streamNode(t, st, vaultBigSize, vault.BackupOptions{PackSize: 1})
	ctx := t.Context()
	fh, _, _ := n.Open(ctx, syscall.O_RDONLY)
	defer n.Release(ctx, fh)
	buf := make([]byte, 64<<10)
	readNode(t, ctx, n, fh, buf, 0, want) // through the cache: the first GET
	// The stream's first GET (chunk 0) passes, the one after waits.
	st.pass = st.opens.Load() + 1
	readNode(t, ctx, n, fh, buf, int64(len(buf)), want)
	cached := cacheReads(fsys)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	across := n.offs[1] - int64(len(buf))/2 // the end of chunk 0 and the start of chunk 1
	if _, errno := n.Read(canceled, fh, buf, across); errno != syscall.EINTR {
		t.Fatalf("interrupted read: %v, want EINTR", errno)
	}
	close(st.gate)
	for off := across; off < int64(len(want)); off += int64(len(buf)) {
		readNode(t, ctx, n, fh, buf, off, want)
	}
	if got := fsys.streamReads.Load(); got != 1 {
		t.Errorf("%d streams, want the one from before the interrupt", got)
	}
	if got := cacheReads(fsys) - cached; got != 0 {
		t.Errorf("the chunk cache served %d chunks after the interrupt, want 0", got)
	}
}

// Beyond vaultStreams handles reading at once, reads go through the chunk
// cache, and right.
func TestVaultStreamLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n, fsys, want := streamNode(t, mem.New(), vaultBigSize, vault.BackupOptions{})
	buf := make([]byte, 256<<10)
	var fhs []fs.FileHandle
	for range vaultStreams + 2 {
		fh, _, _ := n.Open(ctx, syscall.O_RDONLY)
		fhs = append(fhs, fh)
	}
	for off := int64(0); off < int64(len(want)); off += int64(len(buf)) {
		for _, fh := range fhs {
			readNode(t, ctx, n, fh, buf, off, want)
		}
	}
	if got := fsys.streamReads.Load(); got != vaultStreams {
		t.Errorf("%d streams for %d handles, want %d", got, len(fhs), vaultStreams)
	}
	for _, fh := range fhs {
		n.Release(ctx, fh)
	}
}

// A stream that meets an altered chunk, or a pack cut short, stops there;
// the read goes through the chunk cache, which fails with EIO. The chunks
// before it come from the stream.
func TestVaultStreamDamage(t *testing.T) {
	t.Parallel()
	// "sha256 only": a tree of before XXH3 was recorded, whose chunks are
	// checked by SHA-256.
	for _, damage := range []string{"altered", "short", "altered, sha256 only"} {
		t.Run(damage, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := mem.New()
			n, fsys, want := streamNode(t, st, vaultBigSize, vault.BackupOptions{PackSize: 1})
			for i := range n.e.Chunks {
				if n.e.Chunks[i].XXH3 == "" {
					t.Fatalf("chunk %d has no XXH3", i)
				}
				if damage == "altered, sha256 only" {
					n.e.Chunks[i].XXH3 = ""
				}
			}
			c := n.e.Chunks[2]
			if damage != "short" {
				alterChunk(t, st, c, c.Size-1)
			} else {
				cutPack(t, st, c, c.Size/2)
			}
			fh, _, _ := n.Open(ctx, syscall.O_RDONLY)
			defer n.Release(ctx, fh)
			buf := make([]byte, 64<<10)
			readNode(t, ctx, n, fh, buf, 0, want)
			cached := cacheReads(fsys)
			var off int64
			for off = int64(len(buf)); off+int64(len(buf)) <= n.offs[2]; off += int64(len(buf)) {
				readNode(t, ctx, n, fh, buf, off, want)
			}
			if got := cacheReads(fsys) - cached; got != 0 || fsys.streamReads.Load() != 1 {
				t.Errorf("chunks 0 and 1: %d cache reads and %d streams, want 0 and 1", got, fsys.streamReads.Load())
			}
			if _, errno := n.Read(ctx, fh, buf, n.offs[2]+10); errno != syscall.EIO {
				t.Errorf("read in the %s chunk: %v, want EIO", damage, errno)
			}
		})
	}
}

// runStore counts the ranged reads of packs and can refuse those longer
// than one chunk, as a server failing mid-way would.
type runStore struct {
	remote.Store
	opens      atomic.Int64
	failLonger int64 // > 0: reads longer than this fail (retryable)
}

func (s *runStore) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	s.opens.Add(1)
	if s.failLonger > 0 && length > s.failLonger {
		return nil, remote.Retryable(errors.New("connection reset"))
	}
	return s.Store.Open(ctx, key, off, length)
}

// Read-ahead fetches chunks adjacent in a pack with one ranged read, and
// each arrives whole and checked; when that read fails, the chunks are
// fetched one by one.
func TestChunkCachePrefetchRuns(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		st := &runStore{Store: mem.New()}
		datas := [][]byte{[]byte("first chunk"), []byte("second"), []byte("third, longer chunk"), []byte("4th")}
		_, sum := putPack(t, st.Store, datas...)
		var chunks []vault.Chunk
		var off int64
		for _, d := range datas {
			c := chunkOf(d)
			c.Pack, c.Offset = sum, off
			off += c.Size
			chunks = append(chunks, c)
		}
		if fail {
			st.failLonger = 32
		}
		bg, cancel := context.WithCancel(context.Background())
		cc := newChunkCache(st, bg, 1<<20, nil, testLogger(t, slog.LevelError))
		cc.prefetch(chunks, off)
		for i, c := range chunks {
			got, err := cc.get(context.Background(), c)
			if err != nil || !bytes.Equal(got, datas[i]) {
				t.Errorf("fail=%v: chunk %d: %q, %v", fail, i, got, err)
			}
		}
		cancel()
		cc.close()
		want := int64(1)
		if fail {
			want = 1 + int64(len(chunks)) // the failed run, then one read each
		}
		if got := st.opens.Load(); got != want {
			t.Errorf("fail=%v: %d ranged reads, want %d", fail, got, want)
		}
	}
}
