package vault

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// FormatVersion is the version of the vault format this package writes and
// reads. Objects with another version are refused (ErrFormat).
const FormatVersion = 2

// Vault kinds, as in the configuration.
const (
	KindBackup      = "backup"
	KindReplication = "replication"
)

// Backup statuses. A manifest in backups/ is available, error or deleting;
// creating is the status of a backup still running (its running marker), so
// it is never listed as a backup.
const (
	StatusCreating  = "creating"
	StatusAvailable = "available"
	StatusError     = "error"
	StatusDeleting  = "deleting"
)

// Tree entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Chunking parameters of the vaults this package creates.
const (
	ChunkAlgorithm = "fastcdc-v1.0.0"
	// SmallFileSize: a file smaller than this is one chunk.
	SmallFileSize = 1 << 20
	ChunkMin      = 512 << 10
	ChunkAvg      = 1 << 20
	ChunkMax      = 4 << 20
	// MaxChunkSize is the largest chunk a reader accepts, whatever chunker
	// parameters wrote it; it bounds what one chunk read may allocate.
	MaxChunkSize = 64 << 20
	// MaxPackSize is the largest pack a reader accepts; it bounds what
	// reading one pack may allocate. Writers stay far below it (see
	// DefaultPackSize).
	MaxPackSize = 128 << 20
	// maxTreeSize bounds a decompressed tree (about 4 million entries).
	maxTreeSize = 1 << 30
	// maxDocSize bounds the JSON documents (vault info, manifests, records).
	maxDocSize = 1 << 20
)

// Object keys, relative to the vault's root.
const (
	infoKey          = "ferry-vault.json"
	backupsDir       = "backups/"
	treesDir         = "trees/"
	packsDir         = "packs/"
	replicationsDir  = "replications/"
	runningDir       = "running/"
	manifestSuffix   = ".json"
	recordSuffix     = ".json"
	markerSuffix     = ".json"
	markerKindBackup = "backup"
	markerKindRepl   = "replicate"
	markerKindPrune  = "prune"
)

// Errors. Callers compare with errors.Is.
var (
	// ErrNotVault: the store has no ferry-vault.json.
	ErrNotVault = errors.New("not a vault (no ferry-vault.json); run ferry vault init")
	// ErrVaultExists: Init found a vault already there.
	ErrVaultExists = errors.New("vault already initialized")
	// ErrFormat: an object of the vault is malformed or of another format
	// version.
	ErrFormat = errors.New("malformed vault object")
	// ErrNoBackup: no backup with that id in the vault.
	ErrNoBackup = errors.New("no such backup")
	// ErrNotAvailable: the backup's status is not available.
	ErrNotAvailable = errors.New("backup is not available")
	// ErrSecondAccount: the backup was already replicated to another account.
	ErrSecondAccount = errors.New("backup already replicated to another account")
	// ErrDestination: the destination vault does not take this replica.
	ErrDestination = errors.New("destination vault refuses the replica")
	// ErrBusy: another process holds the vault for an operation that
	// excludes this one (a prune while a backup runs).
	ErrBusy = errors.New("vault busy")
	// ErrOutside: a restore path would leave the target directory.
	ErrOutside = errors.New("path outside the restore target")
	// ErrNotRestored: a restore finished, but some entries could not be
	// restored (RestoreStats.Failed lists them).
	ErrNotRestored = errors.New("not restored")
)

// ChunkerInfo records how a vault's writers cut files into chunks.
type ChunkerInfo struct {
	Algorithm string `json:"algorithm"`
	SmallFile int64  `json:"small_file"`
	Min       int64  `json:"min"`
	Avg       int64  `json:"avg"`
	Max       int64  `json:"max"`
}

// Info is ferry-vault.json.
type Info struct {
	Format  int         `json:"format"`
	ID      string      `json:"id"`
	Kind    string      `json:"kind"`
	Account string      `json:"account"`
	Created time.Time   `json:"created"`
	Chunker ChunkerInfo `json:"chunker"`
}

