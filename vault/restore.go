package vault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Path restores only this file or directory of the backup (with its
	// parent directories); "" restores everything.
	Path string
	// Workers is how many files are restored at once (default 4).
	Workers int
	// Progress, when set, is called from one goroutine every
	// ProgressInterval (default 200ms) and once at the end.
	Progress         func(RestoreProgress)
	ProgressInterval time.Duration
}

// RestoreProgress is a snapshot of a running restore.
type RestoreProgress struct {
	FilesTotal, FilesDone int64
	BytesTotal, BytesDone int64
}

// RestoreStats count what Restore wrote.
type RestoreStats struct {
	Files    int64
	Dirs     int64
	Symlinks int64
	Bytes    int64
}

// Restore writes backup id into the local directory target (created if
// missing): files, directories and symlinks with their modes and mtimes,
// and owners when running as root. Existing files at the same paths are
// replaced. Nothing is written outside target: every path of the tree is
// checked with remote.ValidateKey, and every write goes through an
// os.Root opened on target, which refuses to follow a symlink out of it.
// Every chunk read is checked against its SHA-256.
func (v *Vault) Restore(ctx context.Context, id, target string, opts RestoreOptions) (RestoreStats, error) {
	var st RestoreStats
	m, err := v.Backup(ctx, id)
	if err != nil {
		return st, err
	}
	if m.Status == StatusDeleting {
		return st, fmt.Errorf("restore backup %s: %w: it is being deleted", id, ErrNotAvailable)
	}
	tree, err := v.Tree(ctx, m)
	if err != nil {
		return st, fmt.Errorf("restore: %w", err)
	}
	entries, err := selectEntries(tree, opts.Path)
	if err != nil {
		return st, fmt.Errorf("restore backup %s: %w", id, err)
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 200 * time.Millisecond
	}

	created := false
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(target, 0o700); err != nil {
			return st, fmt.Errorf("restore: create target: %w", err)
		}
		created = true
	}
	root, err := os.OpenRoot(target)
	if err != nil {
		return st, fmt.Errorf("restore: target: %w", err)
	}
	defer root.Close()

	r := &restorer{v: v, root: root, target: target, chown: canChown()}
	for _, e := range entries {
		if e.Type == TypeFile {
			r.filesTotal.Add(1)
			r.bytesTotal.Add(e.Size)
		}
	}
	stop := r.startProgress(opts)
	err = r.run(ctx, entries, opts.Workers)
	stop()
	if err != nil {
		return r.stats(), fmt.Errorf("restore backup %s to %s: %w", id, target, err)
	}
	if created && opts.Path == "" {
		if err := root.Chmod(".", fileMode(tree.Root.Mode)); err != nil {
			return r.stats(), fmt.Errorf("restore: %w", err)
		}
		if err := root.Chtimes(".", tree.Root.MTime, tree.Root.MTime); err != nil {
			return r.stats(), fmt.Errorf("restore: %w", err)
		}
	}
	return r.stats(), nil
}

// selectEntries returns the entries under p (a file or directory of the
// tree), preceded by its parent directories; all entries when p is "".
func selectEntries(t *Tree, p string) ([]*Entry, error) {
	if p == "" || p == "/" {
		return t.Entries, nil
	}
	key, err := remote.UserPathToKey(strings.TrimSuffix(p, "/"))
	if err != nil {
		return nil, fmt.Errorf("--path: %w", err)
	}
	parents := map[string]bool{}
	for d := path.Dir(key); d != "."; d = path.Dir(d) {
		parents[d] = true
	}
	var out []*Entry
	found := false
	for _, e := range t.Entries {
		switch {
		case e.Path == key:
			found = true
			out = append(out, e)
		case strings.HasPrefix(e.Path, key+"/"), parents[e.Path]:
			out = append(out, e)
		}
	}
	if !found {
		return nil, fmt.Errorf("--path %s: no such file or directory in the backup", p)
	}
	return out, nil
}

type restorer struct {
	v      *Vault
	root   *os.Root
	target string
	chown  bool

	files, dirs, links    atomic.Int64
	filesTotal, filesDone atomic.Int64
	bytesTotal, bytesDone atomic.Int64
}

func (r *restorer) stats() RestoreStats {
	return RestoreStats{Files: r.files.Load(), Dirs: r.dirs.Load(), Symlinks: r.links.Load(), Bytes: r.bytesDone.Load()}
}

