package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/minio/minio-go/v7"

	"github.com/ferrysync/ferry/remote"
)

// Errors specific to S3, besides the remote sentinels.
var (
	// ErrNoBucket: the bucket does not exist at the endpoint. It is not
	// ErrNotExist: a missing bucket is a configuration problem, never an
	// empty store.
	ErrNoBucket = errors.New("bucket does not exist")
	// ErrUnreachable: no connection to the endpoint could be made (refused,
	// no route, unknown host). Errors wrapping it also wrap
	// remote.ErrUnreachable and are retryable.
	ErrUnreachable = errors.New("endpoint unreachable")
)

// apiError is an error answer from the S3 server, with the remote sentinel
// it means (if any). It replaces minio.ErrorResponse so that no minio type
// leaves this package.
type apiError struct {
	code      string
	message   string
	status    int
	requestID string
	sentinel  error // remote.ErrNotExist, ErrPermission, ErrChecksum, ErrNoBucket or nil
}

func (e *apiError) Error() string {
	msg := e.code
	if e.message != "" {
		msg += ": " + e.message
	}
	if e.status != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.status)
		if e.requestID != "" {
			msg += ", request " + e.requestID
		}
		msg += ")"
	}
	if msg == "" {
		msg = "S3 error"
	}
	return msg
}

func (e *apiError) Unwrap() error { return e.sentinel }

// unreachableError is a connection-level failure: no connection to the
// endpoint (dial, which is also ErrUnreachable), or one that broke or
// stalled mid-request. Both are remote.ErrUnreachable.
type unreachableError struct {
	err  error
	dial bool
}

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }
func (e *unreachableError) Is(target error) bool {
	return target == remote.ErrUnreachable || (e.dial && target == ErrUnreachable)
}

// S3 error codes by meaning.
var (
	notExistCodes = map[string]bool{
		"NoSuchKey": true, "NotFound": true, "NoSuchVersion": true, "NoSuchUpload": true,
	}
	permissionCodes = map[string]bool{
		"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
		"AllAccessDisabled": true, "AccountProblem": true, "InvalidToken": true,
		"ExpiredToken": true,
	}
	// checksumCodes: the server computed a different checksum than the one
	// sent with the body. The body was damaged on its way; another attempt
	// may succeed.
	checksumCodes = map[string]bool{
		"BadDigest": true, "XAmzContentSHA256Mismatch": true, "XAmzContentChecksumMismatch": true,
		"InvalidDigest": true,
	}
	retryableCodes = map[string]bool{
		"SlowDown": true, "SlowDownRead": true, "SlowDownWrite": true, "RequestTimeout": true,
		"InternalError": true, "ServiceUnavailable": true, "Throttling": true,
		"ThrottlingException": true, "TooManyRequests": true, "RequestThrottled": true,
		"XMinioServerNotInitialized": true, "OperationAborted": true,
	}
)

// translate turns an error from minio-go into our vocabulary: sentinels via
// errors.Is (remote.ErrNotExist, remote.ErrPermission, remote.ErrChecksum,
// ErrNoBucket, ErrUnreachable, remote.ErrUnreachable) and remote.Retryable
// for transient failures. Context errors pass through unchanged. It is the only place
// that looks at minio errors.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if er, ok := asErrorResponse(err); ok && (er.Code != "" || er.StatusCode != 0) {
		return translateResponse(er)
	}
	if isDialError(err) {
		return remote.Retryable(&unreachableError{err: err, dial: true})
	}
	if isTransient(err) {
		return remote.Retryable(&unreachableError{err: err})
	}
	return err
}

func asErrorResponse(err error) (minio.ErrorResponse, bool) {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er, true
	}
	var erp *minio.ErrorResponse
	if errors.As(err, &erp) && erp != nil {
		return *erp, true
	}
	return er, false
}

func translateResponse(er minio.ErrorResponse) error {
	e := &apiError{code: er.Code, message: er.Message, status: er.StatusCode, requestID: er.RequestID}
	switch {
	case er.Code == "NoSuchBucket":
		e.sentinel = ErrNoBucket
	case notExistCodes[er.Code]:
		e.sentinel = remote.ErrNotExist
	case permissionCodes[er.Code] || (er.Code == "" && er.StatusCode == http.StatusForbidden):
		e.sentinel = remote.ErrPermission
	case checksumCodes[er.Code]:
		e.sentinel = remote.ErrChecksum
		return remote.Retryable(e)
	case retryableCodes[er.Code] || er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests:
		return remote.Retryable(e)
	case er.Code == "" && er.StatusCode == http.StatusNotFound:
		e.sentinel = remote.ErrNotExist
	}
	return e
}

// isDialError reports a failure to connect at all: refused, unreachable,
// unknown host.
func isDialError(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

// isTransient reports a connection that broke or stalled mid-request.
func isTransient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var ue *url.Error // the server hung up: "Put ...: EOF"
	if errors.As(err, &ue) && errors.Is(ue.Err, io.EOF) {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, io.ErrUnexpectedEOF)
}

// isCode reports whether err is an S3 error answer with the given code.
func isCode(err error, code string) bool {
	er, ok := asErrorResponse(err)
	return ok && er.Code == code
}
