package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferrysync/ferry/remote"
)

// MultipartPutter is the resumable upload ability: a caller (the sync
// engine) uploads a large object part by part, persists the Upload and the
// finished Parts, and after a crash continues from the last finished part
// instead of starting over.
//
// Parts are numbered from 1 to 10,000; every part but the last must be at
// least MinPartSize bytes. Nothing is visible at the key until
// CompleteMultipart; an upload that is never completed must be aborted (or
// removed by a bucket lifecycle rule) to free its storage.
type MultipartPutter interface {
	// InitMultipart starts an upload to key that will record meta (mtime, and
	// the SHA-256 when already known).
	InitMultipart(ctx context.Context, key string, meta remote.PutMeta) (Upload, error)
	// UploadMultipartPart sends part number n, size bytes read from r. The server
	// verifies the part's SHA-256, which the returned Part records: sha256
	// when the caller gives it (hex), else computed here first.
	UploadMultipartPart(ctx context.Context, up Upload, n int, r io.Reader, size int64, sha256 string) (Part, error)
	// ListMultipartParts returns the parts the server holds for the upload,
	// in order, or an error wrapping remote.ErrNotExist when the upload is
	// gone (completed, aborted or expired).
	ListMultipartParts(ctx context.Context, up Upload) ([]Part, error)
	// CompleteMultipart makes the object from parts and returns its info.
	// sha256 is the hex SHA-256 of the whole content as the caller computed
	// it; when the upload was started with a SHA-256 and sha256 differs, the
	// upload is aborted and the error wraps remote.ErrChecksum. When the
	// upload was started without one, sha256 is recorded afterwards (see
	// Put). On any error the upload is left as it was, for a retry or an
	// AbortMultipart.
	CompleteMultipart(ctx context.Context, up Upload, parts []Part, sha256 string) (remote.ObjectInfo, error)
	// AbortMultipart discards the upload and its parts. Aborting an upload
	// that is gone is not an error.
	AbortMultipart(ctx context.Context, up Upload) error
}

// Upload identifies a multipart upload in progress. Its fields are plain
// data, to be persisted by a caller that wants to resume.
type Upload struct {
	Key      string    `json:"key"`
	UploadID string    `json:"upload_id"`
	ModTime  time.Time `json:"mtime"`
	// SHA256 is the hex SHA-256 recorded at InitMultipart, or "".
	SHA256 string `json:"sha256,omitempty"`
}

// Part is one finished part of an upload.
type Part struct {
	Number int    `json:"n"`
	Size   int64  `json:"size"`
	ETag   string `json:"etag"`
	SHA256 string `json:"sha256"` // hex SHA-256 of the part
}

