package fusefs

import (
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixCases are the go-fuse posixtest cases that make sense for the
// remote view. Left out, because object storage cannot do them (the mount
// answers with the errno docs/mount.md lists): Link, LinkUnlinkRename
// (hard links), SymlinkReadlink, SetattrSymlink, OpenSymlinkRace
// (symlinks), FileBasic (it creates a file with mode 0755; the mount shows
// every file as 0644), Fallocate, FallocateKeepSize, FcntlFlockSetLk,
// FcntlFlockLocksFile (no preallocation or lock forwarding), XAttr,
// XAttrLarge (no extended attributes) and Tmpfile (no unnamed files).
var posixCases = []string{
	"AppendWrite",
	"DirSeek",
	"DirectIO",
	"FdLeak",
	"FileLarge",
	"FstatDeleted",
	"LseekEnxioCheck",
	"LseekHoleSeeksToEOF",
	"MkdirRmdir",
	"NlinkZero",
	"OpenAt",
	"ParallelFileOpen",
	"ReadDirBasic",
	"ReadDirConsistency",
	"RenameOpenDir",
	"RenameOverwriteDestExist",
	"RenameOverwriteDestNoExist",
	"TruncateFile",
	"TruncateNoFile",
}

func TestPosix(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds() {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			for _, name := range posixCases {
				fn := posixtest.All[name]
				if fn == nil {
					t.Fatalf("posixtest has no case %q", name)
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					mp, _ := mountTest(t, kind.new(t), Options{})
					fn(t, mp)
				})
			}
		})
	}
}
