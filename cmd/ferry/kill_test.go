//go:build linux

package main

// Process tests: the real ferry binary, run as a subprocess against a MinIO
// server (internal/testenv). A sync is killed with SIGKILL in the middle of
// many small files and in the middle of one multipart file, and run again:
// the job resumes, completes, and the destination equals the source without
// the finished part being sent twice; a multipart sync killed five times,
// behind a proxy that counts what the server takes, sends little twice.
// Then `ferry job files` is checked against what a run with skipped and
// failed files did.
//
// A minio-go client looks at the bucket the way another tool would; that
// stays in this test file.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/state"
)

const (
	ktPartSize   = 5 << 20         // part_size of the test remote
	ktCmdTimeout = 3 * time.Minute // any one ferry command
	ktPollEvery  = 10 * time.Millisecond
)

// builtFerry is the ferry binary, built once per test binary.
var builtFerry struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// ferryBinary builds cmd/ferry (the package under test) once and returns
// the binary's path.
func ferryBinary(t *testing.T) string {
	t.Helper()
	builtFerry.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-bin-")
		if err != nil {
			builtFerry.err = err
			return
		}
		builtFerry.dir = dir
		bin := filepath.Join(dir, "ferry")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			builtFerry.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		builtFerry.path = bin
	})
	if builtFerry.err != nil {
		t.Fatal(builtFerry.err)
	}
	return builtFerry.path
}

func removeBuiltFerry() {
	if builtFerry.dir != "" {
		os.RemoveAll(builtFerry.dir)
	}
}

// ktEnv is a config with an S3 remote "s3r" on a fresh bucket, a state
// directory, and a client to look at the bucket.
type ktEnv struct {
	bin      string
	cfg      string
	stateDir string
	bucket   string
	client   *minio.Client
}

func newKTEnv(t *testing.T) *ktEnv {
	t.Helper()
	return newKTEnvVia(t, "")
}

// newKTEnvVia is newKTEnv with ferry reaching the server at via (host:port,
// a proxy in front of it) when via is not "". The test's own client goes to
// the server directly.
func newKTEnvVia(t *testing.T, via string) *ktEnv {
	t.Helper()
	srv := testenv.SharedMinIO(t)
	endpoint, tls := srv.Endpoint, srv.TLS
	if via != "" {
		endpoint, tls = via, false
	}
	bin := ferryBinary(t)
	e := &ktEnv{bin: bin, bucket: srv.NewBucket(t), stateDir: filepath.Join(t.TempDir(), "state")}
	e.cfg = filepath.Join(t.TempDir(), "ferry.toml")
	// A socket of its own: the job commands must not find someone else's
	// daemon.
	socket := filepath.Join(t.TempDir(), "ferry.sock")
	cfg := fmt.Sprintf(`state_dir = %q
socket    = %q

[credentials.test]
access_key = %q
secret_key = %q

[remotes.s3r]
type       = "s3"
endpoint   = %q
bucket     = %q
region     = %q
tls        = %v
credential = "test"
part_size  = "5MiB"
`, e.stateDir, socket, srv.AccessKey, srv.SecretKey, endpoint, e.bucket, srv.Region, tls)
	// Inline secrets are refused in a file others can read.
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(srv.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Secure: srv.TLS,
		Region: srv.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	return e
}

// command returns a ferry subprocess with the test config. It dies with
// the test binary, and is killed at the end of the test if still running.
func (e *ktEnv) command(t *testing.T, stdout, stderr io.Writer, args ...string) *exec.Cmd {
	t.Helper()
	return ferryCommand(e.bin, stdout, stderr, append([]string{"--config", e.cfg}, args...)...)
}

// ferryCommand returns a ferry subprocess of bin that sees no FERRY_
// variable of the test's environment and dies with the test binary.
func ferryCommand(bin string, stdout, stderr io.Writer, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "FERRY_") })
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// run runs ferry to its end and returns its output and exit code.
func (e *ktEnv) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = waitFerry(t, e.command(t, &out, &errOut, args...), &errOut)
	return out.String(), errOut.String(), code
}

// waitFerry starts cmd, waits for its end (at most ktCmdTimeout) and
// returns its exit code; stderr is what cmd writes its standard error to.
func waitFerry(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) (code int) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			code = ee.ExitCode()
		default:
			t.Fatalf("ferry %v: %v", cmd.Args[1:], err)
		}
	case <-time.After(ktCmdTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("ferry %v did not finish within %v; stderr:\n%s", cmd.Args[1:], ktCmdTimeout, stderr.String())
	}
	return code
}