// Put stores the object. Up to PartSize bytes are buffered, hashed and sent
// in one PUT; larger (or longer than announced unknown-size) content goes up
// in parts of PartSize, hashed as it is read. Every request carries the
// SHA-256 of its body (signed payload hash and x-amz-checksum-sha256), so the
// server refuses a damaged body. The object records x-amz-meta-mtime and
// x-amz-meta-sha256.
//
// A multipart upload whose SHA-256 was not given in meta learns it only at
// the end, after the object's metadata is fixed; Put then records it with a
// copy of the object onto itself that replaces the metadata (metadata-only
// on MinIO; a server-side data copy on AWS, done only up to 5 GiB — larger
// objects then have no x-amz-meta-sha256 and Stat reports SHA256 "").
// Callers that know the hash beforehand should pass it.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, meta remote.PutMeta) (remote.ObjectInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	fail := func(err error) (remote.ObjectInfo, error) {
		return remote.ObjectInfo{}, fmt.Errorf("s3 put %s: %w", remote.PrintableKey(key), err)
	}
	want, err := normalizeSHA256(meta.SHA256)
	if err != nil {
		return fail(err)
	}
	if size > MaxObjectSize {
		return fail(fmt.Errorf("size %d is larger than S3's limit of 5 TiB", size))
	}
	meta.SHA256 = want
	if meta.ModTime.IsZero() {
		meta.ModTime = time.Now()
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	if size > s.partSize {
		return s.putMultipart(ctx, key, r, size, meta, nil)
	}
	if b, ok := r.(interface{ Bytes() []byte }); ok && size >= 0 && int64(len(b.Bytes())) == size {
		// The content is in memory already (e.g. a *bytes.Buffer): no copy.
		return s.putSingle(ctx, key, name, b.Bytes(), meta)
	}
	// Read size bytes, or up to a part's worth when the size is unknown.
	var buf []byte
	if size >= 0 && size < MiB {
		buf = make([]byte, size)
	} else {
		pb := s.getBuf(s.partSize)
		defer s.putBuf(pb)
		buf = *pb
		if size >= 0 {
			buf = buf[:size]
		}
	}
	n, err := io.ReadFull(r, buf)
	switch {
	case size >= 0 && err != nil:
		return fail(fmt.Errorf("read source: got %d of %d bytes: %w", n, size, err))
	case size >= 0:
		if err := expectEOF(r, size); err != nil {
			return fail(err)
		}
	case err == nil: // unknown size, at least a whole part: buf is part 1
		return s.putMultipart(ctx, key, r, -1, meta, buf)
	case err != io.EOF && err != io.ErrUnexpectedEOF:
		return fail(fmt.Errorf("read source: %w", err))
	}
	return s.putSingle(ctx, key, name, buf[:n], meta)
}

// expectEOF checks that r has nothing after the size bytes read.
func expectEOF(r io.Reader, size int64) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n > 0 {
		return fmt.Errorf("read source: more than the announced %d bytes", size)
	}
	if err != io.EOF {
		return fmt.Errorf("read source after %d bytes: %w", size, err)
	}
	return nil
}

// getBuf returns a buffer of size bytes, from the pool when it fits a part.
func (s *Store) getBuf(size int64) *[]byte {
	if size <= s.partSize {
		pb := s.bufs.Get().(*[]byte)
		*pb = (*pb)[:size]
		return pb
	}
	b := make([]byte, size)
	return &b
}

// putBuf returns a buffer from getBuf to the pool.
func (s *Store) putBuf(pb *[]byte) {
	if int64(cap(*pb)) == s.partSize {
		s.bufs.Put(pb)
	}
}

// putSingle sends data in one PUT. The SHA-256 the caller gives is not
// computed again: it is the signed payload hash and x-amz-checksum-sha256,
// which the server checks against the body (a mismatch is ErrChecksum).
func (s *Store) putSingle(ctx context.Context, key, name string, data []byte, meta remote.PutMeta) (remote.ObjectInfo, error) {
	var sum []byte
	got := meta.SHA256 // normalized by Put: 64 lower-case hex digits, or ""
	if got != "" {
		sum, _ = hex.DecodeString(got)
	} else {
		s := sha256.Sum256(data)
		sum, got = s[:], hex.EncodeToString(s[:])
	}
	md := userMetadata(meta.ModTime, got)
	md["x-amz-checksum-sha256"] = checksumHeader(sum)
	up, err := s.core.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)), "", got, minio.PutObjectOptions{
		UserMetadata:         md,
		DisableContentSha256: true, // the signed payload hash is got: the server checks it
	})
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("s3 put %s: %w", remote.PrintableKey(key), translate(err))
	}
	return remote.ObjectInfo{Key: key, Size: int64(len(data)), ModTime: meta.ModTime, ETag: up.ETag, SHA256: got}, nil
}

// partPlan returns the part size for an object of size bytes (-1:
// unknown): the store's part size, or more when size would need more than
// MaxParts parts.
func (s *Store) partPlan(size int64) int64 {
	ps := s.partSize
	if size > ps*MaxParts {
		ps = (size + MaxParts - 1) / MaxParts
		ps = (ps + MiB - 1) / MiB * MiB
	}
	return ps
}