// Stats are a backup's counts.
type Stats struct {
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Symlinks int64 `json:"symlinks"`
	// Skipped counts entries of the source not backed up: sockets, devices,
	// names that break the key rules, files that could not be read.
	Skipped int64 `json:"skipped"`
	// Unchanged counts files whose chunks were taken from the parent backup
	// without reading them (same size, mtime and inode).
	Unchanged int64 `json:"unchanged"`
	// LogicalBytes is the sum of the files' sizes.
	LogicalBytes int64 `json:"logical_bytes"`
	// Chunks and StoredBytes count the distinct chunks the backup references
	// and their total size: what the backup alone would take in a vault.
	Chunks      int64 `json:"chunks"`
	StoredBytes int64 `json:"stored_bytes"`
	// NewChunks and NewBytes count the chunks this run uploaded (those the
	// vault lacked) and their size; NewPacks the packs that held them. The
	// tree is not counted.
	NewChunks int64 `json:"new_chunks"`
	NewBytes  int64 `json:"new_bytes"`
	NewPacks  int64 `json:"new_packs"`
}

// ReplicatedFrom says where a replica was copied from.
type ReplicatedFrom struct {
	VaultID    string    `json:"vault_id"`
	Vault      string    `json:"vault"`
	Account    string    `json:"account"`
	BackupID   string    `json:"backup_id"`
	Replicated time.Time `json:"replicated"`
}

// Manifest is backups/<id>.json: one backup.
type Manifest struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Status string `json:"status"`
	// Source is the absolute path backed up, on Host.
	Source string `json:"source"`
	Host   string `json:"host"`
	// Account is the account of the vault the backup was made in; a replica
	// keeps it, so the rules know where the backup comes from.
	Account  string    `json:"account"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Tree is the SHA-256 naming the tree object (trees/<Tree>).
	Tree           string          `json:"tree"`
	Parent         string          `json:"parent,omitempty"`
	Stats          Stats           `json:"stats"`
	ReplicatedFrom *ReplicatedFrom `json:"replicated_from,omitempty"`
}

// IsReplica reports whether the backup was copied from another vault.
func (m *Manifest) IsReplica() bool { return m.ReplicatedFrom != nil }

// Chunk is one piece of a file's content: Size bytes at Offset in the pack
// packs/<xx>/<Pack>, hashing to SHA256.
type Chunk struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Pack is the SHA-256 naming the pack that holds the chunk, and Offset
	// where its bytes start in it, so one ranged read gets the chunk.
	Pack   string `json:"pack"`
	Offset int64  `json:"offset"`
	// XXH3 is the XXH3-128 of the content (32 hex digits), which a mount
	// checks its reads against (ChunkCheck); trees written before it was
	// recorded have none, and their chunks are checked by SHA-256.
	XXH3 string `json:"xxh3,omitempty"`
}

// Entry is one file, directory or symlink of a backup.
type Entry struct {
	// Path is the entry's path relative to the backed-up directory,
	// slash-separated; it passes remote.ValidateKey.
	Path string `json:"path"`
	Type string `json:"type"`
	// Mode holds the Unix permission bits with setuid, setgid and sticky
	// (mask 07777).
	Mode  uint32    `json:"mode"`
	MTime time.Time `json:"mtime"`
	Size  int64     `json:"size,omitempty"`
	// Target is a symlink's target, as stored in the link.
	Target string  `json:"target,omitempty"`
	Chunks []Chunk `json:"chunks,omitempty"`
	// Inode, UID and GID as seen at backup time; Inode serves incremental
	// backups, UID and GID are restored when running as root.
	Inode uint64 `json:"inode,omitempty"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
}

// RootMeta holds the backed-up directory's own mode and mtime.
type RootMeta struct {
	Mode  uint32    `json:"mode"`
	MTime time.Time `json:"mtime"`
}

// Tree is trees/<sha256>: every entry of a backup, parents before
// children.
type Tree struct {
	Format  int      `json:"format"`
	Root    RootMeta `json:"root"`
	Entries []*Entry `json:"entries"`
}

