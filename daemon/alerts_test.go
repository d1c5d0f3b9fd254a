package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/state"
)

// logBuffer is a slog destination tests can read while alerts deliver.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testAlerter(t *testing.T, alerts ...*config.Alert) (*alerter, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	a := newAlerter(slog.New(slog.NewTextHandler(logs, nil)))
	cfg := &config.Config{Alerts: map[string]*config.Alert{}}
	for _, al := range alerts {
		cfg.Alerts[al.Name] = al
	}
	a.configure(cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("alerter log:\n%s", logs)
		}
	})
	return a, logs
}

// fastBackoff shortens the webhook retry wait for the test.
func fastBackoff(t *testing.T) {
	old := webhookBackoff
	webhookBackoff = time.Millisecond
	t.Cleanup(func() { webhookBackoff = old })
}

// hookServer answers each POST with the next status of codes (the last one
// repeats) and records the requests.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	codes  []int
	bodies [][]byte
	types  []string
}

func newHookServer(t *testing.T, codes ...int) *hookServer {
	h := &hookServer{codes: codes}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		n := len(h.bodies)
		h.bodies = append(h.bodies, body)
		h.types = append(h.types, r.Method+" "+r.Header.Get("Content-Type"))
		code := h.codes[min(n, len(h.codes)-1)]
		h.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() ([][]byte, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...), append([]string(nil), h.types...)
}

func sampleEvent() Event {
	return Event{Type: EventJobFailed, Plan: "photos", Job: "20261123T020000Z-0001", Status: state.JobFailed,
		Message:  "job 20261123T020000Z-0001 of plan photos failed: destination: no route to host",
		Counters: &state.Counters{FilesTotal: 3, FilesFailed: 3, BytesTotal: 300}}
}

func TestWebhookRetriesUntilDelivered(t *testing.T) {
	fastBackoff(t)
	h := newHookServer(t, http.StatusInternalServerError, http.StatusBadGateway, http.StatusNoContent)
	a, logs := testAlerter(t, &config.Alert{Name: "hook", Type: config.AlertWebhook, URL: h.URL + "/hook"})

	a.fire([]string{"hook"}, sampleEvent())
	a.wait(30 * time.Second)

	bodies, types := h.requests()
	if len(bodies) != 3 {
		t.Fatalf("webhook got %d requests, want 3 (two 5xx answers, then success)", len(bodies))
	}
	for i, b := range bodies {
		if types[i] != "POST application/json" {
			t.Errorf("request %d: %s, want a POST of application/json", i, types[i])
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("request %d: body is not an event: %v\n%s", i, err, b)
		}
		want := sampleEvent()
		if ev.Type != want.Type || ev.Plan != want.Plan || ev.Job != want.Job || ev.Status != want.Status ||
			ev.Message != want.Message || ev.Counters == nil || *ev.Counters != *want.Counters {
			t.Errorf("request %d: event %+v, want %+v", i, ev, want)
		}
		if ev.Time.IsZero() || ev.Host == "" {
			t.Errorf("request %d: event has no time or host: %s", i, b)
		}
	}
	if !bytes.Equal(bodies[0], bodies[2]) {
		t.Errorf("a retry sent another body:\n%s\n%s", bodies[0], bodies[2])
	}
	if l := logs.String(); !strings.Contains(l, "alert delivered") || strings.Contains(l, "not delivered") {
		t.Errorf("log does not say the alert was delivered:\n%s", l)
	}
}

// TestWebhookEventJSON pins the field names a receiver sees.
func TestWebhookEventJSON(t *testing.T) {
	h := newHookServer(t, http.StatusOK)
	a, _ := testAlerter(t, &config.Alert{Name: "hook", Type: config.AlertWebhook, URL: h.URL})
	a.fire([]string{"hook"}, Event{Type: EventRemoteUnreachable, Remote: "aws", Message: "remote aws failed 3 health probes"})
	a.wait(30 * time.Second)
	bodies, _ := h.requests()
	if len(bodies) != 1 {
		t.Fatalf("%d requests, want 1", len(bodies))
	}
	var m map[string]any
	if err := json.Unmarshal(bodies[0], &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "time", "host", "remote", "message"} {
		if _, ok := m[k]; !ok {
			t.Errorf("event JSON lacks %q: %s", k, bodies[0])
		}
	}
	for _, k := range []string{"plan", "job", "status", "counters"} {
		if _, ok := m[k]; ok {
			t.Errorf("event JSON of a remote event has an empty %q: %s", k, bodies[0])
		}
	}
	if m["type"] != EventRemoteUnreachable || m["remote"] != "aws" {
		t.Errorf("event JSON %s", bodies[0])
	}
}

func TestWebhookClientErrorIsNotRetried(t *testing.T) {
	fastBackoff(t)
	h := newHookServer(t, http.StatusNotFound)
	a, logs := testAlerter(t, &config.Alert{Name: "hook", Type: config.AlertWebhook, URL: h.URL})
	a.fire([]string{"hook"}, sampleEvent())
	a.wait(30 * time.Second)
	if bodies, _ := h.requests(); len(bodies) != 1 {
		t.Errorf("webhook got %d requests, want 1: a 4xx answer is not retried", len(bodies))
	}
	if l := logs.String(); !strings.Contains(l, "alert not delivered") || !strings.Contains(l, "404") {
		t.Errorf("log does not name the failed delivery and its answer:\n%s", l)
	}
}

