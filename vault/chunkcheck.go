package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/zeebo/xxh3"

	"github.com/ferrysync/ferry/remote"
)

// ChunkXXH3 returns the XXH3-128 of a chunk's content as the tree records
// it (Chunk.XXH3): 32 hex digits, high half first.
func ChunkXXH3(data []byte) string {
	return xxh3Hex(xxh3.Hash128(data))
}

func xxh3Hex(u xxh3.Uint128) string {
	b := u.Bytes()
	return hex.EncodeToString(b[:])
}

// ChunkCheck checks a chunk's content as it is read, piece by piece:
// against the XXH3-128 the tree records for it, or, for a chunk of a tree
// that records none, against its SHA-256. A mount's reads use it: XXH3 is
// about fifty times cheaper than SHA-256 and catches any accidental damage
// (the chance that a damaged chunk matches is 2^-128), but unlike SHA-256
// it does not stop someone who can rewrite packs to match; restore and
// verify check SHA-256.
type ChunkCheck struct {
	c Chunk
	x *xxh3.Hasher
	s hash.Hash
	n int64
}

// NewChunkCheck returns a check of c's content.
func NewChunkCheck(c Chunk) *ChunkCheck {
	k := &ChunkCheck{c: c}
	if c.XXH3 != "" {
		k.x = xxh3.New()
	} else {
		k.s = sha256.New()
	}
	return k
}

// Write adds the next bytes of the chunk.
func (k *ChunkCheck) Write(p []byte) (int, error) {
	k.n += int64(len(p))
	if k.x != nil {
		return k.x.Write(p)
	}
	return k.s.Write(p)
}

// Verify reports whether what was written is the chunk: its size and
// hash. A mismatch wraps remote.ErrChecksum.
func (k *ChunkCheck) Verify() error {
	if k.n != k.c.Size {
		return fmt.Errorf("%w: %d bytes, the tree says %d", remote.ErrChecksum, k.n, k.c.Size)
	}
	if k.x != nil {
		if got := xxh3Hex(k.x.Sum128()); got != k.c.XXH3 {
			return fmt.Errorf("%w: content's XXH3-128 is %s, the tree says %s", remote.ErrChecksum, got, k.c.XXH3)
		}
		return nil
	}
	if got := hex.EncodeToString(k.s.Sum(nil)); got != k.c.SHA256 {
		return fmt.Errorf("%w: content hashes to %s", remote.ErrChecksum, got)
	}
	return nil
}

// CheckChunk checks data whole against c, as ChunkCheck does.
func CheckChunk(c Chunk, data []byte) error {
	k := NewChunkCheck(c)
	k.Write(data)
	return k.Verify()
}
