package fusefs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/vault"
)

// A file larger than the disk cache's share for streams, read through,
// leaves its read-ahead chunks out of the disk cache: only chunks a read
// asked for itself are stored.
func TestVaultStreamSkipsDiskCache(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		// Larger than the kernel's read-ahead (4 MiB when root), whose
		// reads arrive out of order and are fetched on demand: the later
		// chunks can only come from Ferry's read-ahead.
		const size = 24 << 20
		src := vaultSource(t, size)
		m := backupInto(t, v, src, "x")
		want, err := os.ReadFile(filepath.Join(src, "big.img"))
		if err != nil {
			t.Fatal(err)
		}
		tree, err := v.Tree(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		var chunks int
		for _, e := range tree.Entries {
			if e.Path == "big.img" {
				chunks = len(e.Chunks)
			}
		}
		if chunks < 3 {
			t.Fatalf("big.img has %d chunks; the test needs several", chunks)
		}
		// The disk cache's stream share (diskBytes / streamFraction) is
		// smaller than the file; the cache holds the whole file.
		cc := vaultCacheConfig{memBytes: 64 << 20, diskBytes: 2 * size}
		mp, mnt, fsys := mountVaultTest(t, v, Options{CacheDir: filepath.Join(t.TempDir(), "cache")}, cc)
		got, err := os.ReadFile(filepath.Join(mp, "latest", "big.img"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read: %d bytes, %v", len(got), err)
		}
		disk := fsys.chunks.disk
		unmountTest(t, mnt) // waits for the disk writer
		_, stored := disk.size()
		t.Logf("the disk cache holds %d of the file's %d chunks", stored, chunks)
		if stored == 0 || stored >= chunks {
			t.Errorf("the disk cache holds %d of the file's %d chunks; want the first (asked for), not the ones read ahead", stored, chunks)
		}
	})
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
