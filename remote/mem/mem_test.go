package mem_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/remote/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) remote.Store { return mem.New() }, storetest.Options{})
}

func TestConformanceSmallParts(t *testing.T) {
	storetest.Run(t, func(t *testing.T) remote.Store {
		s := mem.New()
		s.SetPartSize(4096)
		return s
	}, storetest.Options{})
}

// The callback of a listing may use the store: no lock is held while it runs.
func TestListCallbackMayWrite(t *testing.T) {
	s := mem.New()
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Put(ctx, k, strings.NewReader(k), 1, remote.PutMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	err := s.List(ctx, "", func(info remote.ObjectInfo) error {
		seen = append(seen, info.Key)
		if info.Key == "a" {
			// Ahead of the listing: seen. Behind it: not.
			if _, err := s.Put(ctx, "bb", strings.NewReader("x"), 1, remote.PutMeta{}); err != nil {
				return err
			}
			if _, err := s.Put(ctx, "0", strings.NewReader("x"), 1, remote.PutMeta{}); err != nil {
				return err
			}
		}
		return s.Delete(ctx, "c")
	})
	if err != nil || strings.Join(seen, ",") != "a,b,bb" {
		t.Errorf("List = %q, %v; want a,b,bb", seen, err)
	}
}

func TestCompleteUploadRefusals(t *testing.T) {
	s := mem.New()
	s.SetPartSize(4)
	ctx := t.Context()
	id, err := s.InitUpload(ctx, "k", remote.PutMeta{})
	if err != nil {
		t.Fatal(err)
	}
	up := func(n int, data string) remote.Part {
		t.Helper()
		p, err := s.UploadPart(ctx, "k", id, n, strings.NewReader(data), int64(len(data)), "")
		if err != nil {
			t.Fatalf("UploadPart(%d): %v", n, err)
		}
		return p
	}
	if _, err := s.UploadPart(ctx, "k", id, 1, strings.NewReader("too long"), 8, ""); err == nil {
		t.Error("UploadPart larger than the part size succeeded")
	}
	if _, err := s.UploadPart(ctx, "other", id, 1, strings.NewReader("abcd"), 4, ""); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("UploadPart with another key's upload id = %v; want ErrNotExist", err)
	}
	p1, p2, short := up(1, "abcd"), up(2, "ef"), up(3, "g")
	tests := []struct {
		name  string
		parts []remote.Part
		meta  remote.PutMeta
		want  error
	}{
		{"no parts", nil, remote.PutMeta{}, nil},
		{"out of order", []remote.Part{p2, p1}, remote.PutMeta{}, nil},
		{"short middle part", []remote.Part{p1, p2, short}, remote.PutMeta{}, nil},
		{"unknown ETag", []remote.Part{p1, {Number: 2, ETag: "nope"}}, remote.PutMeta{}, remote.ErrNotExist},
		{"wrong checksum", []remote.Part{p1, p2}, remote.PutMeta{SHA256: strings.Repeat("0", 64)}, remote.ErrChecksum},
	}
	for _, tt := range tests {
		_, err := s.CompleteUpload(ctx, "k", id, tt.parts, tt.meta)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: CompleteUpload = %v; want an error (%v)", tt.name, err, tt.want)
		}
	}
	// The upload survives refused completions; a part can be sent again.
	p2 = up(2, "EF")
	if _, err := s.CompleteUpload(ctx, "k", id, []remote.Part{p1, p2}, remote.PutMeta{}); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	rc, err := s.Open(ctx, "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	if buf.String() != "abcdEF" {
		t.Errorf("content = %q, want abcdEF", buf.String())
	}
}
