package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
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

// RestoreStats count what Restore wrote, and list what it could not.
type RestoreStats struct {
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Symlinks int64 `json:"symlinks"`
	Bytes    int64 `json:"bytes"`
	// Failed lists the entries not restored, sorted by path. Whatever
	// was at such a path before the restore is left as it was.
	Failed []RestoreFailure `json:"failed"`
}

// RestoreFailure is an entry that Restore did not restore, and why.
type RestoreFailure struct {
	Path string // as in the tree
	Err  error
}

// MarshalJSON writes {"path": ..., "error": "..."}.
func (f RestoreFailure) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	}{f.Path, f.Err.Error()})
}

// Restore writes backup id into the local directory target (created if
// missing): files, directories and symlinks with their modes and mtimes,
// and owners when running as root. Nothing is written outside target:
// every path of the tree is checked with remote.ValidateKey, and every
// write goes through an os.Root opened on target, which refuses to follow
// a symlink out of it. Every chunk read is checked against its SHA-256.
//
// Existing files and symlinks at the same paths are replaced, never
// destroyed before their replacement is whole: each file is written under
// a temporary name in its directory (see tempPrefix), synced, given its
// owner, mode and mtime, and renamed over its path only once every chunk
// verified; a symlink is made the same way. An entry that cannot be
// restored (a damaged chunk, a directory in the way) leaves its path as it
// was and does not stop the others: it is listed in the stats' Failed,
// and Restore returns an error wrapping ErrNotRestored. Entries under a
// directory that could not be restored fail with it. A canceled ctx stops
// everything and returns ctx's error; files not yet renamed are removed.
//
// A restore killed (SIGKILL, power loss) leaves at most one temporary
// file per file in flight, never a partial file under a restored name.
// The next restore into the same directories removes those of processes
// no longer running.
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

	r := &restorer{v: v, root: root, target: target, chown: canChown(), failedDirs: map[string]bool{},
		tempLike: map[string]bool{}}
	for _, e := range tree.Entries {
		if _, ok := tempPID(path.Base(e.Path)); ok {
			r.tempLike[e.Path] = true
		}
	}
	for _, e := range entries {
		if e.Type == TypeFile {
			r.filesTotal.Add(1)
			r.bytesTotal.Add(e.Size)
		}
	}
	if !created {
		r.sweep(".")
	}
	stop := r.startProgress(opts)
	err = r.run(ctx, entries, opts.Workers)
	stop()
	if err != nil {
		return r.stats(), fmt.Errorf("restore backup %s to %s: %w", id, target, err)
	}
	if created && opts.Path == "" {
		err := root.Chmod(".", fileMode(tree.Root.Mode))
		if err == nil {
			err = root.Chtimes(".", tree.Root.MTime, tree.Root.MTime)
		}
		if err != nil {
			r.fail(".", err)
		}
	}
	st = r.stats()
	if n := len(st.Failed); n > 0 {
		first := st.Failed[0]
		return st, fmt.Errorf("restore backup %s to %s: %d of %d entries %w (the first: %s: %w)",
			id, target, n, len(entries), ErrNotRestored, remote.PrintableKey(first.Path), first.Err)
	}
	return st, nil
}

