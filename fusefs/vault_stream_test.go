package fusefs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/vault"
)

// A file larger than the disk cache's share for streams, read through,
// leaves its read-ahead chunks out of the disk cache: only chunks a read
// asked for itself are stored.
func TestVaultStreamSkipsDiskCache(t *testing.T) {
	forEachVaultStore(t, func(t *testing.T, st remote.Store, v *vault.Vault) {
		src := vaultSource(t, vaultBigSize)
		m := backupInto(t, v, src, "x")
		want, err := os.ReadFile(filepath.Join(src, "big.img"))
		if err != nil {
			t.Fatal(err)
		}
		tree, err := v.Tree(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		var chunks int
		for _, e := range tree.Entries {
			if e.Path == "big.img" {
				chunks = len(e.Chunks)
			}
		}
		if chunks < 3 {
			t.Fatalf("big.img has %d chunks; the test needs several", chunks)
		}
		// The disk cache's stream share (diskBytes / streamFraction) is
		// smaller than the file.
		cc := vaultCacheConfig{memBytes: 64 << 20, diskBytes: int64(vaultBigSize/2) * streamFraction / 4}
		mp, mnt, fsys := mountVaultTest(t, v, Options{CacheDir: filepath.Join(t.TempDir(), "cache")}, cc)
		got, err := os.ReadFile(filepath.Join(mp, "latest", "big.img"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read: %d bytes, %v", len(got), err)
		}
		disk := fsys.chunks.disk
		unmountTest(t, mnt) // waits for the disk writer
		_, stored := disk.size()
		if stored == 0 || stored >= chunks {
			t.Errorf("the disk cache holds %d of the file's %d chunks; want the first (asked for), not the ones read ahead", stored, chunks)
		}
	})
}
