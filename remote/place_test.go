package remote

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckOverlap(t *testing.T) {
	loc := func(p string) Place { return Place{Kind: "local", Path: p} }
	s3 := func(host, bucket, prefix string) Place { return S3Place(host, false, bucket, prefix) }
	tests := []struct {
		name             string
		src, dst         Place
		always, withDels bool // refused without deletes, refused with them
	}{
		{"same dir", loc("/data/x"), loc("/data/x"), true, true},
		{"dst inside src", loc("/data"), loc("/data/x"), true, true},
		{"src inside dst", loc("/data/x/sub"), loc("/data/x"), false, true},
		{"siblings", loc("/data/x"), loc("/data/xy"), false, false},
		{"root contains all", loc("/"), loc("/data"), true, true},
		{"src inside root dst", loc("/data"), loc("/"), false, true},
		{"s3 same prefix", s3("Host:9000", "b", "x/"), s3("host:9000", "b", "x/"), true, true},
		{"s3 src under dst", s3("host:9000", "b", "x/sub/"), s3("host:9000", "b", "x/"), false, true},
		{"s3 bucket root dst", s3("host", "b", "x/"), s3("host:80", "b", ""), false, true},
		{"s3 sibling prefix", s3("host", "b", "x/"), s3("host", "b", "xy/"), false, false},
		{"s3 other bucket", s3("host", "b", ""), s3("host", "c", ""), false, false},
		{"s3 other server", s3("host:9000", "b", ""), s3("host:9001", "b", ""), false, false},
		{"s3 default port tls", S3Place("h", true, "b", ""), S3Place("h:443", false, "b", "x/"), true, true},
		{"local and s3", loc("/b"), s3("host", "b", ""), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dels := range []bool{false, true} {
				want := tt.always || dels && tt.withDels
				err := CheckOverlap(tt.src, tt.dst, dels)
				if got := err != nil; got != want {
					t.Errorf("CheckOverlap(%v, %v, deletes=%v) = %v; want refused=%v", tt.src, tt.dst, dels, err, want)
				}
				if err != nil && !errors.Is(err, ErrOverlap) {
					t.Errorf("error %v does not wrap ErrOverlap", err)
				}
			}
		})
	}
}

func TestLocalPlaceResolvesSymlinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(filepath.Join(real, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	for in, out := range map[string]string{
		filepath.Join(dir, "link"):                   want,
		filepath.Join(dir, "link", "sub"):            filepath.Join(want, "sub"),
		filepath.Join(dir, "link", "not", "yet"):     filepath.Join(want, "not", "yet"),
		filepath.Join(dir, "real", "sub") + "/":      filepath.Join(want, "sub"),
		filepath.Join(dir, "link", "sub", "..", "x"): filepath.Join(want, "x"),
	} {
		p, err := LocalPlace(in)
		if err != nil || p.Path != out || p.Kind != "local" {
			t.Errorf("LocalPlace(%s) = %+v, %v; want path %s", in, p, err, out)
		}
	}
	if p, err := LocalPlace(filepath.Join(dir, "dangling", "x")); err == nil {
		t.Errorf("LocalPlace through a dangling symlink = %+v; want an error (its target is unknown)", p)
	}
}
