package fusefs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"github.com/ferrysync/ferry/remote"
)

// toErrno maps an error from a store, the spool or the listing cache to the
// errno the kernel passes to the program. It is the only such mapping in
// the package: it unwraps %w chains (go-fuse's fs.ToErrno does not, so a
// wrapped error would reach the program as ENOSYS).
//
//   - remote.ErrNotExist, fs.ErrNotExist → ENOENT
//   - remote.ErrPermission, fs.ErrPermission → EACCES
//   - remote.ErrInvalidKey → EINVAL
//   - context.Canceled (the program was interrupted) → EINTR
//   - context.DeadlineExceeded → ETIMEDOUT
//   - a transient failure (remote.IsRetryable: timeouts, refused or reset
//     connections, throttling, 5xx answers) → EIO. Not EAGAIN: programs
//     read and write blocking descriptors, and EAGAIN there makes some of
//     them spin instead of reporting the failure.
//   - a local disk condition of the spool (ENOSPC, EDQUOT, EFBIG, EROFS,
//     ENAMETOOLONG) → that errno
//   - anything else → EIO
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, remote.ErrNotExist), errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, remote.ErrPermission), errors.Is(err, fs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, remote.ErrInvalidKey):
		return syscall.EINVAL
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	case remote.IsRetryable(err):
		return syscall.EIO
	case errors.As(err, &errno):
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EROFS, syscall.ENAMETOOLONG:
			return errno
		}
	}
	return syscall.EIO
}
