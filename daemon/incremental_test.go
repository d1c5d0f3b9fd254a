package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ferrysync/ferry/changelist"
	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

var discard = slog.New(slog.DiscardHandler)

// putIndex records files of plan in the state database's index, as a
// finished job would.
func putIndex(t *testing.T, db *state.DB, plan string, paths ...string) {
	t.Helper()
	entries := map[string]state.FileEntry{}
	for _, p := range paths {
		entries[p] = state.FileEntry{Size: 1, ModTime: time.Unix(1_700_000_000, 0).UTC()}
	}
	if err := db.PutFiles(plan, entries); err != nil {
		t.Fatal(err)
	}
}

// TestWatchBatchOverflowQueuesFullScan: a batch saying changes were lost
// queues a full job (no change set), and turns an incremental job already
// waiting into a full one.
func TestWatchBatchOverflowQueuesFullScan(t *testing.T) {
	for _, name := range []string{"nothing queued", "incremental queued"} {
		t.Run(name, func(t *testing.T) {
			q, db := testQueue(t)
			plan := &config.Plan{Name: "p"}
			if name == "incremental queued" {
				q.d.watchBatch(q, plan, changelist.Batch{Upserts: []string{"a.txt"}}, discard)
				if q.next == nil || q.next.full || q.next.changes == nil {
					t.Fatalf("an ordinary batch queued %+v, want an incremental job", q.next)
				}
			}
			q.d.watchBatch(q, plan, changelist.Batch{Overflow: true,
				Reason: "the kernel's inotify event queue overflowed"}, discard)
			if q.next == nil {
				t.Fatal("an overflow batch queued nothing")
			}
			if !q.next.full || q.next.changes != nil {
				t.Fatalf("after an overflow the queued job is full=%v with changes %+v; want a full scan, no change set",
					q.next.full, q.next.changes)
			}
			if q.next.trigger != TriggerWatch {
				t.Errorf("trigger %q, want %q", q.next.trigger, TriggerWatch)
			}
			jobs := planJobs(t, db)
			if len(jobs) != 1 || jobs[0].Status != state.JobQueued || jobs[0].Trigger != TriggerWatch || jobs[0].ID != q.next.job.ID {
				t.Errorf("state database holds %+v; want the one queued watch job %s", jobs, q.next.job.ID)
			}
		})
	}
}

// TestWatchBatchEmptyQueuesNothing: an empty batch is no reason to run.
func TestWatchBatchEmptyQueuesNothing(t *testing.T) {
	q, db := testQueue(t)
	q.d.watchBatch(q, &config.Plan{Name: "p"}, changelist.Batch{}, discard)
	if q.next != nil {
		t.Errorf("an empty batch queued %+v", q.next)
	}
	if jobs := planJobs(t, db); len(jobs) != 0 {
		t.Errorf("an empty batch recorded jobs %+v", jobs)
	}
}

// TestWatchBatchExpandsDeletedDirs: a removed directory becomes a delete of
// every file the plan's index holds under it — not of a sibling sharing
// its name as a prefix, not of another plan's files, and not of a file the
// same batch upserts (the directory was made again).
func TestWatchBatchExpandsDeletedDirs(t *testing.T) {
	q, db := testQueue(t)
	putIndex(t, db, "p",
		"gone/a.txt", "gone/sub/b.txt", "gone/back.txt",
		"gone2/c.txt", "gonefile", "keep/d.txt", "other/gone/e.txt")
	putIndex(t, db, "q", "gone/other-plan.txt")

	q.d.watchBatch(q, &config.Plan{Name: "p"}, changelist.Batch{
		Upserts:     []string{"gone/back.txt", "new.txt"},
		Deletes:     []string{"old.txt"},
		DeletedDirs: []string{"gone"},
		Skipped:     []changelist.Skipped{{Path: `bad\name`, Reason: "invalid path: has a backslash"}},
	}, discard)

	if q.next == nil || q.next.full || q.next.changes == nil {
		t.Fatalf("queued %+v, want an incremental job", q.next)
	}
	cs := q.next.changes
	if q.next.trigger != TriggerWatch || cs.Origin != "watch" {
		t.Errorf("trigger %q, origin %q; want watch, watch", q.next.trigger, cs.Origin)
	}
	if got, want := set(cs.Upserts), []string{"gone/back.txt", "new.txt"}; !slices.Equal(got, want) {
		t.Errorf("upserts = %v, want %v", got, want)
	}
	if got, want := set(cs.Deletes), []string{"gone/a.txt", "gone/sub/b.txt", "old.txt"}; !slices.Equal(got, want) {
		t.Errorf("deletes = %v, want %v (the index entries under gone/, except the one upserted again, plus old.txt)", got, want)
	}
	if want := []syncer.SkippedEntry{{Path: `bad\name`, Reason: "invalid path: has a backslash"}}; !slices.Equal(cs.Skipped, want) {
		t.Errorf("skipped = %v, want %v", cs.Skipped, want)
	}

	// A directory given with a trailing slash expands the same way, and
	// the next batch joins the queued job.
	q.d.watchBatch(q, &config.Plan{Name: "p"}, changelist.Batch{DeletedDirs: []string{"keep/"}}, discard)
	if got, want := set(q.next.changes.Deletes), []string{"gone/a.txt", "gone/sub/b.txt", "keep/d.txt", "old.txt"}; !slices.Equal(got, want) {
		t.Errorf("deletes after a second batch = %v, want %v", got, want)
	}
	if jobs := planJobs(t, db); len(jobs) != 1 {
		t.Errorf("%d jobs recorded, want the one queued job both batches joined", len(jobs))
	}
}

