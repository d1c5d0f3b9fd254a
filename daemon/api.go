package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ferrysync/ferry/state"
)

// The control API: JSON over HTTP on the unix socket. Errors are a 4xx or
// 5xx status with {"error": "..."}.

// PlanInfo is a plan as the API reports it.
type PlanInfo struct {
	Name        string     `json:"name"`
	Source      string     `json:"source"`
	Destination string     `json:"destination"`
	Schedule    string     `json:"schedule"`
	NextRun     time.Time  `json:"next_run,omitzero"`
	RunningJob  string     `json:"running_job,omitempty"`
	QueuedJob   string     `json:"queued_job,omitempty"`
	LastJob     *state.Job `json:"last_job,omitempty"`
}

// Status is the daemon's state as `ferry status` shows it.
type Status struct {
	// Running is always true here; `ferry status --json` prints false
	// when no daemon answers.
	Running bool       `json:"running"`
	PID     int        `json:"pid"`
	Started time.Time  `json:"started"`
	Config  string     `json:"config"`
	Socket  string     `json:"socket"`
	Plans   []PlanInfo `json:"plans"`
}

// RunResult answers a Run Now.
type RunResult struct {
	JobID string `json:"job_id"`
}

type apiError struct {
	Error string `json:"error"`
}

func (d *Daemon) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", d.handleStatus)
	mux.HandleFunc("GET /v1/plans", d.handlePlans)
	mux.HandleFunc("POST /v1/plans/{name}/run", d.handleRun)
	mux.HandleFunc("GET /v1/jobs", d.handleJobs)
	mux.HandleFunc("GET /v1/jobs/{id}", d.handleJob)
	mux.HandleFunc("GET /v1/jobs/{id}/files", d.handleJobFiles)
	mux.HandleFunc("POST /v1/jobs/{id}/cancel", d.handleCancel)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func (d *Daemon) plans() []PlanInfo {
	cfg := d.config()
	now := time.Now()
	var out []PlanInfo
	for _, p := range cfg.Plans {
		pi := PlanInfo{Name: p.Name, Source: p.Source, Destination: p.Destination,
			Schedule: ScheduleString(p.Schedule != nil, p.Watch, p.Changelist != "", scheduleEvery(p.Schedule)),
			NextRun:  nextRun(p, now)}
		d.mu.Lock()
		q := d.queues[p.Name]
		d.mu.Unlock()
		if q != nil {
			pi.RunningJob, pi.QueuedJob = q.state()
		}
		_ = d.db.ListJobs(state.JobFilter{Plan: p.Name, Newest: true}, func(j *state.Job) error {
			if j.Status == state.JobQueued {
				return nil
			}
			pi.LastJob = j
			return errStop
		})
		out = append(out, pi)
	}
	return out
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	cfg := d.config()
	writeJSON(w, http.StatusOK, Status{Running: true, PID: pidSelf(), Started: d.started, Config: cfg.File, Socket: d.boot.Socket, Plans: d.plans()})
}

func (d *Daemon) handlePlans(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.plans())
}

func (d *Daemon) handleRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	req := request{trigger: TriggerManual}
	switch v := r.URL.Query().Get("check_destination"); v {
	case "", "false":
	case "true":
		req.checkDest = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("check_destination %q: valid values are true and false", v))
		return
	}
	id, err := d.Trigger(name, req)
	switch {
	case errors.Is(err, errNoPlan):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no plan named %q in %s", name, d.config().File))
	case errors.Is(err, errShuttingDown):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusAccepted, RunResult{JobID: id})
	}
}

var jobStatuses = []string{state.JobQueued, state.JobRunning, state.JobCompleted, state.JobPartial, state.JobFailed, state.JobCanceled}

func (d *Daemon) handleJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := state.JobFilter{Plan: q.Get("plan"), Status: q.Get("status"), Newest: q.Get("order") != "oldest"}
	if f.Status != "" && !slices.Contains(jobStatuses, f.Status) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: valid values are %v", f.Status, jobStatuses))
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: a whole number ≥ 0", s))
			return
		}
		f.Limit = n
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q: an RFC 3339 time", s))
			return
		}
		f.Since = t
	}
	jobs := []*state.Job{}
	if err := d.db.ListJobs(f, func(j *state.Job) error { jobs = append(jobs, j); return nil }); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, jobs)
}

func (d *Daemon) job(w http.ResponseWriter, id string) (*state.Job, bool) {
	j, err := d.db.GetJob(id)
	switch {
	case errors.Is(err, state.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no job %q", id))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return j, true
}

func (d *Daemon) handleJob(w http.ResponseWriter, r *http.Request) {
	if j, ok := d.job(w, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, j)
	}
}

// handleJobFiles streams one file list as JSON lines, one FileRecord each.
func (d *Daemon) handleJobFiles(w http.ResponseWriter, r *http.Request) {
	j, ok := d.job(w, r.PathValue("id"))
	if !ok {
		return
	}
	kind := state.ListKind(r.URL.Query().Get("list"))
	if !slices.Contains([]state.ListKind{state.ListSuccess, state.ListSkipped, state.ListFailed}, kind) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("list %q: valid values are success, skipped, failed", kind))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	_ = d.db.IterateFileRecords(j.ID, kind, func(rec state.FileRecord) error {
		return enc.Encode(rec)
	})
}

func (d *Daemon) handleCancel(w http.ResponseWriter, r *http.Request) {
	j, ok := d.job(w, r.PathValue("id"))
	if !ok {
		return
	}
	d.mu.Lock()
	q := d.queues[j.Plan]
	d.mu.Unlock()
	if q == nil || !q.cancelJob(j.ID) {
		writeError(w, http.StatusConflict, fmt.Sprintf("job %s is %s: only a queued or running job can be canceled", j.ID, j.Status))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"canceled": j.ID})
}
