package fusefs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
)

// gatedStore's readers wait for gate before yielding their first byte.
type gatedStore struct {
	remote.Store
	gate  chan struct{}
	opens atomic.Int64
}

func (g *gatedStore) Open(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	g.opens.Add(1)
	rd, err := g.Store.Open(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	return &gatedReader{rd: rd, gate: g.gate}, nil
}

type gatedReader struct {
	rd   io.ReadCloser
	gate chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	<-g.gate
	return g.rd.Read(p)
}

func (g *gatedReader) Close() error { return g.rd.Close() }

func newTestHandle(t *testing.T, s remote.Store, key string) (*handle, int64) {
	t.Helper()
	info, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	fsys := &remoteFS{store: s, bg: context.Background(), log: slog.New(slog.DiscardHandler)}
	n := &fileNode{node: node{fsys: fsys}, key: key, info: info, inStore: true}
	h := fsys.newHandle(n, false)
	t.Cleanup(h.release)
	return h, info.Size
}

func TestReadInterruptedKeepsData(t *testing.T) {
	t.Parallel()
	content := randomBytes(3, 3*chunkSize+100)
	m := mem.New()
	if _, err := m.Put(context.Background(), "f", bytes.NewReader(content), int64(len(content)), remote.PutMeta{}); err != nil {
		t.Fatal(err)
	}
	gs := &gatedStore{Store: m, gate: make(chan struct{})}
	h, size := newTestHandle(t, gs, "f")

	// The first request is interrupted while the store has sent nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dest := make([]byte, 128<<10)
	if _, err := h.readRemote(ctx, "f", size, dest, 0); !errors.Is(err, context.Canceled) || toErrno(err) != syscall.EINTR {
		t.Fatalf("interrupted read: %v", err)
	}
	close(gs.gate)
	// The retry, and the reads after it, continue the same ranged read.
	var got []byte
	for off := int64(0); off < size; {
		n, err := h.readRemote(context.Background(), "f", size, dest, off)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("no progress at %d", off)
		}
		got = append(got, dest[:n]...)
		off += int64(n)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("content differs")
	}
	if n := gs.opens.Load(); n != 1 {
		t.Errorf("opened %d times, want 1", n)
	}
}

func TestReadSeeks(t *testing.T) {
	t.Parallel()
	content := randomBytes(4, 4<<20)
	m := mem.New()
	if _, err := m.Put(context.Background(), "f", bytes.NewReader(content), int64(len(content)), remote.PutMeta{}); err != nil {
		t.Fatal(err)
	}
	gs := &gatedStore{Store: m, gate: make(chan struct{})}
	close(gs.gate)
	h, size := newTestHandle(t, gs, "f")
	read := func(off, n int64) {
		t.Helper()
		dest := make([]byte, n)
		k, err := h.readRemote(context.Background(), "f", size, dest, off)
		if err != nil {
			t.Fatalf("read %d+%d: %v", off, n, err)
		}
		if want := content[off:min(off+n, size)]; !bytes.Equal(dest[:k], want) {
			t.Fatalf("read %d+%d: got %d bytes, differing", off, n, k)
		}
	}
	steps := []struct {
		off, n, opens int64
	}{
		{0, 4096, 1},
		{4096, 100 << 10, 1},              // sequential
		{4096 + 100<<10 + 200<<10, 10, 1}, // a jump ahead within skipAhead
		{1000, 10, 2},                     // backwards: a new ranged read
		{3 << 20, 10, 3},                  // far ahead: a new ranged read
		{size, 100, 3},                    // at the end: nothing to read, no request
	}
	for _, s := range steps {
		read(s.off, s.n)
		if got := gs.opens.Load(); got != s.opens {
			t.Errorf("after reading %d+%d: %d opens, want %d", s.off, s.n, got, s.opens)
		}
	}
}
