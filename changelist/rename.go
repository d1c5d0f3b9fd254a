package changelist

import (
	"errors"
	"io/fs"
	"os"
)

// linkRename renames without replacing by a hard link and an unlink; where
// hard links are not supported either, it checks and renames (a small race
// that only matters if two processes share one inbox, which they must not).
func linkRename(oldpath, newpath string) error {
	err := os.Link(oldpath, newpath)
	if err == nil {
		return os.Remove(oldpath)
	}
	if errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
	}
	return os.Rename(oldpath, newpath)
}
