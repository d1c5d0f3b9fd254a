package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables read by this file.
const (
	MinIOBinEnv      = "FERRY_MINIO_BIN"
	S3EndpointEnv    = "FERRY_TEST_S3_ENDPOINT"
	S3AccessKeyEnv   = "FERRY_TEST_S3_ACCESS_KEY"
	S3SecretKeyEnv   = "FERRY_TEST_S3_SECRET_KEY"
	S3TLSEnv         = "FERRY_TEST_S3_TLS"
	S3RegionEnv      = "FERRY_TEST_S3_REGION"
	testAccessKey    = "ferry-test"
	testSecretKey    = "ferry-test-secret-key"
	startTimeout     = 60 * time.Second
	stopGrace        = 10 * time.Second
	startAttempts    = 3
	bucketOpsTimeout = 2 * time.Minute
)

// ErrExternal is returned by Start and Stop on a server given by
// FERRY_TEST_S3_* variables: Ferry's tests do not control its process.
var ErrExternal = errors.New("testenv: the S3 endpoint is external (FERRY_TEST_S3_ENDPOINT); it cannot be stopped or started")

// S3Server is an S3 endpoint for tests: a MinIO server this package started,
// or an external endpoint from FERRY_TEST_S3_* variables.
type S3Server struct {
	// Endpoint is "host:port", without a scheme (e.g. "127.0.0.1:40123").
	Endpoint  string
	AccessKey string
	SecretKey string
	// Region to sign requests for ("us-east-1" for MinIO).
	Region string
	// TLS is true when the endpoint speaks https.
	TLS bool

	external bool
	bin      string
	root     string // temp dir holding data/, certs/ and minio.log
	console  string // console address

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// External reports whether the endpoint was given by FERRY_TEST_S3_* (and
// may not be MinIO) rather than started by this package.
func (s *S3Server) External() bool { return s.external }

// MinIO returns a MinIO server private to the test, started on a free
// loopback port with an empty data directory, and stopped (its directory
// removed) when the test ends. With FERRY_TEST_S3_* set it returns that
// external endpoint instead. When no server can be had it calls Missing
// (skip, or fail when FERRY_TEST_REQUIRE lists "s3"); in -short mode it
// does not start one.
func MinIO(t testing.TB) *S3Server {
	t.Helper()
	if ext, err := externalFromEnv(); err != nil {
		t.Fatal(err)
	} else if ext != nil {
		return ext
	}
	if testing.Short() {
		Missing(t, PartS3, "-short mode starts no external servers")
	}
	bin, why := minioBinary()
	if bin == "" {
		Missing(t, PartS3, why)
	}
	s, err := startServer(bin)
	if err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

var shared struct {
	once   sync.Once
	mu     sync.Mutex
	server *S3Server
	why    string // binary missing
	err    error  // start failed
}

// SharedMinIO returns the test binary's shared MinIO server, starting it on
// first use. It is stopped by StopShared, which the package calls from
// TestMain (see the package doc). Tests must not Stop it; use MinIO for
// that. Missing parts are handled as in MinIO.
func SharedMinIO(t testing.TB) *S3Server {
	t.Helper()
	if ext, err := externalFromEnv(); err != nil {
		t.Fatal(err)
	} else if ext != nil {
		return ext
	}
	if testing.Short() {
		Missing(t, PartS3, "-short mode starts no external servers")
	}
	shared.once.Do(func() {
		bin, why := minioBinary()
		if bin == "" {
			shared.why = why
			return
		}
		s, err := startServer(bin)
		shared.mu.Lock()
		shared.server, shared.err = s, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	s, why, err := shared.server, shared.why, shared.err
	shared.mu.Unlock()
	switch {
	case why != "":
		Missing(t, PartS3, why)
	case err != nil:
		t.Fatalf("start shared MinIO: %v", err)
	case s == nil:
		t.Fatal("shared MinIO was already stopped (StopShared called before the tests ended?)")
	}
	return s
}

// StopShared stops the shared server, if one was started, and removes its
// data directory. Call it from TestMain after m.Run.
func StopShared() {
	shared.mu.Lock()
	s := shared.server
	shared.server = nil
	shared.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// externalFromEnv returns the endpoint given by FERRY_TEST_S3_*, nil when
// FERRY_TEST_S3_ENDPOINT is unset, or an error when it is set incompletely.
func externalFromEnv() (*S3Server, error) {
	endpoint := os.Getenv(S3EndpointEnv)
	if endpoint == "" {
		return nil, nil
	}
	s := &S3Server{
		Endpoint:  endpoint,
		AccessKey: os.Getenv(S3AccessKeyEnv),
		SecretKey: os.Getenv(S3SecretKeyEnv),
		Region:    os.Getenv(S3RegionEnv),
		external:  true,
	}
	if s.AccessKey == "" || s.SecretKey == "" {
		return nil, fmt.Errorf("testenv: %s is set but %s or %s is empty; set all three", S3EndpointEnv, S3AccessKeyEnv, S3SecretKeyEnv)
	}
	if strings.Contains(endpoint, "://") || strings.Contains(endpoint, "/") {
		return nil, fmt.Errorf("testenv: %s=%q must be host:port without a scheme or path (use %s=1 for https)", S3EndpointEnv, endpoint, S3TLSEnv)
	}
	if v := os.Getenv(S3TLSEnv); v != "" {
		tls, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("testenv: %s=%q: want true or false", S3TLSEnv, v)
		}
		s.TLS = tls
	}
	return s, nil
}

// minioBinary finds the MinIO server binary, or returns "" and what was
// looked for.
func minioBinary() (path, why string) {
	if bin := os.Getenv(MinIOBinEnv); bin != "" {
		if isExecutable(bin) {
			return bin, ""
		}
		return "", fmt.Sprintf("%s=%s is not an executable file", MinIOBinEnv, bin)
	}
	if bin, err := exec.LookPath("minio"); err == nil {
		return bin, ""
	}
	gobin := filepath.Join(goPath(), "bin", "minio")
	if isExecutable(gobin) {
		return gobin, ""
	}
	return "", fmt.Sprintf("no minio binary: %s is unset, none on PATH, and %s does not exist", MinIOBinEnv, gobin)
}

// goPath returns the first GOPATH entry: `go env GOPATH`, else $HOME/go.
func goPath() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			return filepath.SplitList(p)[0]
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "go")
	}
	return filepath.Join(home, "go")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// startServer creates a data directory and starts MinIO on free ports,
// trying again with other ports if a port was taken in the meantime.
func startServer(bin string) (*S3Server, error) {
	root, err := os.MkdirTemp("", "ferry-minio-")
	if err != nil {
		return nil, fmt.Errorf("create MinIO data directory: %w", err)
	}
	var lastErr error
	for range startAttempts {
		s := &S3Server{
			AccessKey: testAccessKey,
			SecretKey: testSecretKey,
			Region:    "us-east-1",
			bin:       bin,
			root:      root,
		}
		if s.Endpoint, err = freeAddr(); err != nil {
			lastErr = err
			continue
		}
		if s.console, err = freeAddr(); err != nil {
			lastErr = err
			continue
		}
		if lastErr = s.Start(); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(root)
	return nil, lastErr
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// Start starts the server (again) on its data directory and port and waits
// until it serves S3 requests. Starting a running server does nothing. It
// returns ErrExternal for an external endpoint.
func (s *S3Server) Start() error {
	if s.external {
		return ErrExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	for _, dir := range []string{"data", "certs"} {
		if err := os.MkdirAll(filepath.Join(s.root, dir), 0o700); err != nil {
			return fmt.Errorf("start MinIO: %w", err)
		}
	}
	logPath := filepath.Join(s.root, "minio.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start MinIO: %w", err)
	}
	defer logFile.Close() // the child has its own copy

	cmd := exec.Command(s.bin, "server", "--quiet",
		"--address", s.Endpoint,
		"--console-address", s.console,
		"--certs-dir", filepath.Join(s.root, "certs"),
		filepath.Join(s.root, "data"))
	cmd.Env = append(withoutMinIOEnv(os.Environ()),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start MinIO %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	if err := s.waitReady(done); err != nil {
		s.stopLocked()
		return fmt.Errorf("MinIO on %s did not become ready: %w\n%s", s.Endpoint, err, tail(logPath, 40))
	}
	return nil
}

// withoutMinIOEnv drops the caller's MINIO_* variables so that a developer's
// own MinIO settings do not change the test server.
func withoutMinIOEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MINIO_") {
			out = append(out, kv)
		}
	}
	return out
}

// waitReady polls the liveness endpoint, then an authenticated request,
// until both succeed, the process exits or the start timeout passes.
func (s *S3Server) waitReady(done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client, err := s.client()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	live := "http://" + s.Endpoint + "/minio/health/live"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return errors.New("the minio process exited")
		case <-ctx.Done():
			return fmt.Errorf("no answer within %v", startTimeout)
		case <-tick.C:
		}
		resp, err := hc.Get(live)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = client.ListBuckets(rctx)
		rcancel()
		if err == nil {
			return nil
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period) and
// keeps its data directory and port for Start. Stopping a stopped server does
// nothing. It returns ErrExternal for an external endpoint.
func (s *S3Server) Stop() error {
	if s.external {
		return ErrExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	return nil
}

func (s *S3Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// close stops the server and removes its directory.
func (s *S3Server) close() {
	if s.external {
		return
	}
	s.Stop()
	os.RemoveAll(s.root)
}

// tail returns the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no MinIO log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "MinIO log (" + path + "):\n" + strings.Join(lines, "\n")
}

// client returns a minio-go client for the server.
func (s *S3Server) client() (*minio.Client, error) {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:     s.TLS,
		Region:     s.Region,
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: S3 client for %s: %w", s.Endpoint, err)
	}
	return c, nil
}

// NewBucket creates a fresh, uniquely named bucket and returns its name. The
// bucket and everything in it (objects and unfinished multipart uploads) is
// removed when the test ends; a failure to remove it is logged, not fatal.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	client, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	name := BucketName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), bucketOpsTimeout)
	defer cancel()
	if err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", name, s.Endpoint, err)
	}
	t.Cleanup(func() {
		if err := emptyAndRemoveBucket(client, name); err != nil {
			t.Logf("remove test bucket %s on %s: %v", name, s.Endpoint, err)
		}
	})
	return name
}

