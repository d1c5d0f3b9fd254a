package changelist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// How a watched local inbox tells a list that arrived whole from one still
// being written.
const (
	// arrivalSettle is how long the watch waits after a list appears for
	// a write to it. A write that happened before the file was seen
	// (inotify queues its event during the write) arrives well within it.
	arrivalSettle = 30 * time.Millisecond
	// writtenSettle is added to MinAge before a list written in place is
	// looked at again, so that it is old enough by then.
	writtenSettle = 250 * time.Millisecond
)

// Watch calls notify soon after a list is dropped into a local inbox, so
// that Next takes it. It fails with an error wrapping errors.ErrUnsupported
// for a remote inbox, which must be polled; otherwise it returns nil when
// ctx is canceled. A lost event (the kernel queue overflowed) also calls
// notify. The caller should still poll now and then: notify is a hint.
//
// A list that appears in the directory already written — renamed or
// linked into place, as writers should — with no write to it afterwards is
// marked as arrived whole: Next takes it at once instead of waiting for
// it to be MinAge old. A list written in place is taken once no write has
// touched it for MinAge.
func (in *Inbox) Watch(ctx context.Context, notify func()) error {
	b, ok := in.b.(*localInbox)
	if !ok {
		return fmt.Errorf("changelist inbox %s is remote and must be polled: %w", in.b, errors.ErrUnsupported)
	}
	return b.watch(ctx, notify)
}

// arrival is a list seen appearing: its size and mtime then.
type arrival struct {
	size  int64
	mtime time.Time
}

func (b *localInbox) watch(ctx context.Context, notify func()) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch inbox %s: %w", b.dir, err)
	}
	defer fsw.Close()
	if err := fsw.Add(b.dir); err != nil {
		return fmt.Errorf("watch inbox %s: %w", b.dir, err)
	}
	// A list present before the watch started is found by the caller's
	// first Next (and by its age).
	written := time.NewTimer(time.Hour)
	written.Stop()
	arrived := time.NewTimer(time.Hour)
	arrived.Stop()
	candidates := make(map[string]arrival)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return fmt.Errorf("watch inbox %s: the event stream closed", b.dir)
			}
			name := filepath.Base(ev.Name)
			if !isListName(name) {
				continue
			}
			switch {
			case ev.Has(fsnotify.Write):
				// Written in place: only its age will tell.
				delete(candidates, name)
				b.forgetWhole(name)
				written.Reset(b.minAge + writtenSettle)
			case ev.Has(fsnotify.Create):
				if fi, err := os.Lstat(ev.Name); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
					candidates[name] = arrival{fi.Size(), fi.ModTime()}
					arrived.Reset(arrivalSettle)
				} else {
					written.Reset(b.minAge + writtenSettle)
				}
			case ev.Has(fsnotify.Remove | fsnotify.Rename):
				delete(candidates, name)
				b.forgetWhole(name)
			}
		case err, ok := <-fsw.Errors:
			if !ok {
				return fmt.Errorf("watch inbox %s: the event stream closed", b.dir)
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: ages decide for everything.
				clear(candidates)
				b.forgetWhole("")
				written.Reset(b.minAge + writtenSettle)
			}
		case <-arrived.C:
			n := 0
			for name, a := range candidates {
				fi, err := os.Lstat(filepath.Join(b.dir, name))
				if err == nil && fi.Size() == a.size && fi.ModTime().Equal(a.mtime) {
					b.markWhole(name, a)
					n++
				}
			}
			clear(candidates)
			if n > 0 {
				notify()
			}
		case <-written.C:
			notify()
		}
	}
}

func (b *localInbox) markWhole(name string, a arrival) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.whole == nil {
		b.whole = make(map[string]arrival)
	}
	b.whole[name] = a
}

// forgetWhole forgets the mark of name, or of every list for "".
func (b *localInbox) forgetWhole(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == "" {
		clear(b.whole)
	} else {
		delete(b.whole, name)
	}
}

// arrivedWhole reports whether name was seen arriving whole with the size
// and mtime it has now.
func (b *localInbox) arrivedWhole(name string, size int64, mtime time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.whole[name]
	return ok && a.size == size && a.mtime.Equal(mtime)
}
