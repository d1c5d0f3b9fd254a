package s3

// S3-specific behaviour, checked against a real MinIO server (see
// internal/testenv): what other tools see, what the server verifies, and
// that failures leave nothing behind.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
)

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func hexSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// wantNoUploads fails the test when the bucket has unfinished multipart
// uploads.
func wantNoUploads(t *testing.T, c *minio.Client, bucket string) {
	t.Helper()
	for up := range c.ListIncompleteUploads(t.Context(), bucket, "", true) {
		if up.Err != nil {
			t.Fatalf("list incomplete uploads: %v", up.Err)
		}
		t.Errorf("unfinished multipart upload left behind: key %q id %s", up.Key, up.UploadID)
	}
}

func readAll(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func TestMetadataAsOtherToolsSeeIt(t *testing.T) {
	t.Parallel()
	s, srv, bucket := newTestStore(t, "pre/")
	plain := plainClient(t, srv)
	mtime := time.Unix(1700000000, 123456789)
	small := randomBytes(1, 1000)
	large := randomBytes(2, 2*testPartSize+MiB+7)

	tests := []struct {
		name    string
		content []byte
		giveSHA bool
		size    int64 // -1: unknown
	}{
		{"single PUT", small, false, int64(len(small))},
		{"single PUT, unknown size", small, false, -1},
		{"multipart, SHA-256 given", large, true, int64(len(large))},
		{"multipart, SHA-256 learnt on the way", large, false, int64(len(large))},
		{"multipart, unknown size", large, false, -1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "k" + string(rune('a'+i))
			meta := remote.PutMeta{ModTime: mtime}
			if tt.giveSHA {
				meta.SHA256 = hexSHA(tt.content)
			}
			info, err := s.Put(t.Context(), key, bytes.NewReader(tt.content), tt.size, meta)
			if err != nil {
				t.Fatal(err)
			}
			if info.SHA256 != hexSHA(tt.content) || info.Size != int64(len(tt.content)) || !info.ModTime.Equal(mtime) {
				t.Errorf("Put returned %+v", info)
			}
			oi, err := plain.StatObject(t.Context(), bucket, "pre/"+key, minio.StatObjectOptions{Checksum: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := oi.Metadata.Get("X-Amz-Meta-Mtime"); got != "1700000000.123456789" {
				t.Errorf("x-amz-meta-mtime = %q, want 1700000000.123456789", got)
			}
			if got := oi.Metadata.Get("X-Amz-Meta-Sha256"); got != hexSHA(tt.content) {
				t.Errorf("x-amz-meta-sha256 = %q, want %s", got, hexSHA(tt.content))
			}
			if oi.ChecksumSHA256 == "" {
				t.Errorf("no x-amz-checksum-sha256 recorded by the server")
			}
			if oi.ETag != info.ETag {
				t.Errorf("Put returned ETag %q, server has %q", info.ETag, oi.ETag)
			}
			st, err := s.Stat(t.Context(), key)
			if err != nil || st.SHA256 != info.SHA256 || !st.ModTime.Equal(mtime) || st.ETag != info.ETag {
				t.Errorf("Stat = %+v, %v; Put returned %+v", st, err, info)
			}
			if !bytes.Equal(readAll(t, s, key), tt.content) {
				t.Errorf("content read back differs")
			}
		})
	}
	wantNoUploads(t, plain, bucket)
}

// TestForeignMtime reads objects written by other tools.
func TestForeignMtime(t *testing.T) {
	t.Parallel()
	s, srv, bucket := newTestStore(t, "")
	plain := plainClient(t, srv)
	objects := map[string]string{ // key → x-amz-meta-mtime
		"rclone":  "1354040105.123456789",
		"s3fs":    "1354040105",
		"garbage": "yesterday",
		"none":    "",
	}
	for key, mtime := range objects {
		opts := minio.PutObjectOptions{}
		if mtime != "" {
			opts.UserMetadata = map[string]string{"mtime": mtime}
		}
		if _, err := plain.PutObject(t.Context(), bucket, key, strings.NewReader(key), int64(len(key)), opts); err != nil {
			t.Fatal(err)
		}
	}
	listed := map[string]remote.ObjectInfo{}
	if err := s.List(t.Context(), "", func(i remote.ObjectInfo) error { listed[i.Key] = i; return nil }); err != nil {
		t.Fatal(err)
	}
	for key, mtime := range objects {
		oi, err := plain.StatObject(t.Context(), bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := oi.LastModified
		switch mtime {
		case "1354040105.123456789":
			want = time.Unix(1354040105, 123456789)
		case "1354040105":
			want = time.Unix(1354040105, 0)
		}
		st, err := s.Stat(t.Context(), key)
		if err != nil || !st.ModTime.Equal(want) || st.SHA256 != "" {
			t.Errorf("Stat(%q) = %+v, %v; want ModTime %v and no SHA-256", key, st, err, want)
		}
		if l := listed[key]; !srv.External() && (!l.ModTime.Equal(want) || l.SHA256 != "" || l.SkipReason != "") {
			t.Errorf("List entry %q = %+v; want ModTime %v", key, l, want)
		}
	}
}

// failAfter returns n bytes of r, then fails.
type failAfter struct {
	r io.Reader
	n int64
}

var errReader = errors.New("reader failed on purpose")

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errReader
	}
	p = p[:min(int64(len(p)), f.n)]
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestMultipartFailuresLeaveNothing(t *testing.T) {
	t.Parallel()
	s, srv, bucket := newTestStore(t, "")
	plain := plainClient(t, srv)
	content := randomBytes(3, 2*testPartSize+MiB)
	size := int64(len(content))
	old := []byte("the previous object")

	tests := []struct {
		name   string
		reader func(cancel context.CancelFunc) io.Reader
		size   int64
		sha    string
		check  func(t *testing.T, err error)
	}{
		{"reader fails in part 2", func(context.CancelFunc) io.Reader {
			return &failAfter{bytes.NewReader(content), testPartSize + MiB}
		}, size, "", func(t *testing.T, err error) {
			if !errors.Is(err, errReader) {
				t.Errorf("error %v does not wrap the reader's error", err)
			}
		}},
		{"reader fails, unknown size", func(context.CancelFunc) io.Reader {
			return &failAfter{bytes.NewReader(content), testPartSize + MiB}
		}, -1, "", nil},
		{"short reader", func(context.CancelFunc) io.Reader {
			return bytes.NewReader(content[:testPartSize+MiB])
		}, size, "", nil},
		{"long reader", func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(content), strings.NewReader("extra"))
		}, size, "", nil},
		{"wrong SHA-256", func(context.CancelFunc) io.Reader {
			return bytes.NewReader(content)
		}, size, hexSHA(old), func(t *testing.T, err error) {
			if !errors.Is(err, remote.ErrChecksum) {
				t.Errorf("error %v does not wrap ErrChecksum", err)
			}
		}},
		{"canceled after part 1", func(cancel context.CancelFunc) io.Reader {
			return &cancelAfter{r: bytes.NewReader(content), n: testPartSize + 1, cancel: cancel}
		}, size, "", func(t *testing.T, err error) {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v does not wrap context.Canceled", err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "obj" + string(rune('a'+i))
			mustPutBytes(t, s, key, old)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			_, err := s.Put(ctx, key, tt.reader(cancel), tt.size, remote.PutMeta{SHA256: tt.sha})
			if err == nil {
				t.Fatal("Put succeeded; want an error")
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			if got := readAll(t, s, key); !bytes.Equal(got, old) {
				t.Errorf("after the failed Put the key holds %d bytes, want the previous object", len(got))
			}
			wantNoUploads(t, plain, bucket)
		})
	}
	t.Run("absent key stays absent", func(t *testing.T) {
		_, err := s.Put(t.Context(), "new", &failAfter{bytes.NewReader(content), testPartSize + 1}, size, remote.PutMeta{})
		if err == nil {
			t.Fatal("Put succeeded; want an error")
		}
		if _, err := s.Stat(t.Context(), "new"); !errors.Is(err, remote.ErrNotExist) {
			t.Errorf("Stat after a failed Put: %v; want ErrNotExist", err)
		}
		wantNoUploads(t, plain, bucket)
	})
}

func mustPutBytes(t *testing.T, s *Store, key string, b []byte) remote.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), remote.PutMeta{})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

