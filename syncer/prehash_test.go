package syncer

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

// givenParts is a memory store that records the SHA-256 each part was
// sent with.
type givenParts struct {
	*mem.Store
	mu    sync.Mutex
	given map[int]string
}

func (g *givenParts) UploadPart(ctx context.Context, key, id string, n int, r io.Reader, size int64, sha string) (remote.Part, error) {
	g.mu.Lock()
	g.given[n] = sha
	g.mu.Unlock()
	return g.Store.UploadPart(ctx, key, id, n, r, size, sha)
}

// A local file is hashed once before its multipart upload, parts and whole
// together, also when parts do not fall on the pass's block boundaries;
// each part goes out with its SHA-256 and the object with the file's.
func TestPrehashedParts(t *testing.T) {
	t.Parallel()
	const partSize = prehashBlock + prehashBlock/2 + 17
	const size = 3*partSize + 12345
	src := itLocal(t, t.TempDir())
	data := itRandom(77, size)
	itPut(t, src, "big.bin", data, itMtime)
	dst := &givenParts{Store: mem.New(), given: map[int]string{}}
	dst.SetPartSize(partSize)
	e, db := itEngine(t)
	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
	itWantStatus(t, j, state.JobCompleted)
	if len(dst.given) != 4 {
		t.Fatalf("%d parts sent, want 4", len(dst.given))
	}
	for n := 1; n <= 4; n++ {
		part := data[(n-1)*partSize : min(n*partSize, size)]
		if dst.given[n] != itSHA(part) {
			t.Errorf("part %d went out with SHA-256 %q, want %s", n, dst.given[n], itSHA(part))
		}
	}
	info, err := dst.Stat(t.Context(), "big.bin")
	if err != nil || info.SHA256 != itSHA(data) || info.Size != size {
		t.Errorf("stored %+v, %v; want %d bytes with SHA-256 %s", info, err, size, itSHA(data))
	}
	itNoUploads(t, db)
}
