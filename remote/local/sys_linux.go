package local

import (
	"encoding/binary"
	"hash/fnv"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// xattrName holds the SHA-256 with the size and mtime it was computed for
// (see formatSHAXattr).
const xattrName = "user.ferry.sha256"

// getXattr reads the SHA-256 attribute of f. ok is false when there is
// none or it cannot be read (no xattr support, too long, …).
func getXattr(f *os.File) (string, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", false
	}
	var buf [256]byte
	n := -1
	cerr := rc.Control(func(fd uintptr) {
		n, err = unix.Fgetxattr(int(fd), xattrName, buf[:])
	})
	if cerr != nil || err != nil || n < 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// setXattr records the SHA-256 attribute on f.
func setXattr(f *os.File, v string) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		err = unix.Fsetxattr(int(fd), xattrName, []byte(v), 0)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// rmdir removes the directory dir (relative to r) if it is empty. It never
// removes a file or a symlink: unlinkat with AT_REMOVEDIR refuses both.
func rmdir(r *os.Root, dir string) error {
	parent, err := r.Open(path.Dir(dir))
	if err != nil {
		return err
	}
	defer parent.Close()
	rc, err := parent.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		err = unix.Unlinkat(int(fd), path.Base(dir), unix.AT_REMOVEDIR)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// staleSince reports whether fi's inode last changed (ctime) longer than d
// ago.
func staleSince(fi fs.FileInfo, d time.Duration) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return time.Since(time.Unix(st.Ctim.Sec, st.Ctim.Nsec)) > d
}

// etag identifies one version of a file: its inode, size, mtime and ctime.
// A rename into place gives a new inode and ctime, so every Put changes it,
// and so does any write by another program (which moves mtime or ctime).
func etag(fi fs.FileInfo) string {
	h := fnv.New64a()
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	put(uint64(fi.Size()))
	put(uint64(fi.ModTime().UnixNano()))
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		put(st.Dev)
		put(st.Ino)
		put(uint64(st.Ctim.Sec))
		put(uint64(st.Ctim.Nsec))
	}
	return hexUint64(h.Sum64())
}

// removeNoFollow removes the file at key (relative to r) without following
// a symlink on the way (see inDirNoFollow).
func removeNoFollow(r *os.Root, key string) error {
	return inDirNoFollow(r, path.Dir(key), func(dirFD int) error {
		return unix.Unlinkat(dirFD, path.Base(key), 0)
	})
}

// renameNoFollow renames the file from to to, two names in one directory
// (relative to r), without following a symlink on the way to it.
func renameNoFollow(r *os.Root, from, to string) error {
	return inDirNoFollow(r, path.Dir(to), func(dirFD int) error {
		return unix.Renameat(dirFD, path.Base(from), dirFD, path.Base(to))
	})
}

// inDirNoFollow calls fn with a descriptor of the directory dir (relative
// to r), reached without following a symlink: each directory on the way is
// opened from the root down with O_NOFOLLOW, so a parent replaced by a
// symlink, even while this runs, fails with errSymlinkParent instead of
// leading fn to a directory elsewhere.
func inDirNoFollow(r *os.Root, dir string, fn func(dirFD int) error) error {
	root, err := r.Open(".")
	if err != nil {
		return err
	}
	defer root.Close()
	rc, err := root.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	cerr := rc.Control(func(rootFD uintptr) {
		cur := int(rootFD)
		if dir != "." {
			walked := ""
			for comp := range strings.SplitSeq(dir, "/") {
				walked = path.Join(walked, comp)
				fd, err := unix.Openat(cur, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if cur != int(rootFD) {
					unix.Close(cur)
				}
				if err != nil {
					opErr = parentErr(r, walked, err)
					return
				}
				cur = fd
			}
			defer unix.Close(cur)
		}
		opErr = fn(cur)
	})
	if cerr != nil {
		return cerr
	}
	return opErr
}
