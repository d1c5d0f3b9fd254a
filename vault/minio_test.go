package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote/connect"
)

// largeSize is the big file of the two-cloud test: 40 MiB, or the
// acceptance's 200 MiB with FERRY_TEST_LARGE=1.
func largeSize() int {
	if os.Getenv("FERRY_TEST_LARGE") == "1" {
		return 200 << 20
	}
	return 40 << 20
}

// twoCloudConfig starts two MinIO servers and returns a configuration with
// vaults on them: main (backup, account cloud-one, server 1), offsite
// (replication, account cloud-two, server 2) and third (replication,
// account cloud-three, server 2, another bucket).
func twoCloudConfig(t *testing.T) *config.Config {
	t.Helper()
	s1 := testenv.MinIO(t)
	s2 := testenv.MinIO(t)
	if s1.Endpoint == s2.Endpoint {
		t.Log("both clouds are the same external endpoint; accounts still differ")
	}
	text := fmt.Sprintf(`
state_dir = %[1]q

[credentials.one]
access_key = %[2]q
secret_key = %[3]q
account = "cloud-one"

[credentials.two]
access_key = %[4]q
secret_key = %[5]q
account = "cloud-two"

[credentials.three]
access_key = %[4]q
secret_key = %[5]q
account = "cloud-three"

[remotes.one]
type = "s3"
endpoint = %[6]q
bucket = %[7]q
region = %[8]q
tls = %[9]t
credential = "one"

[remotes.two]
type = "s3"
endpoint = %[10]q
bucket = %[11]q
region = %[12]q
tls = %[13]t
credential = "two"

[remotes.three]
type = "s3"
endpoint = %[10]q
bucket = %[14]q
region = %[12]q
tls = %[13]t
credential = "three"

[vaults.main]
remote = "one"
prefix = "vaults/main/"

[vaults.offsite]
remote = "two"
prefix = "vaults/offsite/"
kind = "replication"

[vaults.third]
remote = "three"
kind = "replication"
`, t.TempDir(), s1.AccessKey, s1.SecretKey, s2.AccessKey, s2.SecretKey,
		s1.Endpoint, s1.NewBucket(t), s1.Region, s1.TLS,
		s2.Endpoint, s2.NewBucket(t), s2.Region, s2.TLS, s2.NewBucket(t))
	cfg, err := config.Parse([]byte(text), "two-clouds.toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// initVault creates the configured vault name and returns it opened.
func initVault(t *testing.T, cfg *config.Config, name string) *Vault {
	t.Helper()
	vc := cfg.Vaults[name]
	st, err := connect.OpenRemote(context.Background(), cfg, cfg.Remotes[vc.Remote], vc.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Init(context.Background(), st, vc.Kind, Options{Name: name, Account: cfg.RemoteAccount(vc.Remote)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTwoCloudsMinIO(t *testing.T) {
	ctx := context.Background()
	cfg := twoCloudConfig(t)
	db := openDB(t)
	main, offsite, third := initVault(t, cfg, "main"), initVault(t, cfg, "offsite"), initVault(t, cfg, "third")
	if main.Account() != "cloud-one" || offsite.Account() != "cloud-two" || third.Account() != "cloud-three" {
		t.Fatalf("accounts %q %q %q", main.Account(), offsite.Account(), third.Account())
	}

	// Back up a tree with nested dirs, symlinks, an empty file and a large file.
	size := largeSize()
	src := makeSource(t, size)
	m1, err := main.Create(ctx, src, BackupOptions{Name: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if m1.Stats.LogicalBytes < int64(size) || m1.Stats.NewBytes != m1.Stats.StoredBytes {
		t.Errorf("first backup stats = %+v", m1.Stats)
	}

	// Replicate it to the other cloud and restore from the replica.
	rec, err := Replicate(ctx, main, m1.ID, offsite, ReplicateOptions{DB: db})
	if err != nil || rec.Status != ReplSuccess || rec.Chunks != m1.Stats.Chunks {
		t.Fatalf("replicate = %+v, %v", rec, err)
	}
	t.Logf("backup %s: %d chunks, %d bytes in %s; replication %s", m1.ID, m1.Stats.Chunks, m1.Stats.NewBytes,
		m1.Finished.Sub(m1.Started), rec.Ended.Sub(rec.Started))
	fromReplica := filepath.Join(t.TempDir(), "r1")
	if _, err := offsite.Restore(ctx, m1.ID, fromReplica, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, fromReplica)

	// A repeat is a skip; a second account is refused.
	if again, err := Replicate(ctx, main, m1.ID, offsite, ReplicateOptions{DB: db}); err != nil || again.Status != ReplSkip {
		t.Fatalf("repeat = %+v, %v", again, err)
	}
	if _, err := Replicate(ctx, main, m1.ID, third, ReplicateOptions{DB: db}); !errors.Is(err, ErrSecondAccount) {
		t.Fatalf("second account: %v", err)
	}

	// Change 1 MiB in the middle of the large file: the new backup uploads
	// a few MiB, and replicating it moves only the new chunks.
	modifyMiddle(t, filepath.Join(src, "large.img"), 1<<20)
	m2, err := main.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Stats.NewBytes > 8<<20 || m2.Stats.Unchanged != m2.Stats.Files-1 {
		t.Errorf("incremental backup uploaded %d bytes (stats %+v); want a few MiB", m2.Stats.NewBytes, m2.Stats)
	}
	t.Logf("incremental backup: %d of %d chunks uploaded, %d bytes", m2.Stats.NewChunks, m2.Stats.Chunks, m2.Stats.NewBytes)
	rec2, err := Replicate(ctx, main, m2.ID, offsite, ReplicateOptions{DB: db})
	if err != nil || rec2.Chunks != m2.Stats.NewChunks || rec2.Bytes > m2.Stats.NewBytes+1<<20 {
		t.Fatalf("incremental replication = %+v (backup uploaded %d chunks, %d bytes), %v", rec2, m2.Stats.NewChunks, m2.Stats.NewBytes, err)
	}

	// Delete the original, prune it from its vault, and bring the replica
	// back to the cloud it came from.
	if err := main.Delete(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	// The packs of m1 whose every chunk changed go; the others, and the
	// old chunks in them, stay for m2.
	main.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	ps, err := main.Prune(ctx, PruneOptions{})
	main.now = time.Now
	if err != nil || ps.TreesDeleted != 1 || ps.ReferencedChunks != m2.Stats.Chunks || ps.ChunksDeleted+ps.UnusedChunks == 0 {
		t.Fatalf("prune = %+v, %v", ps, err)
	}
	t.Logf("prune: %+v", ps)
	back, err := Replicate(ctx, offsite, m1.ID, main, ReplicateOptions{DB: db})
	if err != nil || back.Status != ReplSuccess || back.Chunks != ps.ChunksDeleted || back.Packs != ps.PacksDeleted {
		t.Fatalf("replicate back = %+v (pruned %d packs, %d chunks), %v", back, ps.PacksDeleted, ps.ChunksDeleted, err)
	}
	home := filepath.Join(t.TempDir(), "home")
	if _, err := main.Restore(ctx, m1.ID, home, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, fromReplica, home)

	// A chunk altered on the storage behind Ferry's back: structure verify
	// passes, --read-data finds it and marks the backup; it no longer
	// replicates.
	tree, err := offsite.Tree(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	var victim Chunk
	for _, e := range tree.Entries {
		if e.Path == "large.img" {
			victim = e.Chunks[len(e.Chunks)/2]
		}
	}
	alterChunk(t, offsite.Store(), victim)
	if rep, err := offsite.Verify(ctx, m2.ID, VerifyOptions{}); err != nil || !rep.OK() {
		t.Fatalf("structure verify = %+v, %v", rep, err)
	}
	rep, err := offsite.Verify(ctx, m2.ID, VerifyOptions{ReadData: true, MarkError: true})
	if err != nil || rep.OK() || !rep.Marked {
		t.Fatalf("read-data verify = %+v, %v", rep, err)
	}
	if _, err := Replicate(ctx, offsite, m2.ID, main, ReplicateOptions{DB: db}); !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("replicate a backup in status error: %v", err)
	}

	// The history: in the source vaults and the database.
	hist, err := main.Replications(ctx, m1.ID)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history of %s in main = %+v, %v", m1.ID, hist, err)
	}
	all, err := DBReplications(db)
	if err != nil || len(all) != 4 {
		t.Fatalf("database records = %d, %v; want 4 (success, skip, success, back)", len(all), err)
	}
}
