package syncer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

// unsummed is a memory store whose part listing carries no SHA-256, as a
// store that keeps none.
type unsummed struct{ *givenParts }

func (u unsummed) ListParts(ctx context.Context, key, id string) ([]remote.Part, error) {
	parts, err := u.givenParts.ListParts(ctx, key, id)
	for i := range parts {
		parts[i].SHA256 = ""
	}
	return parts, err
}

// Without a SHA-256 from the store, a resume keeps a part only when the
// store holds it with the ETag recorded: part 1 is kept; part 2 (another
// ETag), part 3 (held but never recorded, so nothing to check it against)
// and part 4 (missing) are sent.
func TestResumeWithoutPartSHA256(t *testing.T) {
	t.Parallel()
	const partSize = 64 << 10
	const size = 3*partSize + 777
	src := itLocal(t, t.TempDir())
	data := itRandom(78, size)
	itPut(t, src, "big.bin", data, itMtime)
	dst := unsummed{&givenParts{Store: mem.New(), given: map[int]string{}}}
	dst.SetPartSize(partSize)
	e, db := itEngine(t)

	// What an earlier attempt left: parts 1 to 3 at the store, parts 1
	// and 2 recorded (2 with an ETag the store does not have) with the
	// hash state after them.
	ctx := t.Context()
	id, err := dst.InitUpload(ctx, "big.bin", remote.PutMeta{ModTime: itMtime})
	if err != nil {
		t.Fatal(err)
	}
	var recorded []state.UploadPart
	for n := 1; n <= 3; n++ {
		part := data[(n-1)*partSize : n*partSize]
		p, err := dst.Store.UploadPart(ctx, "big.bin", id, n, bytes.NewReader(part), partSize, "")
		if err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, state.UploadPart{Number: n, Size: p.Size, SHA256: p.SHA256, ETag: p.ETag})
	}
	recorded[1].ETag = "another"
	h := sha256.New()
	h.Write(data[:2*partSize])
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	err = db.PutUpload(&state.Upload{Plan: "p", Key: "big.bin", UploadID: id, Size: size, ModTime: itMtime,
		PartSize: partSize, Parts: recorded[:2], SourceSHA256State: st, Created: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}

	j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: dst})
	itWantStatus(t, j, state.JobCompleted)
	for n := 1; n <= 4; n++ {
		if _, sent := dst.given[n]; sent != (n > 1) {
			t.Errorf("part %d sent: %v, want %v", n, sent, n > 1)
		}
	}
	if c := j.Counters; c.BytesResumed != partSize || c.BytesSent != size-partSize {
		t.Errorf("counters %+v, want %d bytes resumed and %d sent", c, partSize, size-partSize)
	}
	info, err := dst.Stat(ctx, "big.bin")
	if err != nil || info.SHA256 != itSHA(data) || info.Size != size {
		t.Errorf("stored %+v, %v; want %d bytes with SHA-256 %s", info, err, size, itSHA(data))
	}
	itNoUploads(t, db)
}

// cancelAtPart is a memory store that cancels the job when part n starts.
type cancelAtPart struct {
	*mem.Store
	n      int
	cancel context.CancelFunc
	mu     sync.Mutex
	done   map[int]bool
}

func (c *cancelAtPart) UploadPart(ctx context.Context, key, id string, n int, r io.Reader, size int64, sha string) (remote.Part, error) {
	if n >= c.n {
		// Let the parts before n finish, so exactly n-1 are held.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			c.mu.Lock()
			all := len(c.done) >= c.n-1
			c.mu.Unlock()
			if all {
				break
			}
		}
		c.cancel()
		return remote.Part{}, context.Canceled
	}
	p, err := c.Store.UploadPart(ctx, key, id, n, r, size, sha)
	if err == nil {
		c.mu.Lock()
		c.done[n] = true
		c.mu.Unlock()
	}
	return p, err
}

// A source file rewritten between a killed multipart upload and its resume,
// with its size and mtime kept (cp -p, rsync -t, touch -r, a coarse mtime),
// is not completed from the old parts the store holds and new ones: the
// upload is started over and the object is the new content.
func TestResumeSourceRewrittenSameSizeAndMtime(t *testing.T) {
	t.Parallel()
	const partSize = 64 << 10
	const size = 3*partSize + 777
	for _, srcKind := range []string{"local", "mem"} {
		t.Run(srcKind, func(t *testing.T) {
			t.Parallel()
			var src remote.Store = itLocal(t, t.TempDir())
			if srcKind == "mem" {
				src = mem.New()
			}
			old := itRandom(80, size)
			itPut(t, src, "big.bin", old, itMtime)
			store := mem.New()
			store.SetPartSize(partSize)
			e, db := itEngine(t)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			first := &cancelAtPart{Store: store, n: 3, cancel: cancel, done: map[int]bool{}}
			itWantStatus(t, itRunCtx(t, ctx, e, &Plan{Name: "p", Source: src, Dest: first}), state.JobCanceled)
			if up, ok, err := db.GetUpload("p", "big.bin"); err != nil || !ok || len(up.Parts) != 2 {
				t.Fatalf("upload record %+v, %v, %v; want 2 parts held", up, ok, err)
			}

			// Parts 1 (held) and 3 (not sent yet) change; size and
			// mtime stay.
			data := bytes.Clone(old)
			data[100] ^= 0xff
			data[2*partSize+100] ^= 0xff
			itPut(t, src, "big.bin", data, itMtime)

			j := itRun(t, e, &Plan{Name: "p", Source: src, Dest: store})
			itWantStatus(t, j, state.JobCompleted)
			got, err := hashObject(t.Context(), store, "big.bin")
			if err != nil || got != itSHA(data) {
				t.Errorf("stored content hashes to %s (%v), want the new file's %s (old: %s)", got, err, itSHA(data), itSHA(old))
			}
			itNoUploads(t, db)
		})
	}
}
