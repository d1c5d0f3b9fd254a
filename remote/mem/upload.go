package mem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrysync/ferry/remote"
)

var (
	_ remote.ResumablePutter = (*Store)(nil)
	_ remote.PartLister      = (*Store)(nil)
)

// DefaultPartSize is the PartSize of a new Store.
const DefaultPartSize = 1 << 20

// upload is a resumable upload in progress.
type upload struct {
	key   string
	meta  remote.PutMeta
	parts map[int]storedPart
}

type storedPart struct {
	data []byte
	info remote.Part
}

// SetPartSize sets the PartSize the store reports and enforces (tests use
// small parts). Call it before starting uploads.
func (s *Store) SetPartSize(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partSize = n
}

// PartSize implements remote.ResumablePutter.
func (s *Store) PartSize() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.partSize
}

// InitUpload implements remote.ResumablePutter.
func (s *Store) InitUpload(ctx context.Context, key string, meta remote.PutMeta) (string, error) {
	if err := remote.CheckKey(ctx, "init upload", key); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	id := "mem-upload-" + strconv.FormatUint(s.gen, 16)
	s.uploads[id] = &upload{key: key, meta: meta, parts: make(map[int]storedPart)}
	return id, nil
}

// lookup returns the upload id of key, or an error wrapping ErrNotExist.
// The caller holds s.mu.
func (s *Store) lookup(op, key, id string) (*upload, error) {
	up, ok := s.uploads[id]
	if !ok || up.key != key {
		return nil, fmt.Errorf("%s %s: upload %q: %w", op, key, id, remote.ErrNotExist)
	}
	return up, nil
}

// UploadPart implements remote.ResumablePutter. Sending a part number again
// replaces that part.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64, sha256 string) (remote.Part, error) {
	if err := remote.CheckKey(ctx, "upload part", key); err != nil {
		return remote.Part{}, err
	}
	if number < 1 || number > 10000 {
		return remote.Part{}, fmt.Errorf("upload part %s: part number %d is outside 1..10000", key, number)
	}
	s.mu.RLock()
	_, err := s.lookup("upload part", key, uploadID)
	partSize := s.partSize
	s.mu.RUnlock()
	if err != nil {
		return remote.Part{}, err
	}
	if size > partSize {
		return remote.Part{}, fmt.Errorf("upload part %s: part %d of %d bytes is larger than the part size %d", key, number, size, partSize)
	}
	data, sum, err := readAll(ctx, r, size)
	if err != nil {
		return remote.Part{}, fmt.Errorf("upload part %s #%d: %w", key, number, err)
	}
	if sha256 != "" && !strings.EqualFold(sha256, sum) {
		return remote.Part{}, fmt.Errorf("upload part %s #%d: %w: the caller gave SHA-256 %s, the part hashes to %s", key, number, remote.ErrChecksum, sha256, sum)
	}
	part := remote.Part{Number: number, Size: int64(len(data)), SHA256: sum}
	s.mu.Lock()
	defer s.mu.Unlock()
	up, err := s.lookup("upload part", key, uploadID) // it may have been aborted meanwhile
	if err != nil {
		return remote.Part{}, err
	}
	s.gen++
	part.ETag = "mem-part-" + strconv.FormatUint(s.gen, 16)
	up.parts[number] = storedPart{data: data, info: part}
	return part, nil
}

// ListParts implements remote.PartLister.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]remote.Part, error) {
	if err := remote.CheckKey(ctx, "list parts", key); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	up, err := s.lookup("list parts", key, uploadID)
	if err != nil {
		return nil, err
	}
	parts := make([]remote.Part, 0, len(up.parts))
	for _, n := range slices.Sorted(maps.Keys(up.parts)) {
		parts = append(parts, up.parts[n].info)
	}
	return parts, nil
}

// CompleteUpload implements remote.ResumablePutter. parts must be in
// ascending number order and match what was uploaded (ETags); every part
// but the last must have PartSize bytes. A meta.SHA256 that the assembled
// content does not hash to fails with ErrChecksum and keeps the upload (to
// be aborted).
func (s *Store) CompleteUpload(ctx context.Context, key, uploadID string, parts []remote.Part, meta remote.PutMeta) (remote.ObjectInfo, error) {
	if err := remote.CheckKey(ctx, "complete upload", key); err != nil {
		return remote.ObjectInfo{}, err
	}
	s.mu.Lock()
	up, err := s.lookup("complete upload", key, uploadID)
	if err != nil {
		s.mu.Unlock()
		return remote.ObjectInfo{}, err
	}
	if len(parts) == 0 {
		s.mu.Unlock()
		return remote.ObjectInfo{}, fmt.Errorf("complete upload %s: no parts", key)
	}
	var buf bytes.Buffer
	for i, p := range parts {
		stored, ok := up.parts[p.Number]
		switch {
		case i > 0 && p.Number <= parts[i-1].Number:
			err = fmt.Errorf("part %d comes after part %d; parts must be in ascending order", p.Number, parts[i-1].Number)
		case !ok || stored.info.ETag != p.ETag:
			err = fmt.Errorf("part %d (ETag %q) was not uploaded: %w", p.Number, p.ETag, remote.ErrNotExist)
		case i < len(parts)-1 && stored.info.Size != s.partSize:
			err = fmt.Errorf("part %d has %d bytes; every part but the last must have %d", p.Number, stored.info.Size, s.partSize)
		}
		if err != nil {
			s.mu.Unlock()
			return remote.ObjectInfo{}, fmt.Errorf("complete upload %s: %w", key, err)
		}
		buf.Write(stored.data)
	}
	s.mu.Unlock()

	sum := sha256.Sum256(buf.Bytes())
	got := hex.EncodeToString(sum[:])
	if meta.SHA256 != "" && !strings.EqualFold(meta.SHA256, got) {
		return remote.ObjectInfo{}, fmt.Errorf("complete upload %s: %w: the parts hash to %s, the caller gave %s",
			key, remote.ErrChecksum, got, meta.SHA256)
	}
	mtime := meta.ModTime
	if mtime.IsZero() {
		mtime = up.meta.ModTime
	}
	if mtime.IsZero() {
		mtime = time.Now()
	}
	s.mu.Lock()
	_, still := s.uploads[uploadID]
	delete(s.uploads, uploadID)
	s.mu.Unlock()
	if !still {
		return remote.ObjectInfo{}, fmt.Errorf("complete upload %s: upload %q: %w", key, uploadID, remote.ErrNotExist)
	}
	return s.set(key, &object{data: buf.Bytes(), modTime: mtime.Round(0), sha256: got}), nil
}

// AbortUpload implements remote.ResumablePutter.
func (s *Store) AbortUpload(ctx context.Context, key, uploadID string) error {
	if err := remote.CheckKey(ctx, "abort upload", key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if up, ok := s.uploads[uploadID]; ok && up.key == key {
		delete(s.uploads, uploadID)
	}
	return nil
}
