package s3

import (
	"context"
	"io"

	"github.com/ferrysync/ferry/remote"
)

// The remote.ResumablePutter methods: thin adapters over MultipartPutter
// for callers that keep only the key and upload id.

var (
	_ remote.ResumablePutter = (*Store)(nil)
	_ remote.PartLister      = (*Store)(nil)
)

// InitUpload starts a multipart upload and returns its id.
func (s *Store) InitUpload(ctx context.Context, key string, meta remote.PutMeta) (string, error) {
	up, err := s.InitMultipart(ctx, key, meta)
	return up.UploadID, err
}

// UploadPart sends part number of the upload; the server verifies its
// SHA-256.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64, sha256 string) (remote.Part, error) {
	p, err := s.UploadMultipartPart(ctx, Upload{Key: key, UploadID: uploadID}, number, r, size, sha256)
	if err != nil {
		return remote.Part{}, err
	}
	return remote.Part{Number: p.Number, Size: p.Size, ETag: p.ETag, SHA256: p.SHA256}, nil
}

// ListParts returns the parts the server holds for the upload, with the
// SHA-256 it verified of each (uploads start with the SHA256 checksum
// algorithm).
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]remote.Part, error) {
	ps, err := s.ListMultipartParts(ctx, Upload{Key: key, UploadID: uploadID})
	if err != nil {
		return nil, err
	}
	parts := make([]remote.Part, len(ps))
	for i, p := range ps {
		parts[i] = remote.Part{Number: p.Number, Size: p.Size, ETag: p.ETag, SHA256: p.SHA256}
	}
	return parts, nil
}

// CompleteUpload assembles the parts and records meta.SHA256 with the
// object.
func (s *Store) CompleteUpload(ctx context.Context, key, uploadID string, parts []remote.Part, meta remote.PutMeta) (remote.ObjectInfo, error) {
	ps := make([]Part, len(parts))
	for i, p := range parts {
		ps[i] = Part{Number: p.Number, Size: p.Size, ETag: p.ETag, SHA256: p.SHA256}
	}
	return s.CompleteMultipart(ctx, Upload{Key: key, UploadID: uploadID, ModTime: meta.ModTime}, ps, meta.SHA256)
}

// AbortUpload discards the upload.
func (s *Store) AbortUpload(ctx context.Context, key, uploadID string) error {
	return s.AbortMultipart(ctx, Upload{Key: key, UploadID: uploadID})
}