// TestWatchBatchDeletedDirUnknownToIndex: a removed directory the index
// knows nothing of adds no deletes, but the batch's other changes run.
func TestWatchBatchDeletedDirUnknownToIndex(t *testing.T) {
	q, _ := testQueue(t)
	putIndex(t, q.d.db, "p", "kept.txt")
	q.d.watchBatch(q, &config.Plan{Name: "p"}, changelist.Batch{
		Upserts: []string{"x.txt"}, DeletedDirs: []string{"never-synced"},
	}, discard)
	if q.next == nil || q.next.changes == nil {
		t.Fatalf("queued %+v, want an incremental job", q.next)
	}
	if len(q.next.changes.Deletes) != 0 || !slices.Equal(q.next.changes.Upserts, []string{"x.txt"}) {
		t.Errorf("change set %+v, want only the upsert of x.txt", q.next.changes)
	}
}

// A changelist whose job the breaker stopped (a remote unreachable) goes
// back to the inbox to be taken again; one whose job failed for another
// reason is rejected, as before.
func TestFinishClaimKeepsListWhenRemoteUnreachable(t *testing.T) {
	db, err := state.Open("", state.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	in, err := changelist.NewLocalInbox(dir, changelist.InboxOptions{Plan: "p", DB: db})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, list string
		meta       map[string]string
		wantAgain  bool
	}{
		{"unreachable", "a.csv", map[string]string{syncer.MetaUnreachable: "destination"}, true},
		{"other failure", "b.csv", map[string]string{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, tt.list), []byte("path,op\n/x/"+tt.list+",upsert\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(filepath.Join(dir, tt.list), old, old); err != nil {
				t.Fatal(err)
			}
			c, err := in.Next(t.Context())
			if err != nil || c == nil || c.Name() != tt.list {
				t.Fatalf("Next = %v, %v; want %s", c, err, tt.list)
			}
			if _, err := c.Parse(t.Context()); err != nil {
				t.Fatal(err)
			}
			j := &state.Job{ID: "j1", Status: state.JobFailed, Error: "boom", Meta: tt.meta}
			FinishClaim(t.Context(), c, j, discard)
			_, err = os.Stat(filepath.Join(dir, tt.list))
			if again := err == nil; again != tt.wantAgain {
				t.Errorf("list back in the inbox: %v (%v); want %v", again, err, tt.wantAgain)
			}
			if tt.wantAgain {
				c, err := in.Next(t.Context())
				if err != nil || c == nil || c.Name() != tt.list {
					t.Fatalf("taken again: Next = %v, %v; want %s", c, err, tt.list)
				}
				if _, err := c.Parse(t.Context()); err != nil {
					t.Errorf("parse the list taken again: %v (the ledger must not take it for a duplicate)", err)
				}
				FinishClaim(t.Context(), c, &state.Job{ID: "j2", Status: state.JobCompleted}, discard)
			}
		})
	}
}