// BucketName returns a valid, unique S3 bucket name that contains a readable
// form of hint (e.g. a test name).
func BucketName(hint string) string {
	var b strings.Builder
	b.WriteString("ferry-")
	dash := true
	for _, r := range strings.ToLower(hint) {
		if b.Len() >= 40 {
			break
		}
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	if !dash {
		b.WriteByte('-')
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String()
}

// emptyAndRemoveBucket removes a test bucket and everything in it. MinIO
// does it in one request (force delete); that also removes objects MinIO
// does not list (an object "a" hides "a/b" from listings, minio/minio#18148).
// Other servers ignore the force flag, so the bucket is then emptied by
// listing.
func emptyAndRemoveBucket(client *minio.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), bucketOpsTimeout)
	defer cancel()
	if client.RemoveBucketWithOptions(ctx, bucket, minio.RemoveBucketOptions{ForceDelete: true}) == nil {
		return nil
	}
	for up := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err != nil {
			return up.Err
		}
		client.RemoveIncompleteUpload(ctx, bucket, up.Key)
	}
	objects := client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for rerr := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		if rerr.Err != nil {
			return fmt.Errorf("remove %s: %w", rerr.ObjectName, rerr.Err)
		}
	}
	return client.RemoveBucket(ctx, bucket)
}

// StoppableMinIO is MinIO(t) for a test that stops and starts the server
// (S3Server.Stop and Start): it skips the test when the endpoint is
// external, which a test cannot stop.
func StoppableMinIO(t testing.TB) *S3Server {
	t.Helper()
	srv := MinIO(t)
	if srv.External() {
		t.Skip("the S3 endpoint is external (FERRY_TEST_S3_ENDPOINT): this test must stop and start it")
	}
	return srv
}
