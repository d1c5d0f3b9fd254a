//go:build !linux

package local

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io/fs"
	"os"
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
