// Package atomicfile writes a file whole or not at all: through a
// temporary file in the same directory, renamed into place. It is for
// caches (no fsync: after a crash a file is whole, absent, or the old one;
// caches check what they read anyway).
package atomicfile

import (
	"os"
	"path/filepath"
	"time"
)

// TempPrefix starts the names of the temporary files; a directory's owner
// may remove old ones as the leftovers of a killed process.
const TempPrefix = "tmp-"

// WriteFile writes data to path, creating its directory (mode 0700) when
// missing. When mtime is not zero the file gets it as its access and
// modification time before it appears at path.
func WriteFile(path string, data []byte, mtime time.Time) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, TempPrefix)
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && !mtime.IsZero() {
		err = os.Chtimes(tmp.Name(), mtime, mtime)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