// Replication statuses.
const (
	ReplWaiting     = "waiting_replicate"
	ReplReplicating = "replicating"
	ReplSuccess     = "success"
	ReplFail        = "fail"
	ReplSkip        = "skip"
)

// Replication is one replication of a backup from one vault to another. It
// is kept in the source vault (replications/<backup>/<id>.json) and in the
// state database of the host that ran it.
type Replication struct {
	ID                 string    `json:"id"`
	BackupID           string    `json:"backup_id"`
	SourceVault        string    `json:"source_vault"`
	SourceVaultID      string    `json:"source_vault_id"`
	SourceAccount      string    `json:"source_account"`
	DestinationVault   string    `json:"destination_vault"`
	DestinationVaultID string    `json:"destination_vault_id"`
	DestinationAccount string    `json:"destination_account"`
	Status             string    `json:"status"`
	Host               string    `json:"host"`
	Created            time.Time `json:"created"`
	Started            time.Time `json:"started,omitzero"`
	Ended              time.Time `json:"ended,omitzero"`
	Updated            time.Time `json:"updated"`
	// Packs counts the packs copied (those the destination lacked), Chunks
	// the chunks in them, and Bytes the bytes copied: the packs and the
	// tree.
	Packs  int64  `json:"packs"`
	Chunks int64  `json:"chunks"`
	Bytes  int64  `json:"bytes"`
	Error  string `json:"error,omitempty"`
}

// Active reports whether the record is of a replication not yet ended.
func (r *Replication) Active() bool {
	return r.Status == ReplWaiting || r.Status == ReplReplicating
}

// manifestKey, treeKey and PackKey name a vault's objects.
func manifestKey(id string) string { return backupsDir + id + manifestSuffix }
func treeKey(sum string) string    { return treesDir + sum }

// PackKey returns the key of the pack named sum (a SHA-256 in hex):
// packs/<first two hex digits>/<sum>.
func PackKey(sum string) string { return packsDir + sum[:2] + "/" + sum }
func recordKey(backupID, repID string) string {
	return replicationsDir + backupID + "/" + repID + recordSuffix
}

var (
	idPattern  = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
	hexPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	vaultIDPat = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// ValidID reports whether s has the form of a backup or replication id:
// "YYYYMMDDTHHMMSSZ-" and 8 lower-case hex digits (a replication id has
// "r" in front).
func ValidID(s string) bool { return idPattern.MatchString(s) }

func validRepID(s string) bool { return strings.HasPrefix(s, "r") && idPattern.MatchString(s[1:]) }

// ValidSHA256 reports whether s is 64 lower-case hex digits.
func ValidSHA256(s string) bool { return hexPattern.MatchString(s) }

var xxh3Pattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// validXXH3 reports whether s is an XXH3-128 as trees record it.
func validXXH3(s string) bool { return xxh3Pattern.MatchString(s) }

// newID returns a fresh id for a backup at t: the UTC second and 32 random
// bits, so ids sort by creation time and do not collide across hosts.
func newID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func newVaultID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parsePackKey returns the SHA-256 named by a packs/ key, or ok false for
// anything else found under packs/.
func parsePackKey(key string) (sum string, ok bool) {
	rest, ok := strings.CutPrefix(key, packsDir)
	if !ok || len(rest) != 2+1+64 || rest[2] != '/' {
		return "", false
	}
	sum = rest[3:]
	if !ValidSHA256(sum) || sum[:2] != rest[:2] {
		return "", false
	}
	return sum, true
}

// parseManifestKey returns the backup id of a backups/ key.
func parseManifestKey(key string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(key, backupsDir)
	if !ok {
		return "", false
	}
	id, ok = strings.CutSuffix(rest, manifestSuffix)
	return id, ok && ValidID(id)
}

// sumHex returns the hex SHA-256 of b.
func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func formatErr(what string, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", what, ErrFormat, fmt.Sprintf(format, args...))
}

// decodeStrict unmarshals one JSON document, refusing unknown fields and
// trailing data.
func decodeStrict(what string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return formatErr(what, "%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return formatErr(what, "data after the JSON document")
	}
	return nil
}

func encodeJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only our own types are encoded here; they always marshal.
		return nil
	}
	return append(b, '\n')
}

