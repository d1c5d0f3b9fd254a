package vault

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// Delete removes backup id from the vault: its manifest is first marked
// deleting (so a crash in between leaves a backup nobody restores or
// replicates, which prune finishes removing), then removed. Its packs and
// tree stay until a prune finds them unreferenced.
func (v *Vault) Delete(ctx context.Context, id string) error {
	m, err := v.Backup(ctx, id)
	if err != nil {
		return err
	}
	if m.Status != StatusDeleting {
		m.Status = StatusDeleting
		if err := v.putManifest(ctx, m); err != nil {
			return fmt.Errorf("delete backup %s: %w", id, err)
		}
	}
	if err := v.store.Delete(ctx, manifestKey(id)); err != nil {
		return fmt.Errorf("delete backup %s: %w", id, err)
	}
	return nil
}

// DefaultPruneGrace is how old an unreferenced object must be before
// prune deletes it.
const DefaultPruneGrace = time.Hour

// PruneOptions tune Prune.
type PruneOptions struct {
	// Grace: only objects written more than Grace before the prune started
	// are deleted (default DefaultPruneGrace).
	Grace time.Duration
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
	// Workers is how many deletes run at once (default 8).
	Workers int
}

// PruneStats count what Prune did.
type PruneStats struct {
	// ReferencedChunks and ReferencedPacks count what the backups use.
	ReferencedChunks int64 `json:"referenced_chunks"`
	ReferencedPacks  int64 `json:"referenced_packs"`
	// PacksDeleted counts the packs no backup uses that were deleted,
	// ChunksDeleted the chunks in them, and BytesDeleted their size.
	PacksDeleted  int64 `json:"packs_deleted"`
	ChunksDeleted int64 `json:"chunks_deleted"`
	BytesDeleted  int64 `json:"bytes_deleted"`
	TreesDeleted  int64 `json:"trees_deleted"`
	// UnusedChunks and UnusedBytes count chunks no backup uses that stay
	// because their pack holds chunks that are used: prune deletes whole
	// packs only.
	UnusedChunks int64 `json:"unused_chunks"`
	UnusedBytes  int64 `json:"unused_bytes"`
	// Young counts unreferenced objects kept because they are younger than
	// the grace period (a backup or replication may be about to use them).
	Young int64 `json:"young"`
	// ManifestsRemoved counts manifests left in status deleting by an
	// interrupted Delete, removed now.
	ManifestsRemoved int64 `json:"manifests_removed"`
	// StaleMarkers counts running markers of dead processes removed.
	StaleMarkers int64 `json:"stale_markers"`
}

