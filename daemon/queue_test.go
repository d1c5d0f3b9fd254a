package daemon

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

func incremental(origin string, upserts, deletes []string, skipped ...syncer.SkippedEntry) request {
	return request{trigger: TriggerWatch, changes: &syncer.ChangeSet{Origin: origin, Upserts: upserts, Deletes: deletes, Skipped: skipped}}
}

func full(trigger string) request { return request{trigger: trigger} }

// TestPendingMerge checks how triggers fold into the one follow-up job: a
// full request absorbs incremental ones whatever the order, incremental
// ones add up, and the origin says where the changes came from.
func TestPendingMerge(t *testing.T) {
	bad := syncer.SkippedEntry{Path: "a\\b", Reason: "invalid path"}
	tests := []struct {
		name        string
		reqs        []request
		wantFull    bool
		wantTrigger string
		wantUpserts []string
		wantDeletes []string
		wantSkipped []syncer.SkippedEntry
		wantOrigin  string
	}{
		{
			name:        "one full",
			reqs:        []request{full(TriggerManual)},
			wantFull:    true,
			wantTrigger: TriggerManual,
		},
		{
			name:        "one incremental",
			reqs:        []request{incremental("watch", []string{"a", "b"}, []string{"c"})},
			wantTrigger: TriggerWatch,
			wantUpserts: []string{"a", "b"},
			wantDeletes: []string{"c"},
			wantOrigin:  "watch",
		},
		{
			name: "incrementals add up",
			reqs: []request{
				incremental("watch", []string{"a"}, nil),
				incremental("watch", []string{"b", "a"}, []string{"d"}, bad),
			},
			wantTrigger: TriggerWatch,
			wantUpserts: []string{"a", "b"},
			wantDeletes: []string{"d"},
			wantSkipped: []syncer.SkippedEntry{bad},
			wantOrigin:  "watch",
		},
		{
			name: "origins differ",
			reqs: []request{
				incremental("watch", []string{"a"}, nil),
				incremental("changelist 1.csv", []string{"b"}, nil),
				incremental("changelist 2.csv", []string{"c"}, nil),
			},
			wantTrigger: TriggerWatch,
			wantUpserts: []string{"a", "b", "c"},
			wantOrigin:  "several",
		},
		{
			name:        "full absorbs a later incremental",
			reqs:        []request{full(TriggerSchedule), incremental("watch", []string{"a"}, []string{"b"})},
			wantFull:    true,
			wantTrigger: TriggerSchedule,
		},
		{
			name: "full absorbs earlier incrementals and names the job",
			reqs: []request{
				incremental("watch", []string{"a"}, nil),
				incremental("watch", []string{"b"}, nil),
				full(TriggerManual),
				incremental("watch", []string{"c"}, nil),
				full(TriggerSchedule),
			},
			wantFull:    true,
			wantTrigger: TriggerManual,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.reqs[0]
			p := &pending{job: &state.Job{Trigger: first.trigger}, trigger: first.trigger}
			for _, r := range tc.reqs {
				p.merge(r)
			}
			if p.full != tc.wantFull {
				t.Errorf("full = %v, want %v", p.full, tc.wantFull)
			}
			if p.trigger != tc.wantTrigger || p.job.Trigger != tc.wantTrigger {
				t.Errorf("trigger = %q (job record %q), want %q", p.trigger, p.job.Trigger, tc.wantTrigger)
			}
			if tc.wantFull {
				if p.changes != nil {
					t.Errorf("a full job carries a change set: %+v", p.changes)
				}
				return
			}
			if p.changes == nil {
				t.Fatal("an incremental job has no change set")
			}
			if got := set(p.changes.Upserts); !slices.Equal(got, tc.wantUpserts) {
				t.Errorf("upserts = %v, want %v", got, tc.wantUpserts)
			}
			if got := set(p.changes.Deletes); !slices.Equal(got, tc.wantDeletes) {
				t.Errorf("deletes = %v, want %v", got, tc.wantDeletes)
			}
			if !slices.Equal(p.changes.Skipped, tc.wantSkipped) {
				t.Errorf("skipped = %v, want %v", p.changes.Skipped, tc.wantSkipped)
			}
			if p.changes.Origin != tc.wantOrigin {
				t.Errorf("origin = %q, want %q", p.changes.Origin, tc.wantOrigin)
			}
		})
	}
}

