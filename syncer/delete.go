package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// deletes removes destination files that no longer exist at the source. It
// runs only when the plan has delete = true, after every copy succeeded, and
// refuses — failing the job, deleting nothing — when the source root is
// empty or missing, or when the deletions would exceed MaxDelete.
func (r *run) deletes(ctx context.Context) error {
	cs := r.opt.Changes
	if !r.p.Delete {
		if cs != nil {
			for _, k := range cs.Deletes {
				r.skip(k, 0, "deleted at the source, but delete is off for this plan")
			}
			return r.flushPending()
		}
		return nil
	}
	if r.p.Mode == ModeFiles && cs == nil {
		return nil
	}
	if n := r.c.filesFailed.Load(); n > 0 {
		r.log.Warn("deletes skipped because files failed", slog.Int64("failed", n))
		r.job.Meta[MetaDeletesNotRun] = fmt.Sprintf("%s failed; run again", nounStr(n, "file", "files"))
		if cs != nil {
			for _, k := range cs.Deletes {
				r.skip(k, 0, "not deleted: other files of the job failed; run again")
			}
			return r.flushPending()
		}
		return nil
	}
	r.phase.Store("deleting")
	empty, err := r.sourceEmpty(ctx)
	if err != nil {
		return failJob("delete refused: cannot list the source %s: %v", r.p.SourceDesc, err)
	}
	if empty {
		return failJob("delete refused: the source %s is empty or missing; nothing was deleted", r.p.SourceDesc)
	}

	var victims []remote.ObjectInfo
	var total int64
	if cs != nil {
		victims, total, err = r.changeSetVictims(ctx, cs.Deletes)
	} else {
		victims, total, err = r.scanVictims(ctx)
	}
	if err != nil {
		return err
	}
	if len(victims) == 0 {
		return nil
	}
	if !r.p.MaxDelete.allows(int64(len(victims)), total) {
		return failJob("delete refused: %d of %d destination files would be deleted, more than max_delete (%s); nothing was deleted",
			len(victims), total, r.p.MaxDelete)
	}
	var done []string
	var recs []state.FileRecord
	for _, v := range victims {
		key := v.Key
		if r.p.DryRun {
			recs = append(recs, state.FileRecord{Path: key, Size: v.Size, Reason: "dry run: would delete"})
			r.c.filesDeleted.Add(1) // what would be deleted, as "transferred" is what would be copied
			continue
		}
		if err := r.insideSource(key); err != nil {
			r.failFile(key, 0, err.Error())
			continue
		}
		if err := r.p.Dest.Delete(ctx, key); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.failFile(key, 0, "delete: "+err.Error())
			continue
		}
		done = append(done, key)
		recs = append(recs, state.FileRecord{Path: key, Size: v.Size, Reason: "deleted"})
	}
	r.c.filesDeleted.Add(int64(len(done)))
	if len(done) > 0 {
		if err := r.e.DB.DeleteFiles(r.p.Name, done); err != nil {
			return fmt.Errorf("forget deleted files: %w", err)
		}
	}
	return r.e.DB.AppendFileRecords(r.job.ID, state.ListSuccess, recs)
}

// insideSource refuses to delete key when the destination directory that
// holds it is the source or inside it, as it is now: a bind mount of the
// source below the destination's root passes the check of the two roots,
// and deleting through it would delete the source.
func (r *run) insideSource(key string) error {
	kp, ok := r.p.Dest.(remote.KeyPlacer)
	if !ok || r.srcPlace == nil {
		return nil
	}
	at, err := kp.PlaceOf(key)
	if err != nil {
		return fmt.Errorf("not deleted: cannot resolve where it is: %w", err)
	}
	if r.srcPlace.Contains(at) {
		return fmt.Errorf("not deleted: its directory %s is the source %s or inside it (a mount of the source inside the destination?)", at, r.srcPlace)
	}
	return nil
}

// sourceEmpty reports whether the source has no object at all.
func (r *run) sourceEmpty(ctx context.Context) (bool, error) {
	errFound := errors.New("found")
	err := r.p.Source.List(ctx, "", func(remote.ObjectInfo) error { return errFound })
	if errors.Is(err, errFound) {
		return false, nil
	}
	return err == nil, err
}

