package changelist

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/remote"
)

type skip struct {
	line int
	path string
	want string // substring of the reason
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		file    string // name given to Parse; default "list.csv"
		in      string
		opts    Options
		upserts []string
		deletes []string
		skipped []skip
		header  bool
		rows    int
		ignored []string
		// reject, when set, is the line and a substring of the reason.
		rejectLine int
		reject     string
	}{
		{
			name:    "no header, one path per row",
			in:      "a.txt\ndir/b.txt\n/dir1/example.txt\n",
			upserts: []string{"a.txt", "dir/b.txt", "dir1/example.txt"},
			rows:    3,
		},
		{
			name:    "no header, other columns ignored (bucket manifests)",
			in:      "a.txt,12345\nb.txt,generation-2\n",
			upserts: []string{"a.txt", "b.txt"},
			rows:    2,
		},
		{
			name:    "header with every column, in any order, any case",
			in:      "SHA256,Op,Path,size,mtime\n" + strings.Repeat("ab", 32) + ",upsert,a.txt,10,2026-11-23T10:15:00Z\n,D,old.txt,,\n,,c.txt,0,1700000000\n,M,d.txt,,1700000000.25\n",
			upserts: []string{"a.txt", "c.txt", "d.txt"},
			deletes: []string{"old.txt"},
			header:  true,
			rows:    4,
		},
		{
			name:    "every op spelling",
			in:      "path,op\na,upsert\nb,add\nc,modify\nd,A\ne,M\nf,m\ng,\nh,delete\ni,D\nj,DELETE\nk, d \n",
			upserts: []string{"a", "b", "c", "d", "e", "f", "g"},
			deletes: []string{"h", "i", "j", "k"},
			header:  true,
			rows:    11,
		},
		{
			name:    "quoting: commas, quotes and newlines in names",
			in:      "path,op\n\"a,b.txt\",upsert\n\"say \"\"hi\"\".txt\",\n\"two\nlines.txt\",delete\n\"  spaced  .txt\"\n",
			upserts: []string{"a,b.txt", `say "hi".txt`, "  spaced  .txt"},
			deletes: []string{"two\nlines.txt"},
			header:  true,
			rows:    4,
		},
		{
			name:    "CRLF line ends and a byte-order mark",
			in:      "\uFEFFpath,op\r\na.txt,A\r\nb.txt,D\r\n",
			upserts: []string{"a.txt"},
			deletes: []string{"b.txt"},
			header:  true,
			rows:    2,
		},
		{
			name:    "unknown columns are ignored and reported",
			in:      "bucket,path,etag\nb1,a.txt,x\n",
			upserts: []string{"a.txt"},
			header:  true,
			rows:    1,
			ignored: []string{"bucket", "etag"},
		},
		{
			name:    "the last row of a path decides",
			in:      "path,op\na,upsert\nb,delete\na,delete\nb,upsert\nc,add\nc,add\n",
			upserts: []string{"b", "c"},
			deletes: []string{"a"},
			header:  true,
			rows:    6,
		},
		{
			name:    "short rows take empty cells",
			in:      "path,op,size\na.txt\nb.txt,delete\n",
			upserts: []string{"a.txt"},
			deletes: []string{"b.txt"},
			header:  true,
			rows:    2,
		},
		{
			name: "hostile paths are skipped with a reason",
			in: "../../etc/passwd\n" + // line 1
				"//etc/shadow\n" + // absolute even after the one allowed /
				"a//b\n" +
				"a\\b\n" +
				"a\x00b\n" +
				"./x\n" +
				"dir/\n" + // line 7
				"/etc/passwd\n" + // one leading / is allowed: source-relative etc/passwd
				"ok.txt\n",
			upserts: []string{"etc/passwd", "ok.txt"},
			skipped: []skip{
				{1, "../../etc/passwd", `list.csv line 1: invalid path: has a ".." component`},
				{2, "//etc/shadow", "absolute path"},
				{3, "a//b", "empty path component"},
				{4, `a\b`, "backslash"},
				{5, `"a\x00b"`, "NUL"},
				{6, "./x", `"." component`},
				{7, "dir/", "empty path component"},
			},
			rows: 9,
		},
		{
			name:    "bad rows of a header list",
			in:      "path,op,size,mtime,sha256\na,rename,,,\nb,,-1,,\nc,,12x,,\nd,,,yesterday,\ne,,,,abc\nf,,,,\n,,,,\ng,,,,," + "\n" + ",bogus,,,\n",
			upserts: []string{"f"},
			skipped: []skip{
				{2, "a", `unknown op "rename"; use upsert`},
				{3, "b", `size "-1" is not a whole number`},
				{4, "c", `size "12x"`},
				{5, "d", `mtime "yesterday" is neither RFC 3339`},
				{6, "e", `sha256 "abc" is not 64 hex digits`},
				{8, "", "invalid path: is empty"},
				{9, "g", "the row has 6 fields, the header 5"},
				{10, "", `invalid path: is empty; unknown op "bogus"`},
			},
			header: true,
			rows:   9,
		},
		{
			name:   "empty list",
			in:     "",
			header: false,
		},
		{
			name:   "header only",
			in:     "path,op\n",
			header: true,
		},
		{
			name:    "blank lines are ignored",
			in:      "\n\na.txt\n\n\nb.txt\n",
			upserts: []string{"a.txt", "b.txt"},
			rows:    2,
		},
		{
			name:    "a file named like a column is a path without a header",
			in:      "size\nb\n",
			upserts: []string{"size", "b"},
			rows:    2,
		},

		// Structural problems reject the whole list.
		{
			name:       "unterminated quote",
			in:         "path\nok.txt\n\"never closed.txt\nmore.txt\n",
			rejectLine: 4,
			reject:     "unterminated or malformed quoted field (started on line 3)",
		},
		{
			name:       "bare quote",
			in:         "a.txt\nsay \"hi\".txt\n",
			rejectLine: 2,
			reject:     "a quote inside an unquoted field",
		},
		{
			name:       "header without path",
			in:         "op,size\nupsert,3\n",
			rejectLine: 1,
			reject:     "the header row (op, size) has no path column",
		},
		{
			name:       "header names a column twice",
			in:         "path,op,Path\na,,b\n",
			rejectLine: 1,
			reject:     `names column "path" twice`,
		},
		{
			name:       "invalid UTF-8",
			in:         "a.txt\nb\xff.txt\n",
			rejectLine: 2,
			reject:     "column 1 is not valid UTF-8",
		},
		{
			name:       "invalid UTF-8 in a column that is not the path",
			in:         "path,comment\na.txt,caf\xe9\n",
			rejectLine: 2,
			reject:     "column 2 is not valid UTF-8",
		},
		{
			name:   "over the size limit",
			in:     strings.Repeat("abcdefghi\n", 20),
			opts:   Options{MaxBytes: 100},
			reject: "larger than 100 bytes",
		},
		{
			name:       "over the row limit",
			in:         "path\na\nb\nc\n",
			opts:       Options{MaxRows: 2},
			rejectLine: 4,
			reject:     "more than 2 rows",
		},
		{
			name:       "a row over the line limit",
			in:         "a\nb\n" + strings.Repeat("x", 200) + "\nc\n",
			opts:       Options{MaxLineBytes: 100},
			rejectLine: 3,
			reject:     "the row is longer than 100 bytes",
		},
		{
			name:       "a quoted row over the line limit across lines",
			in:         "a\n\"" + strings.Repeat("x\n", 100) + "\"\nc\n",
			opts:       Options{MaxLineBytes: 100},
			rejectLine: 2,
			reject:     "the row is longer than 100 bytes",
		},
		{
			name:   "named .gz but not gzip",
			file:   "list.csv.gz",
			in:     "a.txt\n",
			reject: "not gzip-compressed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "list.csv"
			}
			l, err := Parse(strings.NewReader(tt.in), file, tt.opts)
			if tt.reject != "" {
				var re *RejectError
				if !errors.As(err, &re) || !errors.Is(err, ErrRejected) {
					t.Fatalf("Parse = %+v, %v; want a RejectError", l, err)
				}
				if re.Line != tt.rejectLine || !strings.Contains(re.Reason, tt.reject) || re.File != file {
					t.Fatalf("RejectError = %+v, want line %d and %q", re, tt.rejectLine, tt.reject)
				}
				if l != nil {
					t.Fatalf("a rejected list came with a List: %+v", l)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !slices.Equal(l.Upserts, tt.upserts) || !slices.Equal(l.Deletes, tt.deletes) {
				t.Errorf("upserts %q deletes %q, want %q %q", l.Upserts, l.Deletes, tt.upserts, tt.deletes)
			}
			if l.Header != tt.header || l.Rows != tt.rows || !slices.Equal(l.IgnoredColumns, tt.ignored) {
				t.Errorf("header %v rows %d ignored %q, want %v %d %q", l.Header, l.Rows, l.IgnoredColumns, tt.header, tt.rows, tt.ignored)
			}
			if len(l.Skipped) != len(tt.skipped) {
				t.Fatalf("skipped %+v, want %d", l.Skipped, len(tt.skipped))
			}
			for i, s := range l.Skipped {
				w := tt.skipped[i]
				if s.Line != w.line || s.Path != w.path || !strings.Contains(s.Reason, w.want) ||
					!strings.HasPrefix(s.Reason, "changelist list.csv line ") {
					t.Errorf("skipped[%d] = %+v, want line %d path %q reason with %q", i, s, w.line, w.path, w.want)
				}
			}
			sum := sha256.Sum256([]byte(tt.in))
			if l.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("SHA256 = %s, want the content's", l.SHA256)
			}
			for _, k := range append(slices.Clone(l.Upserts), l.Deletes...) {
				if err := remote.ValidateKey(k); err != nil {
					t.Errorf("yielded invalid key: %v", err)
				}
			}
		})
	}
}

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseGzip(t *testing.T) {
	const text = "path,op\na.txt,\nb.txt,delete\n"
	gz := gzipped(t, text)
	plain, err := Parse(strings.NewReader(text), "l.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	// By name, and by the magic bytes whatever the name.
	for _, name := range []string{"l.csv.gz", "l.CSV.GZ", "l.csv"} {
		l, err := Parse(bytes.NewReader(gz), name, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !l.Gzip || !slices.Equal(l.Upserts, []string{"a.txt"}) || !slices.Equal(l.Deletes, []string{"b.txt"}) {
			t.Errorf("%s: %+v", name, l)
		}
		if l.SHA256 != plain.SHA256 {
			t.Errorf("%s: SHA256 %s differs from the plain list's %s", name, l.SHA256, plain.SHA256)
		}
	}

	// Corrupt and truncated streams reject the list.
	bad := slices.Clone(gz)
	bad[len(bad)-6] ^= 0xff // the CRC
	for name, data := range map[string][]byte{
		"crc":       bad,
		"truncated": gz[:len(gz)-10],
		"header":    append([]byte{0x1f, 0x8b, 0}, gz[3:]...),
		"deflate":   append(slices.Clone(gz[:10]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	} {
		_, err := Parse(bytes.NewReader(data), "l.csv.gz", Options{})
		var re *RejectError
		if !errors.As(err, &re) || !strings.Contains(re.Reason, "gzip") {
			t.Errorf("%s: err = %v, want a gzip RejectError", name, err)
		}
	}

	// The size limit counts decompressed bytes: a small bomb is refused.
	bomb := gzipped(t, strings.Repeat("a\n", 1<<20))
	_, err = Parse(bytes.NewReader(bomb), "bomb.csv.gz", Options{MaxBytes: 1 << 20})
	var re *RejectError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "larger than 1048576 bytes") {
		t.Errorf("bomb: err = %v", err)
	}
}

// endless yields n bytes of 'a' without holding them, counting what was
// read.
type endless struct {
	left, read int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > e.left {
		n = e.left
	}
	for i := range p[:n] {
		p[i] = 'a'
	}
	e.left -= n
	e.read += n
	return int(n), nil
}

// A 2 GiB line is refused after reading about MaxLineBytes, not 2 GiB.
func TestParseHugeLine(t *testing.T) {
	src := &endless{left: 2 << 30}
	r := io.MultiReader(strings.NewReader("path\nfirst.txt\n"), src)
	_, err := Parse(r, "huge.csv", Options{})
	var re *RejectError
	if !errors.As(err, &re) || re.Line != 3 || !strings.Contains(re.Reason, "longer than 65536 bytes") {
		t.Fatalf("err = %v, want a RejectError on line 3", err)
	}
	if src.read > 1<<20 {
		t.Errorf("read %d bytes of the huge line before refusing it", src.read)
	}

	// Compressed, the same.
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.CopyN(zw, &endless{left: 8 << 20}, 8<<20); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	if _, err := Parse(&b, "huge.csv.gz", Options{}); !errors.As(err, &re) || re.Line != 1 {
		t.Fatalf("gz: err = %v, want a RejectError on line 1", err)
	}
}

// An I/O error is the reader's, not a rejection.
func TestParseReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("a\nb\n"), &failing{boom})
	_, err := Parse(r, "l.csv", Options{})
	if !errors.Is(err, boom) || errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want the read error, not a rejection", err)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

func TestRejectErrorMessage(t *testing.T) {
	e := &RejectError{File: "a.csv", Line: 3, Reason: "bad"}
	if e.Error() != "changelist a.csv line 3: bad" {
		t.Error(e.Error())
	}
	e.Line = 0
	if e.Error() != "changelist a.csv: bad" {
		t.Error(e.Error())
	}
}
