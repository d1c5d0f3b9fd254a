package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/ferrysync/ferry/remote"
)

// A pack holds chunks: their bytes one after the other, then a trailer
// (JSON) listing them, then a fixed-size footer that gives the trailer's
// length and SHA-256 and ends with a magic. The pack is named by the
// SHA-256 of all its bytes. docs/vault-format.md has the layout byte by
// byte.
//
//	chunk 0 | chunk 1 | … | trailer | footer (48 bytes)
//	footer: trailer SHA-256 (32) | trailer length, uint64 big-endian (8) | "FERRYPK2" (8)
const (
	// DefaultPackSize is the size writers aim at for a pack, trailer and
	// footer included: chunks are added while they fit. A chunk bigger than
	// the target gets a pack of its own.
	DefaultPackSize = 16 << 20
	// PackFooterSize is the size of a pack's footer.
	PackFooterSize = 48
	// PackMagic ends every pack.
	PackMagic = "FERRYPK2"
	// maxTrailerSize bounds a pack's trailer; it is far more than the
	// trailer of a MaxPackSize pack of 1 KiB chunks.
	maxTrailerSize = 32 << 20
	// packEntryMax is the most a trailer entry takes in JSON, for the
	// writers' size estimate: {"sha256":"<64>","offset":<9>,"size":<8>},
	packEntryMax = 120
	// packTrailerBase is what a trailer takes besides its entries.
	packTrailerBase = 32
	// packTailGuess is how many bytes at the end of a pack the first
	// ranged read of its index asks for; a longer trailer takes a second.
	packTailGuess = 64 << 10
)

