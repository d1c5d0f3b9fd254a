package testenv

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// helperEnv makes the test binary run one of the helper tests below as a
// child process instead of the normal tests.
const helperEnv = "FERRY_TESTENV_HELPER"

func TestRequiredIn(t *testing.T) {
	tests := []struct {
		list, part string
		want       bool
	}{
		{"", "s3", false},
		{"s3", "s3", true},
		{"S3", "s3", true},
		{"fuse,s3", "s3", true},
		{" fuse , s3 ", "s3", true},
		{"fuse", "s3", false},
		{"s3x", "s3", false},
		{"all", "s3", true},
		{",,", "s3", false},
		{"s3", "", false},
	}
	for _, tt := range tests {
		if got := requiredIn(tt.list, tt.part); got != tt.want {
			t.Errorf("requiredIn(%q, %q) = %v, want %v", tt.list, tt.part, got, tt.want)
		}
	}
}

func TestMissingMessage(t *testing.T) {
	msg := missingMessage(PartS3, "no minio binary", true)
	for _, want := range []string{"s3 not available: no minio binary", "make minio", "FERRY_TEST_REQUIRE lists s3"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if msg := missingMessage(PartS3, "x", false); !strings.Contains(msg, "FERRY_TEST_REQUIRE=s3 to make this a failure") {
		t.Errorf("skip message %q does not say how to make it a failure", msg)
	}
}

// runHelper runs the named helper test in a child test binary with the given
// extra environment, and returns its combined output and whether it passed.
func runHelper(t *testing.T, name string, env ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(withoutFerryEnv(os.Environ()), append([]string{helperEnv + "=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run helper %s: %v", name, err)
	}
	return string(out), err == nil
}

func withoutFerryEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "FERRY_") {
			out = append(out, kv)
		}
	}
	return out
}

// TestHelperNeedsMinIO is run as a child by TestMissingBinary.
func TestHelperNeedsMinIO(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return // only meaningful as a child process
	}
	MinIO(t)
	t.Log("helper got a server")
}

func TestMissingBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child test binary")
	}
	t.Parallel()
	bin := "FERRY_MINIO_BIN=/nonexistent/minio"

	out, ok := runHelper(t, "TestHelperNeedsMinIO", bin, "FERRY_TEST_REQUIRE=fuse,s3")
	if ok {
		t.Fatalf("with FERRY_TEST_REQUIRE=s3 and no binary the test passed; want failure:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestHelperNeedsMinIO", "FERRY_MINIO_BIN=/nonexistent/minio is not an executable file", "make minio"} {
		if !strings.Contains(out, want) {
			t.Errorf("required run output lacks %q:\n%s", want, out)
		}
	}

	out, ok = runHelper(t, "TestHelperNeedsMinIO", bin)
	if !ok || !strings.Contains(out, "--- SKIP: TestHelperNeedsMinIO") {
		t.Errorf("without FERRY_TEST_REQUIRE and no binary, want a skip:\n%s", out)
	}

	out, ok = runHelper(t, "TestHelperNeedsMinIO", bin, "FERRY_TEST_REQUIRE=fuse")
	if !ok || !strings.Contains(out, "--- SKIP: TestHelperNeedsMinIO") {
		t.Errorf("with only fuse required and no binary, want a skip:\n%s", out)
	}
}

func TestIncompleteExternalEndpointFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child test binary")
	}
	t.Parallel()
	out, ok := runHelper(t, "TestHelperNeedsMinIO", "FERRY_TEST_S3_ENDPOINT=127.0.0.1:1")
	if ok || !strings.Contains(out, "FERRY_TEST_S3_ACCESS_KEY") {
		t.Errorf("an endpoint without keys must fail naming the missing variables:\n%s", out)
	}
}

