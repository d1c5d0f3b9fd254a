package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Upload is a multipart upload in progress, kept so that a job that was
// interrupted resumes it, sending only the parts that are missing, instead
// of starting over (or, when it can no longer be used, aborts it).
type Upload struct {
	Plan string `json:"plan"`
	// Key is the destination object's key.
	Key string `json:"key"`
	// UploadID is the destination's id for the multipart upload.
	UploadID string `json:"upload_id"`
	// Size and ModTime describe the source file the upload was started
	// for: if it has changed since, the upload is useless.
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime,omitzero"`
	PartSize int64     `json:"part_size"`
	// SourceETag is the source file's remote.ObjectInfo.ETag when the
	// upload started: a file rewritten with its size and mtime kept has
	// another, and the parts held are then of the old content. "" in
	// records written before it existed, and for a source without ETags.
	SourceETag string `json:"source_etag,omitempty"`
	// Parts finished so far, in part-number order; parts finish in any
	// order, so there may be gaps.
	Parts []UploadPart `json:"-"`
	// SourceSHA256State is an opaque snapshot of the source hash after
	// the longest run of recorded parts from part 1 (e.g. a marshalled
	// sha256 digest), so a resumed upload need not re-read them. Optional.
	// A writer that lengthens that run (PutUploadPart) gives the state as
	// of its new end in the same call.
	SourceSHA256State []byte    `json:"source_sha256_state,omitempty"`
	Created           time.Time `json:"created,omitzero"`
}

// UploadPart is one finished part of a multipart upload.
type UploadPart struct {
	Number int
	Size   int64
	SHA256 string
	ETag   string
}

func checkUpload(plan, objKey string) error {
	if err := checkName("plan", plan); err != nil {
		return err
	}
	return checkName("upload key", objKey)
}

