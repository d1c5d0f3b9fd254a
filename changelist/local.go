package changelist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// localInbox is an inbox directory:
//
//	DIR/NAME.csv              dropped, waiting
//	DIR/NAME.csv.processing   claimed
//	DIR/done/NAME.csv         processed
//	DIR/rejected/NAME.csv     refused, beside
//	DIR/rejected/NAME.csv.error   why
type localInbox struct {
	dir    string
	minAge time.Duration
	now    func() time.Time
	// whole are the lists the watch saw arriving whole (see Watch), which
	// are claimed whatever their age.
	mu    sync.Mutex
	whole map[string]arrival
	// recovered are the .processing names found when the inbox was opened:
	// claims of a process that died. Next hands them out first.
	recovered []string
}

// NewLocalInbox opens the inbox directory dir, which must exist. Files
// named *.processing in it are claims an earlier process left unfinished;
// Next hands them out again first.
//
// A file is claimed by renaming it to NAME.processing, which never
// replaces an existing file. Only regular files named *.csv or *.csv.gz
// (any case, not starting with ".") whose modification time is at least
// MinAge old, or seen arriving whole by Watch, are claimed: a writer
// should write under another name (e.g. .NAME.csv.tmp) and rename the
// finished file into place; the age rule protects writers that do not.
func NewLocalInbox(dir string, opts InboxOptions) (*Inbox, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("changelist inbox %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("changelist inbox %s: the directory does not exist (create it, writable by the lists' producers and by ferry)", dir)
	case err != nil:
		return nil, fmt.Errorf("changelist inbox %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("changelist inbox %s: not a directory", dir)
	}
	b := &localInbox{dir: abs}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("changelist inbox %s: %w", dir, err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), processingExt)
		if e.Type().IsRegular() && name != e.Name() && isListName(name) {
			b.recovered = append(b.recovered, name)
		}
	}
	in, err := newInbox(b, opts)
	if err != nil {
		return nil, err
	}
	b.minAge, b.now = in.opts.MinAge, in.opts.now
	return in, nil
}

func (b *localInbox) String() string { return b.dir }

func (b *localInbox) processing(name string) string {
	return filepath.Join(b.dir, name+processingExt)
}

func (b *localInbox) claimNext(ctx context.Context) (*item, error) {
	for len(b.recovered) > 0 {
		name := b.recovered[0]
		b.recovered = b.recovered[1:]
		if fi, err := os.Lstat(b.processing(name)); err == nil && fi.Mode().IsRegular() {
			return &item{name: name, recovered: true, path: b.processing(name)}, nil
		}
	}
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, err
	}
	type cand struct {
		name  string
		mtime time.Time
	}
	var cands []cand
	young := b.now().Add(-b.minAge)
	for _, e := range entries {
		if !e.Type().IsRegular() || !isListName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // gone
		}
		if fi.ModTime().After(young) && !b.arrivedWhole(e.Name(), fi.Size(), fi.ModTime()) {
			continue // perhaps still being written
		}
		cands = append(cands, cand{e.Name(), fi.ModTime()})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if c := a.mtime.Compare(b.mtime); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := renameNoReplace(filepath.Join(b.dir, c.name), b.processing(c.name))
		if !errors.Is(err, fs.ErrExist) { // claimed, or gone
			b.forgetWhole(c.name)
		}
		switch {
		case err == nil:
			return &item{name: c.name, path: b.processing(c.name)}, nil
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrExist):
			// Taken by someone else, or a list of that name is still being
			// processed: try the next.
			continue
		default:
			return nil, fmt.Errorf("claim %s: %w", c.name, err)
		}
	}
	return nil, nil
}

func (b *localInbox) open(_ context.Context, it *item) (io.ReadCloser, error) {
	return os.Open(it.path)
}

func (b *localInbox) finish(_ context.Context, it *item, sub, reason string) (string, error) {
	dir := filepath.Join(b.dir, sub)
	if err := b.mkdir(dir); err != nil {
		return "", err
	}
	for name := range altNames(it.name, b.now()) {
		target := filepath.Join(dir, name)
		if reason != "" {
			err := writeNoReplace(target+errorExt, reason)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return "", err
			}
		}
		err := renameNoReplace(it.path, target)
		if errors.Is(err, fs.ErrExist) {
			if reason != "" {
				os.Remove(target + errorExt)
			}
			continue
		}
		if err != nil {
			if reason != "" {
				os.Remove(target + errorExt)
			}
			return "", err
		}
		return target, nil
	}
	return "", fmt.Errorf("no free name for %s in %s", it.name, dir)
}

func (b *localInbox) release(_ context.Context, it *item) error {
	for name := range altNames(it.name, b.now()) {
		err := renameNoReplace(it.path, filepath.Join(b.dir, name))
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return fmt.Errorf("no free name for %s in %s", it.name, b.dir)
}

// mkdir creates done/ or rejected/ with the inbox directory's permissions.
func (b *localInbox) mkdir(dir string) error {
	perm := fs.FileMode(0o750)
	if fi, err := os.Stat(b.dir); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// writeNoReplace writes text to a new file at path, atomically, failing
// with fs.ErrExist when path exists.
func writeNoReplace(path, text string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameNoReplace(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// IsLocal reports whether the inbox is a local directory (which Watch can
// watch) rather than a remote prefix (which must be polled).
func (in *Inbox) IsLocal() bool {
	_, ok := in.b.(*localInbox)
	return ok
}