// DecodeInfo parses and checks ferry-vault.json.
func DecodeInfo(data []byte) (*Info, error) {
	var in Info
	if err := decodeStrict(infoKey, data, &in); err != nil {
		return nil, err
	}
	switch {
	case in.Format >= 1 && in.Format < FormatVersion:
		return nil, formatErr(infoKey, "vault format %d, written by an earlier Ferry; this Ferry reads format %d only "+
			"(its backups stay readable by the Ferry that made them; for this one, create a new vault with ferry vault init and back up into it)",
			in.Format, FormatVersion)
	case in.Format != FormatVersion:
		return nil, formatErr(infoKey, "format %d; this Ferry reads format %d", in.Format, FormatVersion)
	case !vaultIDPat.MatchString(in.ID):
		return nil, formatErr(infoKey, "id %q is not 32 lower-case hex digits", in.ID)
	case in.Kind != KindBackup && in.Kind != KindReplication:
		return nil, formatErr(infoKey, "kind %q (valid: backup, replication)", in.Kind)
	}
	return &in, nil
}

// DecodeManifest parses and checks a manifest.
func DecodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := decodeStrict("manifest", data, &m); err != nil {
		return nil, err
	}
	what := "manifest " + m.ID
	switch {
	case m.Format != FormatVersion:
		return nil, formatErr(what, "format %d; this Ferry reads format %d", m.Format, FormatVersion)
	case !ValidID(m.ID):
		return nil, formatErr("manifest", "id %q is not a backup id (YYYYMMDDTHHMMSSZ-xxxxxxxx)", m.ID)
	case m.Status != StatusAvailable && m.Status != StatusError && m.Status != StatusDeleting:
		return nil, formatErr(what, "status %q (valid: available, error, deleting)", m.Status)
	case !ValidSHA256(m.Tree):
		return nil, formatErr(what, "tree %q is not a SHA-256", m.Tree)
	case m.Parent != "" && !ValidID(m.Parent):
		return nil, formatErr(what, "parent %q is not a backup id", m.Parent)
	case m.ReplicatedFrom != nil && m.ReplicatedFrom.BackupID != m.ID:
		return nil, formatErr(what, "replicated_from.backup_id %q differs from the id", m.ReplicatedFrom.BackupID)
	}
	return &m, nil
}

// DecodeRecord parses and checks a replication record.
func DecodeRecord(data []byte) (*Replication, error) {
	var r Replication
	if err := decodeStrict("replication record", data, &r); err != nil {
		return nil, err
	}
	what := "replication record " + r.ID
	switch {
	case !validRepID(r.ID):
		return nil, formatErr("replication record", "id %q is not a replication id (rYYYYMMDDTHHMMSSZ-xxxxxxxx)", r.ID)
	case !ValidID(r.BackupID):
		return nil, formatErr(what, "backup_id %q is not a backup id", r.BackupID)
	}
	switch r.Status {
	case ReplWaiting, ReplReplicating, ReplSuccess, ReplFail, ReplSkip:
	default:
		return nil, formatErr(what, "status %q (valid: waiting_replicate, replicating, success, fail, skip)", r.Status)
	}
	return &r, nil
}

// EncodeTree returns the stored form of t (gzip'd JSON) and its name, the
// SHA-256 of those bytes.
func EncodeTree(t *Tree) (data []byte, sum string, err error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, "", fmt.Errorf("encode tree: %w", err)
	}
	if err := json.NewEncoder(zw).Encode(t); err != nil {
		return nil, "", fmt.Errorf("encode tree: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("encode tree: %w", err)
	}
	data = buf.Bytes()
	return data, sumHex(data), nil
}

