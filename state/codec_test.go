package state

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testSHA  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	testETag = "d41d8cd98f00b204e9800998ecf8427e"
)

func TestFileEntryRoundTrip(t *testing.T) {
	mtime := time.Date(2026, 11, 23, 2, 0, 0, 123456789, time.UTC)
	cases := []struct {
		name string
		e    FileEntry
	}{
		{"zero", FileEntry{}},
		{"typical", FileEntry{Size: 4096, ModTime: mtime, SHA256: testSHA, DestETag: testETag,
			DestModTime: mtime, VerifiedAt: mtime.Add(time.Hour)}},
		{"multipart etag", FileEntry{Size: 1 << 40, ModTime: mtime, SHA256: testSHA, DestETag: `"9b2cf535f27731c974343645a3985328-12"`}},
		{"upper-case hex stays as written", FileEntry{SHA256: strings.ToUpper(testSHA)}},
		{"odd-length hex", FileEntry{DestETag: "abc"}},
		{"non-ascii etag", FileEntry{DestETag: "é\x00\xff"}},
		{"negative size", FileEntry{Size: -1}},
		{"before 1970", FileEntry{ModTime: time.Date(1969, 7, 20, 20, 17, 0, 1, time.UTC)}},
		{"local zone", FileEntry{ModTime: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))}},
		{"only verified", FileEntry{VerifiedAt: mtime}},
		{"destination mtime differs", FileEntry{ModTime: mtime, DestModTime: mtime.Add(time.Nanosecond)}},
		{"destination mtime without mtime", FileEntry{DestModTime: mtime}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := encodeFileEntry(nil, c.e)
			got, err := decodeFileEntry(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			assertEntryEqual(t, got, c.e)
		})
	}
}

func assertEntryEqual(t *testing.T, got, want FileEntry) {
	t.Helper()
	if got.Size != want.Size || got.SHA256 != want.SHA256 || got.DestETag != want.DestETag ||
		!got.ModTime.Equal(want.ModTime) || !got.DestModTime.Equal(want.DestModTime) ||
		!got.VerifiedAt.Equal(want.VerifiedAt) {
		t.Fatalf("entry:\n got %+v\nwant %+v", got, want)
	}
	for _, tm := range []time.Time{got.ModTime, got.DestModTime, got.VerifiedAt} {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Fatalf("time %v not in UTC", tm)
		}
	}
}

func TestFileEntryIsCompact(t *testing.T) {
	mtime := time.Date(2026, 11, 23, 2, 0, 0, 123456789, time.UTC)
	e := FileEntry{Size: 123456, ModTime: mtime, SHA256: testSHA, DestETag: testETag, DestModTime: mtime, VerifiedAt: mtime}
	bin := encodeFileEntry(nil, e)
	js, _ := json.Marshal(e)
	if len(bin) > 80 {
		t.Errorf("typical entry encodes to %d bytes, want at most 80", len(bin))
	}
	t.Logf("binary %d bytes, JSON %d bytes", len(bin), len(js))
}

func TestDecodeFileEntryRejects(t *testing.T) {
	good := encodeFileEntry(nil, FileEntry{Size: 5, ModTime: time.Unix(1, 2), SHA256: testSHA})
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version only", []byte{fileEntryV1}},
		{"unknown version", append([]byte{9}, good[1:]...)},
		{"unknown flag", append([]byte{fileEntryV1, 0x80}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"string longer than value", []byte{fileEntryV1, 0, 0, 0xfe, 0x01}},
		{"empty packed string", []byte{fileEntryV1, 0, 0, 1, 0}},
		{"nanoseconds out of range", []byte{fileEntryV1, feModTime, 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0}},
		{"overlong varint", []byte{fileEntryV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeFileEntry(c.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode(%x) = %v, want ErrCorrupt", c.b, err)
			}
		})
	}
}

func TestFileRecordAndPartRoundTrip(t *testing.T) {
	recs := []FileRecord{
		{},
		{Path: "dir/a file, with \"quotes\".txt", Size: 42, SHA256: testSHA},
		{Path: "ä/ö", Reason: "name contains a backslash"},
	}
	for _, r := range recs {
		got, err := decodeFileRecord(encodeFileRecord(nil, r))
		if err != nil || got != r {
			t.Fatalf("record %+v: got %+v, %v", r, got, err)
		}
	}
	parts := []UploadPart{{Number: 1}, {Number: 10000, Size: 5 << 20, SHA256: testSHA, ETag: testETag}}
	for _, p := range parts {
		got, err := decodeUploadPart(p.Number, encodeUploadPart(nil, p))
		if err != nil || got != p {
			t.Fatalf("part %+v: got %+v, %v", p, got, err)
		}
	}
	if _, err := decodeFileRecord([]byte{2}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown record version: %v", err)
	}
	if _, err := decodeUploadPart(1, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty part: %v", err)
	}
}

// FuzzDecodeFileEntry: arbitrary bytes never panic the decoder, and what it
// accepts encodes and decodes back to the same entry.
func FuzzDecodeFileEntry(f *testing.F) {
	mtime := time.Date(2026, 11, 23, 2, 0, 0, 123456789, time.UTC)
	f.Add(encodeFileEntry(nil, FileEntry{}))
	f.Add(encodeFileEntry(nil, FileEntry{Size: 4096, ModTime: mtime, SHA256: testSHA, DestETag: testETag, DestModTime: mtime, VerifiedAt: mtime}))
	f.Add(encodeFileEntry(nil, FileEntry{DestETag: `"abc-3"`, Size: -7}))
	f.Add([]byte{})
	f.Add([]byte{fileEntryV1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeFileEntry(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		again, err := decodeFileEntry(encodeFileEntry(nil, e))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", e, err)
		}
		assertEntryEqual(t, again, e)
	})
}

// FuzzFileEntryRoundTrip: every entry survives encoding.
func FuzzFileEntryRoundTrip(f *testing.F) {
	f.Add(int64(0), int64(0), int64(0), testSHA, testETag, int64(0), int64(0))
	f.Add(int64(-5), int64(1700000000), int64(999999999), "", "x", int64(-62135596800), int64(1))
	f.Fuzz(func(t *testing.T, size, sec, nsec int64, sha, etag string, dsec, vsec int64) {
		e := FileEntry{Size: size, ModTime: time.Unix(sec, nsec), SHA256: sha, DestETag: etag,
			DestModTime: time.Unix(dsec, 0), VerifiedAt: time.Unix(vsec, nsec)}
		got, err := decodeFileEntry(encodeFileEntry(nil, e))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		assertEntryEqual(t, got, e)
	})
}

func FuzzDecodeFileRecord(f *testing.F) {
	f.Add(encodeFileRecord(nil, FileRecord{Path: "a/b", Size: 3, SHA256: testSHA, Reason: "x"}))
	f.Add([]byte{fileRecordV1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeFileRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if again, err := decodeFileRecord(encodeFileRecord(nil, r)); err != nil || again != r {
			t.Fatalf("re-decoding %+v: %+v, %v", r, again, err)
		}
	})
}

func FuzzDecodeUploadPart(f *testing.F) {
	f.Add(encodeUploadPart(nil, UploadPart{Number: 3, Size: 5 << 20, SHA256: testSHA, ETag: testETag}))
	f.Add([]byte{uploadPartV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeUploadPart(7, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if again, err := decodeUploadPart(7, encodeUploadPart(nil, p)); err != nil || again != p {
			t.Fatalf("re-decoding %+v: %+v, %v", p, again, err)
		}
	})
}