func TestBucketName(t *testing.T) {
	hints := []string{"", "TestX", "TestPut/keys_with_spaces,_commas", strings.Repeat("ÄÖ-", 50), "--..__", "Test/123"}
	seen := map[string]bool{}
	for _, h := range hints {
		name := BucketName(h)
		if err := s3utils.CheckValidBucketNameStrict(name); err != nil {
			t.Errorf("BucketName(%q) = %q: %v", h, name, err)
		}
		if seen[name] {
			t.Errorf("BucketName(%q) = %q repeats", h, name)
		}
		seen[name] = true
	}
}

func FuzzBucketName(f *testing.F) {
	f.Add("TestPut/sub")
	f.Add("\xff\x00--")
	f.Fuzz(func(t *testing.T, hint string) {
		if name := BucketName(hint); s3utils.CheckValidBucketNameStrict(name) != nil {
			t.Fatalf("BucketName(%q) = %q is not a valid bucket name", hint, name)
		}
	})
}

// liveStatus returns the HTTP status of the server's liveness endpoint, or
// an error when nothing answers.
func liveStatus(endpoint string) (int, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + endpoint + "/minio/health/live")
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestMinIOStopStart(t *testing.T) {
	s := MinIO(t)
	if s.external {
		t.Skip("external endpoint: this test stops and starts the server")
	}
	bucket := s.NewBucket(t)
	pid := s.cmd.Process.Pid

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Errorf("minio pid %d still exists after Stop", pid)
	}
	if _, err := liveStatus(s.Endpoint); err == nil {
		t.Errorf("%s still answers after Stop", s.Endpoint)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if code, err := liveStatus(s.Endpoint); err != nil || code != http.StatusOK {
		t.Fatalf("after Start: live = %d, %v", code, err)
	}
	client, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	ok, err := client.BucketExists(context.Background(), bucket)
	if err != nil || !ok {
		t.Errorf("bucket %s after restart on the same data dir: exists=%v err=%v", bucket, ok, err)
	}
}

func TestMinIOCleanupLeavesNothing(t *testing.T) {
	var s *S3Server
	t.Run("server", func(t *testing.T) {
		s = MinIO(t)
		if s.external {
			t.Skip("external endpoint")
		}
		s.NewBucket(t)
	})
	if s == nil || s.external {
		return
	}
	if s.cmd != nil {
		t.Errorf("server still marked running after its test ended")
	}
	if _, err := os.Stat(s.root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory %s left behind: %v", s.root, err)
	}
	if _, err := liveStatus(s.Endpoint); err == nil {
		t.Errorf("%s still answers after the test ended", s.Endpoint)
	}
}

// TestHelperOrphan is run as a child by TestMinIODiesWithParent: it starts a
// server, reports its pid and data directory, and waits to be killed.
func TestHelperOrphan(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return // only meaningful as a child process
	}
	s := MinIO(t)
	os.Stdout.WriteString("PID=" + strconv.Itoa(s.cmd.Process.Pid) + "\nROOT=" + s.root + "\n")
	time.Sleep(time.Hour)
}

func TestMinIODiesWithParent(t *testing.T) {
	if ext, _ := externalFromEnv(); ext != nil {
		t.Skip("external endpoint")
	}
	bin, why := minioBinary()
	if bin == "" || testing.Short() {
		Missing(t, PartS3, why)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOrphan$", "-test.v", "-test.count=1")
	cmd.Env = append(withoutFerryEnv(os.Environ()), helperEnv+"=1", MinIOBinEnv+"="+bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var pid int
	var root string
	sc := bufio.NewScanner(stdout)
	for (pid == 0 || root == "") && sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "PID="); ok {
			pid, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "ROOT="); ok {
			root = v
		}
	}
	if pid == 0 || root == "" {
		t.Fatalf("helper did not report a server (scan: %v)", sc.Err())
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	go io.Copy(io.Discard, stdout)

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Cleanup runs in the child
		t.Fatal(err)
	}
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("minio pid %d outlived its killed parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
