package vault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckRules(t *testing.T) {
	home := Side{ID: "v1", Name: "main", Kind: KindBackup, Account: "A"}
	repB := Side{ID: "v2", Name: "offsite", Kind: KindReplication, Account: "B"}
	repC := Side{ID: "v3", Name: "third", Kind: KindReplication, Account: "C"}
	sameAcct := Side{ID: "v4", Name: "main2", Kind: KindBackup, Account: "A"}
	bkB := Side{ID: "v5", Name: "b-backup", Kind: KindBackup, Account: "B"}
	orig := &Manifest{ID: "20240101T000000Z-00000001", Status: StatusAvailable, Account: "A"}
	replica := &Manifest{ID: orig.ID, Status: StatusAvailable, Account: "A", ReplicatedFrom: &ReplicatedFrom{VaultID: "v1", Account: "A", BackupID: orig.ID}}
	rec := func(status, acct string) *Replication {
		return &Replication{ID: "r" + status + acct, Status: status, DestinationAccount: acct, DestinationVault: "x"}
	}
	tests := []struct {
		name     string
		m        *Manifest
		src, dst Side
		history  []*Replication
		resuming string
		want     error
	}{
		{"first replication", orig, home, repB, nil, "", nil},
		{"again to the same account", orig, home, repB, []*Replication{rec(ReplSuccess, "B")}, "", nil},
		{"second account", orig, home, repC, []*Replication{rec(ReplSuccess, "B")}, "", ErrSecondAccount},
		{"second account while one runs", orig, home, repC, []*Replication{rec(ReplReplicating, "B")}, "", ErrSecondAccount},
		{"after a failure another account is fine", orig, home, repC, []*Replication{rec(ReplFail, "B"), rec(ReplSkip, "B")}, "", nil},
		{"resuming record not counted", orig, home, repC, []*Replication{rec(ReplReplicating, "B")}, "rreplicatingB", nil},
		{"same account other vault", orig, home, sameAcct, []*Replication{rec(ReplSuccess, "B")}, "", nil},
		{"not available", &Manifest{ID: orig.ID, Status: StatusError, Account: "A"}, home, repB, nil, "", ErrNotAvailable},
		{"deleting", &Manifest{ID: orig.ID, Status: StatusDeleting, Account: "A"}, home, repB, nil, "", ErrNotAvailable},
		{"same vault", orig, home, home, nil, "", ErrDestination},
		{"into a backup vault of another account", orig, home, bkB, nil, "", ErrDestination},
		{"replica back home", replica, repB, home, nil, "", nil},
		{"replica back to another vault of home", replica, repB, sameAcct, nil, "", nil},
		{"replica to a third account", replica, repB, repC, nil, "", ErrSecondAccount},
		{"replica to its own account elsewhere", replica, repB, Side{ID: "v6", Name: "b2", Kind: KindReplication, Account: "B"}, nil, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRules(tc.m, tc.src, tc.dst, tc.history, tc.resuming)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("CheckRules = %v, want %v", err, tc.want)
			}
		})
	}
}

// twoClouds returns a backup vault on account A, and replication vaults on
// accounts B and C, all in memory.
func twoClouds(t *testing.T) (a, b, c *Vault) {
	a, _ = newMemVault(t, KindBackup, "A")
	b, _ = newMemVault(t, KindReplication, "B")
	c, _ = newMemVault(t, KindReplication, "C")
	return a, b, c
}

