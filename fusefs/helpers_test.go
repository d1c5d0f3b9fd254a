package fusefs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/remote/s3"
)

// testMountpoints are the mountpoints tests used; TestMain checks that
// none is left in /proc/mounts.
var testMountpoints sync.Map

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	if left := leftMounts(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: FUSE mounts left behind by the tests: %s\n", strings.Join(left, ", "))
		for _, mp := range left {
			if err := fusermount(mp, true); err != nil {
				fmt.Fprintf(os.Stderr, "lazy unmount %s: %v\n", mp, err)
			}
		}
		code = 1
	}
	os.Exit(code)
}

func leftMounts() []string {
	mounts, err := FuseMounts()
	if err != nil {
		return nil
	}
	var left []string
	for _, mp := range mounts {
		if _, ok := testMountpoints.Load(mp); ok {
			left = append(left, mp)
		}
	}
	return left
}

// needFUSE ends the test (skip, or fail under FERRY_TEST_REQUIRE=fuse)
// when this machine cannot mount.
func needFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, testenv.PartFUSE, "no /dev/fuse: "+err.Error())
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			testenv.Missing(t, testenv.PartFUSE, "neither fusermount3 nor fusermount is on PATH")
		}
	}
}

// testLogger logs to t until the test ends, and drops messages after.
func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// mountTest mounts store in a fresh temporary directory and unmounts it
// when the test ends. It returns the mountpoint.
func mountTest(t testing.TB, store remote.Store, opts Options) (string, *Mount) {
	t.Helper()
	needFUSE(t)
	dir := t.TempDir()
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(dir, "cache")
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t, slog.LevelWarn)
	}
	m, err := MountRemote(context.Background(), mp, store, opts)
	if err != nil {
		t.Fatalf("MountRemote: %v", err)
	}
	testMountpoints.Store(mp, true)
	t.Cleanup(func() { unmountTest(t, m) })
	return mp, m
}

func unmountTest(t testing.TB, m *Mount) {
	t.Helper()
	if err := m.Unmount(); err != nil {
		t.Errorf("Unmount: %v", err)
	}
	select {
	case <-m.Done():
	case <-time.After(time.Minute):
		t.Errorf("mount %s did not end within a minute of Unmount", m.Mountpoint())
	}
}

// storeKind makes fresh stores of one implementation for tests.
type storeKind struct {
	name string
	// new returns an empty store; prefix distinguishes stores of one test
	// that share a bucket.
	new func(t testing.TB) remote.Store
}

func storeKinds() []storeKind {
	return []storeKind{
		{name: "mem", new: func(testing.TB) remote.Store { return mem.New() }},
		{name: "minio", new: newMinIOStore},
	}
}

var bucketSeq atomic.Int64

// newMinIOStore returns a store on a fresh bucket of the shared MinIO
// server.
func newMinIOStore(t testing.TB) remote.Store {
	t.Helper()
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	s, err := s3.New(context.Background(), s3.Config{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		Prefix:    fmt.Sprintf("mnt%d/", bucketSeq.Add(1)),
		Region:    srv.Region,
		TLS:       srv.TLS,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PartSize:  s3.MinPartSize,
	})
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

// countingStore counts the listings and opens a store serves.
type countingStore struct {
	remote.Store
	lists atomic.Int64 // List and ListDir calls
	opens atomic.Int64
}

var (
	_ remote.DirLister = (*countingStore)(nil)
	_ remote.Copier    = (*countingStore)(nil)
)

func (c *countingStore) List(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix, fn)
}

func (c *countingStore) ListDir(ctx context.Context, prefix string, fn func(remote.DirEntry) error) error {
	c.lists.Add(1)
	return c.Store.(remote.DirLister).ListDir(ctx, prefix, fn)
}

func (c *countingStore) Copy(ctx context.Context, src, dst string) (remote.ObjectInfo, error) {
	return c.Store.(remote.Copier).Copy(ctx, src, dst)
}

func (c *countingStore) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, key, off, length)
}

// plainStore hides a store's optional abilities (DirLister, Copier), to
// test the fallbacks.
type plainStore struct{ remote.Store }

func put(t testing.TB, s remote.Store, key, content string) remote.ObjectInfo {
	t.Helper()
	info, err := s.Put(context.Background(), key, strings.NewReader(content), int64(len(content)), remote.PutMeta{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func get(t testing.TB, s remote.Store, key string) string {
	t.Helper()
	rd, err := s.Open(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatalf("open %s in the store: %v", key, err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("read %s from the store: %v", key, err)
	}
	return string(b)
}

// keys lists every key of the store.
func keys(t testing.TB, s remote.Store) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), "", func(o remote.ObjectInfo) error {
		out = append(out, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("list: %v", err)
	}
	return out
}
