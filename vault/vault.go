package vault

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// Vault is an opened vault: a store whose root holds ferry-vault.json.
// It is safe for concurrent use.
type Vault struct {
	store   remote.Store
	info    Info
	name    string
	account string
	log     *slog.Logger
	cache   *indexCache // nil: no local cache of pack indexes

	// Timing of the running markers; see markers.go. Tests shorten them.
	staleAfter time.Duration
	heartbeat  time.Duration
	pollEvery  time.Duration
	now        func() time.Time
}

// Options say how to open a vault.
type Options struct {
	// Name is the vault's name in the configuration, used in messages and
	// replication records.
	Name string
	// Account is the account identity of the vault's remote
	// (config.Config.RemoteAccount); the replication rules compare it.
	Account string
	// Log receives warnings; nil discards them.
	Log *slog.Logger
	// CacheDir, when set, is where the local cache of pack indexes lives
	// (the vault uses the subdirectory named by its id): the trailers of
	// the vault's packs, read once from the store and kept, so a backup
	// lists packs/ and reads only the trailers of packs new to it. Several
	// processes may share it. Empty: every operation that needs the index
	// reads every trailer from the store (correct, slower).
	CacheDir string
}

func newVault(st remote.Store, info Info, opts Options) *Vault {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := opts.Name
	if name == "" {
		name = info.ID
	}
	return &Vault{
		store: st, info: info, name: name, account: opts.Account, log: log,
		cache:      newIndexCache(opts.CacheDir, info.ID, log),
		staleAfter: defaultStaleAfter, heartbeat: defaultHeartbeat, pollEvery: defaultPollEvery,
		now: time.Now,
	}
}

// Init creates a vault of kind (KindBackup or KindReplication) at the
// store's root. It fails with ErrVaultExists when one is there already.
func Init(ctx context.Context, st remote.Store, kind string, opts Options) (*Vault, error) {
	if kind != KindBackup && kind != KindReplication {
		return nil, fmt.Errorf("init vault %s: kind %q (valid: backup, replication)", opts.Name, kind)
	}
	if _, err := st.Stat(ctx, infoKey); err == nil {
		return nil, fmt.Errorf("init vault %s: %w", opts.Name, ErrVaultExists)
	} else if !errors.Is(err, remote.ErrNotExist) {
		return nil, fmt.Errorf("init vault %s: %w", opts.Name, err)
	}
	info := Info{
		Format: FormatVersion, ID: newVaultID(), Kind: kind, Account: opts.Account,
		Created: time.Now().UTC().Truncate(time.Second),
		Chunker: ChunkerInfo{Algorithm: ChunkAlgorithm, SmallFile: SmallFileSize, Min: ChunkMin, Avg: ChunkAvg, Max: ChunkMax},
	}
	if err := putDoc(ctx, st, infoKey, encodeJSON(info)); err != nil {
		return nil, fmt.Errorf("init vault %s: %w", opts.Name, err)
	}
	return newVault(st, info, opts), nil
}

// Open opens the vault at the store's root: ErrNotVault when there is none.
func Open(ctx context.Context, st remote.Store, opts Options) (*Vault, error) {
	data, err := getDoc(ctx, st, infoKey)
	if errors.Is(err, remote.ErrNotExist) {
		return nil, fmt.Errorf("open vault %s: %w", opts.Name, ErrNotVault)
	}
	if err != nil {
		return nil, fmt.Errorf("open vault %s: %w", opts.Name, err)
	}
	info, err := DecodeInfo(data)
	if err != nil {
		return nil, fmt.Errorf("open vault %s: %w", opts.Name, err)
	}
	return newVault(st, *info, opts), nil
}

// Info returns ferry-vault.json's content.
func (v *Vault) Info() Info { return v.info }

// ID returns the vault's id.
func (v *Vault) ID() string { return v.info.ID }

// Name returns the vault's configured name.
func (v *Vault) Name() string { return v.name }

// Kind returns the vault's kind.
func (v *Vault) Kind() string { return v.info.Kind }

// Account returns the account of the vault's remote, as given to Open.
func (v *Vault) Account() string { return v.account }

// Store returns the vault's store.
func (v *Vault) Store() remote.Store { return v.store }

// Backups returns the vault's backups (every manifest in backups/), oldest
// first.
func (v *Vault) Backups(ctx context.Context) ([]*Manifest, error) {
	var ids []string
	err := v.store.List(ctx, backupsDir, func(oi remote.ObjectInfo) error {
		if id, ok := parseManifestKey(oi.Key); ok && oi.SkipReason == "" {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups of vault %s: %w", v.name, err)
	}
	out := make([]*Manifest, 0, len(ids))
	for _, id := range ids {
		m, err := v.Backup(ctx, id)
		if errors.Is(err, ErrNoBackup) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b *Manifest) int { return a.Started.Compare(b.Started) })
	return out, nil
}

// Backup returns the manifest of backup id: ErrNoBackup when the vault has
// none.
func (v *Vault) Backup(ctx context.Context, id string) (*Manifest, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("backup %q: %w in vault %s (a backup id looks like 20250102T030405Z-1a2b3c4d)", id, ErrNoBackup, v.name)
	}
	data, err := getDoc(ctx, v.store, manifestKey(id))
	if errors.Is(err, remote.ErrNotExist) {
		return nil, fmt.Errorf("backup %s: %w in vault %s", id, ErrNoBackup, v.name)
	}
	if err != nil {
		return nil, fmt.Errorf("read backup %s: %w", id, err)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", v.name, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("vault %s: %s: %w: holds backup %s", v.name, manifestKey(id), ErrFormat, m.ID)
	}
	return m, nil
}

