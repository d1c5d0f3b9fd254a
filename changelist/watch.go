package changelist

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ferrysync/ferry/remote"
)

// Watcher defaults.
const (
	DefaultWatchDelay    = 10 * time.Second
	DefaultWatchMaxDelay = 60 * time.Second
	// DefaultMaxBatchPaths: a batch with more changed paths becomes an
	// Overflow batch (a full scan is then cheaper than a list).
	DefaultMaxBatchPaths = 100_000
	// watchRetryEvery: while some directories could not be watched (the
	// inotify watch limit), adding their watches is tried again this often.
	watchRetryEvery = 5 * time.Minute
)

// WatchOptions configure a Watcher. Zero fields take the defaults.
type WatchOptions struct {
	// Delay: a batch is sent once no event came for this long.
	Delay time.Duration
	// MaxDelay: a batch is sent at most this long after its first event,
	// even if events keep coming.
	MaxDelay time.Duration
	// MaxBatchPaths: more changed paths than this make the batch an
	// Overflow batch.
	MaxBatchPaths int
	// Logger receives the watcher's messages; nil discards them.
	Logger *slog.Logger
	// OnDegraded is called (by NewWatcher or Serve's goroutine; it must
	// not block) when changes may have been lost: the event queue
	// overflowed, the inotify watch limit left directories unwatched, or
	// the root vanished. msg says what happened and what to do; an Overflow
	// batch follows.
	OnDegraded func(msg string)
}

// Watcher watches a local directory tree with inotify (fsnotify) and
// turns its events into batches of changed keys.
//
// Every directory of the tree has a watch; a directory created later is
// watched and scanned at once, so files written into it before its watch
// existed are reported too. Events are aggregated: a batch is sent after
// Delay without events, or MaxDelay after the batch's first event. A rename
// is a delete of the old name and an upsert of the new; a file created and
// removed again within one batch is not reported at all. When the batch is
// cut, each path is checked once more (lstat): what exists now is an
// upsert, what does not is a delete, directories are not keys.
//
// Nothing is lost silently: a kernel queue overflow, the inotify watch
// limit, a batch over MaxBatchPaths or the root vanishing make an Overflow
// batch (do a full scan) and, for the first two, an OnDegraded message.
// Changes made while no Watcher runs are not seen: run a full scan when
// watching starts.
type Watcher struct {
	root string
	opts WatchOptions
	log  *slog.Logger
	fsw  *fsnotify.Watcher

	// Owned by Serve's goroutine (and NewWatcher before it).
	add        func(path string) error // adds one watch; tests replace it
	dirs       map[string]map[string]bool
	incomplete bool // some directories are not watched (watch limit)
	retrying   bool // retryWatches runs: a limit hit again is no news
	acc        *accumulator
	lastRename bool // the previous event was a Rename (so a Create is its other half)
	retryEvery time.Duration

	closeOnce sync.Once
	closeErr  error
}

// NewWatcher starts watching the directory root and every directory under
// it; when it returns, changes are being recorded (Serve delivers them).
// Hitting the inotify watch limit here is not an error: the first batch is
// then an Overflow batch and OnDegraded is called. Close the Watcher, or
// let Serve close it.
func NewWatcher(root string, opts WatchOptions) (*Watcher, error) {
	if opts.Delay <= 0 {
		opts.Delay = DefaultWatchDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultWatchMaxDelay
	}
	if opts.MaxDelay < opts.Delay {
		opts.MaxDelay = opts.Delay
	}
	if opts.MaxBatchPaths <= 0 {
		opts.MaxBatchPaths = DefaultMaxBatchPaths
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("watch %s: not a directory", root)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		if errors.Is(err, syscall.EMFILE) {
			return nil, fmt.Errorf("watch %s: too many inotify instances (fs.inotify.max_user_instances = %s); raise it with sysctl fs.inotify.max_user_instances=1024 and persist it in /etc/sysctl.d/: %w",
				root, procValue("max_user_instances"), err)
		}
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &Watcher{
		root:       abs,
		opts:       opts,
		log:        log.With(slog.String("root", abs)),
		fsw:        fsw,
		dirs:       make(map[string]map[string]bool),
		acc:        newAccumulator(),
		retryEvery: watchRetryEvery,
	}
	w.add = fsw.Add
	if err := w.addTree(abs, false); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w.log.Info("watching", slog.Int("directories", len(w.dirs)), slog.Bool("complete", !w.incomplete))
	return w, nil
}

// Close stops watching. Serve calls it when it returns.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { w.closeErr = w.fsw.Close() })
	return w.closeErr
}

