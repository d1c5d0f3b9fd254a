//go:build !unix

package vault

import (
	"io/fs"
	"time"
)

func fileIDs(fs.FileInfo) (ino uint64, uid, gid int) { return 0, 0, 0 }

func unixMode(m fs.FileMode) uint32 { return uint32(m.Perm()) }

func fileMode(bits uint32) fs.FileMode { return fs.FileMode(bits & 0o777) }

func lchtimes(string, time.Time) error { return nil }

func canChown() bool { return false }

func processAlive(int) bool { return true }
