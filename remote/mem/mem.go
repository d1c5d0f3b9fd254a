package mem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// Store is an in-memory remote.Store. The zero value is not usable; call
// New. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	objects  map[string]*object
	keys     []string // sorted byte-wise; the keys of objects
	gen      uint64   // bumped on every write; the source of ETags and upload ids
	uploads  map[string]*upload
	partSize int64
	id       string // names the instance in its Place
}

// object is immutable once stored: a Put replaces the pointer, so readers
// holding the old one keep a consistent view.
type object struct {
	data    []byte
	modTime time.Time
	sha256  string
	etag    string
}

var (
	_ remote.Store     = (*Store)(nil)
	_ remote.Copier    = (*Store)(nil)
	_ remote.DirLister = (*Store)(nil)
	_ remote.Placer    = (*Store)(nil)
)

// instances numbers the stores New makes, so each has a Place of its own.
var instances atomic.Uint64

// New returns an empty store.
func New() *Store {
	return &Store{objects: make(map[string]*object), uploads: make(map[string]*upload), partSize: DefaultPartSize,
		id: "mem-" + strconv.FormatUint(instances.Add(1), 10)}
}

// Place implements remote.Placer: every store New made is a place of its
// own.
func (s *Store) Place() (remote.Place, error) {
	return remote.Place{Kind: "mem", Server: s.id}, nil
}

func (o *object) info(key string) remote.ObjectInfo {
	return remote.ObjectInfo{
		Key:     key,
		Size:    int64(len(o.data)),
		ModTime: o.modTime,
		ETag:    o.etag,
		SHA256:  o.sha256,
	}
}

func (s *Store) get(key string) (*object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.objects[key]
	return o, ok
}

// set stores o at key and gives it a fresh ETag.
func (s *Store) set(key string, o *object) remote.ObjectInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	o.etag = "mem-" + strconv.FormatUint(s.gen, 16)
	if _, ok := s.objects[key]; !ok {
		i, _ := slices.BinarySearch(s.keys, key)
		s.keys = slices.Insert(s.keys, i, key)
	}
	s.objects[key] = o
	return o.info(key)
}

// Stat implements remote.Store.
func (s *Store) Stat(ctx context.Context, key string) (remote.ObjectInfo, error) {
	if err := remote.CheckKey(ctx, "stat", key); err != nil {
		return remote.ObjectInfo{}, err
	}
	o, ok := s.get(key)
	if !ok {
		return remote.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, remote.ErrNotExist)
	}
	return o.info(key), nil
}

// Open implements remote.Store.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := remote.CheckKey(ctx, "open", key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("open %s: negative offset %d", key, offset)
	}
	o, ok := s.get(key)
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, remote.ErrNotExist)
	}
	data := o.data[min(offset, int64(len(o.data))):]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Put implements remote.Store. It reads the whole object into memory
// before storing it, so a failed or canceled Put stores nothing.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, meta remote.PutMeta) (remote.ObjectInfo, error) {
	if err := remote.CheckKey(ctx, "put", key); err != nil {
		return remote.ObjectInfo{}, err
	}
	data, sum, err := readAll(ctx, r, size)
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if meta.SHA256 != "" && !strings.EqualFold(meta.SHA256, sum) {
		return remote.ObjectInfo{}, fmt.Errorf("put %s: %w: received content hashes to %s, the caller gave %s",
			key, remote.ErrChecksum, sum, meta.SHA256)
	}
	if err := ctx.Err(); err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	mtime := meta.ModTime.Round(0) // no monotonic clock reading
	if mtime.IsZero() {
		mtime = time.Now().Round(0)
	}
	return s.set(key, &object{data: data, modTime: mtime, sha256: sum}), nil
}

