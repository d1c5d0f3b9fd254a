package changelist

import (
	"slices"
	"strings"
)

// Batch is what a Watcher saw change in one period.
//
// Apply it in this order: DeletedDirs, Deletes, Upserts. Every path is a key
// relative to the watched root that passes remote.ValidateKey.
type Batch struct {
	// Upserts exist now and were created or modified.
	Upserts []string
	// Deletes are files that were removed or renamed away.
	Deletes []string
	// DeletedDirs are directories that were removed or renamed away: every
	// key under DIR/ that is not in Upserts is gone. (The watcher cannot
	// list what a vanished directory held; the file index of the last sync
	// can, e.g. state.DB.IterateFiles(plan, DIR+"/", …).)
	DeletedDirs []string
	// Skipped are changed paths that break the key rules, with the reason.
	Skipped []Skipped
	// Overflow means changes were lost (the kernel's event queue
	// overflowed, the inotify watch limit was reached, the root vanished,
	// or too many changes for one batch): run a full scan instead of the
	// lists above, which are then empty. Reason says why.
	Overflow bool
	Reason   string
}

// Empty reports whether the batch asks for nothing.
func (b *Batch) Empty() bool {
	return !b.Overflow && len(b.Upserts) == 0 && len(b.Deletes) == 0 && len(b.DeletedDirs) == 0 && len(b.Skipped) == 0
}

// Merge folds a later batch into b, as if both periods had been one: for a
// path in both, the later change wins, and a directory deleted later
// removes the earlier upserts under it. Use it to queue batches while a
// job runs.
func (b *Batch) Merge(later Batch) {
	if b.Overflow || later.Overflow {
		reason := b.Reason
		if !b.Overflow || reason == "" {
			reason = later.Reason
		}
		*b = Batch{Overflow: true, Reason: reason}
		return
	}
	upsert := make(map[string]bool) // true: upsert, false: delete
	for _, k := range b.Upserts {
		upsert[k] = true
	}
	for _, k := range b.Deletes {
		upsert[k] = false
	}
	dirs := make(map[string]bool)
	for _, d := range b.DeletedDirs {
		dirs[d] = true
	}
	for _, d := range later.DeletedDirs {
		dirs[d] = true
		for k, up := range upsert {
			if up && strings.HasPrefix(k, d+"/") {
				delete(upsert, k)
			}
		}
	}
	for _, k := range later.Deletes {
		upsert[k] = false
	}
	for _, k := range later.Upserts {
		upsert[k] = true
	}
	b.Upserts, b.Deletes = b.Upserts[:0], b.Deletes[:0]
	for k, up := range upsert {
		if up {
			b.Upserts = append(b.Upserts, k)
		} else {
			b.Deletes = append(b.Deletes, k)
		}
	}
	b.DeletedDirs = b.DeletedDirs[:0]
	for d := range dirs {
		b.DeletedDirs = append(b.DeletedDirs, d)
	}
	seen := make(map[string]bool)
	for _, s := range b.Skipped {
		seen[s.Path] = true
	}
	for _, s := range later.Skipped {
		if !seen[s.Path] {
			seen[s.Path] = true
			b.Skipped = append(b.Skipped, s)
		}
	}
	b.sort()
}

func (b *Batch) sort() {
	slices.Sort(b.Upserts)
	slices.Sort(b.Deletes)
	slices.Sort(b.DeletedDirs)
	slices.SortFunc(b.Skipped, func(x, y Skipped) int { return strings.Compare(x.Path, y.Path) })
}
