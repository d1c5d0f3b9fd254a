package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
)

// A chunk is checked by its XXH3-128 when the tree records one, else by
// its SHA-256; either way a changed byte, a missing one or one too many is
// ErrChecksum, and the content written in pieces checks like the whole.
func TestChunkCheck(t *testing.T) {
	data := []byte("the content of one chunk, long enough to be written in pieces")
	sum := sha256.Sum256(data)
	withSHA := Chunk{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	withXXH3 := withSHA
	withXXH3.XXH3 = ChunkXXH3(data)
	if !validXXH3(withXXH3.XXH3) {
		t.Fatalf("ChunkXXH3 = %q, not what trees record", withXXH3.XXH3)
	}
	changed := append([]byte(nil), data...)
	changed[7] ^= 1
	for name, c := range map[string]Chunk{"xxh3": withXXH3, "sha256": withSHA} {
		if err := CheckChunk(c, data); err != nil {
			t.Errorf("%s: the chunk itself: %v", name, err)
		}
		k := NewChunkCheck(c)
		for i := 0; i < len(data); i += 10 {
			k.Write(data[i:min(i+10, len(data))])
		}
		if err := k.Verify(); err != nil {
			t.Errorf("%s: the chunk in pieces: %v", name, err)
		}
		for what, bad := range map[string][]byte{"changed": changed, "short": data[:len(data)-1], "long": append(append([]byte(nil), data...), 0)} {
			if err := CheckChunk(c, bad); !errors.Is(err, remote.ErrChecksum) {
				t.Errorf("%s: %s content: %v, want ErrChecksum", name, what, err)
			}
		}
	}
	// The XXH3 is what is checked when there is one: a tree whose SHA-256
	// and XXH3 disagree fails by XXH3.
	wrong := withXXH3
	wrong.XXH3 = ChunkXXH3(changed)
	if err := CheckChunk(wrong, data); !errors.Is(err, remote.ErrChecksum) {
		t.Errorf("content against another XXH3: %v, want ErrChecksum", err)
	}
}

// A backup records the XXH3-128 of every chunk, and it matches the bytes
// stored in the chunk's pack.
func TestBackupRecordsXXH3(t *testing.T) {
	t.Parallel()
	_, st, tree := backupToMem(t, 3<<20)
	ctx := t.Context()
	var n int
	for _, e := range tree.Entries {
		for i, c := range e.Chunks {
			if c.XXH3 == "" {
				t.Fatalf("%s: chunk %d has no XXH3", e.Path, i)
			}
			data := make([]byte, c.Size)
			rd, err := st.Open(ctx, PackKey(c.Pack), c.Offset, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadFull(rd, data)
			rd.Close()
			if err != nil {
				t.Fatal(err)
			}
			if c.XXH3 != ChunkXXH3(data) {
				t.Errorf("%s: chunk %d: XXH3 %s, the stored bytes have %s", e.Path, i, c.XXH3, ChunkXXH3(data))
			}
			n++
		}
	}
	if n < 3 {
		t.Errorf("%d chunks in the backup; the test wants several", n)
	}
}

// verify --read-data checks the XXH3 a tree records too: a wrong one
// (mounts would fail to read the chunk) is a problem, named as such.
func TestCheckPackDataXXH3(t *testing.T) {
	t.Parallel()
	v, _, tree := backupToMem(t, 1<<20)
	ctx := t.Context()
	byPack := chunksByPack(tree)
	var pack string
	for p := range byPack {
		pack = p
	}
	info, err := v.store.Stat(ctx, PackKey(pack))
	if err != nil {
		t.Fatal(err)
	}
	p := packInfo{sum: pack, size: info.Size}
	refs := byPack[pack]
	if problems, err := v.checkPackData(ctx, p, refs); err != nil || len(problems) != 0 {
		t.Fatalf("a sound pack: %q, %v", problems, err)
	}
	bad := append([]Chunk(nil), refs...)
	bad[0].XXH3 = ChunkXXH3([]byte("something else"))
	problems, err := v.checkPackData(ctx, p, bad)
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "XXH3-128 is wrong") {
		t.Errorf("a tree with a wrong XXH3: %q, %v; want one problem naming it", problems, err)
	}
}

// backupToMem backs up makeSource(t, largeSize) into a new vault in
// memory and returns the vault, its store and the backup's tree.
func backupToMem(t *testing.T, largeSize int) (*Vault, *mem.Store, *Tree) {
	t.Helper()
	v, st := newMemVault(t, KindBackup, "acct")
	m, err := v.Create(t.Context(), makeSource(t, largeSize), BackupOptions{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := v.Tree(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return v, st, tree
}