// PackEntry is one chunk of a pack, as its trailer lists it.
type PackEntry struct {
	SHA256 string `json:"sha256"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
}

// packTrailer is the JSON document after a pack's chunks.
type packTrailer struct {
	Format int         `json:"format"`
	Chunks []PackEntry `json:"chunks"`
}

// packBuilder assembles one pack in memory. Its buffer is reused from
// pack to pack (reset).
type packBuilder struct {
	buf     []byte
	entries []PackEntry
}

func (p *packBuilder) reset() {
	p.buf = p.buf[:0]
	p.entries = p.entries[:0]
}

// empty reports whether the pack has no chunk yet.
func (p *packBuilder) empty() bool { return len(p.entries) == 0 }

// fits reports whether a chunk of n bytes can be added without the pack,
// trailer and footer included, going over target. An empty pack takes any
// chunk.
func (p *packBuilder) fits(n int, target int64) bool {
	if p.empty() {
		return true
	}
	size := int64(len(p.buf)+n) + int64(len(p.entries)+1)*packEntryMax + packTrailerBase + PackFooterSize
	return size <= target
}

// add appends a chunk whose SHA-256 is sum.
func (p *packBuilder) add(sum string, data []byte) {
	p.entries = append(p.entries, PackEntry{SHA256: sum, Offset: int64(len(p.buf)), Size: int64(len(data))})
	p.buf = append(p.buf, data...)
}

// finish appends the trailer and footer and returns the whole pack, its
// name and where its tail (trailer and footer) starts. The builder's
// buffer holds the result until reset.
func (p *packBuilder) finish() (data []byte, sum string, tailAt int) {
	tailAt = len(p.buf)
	p.buf = appendTrailer(p.buf, p.entries)
	p.buf = appendFooter(p.buf, p.buf[tailAt:])
	return p.buf, sumHex(p.buf), tailAt
}

// appendTrailer appends the trailer listing entries: compact JSON, as
// encoding/json would write packTrailer (the sums are hex, so nothing
// needs escaping).
func appendTrailer(b []byte, entries []PackEntry) []byte {
	b = append(b, `{"format":`...)
	b = strconv.AppendInt(b, FormatVersion, 10)
	b = append(b, `,"chunks":[`...)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"sha256":"`...)
		b = append(b, e.SHA256...)
		b = append(b, `","offset":`...)
		b = strconv.AppendInt(b, e.Offset, 10)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendFooter(b, trailer []byte) []byte {
	ts := sha256.Sum256(trailer)
	b = append(b, ts[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(trailer)))
	return append(b, PackMagic...)
}

// EncodePack builds a pack of chunks, in order, and returns its bytes, its
// name (the SHA-256 of the bytes) and where each chunk is in it. The
// chunks must be distinct and 1 to MaxChunkSize bytes long.
func EncodePack(chunks [][]byte) (data []byte, sum string, entries []PackEntry) {
	var p packBuilder
	for _, c := range chunks {
		p.add(sumHex(c), c)
	}
	data, sum, _ = p.finish()
	return data, sum, p.entries
}

// parsePackFooter checks the footer of a pack of packSize bytes and
// returns the trailer's length and SHA-256.
func parsePackFooter(footer []byte, packSize int64) (trailerLen int64, trailerSum []byte, err error) {
	if len(footer) != PackFooterSize {
		return 0, nil, formatErr("pack", "footer of %d bytes, want %d", len(footer), PackFooterSize)
	}
	if string(footer[40:]) != PackMagic {
		return 0, nil, formatErr("pack", "no %s magic at the end (%q)", PackMagic, footer[40:])
	}
	n := binary.BigEndian.Uint64(footer[32:40])
	if n > maxTrailerSize || int64(n) > packSize-PackFooterSize {
		return 0, nil, formatErr("pack", "trailer length %d does not fit a pack of %d bytes (at most %d)", n, packSize, maxTrailerSize)
	}
	return int64(n), footer[:32], nil
}

// DecodePackIndex returns the chunks a pack holds, read from its tail: the
// last len(tail) bytes of a pack of packSize bytes, which must include the
// whole trailer and the footer (they may include chunk bytes before). It
// checks the footer, the trailer's SHA-256 and the trailer itself: format
// 2, at least one chunk, each a valid SHA-256 of 1 to MaxChunkSize bytes,
// no SHA-256 twice, and offsets that follow each other from 0 and end
// where the trailer starts. Errors wrap ErrFormat.
func DecodePackIndex(tail []byte, packSize int64) ([]PackEntry, error) {
	if packSize > MaxPackSize {
		return nil, formatErr("pack", "%d bytes; the largest pack read is %d", packSize, int64(MaxPackSize))
	}
	if int64(len(tail)) > packSize || len(tail) < PackFooterSize {
		return nil, formatErr("pack", "tail of %d bytes for a pack of %d bytes", len(tail), packSize)
	}
	trailerLen, trailerSum, err := parsePackFooter(tail[len(tail)-PackFooterSize:], packSize)
	if err != nil {
		return nil, err
	}
	if trailerLen > int64(len(tail)-PackFooterSize) {
		return nil, formatErr("pack", "trailer of %d bytes is longer than the %d bytes read", trailerLen, len(tail)-PackFooterSize)
	}
	trailer := tail[len(tail)-PackFooterSize-int(trailerLen) : len(tail)-PackFooterSize]
	if got := sha256.Sum256(trailer); !bytes.Equal(got[:], trailerSum) {
		return nil, formatErr("pack", "trailer hashes to %s, the footer says %s", hex.EncodeToString(got[:]), hex.EncodeToString(trailerSum))
	}
	return decodePackTrailer(trailer, packSize-PackFooterSize-trailerLen)
}

// decodePackTrailer parses a trailer and checks it against the length of
// the chunk data before it.
func decodePackTrailer(trailer []byte, dataLen int64) ([]PackEntry, error) {
	const what = "pack trailer"
	var t packTrailer
	if err := decodeStrict(what, trailer, &t); err != nil {
		return nil, err
	}
	if t.Format != FormatVersion {
		return nil, formatErr(what, "format %d; this Ferry reads format %d", t.Format, FormatVersion)
	}
	if len(t.Chunks) == 0 {
		return nil, formatErr(what, "lists no chunk")
	}
	seen := make(map[string]struct{}, len(t.Chunks))
	var pos int64
	for i, e := range t.Chunks {
		switch {
		case !ValidSHA256(e.SHA256):
			return nil, formatErr(what, "chunk %d: %q is not a SHA-256", i, e.SHA256)
		case e.Size <= 0 || e.Size > MaxChunkSize:
			return nil, formatErr(what, "chunk %d: size %d (valid: 1 to %d)", i, e.Size, MaxChunkSize)
		case e.Offset != pos:
			return nil, formatErr(what, "chunk %d: offset %d, want %d (chunks follow each other from 0)", i, e.Offset, pos)
		}
		if _, dup := seen[e.SHA256]; dup {
			return nil, formatErr(what, "chunk %d: %s is listed twice", i, e.SHA256)
		}
		seen[e.SHA256] = struct{}{}
		pos += e.Size
		if pos > dataLen {
			return nil, formatErr(what, "chunk %d ends at %d, past the %d bytes of chunk data", i, pos, dataLen)
		}
	}
	if pos != dataLen {
		return nil, formatErr(what, "chunks end at %d, the chunk data is %d bytes", pos, dataLen)
	}
	return t.Chunks, nil
}

// DecodePack returns the chunks of a whole pack, checking its index (see
// DecodePackIndex) and every chunk's bytes against its SHA-256 (an error
// wrapping remote.ErrChecksum). It does not check the pack's name.
func DecodePack(data []byte) ([]PackEntry, error) {
	entries, err := DecodePackIndex(data, int64(len(data)))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if got := sumHex(data[e.Offset : e.Offset+e.Size]); got != e.SHA256 {
			return nil, fmt.Errorf("pack chunk at offset %d: %w: content hashes to %s, the trailer says %s", e.Offset, remote.ErrChecksum, got, e.SHA256)
		}
	}
	return entries, nil
}

// readPackIndex reads the index of the pack at key, of size bytes, with
// one ranged read of its end (two when the trailer is longer than
// packTailGuess). It returns the entries and the tail read (trailer and
// footer), for the local cache.
func readPackIndex(ctx context.Context, st remote.Store, key string, size int64) ([]PackEntry, []byte, error) {
	if size < PackFooterSize || size > MaxPackSize {
		return nil, nil, fmt.Errorf("%s: %w: size %d (valid: %d to %d)", key, ErrFormat, size, PackFooterSize, int64(MaxPackSize))
	}
	n := min(size, packTailGuess)
	tail, err := readRange(ctx, st, key, size-n, n)
	if err != nil {
		return nil, nil, err
	}
	trailerLen, _, err := parsePackFooter(tail[len(tail)-PackFooterSize:], size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key, err)
	}
	need := trailerLen + PackFooterSize
	if need > n {
		head, err := readRange(ctx, st, key, size-need, need-n)
		if err != nil {
			return nil, nil, err
		}
		tail = append(head, tail...)
	} else {
		tail = tail[n-need:]
	}
	entries, err := DecodePackIndex(tail, size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key, err)
	}
	return entries, tail, nil
}

// readRange reads exactly n bytes at off of the object at key; an object
// too short for that is an error wrapping remote.ErrChecksum (it is not
// what was written).
func readRange(ctx context.Context, st remote.Store, key string, off, n int64) ([]byte, error) {
	return readRangeInto(ctx, st, key, off, make([]byte, n))
}

// readRangeInto is readRange into buf, whose length is the size to read.
func readRangeInto(ctx context.Context, st remote.Store, key string, off int64, buf []byte) ([]byte, error) {
	n := int64(len(buf))
	rc, err := st.Open(ctx, key, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	if k, err := io.ReadFull(rc, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("read %s: %w: %d bytes at offset %d, want %d", key, remote.ErrChecksum, k, off, n)
		}
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return buf, nil
}
