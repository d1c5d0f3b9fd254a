package fusefs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/vault"
)

func manifestAt(id, name string) *vault.Manifest {
	t, err := time.Parse("20060102T150405Z", id[:16])
	if err != nil {
		panic(err)
	}
	return &vault.Manifest{ID: id, Name: name, Started: t.Add(123 * time.Millisecond), Status: vault.StatusAvailable}
}

func TestBackupDirNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200)
	for _, c := range []struct {
		name string
		ms   []*vault.Manifest
		want map[string]string
	}{
		{
			name: "name and time",
			ms:   []*vault.Manifest{manifestAt("20261123T020000Z-1a2b3c4d", "photos")},
			want: map[string]string{"20261123T020000Z-1a2b3c4d": "2026-11-23T020000Z-photos"},
		},
		{
			name: "no name",
			ms:   []*vault.Manifest{manifestAt("20261123T020000Z-1a2b3c4d", "")},
			want: map[string]string{"20261123T020000Z-1a2b3c4d": "2026-11-23T020000Z"},
		},
		{
			name: "unsafe characters",
			ms:   []*vault.Manifest{manifestAt("20261123T020000Z-1a2b3c4d", " a/b\\c\x00d\ne\x7f\xff ")},
			want: map[string]string{"20261123T020000Z-1a2b3c4d": "2026-11-23T020000Z-a_b_c_d_e__"},
		},
		{
			name: "only spaces",
			ms:   []*vault.Manifest{manifestAt("20261123T020000Z-1a2b3c4d", "   ")},
			want: map[string]string{"20261123T020000Z-1a2b3c4d": "2026-11-23T020000Z"},
		},
		{
			name: "collision: the oldest keeps the name",
			ms: []*vault.Manifest{
				manifestAt("20261123T020000Z-ffffffff", "db"),
				manifestAt("20261123T020000Z-00000001", "db"),
				manifestAt("20261123T020000Z-00000002", ""),
				manifestAt("20261123T020001Z-00000003", "db"),
			},
			want: map[string]string{
				"20261123T020000Z-00000001": "2026-11-23T020000Z-db",
				"20261123T020000Z-ffffffff": "2026-11-23T020000Z-db-ffffffff",
				"20261123T020000Z-00000002": "2026-11-23T020000Z",
				"20261123T020001Z-00000003": "2026-11-23T020001Z-db",
			},
		},
		{
			name: "a name that looks like a suffixed one",
			ms: []*vault.Manifest{
				manifestAt("20261123T020000Z-00000001", "db"),
				manifestAt("20261123T020000Z-00000002", "db"),
				manifestAt("20261123T020000Z-00000003", "db-00000002"),
			},
			want: map[string]string{
				"20261123T020000Z-00000001": "2026-11-23T020000Z-db",
				"20261123T020000Z-00000003": "2026-11-23T020000Z-db-00000002",
				"20261123T020000Z-00000002": "2026-11-23T020000Z-db-20261123T020000Z-00000002",
			},
		},
		{
			name: "long name cut at a character",
			ms:   []*vault.Manifest{manifestAt("20261123T020000Z-1a2b3c4d", long)},
			want: map[string]string{"20261123T020000Z-1a2b3c4d": "2026-11-23T020000Z-" + strings.Repeat("é", maxBackupLabel/2)},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := backupDirNames(c.ms)
			if len(got) != len(c.want) {
				t.Errorf("got %d names, want %d: %q", len(got), len(c.want), got)
			}
			for id, want := range c.want {
				if got[id] != want {
					t.Errorf("%s: %q, want %q", id, got[id], want)
				}
			}
		})
	}
}