// set returns the distinct strings of s, sorted (nil for none).
func set(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// TestPendingMergeDoesNotAliasRequests: merging must not write into a
// caller's change set (the watcher may reuse its batch).
func TestPendingMergeDoesNotAliasRequests(t *testing.T) {
	r1 := incremental("watch", make([]string, 1, 8), nil)
	r1.changes.Upserts[0] = "a"
	p := &pending{job: &state.Job{}, trigger: TriggerWatch}
	p.merge(r1)
	p.merge(incremental("watch", []string{"b"}, nil))
	if got := r1.changes.Upserts[:cap(r1.changes.Upserts)][1]; got != "" {
		t.Errorf("merge wrote %q into the first request's slice", got)
	}
}

func TestPendingMergeCollectsDoneCallbacks(t *testing.T) {
	var calls []string
	cb := func(name string) func(*state.Job) {
		return func(j *state.Job) { calls = append(calls, name+":"+j.ID) }
	}
	p := &pending{job: &state.Job{ID: "j1"}, trigger: TriggerManual}
	p.merge(request{trigger: TriggerManual, done: cb("first")})
	p.merge(incremental("watch", []string{"a"}, nil)) // no callback
	p.merge(request{trigger: TriggerSchedule, done: cb("second")})
	if len(p.done) != 2 {
		t.Fatalf("%d done callbacks, want 2", len(p.done))
	}
	for _, fn := range p.done {
		fn(p.job)
	}
	if want := []string{"first:j1", "second:j1"}; !slices.Equal(calls, want) {
		t.Errorf("callbacks ran as %v, want %v", calls, want)
	}
}

// testQueue returns a queue of plan "p" on a daemon with an in-memory state
// database; nothing serves it, so queued jobs stay queued.
func testQueue(t *testing.T) (*planQueue, *state.DB) {
	t.Helper()
	db, err := state.Open("", state.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := &Daemon{log: slog.New(slog.DiscardHandler), db: db, metrics: newMetrics(), queues: map[string]*planQueue{}}
	q := newPlanQueue(d, "p")
	d.queues["p"] = q
	return q, db
}

func planJobs(t *testing.T, db *state.DB) []*state.Job {
	t.Helper()
	var jobs []*state.Job
	if err := db.ListJobs(state.JobFilter{Plan: "p"}, func(j *state.Job) error { jobs = append(jobs, j); return nil }); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// TestEnqueueJoinsTheQueuedJob: every trigger while a job waits joins it,
// so a plan has at most one queued job.
func TestEnqueueJoinsTheQueuedJob(t *testing.T) {
	q, db := testQueue(t)
	id1, err := q.enqueue(request{trigger: TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := q.enqueue(request{trigger: TriggerSchedule})
	if err != nil {
		t.Fatal(err)
	}
	id3, err := q.enqueue(incremental("watch", []string{"x"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if id1 == "" || id2 != id1 || id3 != id1 {
		t.Fatalf("job ids %q, %q, %q: want one queued job for all three triggers", id1, id2, id3)
	}
	jobs := planJobs(t, db)
	if len(jobs) != 1 || jobs[0].ID != id1 || jobs[0].Status != state.JobQueued || jobs[0].Trigger != TriggerManual {
		t.Fatalf("state database holds %+v, want one queued manual job %s", jobs, id1)
	}
	if running, queued := q.state(); running != "" || queued != id1 {
		t.Errorf("state() = %q, %q; want nothing running and %s queued", running, queued, id1)
	}
	if !q.next.full {
		t.Error("the queued job is not a full one although a full trigger joined it")
	}
	select {
	case <-q.wake:
	default:
		t.Error("enqueue did not wake the queue")
	}
}

// TestCancelQueuedJob: canceling the queued job records it canceled, tells
// everyone waiting for it, and the next trigger queues a new job.
func TestCancelQueuedJob(t *testing.T) {
	q, db := testQueue(t)
	var got []*state.Job
	id, err := q.enqueue(request{trigger: TriggerManual, done: func(j *state.Job) { got = append(got, j) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.enqueue(request{trigger: TriggerManual, done: func(j *state.Job) { got = append(got, j) }}); err != nil {
		t.Fatal(err)
	}
	if q.cancelJob("no-such-job") {
		t.Error("cancelJob of an unknown id reported success")
	}
	if !q.cancelJob(id) {
		t.Fatal("cancelJob of the queued job reported failure")
	}
	if len(got) != 2 || got[0].ID != id || got[0].Status != state.JobCanceled {
		t.Fatalf("done callbacks got %+v, want job %s canceled twice", got, id)
	}
	j, err := db.GetJob(id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != state.JobCanceled || j.Ended.IsZero() || j.Error == "" {
		t.Errorf("recorded job %+v, want canceled with an end time and a reason", j)
	}
	if q.cancelJob(id) {
		t.Error("canceling the same job again reported success")
	}
	id2, err := q.enqueue(request{trigger: TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id {
		t.Errorf("a trigger after the cancel joined the canceled job %s", id)
	}
	if n := len(planJobs(t, db)); n != 2 {
		t.Errorf("%d jobs recorded, want 2 (the canceled one and the new one)", n)
	}
}

// TestCancelCallbackMayTriggerAgain: the callbacks of a canceled job run
// outside the queue's lock, so one may queue the plan again.
func TestCancelCallbackMayTriggerAgain(t *testing.T) {
	q, _ := testQueue(t)
	again := make(chan string, 1)
	id, err := q.enqueue(request{trigger: TriggerWatch, done: func(*state.Job) {
		id, err := q.enqueue(request{trigger: TriggerManual})
		if err != nil {
			t.Error(err)
		}
		again <- id
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() { done <- q.cancelJob(id) }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("cancelJob reported failure")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelJob deadlocked when a callback queued the plan again")
	}
	if id2 := <-again; id2 == "" || id2 == id {
		t.Errorf("the callback's trigger got job %q, want a new job (canceled: %s)", id2, id)
	}
	if _, queued := q.state(); queued == "" || queued == id {
		t.Errorf("queued job %q after the callback's trigger", queued)
	}
}

// A Run Now asking for a destination check makes the follow-up it joins
// check, whatever joined before or after.
func TestPendingMergeCheckDestination(t *testing.T) {
	p := &pending{job: &state.Job{}, trigger: TriggerSchedule}
	p.merge(full(TriggerSchedule))
	if p.checkDest {
		t.Fatal("a scheduled run asks for a destination check")
	}
	p.merge(request{trigger: TriggerManual, checkDest: true})
	p.merge(incremental("watch", []string{"a"}, nil))
	p.merge(full(TriggerSchedule))
	if !p.checkDest || !p.full {
		t.Errorf("checkDest %v, full %v; want a full run that checks the destination", p.checkDest, p.full)
	}
}

// recover resumes the interrupted job of a configured plan, closes the
// one of a plan the configuration lost, and cancels stale queued jobs.
func TestRecoverInterruptedJobs(t *testing.T) {
	q, db := testQueue(t)
	d := q.d
	running := func(plan string) *state.Job {
		j := &state.Job{Plan: plan, Trigger: TriggerManual}
		if err := db.CreateJob(j); err != nil {
			t.Fatal(err)
		}
		j.Status = state.JobRunning
		if err := db.UpdateJob(j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	kept, gone := running("p"), running("removed")
	stale := &state.Job{Plan: "p", Trigger: TriggerSchedule}
	if err := db.CreateJob(stale); err != nil {
		t.Fatal(err)
	}
	d.recover()
	if q.next == nil || q.next.job.ID != kept.ID || q.next.trigger != TriggerResume {
		t.Errorf("plan p's follow-up is %+v, want a resume of %s", q.next, kept.ID)
	}
	for _, want := range []struct {
		id, status, err string
	}{
		{gone.ID, state.JobCanceled, "its plan is no longer in the configuration"},
		{stale.ID, state.JobCanceled, "the daemon stopped before the job started"},
		{kept.ID, state.JobRunning, ""},
	} {
		j, err := db.GetJob(want.id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != want.status || !strings.Contains(j.Error, want.err) {
			t.Errorf("job %s: %s %q, want %s %q", j.ID, j.Status, j.Error, want.status, want.err)
		}
	}
}

func TestRestartOnly(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{StateDir: "/var/lib/ferry", Socket: "/run/ferry/ferry.sock",
			Mounts: []*config.Mount{{Vault: "main", Path: "/mnt/main"}}}
	}
	if got := restartOnly(base(), base()); len(got) != 0 {
		t.Errorf("equal configurations: %v", got)
	}
	cfg := base()
	cfg.StateDir, cfg.MetricsListen = "/srv/ferry", "127.0.0.1:9100"
	cfg.Mounts[0].Path = "/mnt/other"
	want := []string{`state_dir (in use "/var/lib/ferry", in the file "/srv/ferry")`, `metrics_listen (in use "", in the file "127.0.0.1:9100")`, "mounts"}
	if got := restartOnly(base(), cfg); !slices.Equal(got, want) {
		t.Errorf("restartOnly = %q, want %q", got, want)
	}
}
