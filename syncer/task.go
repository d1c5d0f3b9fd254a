package syncer

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ferrysync/ferry/state"
)

// task is a slice of a job's transfers: at most MaxFilesPerTask files and
// MaxBytesPerTask bytes. Its files transfer concurrently with other tasks'
// files; when the last one is done, the task commits its index entries and
// list records in one batch. That commit is the job's checkpoint.
type task struct {
	r    *run
	refs atomic.Int64 // one per unfinished file, plus one while the slicer fills it

	files int
	bytes int64

	mu        sync.Mutex
	index     map[string]state.FileEntry
	successes []state.FileRecord
	failures  []state.FileRecord
}

func (t *task) done(key string, entry *state.FileEntry, success, failure *state.FileRecord) {
	t.mu.Lock()
	if entry != nil {
		t.index[key] = *entry
	}
	if success != nil {
		t.successes = append(t.successes, *success)
	}
	if failure != nil {
		t.failures = append(t.failures, *failure)
	}
	t.mu.Unlock()
	t.release()
}

func (t *task) release() {
	if t.refs.Add(-1) == 0 {
		t.commit()
	}
}

// commit writes the task's results: index entries first, then the lists,
// so a file in the success list is always in the index too.
func (t *task) commit() {
	r := t.r
	db := r.e.DB
	if len(t.index) > 0 && !r.p.DryRun {
		if err := db.PutFiles(r.p.Name, t.index); err != nil {
			r.log.Error("commit task: file index", "err", err)
		}
	}
	if len(t.successes) > 0 {
		if err := db.AppendFileRecords(r.job.ID, state.ListSuccess, t.successes); err != nil {
			r.log.Error("commit task: success list", "err", err)
		}
	}
	if len(t.failures) > 0 {
		if err := db.AppendFileRecords(r.job.ID, state.ListFailed, t.failures); err != nil {
			r.log.Error("commit task: failed list", "err", err)
		}
	}
}

// slicer cuts the stream of decided files into tasks and hands each file to
// the workers.
type slicer struct {
	r   *run
	out chan<- *work
	cur *task
}

func (s *slicer) add(ctx context.Context, w *work) error {
	select {
	case <-s.r.opt.Drain:
		return errDrained
	case <-s.r.brk.tripped:
		return s.r.brk.failure()
	default:
	}
	p := s.r.p
	if s.cur != nil && (s.cur.files >= p.MaxFilesPerTask || s.cur.bytes+w.info.Size > p.MaxBytesPerTask) {
		s.flush()
	}
	if s.cur == nil {
		s.cur = &task{r: s.r, index: make(map[string]state.FileEntry)}
		s.cur.refs.Store(1)
	}
	t := s.cur
	t.files++
	t.bytes += w.info.Size
	t.refs.Add(1)
	w.task = t
	if w.act == actTransfer {
		s.r.c.bytesToTransfer.Add(w.info.Size)
	}
	select {
	case s.out <- w:
		return nil
	case <-ctx.Done():
		t.refs.Add(-1)
		return ctx.Err()
	case <-s.r.opt.Drain:
		t.refs.Add(-1)
		return errDrained
	case <-s.r.brk.tripped:
		t.refs.Add(-1)
		return s.r.brk.failure()
	}
}

// flush seals the current task: once its files are done it commits.
func (s *slicer) flush() {
	if s.cur != nil {
		s.cur.release()
		s.cur = nil
	}
}
