package state

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// ListKind names one of a job's file lists.
type ListKind string

// The three file lists of a job: every file the job handled lands in
// exactly one (unchanged files are only counted).
const (
	ListSuccess ListKind = "success"
	ListSkipped ListKind = "skipped"
	ListFailed  ListKind = "failed"
)

// FileRecord is one line of a job's file list.
type FileRecord struct {
	Path   string
	Size   int64
	SHA256 string
	// Reason is why the file was skipped (skipped list) or the error that
	// failed it (failed list); empty in the success list.
	Reason string
}

// AppendFileRecords adds recs to the end of job jobID's list kind. It is
// safe to call from many goroutines at once; each call's records stay
// together and in order, and calls are ordered as they were made. It is
// cheap per call (one bulk write) and not synced: see doc.go.
//
// The job itself is not checked for existence, so that appending costs no
// read; records of an unknown job are removed by DeleteJob(jobID) only.
func (db *DB) AppendFileRecords(jobID string, kind ListKind, recs []FileRecord) error {
	if err := checkName("job id", jobID); err != nil {
		return fmt.Errorf("append file records: %w", err)
	}
	kb, err := listKindByte(kind)
	if err != nil {
		return fmt.Errorf("append file records to job %s: %w", jobID, err)
	}
	if len(recs) == 0 {
		return nil
	}
	keys := make([][]byte, len(recs))
	err = db.write(func() error {
		db.listMu.Lock()
		defer db.listMu.Unlock()
		for i := range recs {
			seq, err := db.listSeq.Next()
			if err != nil {
				return err
			}
			keys[i] = listKey(jobID, kb, seq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append file records to job %s: %w", jobID, err)
	}
	err = db.batch(func(wb *badger.WriteBatch) error {
		for i, r := range recs {
			if err := wb.Set(keys[i], encodeFileRecord(make([]byte, 0, 32+len(r.Path)+len(r.Reason)), r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d %s records to job %s: %w", len(recs), kind, jobID, err)
	}
	return nil
}

// IterateFileRecords calls fn for each record of job jobID's list kind in
// the order they were appended. It stops and returns fn's error as-is when
// fn returns one. A job without records (or no such job) calls fn never.
func (db *DB) IterateFileRecords(jobID string, kind ListKind, fn func(FileRecord) error) error {
	if err := checkName("job id", jobID); err != nil {
		return fmt.Errorf("iterate file records: %w", err)
	}
	kb, err := listKindByte(kind)
	if err != nil {
		return fmt.Errorf("iterate file records of job %s: %w", jobID, err)
	}
	err = db.scan(listPrefix(jobID, kb), false, false, func(k, v []byte) error {
		r, err := decodeFileRecord(v)
		if err != nil {
			return fmt.Errorf("record %x: %w", k, err)
		}
		return callerErr(fn(r))
	})
	return finish(fmt.Sprintf("iterate %s records of job %s", kind, jobID), err)
}

// CountFileRecords returns how many records job jobID's list kind holds.
// It walks the list's keys (not the values): about a million per second.
func (db *DB) CountFileRecords(jobID string, kind ListKind) (int64, error) {
	if err := checkName("job id", jobID); err != nil {
		return 0, fmt.Errorf("count file records: %w", err)
	}
	kb, err := listKindByte(kind)
	if err != nil {
		return 0, fmt.Errorf("count file records of job %s: %w", jobID, err)
	}
	var n int64
	err = db.scan(listPrefix(jobID, kb), false, true, func(_, _ []byte) error { n++; return nil })
	if err != nil {
		return 0, fmt.Errorf("count %s records of job %s: %w", kind, jobID, err)
	}
	return n, nil
}