func FuzzBackupDirNames(f *testing.F) {
	f.Add("photos", "photos", "", uint8(0))
	f.Add("a/b", "\xff\x00", " x ", uint8(3))
	f.Add(strings.Repeat("ü", 300), "db-00000001", "db", uint8(1))
	f.Fuzz(func(t *testing.T, n1, n2, n3 string, same uint8) {
		ids := []string{"20261123T020000Z-00000001", "20261123T020000Z-00000002", "20261123T020001Z-00000003"}
		if same&1 != 0 {
			ids[2] = "20261123T020000Z-00000003"
		}
		ms := []*vault.Manifest{manifestAt(ids[0], n1), manifestAt(ids[1], n2), manifestAt(ids[2], n3)}
		names := backupDirNames(ms)
		seen := map[string]bool{}
		for _, m := range ms {
			name := names[m.ID]
			if !validName(name) || strings.ContainsAny(name, "\\\n\r\t") || !utf8.ValidString(name) {
				t.Fatalf("%q: invalid directory name %q", m.Name, name)
			}
			if name == vaultLatestName || name == vaultByIDName {
				t.Fatalf("%q: directory name %q is reserved", m.Name, name)
			}
			if seen[name] {
				t.Fatalf("directory name %q given twice: %q", name, names)
			}
			seen[name] = true
		}
		// The same input gives the same names in any order.
		again := backupDirNames([]*vault.Manifest{ms[2], ms[0], ms[1]})
		for id, name := range names {
			if again[id] != name {
				t.Fatalf("%s: %q, then %q in another order", id, name, again[id])
			}
		}
	})
}

func TestParseVaultManifestKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		key string
		id  string
		ok  bool
	}{
		{"backups/20261123T020000Z-1a2b3c4d.json", "20261123T020000Z-1a2b3c4d", true},
		{"backups/20261123T020000Z-1a2b3c4d.json.tmp", "", false},
		{"backups/20261123T020000Z-1A2B3C4D.json", "", false},
		{"backups/x/20261123T020000Z-1a2b3c4d.json", "", false},
		{"trees/20261123T020000Z-1a2b3c4d.json", "", false},
		{"backups/.json", "", false},
	} {
		id, ok := parseVaultManifestKey(c.key)
		if ok != c.ok || (ok && id != c.id) {
			t.Errorf("%q: %q, %v; want %q, %v", c.key, id, ok, c.id, c.ok)
		}
	}
}

func TestTreeIndex(t *testing.T) {
	t.Parallel()
	tr := &vault.Tree{Entries: []*vault.Entry{
		{Path: "b", Type: vault.TypeDir},
		{Path: "b/z", Type: vault.TypeFile},
		{Path: "b/a", Type: vault.TypeDir},
		{Path: "b/a/x", Type: vault.TypeSymlink, Target: "../z"},
		{Path: "a", Type: vault.TypeFile},
		{Path: "b/m", Type: vault.TypeDir},
	}}
	ix := newTreeIndex(tr)
	for _, c := range []struct{ dir, name, want string }{
		{"", "a", "a"}, {"", "b", "b"}, {"b", "a", "b/a"}, {"b", "m", "b/m"}, {"b", "z", "b/z"},
		{"b/a", "x", "b/a/x"}, {"", "z", ""}, {"b/a", "y", ""}, {"nope", "x", ""},
	} {
		e := ix.lookup(c.dir, c.name)
		got := ""
		if e != nil {
			got = e.Path
		}
		if got != c.want {
			t.Errorf("lookup(%q, %q) = %q, want %q", c.dir, c.name, got, c.want)
		}
	}
	if ix.subdirs["b"] != 2 || ix.subdirs[""] != 1 || ix.subdirs["b/a"] != 0 {
		t.Errorf("subdirs: %v", ix.subdirs)
	}
}

func TestMemChunkCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	m := newMemChunkCache(10)
	m.add("a", make([]byte, 4))
	m.add("b", make([]byte, 4))
	m.get("a") // a is now the most recently used
	m.add("c", make([]byte, 4))
	if !m.has("a") || m.has("b") || !m.has("c") {
		t.Errorf("after evicting: a %v b %v c %v; want a and c", m.has("a"), m.has("b"), m.has("c"))
	}
	m.add("huge", make([]byte, 11))
	if m.has("huge") || !m.has("a") {
		t.Error("a chunk larger than the cache was kept, or evicted the others")
	}
	if m.total != 8 {
		t.Errorf("total %d, want 8", m.total)
	}
}

