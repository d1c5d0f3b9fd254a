package remote

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Sentinel errors. Implementations wrap them (fmt.Errorf("...: %w", ErrX))
// and callers test with errors.Is.
var (
	// ErrNotExist: no object at the key.
	ErrNotExist = errors.New("object does not exist")
	// ErrPermission: the store refused access.
	ErrPermission = errors.New("permission denied")
	// ErrInvalidKey: the key breaks the key rules; nothing was done.
	ErrInvalidKey = errors.New("invalid key")
	// ErrChecksum: the content the store received does not hash to the
	// checksum the caller gave.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrSymlinkParent: a directory on the key's way is a symlink, which
	// the store does not follow (a local store's listing never enters one,
	// and nothing is read, written or deleted through one).
	ErrSymlinkParent = errors.New("a parent directory is a symlink; the local store never reads, writes or deletes through a symlinked directory")
	// ErrUnreachable: the store could not be reached: no connection could
	// be made (refused, no route, unknown host), or the connection broke or
	// stalled before the store answered. It says nothing of the object: the
	// same request may succeed once the store is back. Errors wrapping it
	// are also retryable.
	ErrUnreachable = errors.New("store unreachable")
)

// retryable marks an error as worth another attempt.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// Retryable wraps err so that IsRetryable reports true for it. Stores use it
// for transient failures (timeouts, throttling, 5xx answers).
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return retryable{err}
}

// IsRetryable reports whether err is a transient failure that another
// attempt may overcome: one marked with Retryable, or a connection-level
// failure (IsUnreachable). A canceled context is never retryable.
func IsRetryable(err error) bool {
	if canceledOrNil(err) {
		return false
	}
	var r retryable
	return errors.As(err, &r) || IsUnreachable(err)
}

// IsUnreachable reports whether err is a connection-level failure, which
// says the store is not reachable rather than anything about the object:
// one wrapping ErrUnreachable (stores translate their client's errors to
// it), or, for errors no store translated, a network timeout, an unknown
// host, a refused, reset or broken connection. An answer of the store (not
// found, permission, checksum, throttling) is not; nor is a canceled
// context.
func IsUnreachable(err error) bool {
	if canceledOrNil(err) {
		return false
	}
	if errors.Is(err, ErrUnreachable) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

func canceledOrNil(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
