package syncer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// Conflict is the policy for a file that already exists at the destination.
type Conflict string

const (
	// ConflictSkip never overwrites an existing destination file.
	ConflictSkip Conflict = "skip"
	// ConflictUpdate overwrites when the source changed since the
	// destination copy (or is newer than a copy Ferry did not make).
	ConflictUpdate Conflict = "update"
	// ConflictOverwrite always overwrites.
	ConflictOverwrite Conflict = "overwrite"
)

// Mode says how a job finds its candidates.
type Mode string

const (
	ModeScan  Mode = "scan"  // walk the whole source
	ModeFiles Mode = "files" // exactly the listed files
)

// Verify says how much checking a job does.
type Verify string

const (
	// VerifyTransferred compares the SHA-256 computed while reading the
	// source with the checksum the destination reports for what it stored.
	VerifyTransferred Verify = "transferred"
	// VerifyAll also re-reads both sides of every file, changed or not, and
	// re-sends a destination file whose content differs.
	VerifyAll Verify = "all"
	// VerifyNone skips checking.
	VerifyNone Verify = "none"
)

// DeleteLimit caps how much of the destination one job may delete: a
// percentage of the destination's objects, or an absolute count.
type DeleteLimit struct {
	Percent float64 // used when > 0
	Count   int64   // used when Percent is 0
}

// allows reports whether deleting n of total destination objects is within
// the limit.
func (l DeleteLimit) allows(n, total int64) bool {
	if l.Percent > 0 {
		return total > 0 && float64(n)*100 <= l.Percent*float64(total)
	}
	return n <= l.Count
}

func (l DeleteLimit) String() string {
	if l.Percent > 0 {
		return fmt.Sprintf("%g%%", l.Percent)
	}
	return fmt.Sprintf("%d files", l.Count)
}

// Plan is a sync plan ready to run: both stores opened, filters compiled.
type Plan struct {
	Name string
	// Source and Dest are the two data sources. SourceDesc and DestDesc name
	// them in messages (e.g. "/srv/data" or "s3a:backups/").
	Source, Dest         remote.Store
	SourceDesc, DestDesc string

	Conflict Conflict
	Mode     Mode
	Files    []string // for ModeFiles: paths relative to the source; a leading "/" is allowed
	Filter   *Filter
	Verify   Verify

	Workers         int
	MaxFilesPerTask int
	MaxBytesPerTask int64

	Delete    bool
	MaxDelete DeleteLimit

	// RecheckDestination is how long a scan trusts the file index's word
	// that the destination still holds the copies it records. A scan
	// after that reads the destination's listing (one listing, not a
	// request per file) and sends again, as the conflict policy allows,
	// what was deleted or changed there behind Ferry's back; so does every
	// scan when it is 0. Scans in between cost the source walk alone.
	RecheckDestination time.Duration

	// DryRun decides and records what would happen, without writing to the
	// destination or the file index.
	DryRun bool

	// Reserved are key prefixes ("dir/") the plan never copies and never
	// deletes: its own changelist inbox on the source or destination.
	Reserved []string

	// MultipartThreshold: files larger than it use a resumable upload when
	// the destination supports one (a file of exactly one part goes in one
	// Put). 0 means the destination's part size.
	MultipartThreshold int64
}

// reserved reports whether key lies under one of the plan's reserved
// prefixes.
func (p *Plan) reserved(key string) bool {
	for _, r := range p.Reserved {
		if strings.HasPrefix(key, r) {
			return true
		}
	}
	return false
}

// ErrPlanRunning is returned when a job of the plan is already running in
// this process.
var ErrPlanRunning = errors.New("a job of this plan is already running")

func (p *Plan) check() error {
	switch {
	case p.Name == "":
		return errors.New("plan has no name")
	case p.Source == nil || p.Dest == nil:
		return fmt.Errorf("plan %s: source and destination must be opened", p.Name)
	}
	switch p.Conflict {
	case ConflictSkip, ConflictUpdate, ConflictOverwrite:
	case "":
		p.Conflict = ConflictUpdate
	default:
		return fmt.Errorf("plan %s: conflict %q is not one of skip, update, overwrite", p.Name, p.Conflict)
	}
	switch p.Mode {
	case ModeScan, ModeFiles:
	case "":
		p.Mode = ModeScan
	default:
		return fmt.Errorf("plan %s: mode %q is not one of scan, files", p.Name, p.Mode)
	}
	switch p.Verify {
	case VerifyTransferred, VerifyAll, VerifyNone:
	case "":
		p.Verify = VerifyTransferred
	default:
		return fmt.Errorf("plan %s: verify %q is not one of transferred, all, none", p.Name, p.Verify)
	}
	if p.Workers <= 0 {
		p.Workers = 8
	}
	if p.MaxFilesPerTask <= 0 {
		p.MaxFilesPerTask = 1000
	}
	if p.MaxBytesPerTask <= 0 {
		p.MaxBytesPerTask = 1 << 30
	}
	if p.MaxDelete.Percent == 0 && p.MaxDelete.Count == 0 {
		p.MaxDelete.Percent = 50
	}
	return nil
}

// ChangeSet is an explicit list of changed paths, from a changelist or a
// watcher. A job given one touches only these paths: no walk of the source,
// no listing of the destination.
type ChangeSet struct {
	// Origin names where the changes came from, for the job record
	// (e.g. "changelist 2026-11-23.csv" or "watch").
	Origin string
	// Upserts and Deletes are keys relative to the source.
	Upserts []string
	Deletes []string
	// Skipped are entries refused before the job (a bad row of a list):
	// they go to the job's skipped list as they are.
	Skipped []SkippedEntry
}

// SkippedEntry is a path that was refused, with the reason.
type SkippedEntry struct {
	Path   string
	Reason string
}

// Progress is a snapshot of a running job, for progress bars.
type Progress struct {
	JobID            string
	Phase            string // "scanning", "transferring", "verifying", "deleting", "done"
	FilesTotal       int64  // candidates found so far
	BytesTotal       int64
	FilesDone        int64 // transferred + skipped + failed + unchanged
	FilesTransferred int64
	BytesTransferred int64
	BytesToTransfer  int64 // bytes decided to transfer so far
	FilesFailed      int64
	ScanDone         bool
	Elapsed          time.Duration
}