// runJSON runs ferry with --json, wants exit code want, and decodes stdout.
func (e *ktEnv) runJSON(t *testing.T, want int, v any, args ...string) {
	t.Helper()
	stdout, stderr, code := e.run(t, append([]string{"--json"}, args...)...)
	if code != want {
		t.Fatalf("ferry %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, stdout, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("ferry %v: output is not the expected JSON: %v\n%s", args, err, stdout)
	}
}

// killWhen starts ferry, polls ready until it reports true, then kills the
// process with SIGKILL. It fails the test if ferry ends on its own first.
func (e *ktEnv) killWhen(t *testing.T, ready func() (bool, error), args ...string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := e.command(t, &out, &errOut, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.After(ktCmdTimeout)
	for {
		select {
		case err := <-done:
			killed = true
			t.Fatalf("ferry %v ended before it could be killed (%v): the poll was too slow for this machine\nstdout:\n%s\nstderr:\n%s",
				args, err, out.String(), errOut.String())
		case <-deadline:
			t.Fatalf("ferry %v: the kill condition was not reached within %v", args, ktCmdTimeout)
		case <-time.After(ktPollEvery):
		}
		ok, err := ready()
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if ok {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-done
	killed = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("ferry was not killed by SIGKILL: %v\nstderr:\n%s", err, errOut.String())
	}
}

// objects lists the bucket's objects under prefix: key → size.
func (e *ktEnv) objects(ctx context.Context, prefix string) (map[string]int64, error) {
	out := map[string]int64{}
	for o := range e.client.ListObjects(ctx, e.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		out[o.Key] = o.Size
	}
	return out, nil
}

// uploads returns the unfinished multipart uploads of the object key with
// the number of parts the server holds for each. (MinIO lists uploads only
// for a whole object name, not for any prefix.)
func (e *ktEnv) uploads(ctx context.Context, key string) (map[string]int, error) {
	core := minio.Core{Client: e.client}
	res, err := core.ListMultipartUploads(ctx, e.bucket, key, "", "", "", 1000)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, u := range res.Uploads {
		parts, err := core.ListObjectParts(ctx, e.bucket, u.Key, u.UploadID, 0, 10000)
		if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
			continue // completed or aborted since it was listed
		}
		if err != nil {
			return nil, err
		}
		out[u.Key+" "+u.UploadID] = len(parts.ObjectParts)
	}
	return out, nil
}

func (e *ktEnv) objectSHA256(t *testing.T, key string) string {
	t.Helper()
	obj, err := e.client.GetObject(t.Context(), e.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// wantFinished checks that the object key has the SHA-256 wantSum and that
// no unfinished upload of it is left.
func (e *ktEnv) wantFinished(t *testing.T, key, wantSum string) {
	t.Helper()
	if got := e.objectSHA256(t, key); got != wantSum {
		t.Errorf("object sha256 %s, want the source's %s", got, wantSum)
	}
	if ups, err := e.uploads(t.Context(), key); err != nil || len(ups) != 0 {
		t.Errorf("unfinished uploads left in the bucket: %v (err %v)", ups, err)
	}
}

func ktRandom(seed uint64) *rand.ChaCha8 {
	return rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'k', 'i', 'l', 'l'})
}

// ktWriteRandom writes size (a multiple of 1 MiB) random bytes from seed to
// path and returns their hex SHA-256.
func ktWriteRandom(t *testing.T, path string, size int, seed uint64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rnd := ktRandom(seed)
	buf := make([]byte, 1<<20)
	for range size / len(buf) {
		rnd.Read(buf)
		h.Write(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ktProxy is an HTTP proxy in front of the server that counts request
// bodies: arrived is every body byte that reached it, whole the bytes of
// the bodies that arrived in full. It reads a body whole before it passes
// the request on, and passes it on even when the client is gone by then,
// as a server that had read it all would keep it; a body cut short by a
// kill goes no further. So whole is what the server took: every part sent,
// counted as often as it was sent. What ferry's own counters say plays no
// part in it.
type ktProxy struct {
	addr           string
	arrived, whole atomic.Int64
	busy           sync.WaitGroup // requests being passed on
}

func newKTProxy(t *testing.T, srv *testenv.S3Server) *ktProxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: srv.Endpoint}
	if srv.TLS {
		target.Scheme = "https"
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // the host the request was signed for
	}}
	p := &ktProxy{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.busy.Add(1)
		defer p.busy.Done()
		data, err := io.ReadAll(&ktCounting{r: r.Body, total: &p.arrived})
		if err != nil || (r.ContentLength >= 0 && int64(len(data)) != r.ContentLength) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		p.whole.Add(int64(len(data)))
		r.Body = io.NopCloser(bytes.NewReader(data))
		// Neither the request's context nor the writer (a CloseNotifier,
		// which ReverseProxy heeds) may stop it when the client is gone.
		rp.ServeHTTP(struct{ http.ResponseWriter }{w}, r.WithContext(context.WithoutCancel(r.Context())))
	}))
	t.Cleanup(hs.Close)
	p.addr = hs.Listener.Addr().String()
	return p
}

