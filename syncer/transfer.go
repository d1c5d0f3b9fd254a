package syncer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// errSourceChanged: the source file changed while it was being read.
var errSourceChanged = errors.New("the source file changed while it was being copied")

// process handles one file on a worker: transfer or verify, with retries,
// and reports the outcome to its task.
func (r *run) process(ctx context.Context, w *work) {
	key := w.info.Key
	if ctx.Err() != nil {
		w.task.release()
		return
	}
	if r.p.DryRun {
		r.c.filesTransferred.Add(1)
		r.c.bytesTransferred.Add(w.info.Size)
		w.task.done(key, nil, &state.FileRecord{Path: key, Size: w.info.Size, SHA256: w.info.SHA256,
			Reason: "dry run: would copy (" + w.reason + ")"}, nil)
		return
	}

	var (
		entry   state.FileEntry
		resent  bool
		err     error
		resumed resumeNote // across attempts: bytes an earlier run uploaded
	)
	attempts := r.e.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	backoff := r.e.Backoff
	if backoff <= 0 {
		backoff = 250 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		if w.act == actVerify {
			entry, resent, err = r.verifyFile(ctx, w.info, &resumed)
		} else {
			entry, err = r.transfer(ctx, w.info, &resumed)
		}
		r.brk.attempt(err)
		if err == nil || ctx.Err() != nil || attempt >= attempts || !retryable(err) {
			break
		}
		r.log.Warn("retrying file", slog.String("path", key), slog.Int("attempt", attempt), slog.Any("err", err))
		if errors.Is(err, errSourceChanged) {
			if info, serr := r.p.Source.Stat(ctx, key); serr == nil {
				w.info = info
			}
		}
		select {
		case <-time.After(backoff << (2 * (attempt - 1))):
		case <-ctx.Done():
		}
	}

	if err != nil {
		// Not transferred: the resumed bytes are not part of this job's.
		r.c.bytesResumed.Add(-resumed.bytes)
	}
	switch {
	case err == nil && w.act == actVerify && !resent:
		r.c.filesUnchanged.Add(1)
		w.task.done(key, &entry, nil, nil)
	case err == nil:
		reason := w.reason
		if resent {
			reason = "re-sent: the destination content differed from the source"
		}
		r.c.filesTransferred.Add(1)
		r.c.bytesTransferred.Add(w.info.Size)
		w.task.done(key, &entry, &state.FileRecord{Path: key, Size: w.info.Size, SHA256: entry.SHA256, Reason: reason}, nil)
	case ctx.Err() != nil:
		w.task.release()
	case errors.Is(err, remote.ErrNotExist) && !isDestErr(err):
		r.c.filesSkipped.Add(1)
		r.c.bytesSkipped.Add(w.info.Size)
		r.pend(state.FileRecord{Path: key, Size: w.info.Size, Reason: "removed from the source before it could be copied"})
		w.task.release()
	default:
		r.c.filesFailed.Add(1)
		r.c.bytesFailed.Add(w.info.Size)
		r.log.Warn("file failed", slog.String("path", key), slog.Any("err", err))
		w.task.done(key, nil, nil, &state.FileRecord{Path: key, Size: w.info.Size, Reason: err.Error()})
	}
}

func retryable(err error) bool {
	return remote.IsRetryable(err) || errors.Is(err, errSourceChanged) || errors.Is(err, remote.ErrChecksum)
}

// destErr marks an error that came from the destination store.
type destErr struct{ err error }

func (d destErr) Error() string { return "destination: " + d.err.Error() }
func (d destErr) Unwrap() error { return d.err }

func isDestErr(err error) bool {
	var d destErr
	return errors.As(err, &d)
}

// resumeNote follows one file through its attempts: bytes is how much of
// it an earlier run had uploaded (the parts of a recorded resumable upload
// found at the first attempt), and is counted in bytesResumed. Parts this
// run sends are never counted as resumed, even when a later attempt of the
// same file continues them; an upload that starts over resets bytes to 0.
type resumeNote struct {
	seen  bool
	bytes int64
}