func (v *Vault) putManifest(ctx context.Context, m *Manifest) error {
	if err := putDoc(ctx, v.store, manifestKey(m.ID), encodeJSON(m)); err != nil {
		return fmt.Errorf("write manifest of backup %s: %w", m.ID, err)
	}
	return nil
}

// Tree reads and checks the tree of a backup; its content must hash to its
// name.
func (v *Vault) Tree(ctx context.Context, m *Manifest) (*Tree, error) {
	data, err := v.readObject(ctx, treeKey(m.Tree), m.Tree, maxTreeSize)
	if err != nil {
		return nil, fmt.Errorf("backup %s: tree: %w", m.ID, err)
	}
	t, err := DecodeTree(data)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	return t, nil
}

// readChunk reads a chunk from its pack (one ranged read) and checks that
// it hashes to its name.
func (v *Vault) readChunk(ctx context.Context, c Chunk) ([]byte, error) {
	if c.Size <= 0 || c.Size > MaxChunkSize || c.Offset < 0 || !ValidSHA256(c.Pack) {
		return nil, fmt.Errorf("chunk %s: %w: size %d, pack %q, offset %d", c.SHA256, ErrFormat, c.Size, c.Pack, c.Offset)
	}
	data, err := readRange(ctx, v.store, PackKey(c.Pack), c.Offset, c.Size)
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", c.SHA256, err)
	}
	if got := sumHex(data); got != c.SHA256 {
		return nil, fmt.Errorf("chunk %s at offset %d of %s: %w: content hashes to %s", c.SHA256, c.Offset, PackKey(c.Pack), remote.ErrChecksum, got)
	}
	return data, nil
}

// readObject reads a content-addressed object (at most limit bytes) and
// checks its SHA-256 against sum: an error wrapping remote.ErrChecksum on
// mismatch.
func (v *Vault) readObject(ctx context.Context, key, sum string, limit int64) ([]byte, error) {
	data, err := readAll(ctx, v.store, key, limit)
	if err != nil {
		return nil, err
	}
	if got := sumHex(data); got != sum {
		return nil, fmt.Errorf("%s: %w: content hashes to %s", key, remote.ErrChecksum, got)
	}
	return data, nil
}

// readAll reads a whole object of at most limit bytes.
func readAll(ctx context.Context, st remote.Store, key string, limit int64) ([]byte, error) {
	rc, err := st.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: %w: larger than %d bytes", key, ErrFormat, limit)
	}
	return data, nil
}

func getDoc(ctx context.Context, st remote.Store, key string) ([]byte, error) {
	return readAll(ctx, st, key, maxDocSize)
}

// putDoc writes a small document with its SHA-256, retrying transient
// failures.
func putDoc(ctx context.Context, st remote.Store, key string, data []byte) error {
	return putBytes(ctx, st, key, data, sumHex(data), time.Now())
}

// putBytes stores data at key, recording sum and mtime, with a few
// attempts on retryable errors. When the store reports the SHA-256 of what
// it received, it must be sum.
func putBytes(ctx context.Context, st remote.Store, key string, data []byte, sum string, mtime time.Time) error {
	var err error
	var oi remote.ObjectInfo
	for attempt := range putAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * retryDelay):
			}
		}
		// A Buffer lets a store use data as it is, without a copy.
		oi, err = st.Put(ctx, key, bytes.NewBuffer(data), int64(len(data)), remote.PutMeta{ModTime: mtime, SHA256: sum})
		if err == nil || !remote.IsRetryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if oi.SHA256 != "" && oi.SHA256 != sum {
		return fmt.Errorf("put %s: %w: the store received content hashing to %s", key, remote.ErrChecksum, oi.SHA256)
	}
	return nil
}

const (
	putAttempts = 4
	retryDelay  = 500 * time.Millisecond
)

func hexKey(sum string) (k [32]byte) {
	_, _ = hex.Decode(k[:], []byte(sum))
	return k
}

// Usage is what a vault's data takes.
type Usage struct {
	// Packs and StoredBytes count the pack objects and their total size
	// (chunks, trailers and footers): what the vault's data takes on the
	// storage, trees aside.
	Packs       int64
	StoredBytes int64
	// Chunks and ChunkBytes count the distinct chunks the packs hold and
	// their total size. Chunks no backup uses any more stay counted until
	// prune deletes their pack (see Prune).
	Chunks     int64
	ChunkBytes int64
	Trees      int64
	TreeBytes  int64
}

// Usage adds up the vault's packs (reading their index, see loadIndex)
// and trees.
func (v *Vault) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	idx, err := v.loadIndex(ctx, nil)
	if err != nil {
		return u, err
	}
	for _, p := range idx.packList() {
		u.Packs++
		u.StoredBytes += p.size
	}
	idx.mu.Lock()
	for _, loc := range idx.chunks {
		u.Chunks++
		u.ChunkBytes += int64(loc.size)
	}
	idx.mu.Unlock()
	err = v.store.List(ctx, treesDir, func(oi remote.ObjectInfo) error {
		if oi.SkipReason == "" && ValidSHA256(strings.TrimPrefix(oi.Key, treesDir)) {
			u.Trees++
			u.TreeBytes += oi.Size
		}
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("list trees of vault %s: %w", v.name, err)
	}
	return u, nil
}

// hostname returns the host name recorded in manifests and records.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// detach returns a context for cleanup work that must run even when ctx
// was canceled (removing a marker, recording a failure).
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}