// putMultipart uploads r in parts. first, when not nil, is the first part
// already read (size unknown).
func (s *Store) putMultipart(ctx context.Context, key string, r io.Reader, size int64, meta remote.PutMeta, first []byte) (ret remote.ObjectInfo, retErr error) {
	up, err := s.InitMultipart(ctx, key, meta)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	defer func() {
		if retErr != nil {
			if aerr := s.abort(ctx, up); aerr != nil {
				retErr = errors.Join(retErr, aerr)
			}
		}
	}()
	fail := func(err error) (remote.ObjectInfo, error) {
		return remote.ObjectInfo{}, fmt.Errorf("s3 put %s: %w", remote.PrintableKey(key), err)
	}

	ps := s.partPlan(size)
	pb := s.getBuf(ps)
	defer s.putBuf(pb)
	whole := sha256.New()
	var parts []Part
	var total int64
	for n := 1; ; n++ {
		var data []byte
		if n == 1 && first != nil {
			data = first
		} else {
			want := ps
			if size >= 0 {
				want = min(ps, size-total)
				if want == 0 {
					break
				}
			}
			buf := (*pb)[:want]
			got, err := io.ReadFull(r, buf)
			switch {
			case err == nil:
			case size < 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
			case size >= 0:
				return fail(fmt.Errorf("read source: got %d of %d bytes: %w", total+int64(got), size, err))
			default:
				return fail(fmt.Errorf("read source: %w", err))
			}
			data = buf[:got]
			if len(data) == 0 {
				break // unknown size, ended on a part boundary
			}
		}
		if n > MaxParts {
			return fail(fmt.Errorf("content exceeds %d parts of %d bytes; give its size or raise the part size", MaxParts, ps))
		}
		whole.Write(data)
		p, err := s.uploadPart(ctx, up, n, data, "")
		if err != nil {
			return fail(err)
		}
		parts = append(parts, p)
		total += int64(len(data))
		if size < 0 && int64(len(data)) < ps {
			break
		}
	}
	if size >= 0 {
		if err := expectEOF(r, size); err != nil {
			return fail(err)
		}
	}
	got := hex.EncodeToString(whole.Sum(nil))
	info, err := s.complete(ctx, up, parts, got)
	if err != nil {
		return fail(err)
	}
	info.Size = total
	return info, nil
}

// InitMultipart starts a multipart upload; see MultipartPutter.
func (s *Store) InitMultipart(ctx context.Context, key string, meta remote.PutMeta) (Upload, error) {
	name, err := s.object(key)
	if err != nil {
		return Upload{}, err
	}
	sha, err := normalizeSHA256(meta.SHA256)
	if err != nil {
		return Upload{}, fmt.Errorf("s3 upload %s: %w", remote.PrintableKey(key), err)
	}
	if meta.ModTime.IsZero() {
		meta.ModTime = time.Now()
	}
	md := userMetadata(meta.ModTime, sha)
	md["x-amz-checksum-algorithm"] = "SHA256"
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, name, minio.PutObjectOptions{UserMetadata: md})
	if err != nil {
		return Upload{}, fmt.Errorf("s3 upload %s: start: %w", remote.PrintableKey(key), translate(err))
	}
	return Upload{Key: key, UploadID: id, ModTime: meta.ModTime, SHA256: sha}, nil
}

// UploadMultipartPart sends one part; see MultipartPutter. It reads the part into
// memory first (the signed request carries its SHA-256).
func (s *Store) UploadMultipartPart(ctx context.Context, up Upload, n int, r io.Reader, size int64, sha256 string) (Part, error) {
	if size < 0 || size > MaxPartSize {
		return Part{}, fmt.Errorf("s3 upload %s part %d: size %d out of range 0..%d", remote.PrintableKey(up.Key), n, size, int64(MaxPartSize))
	}
	sha256, err := normalizeSHA256(sha256)
	if err != nil {
		return Part{}, fmt.Errorf("s3 upload %s part %d: %w", remote.PrintableKey(up.Key), n, err)
	}
	if b, ok := r.(interface{ Bytes() []byte }); ok && int64(len(b.Bytes())) == size {
		// The part is in memory already (e.g. a *bytes.Buffer): no copy.
		return s.uploadPart(ctx, up, n, b.Bytes(), sha256)
	}
	pb := s.getBuf(size)
	defer s.putBuf(pb)
	if got, err := io.ReadFull(r, *pb); err != nil {
		return Part{}, fmt.Errorf("s3 upload %s part %d: read source: got %d of %d bytes: %w", remote.PrintableKey(up.Key), n, got, size, err)
	}
	return s.uploadPart(ctx, up, n, *pb, sha256)
}

