package changelist

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/remote/s3"
	"github.com/ferrysync/ferry/state"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

func openDB(t testing.TB) *state.DB {
	t.Helper()
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// inboxEnv is one kind of inbox under test.
type inboxEnv struct {
	// open opens the inbox anew, as a restarted process would.
	open func(t *testing.T) *Inbox
	// drop puts a list into the inbox, last modified age ago.
	drop func(t *testing.T, name string, data []byte, age time.Duration)
	// files returns every file of the inbox (recursively) with its content.
	files func(t *testing.T) map[string]string
}

func localEnv(t *testing.T, db *state.DB) *inboxEnv {
	dir := t.TempDir()
	return &inboxEnv{
		open: func(t *testing.T) *Inbox {
			in, err := NewLocalInbox(dir, InboxOptions{Plan: "p", DB: db})
			if err != nil {
				t.Fatal(err)
			}
			return in
		},
		drop: func(t *testing.T, name string, data []byte, age time.Duration) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			mt := time.Now().Add(-age)
			if err := os.Chtimes(p, mt, mt); err != nil {
				t.Fatal(err)
			}
		},
		files: func(t *testing.T) map[string]string {
			got := make(map[string]string)
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				data, err := os.ReadFile(p)
				rel, _ := filepath.Rel(dir, p)
				got[filepath.ToSlash(rel)] = string(data)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		},
	}
}

