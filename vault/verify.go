package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ferrysync/ferry/remote"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// ReadData reads every chunk and checks that it hashes to its name;
	// without it only the presence and size of every chunk is checked.
	ReadData bool
	// Workers is how many chunks are read at once (default 8).
	Workers int
	// MarkError sets the manifest's status to error when a chunk is missing
	// or corrupt, so the backup is no longer replicated.
	MarkError bool
	// Progress, when set, is called after each chunk read (ReadData) with
	// the number of chunks done and the total; from several goroutines.
	Progress func(done, total int64)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	BackupID string
	Chunks   int64 // distinct chunks the backup references
	Bytes    int64 // their total size
	ReadData bool
	// Problems lists every missing, mis-sized or corrupt object, one line
	// each.
	Problems []string
	// Marked is true when the manifest was set to status error.
	Marked bool
}

// OK reports whether nothing was wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify checks a backup: its tree is present, hashes to its name and is
// well-formed, and every chunk it references is present with the right
// size; with ReadData, every chunk's content hashes to its name. Problems
// with the data are reported in the report, not as an error; the error is
// for what stopped the check (the store is unreachable, the backup does
// not exist).
func (v *Vault) Verify(ctx context.Context, id string, opts VerifyOptions) (*VerifyReport, error) {
	m, err := v.Backup(ctx, id)
	if err != nil {
		return nil, err
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

	chunks := map[string]int64{}
	for _, e := range tree.Entries {
		for _, c := range e.Chunks {
			if _, ok := chunks[c.SHA256]; !ok {
				chunks[c.SHA256] = c.Size
				rep.Chunks++
				rep.Bytes += c.Size
			}
		}
	}
	stored := make(map[string]int64, len(chunks))
	err = v.listChunks(ctx, func(sum string, oi remote.ObjectInfo) error {
		if _, ok := chunks[sum]; ok {
			stored[sum] = oi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify backup %s: %w", id, err)
	}
	var present []Chunk
	for sum, size := range chunks {
		got, ok := stored[sum]
		switch {
		case !ok:
			rep.Problems = append(rep.Problems, fmt.Sprintf("chunk %s: missing", chunkKey(sum)))
		case got != size:
			rep.Problems = append(rep.Problems, fmt.Sprintf("chunk %s: %d bytes stored, %d expected", chunkKey(sum), got, size))
		default:
			present = append(present, Chunk{SHA256: sum, Size: size})
		}
	}
	if opts.ReadData {
		problems, err := v.readChunks(ctx, present, opts)
		if err != nil {
			return nil, fmt.Errorf("verify backup %s: %w", id, err)
		}
		rep.Problems = append(rep.Problems, problems...)
	}
	return rep, v.markError(ctx, m, rep, opts)
}

// readChunks reads chunks in parallel and returns a line per corrupt one.
func (v *Vault) readChunks(ctx context.Context, chunks []Chunk, opts VerifyOptions) ([]string, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = 8
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var problems []string
	var done atomic.Int64
	total := int64(len(chunks))
	jobs := make(chan Chunk)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range jobs {
				if ctx.Err() != nil {
					continue
				}
				_, err := v.readChunk(ctx, c)
				switch {
				case err == nil:
				case errors.Is(err, remote.ErrChecksum), errors.Is(err, remote.ErrNotExist), errors.Is(err, ErrFormat):
					mu.Lock()
					problems = append(problems, fmt.Sprintf("chunk %s: %v", chunkKey(c.SHA256), err))
					mu.Unlock()
				default:
					cancel(err)
				}
				n := done.Add(1)
				if opts.Progress != nil {
					opts.Progress(n, total)
				}
			}
		})
	}
	for _, c := range chunks {
		select {
		case jobs <- c:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return problems, nil
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
