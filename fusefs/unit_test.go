package fusefs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

func TestToErrno(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("op a/b: %w", fmt.Errorf("inner: %w", err)) }
	for _, c := range []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"nil", nil, 0},
		{"not exist", wrap(remote.ErrNotExist), syscall.ENOENT},
		{"os not exist", wrap(fs.ErrNotExist), syscall.ENOENT},
		{"permission", wrap(remote.ErrPermission), syscall.EACCES},
		{"invalid key", wrap(&remote.KeyError{Key: "a//b", Reason: "empty component"}), syscall.EINVAL},
		{"canceled", wrap(context.Canceled), syscall.EINTR},
		{"deadline", wrap(context.DeadlineExceeded), syscall.ETIMEDOUT},
		{"retryable", wrap(remote.Retryable(errors.New("503 slow down"))), syscall.EIO},
		{"connection refused", wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), syscall.EIO},
		{"checksum", wrap(remote.ErrChecksum), syscall.EIO},
		{"disk full", wrap(&os.PathError{Op: "write", Path: "/spool", Err: syscall.ENOSPC}), syscall.ENOSPC},
		{"quota", wrap(syscall.EDQUOT), syscall.EDQUOT},
		{"other errno", wrap(syscall.EBADMSG), syscall.EIO},
		{"anything", errors.New("boom"), syscall.EIO},
		{"retryable not exist", wrap(remote.Retryable(remote.ErrNotExist)), syscall.ENOENT},
	} {
		if got := toErrno(c.err); got != c.want {
			t.Errorf("%s: toErrno(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func names(l *listing) []string {
	var out []string
	for _, e := range l.entries {
		n := e.Name
		if e.Dir {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

func TestListingWith(t *testing.T) {
	t.Parallel()
	l := &listing{entries: []entry{{Name: "b"}, {Name: "d", Dir: true}}}
	steps := []struct {
		name string
		e    *entry
		want []string
	}{
		{"a", &entry{Name: "a"}, []string{"a", "b", "d/"}},
		{"c", &entry{Name: "c", Dir: true}, []string{"a", "b", "c/", "d/"}},
		{"e", &entry{Name: "e"}, []string{"a", "b", "c/", "d/", "e"}},
		{"b", &entry{Name: "b", Size: 9}, []string{"a", "b", "c/", "d/", "e"}},
		{"d", nil, []string{"a", "b", "c/", "e"}},
		{"zz", nil, []string{"a", "b", "c/", "e"}},
		{"a", nil, []string{"b", "c/", "e"}},
	}
	orig := slices.Clone(l.entries)
	first := l
	for _, s := range steps {
		l = l.with(s.name, s.e)
		if got := names(l); !slices.Equal(got, s.want) {
			t.Fatalf("after with(%q): %q, want %q", s.name, got, s.want)
		}
	}
	if !slices.Equal(first.entries, orig) {
		t.Errorf("with changed the listing it was called on: %v", first.entries)
	}
	if e, ok := l.find("b"); !ok || e.Size != 9 {
		t.Errorf("find b: %v %v", e, ok)
	}
	if _, ok := l.find("a"); ok {
		t.Error("find a: found after removal")
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		prefix string
		keys   []string
		want   []string
	}{
		{"flat", "", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"dirs from deep keys", "", []string{"a-b", "a.txt", "a/x/1", "a/y", "b/c"}, []string{"a/", "a-b", "a.txt", "b/"}},
		{"prefix", "p/", []string{"p/a", "p/d/e"}, []string{"a", "d/"}},
		{"dir wins over a file of the same name", "", []string{"a", "a/b"}, []string{"a/"}},
		{"too long a name", "", []string{strings.Repeat("x", 256), "ok"}, []string{"ok"}},
		{"longest name", "", []string{strings.Repeat("x", 255)}, []string{strings.Repeat("x", 255)}},
	} {
		col := collector{prefix: c.prefix}
		for _, k := range c.keys {
			col.addObject(remote.ObjectInfo{Key: k})
		}
		if got := names(col.listing(time.Now())); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	col := collector{}
	col.addObject(remote.ObjectInfo{Key: "bad", SkipReason: "a socket"})
	col.addDir("ok")
	col.addDir("a\\b")
	if got := names(col.listing(time.Now())); !slices.Equal(got, []string{"ok/"}) || col.dropped != 2 {
		t.Errorf("skipped entries: %q, dropped %d", got, col.dropped)
	}
}

func TestDecodeRecord(t *testing.T) {
	t.Parallel()
	good := func(entries string) string {
		return `{"v":1,"fetched":"2026-01-02T03:04:05Z","entries":[` + entries + `]}`
	}
	for _, c := range []struct {
		name, raw string
		ok        bool
	}{
		{"empty", good(``), true},
		{"null entries", `{"v":1,"fetched":"2026-01-02T03:04:05Z","entries":null}`, true},
		{"entries", good(`{"n":"a","s":3,"m":"2026-01-01T00:00:00Z","e":"x","h":"ab"},{"n":"b","d":true}`), true},
		{"wrong version", `{"v":2,"entries":[]}`, false},
		{"not json", `{"v":1,`, false},
		{"unsorted", good(`{"n":"b"},{"n":"a"}`), false},
		{"repeated", good(`{"n":"a"},{"n":"a","d":true}`), false},
		{"slash in a name", good(`{"n":"a/b"}`), false},
		{"dot-dot", good(`{"n":".."}`), false},
		{"empty name", good(`{"n":""}`), false},
		{"negative size", good(`{"n":"a","s":-1}`), false},
	} {
		l, err := decodeRecord([]byte(c.raw))
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
		if err == nil && l.entries == nil {
			t.Errorf("%s: nil entries", c.name)
		}
	}
	// Round trip.
	l := &listing{fetched: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), entries: []entry{
		{Name: "a", Size: 1, ModTime: time.Date(2025, 1, 1, 0, 0, 0, 7, time.UTC), ETag: "e", SHA256: "h"},
		{Name: "d", Dir: true},
	}}
	raw, err := json.Marshal(encodeRecord(l))
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeRecord(raw)
	if err != nil || !back.fetched.Equal(l.fetched) || len(back.entries) != 2 ||
		!back.entries[0].ModTime.Equal(l.entries[0].ModTime) || back.entries[0].SHA256 != "h" || !back.entries[1].Dir {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"fetched":"2026-01-02T03:04:05Z","entries":[{"n":"a"},{"n":"b","d":true}]}`))
	f.Add([]byte(`{"v":1,"entries":[{"n":"a/b"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := decodeRecord(raw)
		if err != nil {
			return
		}
		for i, e := range l.entries {
			if !validName(e.Name) || (i > 0 && l.entries[i-1].Name >= e.Name) {
				t.Fatalf("decodeRecord accepted entry %d %q", i, e.Name)
			}
		}
	})
}

func FuzzCollector(f *testing.F) {
	f.Add("p/", "p/a\np/b/c\np/b/d\np/b.txt\nq")
	f.Add("", "a\na/b\n..\nx\\y")
	f.Fuzz(func(t *testing.T, prefix, keyList string) {
		col := collector{prefix: prefix}
		var keys []string
		for k := range strings.SplitSeq(keyList, "\n") {
			keys = append(keys, k)
		}
		slices.Sort(keys) // stores list in key order
		for _, k := range keys {
			col.addObject(remote.ObjectInfo{Key: k})
		}
		l := col.listing(time.Now())
		for i, e := range l.entries {
			if !validName(e.Name) {
				t.Fatalf("entry %q is not a valid name", e.Name)
			}
			if i > 0 && l.entries[i-1].Name >= e.Name {
				t.Fatalf("entries out of order or repeated: %q then %q", l.entries[i-1].Name, e.Name)
			}
		}
	})
}

func TestParseMounts(t *testing.T) {
	t.Parallel()
	in := `proc /proc proc rw,nosuid 0 0
s3a:photos /tmp/my\040mount fuse.ferry rw,nosuid,nodev,relatime,user_id=0,group_id=0 0 0
short line
back\134slash /a\011b fuse rw 0 0
`
	got := parseMounts(strings.NewReader(in))
	want := []mountEntry{
		{"proc", "/proc", "proc"},
		{"s3a:photos", "/tmp/my mount", "fuse.ferry"},
		{`back\slash`, "/a\tb", "fuse"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseMounts:\n got %q\nwant %q", got, want)
	}
	for in, want := range map[string]string{
		`plain`: "plain", `a\040b`: "a b", `\12`: `\12`, `\999`: `\999`, `x\`: `x\`, `\134\134`: `\\`,
	} {
		if got := unescapeMountField(in); got != want {
			t.Errorf("unescape %q = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMounts(f *testing.F) {
	f.Add("a /b\\040c fuse.ferry rw 0 0\n")
	f.Add("\\")
	f.Fuzz(func(t *testing.T, in string) {
		for _, m := range parseMounts(strings.NewReader(in)) {
			if m.fsType == "" || m.mountpoint == "" {
				t.Fatalf("empty field in %+v", m)
			}
		}
	})
}

func TestMountRemoteOptionErrors(t *testing.T) {
	t.Parallel()
	db, err := state.Open("", state.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct {
		name, mountpoint string
		opts             Options
		want             string
	}{
		{"db without cache id", dir, Options{DB: db}, "CacheID is required"},
		{"missing mountpoint", filepath.Join(dir, "nope"), Options{}, "does not exist; create the directory first"},
		{"file mountpoint", file, Options{}, "is not a directory"},
	} {
		_, err := MountRemote(context.Background(), c.mountpoint, mem.New(), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	// Nothing is left in the cache directory after a failed mount.
	cache := filepath.Join(dir, "cache")
	_, err = MountRemote(context.Background(), dir, failingStore{mem.New()}, Options{CacheDir: cache})
	if err == nil {
		t.Fatal("mount of a store that cannot list succeeded")
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 0 {
		t.Errorf("cache directory after a failed mount: %v", ents)
	}
}

// failingStore cannot list.
type failingStore struct{ remote.Store }

func (failingStore) List(context.Context, string, func(remote.ObjectInfo) error) error {
	return remote.Retryable(errors.New("connection refused"))
}

func TestUnmountNotMounted(t *testing.T) {
	t.Parallel()
	_, err := Unmount(t.TempDir())
	if !errors.Is(err, ErrNotMounted) {
		t.Errorf("Unmount of a plain directory: %v, want ErrNotMounted", err)
	}
}

func TestListCacheOverridesDuringFetch(t *testing.T) {
	t.Parallel()
	s := &blockingStore{Store: mem.New(), release: make(chan struct{}), started: make(chan struct{}, 1)}
	put(t, s.Store, "a", "a")
	c := newListCache(s, time.Hour, nil, "", slog.New(slog.DiscardHandler), context.Background())
	done := make(chan *listing)
	go func() {
		l, err := c.get(context.Background(), "")
		if err != nil {
			t.Error(err)
		}
		done <- l
	}()
	<-s.started
	// Changes made through the mount while the listing runs: the listing
	// started before them, so they must win over what it returns.
	put(t, s.Store, "b", "b")
	c.set("", "b", &entry{Name: "b", Size: 1})
	c.set("", "a", nil)
	close(s.release)
	if got := names(<-done); !slices.Equal(got, []string{"b"}) {
		t.Errorf("listing after changes during the fetch: %q, want [b]", got)
	}
	if l, _ := c.get(context.Background(), ""); !slices.Equal(names(l), []string{"b"}) {
		t.Errorf("cached listing: %q", names(l))
	}
}

// blockingStore's List waits for release after telling started.
type blockingStore struct {
	remote.Store
	started chan struct{}
	release chan struct{}
}

func (b *blockingStore) List(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	var infos []remote.ObjectInfo
	if err := b.Store.List(ctx, prefix, func(o remote.ObjectInfo) error { infos = append(infos, o); return nil }); err != nil {
		return err
	}
	b.started <- struct{}{}
	<-b.release
	for _, o := range infos {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func TestListCacheServesStaleWhenUnreachable(t *testing.T) {
	t.Parallel()
	s := &flakyStore{Store: mem.New()}
	put(t, s.Store, "a", "a")
	c := newListCache(s, time.Hour, nil, "", slog.New(slog.DiscardHandler), context.Background())
	now := time.Now()
	c.now = func() time.Time { return now }
	if l, err := c.get(context.Background(), ""); err != nil || !slices.Equal(names(l), []string{"a"}) {
		t.Fatalf("first listing: %v %v", l, err)
	}
	now = now.Add(2 * time.Hour)
	s.fail = true
	if l, err := c.get(context.Background(), ""); err != nil || !slices.Equal(names(l), []string{"a"}) {
		t.Errorf("expired listing with the store unreachable: %v %v, want the cached one", l, err)
	}
}

type flakyStore struct {
	remote.Store
	fail bool
}

func (f *flakyStore) List(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	if f.fail {
		return remote.Retryable(errors.New("connection reset"))
	}
	return f.Store.List(ctx, prefix, fn)
}