// scanVictims merges a listing of the destination against one of the source
// (both in key order) and returns the destination files the source lacks.
// Keys the filter excludes and keys that break the rules are never deleted,
// nor are keys the source listed but could not read: an entry it skipped
// (an unreadable directory, an archived object, a symlink it does not
// follow, a name that breaks the rules) counts as present, with everything
// under it. Those are recorded as skipped, and the job's summary says how
// many were kept.
func (r *run) scanVictims(ctx context.Context) ([]remote.ObjectInfo, int64, error) {
	src := startPresenceCursor(ctx, r.p.Source)
	defer src.stop()
	var victims []remote.ObjectInfo
	var total int64
	kept := withheld{}
	err := r.p.Dest.List(ctx, "", func(d remote.ObjectInfo) error {
		if d.SkipReason != "" || remote.ValidateKey(d.Key) != nil {
			return nil
		}
		if r.p.reserved(d.Key) {
			return nil
		}
		total++
		if !r.p.Filter.Match(d.Key) {
			return nil
		}
		skipped, found, err := src.present(d.Key)
		switch {
		case err != nil:
			return fmt.Errorf("list source: %w", err)
		case skipped != nil:
			kept.add(skipped)
			if skipped.Key != d.Key {
				// The entry itself is on the skipped list already, from the
				// scan; a file under it gets a line of its own.
				r.skip(d.Key, d.Size, fmt.Sprintf("not deleted: the source has %s but could not read it (%s)", skipped.Key, skipped.SkipReason))
			}
		case !found:
			victims = append(victims, d)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, failJob("delete refused: %v; nothing was deleted", err)
	}
	if c, ok := strings.CutPrefix(r.job.Meta[MetaDestCheck], DestCheckTrusted); ok {
		// The copies trusted the index, but this pass listed the
		// destination in full.
		r.job.Meta[MetaDestCheck] = DestCheckListedForDeletes + c
	}
	if kept.files > 0 {
		r.job.Meta[MetaDeletesWithheld] = kept.String()
		r.log.Warn("deletes withheld under source entries that could not be read",
			slog.Int64("files", kept.files), slog.Int("entries", kept.entries))
	}
	return victims, total, r.flushPending()
}

// withheld counts the destination files a delete pass kept because the
// source listed them, or a directory above them, without being able to
// read it.
type withheld struct {
	files   int64
	entries int
	last    string   // the skipped entry of the latest kept file
	names   []string // the first few skipped entries, for the summary
}

func (w *withheld) add(skipped *remote.ObjectInfo) {
	w.files++
	if skipped.Key == w.last {
		return
	}
	w.last = skipped.Key
	w.entries++
	if len(w.names) < 3 {
		w.names = append(w.names, skipped.Key+" ("+skipped.SkipReason+")")
	}
}

func (w *withheld) String() string {
	files, entries := "files", "entries"
	if w.files == 1 {
		files = "file"
	}
	if w.entries == 1 {
		entries = "entry"
	}
	s := fmt.Sprintf("%d destination %s not deleted: the source lists %d %s it could not read: %s",
		w.files, files, w.entries, entries, strings.Join(w.names, ", "))
	if w.entries > len(w.names) {
		s += ", …"
	}
	return s + "; the skipped list names each file"
}

// changeSetVictims checks each path a change set deletes: it must be gone
// from the source, match the filter and exist at the destination. The total
// for max_delete is the number of files the plan's index knows.
func (r *run) changeSetVictims(ctx context.Context, keys []string) ([]remote.ObjectInfo, int64, error) {
	var victims []remote.ObjectInfo
	seen := make(map[string]bool)
	for _, key := range keys {
		if seen[key] {
			continue
		}
		seen[key] = true
		if err := remote.ValidateKey(key); err != nil {
			r.skip(remote.PrintableKey(key), 0, "invalid path: "+reasonOf(err))
			continue
		}
		if !r.p.Filter.Match(key) || r.p.reserved(key) {
			continue
		}
		_, err := r.p.Source.Stat(ctx, key)
		switch {
		case err == nil:
			r.skip(key, 0, "listed as deleted, but it still exists at the source; not deleted")
			continue
		case !errors.Is(err, remote.ErrNotExist):
			r.failFile(key, 0, "check source before delete: "+err.Error())
			continue
		}
		oi, err := r.p.Dest.Stat(ctx, key)
		if errors.Is(err, remote.ErrNotExist) {
			continue
		} else if err != nil {
			r.failFile(key, 0, "check destination before delete: "+err.Error())
			continue
		}
		victims = append(victims, remote.ObjectInfo{Key: key, Size: oi.Size})
	}
	var total int64
	err := r.e.DB.IterateFiles(r.p.Name, "", func(string, state.FileEntry) error { total++; return nil })
	if err != nil {
		return nil, 0, err
	}
	if err := r.flushPending(); err != nil {
		return nil, 0, err
	}
	return victims, max(total, int64(len(victims))), nil
}

// nounStr is n and the noun, singular for one: "1 file", "3 files".
func nounStr(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
