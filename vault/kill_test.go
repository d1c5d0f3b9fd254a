package vault

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/local"
	"github.com/ferrysync/ferry/state"
)

// Kill tests: a helper process (this test binary, re-run with helperEnv
// set) backs up or replicates into a local-directory vault whose pack
// uploads are slowed down, and is SIGKILLed half way. Packs are 1 MiB, so
// the 48 MiB of the source make about 50 of them.
const (
	helperEnv    = "FERRY_VAULT_TEST_HELPER"
	helperVault  = "FERRY_VAULT_TEST_VAULT"
	helperVault2 = "FERRY_VAULT_TEST_VAULT2"
	helperSource = "FERRY_VAULT_TEST_SOURCE"
	helperBackup = "FERRY_VAULT_TEST_BACKUP"
	helperDB     = "FERRY_VAULT_TEST_DB"
	helperCache  = "FERRY_VAULT_TEST_CACHE"
	killPackSize = 1 << 20
)

// slowStore delays every pack upload, as a slow link would.
type slowStore struct {
	remote.Store
	delay time.Duration
}

func (s *slowStore) Put(ctx context.Context, key string, r io.Reader, size int64, meta remote.PutMeta) (remote.ObjectInfo, error) {
	if strings.HasPrefix(key, packsDir) {
		time.Sleep(s.delay)
	}
	return s.Store.Put(ctx, key, r, size, meta)
}

func openLocalVault(dir, name, account string, delay time.Duration) (*Vault, error) {
	st, err := local.New(dir)
	if err != nil {
		return nil, err
	}
	return Open(context.Background(), &slowStore{Store: st, delay: delay}, Options{Name: name, Account: account, CacheDir: os.Getenv(helperCache)})
}

// runHelper is the helper process's main.
func runHelper(mode string) int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "helper:", err); return 1 }
	switch mode {
	case "backup":
		v, err := openLocalVault(os.Getenv(helperVault), "main", "A", 30*time.Millisecond)
		if err != nil {
			return fail(err)
		}
		if _, err := v.Create(ctx, os.Getenv(helperSource), BackupOptions{Workers: 2, PackSize: killPackSize}); err != nil {
			return fail(err)
		}
	case "replicate":
		src, err := openLocalVault(os.Getenv(helperVault), "main", "A", 0)
		if err != nil {
			return fail(err)
		}
		dst, err := openLocalVault(os.Getenv(helperVault2), "offsite", "B", 30*time.Millisecond)
		if err != nil {
			return fail(err)
		}
		db, err := state.Open(os.Getenv(helperDB), state.Options{})
		if err != nil {
			return fail(err)
		}
		defer db.Close()
		if _, err := Replicate(ctx, src, os.Getenv(helperBackup), dst, ReplicateOptions{DB: db, Workers: 2}); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("unknown mode %q", mode))
	}
	return 0
}

// countChunks counts the chunks in the packs of a local vault.
func countChunks(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, "packs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if _, ok := parsePackKey("packs/" + filepath.Base(filepath.Dir(p)) + "/" + d.Name()); !ok {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		entries, err := DecodePack(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		n += len(entries)
		return nil
	})
	return n
}

// killHelper starts the helper with env and SIGKILLs it once dir holds at
// least n chunks. It fails the test if the helper ended by itself.
func killHelper(t *testing.T, mode, dir string, n int, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for countChunks(t, dir) < n {
		select {
		case err := <-exited:
			t.Fatalf("helper ended before it was killed: %v\n%s", err, stderr.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("helper stored fewer than %d chunks in 2 minutes\n%s", n, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("helper exited 0; it finished before the kill")
	}
}

func initLocalVault(t *testing.T, kind, account string) (*Vault, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Init(context.Background(), st, kind, Options{Name: account, Account: account})
	if err != nil {
		t.Fatal(err)
	}
	return v, dir
}

func TestKillBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("kill tests start helper processes")
	}
	ctx := context.Background()
	v, dir := initLocalVault(t, KindBackup, "A")
	src := makeSource(t, 48<<20)
	// The helper keeps a pack index cache; the re-run below uses none, so it
	// finds the dead backup's packs through their trailers.
	killHelper(t, "backup", dir, 8, helperVault+"="+dir, helperSource+"="+src, helperCache+"="+t.TempDir())

	if list, err := v.Backups(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after the kill: backups %v, %v; want none", list, err)
	}
	stored := countChunks(t, dir)
	// The dead backup's marker is not live (its process is gone): prune may
	// run, and it keeps the young chunks for the next backup.
	if running, err := v.Running(ctx); err != nil || len(running) != 0 {
		t.Errorf("running after the kill: %+v, %v", running, err)
	}
	ps, err := v.Prune(ctx, PruneOptions{})
	if err != nil || ps.ChunksDeleted != 0 || ps.StaleMarkers != 1 {
		t.Fatalf("prune after the kill = %+v, %v", ps, err)
	}

	m, err := v.Create(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Stats.Chunks-m.Stats.NewChunks < int64(stored) {
		t.Errorf("re-run uploaded %d of %d chunks; %d were stored before the kill", m.Stats.NewChunks, m.Stats.Chunks, stored)
	}
	if list, _ := v.Backups(ctx); len(list) != 1 {
		t.Errorf("backups after the re-run: %d", len(list))
	}
	dst := t.TempDir()
	if _, err := v.Restore(ctx, m.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
}

func TestKillReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("kill tests start helper processes")
	}
	ctx := context.Background()
	a, aDir := initLocalVault(t, KindBackup, "A")
	_, bDir := initLocalVault(t, KindReplication, "B")
	src := makeSource(t, 48<<20)
	m, err := a.Create(ctx, src, BackupOptions{PackSize: killPackSize})
	if err != nil {
		t.Fatal(err)
	}
	dbDir := t.TempDir()
	killHelper(t, "replicate", bDir, 8, helperVault+"="+aDir, helperVault2+"="+bDir,
		helperBackup+"="+m.ID, helperDB+"="+dbDir)

	b, err := openLocalVault(bDir, "offsite", "B", 0)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := b.Backups(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after the kill the destination lists %v, %v; want nothing", list, err)
	}
	a2, err := openLocalVault(aDir, "main", "A", 0)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := a2.Replications(ctx, m.ID)
	if len(recs) != 1 || recs[0].Status != ReplReplicating {
		t.Fatalf("records after the kill = %+v; want one replicating", recs)
	}
	copied := countChunks(t, bDir)

	db, err := state.Open(dbDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := func(_ context.Context, name string) (*Vault, error) {
		switch name {
		case "main":
			return a2, nil
		case "offsite":
			return b, nil
		}
		return nil, fmt.Errorf("no vault %q", name)
	}
	got, err := RecoverReplications(ctx, db, open, ReplicateOptions{})
	if err != nil || len(got) != 1 {
		t.Fatalf("recover = %+v, %v", got, err)
	}
	if r := got[0]; r.Status != ReplSuccess || r.ID != recs[0].ID || r.Chunks != m.Stats.Chunks-int64(copied) {
		t.Errorf("resumed record = %+v; want success copying %d chunks (%d of %d were there)", r, m.Stats.Chunks-int64(copied), copied, m.Stats.Chunks)
	}
	recs, _ = a2.Replications(ctx, m.ID)
	if len(recs) != 1 || recs[0].Status != ReplSuccess {
		t.Errorf("vault records after recovery = %+v", recs)
	}
	dst := t.TempDir()
	if _, err := b.Restore(ctx, m.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDirs(t, src, dst)
}
