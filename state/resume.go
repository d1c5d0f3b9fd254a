package state

import "fmt"

// ClearFileRecords removes every record of job jobID's list kind. The sync
// engine calls it when it resumes an interrupted job: the skipped and failed
// files are decided again, so their old records must not stay beside the
// new ones (a file is in exactly one list).
func (db *DB) ClearFileRecords(jobID string, kind ListKind) error {
	if err := checkName("job id", jobID); err != nil {
		return fmt.Errorf("clear file records: %w", err)
	}
	kb, err := listKindByte(kind)
	if err != nil {
		return fmt.Errorf("clear file records of job %s: %w", jobID, err)
	}
	if err := db.deletePrefixes(listPrefix(jobID, kb)); err != nil {
		return fmt.Errorf("clear %s records of job %s: %w", kind, jobID, err)
	}
	return nil
}
