package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ferrysync/ferry/remote"
)

func TestTranslate(t *testing.T) {
	resp := func(code string, status int) error {
		return minio.ErrorResponse{Code: code, Message: "server says " + code, StatusCode: status, RequestID: "REQ1"}
	}
	dial := &url.Error{Op: "Put", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	dns := &url.Error{Op: "Get", URL: "http://nowhere.invalid/b", Err: &net.DNSError{
		Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}}
	reset := &url.Error{Op: "Put", URL: "http://h/b/k", Err: &net.OpError{
		Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}}

	tests := []struct {
		name      string
		err       error
		sentinel  error // nil: none of the sentinels
		retryable bool
	}{
		{"NoSuchKey", resp("NoSuchKey", 404), remote.ErrNotExist, false},
		{"wrapped NoSuchKey", fmt.Errorf("op: %w", resp("NoSuchKey", 404)), remote.ErrNotExist, false},
		{"pointer NoSuchKey", &minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, remote.ErrNotExist, false},
		{"NotFound", resp("NotFound", 404), remote.ErrNotExist, false},
		{"NoSuchUpload", resp("NoSuchUpload", 404), remote.ErrNotExist, false},
		{"bare 404", resp("", 404), remote.ErrNotExist, false},
		{"NoSuchBucket", resp("NoSuchBucket", 404), ErrNoBucket, false},
		{"AccessDenied", resp("AccessDenied", 403), remote.ErrPermission, false},
		{"bare 403", resp("", 403), remote.ErrPermission, false},
		{"SignatureDoesNotMatch", resp("SignatureDoesNotMatch", 403), remote.ErrPermission, false},
		{"InvalidAccessKeyId", resp("InvalidAccessKeyId", 403), remote.ErrPermission, false},
		{"SlowDown", resp("SlowDown", 503), nil, true},
		{"SlowDownWrite", resp("SlowDownWrite", 503), nil, true},
		{"RequestTimeout", resp("RequestTimeout", 400), nil, true},
		{"InternalError", resp("InternalError", 500), nil, true},
		{"unknown 502", resp("Whatever", 502), nil, true},
		{"429", resp("", 429), nil, true},
		{"server not initialized", resp("XMinioServerNotInitialized", 503), nil, true},
		{"payload SHA-256 mismatch", resp("XAmzContentSHA256Mismatch", 400), remote.ErrChecksum, true},
		{"additional checksum mismatch", resp("XAmzContentChecksumMismatch", 400), remote.ErrChecksum, true},
		{"BadDigest", resp("BadDigest", 400), remote.ErrChecksum, true},
		{"InvalidArgument", resp("InvalidArgument", 400), nil, false},
		{"connection refused", dial, ErrUnreachable, true},
		{"unknown host", dns, ErrUnreachable, true},
		{"connection reset", reset, nil, true},
		{"server hung up", &url.Error{Op: "Put", URL: "http://h/b/k", Err: io.EOF}, nil, true},
		{"plain error", errors.New("something else"), nil, false},
	}
	sentinels := []error{remote.ErrNotExist, remote.ErrPermission, remote.ErrChecksum, ErrNoBucket, ErrUnreachable}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := translate(tt.err)
			for _, s := range sentinels {
				if want := s == tt.sentinel; errors.Is(got, s) != want {
					t.Errorf("errors.Is(translate(%v), %v) = %v, want %v", tt.err, s, !want, want)
				}
			}
			if remote.IsRetryable(got) != tt.retryable {
				t.Errorf("IsRetryable(translate(%v)) = %v, want %v", tt.err, !tt.retryable, tt.retryable)
			}
			var er minio.ErrorResponse
			if errors.As(got, &er) {
				t.Errorf("translate(%v) still carries a minio.ErrorResponse", tt.err)
			}
			if code := minio.ToErrorResponse(tt.err).Code; code != "" && !strings.Contains(got.Error(), code) {
				t.Errorf("translate(%v) = %q: the message lost the S3 code %s", tt.err, got, code)
			}
		})
	}
}

// Only failures to reach the server are remote.ErrUnreachable: those count
// toward a job's breaker; answers of the server never do.
func TestTranslateUnreachable(t *testing.T) {
	refused := &url.Error{Op: "Put", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	reset := &url.Error{Op: "Put", URL: "http://h/b/k", Err: &net.OpError{
		Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}}
	for _, tt := range []struct {
		name        string
		err         error
		unreachable bool
	}{
		{"connection refused", refused, true},
		{"connection reset", reset, true},
		{"server hung up", &url.Error{Op: "Put", URL: "http://h/b/k", Err: io.EOF}, true},
		{"cut short", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"NoSuchKey", minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, false},
		{"AccessDenied", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, false},
		{"BadDigest", minio.ErrorResponse{Code: "BadDigest", StatusCode: 400}, false},
		{"SlowDown", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, false},
		{"canceled", &url.Error{Op: "Get", URL: "http://h/b", Err: context.Canceled}, false},
	} {
		got := translate(tt.err)
		if remote.IsUnreachable(got) != tt.unreachable || errors.Is(got, remote.ErrUnreachable) != tt.unreachable {
			t.Errorf("%s: translate(%v) = %v: IsUnreachable %v, want %v", tt.name, tt.err, got, !tt.unreachable, tt.unreachable)
		}
		if tt.unreachable && !remote.IsRetryable(got) {
			t.Errorf("%s: translate(%v) is not retryable", tt.name, tt.err)
		}
	}
}

func TestTranslateContext(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		context.DeadlineExceeded,
		&url.Error{Op: "Get", URL: "http://h/b", Err: context.Canceled},
		fmt.Errorf("x: %w", context.DeadlineExceeded),
	} {
		got := translate(err)
		if got != err {
			t.Errorf("translate(%v) = %v; context errors must pass unchanged", err, got)
		}
		if remote.IsRetryable(got) {
			t.Errorf("translate(%v) is retryable; a canceled context never is", err)
		}
	}
	if translate(nil) != nil {
		t.Error("translate(nil) != nil")
	}
}

func TestAPIErrorMessage(t *testing.T) {
	err := translate(minio.ErrorResponse{Code: "AccessDenied", Message: "Access Denied.", StatusCode: 403, RequestID: "R9"})
	want := "AccessDenied: Access Denied. (HTTP 403, request R9): permission denied"
	if got := fmt.Sprintf("%v: %v", err, remote.ErrPermission); got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}