func chunkOf(data []byte) vault.Chunk {
	s := sha256.Sum256(data)
	return vault.Chunk{SHA256: hex.EncodeToString(s[:]), Size: int64(len(data))}
}

func TestDiskChunkCache(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	log := testLogger(t, slog.LevelWarn)
	d, err := openDiskChunkCache(dir, 3000, log)
	if err != nil {
		t.Fatal(err)
	}
	var chunks []vault.Chunk
	var datas [][]byte
	for i := range 4 {
		data := randomBytes(uint64(i), 1000)
		c := chunkOf(data)
		chunks, datas = append(chunks, c), append(datas, data)
	}
	for i := range 3 {
		d.put(chunks[i].SHA256, datas[i])
		time.Sleep(10 * time.Millisecond) // distinct mtimes
	}
	if got := d.get(chunks[0]); !bytes.Equal(got, datas[0]) { // 0 is now the most recently used
		t.Fatal("chunk 0 not served from the disk cache")
	}
	d.put(chunks[3].SHA256, datas[3]) // over the limit: 1 goes
	if total, n := d.size(); total != 3000 || n != 3 {
		t.Errorf("size %d in %d chunks, want 3000 in 3", total, n)
	}
	if d.get(chunks[1]) != nil {
		t.Error("the least recently used chunk was not evicted")
	}
	if _, err := os.Stat(d.path(chunks[1].SHA256)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("evicted chunk's file: %v", err)
	}

	// A second mount of the same vault cannot share the directory.
	if _, err := openDiskChunkCache(dir, 3000, log); err == nil || !strings.Contains(err.Error(), "another mount") {
		t.Errorf("second open: %v, want a lock error", err)
	}

	// A damaged file is detected, removed and not served.
	if err := os.WriteFile(d.path(chunks[2].SHA256), bytes.Repeat([]byte{1}, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if d.get(chunks[2]) != nil {
		t.Error("a damaged cache file was served")
	}
	if _, err := os.Stat(d.path(chunks[2].SHA256)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("damaged file not removed: %v", err)
	}
	d.close()

	// Reopened: the index is rebuilt from the files, leftovers of
	// unfinished writes are removed, the limit applies.
	leftover := filepath.Join(dir, chunks[0].SHA256[:2], "tmp-123")
	if err := os.WriteFile(leftover, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	d2, err := openDiskChunkCache(dir, 1500, log)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.close()
	if total, n := d2.size(); total != 1000 || n != 1 {
		t.Errorf("reopened with a 1500-byte limit: %d bytes in %d chunks, want 1000 in 1", total, n)
	}
	if got := d2.get(chunks[3]); !bytes.Equal(got, datas[3]) {
		t.Error("the most recently used chunk did not survive the reopen")
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temporary file: %v", err)
	}
}

// gateStore holds every chunk Open until the gate is closed, and counts
// them.
type gateStore struct {
	remote.Store
	gate  chan struct{}
	opens atomic.Int64
}

func (g *gateStore) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.HasPrefix(key, "packs/") {
		g.opens.Add(1)
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.Open(ctx, key, off, length)
}

// putPack stores a pack of chunks (vault.EncodePack) and returns its
// bytes and name.
func putPack(t testing.TB, st remote.Store, chunks ...[]byte) ([]byte, string) {
	t.Helper()
	pack, sum, _ := vault.EncodePack(chunks)
	if _, err := st.Put(context.Background(), vault.PackKey(sum), bytes.NewReader(pack), int64(len(pack)), remote.PutMeta{}); err != nil {
		t.Fatal(err)
	}
	return pack, sum
}

// putChunk stores data as the second chunk of a pack and returns its
// reference.
func putChunk(t testing.TB, st remote.Store, data []byte) vault.Chunk {
	t.Helper()
	before := []byte("another chunk before it")
	_, sum := putPack(t, st, before, data)
	c := chunkOf(data)
	c.Pack, c.Offset = sum, int64(len(before))
	return c
}

func TestChunkCacheSharesFetchesAndSurvivesInterrupts(t *testing.T) {
	t.Parallel()
	st := &gateStore{Store: mem.New(), gate: make(chan struct{})}
	data := randomBytes(1, 100<<10)
	c := putChunk(t, st.Store, data)
	bg, cancel := context.WithCancel(context.Background())
	cc := newChunkCache(st, bg, 1<<20, nil, testLogger(t, slog.LevelWarn))
	defer func() { cancel(); cc.close() }()

	// A reader interrupted while the chunk is on its way gets
	// context.Canceled (EINTR); the fetch goes on.
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := cc.get(ctx, c); errc <- err }()
	for st.opens.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-errc; !errors.Is(err, context.Canceled) || toErrno(err) != syscall.EINTR {
		t.Errorf("interrupted read: %v, want EINTR", err)
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			got, err := cc.get(context.Background(), c)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("get: %d bytes, %v", len(got), err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(st.gate)
	wg.Wait()
	if n := st.opens.Load(); n != 1 {
		t.Errorf("%d store reads for one chunk wanted by 11 readers, want 1", n)
	}
}

func TestChunkCacheChecksContent(t *testing.T) {
	t.Parallel()
	st := mem.New()
	bg, cancel := context.WithCancel(context.Background())
	cc := newChunkCache(st, bg, 1<<20, nil, testLogger(t, slog.LevelError))
	defer func() { cancel(); cc.close() }()
	ctx := context.Background()

	good := putChunk(t, st, []byte("good chunk"))
	if got, err := cc.get(ctx, good); err != nil || string(got) != "good chunk" {
		t.Errorf("good chunk: %q, %v", got, err)
	}

	// The pack holds other bytes than the tree's chunk hashes to.
	altered := chunkOf([]byte("original"))
	_, altered.Pack = putPack(t, st, []byte("0riginal"))
	// The pack ends before the chunk.
	pack, sum := putPack(t, st, []byte("longer"))
	short := chunkOf([]byte("longer content"))
	short.Pack, short.Offset = sum, int64(len(pack))-6
	// The offset points at other bytes of the pack.
	_, sum = putPack(t, st, []byte("ahead"), []byte("chunk"))
	offset := chunkOf([]byte("chunk"))
	offset.Pack, offset.Offset = sum, 1
	// The pack is not there.
	missing := chunkOf([]byte("never stored"))
	missing.Pack = strings.Repeat("ab", 32)
	for name, c := range map[string]vault.Chunk{"altered": altered, "short": short, "offset": offset, "missing": missing} {
		_, err := cc.get(ctx, c)
		if err == nil || toErrno(err) != syscall.EIO {
			t.Errorf("%s chunk: %v (errno %v), want EIO", name, err, toErrno(err))
		}
		if name != "missing" && !errors.Is(err, remote.ErrChecksum) {
			t.Errorf("%s chunk: %v, want a checksum error", name, err)
		}
		if cc.mem.has(c.SHA256) {
			t.Errorf("%s chunk was cached", name)
		}
	}
}

func TestChunkCacheDiskRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	counter := &chunkCounter{Store: mem.New()}
	data := randomBytes(3, 64<<10)
	c := putChunk(t, counter.Store, data)
	log := testLogger(t, slog.LevelWarn)

	for round := range 2 {
		disk, err := openDiskChunkCache(dir, 1<<20, log)
		if err != nil {
			t.Fatal(err)
		}
		bg, cancel := context.WithCancel(context.Background())
		cc := newChunkCache(counter, bg, 1<<20, disk, log)
		got, err := cc.get(context.Background(), c)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d: %d bytes, %v", round, len(got), err)
		}
		cancel()
		cc.close() // waits for the disk write
	}
	if n := counter.opens.Load(); n != 1 {
		t.Errorf("%d store reads over two mounts sharing a disk cache, want 1", n)
	}
}

// TestVaultReadAhead reads a multi-chunk file sequentially through a
// node, without FUSE, and checks that the chunks ahead were fetched
// before they were asked for.
func TestVaultReadAhead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := mem.New()
	v := newTestVault(t, st)
	m, big, want := backupBig(t, v, vaultBigSize, vault.BackupOptions{}, 2)
	bg, cancel := context.WithCancel(ctx)
	fsys := &vaultFS{v: v, bg: bg, log: testLogger(t, slog.LevelWarn), chunks: newChunkCache(st, bg, 64<<20, nil, testLogger(t, slog.LevelWarn))}
	defer func() { cancel(); fsys.chunks.close() }()
	n := newVaultFileNode(fsys, newBackupState(m, nil), big)
	fh, _, errno := n.Open(ctx, syscall.O_RDONLY)
	if errno != 0 {
		t.Fatal(errno)
	}
	buf := make([]byte, 128<<10)
	read := func(off int64) {
		t.Helper()
		res, errno := n.Read(ctx, fh, buf, off)
		if errno != 0 {
			t.Fatalf("read at %d: %v", off, errno)
		}
		got, _ := res.Bytes(nil)
		if !bytes.Equal(got, want[off:min(off+int64(len(buf)), int64(len(want)))]) {
			t.Fatalf("read at %d: wrong data", off)
		}
	}
	read(0)
	read(int64(len(buf)))
	// Sequential: the following chunks are on their way or cached.
	for fsys.chunks.prefetches.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	for i, c := range big.Chunks {
		if !fsys.chunks.mem.has(c.SHA256) {
			t.Errorf("chunk %d of %d not read ahead", i, len(big.Chunks))
		}
	}
	fetched := fsys.chunks.storeReads.Load()
	for off := 2 * int64(len(buf)); off < int64(len(want)); off += int64(len(buf)) {
		read(off)
	}
	if got := fsys.chunks.storeReads.Load(); got != fetched {
		t.Errorf("%d chunks fetched on demand after read-ahead, want 0", got-fetched)
	}

	// Past the end: nothing.
	if res, errno := n.Read(ctx, fh, buf, int64(len(want))+10); errno != 0 || res.Size() != 0 {
		t.Errorf("read past the end: %d bytes, %v", res.Size(), errno)
	}
}

func FuzzParseVaultManifestKey(f *testing.F) {
	f.Add("backups/20261123T020000Z-1a2b3c4d.json")
	f.Add("backups/x.json")
	f.Add("backups/20261123T020000Z-1a2b3c4d.json/x.json")
	f.Fuzz(func(t *testing.T, key string) {
		id, ok := parseVaultManifestKey(key)
		if !ok {
			return
		}
		if !vault.ValidID(id) || key != "backups/"+id+".json" {
			t.Fatalf("%q parsed as backup %q", key, id)
		}
	})
}

// Offered chunks are stored by the background writer; those that may be
// dropped are when it lags, those offered with wait never are; close
// stores every chunk that was queued.
func TestDiskChunkCacheOffer(t *testing.T) {
	t.Parallel()
	d, err := openDiskChunkCache(filepath.Join(t.TempDir(), "cache"), 1<<30, testLogger(t, slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	const n = 64 // 64 MiB offered at once: more than diskWritePending
	var queued, kept []vault.Chunk
	datas := map[string][]byte{}
	for i := range n {
		data := randomBytes(uint64(100+i), 1<<20)
		c := chunkOf(data)
		datas[c.SHA256] = data
		wait := i%4 == 0
		if d.offer(c.SHA256, data, wait) {
			queued = append(queued, c)
			if wait {
				kept = append(kept, c)
			}
		} else if wait {
			t.Fatalf("offer %d with wait was dropped", i)
		}
	}
	d.close()
	if len(kept) != n/4 {
		t.Fatalf("%d offers with wait queued, want %d", len(kept), n/4)
	}
	if got := int64(len(queued)) + d.dropped.Load(); got != n {
		t.Errorf("queued %d + dropped %d = %d, want %d offers accounted for", len(queued), d.dropped.Load(), got, n)
	}
	if _, stored := d.size(); stored != len(queued) {
		t.Errorf("%d chunks stored, want the %d queued", stored, len(queued))
	}
	if p := d.pending.Load(); p != 0 {
		t.Errorf("%d bytes still pending after close", p)
	}
	for _, c := range queued {
		if got := d.get(c); !bytes.Equal(got, datas[c.SHA256]) {
			t.Fatalf("queued chunk %s not stored whole", c.SHA256[:12])
		}
	}
}
