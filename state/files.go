package state

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// FileEntry is what the index remembers about one file of a plan after its
// last verified copy: the source's size, mtime and SHA-256, and what the
// destination reported for the copy. Times are returned in UTC.
type FileEntry struct {
	Size    int64
	ModTime time.Time
	// SHA256 is the lower-case hex SHA-256 of the content.
	SHA256 string
	// DestETag and DestModTime are the destination object's ETag and mtime
	// as stored, to notice a copy changed behind Ferry's back.
	DestETag    string
	DestModTime time.Time
	// VerifiedAt is when the copy was last verified.
	VerifiedAt time.Time
}

// GetFile returns the index entry of path in plan; found is false when the
// index has none.
func (db *DB) GetFile(plan, path string) (e FileEntry, found bool, err error) {
	if err := checkPlanPath(plan, path); err != nil {
		return FileEntry{}, false, fmt.Errorf("get file: %w", err)
	}
	err = db.view(func(txn *badger.Txn) error {
		var derr error
		found, err = get(txn, fileKey(plan, path), func(v []byte) error {
			e, derr = decodeFileEntry(v)
			return derr
		})
		return err
	})
	if err != nil {
		return FileEntry{}, false, fmt.Errorf("get file %s in plan %s: %w", path, plan, err)
	}
	return e, found, nil
}

// PutFiles sets the index entries of plan for every path in entries,
// replacing what was there. It writes in bulk (thousands per call are
// cheap) but not atomically: after a crash some entries of the call may be
// stored and others not, each one whole.
func (db *DB) PutFiles(plan string, entries map[string]FileEntry) error {
	for path := range entries {
		if err := checkPlanPath(plan, path); err != nil {
			return fmt.Errorf("put files in plan %q: %w", plan, err)
		}
	}
	var buf []byte
	err := db.batch(func(wb *badger.WriteBatch) error {
		for path, e := range entries {
			// WriteBatch keeps the slices until it commits: no reuse.
			buf = encodeFileEntry(make([]byte, 0, 64), e)
			if err := wb.Set(fileKey(plan, path), buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put %d files in plan %s: %w", len(entries), plan, err)
	}
	return nil
}

// DeleteFiles removes the index entries of paths in plan. Absent paths are
// not an error.
func (db *DB) DeleteFiles(plan string, paths []string) error {
	for _, path := range paths {
		if err := checkPlanPath(plan, path); err != nil {
			return fmt.Errorf("delete files in plan %q: %w", plan, err)
		}
	}
	err := db.batch(func(wb *badger.WriteBatch) error {
		for _, path := range paths {
			if err := wb.Delete(fileKey(plan, path)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %d files in plan %s: %w", len(paths), plan, err)
	}
	return nil
}

// IterateFiles calls fn for every index entry of plan whose path starts
// with prefix ("" for all), in byte-wise path order. It stops and returns
// fn's error as-is when fn returns one. fn runs outside any transaction and
// may write to the database; entries changed during the iteration may or
// may not be seen.
func (db *DB) IterateFiles(plan, prefix string, fn func(path string, e FileEntry) error) error {
	if err := checkName("plan", plan); err != nil {
		return fmt.Errorf("iterate files: %w", err)
	}
	kp := withSep(pFile, plan)
	start := len(kp)
	kp = append(kp, prefix...)
	err := db.scan(kp, false, false, func(k, v []byte) error {
		e, err := decodeFileEntry(v)
		if err != nil {
			return fmt.Errorf("file %s: %w", k[start:], err)
		}
		return callerErr(fn(string(k[start:]), e))
	})
	return finish("iterate files of plan "+plan, err)
}

// CountFiles returns how many index entries plan has.
func (db *DB) CountFiles(plan string) (int64, error) {
	if err := checkName("plan", plan); err != nil {
		return 0, fmt.Errorf("count files: %w", err)
	}
	var n int64
	err := db.scan(withSep(pFile, plan), false, true, func(_, _ []byte) error { n++; return nil })
	if err != nil {
		return 0, fmt.Errorf("count files of plan %s: %w", plan, err)
	}
	return n, nil
}

// DropPlanIndex removes the whole file index of plan (for a plan that was
// deleted or whose destination changed). It uses badger's DropPrefix,
// which is fast for millions of entries but pauses every other write
// of the database until it is done.
func (db *DB) DropPlanIndex(plan string) error {
	if err := checkName("plan", plan); err != nil {
		return fmt.Errorf("drop plan index: %w", err)
	}
	db.gate.Lock()
	defer db.gate.Unlock()
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.bdb.DropPrefix(withSep(pFile, plan)); err != nil {
		return fmt.Errorf("drop index of plan %s: %w", plan, err)
	}
	return nil
}

func checkPlanPath(plan, path string) error {
	if err := checkName("plan", plan); err != nil {
		return err
	}
	return checkName("path", path)
}
