// Package fusefs shows Ferry's storage as directories through FUSE (go-fuse
// v2): the remote view shows the objects of any remote.Store as files, key
// prefixes as directories, and lets programs read and write them; a vault
// view (read-only backups) is another root node type mounted the same way.
//
// # Remote view
//
// MountRemote mounts a remote.Store. Objects are regular files, key
// prefixes are directories. Reads are ranged Opens: each open file keeps one
// ranged read, read ahead on its own goroutine (a window growing to 4 MiB),
// and continues it while the kernel reads sequentially (the mount asks the
// kernel for ordered reads and a 4 MiB read-ahead), and starts a new one at
// the new offset otherwise. An interrupted read returns EINTR and keeps
// what arrived for the retry. Writes go to a spool file in Options.CacheDir; a dirty spool is
// uploaded with Put (SHA-256 and mtime recorded) when the file is flushed
// (close), fsynced or released: close-to-open consistency, as NFS gives.
// Uploads use Options.Context, not the FUSE request's, so an interrupted
// close does not lose data.
//
// Directory listings are cached for Options.ListTTL, in memory and, when
// Options.DB is set, in the state database (namespace
// "mountcache/<CacheID>"), so a remount serves known directories without
// listing the store. An expired listing is fetched again on its next use.
// Changes made through the mount update the cached listings directly.
//
// Object storage has no directories: a directory exists while some object
// has its prefix. A directory made with mkdir, or emptied through the
// mount, is kept in memory until rmdir or unmount; nothing is written to
// the store for it.
//
// What object storage cannot do fails with a fixed errno: hard links,
// symlinks and device nodes (EPERM), chmod and chown to anything but the
// shown owner and mode (EPERM), rename of a non-empty directory (EXDEV, so
// that mv falls back to copying), extended attributes (EOPNOTSUPP). Store
// errors reach the kernel through one mapping, toErrno. docs/mount.md is
// the user-facing description.
//
// The package never imports daemon; the daemon and `ferry mount` call it.
package fusefs
