package changelist

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/remote"
)

// FuzzParse: no input makes Parse panic; it either rejects the list with a
// RejectError naming the file, or yields only keys that pass the key rules,
// each once, with every bad row accounted for.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a.txt\nb/c.txt\n",
		"path,op,size,mtime,sha256\na,D,1,2026-01-02T03:04:05Z," + strings.Repeat("0", 64) + "\n",
		"path\n\"a,b\"\n\"x\"\"y\"\n\"multi\nline\"\n",
		"../../etc/passwd\n/abs\n//abs\na//b\na\\b\na\x00b\n",
		"\uFEFFpath,op\r\nx,A\r\n",
		"op,size\n1,2\n",
		"\"unterminated\n",
		"a\xffb\n",
		"path,op\na,bogus\n,\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add(gzipped(f, "path\na\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, gz bool) {
		name := "fuzz.csv"
		if gz {
			name += ".gz"
		}
		l, err := Parse(bytes.NewReader(data), name, Options{MaxBytes: 1 << 16, MaxLineBytes: 512, MaxRows: 1000})
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || re.File != name || re.Reason == "" || re.Line < 0 {
				t.Fatalf("error %T %v is not a RejectError naming the file", err, err)
			}
			return
		}
		seen := make(map[string]bool)
		for _, k := range append(append([]string(nil), l.Upserts...), l.Deletes...) {
			if err := remote.ValidateKey(k); err != nil {
				t.Fatalf("Parse yielded a key that breaks the rules: %v", err)
			}
			if seen[k] {
				t.Fatalf("key %q yielded twice", k)
			}
			seen[k] = true
		}
		if len(seen) > l.Rows || len(l.Skipped) > l.Rows {
			t.Fatalf("%d keys and %d skipped from %d rows", len(seen), len(l.Skipped), l.Rows)
		}
		for _, s := range l.Skipped {
			if s.Line < 1 || !strings.HasPrefix(s.Reason, "changelist "+name+" line ") {
				t.Fatalf("skipped row without its line: %+v", s)
			}
		}
		if len(l.SHA256) != 64 {
			t.Fatalf("SHA256 %q", l.SHA256)
		}
	})
}
