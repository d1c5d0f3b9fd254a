package syncer

import (
	"context"
	"errors"
	"strings"

	"github.com/ferrysync/ferry/remote"
)

// statBudget is how many single lookups a scan makes at the destination
// before it switches to one streaming listing: a few new files cost a few
// requests; a first sync of a million costs a listing.
const statBudget = 64

// destLookup answers "what does the destination hold at this key?" for the
// files the index does not know. In a scan, keys arrive in ascending order,
// so after statBudget single Stats it merges against a listing of the
// destination that it reads once, front to back, in the background.
type destLookup struct {
	store   remote.Store
	ordered bool
	check   bool // check the files the index knows (listed in a scan, else find)
	failed  error
	stats   int
	cursor  *listCursor // the full listing, for files the index does not know
	plain   *listCursor // a listing without metadata where the store has one, for the ETag check
}

func newDestLookup(s remote.Store, ordered, check bool) *destLookup {
	return &destLookup{store: s, ordered: ordered, check: check}
}

func (l *destLookup) find(ctx context.Context, key string) (remote.ObjectInfo, bool, error) {
	if !l.ordered || l.stats < statBudget {
		l.stats++
		info, err := l.store.Stat(ctx, key)
		switch {
		case err == nil:
			return info, true, nil
		case errors.Is(err, remote.ErrNotExist):
			return remote.ObjectInfo{}, false, nil
		default:
			return remote.ObjectInfo{}, false, err
		}
	}
	if l.cursor == nil {
		l.cursor = startCursor(ctx, l.store)
	}
	return l.cursor.seek(key)
}

// listed looks key up in the destination's listing only (never a Stat):
// for checking files the index knows, at the cost of one listing per job.
func (l *destLookup) listed(ctx context.Context, key string) (remote.ObjectInfo, bool, error) {
	if l.plain == nil {
		list := l.store.List
		if pl, ok := l.store.(remote.PlainLister); ok {
			list = pl.ListPlain
		}
		l.plain = startCursorFunc(ctx, list)
	}
	info, ok, err := l.plain.seek(key)
	if err != nil && l.failed == nil {
		l.failed = err
	}
	return info, ok, err
}

// listErr returns the error of the listing that listed used, if a lookup
// failed because of it.
func (l *destLookup) listErr() error { return l.failed }

func (l *destLookup) close() {
	for _, c := range []*listCursor{l.cursor, l.plain} {
		if c != nil {
			c.stop()
		}
	}
}

// listCursor reads a store's listing in a goroutine and lets the caller
// advance through it in key order.
type listCursor struct {
	cancel context.CancelFunc
	ch     chan remote.ObjectInfo
	done   chan struct{}
	err    error
	head   *remote.ObjectInfo
	eof    bool

	// For a presence cursor: the entries listed but skipped (unreadable
	// directories, archived objects, symlinks not followed…) that may still
	// cover keys at or after the current one.
	presence bool
	covers   []remote.ObjectInfo
}

func startCursor(ctx context.Context, s remote.Store) *listCursor {
	return startCursorFunc(ctx, s.List)
}

// startPresenceCursor is a cursor over what the store has, readable or
// not, for deciding what it lacks: an entry the listing skipped counts as
// present, with everything under it (see present).
// The store is walked with ListStat where it has it: presence needs no
// checksums.
func startPresenceCursor(ctx context.Context, s remote.Store) *listCursor {
	list := s.List
	if sl, ok := s.(remote.StatLister); ok {
		list = sl.ListStat
	}
	c := startCursorFunc(ctx, list)
	c.presence = true
	return c
}

// startCursorFunc is startCursor over a listing function (List or
// ListPlain).
func startCursorFunc(ctx context.Context, list func(context.Context, string, func(remote.ObjectInfo) error) error) *listCursor {
	ctx, cancel := context.WithCancel(ctx)
	c := &listCursor{cancel: cancel, ch: make(chan remote.ObjectInfo, 1024), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.ch)
		c.err = list(ctx, "", func(info remote.ObjectInfo) error {
			// Skipped entries too: seek keeps them as covers for a
			// presence cursor and drops them for the others.
			select {
			case c.ch <- info:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return c
}

// seek advances to key and reports the entry there, if any. Keys passed to
// successive calls must not decrease.
func (c *listCursor) seek(key string) (remote.ObjectInfo, bool, error) {
	for {
		if c.head == nil {
			if c.eof {
				// A failed listing fails every later lookup: "absent" must
				// never be a guess.
				return remote.ObjectInfo{}, false, c.err
			}
			info, ok := <-c.ch
			if !ok {
				c.eof = true
				<-c.done
				continue
			}
			if info.SkipReason != "" {
				if c.presence {
					c.covers = append(c.covers, info)
				}
				continue
			}
			c.head = &info
		}
		switch {
		case c.head.Key == key:
			return *c.head, true, nil
		case c.head.Key > key:
			return remote.ObjectInfo{}, false, nil
		}
		c.head = nil
	}
}

// present reports whether the store has key, for a presence cursor: listed
// (skipped is nil), or covered by an entry the listing skipped — a file
// entry of that key, or a directory (or what may be one) above key — which
// it returns. A skipped directory does not cover a file of its own name:
// the source has no such file.
// Keys passed to successive calls must not decrease.
func (c *listCursor) present(key string) (skipped *remote.ObjectInfo, found bool, err error) {
	if _, found, err := c.seek(key); found || err != nil {
		return nil, found, err
	}
	kept := c.covers[:0]
	for _, cv := range c.covers {
		// A directory ("d/") covers what is under it; any other entry
		// ("x": a dangling symlink, an archived object) itself too, and
		// what may be under it.
		base, isDir := strings.CutSuffix(cv.Key, "/")
		dir := base + "/"
		switch {
		case key == base && !isDir || strings.HasPrefix(key, dir):
			if skipped == nil {
				skipped = &cv
			}
			kept = append(kept, cv)
		case key < dir:
			kept = append(kept, cv) // a later key may still fall under it
		}
		// else: no key from this one on can fall under cv
	}
	clear(c.covers[len(kept):])
	c.covers = kept
	return skipped, skipped != nil, nil
}

func (c *listCursor) stop() {
	c.cancel()
	for range c.ch {
	}
	<-c.done
}