func TestWebhookGivesUpAfterAttempts(t *testing.T) {
	fastBackoff(t)
	h := newHookServer(t, http.StatusServiceUnavailable)
	a, logs := testAlerter(t, &config.Alert{Name: "hook", Type: config.AlertWebhook, URL: h.URL})
	a.fire([]string{"hook"}, sampleEvent())
	a.wait(30 * time.Second)
	if bodies, _ := h.requests(); len(bodies) != webhookAttempts {
		t.Errorf("webhook got %d requests, want %d attempts", len(bodies), webhookAttempts)
	}
	if l := logs.String(); !strings.Contains(l, "alert not delivered") || !strings.Contains(l, "503") {
		t.Errorf("log does not name the failed delivery and its answer:\n%s", l)
	}
}

// TestCommandAlert runs a real command: it gets the event in FERRY_*
// variables and as JSON on stdin.
func TestCommandAlert(t *testing.T) {
	dir := t.TempDir()
	envFile, stdinFile := filepath.Join(dir, "env"), filepath.Join(dir, "stdin.json")
	a, logs := testAlerter(t, &config.Alert{Name: "script", Type: config.AlertCommand,
		Command: []string{"sh", "-c", `env > "$0" && cat > "$1"`, envFile, stdinFile}})
	ev := sampleEvent()
	ev.Type, ev.Status = EventJobPartial, state.JobPartial
	ev.Message = "it's partial: 'quoted' \"text\"\nand a second line"
	a.fire([]string{"script"}, ev)
	a.wait(30 * time.Second)

	env := readEnv(t, envFile)
	want := map[string]string{
		"FERRY_EVENT":   EventJobPartial,
		"FERRY_PLAN":    ev.Plan,
		"FERRY_JOB":     ev.Job,
		"FERRY_STATUS":  state.JobPartial,
		"FERRY_REMOTE":  "",
		"FERRY_MESSAGE": ev.Message,
	}
	for k, v := range want {
		got, ok := env[k]
		if !ok || got != v {
			t.Errorf("%s = %q (set: %v), want %q", k, got, ok, v)
		}
	}
	if _, err := time.Parse(time.RFC3339, env["FERRY_TIME"]); err != nil {
		t.Errorf("FERRY_TIME = %q: %v", env["FERRY_TIME"], err)
	}
	data, err := os.ReadFile(stdinFile)
	if err != nil {
		t.Fatal(err)
	}
	var got Event
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("stdin is not event JSON: %v\n%s", err, data)
	}
	if got.Type != EventJobPartial || got.Message != ev.Message || got.Counters == nil || *got.Counters != *ev.Counters {
		t.Errorf("stdin event %+v, want %+v", got, ev)
	}
	if !strings.Contains(logs.String(), "alert delivered") {
		t.Errorf("log does not say the alert was delivered:\n%s", logs)
	}
}

// readEnv parses `env` output; a value may span lines (FERRY_MESSAGE does),
// so a line without "=" continues the previous value.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	last := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || !isEnvName(k) {
			if last != "" {
				env[last] += "\n" + sc.Text()
			}
			continue
		}
		env[k], last = v, k
	}
	return env
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func TestCommandAlertFailureIsReported(t *testing.T) {
	a, logs := testAlerter(t, &config.Alert{Name: "broken", Type: config.AlertCommand,
		Command: []string{"sh", "-c", "echo cannot page anyone >&2; exit 3"}})
	a.fire([]string{"broken"}, sampleEvent())
	a.wait(30 * time.Second)
	l := logs.String()
	for _, want := range []string{"alert not delivered", "alert=broken", "exit status 3", "cannot page anyone"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

// TestFailingChannelDoesNotBlockOthers: a webhook that hangs and a command
// that fails do not keep the other channels from delivering, and names the
// configuration does not have are ignored.
func TestFailingChannelDoesNotBlockOthers(t *testing.T) {
	release := make(chan struct{})
	hung := make(chan struct{}, 8)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before slow.Close, which waits for handlers

	out := filepath.Join(t.TempDir(), "delivered.json")
	a, logs := testAlerter(t,
		&config.Alert{Name: "a-hanging", Type: config.AlertWebhook, URL: slow.URL},
		&config.Alert{Name: "b-failing", Type: config.AlertCommand, Command: []string{"/nonexistent/ferry-alert"}},
		&config.Alert{Name: "c-good", Type: config.AlertCommand, Command: []string{"sh", "-c", `cat > "$0"`, out}},
	)
	a.fire([]string{"a-hanging", "b-failing", "no-such-alert", "c-good"}, sampleEvent())

	select {
	case <-hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the hanging webhook was never called")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(out); err == nil && json.Valid(data) && len(data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the good command channel did not deliver while the webhook hung\nlog:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for !strings.Contains(logs.String(), "alert=b-failing") {
		if time.Now().After(deadline) {
			t.Fatalf("the failing command was not reported\nlog:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "alert=a-hanging") {
		t.Fatal("the hanging webhook finished before it was released")
	}
	unblock()
	a.wait(30 * time.Second)
	if l := logs.String(); !strings.Contains(l, "alert=a-hanging") {
		t.Errorf("the released webhook's delivery is not logged:\n%s", l)
	}
	if strings.Contains(logs.String(), "no-such-alert") {
		t.Errorf("an alert name missing from the configuration was acted on:\n%s", logs)
	}
}