// settle waits until the requests of a killed client have been passed on.
func (p *ktProxy) settle() { p.busy.Wait() }

// ktCounting counts the bytes read, as they come, in total.
type ktCounting struct {
	r     io.Reader
	total *atomic.Int64
}

func (c *ktCounting) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.total.Add(int64(n))
	return n, err
}

// heldParts is how many parts the server holds for the unfinished
// upload of key (the most, should there be several).
func (e *ktEnv) heldParts(ctx context.Context, key string) (int, error) {
	ups, err := e.uploads(ctx, key)
	most := 0
	for _, n := range ups {
		most = max(most, n)
	}
	return most, err
}

func TestKillResumeManySmallFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the ferry binary")
	}
	t.Parallel()
	e := newKTEnv(t)
	src := t.TempDir()
	const n = 2000
	want := map[string][]byte{} // object key → content
	var total int64
	rnd := ktRandom(1)
	for i := range n {
		rel := fmt.Sprintf("d%02d/e%d/f%04d.dat", i%20, i%3, i)
		data := make([]byte, 1024+i%4*1024+i%97) // a few KiB
		rnd.Read(data)
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want["many/"+rel] = data
		total += int64(len(data))
	}
	args := []string{"sync", src, "s3r:many", "--workers", "4", "--max-files-per-task", "50"}

	e.killWhen(t, func() (bool, error) {
		objs, err := e.objects(t.Context(), "many/")
		return len(objs) >= 300 && len(objs) < n, err
	}, args...)

	before, err := e.objects(t.Context(), "many/")
	if err != nil {
		t.Fatal(err)
	}
	var beforeBytes int64
	for k, size := range before {
		if int64(len(want[k])) != size {
			t.Errorf("after the kill, %s has %d bytes, want %d: an object is never half-written", k, size, len(want[k]))
		}
		beforeBytes += size
	}
	if len(before) >= n {
		t.Fatalf("the job finished before the kill (%d objects)", len(before))
	}
	t.Logf("killed with %d of %d files (%d of %d bytes) at the destination", len(before), n, beforeBytes, total)

	var jobs []state.Job
	e.runJSON(t, exitOK, &jobs, "job", "list")
	if len(jobs) != 1 || jobs[0].Status != state.JobRunning {
		t.Fatalf("after the kill, job list %+v, want one job still running", jobs)
	}
	killedID := jobs[0].ID

	var job state.Job
	e.runJSON(t, exitOK, &job, args...)
	c := job.Counters
	if job.ID != killedID || job.Status != state.JobCompleted || job.Resumes < 1 {
		t.Errorf("re-run: job %s status %s resumes %d, want the killed job %s resumed and completed",
			job.ID, job.Status, job.Resumes, killedID)
	}
	if c.FilesTotal != n || c.FilesFailed != 0 || c.FilesTransferred+c.FilesUnchanged != n {
		t.Errorf("re-run counters %+v, want all %d files transferred or found in place", c, n)
	}
	// Files already at the destination were not sent again: those the
	// killed process recorded count as resumed, the others it had written
	// are found in place.
	sent := c.BytesTransferred - c.BytesResumed
	if sent != total-beforeBytes || c.FilesTransferred-c.FilesResumed != int64(n-len(before)) {
		t.Errorf("re-run sent %d files and %d bytes, want exactly the %d files and %d bytes missing after the kill (counters %+v)",
			c.FilesTransferred-c.FilesResumed, sent, n-len(before), total-beforeBytes, c)
	}
	if sent > total*9/10 {
		t.Errorf("re-run sent %d of %d bytes: not well under the total", sent, total)
	}

	jobs = nil
	e.runJSON(t, exitOK, &jobs, "job", "list")
	if len(jobs) != 1 || jobs[0].ID != killedID || jobs[0].Status != state.JobCompleted || jobs[0].Resumes < 1 {
		t.Errorf("job list after the re-run: %+v, want the one resumed job, completed", jobs)
	}

	// Every transferred file is in the success list once: those the
	// killed process recorded, and those the re-run sent.
	stdout, stderr, code := e.run(t, "job", "files", killedID, "--list", "success")
	if code != exitOK {
		t.Fatalf("job files: exit %d\n%s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, r := range rows[1:] {
		if paths[r[0]] {
			t.Errorf("%s is in the success list twice", r[0])
		}
		paths[r[0]] = true
	}
	if int64(len(paths)) != c.FilesTransferred {
		t.Errorf("success list holds %d files, the job says %d were transferred", len(paths), c.FilesTransferred)
	}

	// Byte for byte.
	after, err := e.objects(t.Context(), "many/")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != n {
		t.Fatalf("destination holds %d objects, want %d", len(after), n)
	}
	keys := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for k := range keys {
				obj, err := e.client.GetObject(t.Context(), e.bucket, k, minio.GetObjectOptions{})
				if err != nil {
					t.Errorf("get %s: %v", k, err)
					continue
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil || !bytes.Equal(got, want[k]) {
					t.Errorf("%s differs from the source (err %v)", k, err)
				}
			}
		})
	}
	for k := range want {
		keys <- k
	}
	close(keys)
	wg.Wait()
}

