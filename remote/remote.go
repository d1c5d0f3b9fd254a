package remote

import (
	"context"
	"io"
	"time"
)

// ObjectInfo describes one object (a file) in a Store.
type ObjectInfo struct {
	// Key is the object's path relative to the store's root, slash
	// separated. For an entry with a SkipReason whose name breaks the key
	// rules it is a printable form of the name (see PrintableKey); a
	// skipped entry with a valid key has its key as it is.
	Key string
	// Size in bytes.
	Size int64
	// ModTime is the modification time the object was stored with (the
	// mtime metadata), or the time the store last wrote it when no mtime
	// was recorded.
	ModTime time.Time
	// ETag is the store's opaque version tag; it changes whenever the
	// content may have changed. It is not a content hash.
	ETag string
	// SHA256 is the lower-case hex SHA-256 of the content, or "" when the
	// store does not know it.
	SHA256 string
	// SkipReason is set only by List, for an entry that exists but must not
	// be copied: a name that breaks the key rules, a socket or device, an
	// object in an archive storage class, a symlink loop. It says why.
	SkipReason string
}

// PutMeta is what a caller records with an object on Put.
type PutMeta struct {
	// ModTime is stored as the object's mtime (S3: x-amz-meta-mtime, as
	// rclone and s3fs write it). Zero means "now".
	ModTime time.Time
	// SHA256 is the hex SHA-256 the caller computed for the content, or ""
	// if it does not know it. When set, a store that computes the hash of
	// what it received MUST fail the Put (leaving no object) on mismatch.
	SHA256 string
}