func storeEnv(db *state.DB, store remote.Store, prefix string) *inboxEnv {
	return &inboxEnv{
		open: func(t *testing.T) *Inbox {
			in, err := NewRemoteInbox(store, prefix, "source:/"+strings.TrimSuffix(prefix, "/"), InboxOptions{Plan: "p", DB: db})
			if err != nil {
				t.Fatal(err)
			}
			return in
		},
		drop: func(t *testing.T, name string, data []byte, age time.Duration) {
			_, err := store.Put(t.Context(), prefix+name, bytes.NewReader(data), int64(len(data)), remote.PutMeta{ModTime: time.Now().Add(-age)})
			if err != nil {
				t.Fatal(err)
			}
		},
		files: func(t *testing.T) map[string]string {
			got := make(map[string]string)
			err := store.List(t.Context(), prefix, func(oi remote.ObjectInfo) error {
				rc, err := store.Open(t.Context(), oi.Key, 0, -1)
				if err != nil {
					return err
				}
				defer rc.Close()
				data, err := io.ReadAll(rc)
				got[strings.TrimPrefix(oi.Key, prefix)] = string(data)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		},
	}
}

func TestLocalInbox(t *testing.T) {
	db := openDB(t)
	testInbox(t, db, localEnv(t, db))
}

func TestRemoteInboxMem(t *testing.T) {
	db := openDB(t)
	testInbox(t, db, storeEnv(db, mem.New(), "changelist/"))
}

func TestRemoteInboxMinIO(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	store, err := s3.New(t.Context(), s3.Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "data/", Region: srv.Region,
		TLS: srv.TLS, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	testInbox(t, db, storeEnv(db, store, "changelist/"))
}

// testInbox drives an inbox end to end: lists dropped, claimed, parsed,
// done, rejected (broken, duplicate), released, and recovered after a
// "crash".
func testInbox(t *testing.T, db *state.DB, env *inboxEnv) {
	ctx := t.Context()
	in := env.open(t)
	next := func(t *testing.T, in *Inbox) *Claim {
		t.Helper()
		c, err := in.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		return c
	}
	noList := func(t *testing.T, in *Inbox) {
		t.Helper()
		if c, err := in.Next(ctx); !errors.Is(err, ErrNoList) {
			t.Fatalf("Next = %v, %v; want ErrNoList", c, err)
		}
	}
	const listA = "path,op\na.txt,\nold.txt,delete\n"

	noList(t, in)

	t.Run("done", func(t *testing.T) {
		env.drop(t, "a.csv", []byte(listA), time.Minute)
		c := next(t, in)
		if c.Name() != "a.csv" || c.Recovered() || c.Origin() != "changelist a.csv" {
			t.Fatalf("claim %s recovered %v", c.Name(), c.Recovered())
		}
		noList(t, in) // claimed once
		l, err := c.Parse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l.Upserts, []string{"a.txt"}) || !slices.Equal(l.Deletes, []string{"old.txt"}) {
			t.Fatalf("list %+v", l)
		}
		where, err := c.Done(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(where, "done/a.csv") {
			t.Errorf("Done moved it to %s", where)
		}
		if got := env.files(t); got["done/a.csv"] != listA || len(got) != 1 {
			t.Errorf("inbox holds %q", got)
		}
		e, found, err := LookupLedger(db, "p", l.SHA256)
		if err != nil || !found || e.Status != StatusDone || e.Name != "a.csv" || e.DoneAt == nil || e.Rows != 2 {
			t.Errorf("ledger %+v %v %v", e, found, err)
		}
		if _, err := c.Done(ctx); err == nil {
			t.Error("a claim finished twice")
		}
		noList(t, in)
	})

	t.Run("duplicate", func(t *testing.T) {
		env.drop(t, "again.csv", []byte(listA), time.Minute)
		c := next(t, in)
		_, err := c.Parse(ctx)
		var de *DuplicateError
		if !errors.As(err, &de) || !errors.Is(err, ErrDuplicate) {
			t.Fatalf("Parse = %v, want a DuplicateError", err)
		}
		if !strings.Contains(err.Error(), "changelist again.csv is a duplicate: the same content") ||
			!strings.Contains(err.Error(), "was processed as a.csv at "+de.Previous.DoneAt.UTC().Format(time.RFC3339)) {
			t.Errorf("message %q", err)
		}
		where, err := c.Reject(ctx, err.Error())
		if err != nil || !strings.HasSuffix(where, "rejected/again.csv") {
			t.Fatalf("Reject = %s, %v", where, err)
		}
		got := env.files(t)
		if got["rejected/again.csv"] != listA || !strings.Contains(got["rejected/again.csv.error"], "was processed as a.csv at") {
			t.Errorf("inbox holds %q", got)
		}
		// The original's ledger entry stays.
		if _, found, _ := LookupLedger(db, "p", de.Previous.SHA256); !found {
			t.Error("rejecting a duplicate forgot the original")
		}
	})

	t.Run("broken", func(t *testing.T) {
		const broken = "path\nok.txt\n\"never closed\n"
		env.drop(t, "broken.csv", []byte(broken), time.Minute)
		c := next(t, in)
		_, err := c.Parse(ctx)
		var re *RejectError
		if !errors.As(err, &re) || re.Line != 3 {
			t.Fatalf("Parse = %v, want a RejectError on line 3", err)
		}
		if _, err := c.Reject(ctx, err.Error()); err != nil {
			t.Fatal(err)
		}
		got := env.files(t)
		if got["rejected/broken.csv"] != broken ||
			!strings.HasPrefix(got["rejected/broken.csv.error"], "changelist broken.csv line 3: unterminated") {
			t.Errorf("inbox holds %q", got)
		}
	})

	t.Run("ignored names", func(t *testing.T) {
		env.drop(t, "notes.txt", []byte("a\n"), time.Minute)
		env.drop(t, ".hidden.csv", []byte("a\n"), time.Minute)
		noList(t, in)
	})

	t.Run("oldest first, gzip", func(t *testing.T) {
		env.drop(t, "newer.csv", []byte("n.txt\n"), time.Minute)
		env.drop(t, "older.csv.gz", gzipped(t, "o.txt\n"), time.Hour)
		c1, c2 := next(t, in), next(t, in)
		if c1.Name() != "older.csv.gz" || c2.Name() != "newer.csv" {
			t.Fatalf("claimed %s then %s", c1.Name(), c2.Name())
		}
		for _, c := range []*Claim{c1, c2} {
			if _, err := c.Parse(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Done(ctx); err != nil {
				t.Fatal(err)
			}
		}
		got := env.files(t)
		if _, ok := got["done/older.csv.gz"]; !ok {
			t.Errorf("inbox holds %q", got)
		}
	})

	t.Run("same name again", func(t *testing.T) {
		env.drop(t, "a.csv", []byte("other.txt\n"), time.Minute)
		c := next(t, in)
		if _, err := c.Parse(ctx); err != nil {
			t.Fatal(err)
		}
		where, err := c.Done(ctx)
		if err != nil {
			t.Fatal(err)
		}
		base := where[strings.LastIndex(where, "/")+1:]
		if !strings.HasPrefix(base, "a.") || !strings.HasSuffix(base, "Z.csv") {
			t.Errorf("second a.csv went to %s", where)
		}
		if got := env.files(t); got["done/a.csv"] != listA || got["done/"+base] != "other.txt\n" {
			t.Errorf("inbox holds %q", got)
		}
	})

	t.Run("release", func(t *testing.T) {
		env.drop(t, "rel.csv", []byte("r.txt\n"), time.Minute)
		c := next(t, in)
		if _, err := c.Parse(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Release(ctx); err != nil {
			t.Fatal(err)
		}
		c = next(t, in)
		if c.Name() != "rel.csv" {
			t.Fatalf("claimed %s", c.Name())
		}
		if _, err := c.Parse(ctx); err != nil {
			t.Fatalf("Parse after release: %v", err)
		}
		if _, err := c.Done(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("rejected content may come back", func(t *testing.T) {
		env.drop(t, "fail.csv", []byte("f.txt\n"), time.Minute)
		c := next(t, in)
		if _, err := c.Parse(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Reject(ctx, "the job failed: destination unreachable"); err != nil {
			t.Fatal(err)
		}
		env.drop(t, "retry.csv", []byte("f.txt\n"), time.Minute)
		c = next(t, in)
		if _, err := c.Parse(ctx); err != nil {
			t.Fatalf("Parse of content rejected before: %v", err)
		}
		if _, err := c.Done(ctx); err != nil {
			t.Fatal(err)
		}
		if got := env.files(t); got["rejected/fail.csv.error"] != "the job failed: destination unreachable\n" {
			t.Errorf("inbox holds %q", got)
		}
	})

	t.Run("recovered after a crash", func(t *testing.T) {
		env.drop(t, "crash.csv", []byte("c.txt\n"), time.Minute)
		c := next(t, in)
		if _, err := c.Parse(ctx); err != nil {
			t.Fatal(err)
		}
		// The process dies here; a new one opens the inbox.
		in = env.open(t)
		c = next(t, in)
		if c.Name() != "crash.csv" || !c.Recovered() {
			t.Fatalf("claim %s recovered %v", c.Name(), c.Recovered())
		}
		l, err := c.Parse(ctx)
		if err != nil {
			t.Fatalf("Parse of a recovered claim: %v", err)
		}
		if !slices.Equal(l.Upserts, []string{"c.txt"}) {
			t.Fatalf("list %+v", l)
		}
		if _, err := c.Done(ctx); err != nil {
			t.Fatal(err)
		}
		noList(t, in)
		if got := env.files(t); got["done/crash.csv"] != "c.txt\n" {
			t.Errorf("inbox holds %q", got)
		}
	})
}

// Files still being written (modified within MinAge) wait; symlinks and
// directories are never claimed.
func TestLocalInboxSkips(t *testing.T) {
	db := openDB(t)
	dir := t.TempDir()
	in, err := NewLocalInbox(dir, InboxOptions{Plan: "p", DB: db, MinAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "fresh.csv"), "a\n")
	secret := filepath.Join(t.TempDir(), "secret")
	write(t, secret, "s\n")
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(secret, old, old)
	if err := os.Symlink(secret, filepath.Join(dir, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if c, err := in.Next(t.Context()); !errors.Is(err, ErrNoList) {
		t.Fatalf("Next = %v, %v", c, err)
	}
	os.Chtimes(filepath.Join(dir, "fresh.csv"), old, old)
	c, err := in.Next(t.Context())
	if err != nil || c.Name() != "fresh.csv" {
		t.Fatalf("Next = %v, %v", c, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fresh.csv.processing")); err != nil {
		t.Errorf("claimed list not renamed: %v", err)
	}

	if _, err := NewLocalInbox(filepath.Join(dir, "missing"), InboxOptions{Plan: "p", DB: db}); err == nil ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := NewLocalInbox(dir, InboxOptions{DB: db}); err == nil {
		t.Error("no plan accepted")
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := in.Watch(canceled, func() {}); err != nil {
		t.Errorf("watching a local inbox: %v", err)
	}
	rin, _ := NewRemoteInbox(mem.New(), "", "mem", InboxOptions{Plan: "p", DB: db})
	if err := rin.Watch(canceled, func() {}); !errors.Is(err, errors.ErrUnsupported) || rin.IsLocal() || !in.IsLocal() {
		t.Errorf("remote Watch = %v", err)
	}
}

// Two inboxes on one directory (two processes, against the rules) still
// never claim one list twice: the claim is an atomic no-replace rename.
func TestLocalInboxClaimsOnce(t *testing.T) {
	dir := t.TempDir()
	const n = 50
	old := time.Now().Add(-time.Hour)
	for i := range n {
		p := filepath.Join(dir, strings.Repeat("x", i%7)+time.Duration(i).String()+".csv")
		write(t, p, p+"\n")
		os.Chtimes(p, old, old)
	}
	var mu sync.Mutex
	claimed := make(map[string]int)
	// All open before any claims: an inbox opened later would take the
	// others' claims for a dead process's.
	var inboxes []*Inbox
	for range 4 {
		in, err := NewLocalInbox(dir, InboxOptions{Plan: "p", DB: openDB(t)})
		if err != nil {
			t.Fatal(err)
		}
		inboxes = append(inboxes, in)
	}
	var wg sync.WaitGroup
	for _, in := range inboxes {
		wg.Go(func() {
			for {
				c, err := in.Next(context.Background())
				if errors.Is(err, ErrNoList) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				claimed[c.Name()]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d lists claimed, want %d", len(claimed), n)
	}
	for name, k := range claimed {
		if k != 1 {
			t.Errorf("%s claimed %d times", name, k)
		}
	}
}

// The remote inbox takes only the objects directly under its prefix.
func TestRemoteInboxScope(t *testing.T) {
	db := openDB(t)
	store := mem.New()
	put := func(key string) {
		if _, err := store.Put(t.Context(), key, strings.NewReader("a\n"), 2, remote.PutMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"other.csv", "in/done/x.csv", "in/rejected/y.csv", "in/sub/z.csv", "in/list.txt", "in/ok.csv"} {
		put(k)
	}
	in, err := NewRemoteInbox(store, "in/", "source:/in", InboxOptions{Plan: "p", DB: db})
	if err != nil {
		t.Fatal(err)
	}
	c, err := in.Next(t.Context())
	if err != nil || c.Name() != "ok.csv" {
		t.Fatalf("Next = %v, %v", c, err)
	}
	if _, err := in.Next(t.Context()); !errors.Is(err, ErrNoList) {
		t.Fatalf("second Next = %v", err)
	}
	if in.String() != "source:/in" {
		t.Errorf("String = %q", in.String())
	}
	if _, err := NewRemoteInbox(store, "bad", "x", InboxOptions{Plan: "p", DB: db}); err == nil {
		t.Error("prefix without / accepted")
	}
}
