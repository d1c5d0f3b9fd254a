package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc" // registers fastcdc-v1.0.0

	"github.com/ferrysync/ferry/remote"
)

// BackupOptions tune Create.
type BackupOptions struct {
	// Name is an optional label shown in listings.
	Name string
	// Host recorded in the manifest; default: the host name. The parent
	// backup is the newest available backup of the same source and host.
	Host string
	// Full ignores the parent backup: every file is read again.
	Full bool
	// Workers is how many packs upload at once (default 4); Readers how
	// many files are read and chunked at once (default 2). A backup holds
	// at most Workers+1 packs in memory: about (Workers+1) × PackSize.
	Workers int
	Readers int
	// PackSize is the size packs are filled to (default DefaultPackSize,
	// at most 64 MiB); a chunk bigger than that gets a pack of its own, so
	// a size of 1 stores every chunk alone.
	PackSize int64
	// Progress, when set, is called from one goroutine every
	// ProgressInterval (default 200ms) and once at the end.
	Progress         func(BackupProgress)
	ProgressInterval time.Duration
	// Skipped, when set, is called for every source entry not backed up,
	// with the reason. It may be called from several goroutines at once.
	Skipped func(path, reason string)
}

// BackupProgress is a snapshot of a running backup.
type BackupProgress struct {
	// ScanDone is true once the whole source was walked; until then the
	// totals grow.
	ScanDone   bool
	FilesTotal int64
	FilesDone  int64
	BytesTotal int64 // logical bytes of the files found
	BytesDone  int64 // logical bytes read or taken unchanged from the parent
	// Uploaded counts the chunks the vault lacked and that were stored
	// (in packs), and their bytes.
	UploadedChunks int64
	UploadedBytes  int64
	UploadedPacks  int64
}