// uploadPart sends data as part n. hexSum, when not "", is its SHA-256 as
// the caller computed it: it is not computed again but signed as the
// payload hash, which the server checks against the body (a mismatch is
// ErrChecksum).
func (s *Store) uploadPart(ctx context.Context, up Upload, n int, data []byte, hexSum string) (Part, error) {
	name, err := s.object(up.Key)
	if err != nil {
		return Part{}, err
	}
	if n < 1 || n > MaxParts {
		return Part{}, fmt.Errorf("s3 upload %s: part number %d out of range 1..%d", remote.PrintableKey(up.Key), n, MaxParts)
	}
	var sum []byte
	if hexSum != "" {
		sum, _ = hex.DecodeString(hexSum)
	} else {
		s := sha256.Sum256(data)
		sum, hexSum = s[:], hex.EncodeToString(s[:])
	}
	hdr := make(http.Header, 1)
	hdr.Set("X-Amz-Checksum-Sha256", checksumHeader(sum))
	op, err := s.core.PutObjectPart(ctx, s.bucket, name, up.UploadID, n, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{
		Sha256Hex:            hexSum,
		CustomHeader:         hdr,
		DisableContentSha256: true, // the signed payload hash is hexSum: the server checks it
	})
	if err != nil {
		return Part{}, fmt.Errorf("s3 upload %s part %d: %w", remote.PrintableKey(up.Key), n, translate(err))
	}
	return Part{Number: n, Size: int64(len(data)), ETag: op.ETag, SHA256: hexSum}, nil
}