// Prune deletes the packs and trees no backup of the vault references. A
// pack is deleted only when no backup uses any chunk in it: the space of
// unused chunks in a pack still used is not reclaimed (UnusedBytes counts
// it).
//
// It is safe against a backup or a replication into the vault running at
// the same time, on any host: it writes its own running marker, then reads
// the others; if any live backup or replication marker (or another live
// prune) is there it deletes nothing and returns ErrBusy. A writer that
// starts later sees the prune's marker and waits for it to end before it
// lists the packs it will reuse. As a second guard, only objects written
// more than Grace before the prune started are deleted, so packs a killed
// backup uploaded stay for the next run to reuse.
func (v *Vault) Prune(ctx context.Context, opts PruneOptions) (PruneStats, error) {
	var st PruneStats
	if opts.Grace <= 0 {
		opts.Grace = DefaultPruneGrace
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	start := v.now()
	cutoff := start.Add(-opts.Grace)
	id := newID(start)
	sess, err := v.begin(ctx, markerKindPrune, id)
	if err != nil {
		return st, fmt.Errorf("prune vault %s: %w", v.name, err)
	}
	defer sess.end(ctx)

	ms, err := v.markers(ctx)
	if err != nil {
		return st, fmt.Errorf("prune vault %s: %w", v.name, err)
	}
	var stale, busy []string
	for k, m := range ms {
		switch {
		case k == sess.key:
		case !v.live(m):
			stale = append(stale, k)
		default:
			busy = append(busy, fmt.Sprintf("%s %s on %s (pid %d, since %s)", m.Kind, m.ID, m.Host, m.PID, m.Started.Format(time.RFC3339)))
		}
	}
	if len(busy) > 0 {
		slices.Sort(busy)
		return st, fmt.Errorf("prune vault %s: %w: running: %s; try again when it has ended", v.name, ErrBusy, strings.Join(busy, "; "))
	}

	// What the backups reference.
	ms2, err := v.Backups(ctx)
	if err != nil {
		return st, fmt.Errorf("prune vault %s: %w", v.name, err)
	}
	trees := map[string]bool{}
	packs := map[string]bool{}
	chunks := map[[32]byte]struct{}{}
	var deleting []string
	for _, m := range ms2 {
		if m.Status == StatusDeleting {
			deleting = append(deleting, m.ID)
			continue
		}
		trees[m.Tree] = true
		t, err := v.Tree(ctx, m)
		if err != nil {
			// Without the tree prune cannot know what the backup needs:
			// stop rather than delete its packs.
			return st, fmt.Errorf("prune vault %s: %w (verify or delete that backup first)", v.name, err)
		}
		for _, e := range t.Entries {
			for _, c := range e.Chunks {
				packs[c.Pack] = true
				chunks[hexKey(c.SHA256)] = struct{}{}
			}
		}
	}
	st.ReferencedChunks = int64(len(chunks))

	// A pack goes when no backup uses any chunk in it (and it is old
	// enough); the unused chunks of a pack still used stay with it.
	var mu sync.Mutex
	idx, err := v.loadIndex(ctx, func(p packInfo, entries []PackEntry) {
		if !packs[p.sum] {
			return
		}
		var n, size int64
		for _, e := range entries {
			if _, used := chunks[hexKey(e.SHA256)]; !used {
				n++
				size += e.Size
			}
		}
		mu.Lock()
		st.UnusedChunks += n
		st.UnusedBytes += size
		mu.Unlock()
	})
	if err != nil {
		return st, fmt.Errorf("prune vault %s: %w", v.name, err)
	}
	var doomed, doomedPacks []string
	for _, p := range idx.packList() {
		if packs[p.sum] {
			st.ReferencedPacks++
			continue
		}
		if !p.mtime.Before(cutoff) {
			st.Young++
			continue
		}
		doomed = append(doomed, PackKey(p.sum))
		doomedPacks = append(doomedPacks, p.sum)
		st.PacksDeleted++
		st.ChunksDeleted += int64(max(p.chunks, 0))
		st.BytesDeleted += p.size
	}
	err = v.store.List(ctx, treesDir, func(oi remote.ObjectInfo) error {
		sum := strings.TrimPrefix(oi.Key, treesDir)
		if oi.SkipReason != "" || !ValidSHA256(sum) || trees[sum] {
			return nil
		}
		if !oi.ModTime.Before(cutoff) {
			st.Young++
			return nil
		}
		doomed = append(doomed, oi.Key)
		st.TreesDeleted++
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("prune vault %s: list trees: %w", v.name, err)
	}
	st.ManifestsRemoved = int64(len(deleting))
	st.StaleMarkers = int64(len(stale))
	if opts.DryRun {
		return st, nil
	}

	keys := make([]string, 0, len(doomed)+len(deleting)+len(stale))
	keys = append(keys, doomed...)
	for _, id := range deleting {
		keys = append(keys, manifestKey(id))
	}
	keys = append(keys, stale...)
	if err := v.deleteAll(ctx, keys, opts.Workers); err != nil {
		return st, fmt.Errorf("prune vault %s: %w", v.name, err)
	}
	for _, sum := range doomedPacks {
		v.cache.forget(sum)
	}
	v.log.Info("pruned vault", slog.String("vault", v.name), slog.Int64("packs", st.PacksDeleted),
		slog.Int64("chunks", st.ChunksDeleted), slog.Int64("bytes", st.BytesDeleted), slog.Int64("trees", st.TreesDeleted),
		slog.Int64("unused_bytes_kept", st.UnusedBytes))
	return st, nil
}

// deleteAll deletes keys with n workers; the first error stops it.
func (v *Vault) deleteAll(ctx context.Context, keys []string, n int) error {
	return forEach(ctx, keys, n, func(ctx context.Context, k string) error {
		if err := v.store.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
		return nil
	})
}
