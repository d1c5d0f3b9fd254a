package syncer

import (
	"strings"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
)

// FromConfig builds a runnable plan from a validated config plan and its
// two opened stores.
func FromConfig(cp *config.Plan, src, dst remote.Store) (*Plan, error) {
	f, err := NewFilter(cp.Include, cp.Exclude)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		Name:            cp.Name,
		Source:          src,
		Dest:            dst,
		SourceDesc:      cp.Source,
		DestDesc:        cp.Destination,
		Conflict:        Conflict(cp.Conflict),
		Mode:            Mode(cp.Mode),
		Files:           cp.Files,
		Filter:          f,
		Verify:          Verify(cp.Verify),
		Workers:         cp.Workers,
		MaxFilesPerTask: cp.MaxFilesPerTask,
		MaxBytesPerTask: int64(cp.MaxBytesPerTask),
		Delete:          cp.Delete,
		MaxDelete:       DeleteLimit{Percent: cp.MaxDelete.Percent, Count: cp.MaxDelete.Count},

		RecheckDestination: cp.RecheckDestination.Duration,
	}
	if side, dir := cp.ChangelistInbox(); side != "" {
		p.Reserved = append(p.Reserved, strings.Trim(dir, "/")+"/")
	}
	return p, p.check()
}