// Create backs up the local directory source into the vault and returns
// the manifest of the new backup. It is incremental against the parent
// (see BackupOptions.Host): a file with the parent's size, mtime and inode
// is not read again. Chunks the vault has are not uploaded again; new ones
// are packed into packs of about PackSize. On failure nothing but packs
// (and maybe the tree) is left, and the next run finds them through their
// trailers and reuses their chunks.
func (v *Vault) Create(ctx context.Context, source string, opts BackupOptions) (*Manifest, error) {
	if v.info.Kind != KindBackup {
		return nil, fmt.Errorf("backup into vault %s: %w: it has kind %q; backups go to a vault of kind \"backup\"", v.name, ErrDestination, v.info.Kind)
	}
	src, err := filepath.Abs(source)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", source, err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("backup: source: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup: source %s is not a directory", src)
	}
	if opts.Host == "" {
		opts.Host = hostname()
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Readers <= 0 {
		opts.Readers = 2
	}
	if opts.PackSize <= 0 {
		opts.PackSize = DefaultPackSize
	}
	opts.PackSize = min(opts.PackSize, maxWritePackSize)
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 200 * time.Millisecond
	}

	started := v.now().UTC()
	id := newID(started)
	sess, err := v.beginWriter(ctx, markerKindBackup, id)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	defer sess.end(ctx)

	idx, err := v.loadIndex(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	var parent *Manifest
	var prev map[string]*Entry
	if !opts.Full {
		parent, prev = v.parentFiles(ctx, src, opts.Host)
	}

	b := &builder{v: v, src: src, opts: opts, idx: idx, prev: prev, started: started}
	tree, err := b.run(ctx, fi)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	data, sum, err := EncodeTree(tree)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	if _, err := v.store.Stat(ctx, treeKey(sum)); errors.Is(err, remote.ErrNotExist) {
		if err := putBytes(ctx, v.store, treeKey(sum), data, sum, v.now()); err != nil {
			return nil, fmt.Errorf("backup %s: write tree: %w", src, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}

	m := &Manifest{
		Format: FormatVersion, ID: id, Name: opts.Name, Status: StatusAvailable,
		Source: src, Host: opts.Host, Account: v.account,
		Started: started, Finished: v.now().UTC(), Tree: sum, Stats: b.stats(tree),
	}
	if parent != nil {
		m.Parent = parent.ID
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	if err := v.putManifest(ctx, m); err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	return m, nil
}

// parentFiles finds the newest available backup of src made on host and
// returns its file entries by path. A parent that cannot be read means a
// full backup, with a warning.
func (v *Vault) parentFiles(ctx context.Context, src, host string) (*Manifest, map[string]*Entry) {
	ms, err := v.Backups(ctx)
	if err != nil {
		v.log.Warn("no parent backup: cannot list backups", slog.String("vault", v.name), slog.Any("err", err))
		return nil, nil
	}
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		if m.Status != StatusAvailable || m.Source != src || m.Host != host || m.IsReplica() {
			continue
		}
		t, err := v.Tree(ctx, m)
		if err != nil {
			v.log.Warn("no parent backup: cannot read its tree", slog.String("vault", v.name), slog.String("backup", m.ID), slog.Any("err", err))
			return nil, nil
		}
		files := make(map[string]*Entry, len(t.Entries))
		for _, e := range t.Entries {
			if e.Type == TypeFile {
				files[e.Path] = e
			}
		}
		return m, files
	}
	return nil, nil
}

// builder runs one backup's walk, reads and uploads.
type builder struct {
	v       *Vault
	src     string
	opts    BackupOptions
	idx     *packIndex
	prev    map[string]*Entry
	started time.Time
	packer  *packer

	items []*item // in walk order; owned by the walker until it ends

	scanDone              atomic.Bool
	filesTotal, filesDone atomic.Int64
	bytesTotal, bytesDone atomic.Int64
	upChunks, upBytes     atomic.Int64
	upPacks               atomic.Int64
	skipped, nUnchanged   atomic.Int64
}

// item is one walked entry. A reader fills entry's size and chunks, or
// sets skip when the file cannot be read.
type item struct {
	entry *Entry
	skip  atomic.Bool
}

type fileJob struct {
	it   *item
	path string
}

func (b *builder) skip(rel, reason string) {
	b.skipped.Add(1)
	b.v.log.Warn("not backed up", slog.String("path", rel), slog.String("reason", reason))
	if b.opts.Skipped != nil {
		b.opts.Skipped(rel, reason)
	}
}

func (b *builder) run(ctx context.Context, rootInfo fs.FileInfo) (*Tree, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	files := make(chan fileJob, 256)
	b.packer = newPacker(b.opts.PackSize, b.opts.Workers+1)

	stopProgress := b.startProgress()

	var walkWG, readWG, upWG sync.WaitGroup
	walkWG.Go(func() {
		defer close(files)
		if err := b.walk(ctx, files); err != nil {
			cancel(err)
		}
		b.scanDone.Store(true)
	})
	for range b.opts.Readers {
		readWG.Go(func() {
			r := newFileReader()
			for job := range files {
				if ctx.Err() != nil {
					continue
				}
				if err := b.readFile(ctx, r, job); err != nil {
					cancel(err)
				}
			}
		})
	}
	for range b.opts.Workers {
		upWG.Go(func() {
			for pb := range b.packer.full {
				if ctx.Err() == nil {
					if err := b.upload(ctx, pb); err != nil {
						cancel(err)
					}
				}
				b.packer.release(pb)
			}
		})
	}
	walkWG.Wait()
	readWG.Wait()
	if ctx.Err() == nil {
		if err := b.packer.flush(ctx); err != nil {
			cancel(err)
		}
	}
	close(b.packer.full)
	upWG.Wait()
	stopProgress()

	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	t := &Tree{Format: FormatVersion, Root: RootMeta{Mode: unixMode(rootInfo.Mode()), MTime: rootInfo.ModTime().UTC()}}
	t.Entries = make([]*Entry, 0, len(b.items))
	for _, it := range b.items {
		if it.skip.Load() {
			continue
		}
		if err := b.locate(it.entry); err != nil {
			return nil, err
		}
		t.Entries = append(t.Entries, it.entry)
	}
	return t, nil
}

// upload finishes a full pack and stores it, then records its chunks in
// the index (and the local cache), where the tree finds them.
func (b *builder) upload(ctx context.Context, pb *packBuilder) error {
	data, sum, tailAt := pb.finish()
	if err := putBytes(ctx, b.v.store, PackKey(sum), data, sum, b.v.now()); err != nil {
		return fmt.Errorf("upload pack: %w", err)
	}
	b.v.cache.put(sum, data[tailAt:])
	b.v.cache.clearDamaged(sum) // written anew, whole
	b.idx.addPack(packInfo{sum: sum, size: int64(len(data)), chunks: len(pb.entries)}, pb.entries)
	b.upPacks.Add(1)
	b.upChunks.Add(int64(len(pb.entries)))
	b.upBytes.Add(int64(tailAt))
	return nil
}

// locate fills in the pack and offset of a read file's chunks (those of a
// file unchanged since the parent have them already).
func (b *builder) locate(e *Entry) error {
	for i := range e.Chunks {
		c := &e.Chunks[i]
		if c.Pack != "" {
			continue
		}
		pack, off, ok := b.idx.locate(c.SHA256)
		if !ok {
			return fmt.Errorf("%s: chunk %s is in no pack", e.Path, c.SHA256)
		}
		c.Pack, c.Offset = pack, off
	}
	return nil
}

// packSlack is room for the trailer and footer beyond the target, so
// that finishing a pack does not grow its buffer.
const packSlack = 64 << 10

// maxWritePackSize caps BackupOptions.PackSize, well under MaxPackSize so
// that a pack with a MaxChunkSize chunk still fits what readers accept.
const maxWritePackSize = 64 << 20

// packer fills packs with the chunks the readers hand it and passes full
// ones to the uploaders. At most `buffers` packs exist at once, so a
// backup holds at most that many in memory; a reader waits for one when
// every pack is being filled or uploaded. Released buffers are reused
// most recent first, and made only when needed, so a backup whose uploads
// keep up touches few of them.
type packer struct {
	target int64
	slots  chan struct{} // one per pack buffer in use
	full   chan *packBuilder

	mu  sync.Mutex // held while a chunk is added
	cur *packBuilder

	spareMu sync.Mutex
	spare   []*packBuilder // released buffers, the most recent last
}

func newPacker(target int64, buffers int) *packer {
	return &packer{target: target, slots: make(chan struct{}, buffers), full: make(chan *packBuilder)}
}

// take returns an empty pack buffer, waiting for one to be released when
// all are in use.
func (p *packer) take(ctx context.Context) (*packBuilder, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	p.spareMu.Lock()
	defer p.spareMu.Unlock()
	if n := len(p.spare); n > 0 {
		pb := p.spare[n-1]
		p.spare = p.spare[:n-1]
		pb.reset()
		return pb, nil
	}
	// Grown by append, a buffer would be copied a dozen times on its way
	// to the target, into fresh pages each time.
	return &packBuilder{buf: make([]byte, 0, min(p.target, maxWritePackSize)+packSlack)}, nil
}

// release returns an uploaded (or abandoned) pack's buffer.
func (p *packer) release(pb *packBuilder) {
	p.spareMu.Lock()
	p.spare = append(p.spare, pb)
	p.spareMu.Unlock()
	<-p.slots
}

// add copies a chunk into the current pack, first passing the pack on to
// the uploaders when the chunk would not fit.
func (p *packer) add(ctx context.Context, sum string, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && !p.cur.fits(len(data), p.target) {
		if err := p.send(ctx); err != nil {
			return err
		}
	}
	if p.cur == nil {
		pb, err := p.take(ctx)
		if err != nil {
			return err
		}
		p.cur = pb
	}
	p.cur.add(sum, data)
	return nil
}

// send passes the current pack to the uploaders. p.mu is held.
func (p *packer) send(ctx context.Context) error {
	select {
	case p.full <- p.cur:
		p.cur = nil
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// flush passes on the last, partly filled pack.
func (p *packer) flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.empty() {
		return nil
	}
	return p.send(ctx)
}

// startProgress calls the progress callback periodically until the
// returned function is called, which makes a last call.
func (b *builder) startProgress() func() {
	if b.opts.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(b.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				b.opts.Progress(b.progress())
				return
			case <-t.C:
				b.opts.Progress(b.progress())
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

func (b *builder) progress() BackupProgress {
	return BackupProgress{
		ScanDone: b.scanDone.Load(), FilesTotal: b.filesTotal.Load(), FilesDone: b.filesDone.Load(),
		BytesTotal: b.bytesTotal.Load(), BytesDone: b.bytesDone.Load(),
		UploadedChunks: b.upChunks.Load(), UploadedBytes: b.upBytes.Load(), UploadedPacks: b.upPacks.Load(),
	}
}

// walk visits the source, appends every entry to b.items (parents before
// children) and sends the files that must be read to files.
func (b *builder) walk(ctx context.Context, files chan<- fileJob) error {
	return filepath.WalkDir(b.src, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if p == b.src {
			if err != nil {
				return fmt.Errorf("read source %s: %w", b.src, err)
			}
			return nil
		}
		rel, rerr := filepath.Rel(b.src, p)
		if rerr != nil {
			return fmt.Errorf("walk %s: %w", p, rerr)
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			// A directory that could not be listed (its entry is already in
			// the tree, empty) or an entry that vanished.
			b.skip(rel, err.Error())
			return nil
		}
		if kerr := remote.ValidateKey(rel); kerr != nil {
			var ke *remote.KeyError
			reason := kerr.Error()
			if errors.As(kerr, &ke) {
				reason = "name " + ke.Reason
			}
			b.skip(remote.PrintableKey(rel), reason)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, ierr := d.Info()
		if ierr != nil {
			b.skip(rel, ierr.Error())
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		ino, uid, gid := fileIDs(fi)
		e := &Entry{Path: rel, Mode: unixMode(fi.Mode()), MTime: fi.ModTime().UTC(), Inode: ino, UID: uid, GID: gid}
		switch {
		case fi.IsDir():
			e.Type = TypeDir
			e.Inode = 0
		case fi.Mode()&fs.ModeSymlink != 0:
			target, lerr := os.Readlink(p)
			if lerr != nil || target == "" {
				b.skip(rel, fmt.Sprintf("read symlink: %v", lerr))
				return nil
			}
			e.Type, e.Target, e.Inode = TypeSymlink, target, 0
		case fi.Mode().IsRegular():
			e.Type = TypeFile
			e.Size = fi.Size()
		default:
			b.skip(rel, "not a regular file, directory or symlink ("+fi.Mode().Type().String()+")")
			return nil
		}
		it := &item{entry: e}
		b.items = append(b.items, it)
		if e.Type != TypeFile {
			return nil
		}
		b.filesTotal.Add(1)
		b.bytesTotal.Add(e.Size)
		if old := b.prev[rel]; old != nil && b.unchanged(old, e) {
			e.Chunks = old.Chunks
			b.nUnchanged.Add(1)
			b.filesDone.Add(1)
			b.bytesDone.Add(e.Size)
			return nil
		}
		select {
		case files <- fileJob{it: it, path: p}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// unchanged reports whether cur (fresh from Lstat) is the parent's entry
// old, unmodified, with all the packs of its chunks still in the vault and
// trusted (a damaged one's chunks are read and stored again).
func (b *builder) unchanged(old, cur *Entry) bool {
	if old.Size != cur.Size || !old.MTime.Equal(cur.MTime) || old.Inode == 0 || old.Inode != cur.Inode {
		return false
	}
	for _, c := range old.Chunks {
		if !b.idx.trusted(c.Pack) {
			return false
		}
	}
	return true
}

// fileReader holds one reader goroutine's buffers.
type fileReader struct {
	small   []byte
	chunker *chunkers.Chunker
}

func newFileReader() *fileReader {
	return &fileReader{small: make([]byte, SmallFileSize)}
}

func chunkerOpts() *chunkers.ChunkerOpts {
	return &chunkers.ChunkerOpts{MinSize: ChunkMin, NormalSize: ChunkAvg, MaxSize: ChunkMax}
}

// readFile reads one file, cuts it into chunks, packs the chunks the vault
// lacks for upload and fills the entry (the chunks' packs are filled in
// when the tree is built, see locate). A file that cannot be opened or
// read is skipped (reported); only a failure to pack is an error.
func (b *builder) readFile(ctx context.Context, r *fileReader, job fileJob) error {
	e := job.it.entry
	fail := func(err error) error {
		job.it.skip.Store(true)
		b.skip(e.Path, err.Error())
		b.filesDone.Add(1)
		return nil
	}
	f, err := os.Open(job.path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(errors.New("is no longer a regular file"))
	}
	var refs []Chunk
	var size int64
	emit := func(data []byte) error {
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		refs = append(refs, Chunk{SHA256: h, Size: int64(len(data)), XXH3: ChunkXXH3(data)})
		size += int64(len(data))
		b.bytesDone.Add(int64(len(data)))
		if !b.idx.claim(h) {
			return nil
		}
		return b.packer.add(ctx, h, data)
	}

	n, err := io.ReadFull(f, r.small)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// The whole file is in r.small: one chunk, or none when empty.
		if n > 0 {
			if err := emit(r.small[:n]); err != nil {
				return err
			}
		}
	case err != nil:
		return fail(err)
	default:
		rd := io.MultiReader(bytes.NewReader(r.small[:n]), f)
		if r.chunker == nil {
			r.chunker, err = chunkers.NewChunker(ChunkAlgorithm, rd, chunkerOpts())
			if err != nil {
				return fmt.Errorf("chunker: %w", err)
			}
		} else {
			r.chunker.Reset(rd)
		}
		for {
			chunk, cerr := r.chunker.Next()
			if cerr != nil && !errors.Is(cerr, io.EOF) {
				return fail(cerr)
			}
			if len(chunk) > 0 {
				if err := emit(chunk); err != nil {
					return err
				}
			}
			if cerr != nil {
				break
			}
		}
	}
	// The file may have changed size since the walk; the tree records what
	// was read. Its mtime stays the walk's, so a changed file is read again
	// next time.
	e.Size = size
	e.Chunks = refs
	b.filesDone.Add(1)
	return nil
}

// stats counts the tree and what this run uploaded.
func (b *builder) stats(t *Tree) Stats {
	s := Stats{
		Skipped: b.skipped.Load(), Unchanged: b.nUnchanged.Load(),
		NewChunks: b.upChunks.Load(), NewBytes: b.upBytes.Load(), NewPacks: b.upPacks.Load(),
	}
	seen := make(map[[32]byte]struct{})
	for _, e := range t.Entries {
		switch e.Type {
		case TypeDir:
			s.Dirs++
		case TypeSymlink:
			s.Symlinks++
		case TypeFile:
			s.Files++
			s.LogicalBytes += e.Size
			for _, c := range e.Chunks {
				k := hexKey(c.SHA256)
				if _, ok := seen[k]; !ok {
					seen[k] = struct{}{}
					s.Chunks++
					s.StoredBytes += c.Size
				}
			}
		}
	}
	return s
}
