// Package s3 is the remote.Store on an S3 bucket prefix, over minio-go. It
// is the only package that imports minio-go, and the only place where S3
// errors are translated to remote's sentinels (remote.ErrNotExist,
// remote.ErrPermission, remote.ErrChecksum, remote.Retryable) and to this
// package's ErrNoBucket and ErrUnreachable.
//
// Objects record their mtime and SHA-256 as user metadata, the mtime as
// rclone and s3fs write it:
//
//	x-amz-meta-mtime:  1700000000.123456789  (decimal Unix seconds)
//	x-amz-meta-sha256: <64 hex digits>
//
// Integrity: every upload request carries the SHA-256 of its body, both as
// the signed payload hash and as x-amz-checksum-sha256, so the server
// rejects a body damaged on the way. Objects up to the part size go up in
// one PUT; larger ones as a multipart upload that is aborted on any failure,
// so no partial object ever appears. The multipart steps are also exposed
// (MultipartPutter) for a caller that resumes uploads after a crash.
//
// Beyond remote.Store, a Store is a remote.Copier (server-side copy) and a
// remote.DirLister (one level, with common prefixes).
package s3