// corrupter is an HTTP transport that flips one byte in the body of the
// upload requests it selects, as a broken network or proxy would.
type corrupter struct {
	base    http.RoundTripper
	match   func(*http.Request) bool
	damaged atomic.Int32
}

func (c *corrupter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Body != nil && req.ContentLength > 100 && c.match(req) {
		c.damaged.Add(1)
		req = req.Clone(req.Context())
		req.Body = &flipByte{rc: req.Body, at: 50}
	}
	return c.base.RoundTrip(req)
}

type flipByte struct {
	rc  io.ReadCloser
	at  int64
	pos int64
}

func (f *flipByte) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	if f.at >= f.pos && f.at < f.pos+int64(n) {
		p[f.at-f.pos] ^= 0xff
	}
	f.pos += int64(n)
	return n, err
}

func (f *flipByte) Close() error { return f.rc.Close() }

func TestServerRejectsDamagedBody(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	plain := plainClient(t, srv)
	for _, tt := range []struct {
		name  string
		size  int
		match func(*http.Request) bool
	}{
		{"single PUT", 1000, func(r *http.Request) bool { return true }},
		{"multipart part 2", 2*testPartSize + 10, func(r *http.Request) bool { return r.URL.Query().Get("partNumber") == "2" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := &corrupter{base: http.DefaultTransport.(*http.Transport).Clone(), match: tt.match}
			s, err := New(t.Context(), Config{
				Endpoint: srv.Endpoint, Bucket: bucket, Region: srv.Region, TLS: srv.TLS,
				AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: testPartSize, Transport: tr,
			})
			if err != nil {
				t.Fatal(err)
			}
			key := strings.ReplaceAll(tt.name, " ", "-")
			_, err = s.Put(t.Context(), key, bytes.NewReader(randomBytes(4, tt.size)), int64(tt.size), remote.PutMeta{})
			if tr.damaged.Load() == 0 {
				t.Fatal("the transport damaged no request")
			}
			if !errors.Is(err, remote.ErrChecksum) || !remote.IsRetryable(err) {
				t.Errorf("Put with a damaged body: %v; want a retryable ErrChecksum", err)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, remote.ErrNotExist) {
				t.Errorf("Stat after the damaged Put: %v; want ErrNotExist", err)
			}
			wantNoUploads(t, plain, bucket)
		})
	}
}

