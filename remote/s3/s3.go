package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/ferrysync/ferry/remote"
)

// Size limits of the S3 protocol.
const (
	MiB             = 1 << 20
	DefaultPartSize = 16 * MiB
	MinPartSize     = 5 * MiB               // smallest part S3 accepts (except the last)
	MaxPartSize     = 5 * 1024 * MiB        // largest part
	MaxParts        = 10000                 // most parts in one upload
	MaxObjectSize   = 5 * 1024 * 1024 * MiB // 5 TiB
	maxCopySize     = 5 * 1024 * MiB        // largest single CopyObject
	maxKeyBytes     = 1024                  // longest object name
	clientRetries   = 3                     // attempts minio-go makes per request
	cleanupTimeout  = 30 * time.Second      // for aborting an upload after ctx ended
)

// Config says where a Store lives and how to reach it.
type Config struct {
	// Endpoint is "host" or "host:port", without a scheme.
	Endpoint string
	// Bucket holds the store.
	Bucket string
	// Prefix is the store's root inside the bucket: "" or a valid key
	// ending in "/" (e.g. "backups/host1/").
	Prefix string
	// Region to sign for; "" lets the client ask the server.
	Region string
	// TLS selects https.
	TLS bool
	// AccessKey and SecretKey are the credentials; both empty means
	// anonymous access.
	AccessKey string
	SecretKey string
	// PartSize is the multipart threshold and part size: objects up to
	// PartSize bytes go in one PUT, larger ones in parts of PartSize
	// (larger when the object would need more than 10,000 parts). 0 means
	// DefaultPartSize; the minimum is MinPartSize. Each Put in flight holds
	// one part in memory.
	PartSize int64
	// Transport is the HTTP transport; nil means minio-go's default.
	Transport http.RoundTripper
}

// Store is a remote.Store on an S3 bucket prefix. Keys map to object names
// Prefix+key. It is safe for concurrent use.
type Store struct {
	client   *minio.Client
	core     minio.Core
	endpoint string
	tls      bool
	bucket   string
	prefix   string
	partSize int64
	copySize int64 // largest object copied with one CopyObject; tests lower it
	pageSize int   // listing page size; 0 is the server's (1,000); tests lower it

	plainList atomic.Bool // the server refused listing extensions; see listObjects

	bufs sync.Pool // *[]byte of partSize, for parts and small puts
}

var (
	_ remote.Store     = (*Store)(nil)
	_ remote.Copier    = (*Store)(nil)
	_ remote.DirLister = (*Store)(nil)
	_ remote.Placer    = (*Store)(nil)
	_ MultipartPutter  = (*Store)(nil)
)

// New connects to the bucket described by cfg and checks that it exists. It
// returns an error wrapping ErrNoBucket when it does not,
// remote.ErrPermission when the credentials are refused, and ErrUnreachable
// (also retryable) when the endpoint cannot be reached.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.TLS,
		Region:     cfg.Region,
		Transport:  cfg.Transport,
		MaxRetries: clientRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", cfg.Endpoint, err)
	}
	s := &Store{
		client:   client,
		core:     minio.Core{Client: client},
		endpoint: cfg.Endpoint,
		tls:      cfg.TLS,
		bucket:   cfg.Bucket,
		prefix:   cfg.Prefix,
		partSize: partSize,
		copySize: maxCopySize,
	}
	s.bufs.New = func() any { b := make([]byte, s.partSize); return &b }
	if err := s.checkBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (cfg Config) validate() error {
	switch {
	case cfg.Endpoint == "":
		return errors.New("s3: endpoint is empty; give host or host:port, e.g. s3.eu-central-1.amazonaws.com")
	case strings.Contains(cfg.Endpoint, "://"):
		return fmt.Errorf("s3: endpoint %q: give host or host:port without a scheme (use tls for https)", cfg.Endpoint)
	case strings.ContainsAny(cfg.Endpoint, "/?#"):
		return fmt.Errorf("s3: endpoint %q: give host or host:port without a path", cfg.Endpoint)
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return fmt.Errorf("s3: bucket %q: %v (3-63 characters: lower-case letters, digits, dots and hyphens)", cfg.Bucket, err)
	}
	if err := remote.ValidatePrefix(cfg.Prefix); err != nil {
		return fmt.Errorf("s3: prefix: %w", err)
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return errors.New("s3: give both an access key and a secret key, or neither for anonymous access")
	}
	if cfg.PartSize != 0 && (cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize) {
		return fmt.Errorf("s3: part size %d: must be between %d (5 MiB) and %d (5 GiB)", cfg.PartSize, int64(MinPartSize), int64(MaxPartSize))
	}
	return nil
}

// checkBucket makes sure the bucket exists. Credentials limited to a prefix
// may be refused the bucket check (HEAD bucket) but allowed to list the
// prefix; that counts as existing.
func (s *Store) checkBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err == nil && !ok {
		return fmt.Errorf("s3: bucket %q at %s: %w", s.bucket, s.endpoint, ErrNoBucket)
	}
	if err != nil && isCode(err, "AccessDenied") {
		err = s.probeList(ctx)
	}
	if err != nil {
		return fmt.Errorf("s3: check bucket %q at %s: %w", s.bucket, s.endpoint, translate(err))
	}
	return nil
}

func (s *Store) probeList(ctx context.Context) error {
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1, FetchOwner: new(false)}) {
		return obj.Err
	}
	return ctx.Err()
}

