package syncer

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
	"github.com/ferrysync/ferry/state"
)

// Within RecheckDestination a scan trusts the index and lists nothing at
// the destination; a copy deleted there comes back at the next check,
// which CheckDestination forces.
func TestRecheckDestination(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 30)
	plan := func(d remote.Store) *Plan {
		return &Plan{Name: "p", Source: src, Dest: d, RecheckDestination: time.Hour}
	}
	j1 := f.run(plan(dst), RunOptions{})
	if j1.Status != state.JobCompleted || j1.Counters.FilesTransferred != 30 {
		t.Fatalf("first run: %s, %+v", j1.Status, j1.Counters)
	}
	last, err := LastDestinationCheck(f.db, "p")
	if err != nil || !last.Equal(j1.Started) {
		t.Fatalf("after the first scan the last check is %v (%v), want its start %v", last, err, j1.Started)
	}

	if err := dst.Delete(context.Background(), "d2/f005.txt"); err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: dst}
	j2 := f.run(plan(counting), RunOptions{})
	if j2.Counters.FilesTransferred != 0 || j2.Counters.FilesUnchanged != 30 {
		t.Errorf("scan within the hour: %+v, want all 30 unchanged on the index's word", j2.Counters)
	}
	if n := counting.calls.Load(); n != 0 {
		t.Errorf("scan within the hour made %d destination requests, want none", n)
	}
	if last2, _ := LastDestinationCheck(f.db, "p"); !last2.Equal(last) {
		t.Errorf("a scan that did not check moved the last check to %v", last2)
	}

	j3 := f.run(plan(dst), RunOptions{CheckDestination: true})
	if c, _ := read(t, dst, "d2/f005.txt"); c != "content 5" || j3.Counters.FilesTransferred != 1 {
		t.Errorf("forced check did not restore the deleted copy: %q, %+v", c, j3.Counters)
	}
	if last3, _ := LastDestinationCheck(f.db, "p"); !last3.Equal(j3.Started) {
		t.Errorf("last check %v, want the forced scan's start %v", last3, j3.Started)
	}
}

// A check is due once RecheckDestination has passed, and a scan whose
// listing failed is not recorded as one.
func TestRecheckDestinationDueAndFailedListing(t *testing.T) {
	f := newFixture(t)
	src, dst := mem.New(), mem.New()
	seed(t, src, 10)
	p := &Plan{Name: "p", Source: src, Dest: dst, RecheckDestination: time.Hour}
	f.run(p, RunOptions{})
	// Pretend the last check was two hours ago.
	old := time.Now().Add(-2 * time.Hour).UTC()
	if err := f.db.PutRecord(destCheckNamespace, "p", destCheck{At: old, Job: "old"}); err != nil {
		t.Fatal(err)
	}
	broken := &brokenListStore{Store: dst}
	j := f.run(&Plan{Name: "p", Source: src, Dest: broken, RecheckDestination: time.Hour}, RunOptions{})
	if broken.lists.Load() == 0 {
		t.Fatal("a due check did not list the destination")
	}
	if j.Counters.FilesFailed != 10 {
		t.Errorf("files failed %d, want all 10: absent must never be a guess", j.Counters.FilesFailed)
	}
	if last, _ := LastDestinationCheck(f.db, "p"); !last.Equal(old) {
		t.Errorf("a failed listing was recorded as a check: last %v, want %v", last, old)
	}
	j = f.run(p, RunOptions{})
	if j.Counters.FilesUnchanged != 10 {
		t.Errorf("due check with a working listing: %+v", j.Counters)
	}
	if last, _ := LastDestinationCheck(f.db, "p"); !last.Equal(j.Started) {
		t.Errorf("last check %v, want %v", last, j.Started)
	}
}

// brokenListStore fails every listing.
type brokenListStore struct {
	remote.Store
	lists atomic.Int64
}

func (s *brokenListStore) List(context.Context, string, func(remote.ObjectInfo) error) error {
	s.lists.Add(1)
	return errors.New("listing broke")
}

// A plan whose destination changed checks it whatever the last check of
// the old one; a job of listed files looks its files up every time; the
// job's meta says which happened.
func TestDestCheckNewEndsAndListedFiles(t *testing.T) {
	f := newFixture(t)
	src, dstA, dstB := mem.New(), mem.New(), mem.New()
	seed(t, src, 6)
	p := &Plan{Name: "p", Source: src, Dest: dstA, SourceDesc: "src", DestDesc: "a", RecheckDestination: time.Hour}
	f.run(p, RunOptions{})
	j := f.run(p, RunOptions{})
	if m := j.Meta[MetaDestCheck]; !strings.HasPrefix(m, "trusted the file index") {
		t.Errorf("second scan's meta %q, want it to say the index was trusted", m)
	}

	p.Dest, p.DestDesc = dstB, "b"
	j = f.run(p, RunOptions{})
	if j.Counters.FilesTransferred != 6 {
		t.Errorf("first scan to a new destination: %+v, want all 6 sent", j.Counters)
	}
	if m := j.Meta[MetaDestCheck]; !strings.Contains(m, "ends changed") {
		t.Errorf("meta %q, want it to say the plan's ends changed", m)
	}
	equalContents(t, src, dstB)

	// Listed files: a copy deleted at the destination comes back at once.
	if err := dstB.Delete(context.Background(), "d1/f001.txt"); err != nil {
		t.Fatal(err)
	}
	lp := &Plan{Name: "p", Source: src, Dest: dstB, SourceDesc: "src", DestDesc: "b", Mode: ModeFiles,
		Files: []string{"d1/f001.txt", "d2/f002.txt"}, RecheckDestination: time.Hour}
	j = f.run(lp, RunOptions{})
	if j.Counters.FilesTransferred != 1 || j.Counters.FilesUnchanged != 1 {
		t.Errorf("listed files: %+v, want the deleted one sent and the other unchanged", j.Counters)
	}
	if c, _ := read(t, dstB, "d1/f001.txt"); c != "content 1" {
		t.Errorf("restored copy %q", c)
	}
}