func TestReplicate(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	a, b, c := twoClouds(t)
	src := makeSource(t, 12<<20)
	m, err := a.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var last ReplicateProgress
	rec, err := Replicate(ctx, a, m.ID, b, ReplicateOptions{DB: db, Progress: func(p ReplicateProgress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ReplSuccess || rec.Chunks != m.Stats.Chunks || rec.Packs != m.Stats.NewPacks || rec.Bytes <= m.Stats.StoredBytes ||
		rec.SourceAccount != "A" || rec.DestinationAccount != "B" || rec.Started.IsZero() || rec.Ended.IsZero() {
		t.Errorf("record = %+v", rec)
	}
	if last.ChunksDone != m.Stats.Chunks || last.ChunksTotal != m.Stats.Chunks || last.PacksDone != rec.Packs ||
		last.BytesDone != last.BytesTotal || last.BytesDone <= m.Stats.StoredBytes {
		t.Errorf("last progress = %+v", last)
	}
	if packs, _ := packedChunks(t, b.Store()); int64(packs) != rec.Packs {
		t.Errorf("the replica vault holds %d packs; the record says %d were copied", packs, rec.Packs)
	}
	replica, err := b.Backup(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	rf := replica.ReplicatedFrom
	if rf == nil || rf.VaultID != a.ID() || rf.Account != "A" || rf.BackupID != m.ID || replica.Account != "A" || replica.Stats != m.Stats {
		t.Errorf("replica manifest = %+v (from %+v)", replica, rf)
	}
	dst := t.TempDir()
	if _, err := b.Restore(ctx, m.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)

	// The record is in the source vault and in the database.
	inVault, err := a.Replications(ctx, m.ID)
	if err != nil || len(inVault) != 1 || inVault[0].Status != ReplSuccess || inVault[0].ID != rec.ID {
		t.Fatalf("vault records = %+v, %v", inVault, err)
	}
	var inDB Replication
	if found, err := db.GetRecord(RecordNamespace, rec.ID, &inDB); !found || err != nil || inDB.Status != ReplSuccess {
		t.Fatalf("database record = %+v, %v, %v", inDB, found, err)
	}

	// A repeat is a skip.
	again, err := Replicate(ctx, a, m.ID, b, ReplicateOptions{DB: db})
	if err != nil || again.Status != ReplSkip || again.Chunks != 0 {
		t.Fatalf("repeat = %+v, %v", again, err)
	}
	// A second account is refused, with no record.
	if _, err := Replicate(ctx, a, m.ID, c, ReplicateOptions{DB: db}); !errors.Is(err, ErrSecondAccount) ||
		!strings.Contains(err.Error(), `went to account "B"`) {
		t.Fatalf("second account: %v", err)
	}
	if rs, _ := a.Replications(ctx, m.ID); len(rs) != 2 {
		t.Errorf("records after a refusal: %d, want 2 (success, skip)", len(rs))
	}
	// The replica cannot go to a third account either.
	if _, err := Replicate(ctx, b, m.ID, c, ReplicateOptions{DB: db}); !errors.Is(err, ErrSecondAccount) {
		t.Fatalf("replica to a third account: %v", err)
	}

	// Delete the original and prune it away; the replica comes back home.
	if err := a.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if ps, err := a.Prune(ctx, PruneOptions{}); err != nil || ps.ChunksDeleted != m.Stats.Chunks {
		t.Fatalf("prune = %+v, %v", ps, err)
	}
	a.now = time.Now
	back, err := Replicate(ctx, b, m.ID, a, ReplicateOptions{DB: db})
	if err != nil || back.Status != ReplSuccess || back.Chunks != m.Stats.Chunks {
		t.Fatalf("replicate back = %+v, %v", back, err)
	}
	home, err := a.Backup(ctx, m.ID)
	if err != nil || home.ReplicatedFrom == nil || home.ReplicatedFrom.VaultID != b.ID() || home.Account != "A" {
		t.Fatalf("restored original = %+v, %v", home, err)
	}
	dst2 := t.TempDir()
	if _, err := a.Restore(ctx, m.ID, dst2, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst2)
	// And still only to B from there.
	if _, err := Replicate(ctx, a, m.ID, c, ReplicateOptions{DB: db}); !errors.Is(err, ErrSecondAccount) {
		t.Fatalf("returned backup to a third account: %v", err)
	}
}

func TestReplicateIncremental(t *testing.T) {
	ctx := context.Background()
	a, b, _ := twoClouds(t)
	src := makeSource(t, 24<<20)
	m1, err := a.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Replicate(ctx, a, m1.ID, b, ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	modifyMiddle(t, filepath.Join(src, "large.img"), 1<<20)
	m2, err := a.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Replicate(ctx, a, m2.ID, b, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Chunks != m2.Stats.NewChunks || rec.Packs != m2.Stats.NewPacks || rec.Bytes-m2.Stats.NewBytes > 64<<10 || rec.Bytes > 6<<20 {
		t.Errorf("incremental replication copied %d chunks / %d bytes; the backup uploaded %d / %d",
			rec.Chunks, rec.Bytes, m2.Stats.NewChunks, m2.Stats.NewBytes)
	}
	dst := t.TempDir()
	if _, err := b.Restore(ctx, m2.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
}

func TestReplicateRefusesUnavailableAndCorrupt(t *testing.T) {
	ctx := context.Background()
	a, b, _ := twoClouds(t)
	src := makeSource(t, 3<<20)
	m, err := a.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Status = StatusError
	if err := a.putManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := Replicate(ctx, a, m.ID, b, ReplicateOptions{}); !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("replicate an error backup: %v", err)
	}
	if _, err := Replicate(ctx, a, "20200101T000000Z-00000000", b, ReplicateOptions{}); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("replicate an unknown backup: %v", err)
	}

	// A chunk altered at the source: the replication fails, leaves no
	// replica and records the failure.
	m.Status = StatusAvailable
	if err := a.putManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	tree, _ := a.Tree(ctx, m)
	var c Chunk
	for _, e := range tree.Entries {
		if e.Path == "large.img" {
			c = e.Chunks[0]
		}
	}
	alterChunk(t, a.Store(), c)
	rec, err := Replicate(ctx, a, m.ID, b, ReplicateOptions{})
	if err == nil || rec == nil || rec.Status != ReplFail || !strings.Contains(rec.Error, "checksum") {
		t.Fatalf("replicate a corrupt backup = %+v, %v", rec, err)
	}
	if _, err := b.Backup(ctx, m.ID); !errors.Is(err, ErrNoBackup) {
		t.Errorf("a failed replication left a manifest: %v", err)
	}
	if _, err := b.Store().Stat(ctx, PackKey(c.Pack)); err == nil {
		t.Error("the corrupt pack reached the destination")
	}
	if ms, _ := b.markers(ctx); len(ms) != 0 {
		t.Errorf("markers left in the destination: %v", ms)
	}
}

func TestRecoverReplications(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	a, b, _ := twoClouds(t)
	src := makeSource(t, 5<<20)
	m, err := a.Create(ctx, src, BackupOptions{PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if m.Stats.NewPacks < 5 {
		t.Fatalf("%d packs; the test needs more than 3", m.Stats.NewPacks)
	}
	// A replication that died half way: 3 packs copied, its record left
	// "replicating", its marker left in the destination.
	crashed := &faultStore{Store: b.Store(), okPuts: 3}
	bCrash := newVault(crashed, b.Info(), Options{Name: b.Name(), Account: b.Account()})
	rec, err := Replicate(ctx, a, m.ID, bCrash, ReplicateOptions{DB: db, Workers: 1})
	if err == nil {
		t.Fatal("injected failure did not fail the replication")
	}
	rec.Status, rec.Error, rec.Ended = ReplReplicating, "", time.Time{}
	if err := saveRecord(ctx, a, rec, db); err != nil {
		t.Fatal(err)
	}
	// One whose destination vault is gone from the configuration.
	orphan := *rec
	orphan.ID = "r" + newID(time.Now())
	orphan.DestinationVault = "removed"
	if err := saveRecord(ctx, a, &orphan, db); err != nil {
		t.Fatal(err)
	}
	// One from another host: not ours to recover.
	other := *rec
	other.ID = "r" + newID(time.Now())
	other.Host = "elsewhere"
	if err := saveRecord(ctx, a, &other, db); err != nil {
		t.Fatal(err)
	}

	open := func(_ context.Context, name string) (*Vault, error) {
		switch name {
		case a.Name():
			return a, nil
		case b.Name():
			return b, nil
		}
		return nil, fmt.Errorf("no vault %q", name)
	}
	_, copied := packedChunks(t, b.Store())
	got, err := RecoverReplications(ctx, db, open, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("recovered %d records, want 2: %+v", len(got), got)
	}
	byID := map[string]*Replication{}
	for _, r := range got {
		byID[r.ID] = r
	}
	if r := byID[rec.ID]; r == nil || r.Status != ReplSuccess || r.Chunks != m.Stats.Chunks-int64(copied) || r.Packs != m.Stats.NewPacks-3 {
		t.Errorf("resumed = %+v; want success copying the %d chunks (%d packs) not copied before", r, m.Stats.Chunks-int64(copied), m.Stats.NewPacks-3)
	}
	if r := byID[orphan.ID]; r == nil || r.Status != ReplFail || !strings.Contains(r.Error, `no vault "removed"`) {
		t.Errorf("orphan = %+v", r)
	}
	dst := t.TempDir()
	if _, err := b.Restore(ctx, m.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)

	// Nothing is left replicating on this host, in the database or the vault.
	all, _ := DBReplications(db)
	for _, r := range all {
		if r.Active() && r.Host == hostname() {
			t.Errorf("database record left active: %+v", r)
		}
	}
	vrecs, _ := a.Replications(ctx, m.ID)
	for _, r := range vrecs {
		if r.Active() && r.Host == hostname() {
			t.Errorf("vault record left active: %+v", r)
		}
	}
}