func TestResumableUpload(t *testing.T) {
	t.Parallel()
	s, srv, bucket := newTestStore(t, "r/")
	plain := plainClient(t, srv)
	content := randomBytes(5, testPartSize+2*MiB)
	p1, p2 := content[:testPartSize], content[testPartSize:]
	mtime := time.Unix(1600000000, 0)

	up, err := s.InitMultipart(t.Context(), "big", remote.PutMeta{ModTime: mtime})
	if err != nil {
		t.Fatal(err)
	}
	part1, err := s.UploadMultipartPart(t.Context(), up, 1, bytes.NewReader(p1), int64(len(p1)), "")
	if err != nil {
		t.Fatal(err)
	}
	if part1.SHA256 != hexSHA(p1) || part1.Size != int64(len(p1)) || part1.Number != 1 || part1.ETag == "" {
		t.Errorf("UploadMultipartPart returned %+v", part1)
	}
	if _, err := s.Stat(t.Context(), "big"); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Stat during the upload: %v; want ErrNotExist", err)
	}

	// "Restart": a new Store learns the finished parts from the server.
	s2 := storeOn(t, srv, bucket, "r/")
	parts, err := s2.ListMultipartParts(t.Context(), up)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0] != part1 {
		t.Fatalf("ListMultipartParts = %+v, want [%+v]", parts, part1)
	}
	part2, err := s2.UploadMultipartPart(t.Context(), up, 2, bytes.NewReader(p2), int64(len(p2)), "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s2.CompleteMultipart(t.Context(), up, []Part{part2, parts[0]}, hexSHA(content))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s2.Stat(t.Context(), "big")
	if err != nil || st.Size != int64(len(content)) || st.SHA256 != hexSHA(content) || !st.ModTime.Equal(mtime) || st.ETag != info.ETag {
		t.Errorf("Stat after CompleteMultipart = %+v, %v; CompleteMultipart returned %+v", st, err, info)
	}
	if !bytes.Equal(readAll(t, s2, "big"), content) {
		t.Error("content differs after resumed upload")
	}
	if _, err := s2.ListMultipartParts(t.Context(), up); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("ListMultipartParts of a completed upload: %v; want ErrNotExist", err)
	}

	t.Run("wrong whole-object hash aborts", func(t *testing.T) {
		up, err := s.InitMultipart(t.Context(), "checked", remote.PutMeta{SHA256: hexSHA(content)})
		if err != nil {
			t.Fatal(err)
		}
		part, err := s.UploadMultipartPart(t.Context(), up, 1, bytes.NewReader(p2), int64(len(p2)), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteMultipart(t.Context(), up, []Part{part}, hexSHA(p2)); !errors.Is(err, remote.ErrChecksum) {
			t.Errorf("CompleteMultipart with a different hash: %v; want ErrChecksum", err)
		}
		if _, err := s.Stat(t.Context(), "checked"); !errors.Is(err, remote.ErrNotExist) {
			t.Errorf("Stat: %v; want ErrNotExist", err)
		}
		if _, err := s.ListMultipartParts(t.Context(), up); !errors.Is(err, remote.ErrNotExist) {
			t.Errorf("ListMultipartParts after the mismatch: %v; want ErrNotExist (aborted)", err)
		}
		if err := s.AbortMultipart(t.Context(), up); err != nil {
			t.Errorf("AbortMultipart of an aborted upload: %v; want nil", err)
		}
	})
	t.Run("abort", func(t *testing.T) {
		up, err := s.InitMultipart(t.Context(), "dropped", remote.PutMeta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UploadMultipartPart(t.Context(), up, 1, bytes.NewReader(p1), int64(len(p1)), ""); err != nil {
			t.Fatal(err)
		}
		if err := s.AbortMultipart(t.Context(), up); err != nil {
			t.Fatal(err)
		}
		wantNoUploads(t, plain, bucket)
	})
	t.Run("short part reader", func(t *testing.T) {
		up, err := s.InitMultipart(t.Context(), "short", remote.PutMeta{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.AbortMultipart(context.Background(), up)
		if _, err := s.UploadMultipartPart(t.Context(), up, 1, bytes.NewReader(p2), int64(len(p2))+1, ""); err == nil {
			t.Error("UploadMultipartPart with fewer bytes than size succeeded")
		}
	})
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	base := Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: srv.Region, TLS: srv.TLS,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}

	t.Run("missing bucket", func(t *testing.T) {
		cfg := base
		cfg.Bucket = "no-such-bucket-here"
		_, err := New(t.Context(), cfg)
		if !errors.Is(err, ErrNoBucket) || errors.Is(err, remote.ErrNotExist) {
			t.Errorf("New: %v; want ErrNoBucket (and not ErrNotExist)", err)
		}
		if err != nil && (!strings.Contains(err.Error(), cfg.Endpoint) || !strings.Contains(err.Error(), cfg.Bucket)) {
			t.Errorf("message %q does not name the endpoint and the bucket", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		cfg := base
		cfg.SecretKey = "not-the-secret"
		if _, err := New(t.Context(), cfg); !errors.Is(err, remote.ErrPermission) || remote.IsRetryable(err) {
			t.Errorf("New: %v; want ErrPermission, not retryable", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := base
		cfg.Endpoint = l.Addr().String()
		l.Close() // nothing listens there now
		_, err = New(t.Context(), cfg)
		if !errors.Is(err, ErrUnreachable) || !remote.IsRetryable(err) {
			t.Errorf("New: %v; want a retryable ErrUnreachable", err)
		}
		if err != nil && !strings.Contains(err.Error(), cfg.Endpoint) {
			t.Errorf("message %q does not name the endpoint", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		for _, tt := range []struct {
			edit func(*Config)
			want string
		}{
			{func(c *Config) { c.Endpoint = "" }, "endpoint is empty"},
			{func(c *Config) { c.Endpoint = "https://s3.example.com" }, "without a scheme"},
			{func(c *Config) { c.Endpoint = "s3.example.com/bucket" }, "without a path"},
			{func(c *Config) { c.Bucket = "Bad_Bucket" }, `bucket "Bad_Bucket"`},
			{func(c *Config) { c.Prefix = "no-slash" }, "must be empty or end with /"},
			{func(c *Config) { c.Prefix = "a//" }, "empty path component"},
			{func(c *Config) { c.Prefix = "../x/" }, `".."`},
			{func(c *Config) { c.PartSize = MiB }, "part size"},
			{func(c *Config) { c.SecretKey = "" }, "both an access key and a secret key"},
		} {
			cfg := base
			tt.edit(&cfg)
			_, err := New(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%+v): %v; want an error mentioning %q", cfg, err, tt.want)
			}
		}
	})
}

func TestStoppedServer(t *testing.T) {
	t.Parallel()
	srv := testenv.MinIO(t)
	if srv.External() {
		t.Skip("external endpoint: cannot stop it")
	}
	s := storeOn(t, srv, srv.NewBucket(t), "")
	mustPutBytes(t, s, "k", []byte("v"))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Stat(t.Context(), "k")
	if !errors.Is(err, ErrUnreachable) || !remote.IsRetryable(err) || errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Stat with the server down: %v; want a retryable ErrUnreachable", err)
	}
	if err := s.List(t.Context(), "", func(remote.ObjectInfo) error { return nil }); !remote.IsRetryable(err) {
		t.Errorf("List with the server down: %v; want a retryable error", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "k"); string(got) != "v" {
		t.Errorf("after the restart read %q", got)
	}
}

func TestDirectoryMarkers(t *testing.T) {
	t.Parallel()
	s, srv, bucket := newTestStore(t, "")
	plain := plainClient(t, srv)
	for _, name := range []string{"d/", "d/sub/", "e/"} { // as consoles and s3fs create them
		if _, err := plain.PutObject(t.Context(), bucket, name, strings.NewReader(""), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustPutBytes(t, s, "d/x", []byte("x"))
	mustPutBytes(t, s, "d/sub/y", []byte("y"))

	var keys []string
	if err := s.List(t.Context(), "", func(i remote.ObjectInfo) error { keys = append(keys, i.Key+"|"+i.SkipReason); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"d/sub/y|", "d/x|"}; strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Errorf("List = %q, want %q (markers skipped silently)", keys, want)
	}
	listDir := func(prefix string) string {
		var got []string
		err := s.ListDir(t.Context(), prefix, func(e remote.DirEntry) error {
			got = append(got, e.Info.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, ",")
	}
	for prefix, want := range map[string]string{"": "d/,e/", "d/": "d/sub/,d/x", "d/sub/": "d/sub/y", "e/": ""} {
		if got := listDir(prefix); got != want {
			t.Errorf("ListDir(%q) = %q, want %q", prefix, got, want)
		}
	}
}

// TestListDirPages checks ListDir's key order when objects and
// sub-directories are spread over many listing pages.
func TestListDirPages(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestStore(t, "")
	s.pageSize = 2
	var want []string
	for _, k := range []string{"a", "b/x", "c.d", "c/x", "c0", "d/x", "e", "f", "g/x", "g0", "h/x", "i/x"} {
		mustPutBytes(t, s, k, []byte(k))
		if dir, _, ok := strings.Cut(k, "/"); ok {
			k = dir + "/"
		}
		want = append(want, k)
	}
	var got []string
	err := s.ListDir(t.Context(), "", func(e remote.DirEntry) error {
		if e.Dir != strings.HasSuffix(e.Info.Key, "/") {
			t.Errorf("entry %q Dir=%v", e.Info.Key, e.Dir)
		}
		got = append(got, e.Info.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ListDir with 2-entry pages = %q\nwant %q", got, want)
	}
	var listed []string
	if err := s.List(t.Context(), "", func(i remote.ObjectInfo) error { listed = append(listed, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 12 {
		t.Errorf("List with 2-entry pages = %q", listed)
	}
}

func TestCopyKeepsMetadata(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestStore(t, "c/")
	s.copySize = MinPartSize // force the multipart copy for the large object
	mtime := time.Unix(1500000000, 5)
	for _, size := range []int{100, 2*testPartSize + 3} {
		content := randomBytes(uint64(size), size)
		src, err := s.Put(t.Context(), "src", bytes.NewReader(content), int64(size), remote.PutMeta{ModTime: mtime, SHA256: hexSHA(content)})
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Copy(t.Context(), "src", "dst")
		if err != nil {
			t.Fatalf("Copy of %d bytes: %v", size, err)
		}
		st, err := s.Stat(t.Context(), "dst")
		if err != nil || st.SHA256 != src.SHA256 || !st.ModTime.Equal(mtime) || st.Size != int64(size) || st.ETag != info.ETag {
			t.Errorf("Copy of %d bytes: Stat(dst) = %+v, %v; Copy returned %+v", size, st, err, info)
		}
		if !bytes.Equal(readAll(t, s, "dst"), content) {
			t.Errorf("Copy of %d bytes: content differs", size)
		}
	}
	if _, err := s.Copy(t.Context(), "absent", "dst2"); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Copy of an absent key: %v; want ErrNotExist", err)
	}
}

// BenchmarkPutMultipart compares a multipart Put whose SHA-256 is given
// with one that learns it on the way and records it afterwards with a
// metadata-replacing copy onto itself.
func BenchmarkPutMultipart(b *testing.B) {
	s, _, _ := newTestStore(b, "")
	for _, size := range []int{3 * testPartSize, 12 * testPartSize} {
		content := randomBytes(9, size)
		sha := hexSHA(content)
		for _, known := range []bool{true, false} {
			name := "sha-unknown"
			if known {
				name = "sha-given"
			}
			b.Run(fmt.Sprintf("%s-%dMiB", name, size/MiB), func(b *testing.B) {
				b.SetBytes(int64(size))
				meta := remote.PutMeta{}
				if known {
					meta.SHA256 = sha
				}
				for b.Loop() {
					if _, err := s.Put(b.Context(), "bench", bytes.NewReader(content), int64(size), meta); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("copy-to-self-%dMiB", size/MiB), func(b *testing.B) {
			info, err := s.Put(b.Context(), "bench", bytes.NewReader(content), int64(size), remote.PutMeta{SHA256: sha})
			if err != nil {
				b.Fatal(err)
			}
			name, _ := s.object("bench")
			up := Upload{Key: "bench", ModTime: info.ModTime}
			etag := info.ETag
			for b.Loop() {
				var ok bool
				if etag, ok = s.recordSHA256(b.Context(), name, up, sha, etag, int64(size)); !ok {
					b.Fatal("copy to self failed")
				}
			}
		})
	}
}

// responseCorrupter flips one byte in the body of GET responses while on.
type responseCorrupter struct {
	base http.RoundTripper
	on   atomic.Bool
}

func (c *responseCorrupter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && c.on.Load() && resp.ContentLength > 100 {
		resp.Body = &flipByte{rc: resp.Body, at: 60}
	}
	return resp, err
}

func TestDownloadVerified(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	tr := &responseCorrupter{base: http.DefaultTransport.(*http.Transport).Clone()}
	s, err := New(t.Context(), Config{
		Endpoint: srv.Endpoint, Bucket: srv.NewBucket(t), Region: srv.Region, TLS: srv.TLS,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: testPartSize, Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1000, 2*testPartSize + 1} {
		content := randomBytes(uint64(size), size)
		mustPutBytes(t, s, "obj", content)
		tr.on.Store(true)
		rc, err := s.Open(t.Context(), "obj", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, remote.ErrChecksum) || !remote.IsRetryable(err) {
			t.Errorf("whole read of a %d-byte object damaged on the way: %v; want a retryable ErrChecksum", size, err)
		}
		tr.on.Store(false)
		if got := readAll(t, s, "obj"); !bytes.Equal(got, content) {
			t.Errorf("undamaged read of %d bytes differs", size)
		}
	}
}

// strictServer answers listings that use MinIO's metadata extension with an
// InvalidArgument error, as an S3 server without the extension may.
type strictServer struct {
	base    http.RoundTripper
	refused atomic.Int32
}

func (s *strictServer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && req.URL.Query().Get("metadata") == "true" {
		s.refused.Add(1)
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Unknown parameter metadata</Message></Error>`
		return &http.Response{
			StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"application/xml"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req,
		}, nil
	}
	return s.base.RoundTrip(req)
}

func TestListWithoutMetadataExtension(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMinIO(t)
	tr := &strictServer{base: http.DefaultTransport.(*http.Transport).Clone()}
	s, err := New(t.Context(), Config{
		Endpoint: srv.Endpoint, Bucket: srv.NewBucket(t), Region: srv.Region, TLS: srv.TLS,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	put := mustPutBytes(t, s, "a/b", []byte("content"))
	st, err := s.Stat(t.Context(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var got []remote.ObjectInfo
		if err := s.List(t.Context(), "", func(i remote.ObjectInfo) error { got = append(got, i); return nil }); err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(got) != 1 || got[0].Key != "a/b" || got[0].Size != 7 || got[0].SHA256 != "" || got[0].ETag != put.ETag {
			t.Errorf("List without metadata = %+v", got)
		}
		if len(got) == 1 && got[0].ModTime.Sub(st.ModTime).Abs() > 2*time.Second {
			t.Errorf("List ModTime %v is not the write time (Stat says mtime %v)", got[0].ModTime, st.ModTime)
		}
	}
	if n := tr.refused.Load(); n != 1 {
		t.Errorf("the server refused %d listings; want 1 (then plain listings)", n)
	}
}
