package vault

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	sumA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sumB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestDecodeTree(t *testing.T) {
	file := func(path string, size int64, chunks string) string {
		return `{"path":"` + path + `","type":"file","mode":420,"mtime":"2024-01-02T03:04:05Z","size":` +
			itoa(size) + `,"chunks":[` + chunks + `],"uid":0,"gid":0}`
	}
	dir := func(path string) string {
		return `{"path":"` + path + `","type":"dir","mode":493,"mtime":"2024-01-02T03:04:05Z","uid":0,"gid":0}`
	}
	tree := func(entries ...string) string {
		return `{"format":2,"root":{"mode":493,"mtime":"2024-01-02T03:04:05Z"},"entries":[` + strings.Join(entries, ",") + `]}`
	}
	chunk := `{"sha256":"` + sumA + `","size":10,"pack":"` + sumB + `","offset":0}`
	chunkAt := func(pack string, offset int64) string {
		return `{"sha256":"` + sumA + `","size":10,"pack":"` + pack + `","offset":` + itoa(offset) + `}`
	}
	tests := []struct {
		name, doc string
		want      string // "" = valid, else a fragment of the error
	}{
		{"empty", tree(), ""},
		{"nested", tree(dir("a"), dir("a/b"), file("a/b/f", 10, chunk)), ""},
		{"empty file", tree(file("e", 0, "")), ""},
		{"two chunks", tree(file("f", 20, chunk+","+chunk)), ""},
		{"symlink", tree(`{"path":"l","type":"symlink","mode":511,"mtime":"2024-01-02T03:04:05Z","target":"../x","uid":0,"gid":0}`), ""},
		{"dotdot", tree(file("../f", 10, chunk)), `".." component`},
		{"absolute", tree(file("/etc/passwd", 10, chunk)), "absolute"},
		{"dot", tree(file("a/./f", 10, chunk)), `"." component`},
		{"backslash", tree(file(`a\\f`, 10, chunk)), "backslash"},
		{"parent missing", tree(file("a/f", 10, chunk)), "parent a is not a directory"},
		{"parent after", tree(file("a/f", 10, chunk), dir("a")), "parent a is not a directory"},
		{"parent is file", tree(file("a", 10, chunk), file("a/f", 10, chunk)), "parent a is not a directory"},
		{"duplicate", tree(dir("a"), dir("a")), "appears twice"},
		{"size mismatch", tree(file("f", 11, chunk)), "add up to 10 bytes, size is 11"},
		{"bad sum", tree(file("f", 10, `{"sha256":"AB","size":10,"pack":"`+sumB+`","offset":0}`)), "not a SHA-256"},
		{"zero chunk", tree(file("f", 0, `{"sha256":"`+sumA+`","size":0,"pack":"`+sumB+`","offset":0}`)), "size 0"},
		{"no pack", tree(file("f", 10, `{"sha256":"`+sumA+`","size":10}`)), `pack "" is not a SHA-256`},
		{"bad pack", tree(file("f", 10, chunkAt("xyz", 0))), `pack "xyz" is not a SHA-256`},
		{"negative offset", tree(file("f", 10, chunkAt(sumB, -1))), "offset -1"},
		{"offset past a pack", tree(file("f", 10, chunkAt(sumB, MaxPackSize-9))), "offset"},
		{"last offset", tree(file("f", 10, chunkAt(sumB, MaxPackSize-10))), ""},
		{"xxh3", tree(file("f", 10, `{"sha256":"`+sumA+`","size":10,"pack":"`+sumB+`","offset":0,"xxh3":"0123456789abcdef0123456789abcdef"}`)), ""},
		{"bad xxh3", tree(file("f", 10, `{"sha256":"`+sumA+`","size":10,"pack":"`+sumB+`","offset":0,"xxh3":"0123456789ABCDEF0123456789abcdef"}`)), "xxh3"},
		{"short xxh3", tree(file("f", 10, `{"sha256":"`+sumA+`","size":10,"pack":"`+sumB+`","offset":0,"xxh3":"0123"}`)), "not 32 lower-case hex digits"},
		{"format 1 chunk", tree(file("f", 10, `{"sha256":"`+sumA+`","size":10,"key":"data/aa/x"}`)), "unknown field"},
		{"bad type", tree(`{"path":"p","type":"fifo","mode":0,"mtime":"2024-01-02T03:04:05Z","uid":0,"gid":0}`), `type "fifo"`},
		{"symlink without target", tree(`{"path":"l","type":"symlink","mode":0,"mtime":"2024-01-02T03:04:05Z","uid":0,"gid":0}`), "needs a target"},
		{"dir with chunks", tree(`{"path":"d","type":"dir","mode":0,"mtime":"2024-01-02T03:04:05Z","chunks":[` + chunk + `],"uid":0,"gid":0}`), "a directory has no"},
		{"mode", tree(`{"path":"d","type":"dir","mode":65535,"mtime":"2024-01-02T03:04:05Z","uid":0,"gid":0}`), "bits outside 07777"},
		{"null entry", tree("null"), "is null"},
		{"unknown field", `{"format":2,"root":{},"entries":[],"extra":1}`, "unknown field"},
		{"format", `{"format":1,"root":{},"entries":[]}`, "format 1"},
		{"trailing", tree() + "{}", "data after"},
		{"not json", "garbage", "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTree([]byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error with %q", tc.want)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrFormat)):
				t.Fatalf("error %v; want ErrFormat with %q", err, tc.want)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTreeRoundTrip(t *testing.T) {
	mt := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	in := &Tree{Format: FormatVersion, Root: RootMeta{Mode: 0o755, MTime: mt}, Entries: []*Entry{
		{Path: "d", Type: TypeDir, Mode: 0o1777, MTime: mt},
		{Path: "d/f", Type: TypeFile, Mode: 0o4755, MTime: mt, Size: 10, Chunks: []Chunk{{SHA256: sumA, Size: 10, Pack: sumB, Offset: 4096}}, Inode: 7, UID: 1000, GID: 100},
		{Path: "d/l", Type: TypeSymlink, Mode: 0o777, MTime: mt, Target: "f"},
	}}
	data, sum, err := EncodeTree(in)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sumHex(data) {
		t.Errorf("tree name %s is not the hash of its bytes", sum)
	}
	out, err := DecodeTree(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Entries) != 3 || out.Entries[1].Chunks[0] != in.Entries[1].Chunks[0] || !out.Entries[1].MTime.Equal(mt) ||
		out.Entries[1].Mode != 0o4755 || out.Entries[2].Target != "f" || out.Entries[1].Inode != 7 {
		t.Errorf("round trip: %+v", out.Entries)
	}
}