func (r *run) noteResumed(n *resumeNote, offset int64, fresh bool) {
	switch {
	case fresh:
		r.c.bytesResumed.Add(-n.bytes)
		n.seen, n.bytes = true, 0
	case !n.seen:
		r.c.bytesResumed.Add(offset)
		n.seen, n.bytes = true, offset
	}
}

// transfer copies one file and returns its new index entry.
func (r *run) transfer(ctx context.Context, src remote.ObjectInfo, resumed *resumeNote) (state.FileEntry, error) {
	if rp, ok := r.p.Dest.(remote.ResumablePutter); ok {
		threshold := r.p.MultipartThreshold
		if threshold <= 0 {
			threshold = rp.PartSize()
		}
		if src.Size > threshold {
			return r.transferResumable(ctx, rp, src, resumed)
		}
	}
	rc, err := r.p.Source.Open(ctx, src.Key, 0, -1)
	if err != nil {
		return state.FileEntry{}, fmt.Errorf("open source: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(rc, h), moved: &r.c.bytesMoved}
	// The source's recorded SHA-256 (S3 metadata, a local xattr) is not
	// passed on: another tool may have changed the content and kept it, and
	// a store given a wrong hash refuses the Put, so the file would fail on
	// every run. What is copied is the bytes read; verified compares their
	// hash with the one the destination computed of what it received.
	meta := remote.PutMeta{ModTime: src.ModTime}
	put, err := r.p.Dest.Put(ctx, src.Key, cr, src.Size, meta)
	if err != nil {
		r.c.bytesMoved.Add(-cr.n)
		if cr.readErr != nil {
			return state.FileEntry{}, fmt.Errorf("read source: %w", cr.readErr)
		}
		// A short or long read is the source changing under us — unless
		// the source is as it was, and the destination stopped reading
		// (disk full, connection lost): then its error is the one to keep.
		if cr.n != src.Size && !errors.Is(err, context.Canceled) && r.sourceChanged(ctx, src) {
			return state.FileEntry{}, fmt.Errorf("%w (read %d of %d bytes)", errSourceChanged, cr.n, src.Size)
		}
		return state.FileEntry{}, destErr{err}
	}
	r.c.bytesSent.Add(cr.n)
	sum := hex.EncodeToString(h.Sum(nil))
	return r.verified(ctx, src, put, sum)
}

// sourceChanged reports whether the source file no longer has the size and
// mtime it was listed with, or can no longer be looked at.
func (r *run) sourceChanged(ctx context.Context, src remote.ObjectInfo) bool {
	now, err := r.p.Source.Stat(ctx, src.Key)
	return err != nil || now.Size != src.Size || !now.ModTime.Equal(src.ModTime)
}

// verified checks what the destination stored against the source's hash and
// builds the index entry.
func (r *run) verified(ctx context.Context, src, put remote.ObjectInfo, sum string) (state.FileEntry, error) {
	if src.SHA256 != "" && src.SHA256 != sum {
		// The source's recorded hash is stale or wrong; what we read is
		// what we copied, so trust the bytes.
		r.log.Debug("source checksum metadata was stale", slog.String("path", src.Key))
	}
	switch r.p.Verify {
	case VerifyTransferred, VerifyAll:
		if put.SHA256 == "" {
			return state.FileEntry{}, destErr{fmt.Errorf("%s: the destination reported no checksum to verify against", src.Key)}
		}
		if put.SHA256 != sum {
			return state.FileEntry{}, destErr{fmt.Errorf("%w: %s: source %s, destination %s", remote.ErrChecksum, src.Key, sum, put.SHA256)}
		}
	}
	if r.p.Verify == VerifyAll {
		got, err := hashObject(ctx, r.p.Dest, src.Key)
		if err != nil {
			return state.FileEntry{}, destErr{fmt.Errorf("re-read: %w", err)}
		}
		if got != sum {
			return state.FileEntry{}, destErr{fmt.Errorf("%w: %s: re-read of the destination gave %s, source %s", remote.ErrChecksum, src.Key, got, sum)}
		}
	}
	return state.FileEntry{Size: src.Size, ModTime: src.ModTime, SHA256: sum, DestETag: put.ETag,
		DestModTime: put.ModTime, VerifiedAt: time.Now().UTC()}, nil
}

// verifyFile re-reads both sides of a file the index says is in sync, and
// re-sends it when the destination differs. resent reports a re-send.
func (r *run) verifyFile(ctx context.Context, src remote.ObjectInfo, resumed *resumeNote) (entry state.FileEntry, resent bool, err error) {
	srcSum, err := hashObject(ctx, r.p.Source, src.Key)
	if err != nil {
		return entry, false, fmt.Errorf("re-read source: %w", err)
	}
	dstSum, err := hashObject(ctx, r.p.Dest, src.Key)
	if err != nil && !errors.Is(err, remote.ErrNotExist) {
		return entry, false, destErr{fmt.Errorf("re-read: %w", err)}
	}
	if err == nil && dstSum == srcSum {
		dst, serr := r.p.Dest.Stat(ctx, src.Key)
		if serr != nil {
			return entry, false, destErr{serr}
		}
		return state.FileEntry{Size: src.Size, ModTime: src.ModTime, SHA256: srcSum, DestETag: dst.ETag,
			DestModTime: dst.ModTime, VerifiedAt: time.Now().UTC()}, false, nil
	}
	r.log.Warn("destination differs from the source; re-sending", slog.String("path", src.Key))
	entry, err = r.transfer(ctx, src, resumed)
	return entry, true, err
}

func hashObject(ctx context.Context, s remote.Store, key string) (string, error) {
	rc, err := s.Open(ctx, key, 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// transferResumable uploads a large file in parts, recording every part in
// the state database as it finishes, so that a killed job continues where it
// was: it sends only the parts the destination does not hold.
func (r *run) transferResumable(ctx context.Context, rp remote.ResumablePutter, src remote.ObjectInfo, resumed *resumeNote) (state.FileEntry, error) {
	db := r.e.DB
	partSize := rp.PartSize()
	up, ok, err := db.GetUpload(r.p.Name, src.Key)
	if err != nil {
		return state.FileEntry{}, fmt.Errorf("read upload record: %w", err)
	}
	h := sha256.New()
	// No hash state: part 1 is not recorded yet, the hash starts afresh.
	// A source ETag other than the recorded one is a file rewritten with
	// its size and mtime kept: the parts held are of its old content.
	if ok && (up.Size != src.Size || !up.ModTime.Equal(src.ModTime) || up.PartSize != partSize ||
		(up.SourceETag != "" && up.SourceETag != src.ETag) ||
		(len(up.SourceSHA256State) > 0 && h.(encoding.BinaryUnmarshaler).UnmarshalBinary(up.SourceSHA256State) != nil)) {
		r.log.Info("discarding an upload that can no longer be used", slog.String("path", src.Key))
		r.abortUpload(ctx, rp, up)
		ok = false
		h.Reset()
	}
	var held map[int]state.UploadPart
	if ok {
		held, err = r.heldParts(ctx, rp, src, up)
		if errors.Is(err, remote.ErrNotExist) && isDestErr(err) && ctx.Err() == nil {
			// The store forgot the upload (expired, or aborted by a
			// lifecycle rule): start over.
			r.log.Info("the destination no longer has the upload; starting over", slog.String("path", src.Key))
			_ = db.DeleteUpload(r.p.Name, src.Key)
			ok = false
			h.Reset()
		} else if err != nil {
			return state.FileEntry{}, err
		}
	}
	var pre *prehash
	if !ok {
		held = nil
		meta := remote.PutMeta{ModTime: src.ModTime}
		if l, isLocal := r.p.Source.(remote.Local); isLocal && l.IsLocal() {
			// Hashing a local file first is cheap next to the upload, and
			// lets the destination record the hash from the start (on S3
			// it would otherwise copy the whole object onto itself) and
			// refuse the object if the file changes during the upload.
			// The same pass hashes the parts, which then go out with
			// their SHA-256 known: the upload hashes nothing again.
			pre, err = r.prehash(ctx, src, partSize)
			if err != nil {
				return state.FileEntry{}, err
			}
			meta.SHA256 = pre.sum
		}
		id, err := rp.InitUpload(ctx, src.Key, meta)
		if err != nil {
			return state.FileEntry{}, destErr{fmt.Errorf("start upload: %w", err)}
		}
		up = &state.Upload{Plan: r.p.Name, Key: src.Key, UploadID: id, Size: src.Size, ModTime: src.ModTime,
			PartSize: partSize, SourceETag: src.ETag, Created: time.Now().UTC()}
		if err := db.PutUpload(up); err != nil {
			return state.FileEntry{}, fmt.Errorf("record upload: %w", err)
		}
	}
	var heldBytes int64
	for _, p := range held {
		heldBytes += p.Size
	}
	r.noteResumed(resumed, heldBytes, !ok)
	if heldBytes > 0 {
		r.log.Info("resuming upload", slog.String("path", src.Key), slog.Int64("held", heldBytes),
			slog.Int("parts", len(held)))
	}
	if err := r.uploadParts(ctx, rp, src, up, held, h, pre); err != nil {
		return state.FileEntry{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if pre != nil {
		sum = pre.sum
	}
	parts := make([]remote.Part, len(up.Parts))
	for i, p := range up.Parts {
		parts[i] = remote.Part{Number: p.Number, Size: p.Size, ETag: p.ETag, SHA256: p.SHA256}
	}
	put, err := rp.CompleteUpload(ctx, src.Key, up.UploadID, parts, remote.PutMeta{ModTime: src.ModTime, SHA256: sum})
	if err != nil {
		if errors.Is(err, remote.ErrNotExist) && ctx.Err() == nil {
			// The store forgot the upload (expired, or aborted by a
			// lifecycle rule): forget it too, or every later run would
			// try to complete it again. The next attempt starts over.
			_ = db.DeleteUpload(r.p.Name, src.Key)
			return state.FileEntry{}, destErr{remote.Retryable(fmt.Errorf("complete upload %s: it vanished: %w", up.UploadID, err))}
		}
		if errors.Is(err, remote.ErrChecksum) && ctx.Err() == nil {
			// The parts do not hash to what the upload was started for:
			// the file changed while it was read. The store kept nothing;
			// forget the upload and copy the file afresh.
			_ = db.DeleteUpload(r.p.Name, src.Key)
			return state.FileEntry{}, fmt.Errorf("%w: %v", errSourceChanged, err)
		}
		return state.FileEntry{}, destErr{fmt.Errorf("complete upload: %w", err)}
	}
	if err := db.DeleteUpload(r.p.Name, src.Key); err != nil {
		r.log.Warn("forget finished upload", slog.Any("err", err))
	}
	return r.verified(ctx, src, put, sum)
}

// heldParts returns the parts of the recorded upload up that need not be
// sent again, by number. A store that is a remote.PartLister is asked which
// parts it holds; a part counts when the store holds it with the part's size
// and its SHA-256 — the one recorded, or for a part the record lacks (the
// process died between the store's answer and the record) the source part's
// — or, when the store keeps no SHA-256, the recorded ETag. A recorded part
// the store lacks is left out, to be sent again. A store that cannot list is
// trusted to hold every recorded part. An upload the store no longer knows
// is a destErr wrapping remote.ErrNotExist.
func (r *run) heldParts(ctx context.Context, rp remote.ResumablePutter, src remote.ObjectInfo, up *state.Upload) (map[int]state.UploadPart, error) {
	recorded := make(map[int]state.UploadPart, len(up.Parts))
	for _, p := range up.Parts {
		recorded[p.Number] = p
	}
	pl, ok := rp.(remote.PartLister)
	if !ok {
		return recorded, nil
	}
	listed, err := pl.ListParts(ctx, src.Key, up.UploadID)
	if err != nil {
		return nil, destErr{fmt.Errorf("list parts of upload %s: %w", up.UploadID, err)}
	}
	held := make(map[int]state.UploadPart, len(listed))
	unrecorded := false
	for _, lp := range listed {
		off := int64(lp.Number-1) * up.PartSize
		if lp.Number < 1 || off >= src.Size || lp.Size != min(up.PartSize, src.Size-off) {
			continue
		}
		p := state.UploadPart{Number: lp.Number, Size: lp.Size, SHA256: lp.SHA256, ETag: lp.ETag}
		rec, isRec := recorded[lp.Number]
		switch {
		case lp.SHA256 != "" && isRec && rec.SHA256 != "":
			if rec.SHA256 == lp.SHA256 {
				held[lp.Number] = p
			}
		case lp.SHA256 != "":
			sum, err := r.hashRange(ctx, src.Key, off, lp.Size)
			if err != nil {
				return nil, err
			}
			if sum != lp.SHA256 {
				break
			}
			held[lp.Number] = p
			if !isRec && r.resume {
				// Sent by an earlier attempt of this job that died
				// before it could count it.
				r.c.bytesSent.Add(p.Size)
				unrecorded = true
			}
		case isRec && rec.ETag == lp.ETag:
			p.SHA256 = rec.SHA256
			held[lp.Number] = p
		}
	}
	if unrecorded {
		r.checkpoint()
	}
	return held, nil
}

// hashRange returns the hex SHA-256 of size bytes of the source file key
// from off; fewer bytes is errSourceChanged.
func (r *run) hashRange(ctx context.Context, key string, off, size int64) (string, error) {
	rc, err := r.p.Source.Open(ctx, key, off, size)
	if err != nil {
		return "", fmt.Errorf("open source: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	if n, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("read source: %w", err)
	} else if n != size {
		return "", fmt.Errorf("%w (%d bytes at %d, want %d)", errSourceChanged, n, off, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (r *run) abortUpload(ctx context.Context, rp remote.ResumablePutter, up *state.Upload) {
	if err := rp.AbortUpload(ctx, up.Key, up.UploadID); err != nil {
		r.log.Warn("abort upload", slog.String("path", up.Key), slog.Any("err", err))
	}
	if err := r.e.DB.DeleteUpload(up.Plan, up.Key); err != nil {
		r.log.Warn("forget upload", slog.String("path", up.Key), slog.Any("err", err))
	}
}

// sweepUploads aborts recorded uploads that this full job did not finish or
// continue: their file is gone, filtered out, or was copied another way.
func (r *run) sweepUploads(ctx context.Context) {
	rp, ok := r.p.Dest.(remote.ResumablePutter)
	if !ok || r.opt.Changes != nil || r.p.Mode != ModeScan || r.p.DryRun || r.c.filesFailed.Load() > 0 {
		return
	}
	var stale []*state.Upload
	err := r.e.DB.ListUploads(r.p.Name, func(u *state.Upload) error {
		if u.Created.Before(r.start) {
			stale = append(stale, u)
		}
		return nil
	})
	if err != nil {
		r.log.Warn("list recorded uploads", slog.Any("err", err))
		return
	}
	for _, u := range stale {
		r.abortUpload(ctx, rp, u)
	}
}

// partsPerFile is how many parts of one file upload at once at least; a
// plan with more workers sends up to Workers parts (within the engine's
// part slots).
const partsPerFile = 4

// partResult is one finished part upload.
type partResult struct {
	n    int
	part remote.Part
	err  error
}

// prehash is what a pass over a source file before its upload computes:
// the file's SHA-256 and, for each part of the upload, the part's SHA-256
// and the file's hash state after it.
type prehash struct {
	sum    string
	parts  []string
	states [][]byte
}

// prehashBlock is how much of a file prehash reads at a time.
const prehashBlock = 1 << 20

// prehash reads src once, in blocks of prehashBlock bytes, each hashed
// into the whole file's hash and, on a second goroutine, its part's. A
// file that is no longer src.Size bytes long is errSourceChanged.
func (r *run) prehash(ctx context.Context, src remote.ObjectInfo, partSize int64) (*prehash, error) {
	rc, err := r.p.Source.Open(ctx, src.Key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("hash source: %w", err)
	}
	defer rc.Close()
	buf := make([]byte, prehashBlock)
	whole, part := sha256.New(), sha256.New()
	pre := &prehash{}
	var inPart int64 // bytes of the current part hashed
	for left := src.Size; left > 0; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		block := buf[:min(prehashBlock, left, partSize-inPart)]
		if _, err := io.ReadFull(rc, block); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w (shorter than %d bytes)", errSourceChanged, src.Size)
			}
			return nil, fmt.Errorf("hash source: %w", err)
		}
		done := make(chan struct{})
		go func() {
			part.Write(block)
			close(done)
		}()
		whole.Write(block)
		<-done
		left -= int64(len(block))
		inPart += int64(len(block))
		if inPart == partSize || left == 0 {
			st, err := whole.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return nil, err
			}
			pre.parts = append(pre.parts, hex.EncodeToString(part.Sum(nil)))
			pre.states = append(pre.states, st)
			part.Reset()
			inPart = 0
		}
	}
	if n, _ := rc.Read(buf[:1]); n > 0 {
		return nil, fmt.Errorf("%w (longer than %d bytes)", errSourceChanged, src.Size)
	}
	pre.sum = hex.EncodeToString(whole.Sum(nil))
	return pre, nil
}

// uploadParts sends the parts of src that held lacks, partsPerFile at once
// (and at most Engine.partSlots across the engine, which bounds memory: each
// part in flight holds one part-size buffer), and leaves every part of the
// upload in up.Parts. Each part is recorded in the state database as it
// finishes, in any order, so that a resume after a kill sends only what is
// missing.
//
// The source is read in order from the end of the run of parts, from 1, that
// the record's hash state covers (or from an earlier part to send again),
// and hashed into h — or, with pre, not hashed again: each part goes out
// with the SHA-256 pre says it has, which the store checks. Parts held are
// read for the hash but not sent. The record's hash state always covers the
// longest run of recorded parts from 1: a record that lengthens the run
// carries the state as of its new end.
func (r *run) uploadParts(ctx context.Context, rp remote.ResumablePutter, src remote.ObjectInfo, up *state.Upload, held map[int]state.UploadPart, h hash.Hash, pre *prehash) error {
	db := r.e.DB
	last := int((src.Size + up.PartSize - 1) / up.PartSize)
	done := make(map[int]state.UploadPart, last) // parts the store holds
	recorded := make(map[int]state.UploadPart, len(up.Parts))
	for _, p := range up.Parts {
		recorded[p.Number] = p
	}
	hashed := 0 // the record's hash state covers parts 1 to hashed
	for {
		if _, ok := recorded[hashed+1]; !ok {
			break
		}
		hashed++
	}
	first := hashed + 1 // the first part to read
	for n, p := range held {
		done[n] = p
	}
	for n := 1; n <= hashed; n++ {
		if _, ok := done[n]; !ok {
			first = n
			break
		}
	}
	states := map[int][]byte{} // the source hash state after part n, once read (n > hashed)
	vanished, changed := false, false
	// record notes a part the store holds, and records it when the record
	// lacks it or when it lengthens the hashed run.
	record := func(p state.UploadPart) error {
		done[p.Number] = p
		var st []byte
		for {
			if _, ok := done[hashed+1]; !ok {
				break
			}
			next, ok := states[hashed+1]
			if !ok {
				break
			}
			delete(states, hashed+1)
			hashed++
			st = next
		}
		if rec, ok := recorded[p.Number]; (ok && rec == p && st == nil) || vanished || changed {
			return nil
		}
		recorded[p.Number] = p
		return db.PutUploadPart(up.Plan, up.Key, up.UploadID, p, st)
	}
	defer func() {
		up.Parts = up.Parts[:0]
		for _, n := range slices.Sorted(maps.Keys(done)) {
			up.Parts = append(up.Parts, done[n])
		}
	}()
	if first > last {
		return nil
	}

	offset := int64(first-1) * up.PartSize
	rc, err := r.p.Source.Open(ctx, src.Key, offset, -1)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer rc.Close()
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := r.e.slots()
	perFile := min(max(partsPerFile, r.p.Workers), cap(slots))
	readErr := func(n int, err error) error {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w (part %d short)", errSourceChanged, n)
		}
		return fmt.Errorf("read source: %w", err)
	}
	// hashing is where the bytes of part n go besides a send: into h past
	// the hashed run, unless pre hashed them already.
	hashing := func(n int) io.Writer {
		if n <= hashed || pre != nil {
			return io.Discard
		}
		return h
	}
	// keepState keeps the hash state after part n, just read.
	keepState := func(n int) (err error) {
		switch {
		case n <= hashed:
		case pre != nil:
			states[n] = pre.states[n-1]
		default:
			states[n], err = h.(encoding.BinaryMarshaler).MarshalBinary()
		}
		return err
	}

	results := make(chan partResult, perFile)
	n := first
	inflight := 0
	var firstErr error
	for {
		// Start parts while there is room and work.
		for firstErr == nil && n <= last && inflight < perFile {
			size := min(up.PartSize, src.Size-offset)
			if p, ok := done[n]; ok {
				// Held: read for the hash only.
				if _, err := io.CopyN(hashing(n), rc, size); err != nil {
					firstErr = readErr(n, err)
				} else if err := keepState(n); err != nil {
					firstErr = err
				} else if err := record(p); err != nil {
					firstErr = fmt.Errorf("record upload progress: %w", err)
				}
				if firstErr != nil {
					cancel()
					break
				}
				offset += size
				n++
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-uctx.Done():
				firstErr = uctx.Err()
				continue
			}
			buf := r.e.partBuf(size)
			_, err := io.ReadFull(rc, buf)
			if err != nil {
				err = readErr(n, err)
			} else {
				hashing(n).Write(buf)
				err = keepState(n)
			}
			if err != nil {
				r.e.freePartBuf(buf)
				<-slots
				firstErr = err
				cancel()
				break
			}
			partSum := ""
			if pre != nil {
				partSum = pre.parts[n-1]
			}
			inflight++
			go func(n int, data []byte) {
				defer func() { r.e.freePartBuf(data); <-slots }()
				// A *bytes.Buffer lets a store take the bytes without a copy.
				part, err := rp.UploadPart(uctx, src.Key, up.UploadID, n, bytes.NewBuffer(data), int64(len(data)), partSum)
				results <- partResult{n: n, part: part, err: err}
			}(n, buf)
			offset += size
			n++
		}
		if inflight == 0 {
			break
		}
		res := <-results
		inflight--
		if res.err == nil {
			// A part the destination took: both sides answer, so a long
			// upload keeps the breaker from tripping on other files'
			// failures meanwhile.
			r.brk.attempt(nil)
		}
		if res.err != nil {
			if firstErr == nil {
				firstErr = res.err
				switch {
				case errors.Is(res.err, remote.ErrNotExist):
					// The store forgot the upload: start over next attempt.
					vanished = true
					_ = db.DeleteUpload(r.p.Name, src.Key)
					firstErr = destErr{fmt.Errorf("upload part %d: %w", res.n,
						remote.Retryable(fmt.Errorf("upload %s vanished: %w", up.UploadID, res.err)))}
				case pre != nil && errors.Is(res.err, remote.ErrChecksum):
					// The part is not what the pass before the upload read:
					// the file changed. The upload, started for the old
					// content, is of no use; the next attempt starts over.
					changed = true
					firstErr = fmt.Errorf("%w: part %d: %v", errSourceChanged, res.n, res.err)
				default:
					firstErr = destErr{fmt.Errorf("upload part %d: %w", res.n, firstErr)}
				}
				cancel()
			}
			continue
		}
		r.c.bytesMoved.Add(res.part.Size)
		r.c.bytesSent.Add(res.part.Size)
		// Parts the store accepted are recorded even after another part
		// failed: they are done, and a resume need not send them again.
		p := state.UploadPart{Number: res.part.Number, Size: res.part.Size, SHA256: res.part.SHA256, ETag: res.part.ETag}
		if err := record(p); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("record upload progress: %w", err)
			cancel()
		}
		// The part is recorded; so is the job's count of bytes sent.
		r.checkpoint()
	}
	if firstErr != nil {
		if changed {
			r.abortUpload(context.WithoutCancel(ctx), rp, up)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return firstErr
	}
	return nil
}

// countingReader counts bytes and remembers a read error of the source.
type countingReader struct {
	r       io.Reader
	n       int64
	moved   interface{ Add(int64) int64 }
	readErr error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.moved.Add(int64(n))
	if err != nil && err != io.EOF {
		c.readErr = err
	}
	return n, err
}

var _ hash.Hash = sha256.New()