// selectEntries returns the entries under p (a file or directory of the
// tree), preceded by its parent directories; all entries when p is "".
func selectEntries(t *Tree, p string) ([]*Entry, error) {
	key, err := RestorePathKey(p)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return t.Entries, nil
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

// RestorePathKey returns the key in a backup's tree of RestoreOptions.Path
// as a user writes it ("/home/a", "home/a/"), "" for the whole backup ("" or
// "/"), or an error saying why it names no path a backup can hold. A
// command checks its argument with it before it opens anything.
func RestorePathKey(p string) (string, error) {
	if p == "" || p == "/" {
		return "", nil
	}
	key, err := remote.UserPathToKey(strings.TrimSuffix(p, "/"))
	var ke *remote.KeyError
	if errors.As(err, &ke) {
		return "", fmt.Errorf("--path %q %s (valid: a path of the backup, like home/alice/docs)", p, ke.Reason)
	}
	return key, err
}

type restorer struct {
	v      *Vault
	root   *os.Root
	target string
	chown  bool
	// failedDirs are the directories not restored; written by the
	// directory pass, read-only after it.
	failedDirs map[string]bool
	// tempLike are the paths of the whole backup (not only the entries
	// restored) whose names look like temporary files: sweep keeps them,
	// as files of the backup a restore may have written.
	tempLike map[string]bool

	mu     sync.Mutex
	failed []RestoreFailure

	files, dirs, links    atomic.Int64
	bytes                 atomic.Int64
	filesTotal, filesDone atomic.Int64
	bytesTotal, bytesDone atomic.Int64
}

func (r *restorer) stats() RestoreStats {
	r.mu.Lock()
	failed := slices.Clone(r.failed)
	r.mu.Unlock()
	slices.SortFunc(failed, func(a, b RestoreFailure) int { return strings.Compare(a.Path, b.Path) })
	return RestoreStats{Files: r.files.Load(), Dirs: r.dirs.Load(), Symlinks: r.links.Load(), Bytes: r.bytes.Load(), Failed: failed}
}

// fail records that the entry at p was not restored.
func (r *restorer) fail(p string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, RestoreFailure{Path: p, Err: err})
}

// parentFailed returns an error when the directory holding p was not
// restored (nothing is written into what is there instead).
func (r *restorer) parentFailed(p string) error {
	if d := path.Dir(p); r.failedDirs[d] {
		return fmt.Errorf("its directory %s was not restored", remote.PrintableKey(d))
	}
	return nil
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
// the directories' modes and mtimes (children first). An entry that fails
// is recorded (fail) and the others go on; run returns an error only for a
// tree with a path outside the target, or when ctx ends.
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
			r.failedDirs[e.Path] = true
			r.fail(e.Path, err)
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
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.symlink(e); err != nil {
			r.fail(e.Path, err)
		}
	}
	for _, e := range slices.Backward(entries) {
		if e.Type != TypeDir || r.failedDirs[e.Path] {
			continue
		}
		if err := r.setMeta(e.Path, e); err != nil {
			r.fail(e.Path, err)
		}
	}
	return ctx.Err()
}

// mkdir creates a directory, or accepts an existing one (removing the
// temporary files a killed restore left in it); anything else at the path
// is an error and stays (a symlink there is never followed).
func (r *restorer) mkdir(p string) error {
	if err := r.parentFailed(p); err != nil {
		return err
	}
	err := r.root.Mkdir(p, 0o700)
	if err == nil {
		r.dirs.Add(1)
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory: %w", err)
	}
	fi, lerr := r.root.Lstat(p)
	if lerr != nil {
		return fmt.Errorf("create directory: %w", lerr)
	}
	if !fi.IsDir() {
		return fmt.Errorf("something else exists there (%s); remove it or restore elsewhere", fi.Mode().Type())
	}
	r.sweep(p)
	r.dirs.Add(1)
	return nil
}

// replaceable refuses to put a file or symlink where a directory is: a
// restore never replaces a directory and what it holds.
func (r *restorer) replaceable(p string) error {
	if err := r.parentFailed(p); err != nil {
		return err
	}
	if fi, err := r.root.Lstat(p); err == nil && fi.IsDir() {
		return errors.New("a directory exists there; remove it or restore elsewhere")
	}
	return nil
}

// tempPrefix and tempSuffix frame the temporary names of a restore:
// .ferry-restore-<pid>-<16 hex digits>.tmp, in the directory of the entry.
// The pid tells a later restore whether the writer is gone (sweep).
const (
	tempPrefix = ".ferry-restore-"
	tempSuffix = ".tmp"
)

