package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/state"
)

// Alert event types.
const (
	EventJobFailed         = "job_failed"
	EventJobPartial        = "job_partial"
	EventRemoteUnreachable = "remote_unreachable"
	EventRemoteRecovered   = "remote_recovered"
	EventWatcherDegraded   = "watcher_degraded"
)

// Event is what an alert channel receives: a webhook as the JSON body of a
// POST, a command as JSON on stdin and as FERRY_* environment variables.
type Event struct {
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	Host     string          `json:"host"`
	Plan     string          `json:"plan,omitempty"`
	Job      string          `json:"job,omitempty"`
	Status   string          `json:"status,omitempty"`
	Remote   string          `json:"remote,omitempty"`
	Message  string          `json:"message"`
	Counters *state.Counters `json:"counters,omitempty"`
}

// Delivery settings.
var (
	webhookTimeout  = 10 * time.Second
	webhookAttempts = 4
	webhookBackoff  = time.Second
	commandTimeout  = 30 * time.Second
)

// alerter delivers events to the configured channels. Delivery runs in the
// background; a failing channel is logged and never stops the daemon.
type alerter struct {
	log    *slog.Logger
	client *http.Client

	mu       sync.Mutex
	channels map[string]*config.Alert
	inflight sync.WaitGroup
}

func newAlerter(log *slog.Logger) *alerter {
	return &alerter{log: log, client: &http.Client{Timeout: webhookTimeout}, channels: map[string]*config.Alert{}}
}

func (a *alerter) configure(cfg *config.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.channels = cfg.Alerts
}

// fire sends ev to the named channels.
func (a *alerter) fire(names []string, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Host == "" {
		ev.Host, _ = os.Hostname()
	}
	a.mu.Lock()
	var chans []*config.Alert
	for _, n := range names {
		if c, ok := a.channels[n]; ok {
			chans = append(chans, c)
		}
	}
	a.mu.Unlock()
	for _, c := range chans {
		a.inflight.Go(func() {
			var err error
			switch c.Type {
			case config.AlertWebhook:
				err = a.webhook(c, ev)
			case config.AlertCommand:
				err = a.command(c, ev)
			default:
				err = fmt.Errorf("unknown alert type %q", c.Type)
			}
			if err != nil {
				a.log.Error("alert not delivered", slog.String("alert", c.Name), slog.String("event", ev.Type), slog.Any("err", err))
			} else {
				a.log.Info("alert delivered", slog.String("alert", c.Name), slog.String("event", ev.Type))
			}
		})
	}
}

// wait waits up to timeout for deliveries in flight.
func (a *alerter) wait(timeout time.Duration) {
	done := make(chan struct{})
	go func() { a.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

func (a *alerter) webhook(c *config.Alert, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var last error
	for attempt := range webhookAttempts {
		if attempt > 0 {
			time.Sleep(webhookBackoff << (attempt - 1))
		}
		req, err := http.NewRequest(http.MethodPost, c.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "ferry")
		resp, err := a.client.Do(req)
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode < 300 {
			return nil
		}
		last = fmt.Errorf("webhook answered %s", resp.Status)
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return last
		}
	}
	return fmt.Errorf("after %d attempts: %w", webhookAttempts, last)
}

func (a *alerter) command(c *config.Alert, ev Event) error {
	if len(c.Command) == 0 {
		return fmt.Errorf("empty command")
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Command[0], c.Command[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(),
		"FERRY_EVENT="+ev.Type,
		"FERRY_TIME="+ev.Time.Format(time.RFC3339),
		"FERRY_PLAN="+ev.Plan,
		"FERRY_JOB="+ev.Job,
		"FERRY_STATUS="+ev.Status,
		"FERRY_REMOTE="+ev.Remote,
		"FERRY_MESSAGE="+ev.Message,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("command %s: %w: %s", c.Command[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}
