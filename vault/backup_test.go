package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
)

func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	v, st := newMemVault(t, KindBackup, "acct")
	if _, err := Init(ctx, st, KindBackup, Options{Name: "again"}); !errors.Is(err, ErrVaultExists) {
		t.Fatalf("second Init: %v, want ErrVaultExists", err)
	}
	got, err := Open(ctx, st, Options{Name: "v", Account: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != v.ID() || got.Kind() != KindBackup || got.Info().Account != "acct" || got.Account() != "other" {
		t.Errorf("Open = %+v (account %q), want id %s kind backup", got.Info(), got.Account(), v.ID())
	}
	if got.Info().Chunker.Algorithm != ChunkAlgorithm || got.Info().Chunker.Avg != ChunkAvg {
		t.Errorf("chunker info = %+v", got.Info().Chunker)
	}
	if _, err := Open(ctx, &faultStore{Store: memStore()}, Options{Name: "none"}); !errors.Is(err, ErrNotVault) {
		t.Fatalf("Open of an empty store: %v, want ErrNotVault", err)
	}
	if _, err := Init(ctx, memStore(), "archive", Options{Name: "bad"}); err == nil {
		t.Fatal("Init accepted kind archive")
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 9<<20+12345)
	var progress []BackupProgress
	var skipped []string
	m, err := v.Create(ctx, src, BackupOptions{
		Name:     "first",
		Progress: func(p BackupProgress) { progress = append(progress, p) },
		Skipped:  func(p, reason string) { skipped = append(skipped, p+": "+reason) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) > 0 {
		t.Errorf("skipped: %v", skipped)
	}
	if m.Status != StatusAvailable || m.Name != "first" || m.Source != src || m.Account != "acct" || m.Parent != "" {
		t.Errorf("manifest = %+v", m)
	}
	s := m.Stats
	if s.Files != 7 || s.Dirs != 4 || s.Symlinks != 2 || s.Skipped != 0 {
		t.Errorf("stats = %+v, want 7 files, 4 dirs, 2 symlinks", s)
	}
	if s.LogicalBytes != s.StoredBytes+300<<10 {
		t.Errorf("logical %d, stored %d: want the duplicate file stored once", s.LogicalBytes, s.StoredBytes)
	}
	if s.NewBytes != s.StoredBytes || s.NewChunks != s.Chunks {
		t.Errorf("first backup uploaded %d bytes / %d chunks, want every chunk (%d / %d)", s.NewBytes, s.NewChunks, s.StoredBytes, s.Chunks)
	}
	if s.Chunks < 6 {
		t.Errorf("chunks = %d; the 9 MiB file should be cut in several", s.Chunks)
	}
	// Every chunk went into one pack (16 MiB): one object, not one per chunk.
	if packs, chunks := packedChunks(t, v.Store()); s.NewPacks != 1 || packs != 1 || int64(chunks) != s.Chunks {
		t.Errorf("new packs %d; the vault holds %d packs with %d chunks; want 1 with %d", s.NewPacks, packs, chunks, s.Chunks)
	}
	last := progress[len(progress)-1]
	if !last.ScanDone || last.FilesDone != 7 || last.FilesTotal != 7 || last.BytesDone != s.LogicalBytes ||
		last.UploadedBytes != s.NewBytes || last.UploadedChunks != s.NewChunks || last.UploadedPacks != s.NewPacks {
		t.Errorf("last progress = %+v", last)
	}

	list, err := v.Backups(ctx)
	if err != nil || len(list) != 1 || list[0].ID != m.ID {
		t.Fatalf("Backups = %v, %v", list, err)
	}

	dst := filepath.Join(t.TempDir(), "restore")
	rs, err := v.Restore(ctx, m.ID, dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Files != 7 || rs.Symlinks != 2 || rs.Bytes != s.LogicalBytes {
		t.Errorf("restore stats = %+v", rs)
	}
	compareDirs(t, src, dst)

	rep, err := v.Verify(ctx, m.ID, VerifyOptions{ReadData: true})
	if err != nil || !rep.OK() || rep.Chunks != s.Chunks {
		t.Fatalf("verify = %+v, %v", rep, err)
	}
}

func TestIncrementalBackup(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 24<<20)
	m1, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing changed: nothing read, nothing uploaded.
	m2, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Parent != m1.ID || m2.Stats.Unchanged != 7 || m2.Stats.NewBytes != 0 || m2.Tree != m1.Tree {
		t.Errorf("unchanged backup: parent %s, stats %+v, tree %s vs %s", m2.Parent, m2.Stats, m2.Tree, m1.Tree)
	}

	// 1 MiB changed in the middle of the large file: a few MiB go up.
	modifyMiddle(t, filepath.Join(src, "large.img"), 1<<20)
	m3, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m3.Stats.Unchanged != 6 {
		t.Errorf("unchanged = %d, want 6", m3.Stats.Unchanged)
	}
	if m3.Stats.NewBytes == 0 || m3.Stats.NewBytes > 6<<20 {
		t.Errorf("after a 1 MiB change the backup uploaded %d bytes; want a few MiB", m3.Stats.NewBytes)
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m3.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)

	// A full backup reads everything but uploads nothing new.
	m4, err := v.Create(ctx, src, BackupOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if m4.Parent != "" || m4.Stats.Unchanged != 0 || m4.Stats.NewBytes != 0 {
		t.Errorf("full backup: %+v", m4.Stats)
	}
}

func TestFailedBackupLeavesNoManifest(t *testing.T) {
	ctx := context.Background()
	st := &faultStore{Store: memStore(), okPuts: 5}
	v, err := Init(ctx, st, KindBackup, Options{Name: "v", Account: "a"})
	if err != nil {
		t.Fatal(err)
	}
	src := makeSource(t, 20<<20)
	if _, err := v.Create(ctx, src, BackupOptions{Workers: 2, PackSize: 1 << 20}); !errors.Is(err, errInjected) {
		t.Fatalf("Create = %v, want the injected failure", err)
	}
	list, err := v.Backups(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("after a failed backup: %d backups (%v)", len(list), err)
	}
	if ms, _ := v.markers(ctx); len(ms) != 0 {
		t.Errorf("running markers left: %v", ms)
	}
	before, _ := v.Usage(ctx)
	if before.Chunks == 0 || before.Packs == 0 || before.Packs > 5 {
		t.Fatalf("usage after the failure = %+v; want the chunks of at most 5 packs", before)
	}

	st.okPuts = 1 << 30
	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Stats.NewChunks != m.Stats.Chunks-before.Chunks {
		t.Errorf("second run uploaded %d chunks; %d of %d were there already", m.Stats.NewChunks, before.Chunks, m.Stats.Chunks)
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
}

func TestCanceledBackup(t *testing.T) {
	v, _ := newMemVault(t, KindBackup, "a")
	src := makeSource(t, 8<<20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Create(ctx, src, BackupOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a canceled context = %v", err)
	}
	list, _ := v.Backups(context.Background())
	if len(list) != 0 {
		t.Fatalf("a canceled backup left %d manifests", len(list))
	}
}

func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	rv, _ := newMemVault(t, KindReplication, "a")
	if _, err := rv.Create(ctx, t.TempDir(), BackupOptions{}); !errors.Is(err, ErrDestination) {
		t.Errorf("backup into a replication vault: %v", err)
	}
	v, _ := newMemVault(t, KindBackup, "a")
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, []byte("x"), 0o644, time.Now())
	if _, err := v.Create(ctx, f, BackupOptions{}); err == nil {
		t.Error("backup of a file, not a directory, succeeded")
	}
	if _, err := v.Create(ctx, filepath.Join(t.TempDir(), "missing"), BackupOptions{}); err == nil {
		t.Error("backup of a missing directory succeeded")
	}
}

func TestBackupSkipsSpecialFiles(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "a")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "ok"), []byte("ok"), 0o644, time.Now())
	bad := filepath.Join(src, `back\slash`)
	writeFile(t, bad, []byte("x"), 0o644, time.Now())
	var mu sync.Mutex
	var skipped []string
	m, err := v.Create(ctx, src, BackupOptions{Skipped: func(p, _ string) { mu.Lock(); skipped = append(skipped, p); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if m.Stats.Files != 1 || m.Stats.Skipped != 1 || !slices.Equal(skipped, []string{`back\slash`}) {
		t.Errorf("stats %+v, skipped %q", m.Stats, skipped)
	}
}

func TestRestorePath(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 1000)
	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	rs, err := v.Restore(ctx, m.ID, dst, RestoreOptions{Path: "/a/b"})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Files != 2 {
		t.Errorf("restored %d files, want 2 (a/b/run.sh, a/b/c/deep.txt)", rs.Files)
	}
	compareDirs(t, filepath.Join(src, "a/b"), filepath.Join(dst, "a/b"))
	if _, err := os.Lstat(filepath.Join(dst, "a/dup1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a/dup1 restored outside --path: %v", err)
	}
	for _, bad := range []string{"nope", "../a", "a//b"} {
		if _, err := v.Restore(ctx, m.ID, t.TempDir(), RestoreOptions{Path: bad}); err == nil {
			t.Errorf("--path %q accepted", bad)
		}
	}
}

func TestRestoreStaysInsideTarget(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "acct")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "d/f"), []byte("new"), 0o644, time.Now())
	writeFile(t, filepath.Join(src, "g"), []byte("new"), 0o644, time.Now())
	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	writeFile(t, victim, []byte("old"), 0o644, time.Now())

	// A symlink planted where a directory goes: refused, not followed.
	dst := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Restore(ctx, m.ID, dst, RestoreOptions{}); err == nil {
		t.Error("restore through a symlinked directory succeeded")
	}
	if _, err := os.Lstat(filepath.Join(outside, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("restore wrote outside the target: %v", err)
	}

	// A symlink planted where a file goes: replaced by the file.
	dst2 := t.TempDir()
	if err := os.Symlink(victim, filepath.Join(dst2, "g")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Restore(ctx, m.ID, dst2, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "old" {
		t.Errorf("victim outside the target now holds %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dst2, "g")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("g: %v, %v", fi, err)
	}
}

func TestVerifyDetectsDamage(t *testing.T) {
	ctx := context.Background()
	v, st := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 3<<20)
	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := v.Tree(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	var large *Entry
	for _, e := range tree.Entries {
		if e.Path == "large.img" {
			large = e
		}
	}
	alterChunk(t, st, large.Chunks[1])

	rep, err := v.Verify(ctx, m.ID, VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("structure verify of a same-size alteration: %+v, %v", rep, err)
	}
	rep, err = v.Verify(ctx, m.ID, VerifyOptions{ReadData: true, MarkError: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Problems) != 1 || !rep.Marked {
		t.Fatalf("read-data verify = %+v", rep)
	}
	if got, _ := v.Backup(ctx, m.ID); got.Status != StatusError {
		t.Errorf("status after failed verify = %s, want error", got.Status)
	}
	if _, err := v.Restore(ctx, m.ID, t.TempDir(), RestoreOptions{}); !errors.Is(err, remote.ErrChecksum) {
		t.Errorf("restore of a corrupt chunk: %v, want ErrChecksum", err)
	}

	// A trailer altered: found without reading data. (The pack is also
	// no longer what its name says.)
	data, err := readAll(ctx, st, PackKey(large.Chunks[0].Pack), MaxPackSize)
	if err != nil {
		t.Fatal(err)
	}
	fixed := slices.Clone(data)
	i := bytes.LastIndex(data, []byte(large.Chunks[0].SHA256))
	data[i] ^= 1
	overwrite(t, st, PackKey(large.Chunks[0].Pack), data)
	rep, err = v.Verify(ctx, m.ID, VerifyOptions{})
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "trailer") {
		t.Fatalf("verify with an altered trailer = %+v, %v", rep, err)
	}
	overwrite(t, st, PackKey(large.Chunks[0].Pack), fixed)

	// A missing pack is found without reading data: one problem.
	if err := st.Delete(ctx, PackKey(large.Chunks[0].Pack)); err != nil {
		t.Fatal(err)
	}
	rep, err = v.Verify(ctx, m.ID, VerifyOptions{})
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "missing") {
		t.Fatalf("verify with a missing pack = %+v, %v", rep, err)
	}
	// A missing tree too.
	if err := st.Delete(ctx, treeKey(m.Tree)); err != nil {
		t.Fatal(err)
	}
	rep, err = v.Verify(ctx, m.ID, VerifyOptions{})
	if err != nil || rep.OK() {
		t.Fatalf("verify with a missing tree = %+v, %v", rep, err)
	}
	if _, err := v.Verify(ctx, "20200101T000000Z-00000000", VerifyOptions{}); !errors.Is(err, ErrNoBackup) {
		t.Errorf("verify of an unknown backup: %v", err)
	}
}

func TestDeleteAndPrune(t *testing.T) {
	ctx := context.Background()
	v, st := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 6<<20)
	// A chunk per pack: prune can free every chunk backup 2 does not use.
	one := BackupOptions{PackSize: 1}
	m1, err := v.Create(ctx, src, one)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Stats.NewPacks != m1.Stats.Chunks {
		t.Fatalf("pack size 1: %d packs for %d chunks", m1.Stats.NewPacks, m1.Stats.Chunks)
	}
	modifyMiddle(t, filepath.Join(src, "large.img"), 1<<20)
	writeFile(t, filepath.Join(src, "extra"), randomBytes(5, 100<<10), 0o644, time.Now())
	m2, err := v.Create(ctx, src, one)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := v.Usage(ctx)

	// Nothing unreferenced: nothing to prune.
	v.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	ps, err := v.Prune(ctx, PruneOptions{})
	if err != nil || ps.PacksDeleted != 0 || ps.TreesDeleted != 0 || ps.UnusedChunks != 0 {
		t.Fatalf("prune with every chunk referenced: %+v, %v", ps, err)
	}

	if err := v.Delete(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Backup(ctx, m1.ID); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("deleted backup still there: %v", err)
	}
	// Within the grace period nothing goes.
	v.now = time.Now
	ps, err = v.Prune(ctx, PruneOptions{})
	if err != nil || ps.PacksDeleted != 0 || ps.Young == 0 {
		t.Fatalf("prune within the grace period: %+v, %v", ps, err)
	}
	v.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	dry, err := v.Prune(ctx, PruneOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	ps, err = v.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ps.ChunksDeleted == 0 || ps.PacksDeleted != ps.ChunksDeleted || ps.TreesDeleted != 1 || ps != dry {
		t.Errorf("prune = %+v, dry run = %+v", ps, dry)
	}
	after, _ := v.Usage(ctx)
	if after.Chunks != before.Chunks-ps.ChunksDeleted || after.Chunks != m2.Stats.Chunks ||
		after.Packs != before.Packs-ps.PacksDeleted || after.StoredBytes != before.StoredBytes-ps.BytesDeleted {
		t.Errorf("usage %+v → %+v, pruned %+v; backup 2 references %d chunks", before, after, ps, m2.Stats.Chunks)
	}
	rep, err := v.Verify(ctx, m2.ID, VerifyOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after prune: %+v, %v", rep, err)
	}

	// An interrupted delete (manifest left "deleting") is finished by prune.
	m2.Status = StatusDeleting
	if err := v.putManifest(ctx, m2); err != nil {
		t.Fatal(err)
	}
	ps, err = v.Prune(ctx, PruneOptions{})
	if err != nil || ps.ManifestsRemoved != 1 {
		t.Fatalf("prune with a deleting manifest: %+v, %v", ps, err)
	}
	u, _ := v.Usage(ctx)
	if u.Chunks != 0 || u.Packs != 0 || u.Trees != 0 {
		t.Errorf("after deleting every backup: %+v", u)
	}
	if _, err := st.Stat(ctx, manifestKey(m2.ID)); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("deleting manifest left: %v", err)
	}
}

// TestPruneKeepsSharedPacks: a pack with a chunk still used stays whole,
// and prune counts the unused chunks kept in it.
func TestPruneKeepsSharedPacks(t *testing.T) {
	ctx := context.Background()
	v, _ := newMemVault(t, KindBackup, "acct")
	src := t.TempDir()
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	writeFile(t, filepath.Join(src, "keep"), randomBytes(1, 3000), 0o644, mt)
	writeFile(t, filepath.Join(src, "gone"), randomBytes(2, 5000), 0o644, mt)
	m1, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "gone")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "new"), randomBytes(3, 7000), 0o644, mt)
	m2, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m1.Stats.NewPacks != 1 || m2.Stats.NewPacks != 1 || m2.Stats.NewChunks != 1 {
		t.Fatalf("backups made %d and %d packs (%d new chunks); want 1 each", m1.Stats.NewPacks, m2.Stats.NewPacks, m2.Stats.NewChunks)
	}
	if err := v.Delete(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	ps, err := v.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := PruneStats{ReferencedChunks: 2, ReferencedPacks: 2, TreesDeleted: 1, UnusedChunks: 1, UnusedBytes: 5000}
	if ps != want {
		t.Errorf("prune = %+v, want %+v", ps, want)
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m2.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
}

func TestPruneAndWritersExclude(t *testing.T) {
	ctx := context.Background()
	v, st := newMemVault(t, KindBackup, "acct")
	src := makeSource(t, 2<<20)

	// A live backup marker: prune deletes nothing.
	live := Marker{Kind: markerKindBackup, ID: "20240101T000000Z-00000001", Host: "h", PID: 1, Started: time.Now(), Heartbeat: time.Now()}
	if err := putDoc(ctx, st, markerKey(live.Kind, live.ID), encodeJSON(live)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Prune(ctx, PruneOptions{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("prune beside a running backup: %v, want ErrBusy", err)
	}
	// A stale one is ignored and removed.
	live.Heartbeat = time.Now().Add(-2 * defaultStaleAfter)
	if err := putDoc(ctx, st, markerKey(live.Kind, live.ID), encodeJSON(live)); err != nil {
		t.Fatal(err)
	}
	ps, err := v.Prune(ctx, PruneOptions{})
	if err != nil || ps.StaleMarkers != 1 {
		t.Fatalf("prune with a stale marker: %+v, %v", ps, err)
	}

	// A live prune marker: a backup waits until it is gone.
	pm := Marker{Kind: markerKindPrune, ID: "20240101T000000Z-00000002", Heartbeat: time.Now()}
	if err := putDoc(ctx, st, markerKey(pm.Kind, pm.ID), encodeJSON(pm)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := v.Create(ctx, src, BackupOptions{})
		done <- err
	}()
	// The backup cannot finish while the prune marker lives (no timing is
	// asserted: it could only be slower).
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("backup ended while a prune was running: %v", err)
	default:
	}
	if list, _ := v.Backups(ctx); len(list) != 0 {
		t.Fatal("backup written while a prune was running")
	}
	if err := st.Delete(ctx, markerKey(pm.Kind, pm.ID)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A waiting writer gives up with its context.
	if err := putDoc(ctx, st, markerKey(pm.Kind, pm.ID), encodeJSON(pm)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := v.Create(cctx, src, BackupOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("backup waiting on a prune, canceled: %v", err)
	}
	running, err := v.Running(ctx)
	if err != nil || len(running) != 1 || running[0].Kind != markerKindPrune {
		t.Errorf("Running = %+v, %v; want only the prune marker", running, err)
	}
}