// DecodeTree parses a stored tree (gzip'd or plain JSON) and checks it:
// every path is a valid key and unique, every entry's parent is a
// directory listed before it, a file's chunks add up to its size.
func DecodeTree(data []byte) (*Tree, error) {
	const what = "tree"
	raw := data
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, formatErr(what, "gzip: %v", err)
		}
		raw, err = io.ReadAll(io.LimitReader(zr, maxTreeSize+1))
		if err != nil {
			return nil, formatErr(what, "gzip: %v", err)
		}
		if len(raw) > maxTreeSize {
			return nil, formatErr(what, "larger than %d bytes uncompressed", maxTreeSize)
		}
	}
	var t Tree
	if err := decodeStrict(what, raw, &t); err != nil {
		return nil, err
	}
	if t.Format != FormatVersion {
		return nil, formatErr(what, "format %d; this Ferry reads format %d", t.Format, FormatVersion)
	}
	if t.Root.Mode > 0o7777 {
		return nil, formatErr(what, "root mode %o has bits outside 07777", t.Root.Mode)
	}
	types := make(map[string]string, len(t.Entries))
	for i, e := range t.Entries {
		if e == nil {
			return nil, formatErr(what, "entry %d is null", i)
		}
		if err := checkEntry(e, types); err != nil {
			return nil, formatErr(what, "entry %d: %v", i, err)
		}
		types[e.Path] = e.Type
	}
	return &t, nil
}

func checkEntry(e *Entry, seen map[string]string) error {
	if err := remote.ValidateKey(e.Path); err != nil {
		return err
	}
	p := remote.PrintableKey(e.Path)
	if _, dup := seen[e.Path]; dup {
		return fmt.Errorf("path %s appears twice", p)
	}
	if dir := path.Dir(e.Path); dir != "." && seen[dir] != TypeDir {
		return fmt.Errorf("path %s: its parent %s is not a directory listed before it", p, remote.PrintableKey(dir))
	}
	if e.Mode > 0o7777 {
		return fmt.Errorf("path %s: mode %o has bits outside 07777", p, e.Mode)
	}
	switch e.Type {
	case TypeDir:
		if e.Size != 0 || len(e.Chunks) != 0 || e.Target != "" {
			return fmt.Errorf("path %s: a directory has no size, chunks or target", p)
		}
	case TypeSymlink:
		if e.Target == "" || strings.IndexByte(e.Target, 0) >= 0 || len(e.Chunks) != 0 {
			return fmt.Errorf("path %s: a symlink needs a target without NUL and has no chunks", p)
		}
	case TypeFile:
		if e.Target != "" {
			return fmt.Errorf("path %s: a file has no target", p)
		}
		var total int64
		for j, c := range e.Chunks {
			if !ValidSHA256(c.SHA256) {
				return fmt.Errorf("path %s: chunk %d: %q is not a SHA-256", p, j, c.SHA256)
			}
			if c.Size <= 0 || c.Size > MaxChunkSize {
				return fmt.Errorf("path %s: chunk %d: size %d (valid: 1 to %d)", p, j, c.Size, MaxChunkSize)
			}
			if !ValidSHA256(c.Pack) {
				return fmt.Errorf("path %s: chunk %d: pack %q is not a SHA-256", p, j, c.Pack)
			}
			if c.XXH3 != "" && !validXXH3(c.XXH3) {
				return fmt.Errorf("path %s: chunk %d: xxh3 %q is not 32 lower-case hex digits", p, j, c.XXH3)
			}
			if c.Offset < 0 || c.Offset > MaxPackSize-c.Size {
				return fmt.Errorf("path %s: chunk %d: offset %d (valid: 0 to %d for its size)", p, j, c.Offset, MaxPackSize-c.Size)
			}
			total += c.Size
		}
		if total != e.Size {
			return fmt.Errorf("path %s: chunks add up to %d bytes, size is %d", p, total, e.Size)
		}
	default:
		return fmt.Errorf("path %s: type %q (valid: file, dir, symlink)", p, e.Type)
	}
	return nil
}
