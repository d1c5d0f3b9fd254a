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
// attempt may overcome: one marked with Retryable, a network timeout, a
// refused or reset connection. A canceled context is never retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var r retryable
	if errors.As(err, &r) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
