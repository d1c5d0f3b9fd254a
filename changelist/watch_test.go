package changelist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ferrysync/ferry/remote/mem"
)

// waitTimeout is how long a test waits for a batch that must come. It is a
// bound for a hung test, not a timing assertion.
const waitTimeout = 30 * time.Second

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// watching is a Watcher being served, with the batches it sent.
type watching struct {
	w        *Watcher
	root     string
	batches  chan Batch
	mu       sync.Mutex
	degraded []string
}

func startWatcher(t *testing.T, root string, setup func(*Watcher)) *watching {
	t.Helper()
	ws := &watching{root: root, batches: make(chan Batch)}
	w, err := NewWatcher(root, WatchOptions{
		Delay:    100 * time.Millisecond,
		MaxDelay: time.Second,
		OnDegraded: func(msg string) {
			ws.mu.Lock()
			ws.degraded = append(ws.degraded, msg)
			ws.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ws.w = w
	if setup != nil {
		setup(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx, ws.batches) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ws
}

// waitFor merges the batches that arrive until ok holds for the merged
// batch, which it returns.
func (ws *watching) waitFor(t *testing.T, what string, ok func(b Batch) bool) Batch {
	t.Helper()
	var merged Batch
	timeout := time.After(waitTimeout)
	for {
		select {
		case b := <-ws.batches:
			merged.Merge(b)
			if ok(merged) {
				return merged
			}
		case <-timeout:
			t.Fatalf("no batch with %s; got %+v", what, merged)
		}
	}
}

func has(list []string, k string) bool { return slices.Contains(list, k) }

func TestWatcherFiles(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "old.txt"), "1")
	write(t, filepath.Join(root, "sub", "keep.txt"), "1")
	ws := startWatcher(t, root, nil)

	// A new file and a modified one (in a directory watched from the start).
	write(t, filepath.Join(root, "new.txt"), "hello")
	f, err := os.OpenFile(filepath.Join(root, "sub", "keep.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("more")
	f.Close()
	b := ws.waitFor(t, "new.txt and sub/keep.txt", func(b Batch) bool {
		return has(b.Upserts, "new.txt") && has(b.Upserts, "sub/keep.txt")
	})
	if len(b.Deletes) != 0 || b.Overflow {
		t.Errorf("batch %+v", b)
	}

	// A rename is a delete and an upsert; a removal a delete.
	if err := os.Rename(filepath.Join(root, "new.txt"), filepath.Join(root, "renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "old.txt")); err != nil {
		t.Fatal(err)
	}
	b = ws.waitFor(t, "the rename and the removal", func(b Batch) bool {
		return has(b.Deletes, "new.txt") && has(b.Upserts, "renamed.txt") && has(b.Deletes, "old.txt")
	})
	if has(b.Upserts, "new.txt") || has(b.Upserts, "old.txt") {
		t.Errorf("batch %+v", b)
	}

	// A name that breaks the key rules is reported as skipped.
	write(t, filepath.Join(root, `back\slash.txt`), "x")
	b = ws.waitFor(t, "the skipped name", func(b Batch) bool { return len(b.Skipped) > 0 })
	if s := b.Skipped[0]; s.Path != `back\slash.txt` || !strings.Contains(s.Reason, "backslash") || has(b.Upserts, `back\slash.txt`) {
		t.Errorf("skipped %+v, batch %+v", s, b)
	}
}

func TestWatcherNewDirectories(t *testing.T) {
	root := t.TempDir()
	ws := startWatcher(t, root, nil)

	// A directory created now, with a file in a directory inside it: the
	// file may be written before the watch on its directory exists.
	write(t, filepath.Join(root, "a", "b", "c", "deep.txt"), "x")
	ws.waitFor(t, "a/b/c/deep.txt", func(b Batch) bool { return has(b.Upserts, "a/b/c/deep.txt") })

	// A tree made elsewhere and moved in: every file in it was there before
	// any watch, so only the scan of the new directory can find them.
	outside := t.TempDir()
	for _, p := range []string{"one.txt", "x/two.txt", "x/y/three.txt"} {
		write(t, filepath.Join(outside, "tree", p), p)
	}
	if err := os.Rename(filepath.Join(outside, "tree"), filepath.Join(root, "tree")); err != nil {
		t.Fatal(err)
	}
	ws.waitFor(t, "the moved-in tree's files", func(b Batch) bool {
		return has(b.Upserts, "tree/one.txt") && has(b.Upserts, "tree/x/two.txt") && has(b.Upserts, "tree/x/y/three.txt")
	})

	// The new directories are watched now.
	write(t, filepath.Join(root, "tree", "x", "y", "later.txt"), "x")
	ws.waitFor(t, "tree/x/y/later.txt", func(b Batch) bool { return has(b.Upserts, "tree/x/y/later.txt") })

	// A directory renamed within the tree: the old one is a deleted
	// directory, the new one's files are upserts, and it stays watched
	// under its new name.
	if err := os.Rename(filepath.Join(root, "tree"), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	b := ws.waitFor(t, "the renamed directory", func(b Batch) bool {
		return has(b.DeletedDirs, "tree") && has(b.Upserts, "moved/x/y/later.txt") && has(b.Upserts, "moved/one.txt")
	})
	for _, k := range b.Upserts {
		if strings.HasPrefix(k, "tree/") {
			t.Errorf("upsert %q under the renamed directory", k)
		}
	}
	write(t, filepath.Join(root, "moved", "x", "y", "after.txt"), "x")
	b = ws.waitFor(t, "moved/x/y/after.txt", func(b Batch) bool { return has(b.Upserts, "moved/x/y/after.txt") })
	if has(b.Upserts, "tree/x/y/after.txt") {
		t.Errorf("the old name still reports: %+v", b)
	}

	// A directory moved out of the tree is deleted.
	if err := os.Rename(filepath.Join(root, "moved"), filepath.Join(outside, "gone")); err != nil {
		t.Fatal(err)
	}
	ws.waitFor(t, "the directory moved out", func(b Batch) bool { return has(b.DeletedDirs, "moved") })
}

// An event queue overflow gives an Overflow batch and a message saying
// what to raise; the watcher then goes on.
func TestWatcherOverflowInjected(t *testing.T) {
	root := t.TempDir()
	ws := startWatcher(t, root, nil)
	write(t, filepath.Join(root, "before.txt"), "x")
	// The injected error travels the same path as one from the kernel.
	ws.w.fsw.Errors <- fsnotify.ErrEventOverflow
	b := ws.waitFor(t, "an Overflow batch", func(b Batch) bool { return b.Overflow })
	if len(b.Upserts) != 0 || !strings.Contains(b.Reason, "overflow") {
		t.Errorf("batch %+v", b)
	}
	ws.mu.Lock()
	msgs := slices.Clone(ws.degraded)
	ws.mu.Unlock()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "sysctl fs.inotify.max_queued_events=") ||
		!strings.Contains(msgs[0], "/etc/sysctl.d/") || !strings.Contains(msgs[0], "full scan") {
		t.Errorf("OnDegraded messages %q", msgs)
	}

	write(t, filepath.Join(root, "after.txt"), "x")
	b = ws.waitFor(t, "after.txt", func(b Batch) bool { return has(b.Upserts, "after.txt") })
	if b.Overflow {
		t.Errorf("batch after the overflow %+v", b)
	}
}

// A real overflow of the kernel queue: more events than it holds arrive
// while nobody reads them.
func TestWatcherOverflowReal(t *testing.T) {
	v, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip("no /proc/sys/fs/inotify/max_queued_events:", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(v)))
	if err != nil || limit > 100_000 {
		t.Skipf("max_queued_events %q: too many files to create for a test", v)
	}
	if testing.Short() {
		t.Skip("creates many files")
	}
	root := t.TempDir()
	w, err := NewWatcher(root, WatchOptions{Delay: 100 * time.Millisecond, MaxDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads yet: the events pile up in the kernel.
	for i := range limit + 5000 {
		f, err := os.Create(filepath.Join(root, "f"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	batches := make(chan Batch)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx, batches) }()
	defer func() { cancel(); <-done }()
	timeout := time.After(waitTimeout)
	for {
		select {
		case b := <-batches:
			if b.Overflow {
				return
			}
		case <-timeout:
			t.Fatal("no Overflow batch after overflowing the kernel's queue")
		}
	}
}

// Hitting the inotify watch limit is an Overflow batch and a message on
// how to raise it; once watches can be added again, the missing ones are,
// and another full scan is asked for.
func TestWatcherWatchLimit(t *testing.T) {
	root := t.TempDir()
	var full atomic.Bool
	ws := startWatcher(t, root, func(w *Watcher) {
		real := w.add
		w.add = func(path string) error {
			if full.Load() {
				return syscall.ENOSPC
			}
			return real(path)
		}
		w.retryEvery = 200 * time.Millisecond
	})
	full.Store(true)
	write(t, filepath.Join(root, "d", "f.txt"), "x")
	b := ws.waitFor(t, "an Overflow batch", func(b Batch) bool { return b.Overflow })
	if !strings.Contains(b.Reason, "watch limit") {
		t.Errorf("batch %+v", b)
	}
	ws.mu.Lock()
	msgs := slices.Clone(ws.degraded)
	ws.mu.Unlock()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "sysctl fs.inotify.max_user_watches=524288") ||
		!strings.Contains(msgs[0], "/etc/sysctl.d/") {
		t.Errorf("OnDegraded messages %q", msgs)
	}

	full.Store(false)
	b = ws.waitFor(t, "the Overflow batch of the recovery", func(b Batch) bool {
		return b.Overflow && strings.Contains(b.Reason, "watched again")
	})
	write(t, filepath.Join(root, "d", "g.txt"), "x")
	ws.waitFor(t, "d/g.txt", func(b Batch) bool { return has(b.Upserts, "d/g.txt") })
	ws.mu.Lock()
	if len(ws.degraded) != 1 {
		t.Errorf("OnDegraded called %d times", len(ws.degraded))
	}
	ws.mu.Unlock()
}

func TestWatcherRootRemoved(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	write(t, filepath.Join(root, "a.txt"), "x")
	ws := startWatcher(t, root, nil)
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	b := ws.waitFor(t, "an Overflow batch", func(b Batch) bool { return b.Overflow })
	if !strings.Contains(b.Reason, "removed or renamed") {
		t.Errorf("batch %+v", b)
	}
}

// handle and flush, fed synthetic events: deterministic checks of the
// aggregation rules.
func TestWatcherAggregation(t *testing.T) {
	root := t.TempDir()
	w, err := NewWatcher(root, WatchOptions{MaxBatchPaths: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	root = w.root
	ev := func(name string, op fsnotify.Op) { w.handle(fsnotify.Event{Name: filepath.Join(root, name), Op: op}) }

	// Created and removed within the batch: nothing.
	write(t, filepath.Join(root, "tmp"), "x")
	ev("tmp", fsnotify.Create)
	ev("tmp", fsnotify.Write)
	os.Remove(filepath.Join(root, "tmp"))
	ev("tmp", fsnotify.Remove)
	// Modified, then removed: a delete.
	ev("existing", fsnotify.Write)
	ev("existing", fsnotify.Remove)
	// Renamed over an existing file (Create right after Rename) and
	// removed: still a delete, as the destination had the old file.
	ev("x.tmp", fsnotify.Rename)
	ev("target", fsnotify.Create)
	ev("target", fsnotify.Remove)
	// Removed and created again: an upsert.
	write(t, filepath.Join(root, "back"), "x")
	ev("back", fsnotify.Remove)
	ev("back", fsnotify.Create)
	b := w.flush()
	want := Batch{Upserts: []string{"back"}, Deletes: []string{"existing", "target", "x.tmp"}}
	if !slices.Equal(b.Upserts, want.Upserts) || !slices.Equal(b.Deletes, want.Deletes) || b.Overflow || !w.acc.empty() {
		t.Errorf("batch %+v, want %+v", b, want)
	}

	// More paths than MaxBatchPaths: an Overflow batch.
	for i := range 6 {
		ev("f"+strconv.Itoa(i), fsnotify.Write)
	}
	if b := w.flush(); !b.Overflow || len(b.Upserts) != 0 || !strings.Contains(b.Reason, "more than 5 paths") {
		t.Errorf("batch %+v", b)
	}
}

func TestBatchMerge(t *testing.T) {
	b := Batch{Upserts: []string{"a", "d/x"}, Deletes: []string{"b"}, Skipped: []Skipped{{Path: "s", Reason: "r"}}}
	b.Merge(Batch{Upserts: []string{"b", "d/y"}, Deletes: []string{"a"}, DeletedDirs: []string{"d"}, Skipped: []Skipped{{Path: "s", Reason: "r"}}})
	if !slices.Equal(b.Upserts, []string{"b", "d/y"}) || !slices.Equal(b.Deletes, []string{"a"}) ||
		!slices.Equal(b.DeletedDirs, []string{"d"}) || len(b.Skipped) != 1 {
		t.Errorf("merged %+v", b)
	}
	b.Merge(Batch{Overflow: true, Reason: "lost"})
	if !b.Overflow || b.Reason != "lost" || len(b.Upserts) != 0 {
		t.Errorf("merged with overflow %+v", b)
	}
	b.Merge(Batch{Upserts: []string{"z"}})
	if !b.Overflow || len(b.Upserts) != 0 {
		t.Errorf("overflow absorbs later batches: %+v", b)
	}
	if (&Batch{}).Empty() != true || (&Batch{Overflow: true}).Empty() {
		t.Error("Empty")
	}
}

// startInboxWatch runs in.Watch until the test ends; it returns the
// channel of its notifications.
func startInboxWatch(t *testing.T, in *Inbox) <-chan struct{} {
	t.Helper()
	notified := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Watch(ctx, func() { notified <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return notified
}

// waitNotified waits for a notification of the inbox's watch.
func waitNotified(t *testing.T, notified <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-notified:
	case <-time.After(waitTimeout):
		t.Fatal(what)
	}
}

// dropWhole writes a list under a temporary name and renames it into the
// inbox, as writers should.
func dropWhole(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	write(t, tmp, content)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// A list renamed into a watched inbox is taken at once, however young;
// one written in place waits for MinAge; a remote inbox cannot be
// watched.
func TestInboxWatch(t *testing.T) {
	dir := t.TempDir()
	in, err := NewLocalInbox(dir, InboxOptions{Plan: "p", DB: openDB(t), MinAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	notified := startInboxWatch(t, in)
	// The watch may not be set up yet: drop lists until one notifies.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(waitTimeout)
	var dropped []string
wait:
	for i := 0; ; i++ {
		name := "whole" + strconv.Itoa(i) + ".csv"
		dropWhole(t, dir, name, "a"+strconv.Itoa(i)+"\n")
		dropped = append(dropped, name)
		select {
		case <-notified:
			break wait
		case <-tick.C:
		case <-timeout:
			t.Fatal("a list renamed into the inbox did not notify")
		}
	}
	// Lists dropped before the watch began are young and wait; the one
	// that notified, and any other seen arriving, are taken.
	c, err := in.Next(t.Context())
	if err != nil {
		t.Fatalf("Next after a whole arrival: %v (MinAge is an hour: the arrival rule should take it)", err)
	}
	for ; err == nil; c, err = in.Next(t.Context()) {
		if !slices.Contains(dropped, c.Name()) {
			t.Errorf("claimed %s, not one of the lists dropped", c.Name())
		}
	}
	if !errors.Is(err, ErrNoList) {
		t.Fatal(err)
	}

	// Written in place, then a whole list after it: the watch handles
	// events in order, so when the whole one notifies, the written one has
	// been seen written, and only the whole one is taken.
	f, err := os.Create(filepath.Join(dir, "inplace.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("b\n"); err != nil {
		t.Fatal(err)
	}
	dropWhole(t, dir, "after.csv", "c\n")
	waitNotified(t, notified, "a second whole list did not notify")
	c, err = in.Next(t.Context())
	if err != nil || c.Name() != "after.csv" {
		t.Fatalf("Next = %v, %v; want after.csv", c, err)
	}
	if c, err := in.Next(t.Context()); !errors.Is(err, ErrNoList) {
		t.Fatalf("Next = %v, %v; want nothing: inplace.csv is written in place and young", c, err)
	}
	f.Close()

	// A whole list that is then written to loses its mark.
	dropWhole(t, dir, "appended.csv", "d\n")
	waitNotified(t, notified, "a third whole list did not notify")
	af, err := os.OpenFile(filepath.Join(dir, "appended.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	af.WriteString("e\n")
	af.Close()
	dropWhole(t, dir, "sync.csv", "f\n") // a marker: its notification means the write was seen
	waitNotified(t, notified, "the marker list did not notify")
	c, err = in.Next(t.Context())
	if err != nil || c.Name() != "sync.csv" {
		t.Fatalf("Next = %v, %v; want sync.csv, not appended.csv (written after it arrived)", c, err)
	}
}

func TestInboxWatchRemote(t *testing.T) {
	in, err := NewRemoteInbox(mem.New(), "inbox/", "mem:inbox", InboxOptions{Plan: "p", DB: openDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Watch(t.Context(), func() {}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Watch of a remote inbox = %v, want errors.ErrUnsupported", err)
	}
}
