package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Job statuses. A job is created queued or running and ends in one of the
// terminal statuses (completed, partial, failed, canceled).
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobCompleted = "completed"
	JobPartial   = "partial"
	JobFailed    = "failed"
	JobCanceled  = "canceled"
)

// IsTerminal reports whether status is one a job ends in.
func IsTerminal(status string) bool {
	switch status {
	case JobCompleted, JobPartial, JobFailed, JobCanceled:
		return true
	}
	return false
}

func checkStatus(status string) error {
	switch status {
	case JobQueued, JobRunning, JobCompleted, JobPartial, JobFailed, JobCanceled:
		return nil
	}
	return fmt.Errorf("%w: job status %q (valid: %s, %s, %s, %s, %s, %s)", ErrInvalid, status,
		JobQueued, JobRunning, JobCompleted, JobPartial, JobFailed, JobCanceled)
}

// Job is the record of one run of a plan.
type Job struct {
	// ID sorts by creation time: "20261123T020000Z-0001" (UTC second of
	// Created, then a counter within that second).
	ID string `json:"id"`
	// Plan is the plan's name.
	Plan string `json:"plan"`
	// Trigger says what started the job: "schedule", "manual", "watch",
	// "changelist", … (free text chosen by the caller).
	Trigger string `json:"trigger,omitempty"`
	// Status is one of the Job* constants.
	Status string `json:"status"`
	// Error is why the job failed or was partial, if it says.
	Error    string    `json:"error,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	Counters Counters  `json:"counters"`
	// Resumes counts how often the job was resumed after an interruption.
	Resumes int `json:"resumes,omitempty"`
	// Meta holds small extra facts (e.g. the changelist a job came from).
	Meta map[string]string `json:"meta,omitempty"`
}

// Counters are a job's running totals.
type Counters struct {
	FilesTotal       int64 `json:"files_total"`
	FilesTransferred int64 `json:"files_transferred"`
	FilesSkipped     int64 `json:"files_skipped"`
	FilesFailed      int64 `json:"files_failed"`
	FilesUnchanged   int64 `json:"files_unchanged"`
	FilesDeleted     int64 `json:"files_deleted"`
	BytesTotal       int64 `json:"bytes_total"`
	BytesTransferred int64 `json:"bytes_transferred"`
	BytesSkipped     int64 `json:"bytes_skipped"`
	BytesFailed      int64 `json:"bytes_failed"`
	// FilesResumed and BytesResumed are the part of FilesTransferred and
	// BytesTransferred that an earlier, interrupted attempt of the same job
	// copied.
	FilesResumed int64 `json:"files_resumed,omitempty"`
	BytesResumed int64 `json:"bytes_resumed,omitempty"`
	// BytesSent is what went to the destination: the bytes of every
	// object and part it accepted, summed over all attempts of the job. A
	// part sent twice counts twice; a part another job left at the
	// destination, not at all. Not counted: a request that failed midway,
	// and what a killed attempt sent after its last checkpoint (taken
	// after every part, and every 2 seconds) — but a part it sent and
	// never recorded is counted when the next attempt finds it there.
	BytesSent int64 `json:"bytes_sent"`
}

// JobFilter selects jobs for ListJobs. Zero fields match everything.
type JobFilter struct {
	Plan   string
	Status string
	// Since keeps jobs created at or after it.
	Since time.Time
	// Newest lists newest first; otherwise oldest first.
	Newest bool
	// Limit stops after this many jobs (0: no limit).
	Limit int
}

const jobIDTimeFormat = "20060102T150405Z"

// CreateJob stores a new job. An empty ID is assigned (and set in j) from
// Created, which defaults to now; an empty Status becomes JobQueued. A
// given ID that already exists is an error wrapping ErrExists. The commit
// is synced to disk (see doc.go).
func (db *DB) CreateJob(j *Job) error {
	if err := checkName("plan", j.Plan); err != nil {
		return fmt.Errorf("create job: %w", err)
	}
	if j.Status == "" {
		j.Status = JobQueued
	}
	if err := checkStatus(j.Status); err != nil {
		return fmt.Errorf("create job: %w", err)
	}
	if j.ID != "" {
		if err := checkName("job id", j.ID); err != nil {
			return fmt.Errorf("create job: %w", err)
		}
	}
	if j.Created.IsZero() {
		j.Created = time.Now().UTC()
	}

	db.jobMu.Lock()
	defer db.jobMu.Unlock()
	given := j.ID
	err := db.update(func(txn *badger.Txn) error {
		id := given
		if id == "" {
			var err error
			if id, err = nextJobID(txn, j.Created); err != nil {
				return err
			}
		} else if _, err := txn.Get(jobKey(id)); err == nil {
			return fmt.Errorf("job %s: %w", id, ErrExists)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		j.ID = id
		v, err := json.Marshal(j)
		if err != nil {
			return err
		}
		if err := txn.Set(jobKey(id), v); err != nil {
			return err
		}
		return txn.Set(jobPlanKey(j.Plan, id), nil)
	})
	if err != nil {
		j.ID = given
		return fmt.Errorf("create job for plan %s: %w", j.Plan, err)
	}
	return db.Sync()
}

// nextJobID returns the first free ID for a job created at t: the UTC
// second, then a 4-digit hex counter one above the highest ID of that
// second.
func nextJobID(txn *badger.Txn, t time.Time) (string, error) {
	stamp := t.UTC().Format(jobIDTimeFormat) + "-"
	prefix := key(pJob, stamp)
	o := badger.DefaultIteratorOptions
	o.Reverse = true
	o.PrefetchValues = false
	it := txn.NewIterator(o)
	defer it.Close()
	end := prefixEnd(prefix)
	it.Seek(end)
	if it.Valid() && bytes.Equal(it.Item().Key(), end) {
		it.Next()
	}
	var next uint64 = 1
	for ; it.ValidForPrefix(prefix); it.Next() {
		suffix := it.Item().Key()[len(prefix):]
		if len(suffix) != 4 || !isPackableHex(string(suffix)) {
			continue // a caller-chosen ID that merely starts alike
		}
		if n, err := strconv.ParseUint(string(suffix), 16, 64); err == nil {
			next = n + 1
			break
		}
	}
	if next > 0xffff {
		return "", fmt.Errorf("more than 65535 jobs created in the second %s", stamp)
	}
	return fmt.Sprintf("%s%04x", stamp, next), nil
}

// UpdateJob replaces the stored job j.ID with j (a zero Created keeps the
// stored one). ErrNotFound if there is no such job. A change of Status is
// synced to disk (see doc.go).
func (db *DB) UpdateJob(j *Job) error {
	if err := checkName("job id", j.ID); err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	if err := checkName("plan", j.Plan); err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	if err := checkStatus(j.Status); err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	statusChanged := false
	err := db.update(func(txn *badger.Txn) error {
		var old Job
		found, err := get(txn, jobKey(j.ID), func(v []byte) error { return json.Unmarshal(v, &old) })
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		statusChanged = old.Status != j.Status
		if j.Created.IsZero() {
			j.Created = old.Created
		}
		if old.Plan != j.Plan {
			if err := txn.Delete(jobPlanKey(old.Plan, j.ID)); err != nil {
				return err
			}
			if err := txn.Set(jobPlanKey(j.Plan, j.ID), nil); err != nil {
				return err
			}
		}
		v, err := json.Marshal(j)
		if err != nil {
			return err
		}
		return txn.Set(jobKey(j.ID), v)
	})
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	if statusChanged {
		return db.Sync()
	}
	return nil
}

// GetJob returns the job with the given ID, or an error wrapping
// ErrNotFound.
func (db *DB) GetJob(id string) (*Job, error) {
	if err := checkName("job id", id); err != nil {
		return nil, fmt.Errorf("get job: %w", err)
	}
	var j Job
	var found bool
	err := db.view(func(txn *badger.Txn) error {
		var err error
		found, err = get(txn, jobKey(id), func(v []byte) error { return decodeJob(v, &j) })
		return err
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	return &j, nil
}

func decodeJob(v []byte, j *Job) error {
	if err := json.Unmarshal(v, j); err != nil {
		return fmt.Errorf("%w: job: %v", errCorrupt, err)
	}
	return nil
}

// ListJobs calls fn for each job matching f, in ID (creation) order,
// newest first if f.Newest. It stops and returns fn's error as-is when fn
// returns one. fn may write to the database.
func (db *DB) ListJobs(f JobFilter, fn func(*Job) error) error {
	if f.Status != "" {
		if err := checkStatus(f.Status); err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
	}
	n := 0
	errLimit := errors.New("limit reached")
	match := func(j *Job) error {
		if f.Status != "" && j.Status != f.Status {
			return nil
		}
		if !f.Since.IsZero() && j.Created.Before(f.Since) {
			return nil
		}
		if err := fn(j); err != nil {
			return callerErr(err)
		}
		n++
		if f.Limit > 0 && n >= f.Limit {
			return errLimit
		}
		return nil
	}
	var err error
	if f.Plan != "" {
		if err := checkName("plan", f.Plan); err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		idx := withSep(pJobPlan, f.Plan)
		err = db.scan(idx, f.Newest, true, func(k, _ []byte) error {
			j, err := db.GetJob(string(k[len(idx):]))
			if errors.Is(err, ErrNotFound) {
				return nil // deleted while we list
			}
			if err != nil {
				return err
			}
			return match(j)
		})
	} else {
		err = db.scan([]byte{pJob}, f.Newest, false, func(k, v []byte) error {
			j := new(Job)
			if err := decodeJob(v, j); err != nil {
				return fmt.Errorf("job %s: %w", k[1:], err)
			}
			return match(j)
		})
	}
	if errors.Is(err, errLimit) {
		return nil
	}
	return finish("list jobs", err)
}

// DeleteJob removes a job and its file lists. ErrNotFound if there is no
// such job.
func (db *DB) DeleteJob(id string) error {
	j, err := db.GetJob(id)
	if err != nil {
		return fmt.Errorf("delete job: %w", err)
	}
	// Lists first: a crash in between leaves a job without lists, which a
	// second delete finishes, never lists without a job.
	if err := db.deletePrefixes(withSep(pList, id)); err != nil {
		return fmt.Errorf("delete file lists of job %s: %w", id, err)
	}
	err = db.update(func(txn *badger.Txn) error {
		if err := txn.Delete(jobKey(id)); err != nil {
			return err
		}
		return txn.Delete(jobPlanKey(j.Plan, id))
	})
	if err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	return nil
}

// SweepJobs deletes every job that ended before the given time (jobs in a
// terminal status; a job with no end time counts from its creation), with
// its file lists. Queued and running jobs are kept whatever their age. It
// returns how many jobs it deleted.
func (db *DB) SweepJobs(before time.Time) (int, error) {
	var ids []string
	err := db.ListJobs(JobFilter{}, func(j *Job) error {
		end := j.Ended
		if end.IsZero() {
			end = j.Created
		}
		if IsTerminal(j.Status) && end.Before(before) {
			ids = append(ids, j.ID)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep jobs: %w", err)
	}
	n := 0
	for _, id := range ids {
		if err := db.DeleteJob(id); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return n, fmt.Errorf("sweep jobs: %w", err)
		}
		n++
	}
	return n, nil
}