func TestDecodeManifestAndInfo(t *testing.T) {
	good := `{"format":2,"id":"20240102T030405Z-0a1b2c3d","status":"available","source":"/s","host":"h","account":"a",` +
		`"started":"2024-01-02T03:04:05Z","finished":"2024-01-02T03:04:06Z","tree":"` + sumA + `","stats":{}}`
	tests := []struct {
		name, doc, want string
	}{
		{"good", good, ""},
		{"bad id", strings.Replace(good, "20240102T030405Z-0a1b2c3d", "../../x", 1), "not a backup id"},
		{"creating", strings.Replace(good, "available", "creating", 1), `status "creating"`},
		{"bad tree", strings.Replace(good, sumA, "zz", 1), "not a SHA-256"},
		{"replica id mismatch", strings.Replace(good, `"stats":{}`, `"stats":{},"replicated_from":{"backup_id":"20240102T030405Z-ffffffff"}`, 1), "differs from the id"},
		{"unknown", strings.Replace(good, `"stats":{}`, `"stats":{},"x":1`, 1), "unknown field"},
	}
	for _, tc := range tests {
		_, err := DecodeManifest([]byte(tc.doc))
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}

	info := `{"format":2,"id":"0123456789abcdef0123456789abcdef","kind":"backup","account":"a","created":"2024-01-02T03:04:05Z","chunker":{"algorithm":"x","small_file":1,"min":1,"avg":2,"max":3}}`
	if _, err := DecodeInfo([]byte(info)); err != nil {
		t.Errorf("info: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(info, `"backup"`, `"archive"`, 1),
		strings.Replace(info, `"format":2`, `"format":1`, 1),
		strings.Replace(info, "0123456789abcdef0123456789abcdef", "x", 1),
	} {
		if _, err := DecodeInfo([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("DecodeInfo(%s) = %v, want ErrFormat", bad, err)
		}
	}
}

func TestParseKeys(t *testing.T) {
	if sum, ok := parsePackKey("packs/aa/" + sumA); !ok || sum != sumA || PackKey(sum) != "packs/aa/"+sumA {
		t.Errorf("parsePackKey = %q, %v", sum, ok)
	}
	for _, bad := range []string{"packs/ab/" + sumA, "packs/aa" + sumA, "packs/aa/" + sumA + "x", "trees/" + sumA, "packs/aa/AAAA", "data/aa/" + sumA} {
		if _, ok := parsePackKey(bad); ok {
			t.Errorf("parsePackKey(%q) accepted", bad)
		}
	}
	if id, ok := parseManifestKey("backups/20240102T030405Z-0a1b2c3d.json"); !ok || id != "20240102T030405Z-0a1b2c3d" {
		t.Errorf("parseManifestKey = %q, %v", id, ok)
	}
	for _, bad := range []string{"backups/x.json", "backups/20240102T030405Z-0a1b2c3d.jso", "trees/20240102T030405Z-0a1b2c3d.json"} {
		if _, ok := parseManifestKey(bad); ok {
			t.Errorf("parseManifestKey(%q) accepted", bad)
		}
	}
	id := newID(time.Now())
	if !ValidID(id) || ValidID("r"+id) || !validRepID("r"+id) {
		t.Errorf("id %s", id)
	}
}

func FuzzDecodeTree(f *testing.F) {
	f.Add([]byte(`{"format":2,"root":{"mode":493,"mtime":"2024-01-02T03:04:05Z"},"entries":[{"path":"a","type":"dir","mode":493,"mtime":"2024-01-02T03:04:05Z","uid":0,"gid":0}]}`))
	data, _, _ := EncodeTree(&Tree{Format: 2, Entries: []*Entry{{Path: "f", Type: TypeFile, Size: 1, Chunks: []Chunk{{SHA256: sumA, Size: 1, Pack: sumB, Offset: 7}}}}})
	f.Add(data)
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTree(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		// Whatever is accepted keeps the invariants restore relies on.
		seen := map[string]string{}
		for _, e := range tr.Entries {
			if err := checkEntry(e, seen); err != nil {
				t.Fatalf("accepted entry breaks the rules: %v", err)
			}
			seen[e.Path] = e.Type
		}
		// And encodes back to something that decodes.
		enc, _, err := EncodeTree(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeTree(enc); err != nil {
			t.Fatalf("re-encoded tree refused: %v", err)
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"format":2,"id":"20240102T030405Z-0a1b2c3d","status":"available","source":"/s","host":"h","account":"a","started":"2024-01-02T03:04:05Z","finished":"2024-01-02T03:04:06Z","tree":"` + sumA + `","stats":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		if !ValidID(m.ID) || !ValidSHA256(m.Tree) {
			t.Fatalf("accepted manifest with id %q tree %q", m.ID, m.Tree)
		}
		if _, err := DecodeManifest(encodeJSON(m)); err != nil {
			t.Fatalf("re-encoded manifest refused: %v", err)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"id":"r20240102T030405Z-0a1b2c3d","backup_id":"20240102T030405Z-0a1b2c3d","source_vault":"a","source_vault_id":"x","source_account":"a","destination_vault":"b","destination_vault_id":"y","destination_account":"b","status":"success","host":"h","created":"2024-01-02T03:04:05Z","updated":"2024-01-02T03:04:05Z","chunks":1,"bytes":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if !validRepID(r.ID) || !ValidID(r.BackupID) {
			t.Fatalf("accepted record %q / %q", r.ID, r.BackupID)
		}
	})
}

func FuzzDecodeInfo(f *testing.F) {
	f.Add([]byte(`{"format":2,"id":"0123456789abcdef0123456789abcdef","kind":"backup","account":"a","created":"2024-01-02T03:04:05Z","chunker":{"algorithm":"x","small_file":1,"min":1,"avg":2,"max":3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodeInfo(b)
		if err != nil {
			return
		}
		if in.Kind != KindBackup && in.Kind != KindReplication {
			t.Fatalf("accepted kind %q", in.Kind)
		}
	})
}
