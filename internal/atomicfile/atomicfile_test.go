package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", "file")
	mt := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := WriteFile(p, []byte("one"), mt); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "two" {
		t.Fatalf("content %q, %v; want the second write", got, err)
	}
	if err := WriteFile(filepath.Join(dir, "m"), nil, mt); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "m")); err != nil || !fi.ModTime().Equal(mt) {
		t.Errorf("mtime %v, %v; want %v", fi.ModTime(), err, mt)
	}
	// A write that cannot land leaves no temporary file behind.
	if err := os.Mkdir(filepath.Join(dir, "isdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "isdir"), []byte("x"), time.Time{}); err == nil {
		t.Error("writing over a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