func (r *restorer) startProgress(opts RestoreOptions) func() {
	if opts.Progress == nil {
		return func() {}
	}
	snap := func() RestoreProgress {
		return RestoreProgress{FilesTotal: r.filesTotal.Load(), FilesDone: r.filesDone.Load(),
			BytesTotal: r.bytesTotal.Load(), BytesDone: r.bytesDone.Load()}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				opts.Progress(snap())
				return
			case <-t.C:
				opts.Progress(snap())
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// run restores in four passes: directories (created, owner-only), files
// (in parallel), symlinks (last, so no later write goes through one), and
// the directories' modes and mtimes (children first).
func (r *restorer) run(ctx context.Context, entries []*Entry, workers int) error {
	for _, e := range entries {
		if err := remote.ValidateKey(e.Path); err != nil {
			return fmt.Errorf("%w: %v", ErrOutside, err)
		}
	}
	for _, e := range entries {
		if e.Type != TypeDir {
			continue
		}
		if err := r.mkdir(e.Path); err != nil {
			return err
		}
	}

	var files []*Entry
	for _, e := range entries {
		if e.Type == TypeFile {
			files = append(files, e)
		}
	}
	if err := forEach(ctx, files, workers, r.file); err != nil {
		return err
	}

	for _, e := range entries {
		if e.Type != TypeSymlink {
			continue
		}
		if err := r.symlink(e); err != nil {
			return err
		}
	}
	for _, e := range slices.Backward(entries) {
		if e.Type != TypeDir {
			continue
		}
		if err := r.setMeta(e); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// mkdir creates a directory, or accepts an existing one; anything else at
// the path is an error (a symlink there is never followed).
func (r *restorer) mkdir(p string) error {
	err := r.root.Mkdir(p, 0o700)
	if err == nil {
		r.dirs.Add(1)
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory %s: %w", p, err)
	}
	fi, lerr := r.root.Lstat(p)
	if lerr != nil {
		return fmt.Errorf("create directory %s: %w", p, lerr)
	}
	if !fi.IsDir() {
		return fmt.Errorf("create directory %s: something else exists there (%s); remove it or restore elsewhere", p, fi.Mode().Type())
	}
	r.dirs.Add(1)
	return nil
}

// clear removes what is at p unless it is a regular file (which the
// restore truncates), so a symlink planted there is not written through.
func (r *restorer) clear(p string) error {
	fi, err := r.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		return nil
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: a directory exists there; remove it or restore elsewhere", p)
	}
	return r.root.Remove(p)
}

func (r *restorer) file(ctx context.Context, e *Entry) error {
	if err := r.clear(e.Path); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	f, err := r.root.OpenFile(e.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	err = r.fetchChunks(ctx, e.Chunks, func(data []byte) error {
		if _, err := f.Write(data); err != nil {
			return err
		}
		r.bytesDone.Add(int64(len(data)))
		return nil
	})
	if err != nil {
		f.Close()
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if err := r.setMeta(e); err != nil {
		return err
	}
	r.files.Add(1)
	r.filesDone.Add(1)
	return nil
}

// readAhead is how many chunks of one file are fetched at once.
const readAhead = 4

// fetchChunks reads chunks (checking each one's SHA-256), up to readAhead
// at a time, and passes them to write in order.
func (r *restorer) fetchChunks(ctx context.Context, chunks []Chunk, write func([]byte) error) error {
	if len(chunks) <= 1 {
		for _, c := range chunks {
			data, err := r.v.readChunk(ctx, c)
			if err != nil {
				return err
			}
			if err := write(data); err != nil {
				return err
			}
		}
		return nil
	}
	type result struct {
		data []byte
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan result, len(chunks))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, readAhead)
	go func() {
		for i, c := range chunks {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := r.v.readChunk(ctx, c)
				results[i] <- result{data, err}
			}()
		}
	}()
	for i := range chunks {
		var res result
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if res.err != nil {
			return res.err
		}
		if err := write(res.data); err != nil {
			return err
		}
		<-slots
	}
	return nil
}

func (r *restorer) symlink(e *Entry) error {
	if err := r.clear(e.Path); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if err := r.root.Symlink(e.Target, e.Path); err != nil {
		return fmt.Errorf("restore symlink %s: %w", e.Path, err)
	}
	if r.chown {
		if err := r.root.Lchown(e.Path, e.UID, e.GID); err != nil {
			return fmt.Errorf("restore symlink %s: %w", e.Path, err)
		}
	}
	// The parents of e.Path are directories this restore checked (mkdir),
	// so the full path names the link itself.
	if err := lchtimes(filepath.Join(r.target, filepath.FromSlash(e.Path)), e.MTime); err != nil {
		return fmt.Errorf("restore symlink %s: %w", e.Path, err)
	}
	r.links.Add(1)
	return nil
}

// setMeta sets a file's or directory's owner (as root), mode and mtime.
func (r *restorer) setMeta(e *Entry) error {
	if r.chown {
		if err := r.root.Lchown(e.Path, e.UID, e.GID); err != nil {
			return fmt.Errorf("restore %s: %w", e.Path, err)
		}
	}
	if err := r.root.Chmod(e.Path, fileMode(e.Mode)); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if err := r.root.Chtimes(e.Path, e.MTime, e.MTime); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	return nil
}