// ListMultipartParts returns the parts the server holds; see MultipartPutter.
func (s *Store) ListMultipartParts(ctx context.Context, up Upload) ([]Part, error) {
	name, err := s.object(up.Key)
	if err != nil {
		return nil, err
	}
	var parts []Part
	marker := 0
	for {
		res, err := s.core.ListObjectParts(ctx, s.bucket, name, up.UploadID, marker, 1000)
		if err != nil {
			return nil, fmt.Errorf("s3 upload %s: list parts: %w", remote.PrintableKey(up.Key), translate(err))
		}
		for _, p := range res.ObjectParts {
			parts = append(parts, Part{Number: p.PartNumber, Size: p.Size, ETag: strings.Trim(p.ETag, `"`), SHA256: checksumToHex(p.ChecksumSHA256)})
		}
		if !res.IsTruncated {
			return parts, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// CompleteMultipart finishes an upload; see MultipartPutter.
func (s *Store) CompleteMultipart(ctx context.Context, up Upload, parts []Part, sha string) (remote.ObjectInfo, error) {
	got, err := normalizeSHA256(sha)
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("s3 upload %s: %w", remote.PrintableKey(up.Key), err)
	}
	info, err := s.complete(ctx, up, parts, got)
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("s3 upload %s: %w", remote.PrintableKey(up.Key), err)
	}
	return info, nil
}

// complete checks the whole-object hash against the one given at the start
// (aborting on a mismatch), completes the upload, and records the hash
// afterwards when it was not known at the start.
func (s *Store) complete(ctx context.Context, up Upload, parts []Part, got string) (remote.ObjectInfo, error) {
	name, err := s.object(up.Key)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	if up.SHA256 != "" && got != "" && got != up.SHA256 {
		err := fmt.Errorf("content hashes to %s, caller gave %s: %w", got, up.SHA256, remote.ErrChecksum)
		if aerr := s.abort(ctx, up); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return remote.ObjectInfo{}, err
	}
	if len(parts) == 0 {
		return remote.ObjectInfo{}, errors.New("complete: no parts")
	}
	sorted := slices.SortedFunc(slices.Values(parts), func(a, b Part) int { return a.Number - b.Number })
	complete := make([]minio.CompletePart, len(sorted))
	var size int64
	for i, p := range sorted {
		complete[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag, ChecksumSHA256: hexToChecksum(p.SHA256)}
		size += p.Size
	}
	res, err := s.core.CompleteMultipartUpload(ctx, s.bucket, name, up.UploadID, complete, minio.PutObjectOptions{})
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("complete: %w", translate(err))
	}
	info := remote.ObjectInfo{Key: up.Key, Size: size, ModTime: up.ModTime, ETag: res.ETag, SHA256: up.SHA256}
	if info.SHA256 == "" && got != "" {
		// The Upload may have lost what InitUpload was told (a resume in
		// another process, or the remote.ResumablePutter adapter): the
		// object's metadata says whether the hash was recorded at the
		// start. One HEAD instead of a copy of the whole object.
		recorded, err := s.recordedSHA256(ctx, name)
		switch {
		case err == nil && recorded == got:
			info.SHA256 = got
			return info, nil
		case err == nil && recorded != "":
			// The content is not what the uploader announced at the start:
			// the source changed during the upload. Nothing wrong may stay.
			_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, name, minio.RemoveObjectOptions{})
			return remote.ObjectInfo{}, fmt.Errorf("content hashes to %s, the upload was started for %s: %w", got, recorded, remote.ErrChecksum)
		}
		info.SHA256 = got
		if etag, ok := s.recordSHA256(ctx, name, up, got, res.ETag, size); ok {
			info.ETag = etag
		}
	}
	return info, nil
}

// recordedSHA256 returns the x-amz-meta-sha256 an object carries, or "".
func (s *Store) recordedSHA256(ctx context.Context, name string) (string, error) {
	oi, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return "", translate(err)
	}
	_, sha := modTimeAndSHA(oi.UserMetadata, oi.LastModified)
	return sha, nil
}

// recordSHA256 adds x-amz-meta-sha256 to a just-completed object by copying
// it onto itself with replaced metadata, only if it is still the object we
// wrote (same ETag) and small enough for a single copy. It is best effort:
// the object is complete and correct either way. It returns the new ETag.
func (s *Store) recordSHA256(ctx context.Context, name string, up Upload, sha, etag string, size int64) (string, bool) {
	if size > s.copySize || ctx.Err() != nil {
		return "", false
	}
	res, err := s.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: name, ReplaceMetadata: true, UserMetadata: userMetadata(up.ModTime, sha)},
		minio.CopySrcOptions{Bucket: s.bucket, Object: name, MatchETag: etag})
	if err != nil {
		return "", false
	}
	return res.ETag, true
}

// hexToChecksum turns a hex SHA-256 into the base64 form of
// x-amz-checksum-sha256; "" stays "".
func hexToChecksum(h string) string {
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != sha256.Size {
		return ""
	}
	return checksumHeader(raw)
}

// AbortMultipart discards an upload; see MultipartPutter.
func (s *Store) AbortMultipart(ctx context.Context, up Upload) error {
	name, err := s.object(up.Key)
	if err != nil {
		return err
	}
	err = translate(s.core.AbortMultipartUpload(ctx, s.bucket, name, up.UploadID))
	if err != nil && !errors.Is(err, remote.ErrNotExist) {
		return fmt.Errorf("s3 upload %s: abort: %w", remote.PrintableKey(up.Key), err)
	}
	return nil
}

// abort aborts an upload after a failure, even when ctx is what failed.
func (s *Store) abort(ctx context.Context, up Upload) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return s.AbortMultipart(actx, up)
}