// createTemp makes a new temporary entry in the directory of p with
// create (which must fail with fs.ErrExist when the name is taken) and
// returns its path.
func (r *restorer) createTemp(p string, create func(tmp string) error) (string, error) {
	var err error
	for range 10 {
		tmp := path.Join(path.Dir(p), fmt.Sprintf("%s%d-%016x%s", tempPrefix, os.Getpid(), rand.Uint64(), tempSuffix))
		if err = create(tmp); err == nil {
			return tmp, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return "", fmt.Errorf("create temporary file: %w", err)
}

// tempPID returns the pid in a temporary name made by createTemp.
func tempPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return 0, false
	}
	if rest, ok = strings.CutSuffix(rest, tempSuffix); !ok {
		return 0, false
	}
	pid, random, ok := strings.Cut(rest, "-")
	if !ok || len(random) != 16 || strings.Trim(random, "0123456789abcdef") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(pid)
	return n, err == nil && n > 0
}

// sweep removes from directory dir the temporary files and symlinks of
// restores whose process is gone (killed before they could clean up),
// except paths the backup holds (tempLike). It is best effort: what it
// cannot read or remove stays.
func (r *restorer) sweep(dir string) {
	f, err := r.root.Open(dir)
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	for _, name := range names {
		pid, ok := tempPID(name)
		if !ok || processAlive(pid) {
			continue
		}
		p := path.Join(dir, name)
		if r.tempLike[p] {
			continue
		}
		if fi, err := r.root.Lstat(p); err == nil && (fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0) {
			_ = r.root.Remove(p)
		}
	}
}

// file restores one file, recording a failure; it returns an error only
// when ctx ended, which stops the other workers.
func (r *restorer) file(ctx context.Context, e *Entry) error {
	err := r.writeFile(ctx, e)
	r.filesDone.Add(1)
	switch {
	case err == nil:
		r.files.Add(1)
		r.bytes.Add(e.Size)
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		r.fail(e.Path, err)
	}
	return nil
}

// writeFile writes e under a temporary name and renames it over e.Path
// once it is whole, synced and has its metadata; on any failure it
// removes the temporary file, and e.Path keeps what it had.
func (r *restorer) writeFile(ctx context.Context, e *Entry) (err error) {
	var written int64
	defer func() {
		if err != nil {
			r.bytesDone.Add(e.Size - written) // the file is done with, for progress
		}
	}()
	if err := r.replaceable(e.Path); err != nil {
		return err
	}
	var f *os.File
	tmp, err := r.createTemp(e.Path, func(tmp string) (err error) {
		f, err = r.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = r.root.Remove(tmp)
		}
	}()
	err = r.fetchChunks(ctx, e.Chunks, func(data []byte) error {
		if _, err := f.Write(data); err != nil {
			return err
		}
		written += int64(len(data))
		r.bytesDone.Add(int64(len(data)))
		return nil
	})
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := r.setMeta(tmp, e); err != nil {
		return err
	}
	return r.root.Rename(tmp, e.Path)
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

// symlink makes e's link under a temporary name, with its owner (as
// root) and mtime, and renames it over e.Path.
func (r *restorer) symlink(e *Entry) error {
	if err := r.replaceable(e.Path); err != nil {
		return err
	}
	tmp, err := r.createTemp(e.Path, func(tmp string) error { return r.root.Symlink(e.Target, tmp) })
	if err != nil {
		return err
	}
	err = r.linkMeta(tmp, e)
	if err == nil {
		err = r.root.Rename(tmp, e.Path)
	}
	if err != nil {
		_ = r.root.Remove(tmp)
		return err
	}
	r.links.Add(1)
	return nil
}

// linkMeta sets the owner (as root) and mtime of the symlink at p.
func (r *restorer) linkMeta(p string, e *Entry) error {
	if r.chown {
		if err := r.root.Lchown(p, e.UID, e.GID); err != nil {
			return err
		}
	}
	// The parents of p are directories this restore checked (mkdir), so
	// the full path names the link itself.
	return lchtimes(filepath.Join(r.target, filepath.FromSlash(p)), e.MTime)
}

// setMeta gives the file or directory at p e's owner (as root), mode and
// mtime.
func (r *restorer) setMeta(p string, e *Entry) error {
	if r.chown {
		if err := r.root.Lchown(p, e.UID, e.GID); err != nil {
			return err
		}
	}
	if err := r.root.Chmod(p, fileMode(e.Mode)); err != nil {
		return err
	}
	return r.root.Chtimes(p, e.MTime, e.MTime)
}