// Serve aggregates events into batches and sends each on batches, until
// ctx is canceled (it then returns nil) or watching fails. While a batch
// waits to be received, events go on being recorded into the next one (and
// are merged into the waiting one if that is still not taken when the next
// is due); still, receive promptly: events wait in a bounded kernel queue.
// Serve closes the Watcher when it returns.
func (w *Watcher) Serve(ctx context.Context, batches chan<- Batch) error {
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	var pending *Batch
	var retry *time.Ticker
	var retryC <-chan time.Time
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		if !armed && !w.acc.empty() {
			timer.Reset(time.Until(w.acc.deadline(w.opts.Delay, w.opts.MaxDelay)))
			armed = true
		}
		if w.incomplete && retry == nil {
			retry = time.NewTicker(w.retryEvery)
			retryC = retry.C
		} else if !w.incomplete && retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
		var send chan<- Batch
		var next Batch
		if pending != nil {
			send, next = batches, *pending
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return fmt.Errorf("watch %s: the event stream closed", w.root)
			}
			w.handle(ev)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return fmt.Errorf("watch %s: the event stream closed", w.root)
			}
			w.handleError(err)
		case <-timer.C:
			armed = false
			if time.Now().Before(w.acc.deadline(w.opts.Delay, w.opts.MaxDelay)) {
				continue // events came since the timer was set
			}
			b := w.flush()
			if b.Empty() {
				continue
			}
			if pending == nil {
				pending = &b
			} else {
				pending.Merge(b)
			}
		case send <- next:
			pending = nil
		case <-retryC:
			w.retryWatches()
		}
	}
}

// handle records one event.
func (w *Watcher) handle(ev fsnotify.Event) {
	path := filepath.Clean(ev.Name)
	renamed := w.lastRename
	w.lastRename = ev.Has(fsnotify.Rename)
	w.acc.touch(time.Now())
	if path == w.root {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			w.log.Error("the watched directory was removed or renamed; nothing is watched until it is back")
			w.forgetDir(path)
			w.incomplete = true
			w.degraded(fmt.Sprintf("watch %s: the watched directory was removed or renamed; nothing under it is watched until it is back (checked every %s), and a full scan runs now",
				w.root, w.retryEvery), "the watched directory was removed or renamed")
		}
		return
	}
	key, ok := w.key(path)
	if !ok {
		return // a stale path of a directory moved out of the tree
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if w.dirs[path] != nil {
			w.forgetDir(path)
			w.acc.deletedDir(key)
		} else if !w.acc.deletedDirs[key] {
			w.acc.delete(key)
		}
	}
	if ev.Has(fsnotify.Create) {
		fi, err := os.Lstat(path)
		if err == nil && fi.IsDir() {
			if w.acc.overflow {
				_ = w.addTree(path, false) // the full scan will see its files
			} else {
				_ = w.addTree(path, true)
			}
		} else {
			// A Create right after a Rename is the rename's new name: it
			// may have replaced a file, so it is not "new".
			w.upsert(key, !renamed)
		}
	}
	if ev.Has(fsnotify.Write) || ev.Has(fsnotify.Chmod) {
		if w.dirs[path] == nil {
			w.upsert(key, false)
		}
	}
	if len(w.acc.paths) > w.opts.MaxBatchPaths {
		w.acc.setOverflow(fmt.Sprintf("more than %d paths changed in one batch", w.opts.MaxBatchPaths))
	}
}

func (w *Watcher) upsert(key string, created bool) {
	if err := remote.ValidateKey(key); err != nil {
		var ke *remote.KeyError
		reason := err.Error()
		if errors.As(err, &ke) {
			reason = ke.Reason
		}
		w.acc.skip(key, "watch: invalid path: "+reason)
		return
	}
	w.acc.upsert(key, created)
}