func TestKillResumeMultipartFile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the ferry binary")
	}
	t.Parallel()
	e := newKTEnv(t)
	const size = 300 << 20
	dir := t.TempDir()
	path := filepath.Join(dir, "big.bin")
	wantSum := ktWriteRandom(t, path, size, 2)
	mtime := time.Date(2022, 3, 4, 5, 6, 7, 890000000, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	args := []string{"sync", dir, "s3r:big"}

	e.killWhen(t, func() (bool, error) {
		ups, err := e.uploads(t.Context(), "big/big.bin")
		for _, parts := range ups {
			// 24 of the 60 parts: early enough to kill before the
			// upload ends, late enough that the re-run must send well
			// under three quarters of the file (checked below).
			if parts >= 24 {
				return true, err
			}
		}
		return false, err
	}, args...)

	ups, err := e.uploads(t.Context(), "big/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 {
		t.Fatalf("after the kill, uploads %v, want one unfinished upload", ups)
	}
	var partsAtKill int
	for _, p := range ups {
		partsAtKill = p
	}
	if partsAtKill >= size/ktPartSize {
		t.Fatalf("the upload had all %d parts when it was killed", partsAtKill)
	}
	t.Logf("killed with %d of %d parts uploaded", partsAtKill, size/ktPartSize)

	var job state.Job
	e.runJSON(t, exitOK, &job, args...)
	c := job.Counters
	if job.Status != state.JobCompleted || job.Resumes < 1 || c.FilesTransferred != 1 || c.BytesTransferred != size {
		t.Fatalf("re-run: status %s resumes %d counters %+v, want the job resumed and the file transferred",
			job.Status, job.Resumes, c)
	}
	// Every part the store held is kept, in whatever order the parts
	// finished: the re-run sends exactly the others.
	sent := c.BytesTransferred - c.BytesResumed
	// bytes_sent adds what the killed process had counted: at most the
	// parts it left, none twice.
	if c.BytesResumed != int64(partsAtKill)*ktPartSize || c.BytesSent < sent || c.BytesSent > size {
		t.Errorf("re-run sent %d bytes (%d resumed, bytes_sent %d) after %d parts were uploaded, want the other %d bytes: finished parts were sent again",
			sent, c.BytesResumed, c.BytesSent, partsAtKill, size-int64(partsAtKill)*ktPartSize)
	}
	if sent > size*3/4 {
		t.Errorf("re-run sent %d of %d bytes: not well under the total", sent, size)
	}

	e.wantFinished(t, "big/big.bin", wantSum)
	info, err := e.client.StatObject(t.Context(), e.bucket, "big/big.bin", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size || info.UserMetadata["Mtime"] != "1646370367.89" || info.UserMetadata["Sha256"] != wantSum {
		t.Errorf("object size %d, metadata %v; want mtime 1646370367.89 and sha256 %s", info.Size, info.UserMetadata, wantSum)
	}
}

// TestKillFiveTimesResendsLittle kills a sync of a 256 MiB file five times
// at random moments while its parts are in flight (seeded: FERRY_TEST_SEED
// replays a run), then lets it finish. What reached the server over the six
// runs, counted by a proxy in front of it, stays under 1.3 times the file:
// a resume keeps every part the server holds, in whatever order the parts
// finished, even those the killed process had no time to record.
func TestKillFiveTimesResendsLittle(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the ferry binary")
	}
	t.Parallel()
	seed := testenv.Seed(t)
	rnd := rand.New(rand.NewPCG(seed, 0))

	px := newKTProxy(t, testenv.SharedMinIO(t))
	e := newKTEnvVia(t, px.addr)
	const (
		// 52 parts: room for five kills, each of which may find up to 8
		// parts in flight that still land.
		size  = 256 << 20
		parts = (size + ktPartSize - 1) / ktPartSize
		kills = 5
	)
	dir := t.TempDir()
	wantSum := ktWriteRandom(t, filepath.Join(dir, "big.bin"), size, 3)
	args := []string{"sync", dir, "s3r:big"} // default workers: 8 parts in flight

	// Kill once the server holds k parts, for five random k: parts are
	// in flight then, some about to finish. A resume continues the same
	// upload, so k grows by at least one part each run; it starts well
	// short of the end (parts land between the look and the kill).
	var at []int
	for _, k := range rnd.Perm(parts - 28)[:kills] {
		at = append(at, k+1)
	}
	slices.Sort(at)
	held := 0
	for i, k := range at {
		k = max(k, held+1)
		// Parts of the run before may still land after its kill: this
		// run must have sent something of its own too.
		before := px.arrived.Load()
		e.killWhen(t, func() (bool, error) {
			n, err := e.heldParts(t.Context(), "big/big.bin")
			return n >= k && px.arrived.Load() > before, err
		}, args...)
		px.settle()
		var err error
		if held, err = e.heldParts(t.Context(), "big/big.bin"); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d at %d parts: the server holds %d of %d parts; %d bytes arrived, %d of them in whole bodies taken",
			i+1, k, held, parts, px.arrived.Load(), px.whole.Load())
	}

	var job state.Job
	e.runJSON(t, exitOK, &job, args...)
	c := job.Counters
	if job.Status != state.JobCompleted || job.Resumes != kills || c.FilesTransferred != 1 || c.BytesTransferred != size {
		t.Fatalf("last run: status %s resumes %d counters %+v, want the job resumed %d times and the file transferred",
			job.Status, job.Resumes, c, kills)
	}
	// The parts the server took, over all runs, are the data sent: what
	// is above the file's size was sent again. The parts in flight at
	// each kill arrived in part too, but no engine can keep them (up to
	// workers × part_size a kill): they are logged only.
	whole, arrived := px.whole.Load(), px.arrived.Load()
	t.Logf("the server took %d bytes for a %d-byte file (%.2fx); %d arrived in all (%.2fx); bytes_sent %d",
		whole, size, float64(whole)/size, arrived, float64(arrived)/size, c.BytesSent)
	if whole >= size*13/10 {
		t.Errorf("the server took %d bytes over %d kills, %.2f times the %d-byte file: want less than 1.3 times",
			whole, kills, float64(whole)/size, size)
	}
	// bytes_sent counts the parts ferry knows the server took: never
	// more than it did.
	if c.BytesSent > whole {
		t.Errorf("bytes_sent %d is more than the %d bytes the server took", c.BytesSent, whole)
	}
	e.wantFinished(t, "big/big.bin", wantSum)
}

