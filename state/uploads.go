package state

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Upload is a multipart upload in progress, kept so that a job that was
// interrupted resumes it from the last finished part instead of starting
// over (or, when it can no longer be used, aborts it).
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
	// Parts finished so far, in part-number order.
	Parts []UploadPart `json:"-"`
	// SourceSHA256State is an opaque snapshot of the source hash after
	// the finished parts (e.g. a marshalled sha256 digest), so a resumed
	// upload need not re-read them. Optional.
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
// key together with its parts. Parts are stored with the header; add more
// later with PutUploadPart. The commit is synced: a lost upload id would
// leave an upload on the destination that nothing aborts.
func (db *DB) PutUpload(u *Upload) error {
	if err := checkUpload(u.Plan, u.Key); err != nil {
		return fmt.Errorf("put upload: %w", err)
	}
	if err := checkName("upload id", u.UploadID); err != nil {
		return fmt.Errorf("put upload of %s: %w", u.Key, err)
	}
	for _, p := range u.Parts {
		if !validPartNumber(p.Number) {
			return fmt.Errorf("put upload of %s: %w: part number %d (valid: 1 to 2147483647)", u.Key, ErrInvalid, p.Number)
		}
	}
	if u.Created.IsZero() {
		u.Created = time.Now().UTC()
	}
	hdr, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("put upload of %s: %w", u.Key, err)
	}
	// Old parts (of this or an earlier upload id) go first, then the
	// header, then the parts. Parts live under the upload id, so if a crash
	// stops this half-way, no part of another upload is taken for ours.
	if err := db.deletePrefixes(withSep(pPart, u.Plan, u.Key)); err != nil {
		return fmt.Errorf("put upload of %s: %w", u.Key, err)
	}
	err = db.batch(func(wb *badger.WriteBatch) error {
		if err := wb.Set(uploadKey(u.Plan, u.Key), hdr); err != nil {
			return err
		}
		for _, p := range u.Parts {
			if err := wb.Set(partKey(u.Plan, u.Key, u.UploadID, p.Number), encodeUploadPart(nil, p)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put upload of %s in plan %s: %w", u.Key, u.Plan, err)
	}
	return db.Sync()
}

// PutUploadPart records one more finished part of the upload stored for
// plan and key. uploadID must be that upload's id: ErrNotFound otherwise
// (the upload was deleted or replaced). Not synced: a part lost in a power
// cut is uploaded again.
func (db *DB) PutUploadPart(plan, objKey, uploadID string, p UploadPart) error {
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
	// this key removes.
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
