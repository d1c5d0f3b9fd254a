package vault

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/treetest"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

func newMemVault(t testing.TB, kind, account string) (*Vault, *mem.Store) {
	t.Helper()
	st := mem.New()
	v, err := Init(context.Background(), st, kind, Options{Name: account + "-" + kind, Account: account})
	if err != nil {
		t.Fatal(err)
	}
	v.pollEvery = 10 * time.Millisecond
	return v, st
}

func memStore() *mem.Store { return mem.New() }

func openDB(t testing.TB) *state.DB {
	t.Helper()
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// makeSource builds a tree with nested directories, a symlink, an empty
// file, odd modes and a large random file of largeSize bytes (large.img).
func makeSource(t testing.TB, largeSize int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	writeFile(t, filepath.Join(dir, "README"), []byte("hello vault\n"), 0o644, mt)
	writeFile(t, filepath.Join(dir, "empty"), nil, 0o600, mt.Add(time.Hour))
	writeFile(t, filepath.Join(dir, "a/b/c/deep.txt"), []byte(strings.Repeat("deep ", 1000)), 0o640, mt.Add(2*time.Hour))
	writeFile(t, filepath.Join(dir, "a/b/run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755, mt.Add(3*time.Hour))
	writeFile(t, filepath.Join(dir, "a/dup1"), randomBytes(7, 300<<10), 0o644, mt)
	writeFile(t, filepath.Join(dir, "a/dup2"), randomBytes(7, 300<<10), 0o644, mt) // same content: one chunk
	writeFile(t, filepath.Join(dir, "large.img"), randomBytes(42, largeSize), 0o600, mt.Add(4*time.Hour))
	if err := os.Mkdir(filepath.Join(dir, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a/b/c/deep.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(dir, "a/dangling")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a/b/c", "a/b", "a", "emptydir"} {
		if err := os.Chtimes(filepath.Join(dir, d), mt.Add(-time.Hour), mt.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "a/b/c"), 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// compareDirs checks that got (a restore) has exactly want's entries with
// the same types, contents, symlink targets, modes and mtimes (symlink
// mtimes too).
func compareDirs(t testing.TB, want, got string) {
	t.Helper()
	treetest.Compare(t, want, got, treetest.Options{Where: "the restore"})
}

// faultStore wraps a store and fails pack Puts after the first okPuts of
// them, as a process dying mid-backup would stop.
type faultStore struct {
	remote.Store
	okPuts int64
	puts   atomic.Int64
}

var errInjected = &injectedError{}

type injectedError struct{}

func (*injectedError) Error() string { return "injected failure" }

func (f *faultStore) Put(ctx context.Context, key string, r io.Reader, size int64, meta remote.PutMeta) (remote.ObjectInfo, error) {
	if strings.HasPrefix(key, packsDir) && f.puts.Add(1) > f.okPuts {
		return remote.ObjectInfo{}, errInjected
	}
	return f.Store.Put(ctx, key, r, size, meta)
}

// overwrite replaces an object's bytes behind the vault's back.
func overwrite(t testing.TB, st remote.Store, key string, data []byte) {
	t.Helper()
	if _, err := st.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), remote.PutMeta{}); err != nil {
		t.Fatal(err)
	}
}

// alterChunk flips a byte in the middle of chunk c inside its pack, behind
// the vault's back: same size, different content.
func alterChunk(t testing.TB, st remote.Store, c Chunk) {
	t.Helper()
	data, err := readAll(context.Background(), st, PackKey(c.Pack), MaxPackSize)
	if err != nil {
		t.Fatal(err)
	}
	data[c.Offset+c.Size/2] ^= 0x55
	overwrite(t, st, PackKey(c.Pack), data)
}

// packedChunks counts the packs of a store and the chunks their trailers
// list.
func packedChunks(t testing.TB, st remote.Store) (packs, chunks int) {
	t.Helper()
	ctx := context.Background()
	err := st.List(ctx, packsDir, func(oi remote.ObjectInfo) error {
		if _, ok := parsePackKey(oi.Key); !ok {
			return nil
		}
		entries, _, err := readPackIndex(ctx, st, oi.Key, oi.Size)
		if err != nil {
			return err
		}
		packs++
		chunks += len(entries)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return packs, chunks
}

// countingStore counts the Opens of pack objects, and how many of them
// were of a pack's end (index reads).
type countingStore struct {
	remote.Store
	packOpens, tailOpens atomic.Int64
}

func (c *countingStore) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.HasPrefix(key, packsDir) {
		c.packOpens.Add(1)
		if oi, err := c.Store.Stat(ctx, key); err == nil && length > 0 && off+length == oi.Size {
			c.tailOpens.Add(1)
		}
	}
	return c.Store.Open(ctx, key, off, length)
}

// modifyMiddle overwrites n bytes in the middle of a file, keeping its
// mtime different from before.
func modifyMiddle(t testing.TB, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt(randomBytes(99, n), fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mt := fi.ModTime().Add(time.Minute)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}