func (w *Watcher) handleError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		msg := fmt.Sprintf("watch %s: the kernel's inotify event queue overflowed (fs.inotify.max_queued_events = %s), so some changes were not seen; a full scan runs instead. If this repeats, raise the queue: sysctl fs.inotify.max_queued_events=65536 (and fs.inotify.max_user_watches=524288 for large trees), persisted in a file in /etc/sysctl.d/",
			w.root, procValue("max_queued_events"))
		w.log.Warn("inotify event queue overflow; falling back to a full scan",
			slog.String("max_queued_events", procValue("max_queued_events")))
		w.degraded(msg, "the inotify event queue overflowed")
		return
	}
	w.log.Warn("watch error", slog.Any("err", err))
}

// degraded makes the current batch an Overflow batch and tells the
// OnDegraded callback, once per batch.
func (w *Watcher) degraded(msg, reason string) {
	w.acc.touch(time.Now())
	if w.acc.overflow && w.acc.alerted {
		return
	}
	w.acc.setOverflow(reason)
	w.acc.alerted = true
	if w.opts.OnDegraded != nil {
		w.opts.OnDegraded(msg)
	}
}

// key turns an absolute path under the root into a key (possibly one that
// breaks the key rules); ok is false for a path outside the root.
func (w *Watcher) key(path string) (string, bool) {
	rel, err := filepath.Rel(w.root, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// addTree watches dir and every directory under it that is not watched
// yet. With report set, the files found are recorded as new (dir was just
// created). Only a failure to watch the root itself is an error.
func (w *Watcher) addTree(dir string, report bool) error {
	limited := false
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == w.root && dir == w.root {
				return err
			}
			w.log.Warn("cannot read a directory to watch it", slog.String("path", path), slog.Any("err", err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		key, _ := w.key(path)
		if !d.IsDir() {
			if report {
				w.upsert(key, true)
			}
			return nil
		}
		if path != w.root {
			if err := remote.ValidateKey(key); err != nil {
				if report {
					w.upsert(key, true) // records it as skipped, with the reason
				}
				return fs.SkipDir // nothing under it can be synced
			}
		}
		if w.dirs[path] != nil || limited {
			return nil
		}
		err = w.add(path)
		switch {
		case err == nil:
			w.dirs[path] = make(map[string]bool)
			if path != w.root {
				if parent := w.dirs[filepath.Dir(path)]; parent != nil {
					parent[path] = true
				}
			}
		case errors.Is(err, syscall.ENOSPC):
			limited = true
			w.watchLimit()
		case path == w.root && dir == w.root:
			return err
		default:
			// Gone already, or not readable: the scan jobs report it.
			w.log.Warn("cannot watch a directory", slog.String("path", path), slog.Any("err", err))
			return fs.SkipDir
		}
		return nil
	})
}

// watchLimit handles ENOSPC from adding a watch.
func (w *Watcher) watchLimit() {
	if w.incomplete {
		return
	}
	w.incomplete = true
	if w.retrying {
		return
	}
	limit := procValue("max_user_watches")
	msg := fmt.Sprintf("watch %s: the inotify watch limit (fs.inotify.max_user_watches = %s) was reached after %d directories, so changes in the directories not watched are not seen; a full scan runs now, and the plan's scheduled scans catch later changes there. Raise the limit: sysctl fs.inotify.max_user_watches=524288, and persist it with the line fs.inotify.max_user_watches=524288 in a file in /etc/sysctl.d/ (e.g. 90-ferry.conf). Ferry retries adding the missing watches every %s.",
		w.root, limit, len(w.dirs), w.retryEvery)
	w.log.Warn("inotify watch limit reached; some directories are not watched",
		slog.String("max_user_watches", limit), slog.Int("watched", len(w.dirs)))
	w.degraded(msg, "the inotify watch limit was reached")
}

// retryWatches tries again to watch every directory.
func (w *Watcher) retryWatches() {
	if _, err := os.Stat(w.root); err != nil {
		return
	}
	w.incomplete, w.retrying = false, true
	err := w.addTree(w.root, false)
	w.retrying = false
	if err != nil {
		w.incomplete = true
		w.log.Warn("cannot watch the root", slog.Any("err", err))
		return
	}
	if !w.incomplete {
		w.log.Info("every directory is watched again", slog.Int("directories", len(w.dirs)))
		w.acc.touch(time.Now())
		w.acc.setOverflow("every directory is watched again; a full scan catches the changes missed meanwhile")
	}
}

// forgetDir drops the watches of dir and every directory under it (the
// kernel dropped dir's own if it was removed; a renamed one would go on
// reporting under its old name).
func (w *Watcher) forgetDir(dir string) {
	children := w.dirs[dir]
	delete(w.dirs, dir)
	if parent := w.dirs[filepath.Dir(dir)]; parent != nil {
		delete(parent, dir)
	}
	_ = w.fsw.Remove(dir) // may be gone already
	for c := range children {
		w.forgetDir(c)
	}
}

// flush cuts the batch.
func (w *Watcher) flush() Batch {
	a := w.acc
	w.acc = newAccumulator()
	if a.overflow {
		// Watch what the lost events may have created before the scan runs,
		// so that nothing slips between the scan and the watches.
		if !w.incomplete {
			if err := w.addTree(w.root, false); err != nil {
				w.log.Warn("cannot watch the root", slog.Any("err", err))
			}
		}
		return Batch{Overflow: true, Reason: a.reason}
	}
	b := Batch{Skipped: a.skipped}
	for key, c := range a.paths {
		fi, err := os.Lstat(filepath.Join(w.root, filepath.FromSlash(key)))
		switch {
		case err == nil && fi.IsDir():
		case err == nil:
			b.Upserts = append(b.Upserts, key)
		case errors.Is(err, fs.ErrNotExist):
			if !c.created && !a.under(key) { // else: never existed, or covered by DeletedDirs
				b.Deletes = append(b.Deletes, key)
			}
		default:
			b.Upserts = append(b.Upserts, key) // the job reports why it cannot read it
		}
	}
	for d := range a.deletedDirs {
		b.DeletedDirs = append(b.DeletedDirs, d)
	}
	b.sort()
	return b
}

// procValue reads /proc/sys/fs/inotify/NAME, for messages.
func procValue(name string) string {
	v, err := os.ReadFile("/proc/sys/fs/inotify/" + name)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(v))
}

// accumulator collects one batch.
type accumulator struct {
	paths       map[string]*change
	deletedDirs map[string]bool
	skipped     []Skipped
	skippedSeen map[string]bool
	overflow    bool
	alerted     bool
	reason      string
	first, last time.Time
}

type change struct {
	created bool // the path's first event in the batch created it
	del     bool // the last event removed it
}

func newAccumulator() *accumulator {
	return &accumulator{paths: make(map[string]*change), deletedDirs: make(map[string]bool), skippedSeen: make(map[string]bool)}
}

func (a *accumulator) empty() bool { return a.first.IsZero() }

func (a *accumulator) touch(now time.Time) {
	if a.first.IsZero() {
		a.first = now
	}
	a.last = now
}

// deadline is when the batch is due.
func (a *accumulator) deadline(delay, maxDelay time.Duration) time.Time {
	d := a.last.Add(delay)
	if m := a.first.Add(maxDelay); m.Before(d) {
		d = m
	}
	return d
}

func (a *accumulator) setOverflow(reason string) {
	if !a.overflow {
		a.overflow, a.reason = true, reason
	}
	a.paths, a.deletedDirs, a.skipped = make(map[string]*change), make(map[string]bool), nil
}

func (a *accumulator) upsert(key string, created bool) {
	if a.overflow {
		return
	}
	c := a.paths[key]
	if c == nil {
		c = &change{created: created}
		a.paths[key] = c
	}
	c.del = false
}

func (a *accumulator) delete(key string) {
	if a.overflow {
		return
	}
	c := a.paths[key]
	if c == nil {
		c = &change{}
		a.paths[key] = c
	}
	c.del = true
}

func (a *accumulator) deletedDir(key string) {
	if !a.overflow {
		a.deletedDirs[key] = true
	}
}

func (a *accumulator) skip(key, reason string) {
	if a.overflow || a.skippedSeen[key] {
		return
	}
	a.skippedSeen[key] = true
	a.skipped = append(a.skipped, Skipped{Path: remote.PrintableKey(key), Reason: reason})
}

// under reports whether key is under a deleted directory.
func (a *accumulator) under(key string) bool {
	for i := strings.LastIndexByte(key, '/'); i > 0; i = strings.LastIndexByte(key[:i], '/') {
		if a.deletedDirs[key[:i]] {
			return true
		}
	}
	return false
}