func TestJobFilesMatchWhatHappened(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the ferry binary")
	}
	t.Parallel()
	e := newKTEnv(t)
	src := t.TempDir()
	files := map[string]string{"good.txt": "good\n", "dir/ok.txt": "fine, too\n", "back\\slash.txt": "a backslash name"}
	for rel, content := range files {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := filepath.Join(t.TempDir(), "files.txt")
	if err := os.WriteFile(list, []byte("good.txt\n/dir/ok.txt\nback\\slash.txt\nbad\xffname.txt\n/missing.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var job state.Job
	e.runJSON(t, exitPartial, &job, "sync", src, "s3r:c", "--files-from", list)
	if c := job.Counters; job.Status != state.JobPartial || c.FilesTransferred != 2 || c.FilesSkipped != 2 || c.FilesFailed != 1 {
		t.Fatalf("job status %s counters %+v, want partial with 2 copied, 2 skipped, 1 failed", job.Status, c)
	}
	objs, err := e.objects(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs["c/good.txt"] != 5 || objs["c/dir/ok.txt"] != 10 {
		t.Errorf("bucket holds %v, want only c/good.txt and c/dir/ok.txt", objs)
	}

	sha := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	type row = []string
	tests := []struct {
		list   string
		header row
		rows   []row // sorted by path; a reason is matched as a substring
	}{
		{"success", row{"path", "size", "sha256", "note"}, []row{
			{"dir/ok.txt", "10", sha(files["dir/ok.txt"]), "new"},
			{"good.txt", "5", sha(files["good.txt"]), "new"},
		}},
		{"skipped", row{"path", "size", "reason"}, []row{
			{`"bad\xffname.txt"`, "0", "invalid path: path is not valid UTF-8"},
			{`back\slash.txt`, "0", "invalid path: path contains a backslash"},
		}},
		{"failed", row{"path", "size", "error"}, []row{
			{"missing.txt", "0", "no such file at the source"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			stdout, stderr, code := e.run(t, "job", "files", job.ID, "--list", tt.list)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
			if err != nil {
				t.Fatalf("CSV: %v\n%s", err, stdout)
			}
			if len(recs) == 0 || !slices.Equal(recs[0], tt.header) {
				t.Fatalf("CSV header %v, want %v\n%s", recs[:min(1, len(recs))], tt.header, stdout)
			}
			got := recs[1:]
			slices.SortFunc(got, func(a, b row) int { return strings.Compare(a[0], b[0]) })
			if len(got) != len(tt.rows) {
				t.Fatalf("CSV rows %q, want %q", got, tt.rows)
			}
			for i, w := range tt.rows {
				g := got[i]
				last := len(w) - 1
				if len(g) != len(w) || !slices.Equal(g[:last], w[:last]) || !strings.Contains(g[last], w[last]) {
					t.Errorf("CSV row %q, want %q", g, w)
				}
			}

			// The same list as JSON, via --format json and via --json.
			for _, args := range [][]string{
				{"job", "files", job.ID, "--list", tt.list, "--format", "json"},
				{"--json", "job", "files", job.ID, "--list", tt.list},
			} {
				stdout, stderr, code := e.run(t, args...)
				if code != exitOK {
					t.Fatalf("%v: exit %d\n%s", args, code, stderr)
				}
				var recs []struct {
					Path   string `json:"path"`
					Size   int64  `json:"size"`
					SHA256 string `json:"sha256"`
					Note   string `json:"note"`   // success: the CSV's note column
					Reason string `json:"reason"` // skipped
					Error  string `json:"error"`  // failed
				}
				if err := json.Unmarshal([]byte(stdout), &recs); err != nil {
					t.Fatalf("%v: not JSON: %v\n%s", args, err, stdout)
				}
				slices.SortFunc(recs, func(a, b struct {
					Path   string `json:"path"`
					Size   int64  `json:"size"`
					SHA256 string `json:"sha256"`
					Note   string `json:"note"`   // success: the CSV's note column
					Reason string `json:"reason"` // skipped
					Error  string `json:"error"`  // failed
				}) int {
					return strings.Compare(a.Path, b.Path)
				})
				if len(recs) != len(tt.rows) {
					t.Fatalf("%v: %d records, want %d:\n%s", args, len(recs), len(tt.rows), stdout)
				}
				for i, w := range tt.rows {
					r := recs[i]
					r.Reason += r.Note + r.Error // the one the list has, named as in the CSV
					reason, shaWant := w[len(w)-1], ""
					if tt.list == "success" {
						shaWant = w[2]
					}
					if r.Path != w[0] || strconv.FormatInt(r.Size, 10) != w[1] || r.SHA256 != shaWant || !strings.Contains(r.Reason, reason) {
						t.Errorf("%v: record %+v, want %q", args, r, w)
					}
				}
			}
		})
	}

	// job show agrees with the lists.
	var shown state.Job
	e.runJSON(t, exitOK, &shown, "job", "show", job.ID)
	if shown.ID != job.ID || shown.Status != state.JobPartial || shown.Counters != job.Counters {
		t.Errorf("job show %+v, want the job the sync printed %+v", shown, job)
	}
}