// Place implements remote.Placer: the endpoint, bucket and prefix.
func (s *Store) Place() (remote.Place, error) {
	return remote.S3Place(s.endpoint, s.tls, s.bucket, s.prefix), nil
}

// String names the store for messages: s3://endpoint/bucket/prefix.
func (s *Store) String() string {
	return "s3://" + s.endpoint + "/" + s.bucket + "/" + s.prefix
}

// PartSize is the multipart threshold and default part size.
func (s *Store) PartSize() int64 { return s.partSize }

// object returns the object name for a key, or an error wrapping
// remote.ErrInvalidKey.
func (s *Store) object(key string) (string, error) {
	if err := remote.ValidateKey(key); err != nil {
		return "", err
	}
	name := s.prefix + key
	if len(name) > maxKeyBytes {
		return "", &remote.KeyError{Key: key, Reason: fmt.Sprintf("is longer than S3's limit of %d bytes (with the prefix)", maxKeyBytes)}
	}
	return name, nil
}

// Stat returns the object's size, ETag, mtime (x-amz-meta-mtime, else the
// time the object was written) and SHA-256 (x-amz-meta-sha256, else "").
func (s *Store) Stat(ctx context.Context, key string) (remote.ObjectInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return remote.ObjectInfo{}, fmt.Errorf("s3 stat %s: %w", remote.PrintableKey(key), translate(err))
	}
	return s.info(key, oi, oi.UserMetadata), nil
}

// info converts a minio ObjectInfo for key.
func (s *Store) info(key string, oi minio.ObjectInfo, meta map[string]string) remote.ObjectInfo {
	mtime, sha := modTimeAndSHA(meta, oi.LastModified)
	return remote.ObjectInfo{Key: key, Size: oi.Size, ModTime: mtime, ETag: oi.ETag, SHA256: sha}
}

// Open reads length bytes from offset (length < 0: to the end) with a ranged
// GET. The request is made before Open returns, so an absent key is
// reported here as remote.ErrNotExist. A whole-object read of an object
// with x-amz-meta-sha256 hashes what it reads and ends with an error
// wrapping remote.ErrChecksum (retryable) instead of io.EOF when the content
// does not match.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("s3 open %s: negative offset %d", remote.PrintableKey(key), offset)
	}
	if length == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		opts.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		opts.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		if isCode(err, "InvalidRange") { // offset at or past the end
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, fmt.Errorf("s3 open %s: %w", remote.PrintableKey(key), translate(err))
	}
	r := &reader{rc: body, key: key}
	if offset == 0 && length < 0 {
		if _, sha := modTimeAndSHA(oi.UserMetadata, oi.LastModified); sha != "" {
			r.hash, r.want = sha256.New(), sha
		}
	}
	return r, nil
}

// reader translates read errors of an object body and, on a whole-object
// read of an object with x-amz-meta-sha256, checks the content against it
// at the end.
type reader struct {
	rc   io.ReadCloser
	key  string
	hash hash.Hash // nil: no check
	want string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if r.hash != nil {
		r.hash.Write(p[:n])
	}
	switch {
	case err == io.EOF && r.hash != nil:
		if got := hex.EncodeToString(r.hash.Sum(nil)); got != r.want {
			return n, remote.Retryable(fmt.Errorf("s3 read %s: content hashes to %s, x-amz-meta-sha256 says %s: %w",
				remote.PrintableKey(r.key), got, r.want, remote.ErrChecksum))
		}
	case err != nil && err != io.EOF:
		err = fmt.Errorf("s3 read %s: %w", remote.PrintableKey(r.key), translate(err))
	}
	return n, err
}

func (r *reader) Close() error { return r.rc.Close() }

// Delete removes the object; an absent object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	err = translate(s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}))
	if err != nil && !errors.Is(err, remote.ErrNotExist) {
		return fmt.Errorf("s3 delete %s: %w", remote.PrintableKey(key), err)
	}
	return nil
}

// Copy copies srcKey to dstKey inside the bucket, server-side, with its
// metadata (mtime, SHA-256). Objects over 5 GiB are copied in parts.
func (s *Store) Copy(ctx context.Context, srcKey, dstKey string) (remote.ObjectInfo, error) {
	srcName, err := s.object(srcKey)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	dstName, err := s.object(dstKey)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	fail := func(err error) (remote.ObjectInfo, error) {
		return remote.ObjectInfo{}, fmt.Errorf("s3 copy %s to %s: %w", remote.PrintableKey(srcKey), remote.PrintableKey(dstKey), err)
	}
	src, err := s.client.StatObject(ctx, s.bucket, srcName, minio.StatObjectOptions{})
	if err != nil {
		return fail(translate(err))
	}
	info := s.info(dstKey, src, src.UserMetadata)
	if srcName == dstName {
		return info, nil
	}
	srcOpts := minio.CopySrcOptions{Bucket: s.bucket, Object: srcName, MatchETag: src.ETag}
	dstOpts := minio.CopyDestOptions{Bucket: s.bucket, Object: dstName}
	var up minio.UploadInfo
	if src.Size <= s.copySize {
		up, err = s.client.CopyObject(ctx, dstOpts, srcOpts)
	} else {
		// A multipart copy does not carry metadata over by itself.
		dstOpts.ReplaceMetadata = true
		dstOpts.UserMetadata = userMetadata(info.ModTime, info.SHA256)
		up, err = s.client.ComposeObject(ctx, dstOpts, srcOpts)
	}
	if err != nil {
		return fail(translate(err))
	}
	info.ETag = up.ETag
	return info, nil
}