// readAll reads r to its end, checking ctx between reads and that r gives
// exactly size bytes (any number when size < 0). It returns the bytes and
// their hex SHA-256.
func readAll(ctx context.Context, r io.Reader, size int64) ([]byte, string, error) {
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(min(size, 64<<20)))
	}
	h := sha256.New()
	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if size >= 0 {
		src = io.LimitReader(src, size+1) // one byte more reveals a long reader
	}
	n, err := io.Copy(io.MultiWriter(&buf, h), src)
	if err != nil {
		return nil, "", fmt.Errorf("reading content: %w", err)
	}
	if size >= 0 && n != size {
		return nil, "", fmt.Errorf("the reader gave %s bytes, the caller announced %d", moreOrExactly(n, size), size)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), hex.EncodeToString(h.Sum(nil)), nil
}

func moreOrExactly(n, size int64) string {
	if n > size {
		return "more than " + strconv.FormatInt(size, 10)
	}
	return strconv.FormatInt(n, 10)
}

// Delete implements remote.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := remote.CheckKey(ctx, "delete", key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; !ok {
		return nil
	}
	delete(s.objects, key)
	if i, found := slices.BinarySearch(s.keys, key); found {
		s.keys = slices.Delete(s.keys, i, i+1)
	}
	return nil
}

// Copy implements remote.Copier. The copy shares the source's (immutable)
// bytes and keeps its mtime and SHA-256.
func (s *Store) Copy(ctx context.Context, srcKey, dstKey string) (remote.ObjectInfo, error) {
	if err := remote.CheckKey(ctx, "copy", srcKey); err != nil {
		return remote.ObjectInfo{}, err
	}
	if err := remote.ValidateKey(dstKey); err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", srcKey, remote.PrintableKey(dstKey), err)
	}
	o, ok := s.get(srcKey)
	if !ok {
		return remote.ObjectInfo{}, fmt.Errorf("copy %s to %s: %w", srcKey, dstKey, remote.ErrNotExist)
	}
	return s.set(dstKey, &object{data: o.data, modTime: o.modTime, sha256: o.sha256}), nil
}

// next returns the first key >= from (with its object) that starts with
// prefix.
func (s *Store) next(from, prefix string) (string, *object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _ := slices.BinarySearch(s.keys, from)
	if i == len(s.keys) || !strings.HasPrefix(s.keys[i], prefix) {
		return "", nil, false
	}
	return s.keys[i], s.objects[s.keys[i]], true
}

// List implements remote.Store. It holds no lock while fn runs (fn may use
// the store) and sees writes made during the listing to keys it has not
// reached yet.
func (s *Store) List(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	return s.scan(ctx, prefix, func(key string, o *object) (string, error) {
		return "", fn(o.info(key))
	})
}

// ListDir implements remote.DirLister.
func (s *Store) ListDir(ctx context.Context, prefix string, fn func(remote.DirEntry) error) error {
	return s.scan(ctx, prefix, func(key string, o *object) (string, error) {
		rest := key[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			dir := prefix + rest[:i+1]
			// Skip the whole sub-directory: '0' is the byte after '/'.
			return dir[:len(dir)-1] + "0", fn(remote.DirEntry{Dir: true, Info: remote.ObjectInfo{Key: dir}})
		}
		return "", fn(remote.DirEntry{Info: o.info(key)})
	})
}

// scan calls fn with each object under prefix, in key order, holding no
// lock while fn runs. fn returns the key to go on from, or "" for the one
// after key.
func (s *Store) scan(ctx context.Context, prefix string, fn func(key string, o *object) (string, error)) error {
	if err := remote.CheckPrefix(ctx, "list", prefix); err != nil {
		return err
	}
	from := prefix
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		key, o, ok := s.next(from, prefix)
		if !ok {
			return nil
		}
		next, err := fn(key, o)
		if err != nil {
			return err
		}
		if next == "" {
			next = key + "\x00" // the smallest string after key
		}
		from = next
	}
}

// ctxReader fails with the context's error once it is canceled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// IsLocal reports true: the objects are in this process (remote.Local).
func (s *Store) IsLocal() bool { return true }
