package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestIsUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tt := range []struct {
		name                   string
		err                    error
		unreachable, retryable bool
	}{
		{"nil", nil, false, false},
		{"translated", fmt.Errorf("put k: %w", ErrUnreachable), true, true},
		{"refused", refused, true, true},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, true, true},
		{"reset", fmt.Errorf("put: %w", syscall.ECONNRESET), true, true},
		{"throttled", Retryable(errors.New("SlowDown")), false, true},
		{"not found", fmt.Errorf("stat: %w", ErrNotExist), false, false},
		{"permission", fmt.Errorf("put: %w", ErrPermission), false, false},
		{"disk full", fmt.Errorf("put: %w", syscall.ENOSPC), false, false},
		{"canceled", fmt.Errorf("put: %w: %w", context.Canceled, refused), false, false},
	} {
		if got := IsUnreachable(tt.err); got != tt.unreachable {
			t.Errorf("%s: IsUnreachable(%v) = %v, want %v", tt.name, tt.err, got, tt.unreachable)
		}
		if got := IsRetryable(tt.err); got != tt.retryable {
			t.Errorf("%s: IsRetryable(%v) = %v, want %v", tt.name, tt.err, got, tt.retryable)
		}
	}
}
