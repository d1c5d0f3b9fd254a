// Package local is a remote.Store over a local directory.
//
// Every access goes through an os.Root, so no key — and no symlink inside
// the directory — can reach a file outside it. Puts are atomic: the content
// goes to a temporary file (".ferry-tmp-*", never listed) in the target's
// directory, is hashed on the way, fsynced, given the caller's mtime, and
// renamed into place. The SHA-256 is kept in the extended attribute
// user.ferry.sha256 together with the size and mtime it was computed for,
// so a file changed later by someone else reports no SHA-256 rather than a
// stale one. Listings walk the tree in byte-wise order of full keys, one
// directory in memory at a time, follow symlinks to files that stay inside
// the root, and report what cannot be copied — symlinks to directories
// (never entered), sockets, pipes, devices, dangling or escaping symlinks,
// unreadable directories, names that break the key rules — with a
// SkipReason. Delete never goes through a symlinked parent directory.
package local
