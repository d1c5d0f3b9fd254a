package vault

import (
	"context"
	"testing"
)

// A chunk that verify --read-data finds damaged is stored again by the next
// backup on the host (whose cache remembers the damage), even for files
// unchanged since: the new backup verifies clean and restores whole.
func TestBackupAfterVerifyStoresDamagedChunksAgain(t *testing.T) {
	ctx := context.Background()
	st := memStore()
	cache := t.TempDir()
	if _, err := Init(ctx, st, KindBackup, Options{Name: "v", Account: "a"}); err != nil {
		t.Fatal(err)
	}
	v, err := Open(ctx, st, Options{Name: "v", Account: "a", CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	src := makeSource(t, 3<<20)
	m1, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := v.Tree(ctx, m1)
	if err != nil {
		t.Fatal(err)
	}
	var c Chunk
	for _, e := range tree.Entries {
		if e.Path == "a/b/c/deep.txt" {
			c = e.Chunks[0]
		}
	}
	alterChunk(t, st, c)
	rep, err := v.Verify(ctx, m1.ID, VerifyOptions{ReadData: true})
	if err != nil || rep.OK() {
		t.Fatalf("verify of the damaged backup: %+v, %v; want problems", rep, err)
	}

	m2, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Stats.NewChunks == 0 {
		t.Errorf("the backup after verify stored no chunk again: %+v", m2.Stats)
	}
	rep, err = v.Verify(ctx, m2.ID, VerifyOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify of the backup made after the damage was found: %+v, %v", rep, err)
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m2.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)

	// The first backup references the damaged pack: verify still reports
	// it — unless the second backup happened to pack the same chunks in the
	// same order, which rewrites that very pack whole (same name, same
	// bytes). A third backup trusts the packs it finds.
	if rep, _ := v.Verify(ctx, m1.ID, VerifyOptions{ReadData: true}); rep == nil || rep.OK() {
		data, err := readAll(ctx, st, PackKey(c.Pack), MaxPackSize)
		if err != nil || sumHex(data) != c.Pack {
			t.Errorf("the first backup verifies clean, but its pack was not rewritten: %+v, %v", rep, err)
		}
	}
	m3, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m3.Stats.NewChunks != 0 {
		t.Errorf("a third backup stored %d chunks again; the repaired ones are trusted", m3.Stats.NewChunks)
	}
}
