package treetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recorder collects what Compare reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Errorf(format string, a ...any) { r.errs = append(r.errs, format) }

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	mt := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"sub", "."} {
		if err := os.Chtimes(filepath.Join(dir, d), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCompare(t *testing.T) {
	base := map[string]string{"a.txt": "alpha", "sub/b.txt": strings.Repeat("b", 3<<20)}
	for _, tc := range []struct {
		name  string
		other map[string]string
		want  int // problems reported
	}{
		{"same", base, 0},
		{"content", map[string]string{"a.txt": "alphA", "sub/b.txt": base["sub/b.txt"]}, 1},
		{"missing", map[string]string{"sub/b.txt": base["sub/b.txt"]}, 1},
		{"extra", map[string]string{"a.txt": "alpha", "sub/b.txt": base["sub/b.txt"], "c": "x"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			Compare(r, tree(t, base), tree(t, tc.other), Options{Where: "the copy", Owners: true})
			if len(r.errs) != tc.want {
				t.Errorf("reported %d problems %q, want %d", len(r.errs), r.errs, tc.want)
			}
		})
	}
}
