//go:build !linux

package changelist

// renameNoReplace renames oldpath to newpath, failing with an error that
// matches fs.ErrExist when newpath exists.
func renameNoReplace(oldpath, newpath string) error {
	return linkRename(oldpath, newpath)
}