// PutUpload stores u, replacing any upload recorded for the same plan and
// key. Calling it again for the same upload id after each finished part,
// with the whole part list and the new SourceSHA256State, is cheap: only
// the header and the parts that changed are written, atomically, so the
// hash state always matches the parts stored beside it.
//
// The first record of an upload id is synced: a lost upload id would leave
// an upload on the destination that nothing aborts. Later progress is not:
// a part lost in a power cut is uploaded again.
func (db *DB) PutUpload(u *Upload) error {
	if err := checkUpload(u.Plan, u.Key); err != nil {
		return fmt.Errorf("put upload: %w", err)
	}
	if err := checkName("upload id", u.UploadID); err != nil {
		return fmt.Errorf("put upload of %s: %w", u.Key, err)
	}
	seen := make(map[int]bool, len(u.Parts))
	for _, p := range u.Parts {
		if !validPartNumber(p.Number) {
			return fmt.Errorf("put upload of %s: %w: part number %d (valid: 1 to 2147483647)", u.Key, ErrInvalid, p.Number)
		}
		if seen[p.Number] {
			return fmt.Errorf("put upload of %s: %w: part number %d given twice", u.Key, ErrInvalid, p.Number)
		}
		seen[p.Number] = true
	}
	if u.Created.IsZero() {
		u.Created = time.Now().UTC()
	}
	hdr, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("put upload of %s: %w", u.Key, err)
	}
	var oldID string
	err = db.update(func(txn *badger.Txn) error {
		oldID = ""
		var old Upload
		found, err := get(txn, uploadKey(u.Plan, u.Key), func(v []byte) error { return json.Unmarshal(v, &old) })
		if err != nil {
			return err
		}
		if found {
			oldID = old.UploadID
		}
		// The parts already stored for this upload id, to write only
		// what changed.
		stored := map[int][]byte{}
		if found && oldID == u.UploadID {
			pp := partPrefix(u.Plan, u.Key, u.UploadID)
			o := badger.DefaultIteratorOptions
			o.Prefix = pp
			it := txn.NewIterator(o)
			for it.Seek(pp); it.ValidForPrefix(pp); it.Next() {
				k := it.Item().Key()
				if len(k) != len(pp)+4 {
					continue
				}
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				stored[int(binary.BigEndian.Uint32(k[len(pp):]))] = v
			}
			it.Close()
		}
		if err := txn.Set(uploadKey(u.Plan, u.Key), hdr); err != nil {
			return err
		}
		for _, p := range u.Parts {
			v := encodeUploadPart(nil, p)
			if old, ok := stored[p.Number]; ok && bytes.Equal(old, v) {
				continue
			}
			if err := txn.Set(partKey(u.Plan, u.Key, u.UploadID, p.Number), v); err != nil {
				return err
			}
		}
		for n := range stored {
			if !seen[n] {
				if err := txn.Delete(partKey(u.Plan, u.Key, u.UploadID, n)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put upload of %s in plan %s: %w", u.Key, u.Plan, err)
	}
	if oldID != u.UploadID {
		// Parts of any earlier upload of this key (the one replaced, or
		// one a crash stopped DeleteUpload from clearing) are unreachable
		// now: parts are found through the header's upload id.
		if err := db.dropOtherParts(u.Plan, u.Key, u.UploadID); err != nil {
			return fmt.Errorf("put upload of %s in plan %s: drop old parts: %w", u.Key, u.Plan, err)
		}
		return db.Sync()
	}
	return nil
}

// dropOtherParts deletes the parts stored for plan and key under any
// upload id but keep.
func (db *DB) dropOtherParts(plan, objKey, keep string) error {
	keepPrefix := partPrefix(plan, objKey, keep)
	var stale [][]byte
	err := db.scan(withSep(pPart, plan, objKey), false, true, func(k, _ []byte) error {
		if !bytes.HasPrefix(k, keepPrefix) {
			stale = append(stale, k)
		}
		return nil
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	return db.batch(func(wb *badger.WriteBatch) error {
		for _, k := range stale {
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutUploadPart records one more finished part of the upload stored for
// plan and key, and the source hash state after it (nil keeps the stored
// one), in one transaction. uploadID must be that upload's id: ErrNotFound
// otherwise (the upload was deleted or replaced). Not synced.
func (db *DB) PutUploadPart(plan, objKey, uploadID string, p UploadPart, sourceSHA256State []byte) error {
	if err := checkUpload(plan, objKey); err != nil {
		return fmt.Errorf("put upload part: %w", err)
	}
	if !validPartNumber(p.Number) {
		return fmt.Errorf("put upload part of %s: %w: part number %d (valid: 1 to 2147483647)", objKey, ErrInvalid, p.Number)
	}
	err := db.update(func(txn *badger.Txn) error {
		var u Upload
		found, err := get(txn, uploadKey(plan, objKey), func(v []byte) error { return json.Unmarshal(v, &u) })
		if err != nil {
			return err
		}
		if !found || u.UploadID != uploadID {
			return ErrNotFound
		}
		if sourceSHA256State != nil {
			u.SourceSHA256State = sourceSHA256State
			hdr, err := json.Marshal(&u)
			if err != nil {
				return err
			}
			if err := txn.Set(uploadKey(plan, objKey), hdr); err != nil {
				return err
			}
		}
		return txn.Set(partKey(plan, objKey, uploadID, p.Number), encodeUploadPart(nil, p))
	})
	if err != nil {
		return fmt.Errorf("put part %d of upload of %s in plan %s: %w", p.Number, objKey, plan, err)
	}
	return nil
}

// GetUpload returns the upload recorded for plan and key, with its parts
// in part-number order; found is false when there is none.
func (db *DB) GetUpload(plan, objKey string) (u *Upload, found bool, err error) {
	if err := checkUpload(plan, objKey); err != nil {
		return nil, false, fmt.Errorf("get upload: %w", err)
	}
	u, err = db.readUpload(plan, objKey, nil)
	if err != nil {
		return nil, false, fmt.Errorf("get upload of %s in plan %s: %w", objKey, plan, err)
	}
	return u, u != nil, nil
}

// readUpload loads the header (or decodes hdr when given) and the parts.
func (db *DB) readUpload(plan, objKey string, hdr []byte) (*Upload, error) {
	u := new(Upload)
	if hdr == nil {
		found := false
		err := db.view(func(txn *badger.Txn) error {
			var err error
			found, err = get(txn, uploadKey(plan, objKey), func(v []byte) error {
				hdr = append([]byte(nil), v...)
				return nil
			})
			return err
		})
		if err != nil || !found {
			return nil, err
		}
	}
	if err := json.Unmarshal(hdr, u); err != nil {
		return nil, fmt.Errorf("%w: upload: %v", errCorrupt, err)
	}
	pp := partPrefix(plan, objKey, u.UploadID)
	err := db.scan(pp, false, false, func(k, v []byte) error {
		if len(k) != len(pp)+4 {
			return fmt.Errorf("%w: part key %x", errCorrupt, k)
		}
		n := int(binary.BigEndian.Uint32(k[len(pp):]))
		p, err := decodeUploadPart(n, v)
		if err != nil {
			return fmt.Errorf("part %d: %w", n, err)
		}
		u.Parts = append(u.Parts, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(u.Parts, func(i, j int) bool { return u.Parts[i].Number < u.Parts[j].Number })
	return u, nil
}

// DeleteUpload forgets the upload recorded for plan and key and its parts.
// Deleting what is absent is not an error.
func (db *DB) DeleteUpload(plan, objKey string) error {
	if err := checkUpload(plan, objKey); err != nil {
		return fmt.Errorf("delete upload: %w", err)
	}
	// Header first: without it the parts are unreachable, and a crash
	// before they are gone leaves only garbage that the next PutUpload of
	// this key removes (dropOtherParts).
	err := db.update(func(txn *badger.Txn) error { return txn.Delete(uploadKey(plan, objKey)) })
	if err == nil {
		err = db.deletePrefixes(withSep(pPart, plan, objKey))
	}
	if err != nil {
		return fmt.Errorf("delete upload of %s in plan %s: %w", objKey, plan, err)
	}
	return nil
}

// ListUploads calls fn for every upload recorded for plan, in key order,
// with its parts. It stops and returns fn's error as-is when fn returns
// one. fn may write to the database (e.g. DeleteUpload).
func (db *DB) ListUploads(plan string, fn func(*Upload) error) error {
	if err := checkName("plan", plan); err != nil {
		return fmt.Errorf("list uploads: %w", err)
	}
	p := withSep(pUpload, plan)
	err := db.scan(p, false, false, func(k, v []byte) error {
		u, err := db.readUpload(plan, string(k[len(p):]), v)
		if err != nil {
			return fmt.Errorf("upload of %s: %w", k[len(p):], err)
		}
		return callerErr(fn(u))
	})
	return finish("list uploads of plan "+plan, err)
}
