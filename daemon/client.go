package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ferrysync/ferry/state"
)

// Client talks to a running daemon over its control socket.
type Client struct {
	socket string
	http   *http.Client
}

// ErrNoDaemon: nothing answers on the socket.
var ErrNoDaemon = errors.New("no ferry daemon is running")

// APIError is an error answer of the daemon.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Dial returns a client if a daemon answers on socket, else an error
// wrapping ErrNoDaemon.
func Dial(ctx context.Context, socket string) (*Client, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("%w on %s", ErrNoDaemon, socket)
	}
	conn.Close()
	c := &Client{socket: socket}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	return c, nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	resp, err := c.request(ctx, method, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) request(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	u := "http://ferry" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon on %s: %w", c.socket, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var ae apiError
		if err := json.NewDecoder(resp.Body).Decode(&ae); err != nil || ae.Error == "" {
			ae.Error = resp.Status
		}
		return nil, &APIError{Status: resp.StatusCode, Message: ae.Error}
	}
	return resp, nil
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Plans lists the plans with their running, queued and last jobs.
func (c *Client) Plans(ctx context.Context) ([]PlanInfo, error) {
	var p []PlanInfo
	return p, c.do(ctx, http.MethodGet, "/v1/plans", nil, &p)
}

// RunPlan queues a Run Now and returns the job id.
func (c *Client) RunPlan(ctx context.Context, name string) (string, error) {
	return c.RunPlanWith(ctx, name, RunPlanOptions{})
}

// RunPlanOptions tune a Run Now.
type RunPlanOptions struct {
	// CheckDestination makes the job list the destination to find copies
	// deleted or changed there, however recent the last check.
	CheckDestination bool
}

// RunPlanWith queues a Run Now with options and returns the job id.
func (c *Client) RunPlanWith(ctx context.Context, name string, o RunPlanOptions) (string, error) {
	var r RunResult
	path := "/v1/plans/" + url.PathEscape(name) + "/run"
	if o.CheckDestination {
		path += "?check_destination=true"
	}
	err := c.do(ctx, http.MethodPost, path, nil, &r)
	return r.JobID, err
}

// Jobs lists jobs.
func (c *Client) Jobs(ctx context.Context, f state.JobFilter) ([]*state.Job, error) {
	q := url.Values{}
	if f.Plan != "" {
		q.Set("plan", f.Plan)
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339))
	}
	if !f.Newest {
		q.Set("order", "oldest")
	}
	var jobs []*state.Job
	return jobs, c.do(ctx, http.MethodGet, "/v1/jobs", q, &jobs)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (*state.Job, error) {
	var j state.Job
	return &j, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &j)
}

// JobFiles calls fn for each record of one of a job's lists.
func (c *Client) JobFiles(ctx context.Context, id string, kind state.ListKind, fn func(state.FileRecord) error) error {
	resp, err := c.request(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/files", url.Values{"list": {string(kind)}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var rec state.FileRecord
		if err := dec.Decode(&rec); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("daemon file list: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// CancelJob cancels a queued or running job.
func (c *Client) CancelJob(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil)
}