// Store is a flat namespace of objects addressed by key.
//
// Keys are slash-separated paths relative to the store's root and MUST pass
// ValidateKey; a method given an invalid key returns an error wrapping
// ErrInvalidKey and touches nothing. Every method takes a context first and
// returns promptly with ctx.Err() (possibly wrapped) once it is canceled.
// Implementations are safe for concurrent use.
type Store interface {
	// Stat returns the object's info, or an error wrapping ErrNotExist when
	// there is no object at key.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List calls fn for every object whose key starts with prefix, recursively
	// and in byte-wise key order. It streams: it never holds the whole listing
	// in memory. prefix is "" for everything, or a directory key ending in
	// "/" (e.g. "photos/"). A prefix with nothing under it is not an error.
	// Entries that cannot be copied are passed with SkipReason set. List stops
	// and returns fn's error as-is when fn returns one, or the context's error.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error

	// Open returns a reader over length bytes of the object starting at
	// offset; length < 0 means to the end. Reading past the end of the object
	// yields io.EOF early, not an error. ErrNotExist when absent. The caller
	// closes the reader.
	Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Put stores size bytes read from r at key, replacing any object there.
	// It is atomic: readers see the old object or the whole new one, never
	// a part. If r fails, returns fewer or more than size bytes, or ctx is
	// canceled, Put returns an error and leaves the previous state (no new
	// object, no temporary left visible to List). size < 0 means unknown.
	// The returned ObjectInfo describes what was stored; its SHA256 is the
	// hash of the bytes the store received.
	Put(ctx context.Context, key string, r io.Reader, size int64, meta PutMeta) (ObjectInfo, error)

	// Delete removes the object at key. Deleting an absent key is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// Local is a Store whose objects live on this machine (a directory, or
// memory), so reading an object twice costs no transfer. The sync engine
// hashes a Local source before a resumable upload, so that the destination
// records the hash from the start.
type Local interface {
	IsLocal() bool
}

// PlainLister is a Store that can list more cheaply without per-object
// metadata: entries carry key, size, ETag and the time the store wrote the
// object (not a recorded mtime), and SHA256 "". The sync engine uses it to
// check that the copies it recorded are still there, unchanged (by ETag).
type PlainLister interface {
	ListPlain(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
}

// StatLister is a Store that can list without the per-object SHA-256:
// entries carry what List gives (key, size, mtime, ETag, SkipReason) with
// SHA256 "", which costs the store extra work per object (the local store
// opens every file to read it). The sync engine walks a source with it:
// the file index decides on size and mtime, and a copy hashes what it
// sends.
type StatLister interface {
	ListStat(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
}

// NameChecker is a Store that cannot hold some keys that pass ValidateKey
// (a local store reserves the names of its temporary files). CheckName
// returns an error wrapping ErrInvalidKey (a *KeyError, with the reason)
// for exactly the keys Put refuses for their name, and nil for the others.
// The sync engine skips such a file, with the reason, instead of failing
// it.
type NameChecker interface {
	CheckName(key string) error
}

// KeyPlacer is a Placer whose tree may lead elsewhere below its root (a
// local directory can hold a mount point). PlaceOf says where the directory
// holding key is now. The delete pass asks it before each delete, so that a
// source mounted inside the destination is never deleted through it.
type KeyPlacer interface {
	PlaceOf(key string) (Place, error)
}

// Copier is a Store that can copy an object server-side, without the data
// passing through Ferry.
type Copier interface {
	Copy(ctx context.Context, srcKey, dstKey string) (ObjectInfo, error)
}

// DirLister is a Store that can list one directory level: the objects
// directly under prefix and the names of its sub-directories ("common
// prefixes"), without walking the whole subtree. Mounts use it.
type DirLister interface {
	ListDir(ctx context.Context, prefix string, fn func(entry DirEntry) error) error
}

// DirEntry is one item of a ListDir: an object, or a sub-directory (Dir set,
// Info.Key the directory key ending in "/").
type DirEntry struct {
	Dir  bool
	Info ObjectInfo
}

// ResumablePutter is a Store that uploads a large object in numbered parts
// and can continue an upload that an earlier process started: the caller
// keeps the upload id and the finished parts (the sync engine keeps them in
// the state database) and sends only the parts that are missing.
//
// Parts are numbered from 1; every part but the last has exactly PartSize
// bytes. Nothing is visible at key until CompleteUpload succeeds. An upload
// that will not be completed MUST be aborted so the store frees its parts.
type ResumablePutter interface {
	// PartSize is the size of every part but the last. Objects larger than
	// this are worth uploading in parts.
	PartSize() int64
	// InitUpload starts an upload and returns its id. A caller that knows
	// the whole content's SHA-256 already should pass it in meta: a store
	// that must fix an object's metadata when the upload starts (S3) can
	// then record it without extra work, and CompleteUpload fails with
	// ErrChecksum (leaving no object) if the parts hash to anything else.
	InitUpload(ctx context.Context, key string, meta PutMeta) (uploadID string, err error)
	// UploadPart sends one part; the store verifies the part's SHA-256 on
	// arrival and returns what it recorded. sha256 is the part's hex SHA-256
	// when the caller knows it already ("": the store computes it first):
	// the store then checks the part against it and fails with ErrChecksum,
	// keeping nothing, when they differ. An upload id the store no longer
	// knows yields an error wrapping ErrNotExist.
	UploadPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64, sha256 string) (Part, error)
	// CompleteUpload assembles the parts (in number order) into the object
	// and records meta.SHA256 (the whole object's hex SHA-256) with it —
	// on S3, when InitUpload was not given it, by a copy of the object onto
	// itself.
	CompleteUpload(ctx context.Context, key, uploadID string, parts []Part, meta PutMeta) (ObjectInfo, error)
	// AbortUpload discards the upload and its parts. Aborting an upload the
	// store no longer knows is not an error.
	AbortUpload(ctx context.Context, key, uploadID string) error
}

// PartLister is a ResumablePutter that can say which parts it holds for an
// upload in progress: every part it accepted, in ascending number order, with
// its size, its ETag and its SHA-256 when the store keeps one ("" otherwise).
// A part sent again is listed once, as last sent. An upload id the store no
// longer knows (completed, aborted, expired) yields an error wrapping
// ErrNotExist. The sync engine asks when it resumes an upload: a part the
// store accepted is not sent again, even when the process that sent it died
// before it could record it.
type PartLister interface {
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)
}

// Part is one finished part of a resumable upload.
type Part struct {
	Number int
	Size   int64
	ETag   string
	SHA256 string // hex SHA-256 of the part, as verified by the store
}
