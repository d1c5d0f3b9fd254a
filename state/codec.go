package state

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
)

// Values that exist in very large numbers (file index entries, job file
// list records, multipart parts) use a small hand-written binary encoding
// instead of JSON: one version byte, then varints and length-prefixed
// strings. It is typically a third of the size of the JSON and several
// times faster to decode.
//
// A string is written as uvarint(n<<1 | packed) followed by n bytes. When
// the string is non-empty, of even length and entirely lower-case hex (a
// SHA-256 or an MD5 ETag), it is "packed": the n bytes are the decoded hex
// and the string is 2n characters long once decoded. Otherwise the n bytes
// are the string itself. Either way the decoded string is byte-for-byte
// the one that was encoded.
//
// A time is written as varint(Unix seconds) followed by uvarint(nanoseconds)
// and is decoded in UTC. A zero time.Time is not written at all: a flag bit
// says which times are present.

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt value")

const (
	fileEntryV1  = 1
	fileRecordV1 = 1
	uploadPartV1 = 1
)

// FileEntry flag bits.
const (
	feModTime     = 1 << 0
	feDestModTime = 1 << 1
	feVerifiedAt  = 1 << 2
	// feDestSame: DestModTime equals ModTime (the usual case: the
	// destination records the source's mtime) and is not written again.
	feDestSame   = 1 << 3
	feKnownFlags = feModTime | feDestModTime | feVerifiedAt | feDestSame
)

func appendString(b []byte, s string) []byte {
	if isPackableHex(s) {
		b = binary.AppendUvarint(b, uint64(len(s)/2)<<1|1)
		for i := 0; i < len(s); i += 2 {
			b = append(b, hexValue[s[i]]<<4|hexValue[s[i+1]])
		}
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

// isPackableHex reports whether s is non-empty, of even length and all
// lower-case hex digits, so that hex-decoding and re-encoding gives s back.
func isPackableHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if hexValue[s[i]] == 0xff {
			return false
		}
	}
	return true
}

// hexValue maps a lower-case hex digit to its value and anything else to
// 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// sameInstant is t.Equal(u) as the encoding sees it: the same Unix second
// and nanosecond.
func sameInstant(t, u time.Time) bool {
	return t.Unix() == u.Unix() && t.Nanosecond() == u.Nanosecond()
}

// reader decodes the primitives above from a byte slice. The first error
// sticks; every later read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", errCorrupt, what)
	}
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string(what string) string {
	h := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	n := h >> 1
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	raw := r.b[:n]
	r.b = r.b[n:]
	if h&1 == 1 {
		if n == 0 {
			// A packed string is never empty; only a corrupt value says so.
			r.fail(what)
			return ""
		}
		if n <= 64 {
			var tmp [128]byte // one allocation (the string) for hashes
			return string(hex.AppendEncode(tmp[:0], raw))
		}
		return hex.EncodeToString(raw)
	}
	return string(raw)
}

func (r *reader) time(what string) time.Time {
	sec := r.varint(what)
	nsec := r.uvarint(what)
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		r.fail(what)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// done fails when bytes are left over: a value is exactly one record.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return r.err
}

// encodeFileEntry appends the binary form of e to b.
func encodeFileEntry(b []byte, e FileEntry) []byte {
	var flags byte
	if !e.ModTime.IsZero() {
		flags |= feModTime
	}
	switch {
	case e.DestModTime.IsZero():
	case flags&feModTime != 0 && sameInstant(e.DestModTime, e.ModTime):
		flags |= feDestSame
	default:
		flags |= feDestModTime
	}
	if !e.VerifiedAt.IsZero() {
		flags |= feVerifiedAt
	}
	b = append(b, fileEntryV1, flags)
	b = binary.AppendVarint(b, e.Size)
	if flags&feModTime != 0 {
		b = appendTime(b, e.ModTime)
	}
	b = appendString(b, e.SHA256)
	b = appendString(b, e.DestETag)
	if flags&feDestModTime != 0 {
		b = appendTime(b, e.DestModTime)
	}
	if flags&feVerifiedAt != 0 {
		b = appendTime(b, e.VerifiedAt)
	}
	return b
}

// decodeFileEntry parses what encodeFileEntry wrote. It never panics; any
// input that is not exactly one valid entry is an error wrapping errCorrupt.
func decodeFileEntry(b []byte) (FileEntry, error) {
	r := reader{b: b}
	var e FileEntry
	if v := r.byte("version"); r.err == nil && v != fileEntryV1 {
		return e, fmt.Errorf("%w: unknown file entry version %d", errCorrupt, v)
	}
	flags := r.byte("flags")
	if r.err == nil && flags&^feKnownFlags != 0 {
		return e, fmt.Errorf("%w: unknown file entry flags %#x", errCorrupt, flags)
	}
	e.Size = r.varint("size")
	if flags&feModTime != 0 {
		e.ModTime = r.time("mtime")
	}
	e.SHA256 = r.string("sha256")
	e.DestETag = r.string("destination etag")
	switch flags & (feDestModTime | feDestSame) {
	case feDestModTime:
		e.DestModTime = r.time("destination mtime")
	case feDestSame:
		if flags&feModTime == 0 {
			return FileEntry{}, fmt.Errorf("%w: destination mtime refers to a missing mtime", errCorrupt)
		}
		e.DestModTime = e.ModTime
	case feDestModTime | feDestSame:
		return FileEntry{}, fmt.Errorf("%w: file entry flags %#x", errCorrupt, flags)
	}
	if flags&feVerifiedAt != 0 {
		e.VerifiedAt = r.time("verified time")
	}
	if err := r.done(); err != nil {
		return FileEntry{}, err
	}
	return e, nil
}

func encodeFileRecord(b []byte, rec FileRecord) []byte {
	b = append(b, fileRecordV1)
	b = appendString(b, rec.Path)
	b = binary.AppendVarint(b, rec.Size)
	b = appendString(b, rec.SHA256)
	return appendString(b, rec.Reason)
}

func decodeFileRecord(b []byte) (FileRecord, error) {
	r := reader{b: b}
	var rec FileRecord
	if v := r.byte("version"); r.err == nil && v != fileRecordV1 {
		return rec, fmt.Errorf("%w: unknown file record version %d", errCorrupt, v)
	}
	rec.Path = r.string("path")
	rec.Size = r.varint("size")
	rec.SHA256 = r.string("sha256")
	rec.Reason = r.string("reason")
	if err := r.done(); err != nil {
		return FileRecord{}, err
	}
	return rec, nil
}

// encodeUploadPart writes a part without its number, which is in the key.
func encodeUploadPart(b []byte, p UploadPart) []byte {
	b = append(b, uploadPartV1)
	b = binary.AppendVarint(b, p.Size)
	b = appendString(b, p.SHA256)
	return appendString(b, p.ETag)
}

func decodeUploadPart(number int, b []byte) (UploadPart, error) {
	r := reader{b: b}
	p := UploadPart{Number: number}
	if v := r.byte("version"); r.err == nil && v != uploadPartV1 {
		return p, fmt.Errorf("%w: unknown upload part version %d", errCorrupt, v)
	}
	p.Size = r.varint("size")
	p.SHA256 = r.string("sha256")
	p.ETag = r.string("etag")
	if err := r.done(); err != nil {
		return UploadPart{Number: number}, err
	}
	return p, nil
}

// validPartNumber bounds part numbers to what fits the 4-byte key field.
func validPartNumber(n int) bool {
	return n >= 1 && n <= math.MaxInt32
}
