//go:build !linux

package local

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
)

var errNoXattr = errors.New("extended attributes are not supported on this platform")

func getXattr(*os.File) (string, bool) { return "", false }

// staleSince: without a portable ctime, no temporary file is taken for a
// leftover.
func staleSince(fs.FileInfo, time.Duration) bool { return false }

func setXattr(*os.File, string) error { return errNoXattr }

// rmdir removes dir if it is an empty directory (not a symlink).
func rmdir(r *os.Root, dir string) error {
	fi, err := r.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	return r.Remove(dir)
}

// etag identifies one version of a file by its size and mtime.
func etag(fi fs.FileInfo) string {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(fi.Size()))
	binary.LittleEndian.PutUint64(b[8:], uint64(fi.ModTime().UnixNano()))
	h.Write(b[:])
	return hexUint64(h.Sum64())
}

// removeNoFollow removes the file at key (relative to r) after checking
// that none of its parent directories is a symlink (errSymlinkParent).
// Without openat's O_NOFOLLOW this cannot exclude a parent replaced while
// it runs.
func removeNoFollow(r *os.Root, key string) error {
	if err := noSymlinkParents(r, key); err != nil {
		return err
	}
	return r.Remove(key)
}

// renameNoFollow renames from to to (two names in one directory) after the
// same check as removeNoFollow.
func renameNoFollow(r *os.Root, from, to string) error {
	if err := noSymlinkParents(r, to); err != nil {
		return err
	}
	return r.Rename(from, to)
}

// noSymlinkParents returns errSymlinkParent when a parent directory of key
// is a symlink.
func noSymlinkParents(r *os.Root, key string) error {
	walked := ""
	if dir := path.Dir(key); dir != "." {
		for comp := range strings.SplitSeq(dir, "/") {
			walked = path.Join(walked, comp)
			fi, err := r.Lstat(walked)
			if err != nil {
				return parentErr(r, walked, err)
			}
			if !fi.IsDir() {
				return parentErr(r, walked, syscall.ENOTDIR)
			}
		}
	}
	return nil
}
