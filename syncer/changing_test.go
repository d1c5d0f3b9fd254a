package syncer

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

// changingSource serves one content to the first Open of a key and another
// to every later Open: a file rewritten (same size and mtime) between the
// pre-upload hash and the upload.
type changingSource struct {
	*mem.Store
	later []byte
	opens atomic.Int64
}

func (c *changingSource) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if c.opens.Add(1) == 1 {
		return c.Store.Open(ctx, key, off, n)
	}
	b := c.later[off:]
	if n >= 0 && n < int64(len(b)) {
		b = b[:n]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// A local file that changes while a resumable upload runs is caught by the
// hash announced at the start; the upload is dropped and the next attempt
// copies the new content.
func TestIntegrationSourceChangedDuringUpload(t *testing.T) {
	srv := testenv.SharedMinIO(t)
	const size = 2*itPartSize + 4321
	first, later := itRandom(31, size), itRandom(32, size)
	src := &changingSource{Store: mem.New(), later: later}
	itPut(t, src.Store, "big.bin", first, itMtime)
	dst := itS3(t, srv, srv.NewBucket(t), "")
	e, db := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
	itWantStatus(t, j, state.JobCompleted)
	if got := itRead(t, dst, "big.bin"); !bytes.Equal(got, later) {
		t.Error("the destination does not hold the file's new content")
	}
	if info, err := dst.Stat(context.Background(), "big.bin"); err != nil || info.SHA256 != itSHA(later) {
		t.Errorf("Stat = %+v, %v; want the new content's sha256", info, err)
	}
	itNoUploads(t, db)
	var _ remote.Local = src
}
