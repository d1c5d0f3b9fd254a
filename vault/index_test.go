package vault

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/atomicfile"
	"github.com/ferrysync/ferry/remote/mem"
)

// smallFiles writes n files of 4 KiB (distinct contents) under dir/small.
func smallFiles(t testing.TB, dir string, n int) {
	t.Helper()
	mt := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	for i := range n {
		writeFile(t, filepath.Join(dir, "small", fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%04d", i)), randomBytes(uint64(1000+i), 4096), 0o644, mt)
	}
}

// TestSmallFilesArePacked: 600 small files and a 20 MiB file make a
// handful of objects, not one per chunk, and an incremental run with one
// percent changed lists packs/ and adds one pack.
func TestSmallFilesArePacked(t *testing.T) {
	ctx := context.Background()
	v, st := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 20<<20)
	smallFiles(t, src, 600)
	m1, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packs, chunks := packedChunks(t, st)
	if int64(chunks) != m1.Stats.Chunks || int64(packs) != m1.Stats.NewPacks || packs > 3 {
		t.Errorf("%d chunks in %d packs; the backup made %d chunks, %d packs", chunks, packs, m1.Stats.Chunks, m1.Stats.NewPacks)
	}
	for i := 0; i < 600; i += 100 {
		writeFile(t, filepath.Join(src, "small", fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%04d", i)), randomBytes(uint64(i), 4096), 0o644, time.Now())
	}
	m2, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := m2.Stats; s.NewChunks != 6 || s.NewPacks != 1 || s.NewBytes != 6*4096 || s.Unchanged != s.Files-6 {
		t.Errorf("incremental stats = %+v; want 6 new chunks in 1 pack", s)
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m2.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
	if rep, err := v.Verify(ctx, m2.ID, VerifyOptions{ReadData: true}); err != nil || !rep.OK() || rep.Packs != int64(packs)+1 {
		t.Errorf("verify = %+v, %v", rep, err)
	}
}

// TestIndexCache: with a cache directory, a backup reads only the
// trailers of packs it has not seen; without one, every trailer.
func TestIndexCache(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: mem.New()}
	cache := filepath.Join(t.TempDir(), "vaultindex")
	v0, err := Init(ctx, st, KindBackup, Options{Name: "v", Account: "a"})
	if err != nil {
		t.Fatal(err)
	}
	src := makeSource(t, 3<<20)
	// Several packs made without a cache.
	m1, err := v0.Create(ctx, src, BackupOptions{PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	packs := m1.Stats.NewPacks
	if packs < 3 {
		t.Fatalf("%d packs, want several", packs)
	}
	open := func(dir string) *Vault {
		v, err := Open(ctx, st, Options{Name: "v", Account: "a", CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tails := func(f func()) int64 {
		st.tailOpens.Store(0)
		f()
		return st.tailOpens.Load()
	}
	backup := func(v *Vault) *Manifest {
		m, err := v.Create(ctx, src, BackupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	// No cache: every trailer, every time.
	if n := tails(func() { backup(v0) }); n != packs {
		t.Errorf("without a cache a backup read %d trailers, want %d", n, packs)
	}
	// A cache: the first run reads them and keeps them, the next reads none.
	v := open(cache)
	if n := tails(func() { backup(v) }); n != packs {
		t.Errorf("first run with a cache read %d trailers, want %d", n, packs)
	}
	cached, _ := filepath.Glob(filepath.Join(cache, v.ID(), "*", "*"))
	if int64(len(cached)) != packs {
		t.Errorf("cache holds %d files, want %d", len(cached), packs)
	}
	if n := tails(func() { backup(open(cache)) }); n != 0 {
		t.Errorf("second run with a cache read %d trailers, want 0", n)
	}

	// A new pack made by another host (no cache): one trailer read.
	writeFile(t, filepath.Join(src, "new"), randomBytes(77, 5000), 0o644, time.Now())
	m := backup(v0)
	if m.Stats.NewPacks != 1 {
		t.Fatalf("new file: %d packs", m.Stats.NewPacks)
	}
	if n := tails(func() { backup(open(cache)) }); n != 1 {
		t.Errorf("after another host's backup: %d trailers read, want 1", n)
	}
	// The packs this host uploads go to its cache at once.
	writeFile(t, filepath.Join(src, "newer"), randomBytes(78, 5000), 0o644, time.Now())
	backup(open(cache))
	if n := tails(func() { backup(open(cache)) }); n != 0 {
		t.Errorf("after this host's backup: %d trailers read, want 0", n)
	}

	// A damaged cache file is dropped and read again from the store; a
	// file of a pack the vault no longer has is removed.
	cached, _ = filepath.Glob(filepath.Join(cache, v.ID(), "*", "*"))
	if err := os.WriteFile(cached[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(cache, v.ID(), "ab", strings.Repeat("ab", 32))
	if err := atomicfile.WriteFile(stray, []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := tails(func() { backup(open(cache)) }); n != 1 {
		t.Errorf("with a damaged cache file: %d trailers read, want 1", n)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("cache file of a pack not in the vault: %v", err)
	}
	if n := tails(func() { backup(open(cache)) }); n != 0 {
		t.Errorf("after the repair: %d trailers read, want 0", n)
	}

	// Prune removes the cache files of the packs it deletes.
	vc := open(cache)
	ms, _ := vc.Backups(ctx)
	for _, m := range ms {
		if err := vc.Delete(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	vc.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	ps, err := vc.Prune(ctx, PruneOptions{})
	if err != nil || ps.PacksDeleted == 0 {
		t.Fatalf("prune = %+v, %v", ps, err)
	}
	if cached, _ := filepath.Glob(filepath.Join(cache, v.ID(), "*", "*")); len(cached) != 0 {
		t.Errorf("cache files left after every pack was pruned: %v", cached)
	}
}

// TestDamagedTrailerIsNotTrusted: a pack whose trailer is damaged is not
// used for deduplication: its chunks are stored again, and the backup is
// whole. With one reader the chunks come in the same order, so the new
// pack has the damaged one's name and bytes: it repairs it.
func TestDamagedTrailerIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	v, st := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 2<<20)
	m1, err := v.Create(ctx, src, BackupOptions{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m1.Stats.NewPacks != 1 {
		t.Fatalf("%d packs, want 1", m1.Stats.NewPacks)
	}
	tree, _ := v.Tree(ctx, m1)
	var key string
	for _, e := range tree.Entries {
		if len(e.Chunks) > 0 {
			key = PackKey(e.Chunks[0].Pack)
		}
	}
	data, err := readAll(ctx, st, key, MaxPackSize)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-PackFooterSize-5] ^= 1 // in the trailer
	overwrite(t, st, key, data)

	m2, err := v.Create(ctx, src, BackupOptions{Full: true, Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Stats.NewChunks != m1.Stats.Chunks || m2.Tree != m1.Tree {
		t.Errorf("after the damage the backup stored %d chunks, want all %d again, in the same pack", m2.Stats.NewChunks, m1.Stats.Chunks)
	}
	if got, err := readAll(ctx, st, key, MaxPackSize); err != nil || PackKey(sumHex(got)) != key {
		t.Errorf("the damaged pack was not repaired: %v", err)
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m2.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
}

// TestIncrementalRereadsFilesOfLostPacks: a file unchanged since the
// parent whose pack is gone is read and stored again, not taken from the
// parent.
func TestIncrementalRereadsFilesOfLostPacks(t *testing.T) {
	ctx := context.Background()
	v, st := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 2<<20)
	m1, err := v.Create(ctx, src, BackupOptions{PackSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := v.Tree(ctx, m1)
	var readme *Entry
	for _, e := range tree.Entries {
		if e.Path == "README" {
			readme = e
		}
	}
	if err := st.Delete(ctx, PackKey(readme.Chunks[0].Pack)); err != nil {
		t.Fatal(err)
	}
	m2, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Stats.Unchanged != m1.Stats.Files-1 || m2.Stats.NewChunks != 1 {
		t.Errorf("stats = %+v; want README read and stored again", m2.Stats)
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m2.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
}
