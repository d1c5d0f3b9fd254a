package vault

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/ferrysync/ferry/remote"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// ReadData reads every pack the backup uses, whole, and checks that
	// each of the backup's chunks in it hashes to its name and that the
	// pack hashes to its own; without it the packs' presence and trailers
	// are checked (a ranged read of each pack's end).
	ReadData bool
	// Workers is how many packs are read at once (default 4).
	Workers int
	// MarkError sets the manifest's status to error when a chunk is missing
	// or corrupt, so the backup is no longer replicated.
	MarkError bool
	// Progress, when set, is called after each pack read (ReadData) with
	// the number of the backup's chunks checked and the total; from several
	// goroutines.
	Progress func(done, total int64)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	BackupID string
	Chunks   int64 // distinct chunks the backup references
	Bytes    int64 // their total size
	Packs    int64 // packs holding them
	ReadData bool
	// Problems lists every missing or damaged pack, trailer or chunk, one
	// line each.
	Problems []string
	// Marked is true when the manifest was set to status error.
	Marked bool
}

// OK reports whether nothing was wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify checks a backup: its tree is present, hashes to its name and is
// well-formed; every pack it uses is present, with a sound trailer that
// lists each of the backup's chunks where the tree says; with ReadData,
// every chunk's content hashes to its name and every pack's to its own.
// Trailers are read from the store, not the local cache. Problems with the
// data are reported in the report, not as an error; the error is for what
// stopped the check (the store is unreachable, the backup does not
// exist).
func (v *Vault) Verify(ctx context.Context, id string, opts VerifyOptions) (*VerifyReport, error) {
	m, err := v.Backup(ctx, id)
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	rep := &VerifyReport{BackupID: id, ReadData: opts.ReadData}
	tree, err := v.Tree(ctx, m)
	switch {
	case errors.Is(err, remote.ErrNotExist), errors.Is(err, remote.ErrChecksum), errors.Is(err, ErrFormat):
		rep.Problems = append(rep.Problems, err.Error())
		return rep, v.markError(ctx, m, rep, opts)
	case err != nil:
		return nil, fmt.Errorf("verify: %w", err)
	}

	refs := chunksByPack(tree)
	for _, cs := range refs {
		for _, c := range cs {
			rep.Chunks++
			rep.Bytes += c.Size
		}
	}
	rep.Packs = int64(len(refs))
	sizes := map[string]int64{}
	err = v.listPacks(ctx, func(sum string, oi remote.ObjectInfo) error {
		if _, ok := refs[sum]; ok {
			sizes[sum] = oi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify backup %s: %w", id, err)
	}
	var present []packInfo
	var total int64
	for _, sum := range sortedKeys(refs) {
		size, ok := sizes[sum]
		if !ok {
			rep.Problems = append(rep.Problems, fmt.Sprintf("pack %s: missing (it holds %d chunks of the backup)", PackKey(sum), len(refs[sum])))
			continue
		}
		present = append(present, packInfo{sum: sum, size: size})
		total += int64(len(refs[sum]))
	}

	// One list of problems per pack, in the packs' order.
	found := make([][]string, len(present))
	var done atomic.Int64
	type job struct {
		i int
		p packInfo
	}
	jobs := make([]job, len(present))
	for i, p := range present {
		jobs[i] = job{i, p}
	}
	err = forEach(ctx, jobs, opts.Workers, func(ctx context.Context, j job) error {
		problems, err := v.checkPackIndex(ctx, j.p, refs[j.p.sum])
		if err != nil {
			return err
		}
		if opts.ReadData {
			more, err := v.checkPackData(ctx, j.p, refs[j.p.sum])
			if err != nil {
				return err
			}
			problems = append(problems, more...)
			n := done.Add(int64(len(refs[j.p.sum])))
			if opts.Progress != nil {
				opts.Progress(n, total)
			}
		}
		if len(problems) > 0 {
			// This host's next backup stores the pack's chunks again
			// instead of trusting them (see loadIndex), which repairs
			// what later backups reference.
			v.cache.markDamaged(j.p.sum)
		}
		found[j.i] = problems
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify backup %s: %w", id, err)
	}
	for _, ps := range found {
		rep.Problems = append(rep.Problems, ps...)
	}
	return rep, v.markError(ctx, m, rep, opts)
}

// chunksByPack returns the distinct chunks of a tree by the pack that
// holds them.
func chunksByPack(t *Tree) map[string][]Chunk {
	refs := map[string][]Chunk{}
	seen := map[[32]byte]struct{}{}
	for _, e := range t.Entries {
		for _, c := range e.Chunks {
			k := hexKey(c.SHA256)
			if _, ok := seen[k]; ok {
				continue
			}
			seen[k] = struct{}{}
			refs[c.Pack] = append(refs[c.Pack], c)
		}
	}
	return refs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkPackIndex reads a pack's trailer from the store and checks that it
// lists each of refs where the tree says.
func (v *Vault) checkPackIndex(ctx context.Context, p packInfo, refs []Chunk) ([]string, error) {
	key := PackKey(p.sum)
	entries, _, err := readPackIndex(ctx, v.store, key, p.size)
	switch {
	case errors.Is(err, remote.ErrNotExist), errors.Is(err, remote.ErrChecksum), errors.Is(err, ErrFormat):
		return []string{fmt.Sprintf("pack %s: trailer: %v", key, err)}, nil
	case err != nil:
		return nil, err
	}
	at := make(map[string]PackEntry, len(entries))
	for _, e := range entries {
		at[e.SHA256] = e
	}
	var problems []string
	for _, c := range refs {
		if e, ok := at[c.SHA256]; !ok || e.Offset != c.Offset || e.Size != c.Size {
			problems = append(problems, fmt.Sprintf("chunk %s: not in %s at offset %d (%d bytes), as the tree says", c.SHA256, key, c.Offset, c.Size))
		}
	}
	return problems, nil
}

// checkPackData reads a pack whole, in one stream, hashing each of refs on
// the way and the pack itself. A damaged pack whose chunks in refs are
// intact is one problem (its other chunks or its trailer changed).
func (v *Vault) checkPackData(ctx context.Context, p packInfo, refs []Chunk) ([]string, error) {
	key := PackKey(p.sum)
	rc, err := v.store.Open(ctx, key, 0, -1)
	switch {
	case errors.Is(err, remote.ErrNotExist):
		return []string{fmt.Sprintf("pack %s: missing", key)}, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	sorted := slices.SortedFunc(slices.Values(refs), func(a, b Chunk) int { return cmp.Compare(a.Offset, b.Offset) })
	whole := sha256.New()
	var problems []string
	var pos int64
	for _, c := range sorted {
		if c.Offset < pos {
			problems = append(problems, fmt.Sprintf("chunk %s: at offset %d of %s, it overlaps the chunk before it", c.SHA256, c.Offset, key))
			continue
		}
		if _, err := io.CopyN(whole, rc, c.Offset-pos); err != nil {
			return readProblem(problems, key, pos, err)
		}
		h := sha256.New()
		var x *ChunkCheck // the XXH3 a mount checks reads against, when the tree records one
		w := io.MultiWriter(whole, h)
		if c.XXH3 != "" {
			x = NewChunkCheck(c)
			w = io.MultiWriter(whole, h, x)
		}
		n, err := io.CopyN(w, rc, c.Size)
		pos = c.Offset + n
		if err != nil {
			return readProblem(problems, key, pos, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.SHA256 {
			problems = append(problems, fmt.Sprintf("chunk %s at offset %d of %s: %v: content hashes to %s", c.SHA256, c.Offset, key, remote.ErrChecksum, got))
		} else if x != nil {
			if err := x.Verify(); err != nil {
				problems = append(problems, fmt.Sprintf("chunk %s at offset %d of %s: the tree's XXH3-128 is wrong (mounts would fail to read it): %v", c.SHA256, c.Offset, key, err))
			}
		}
	}
	n, err := io.Copy(whole, io.LimitReader(rc, MaxPackSize-pos+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	pos += n
	if got := hex.EncodeToString(whole.Sum(nil)); got != p.sum && len(problems) == 0 {
		problems = append(problems, fmt.Sprintf("pack %s (%d bytes): %v: content hashes to %s; the backup's chunks in it are intact", key, pos, remote.ErrChecksum, got))
	}
	return problems, nil
}

// readProblem turns a read that ended early into a problem (the pack is
// shorter than the tree says), any other read error into an error.
func readProblem(problems []string, key string, pos int64, err error) ([]string, error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return append(problems, fmt.Sprintf("pack %s: %v: it ends at %d bytes, before the backup's chunks in it", key, remote.ErrChecksum, pos)), nil
	}
	return nil, fmt.Errorf("read %s: %w", key, err)
}

func (v *Vault) markError(ctx context.Context, m *Manifest, rep *VerifyReport, opts VerifyOptions) error {
	if rep.OK() || !opts.MarkError || m.Status != StatusAvailable {
		return nil
	}
	m.Status = StatusError
	if err := v.putManifest(ctx, m); err != nil {
		return fmt.Errorf("verify: mark backup %s as error: %w", m.ID, err)
	}
	rep.Marked = true
	return nil
}
