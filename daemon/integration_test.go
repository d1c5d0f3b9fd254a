//go:build linux

package daemon

// Integration tests of the daemon as operators run it: the real ferry binary
// (built once with the ferrytest tag, and with -race when the tests run with
// -race) started as `ferry daemon` on a temporary config and socket, driven
// through the CLI, the control socket and signals.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/state"
)

// waitLimit bounds every wait for the daemon, so a broken daemon fails the
// test instead of hanging it. It is not a performance expectation.
const waitLimit = 90 * time.Second

// stopBound is how long a SIGTERM may take: the acceptance criterion.
const stopBound = 15 * time.Second

var ferryBuild struct {
	once sync.Once
	path string
	err  error
}

// ferryBinary builds cmd/ferry once per test binary and returns its path.
func ferryBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: builds and runs the ferry binary; not in -short mode")
	}
	ferryBuild.once.Do(func() { ferryBuild.path, ferryBuild.err = buildFerry() })
	if ferryBuild.err != nil {
		t.Fatal(ferryBuild.err)
	}
	return ferryBuild.path
}

func buildFerry() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the ferry module")
	}
	dir, err := os.MkdirTemp("", "ferry-bin-")
	if err != nil {
		return "", err
	}
	testBinDir = dir
	bin := filepath.Join(dir, "ferry")
	args := []string{"build", "-tags", "ferrytest"}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, "-o", bin, "./cmd/ferry")
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// raceEnabled reports whether this test binary was built with -race; the
// daemon binary is then built with it too, so races in the daemon fail the
// tests.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// childEnv is the test's environment without variables that would change
// how ferry behaves (systemd's, the config's, the test hooks), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
			"FERRY_CONFIG", "FERRY_TEST_SCHEDULE_EVERY", "FERRY_TEST_PROBE_EVERY":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// fixture is one test's directory: config, state, socket, sources and
// destinations all live under a short temporary path (a unix socket path
// must stay under 108 bytes).
type fixture struct {
	t    *testing.T
	bin  string
	dir  string
	cfg  string
	sock string
	logs int // daemon logs started so far
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	bin := ferryBinary(t)
	dir, err := os.MkdirTemp("", "fd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fixture{t: t, bin: bin, dir: dir, cfg: filepath.Join(dir, "ferry.toml"), sock: filepath.Join(dir, "ferry.sock")}
	if len(f.sock) >= 100 {
		t.Fatalf("socket path %s is too long for a unix socket; set TMPDIR to a shorter directory", f.sock)
	}
	return f
}

func (f *fixture) path(elem ...string) string {
	return filepath.Join(append([]string{f.dir}, elem...)...)
}

func (f *fixture) mkdir(elem ...string) string {
	p := f.path(elem...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// header is the top of every test config: this fixture's state and socket.
func (f *fixture) header() string {
	return fmt.Sprintf("state_dir = %q\nsocket = %q\nlog_level = \"info\"\n\n", f.path("state"), f.sock)
}

// writeConfig replaces the file at path (default: the daemon's config)
// atomically with the fixture header and body, mode 0600.
func (f *fixture) writeConfigAt(path, body string) {
	f.t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(f.header()+body), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) writeConfig(body string) { f.writeConfigAt(f.cfg, body) }

// planTOML is one [[plans]] table; extra lines are added as they are.
func planTOML(name, src, dst string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[plans]]\nname = %q\nsource = %q\ndestination = %q\n", name, src, dst)
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.String() + "\n"
}

// ferry runs the CLI against the fixture's config (or another file given
// as --config in args) and returns its output and exit code.
func (f *fixture) ferry(args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if !slices.Contains(args, "--config") {
		args = append([]string{"--config", f.cfg}, args...)
	}
	cmd := exec.CommandContext(ctx, f.bin, args...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		f.t.Fatalf("ferry %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustFerry runs the CLI and fails the test unless it exits 0.
func (f *fixture) mustFerry(args ...string) string {
	f.t.Helper()
	out, errOut, code := f.ferry(args...)
	if code != 0 {
		f.t.Fatalf("ferry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// proc is one `ferry daemon` process.
type proc struct {
	f       *fixture
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	state   *os.ProcessState
}

// startDaemon starts `ferry daemon` with extra environment variables and
// waits until its control API answers. The process is killed when the test
// ends if it still runs; its log is printed if the test failed.
func (f *fixture) startDaemon(env ...string) *proc {
	f.t.Helper()
	p := f.spawnDaemon(env...)
	p.waitReady()
	return p
}

func (f *fixture) spawnDaemon(env ...string) *proc {
	f.t.Helper()
	f.logs++
	p := &proc{f: f, logPath: f.path(fmt.Sprintf("daemon-%d.log", f.logs)), done: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		f.t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	p.cmd = exec.Command(f.bin, "--config", f.cfg, "daemon")
	p.cmd.Env = childEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// The daemon dies with the test binary, even if no cleanup runs.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.t.Fatalf("start ferry daemon: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	f.t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		log := p.log()
		if strings.Contains(log, "DATA RACE") {
			f.t.Errorf("the daemon reported a data race:\n%s", log)
		} else if f.t.Failed() {
			f.t.Logf("daemon log %s:\n%s", filepath.Base(p.logPath), log)
		}
	})
	return p
}

func (p *proc) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady waits until the daemon answers a status request.
func (p *proc) waitReady() {
	t := p.f.t
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if p.exited() {
			t.Fatalf("ferry daemon exited during startup (%v)\nlog:\n%s", p.state, p.log())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := Dial(ctx, p.f.sock)
		if err == nil {
			_, err = c.Status(ctx)
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry daemon did not answer on %s: %v", p.f.sock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) signal(sig os.Signal) {
	p.f.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.f.t.Fatalf("send %v to the daemon: %v", sig, err)
	}
}

// waitExit waits up to limit for the process to end and returns its exit
// code; it fails the test if the process is still running then.
func (p *proc) waitExit(limit time.Duration) int {
	p.f.t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(limit):
		p.f.t.Fatalf("ferry daemon still runs %s after it was told to stop\nlog:\n%s", limit, p.log())
		return -1
	}
}

// waitLog waits until the daemon's log contains all of the strings.
func (p *proc) waitLog(want ...string) string {
	p.f.t.Helper()
	return p.waitLogLine(1, want...)
}

// waitLogLine waits until n lines of the daemon's log each contain all of
// the strings, and returns the log.
func (p *proc) waitLogLine(n int, want ...string) string {
	p.f.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		l := p.log()
		found := 0
		for line := range strings.SplitSeq(l, "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				found++
			}
		}
		if found >= n {
			return l
		}
		if time.Now().After(deadline) {
			p.f.t.Fatalf("daemon log has %d lines with %q, want %d:\n%s", found, want, n, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) client() *Client {
	f.t.Helper()
	c, err := Dial(context.Background(), f.sock)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func terminal(status string) bool {
	return status != state.JobQueued && status != state.JobRunning
}

// waitJob waits until the job has ended and returns it.
func (f *fixture) waitJob(c *Client, id string) *state.Job {
	f.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		j, err := c.Job(context.Background(), id)
		if err != nil {
			f.t.Fatalf("job %s: %v", id, err)
		}
		if terminal(j.Status) {
			return j
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("job %s still %s", id, j.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// planJobs lists a plan's jobs, oldest first.
func (f *fixture) planJobs(c *Client, plan string) []*state.Job {
	f.t.Helper()
	jobs, err := c.Jobs(context.Background(), state.JobFilter{Plan: plan})
	if err != nil {
		f.t.Fatal(err)
	}
	return jobs
}

// writeTree writes n files with random content of about size bytes under
// dir, spread over a few subdirectories.
func writeTree(t *testing.T, dir string, n, size int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	buf := make([]byte, size+size/2+1)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%7), fmt.Sprintf("file-%05d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := buf[:size/2+rng.IntN(size+1)]
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// localTempPrefix starts the names of a local store's temporary files
// (remote/local), which its listings never show.
const localTempPrefix = ".ferry-tmp-"

// treeDigest maps each regular file under dir (slash path) to the SHA-256
// of its content; a local store's temporary files are returned apart.
func treeDigest(t *testing.T, dir string) (files map[string]string, temps []string) {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(d.Name(), localTempPrefix) {
			temps = append(temps, filepath.ToSlash(rel))
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, temps
}

// assertSameTree fails unless dst holds exactly src's files with the same
// content, and no temporary file.
// firstFile returns the path of a regular file under dir.
func firstFile(t *testing.T, dir string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && found == "" && d.Type().IsRegular() {
			found = p
		}
		return err
	})
	if found == "" {
		t.Fatalf("no file under %s", dir)
	}
	return found
}

func assertSameTree(t *testing.T, src, dst string) {
	t.Helper()
	if temps := assertSameFiles(t, src, dst); len(temps) > 0 {
		t.Errorf("temporary files left at the destination: %v", temps)
	}
}

// assertSameFiles fails unless dst holds exactly src's files with the same
// content; it returns the temporary files of a local store found in dst.
func assertSameFiles(t *testing.T, src, dst string) (temps []string) {
	t.Helper()
	a, _ := treeDigest(t, src)
	b, temps := treeDigest(t, dst)
	var problems []string
	for k, v := range a {
		switch w, ok := b[k]; {
		case !ok:
			problems = append(problems, "missing at the destination: "+k)
		case w != v:
			problems = append(problems, "different content: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			problems = append(problems, "only at the destination: "+k)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("destination %s differs from source %s in %d ways (source %d files, destination %d):\n%s",
			dst, src, len(problems), len(a), len(b), strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
	if len(a) == 0 {
		t.Fatal("the source is empty; the comparison proves nothing")
	}
	return temps
}

// countFiles counts regular files under dir.
func countFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// slowPlan writes a source that takes a while to copy: many small files,
// one worker, small tasks (each file is fsynced), plus extra plan lines.
func (f *fixture) slowPlan(name string, files int, extra ...string) (plan, src, dst string) {
	src, dst = f.mkdir(name+"-src"), f.mkdir(name+"-dst")
	writeTree(f.t, src, files, 4096, 7)
	return planTOML(name, src, dst, append([]string{"workers = 1", "max_files_per_task = 10"}, extra...)...), src, dst
}

// 1. A Run Now through the CLI produces a completed job visible in job
// list, and the destination equals the source.
func TestDaemonRunNowThroughCLI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src, dst := f.mkdir("src"), f.mkdir("dst")
	writeTree(t, src, 40, 64<<10, 1)
	if err := os.WriteFile(filepath.Join(src, "big.bin"), bytes.Repeat([]byte("ferry "), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f.writeConfig(planTOML("docs", src, dst))
	f.startDaemon()

	out := f.mustFerry("plan", "run", "docs", "--wait")
	if !strings.Contains(out, "completed") {
		t.Errorf("plan run --wait printed no completed summary:\n%s", out)
	}
	var jobs []*state.Job
	if err := json.Unmarshal([]byte(f.mustFerry("job", "list", "--json")), &jobs); err != nil {
		t.Fatalf("job list --json: %v", err)
	}
	if len(jobs) != 1 {
		t.Fatalf("job list shows %d jobs, want 1: %+v", len(jobs), jobs)
	}
	j := jobs[0]
	if j.Plan != "docs" || j.Status != state.JobCompleted || j.Trigger != TriggerManual {
		t.Errorf("job %+v: want plan docs, completed, trigger manual", j)
	}
	if j.Counters.FilesTransferred != 41 || j.Counters.FilesFailed != 0 {
		t.Errorf("job counters %+v: want 41 files transferred, none failed", j.Counters)
	}
	assertSameTree(t, src, dst)

	var plans []PlanInfo
	if err := json.Unmarshal([]byte(f.mustFerry("plan", "list", "--json")), &plans); err != nil {
		t.Fatalf("plan list --json: %v", err)
	}
	if len(plans) != 1 || plans[0].LastJob == nil || plans[0].LastJob.ID != j.ID || plans[0].Schedule != "Run Now only" {
		t.Errorf("plan list %+v: want plan docs with last job %s", plans, j.ID)
	}

	// Bad requests are one clear line with the CLI's exit codes.
	_, errOut, code := f.ferry("job", "show", "NOPE")
	if code != 2 || !strings.Contains(errOut, `no job "NOPE"`) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("job show NOPE: exit %d, stderr %q; want exit 2 and one line naming the job", code, errOut)
	}
	_, errOut, code = f.ferry("job", "cancel", j.ID)
	if code == 0 || !strings.Contains(errOut, "only a queued or running job can be canceled") {
		t.Errorf("job cancel of a completed job: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = f.ferry("plan", "run", "nope")
	if code != 2 || !strings.Contains(errOut, `no plan named "nope"`) {
		t.Errorf("plan run nope: exit %d, stderr %q", code, errOut)
	}
	// The API itself answers an unknown plan with a 404 and a JSON error.
	if _, err := f.client().RunPlan(context.Background(), "nope"); err == nil {
		t.Error("Run Now of an unknown plan succeeded")
	} else if ae := (*APIError)(nil); !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !strings.Contains(ae.Message, "nope") {
		t.Errorf("Run Now of an unknown plan: %v; want a 404 naming the plan", err)
	}
}

// 2. Run Nows during a run queue one follow-up: both get the same job id,
// and the plan ends with exactly two jobs, both completed.
func TestDaemonRunNowsDuringRunQueueOneFollowUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const files = 600
	plan, src, dst := f.slowPlan("slow", files, `verify = "all"`)
	f.writeConfig(plan)
	f.startDaemon()
	c := f.client()
	ctx := context.Background()

	first, err := c.RunPlan(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Plans[0].RunningJob == first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never started: %+v", first, st.Plans[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	second, err := c.RunPlan(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	third, err := c.RunPlan(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Plans[0].RunningJob != first {
		t.Fatalf("job %s ended before both Run Nows were made (status %+v); the test's job is too small for this machine", first, st.Plans[0])
	}
	if second == first || third != second {
		t.Fatalf("Run Nows during job %s returned %s and %s: want one new queued job for both", first, second, third)
	}
	if st.Plans[0].QueuedJob != second {
		t.Errorf("status shows queued job %q, want %s", st.Plans[0].QueuedJob, second)
	}

	for _, id := range []string{first, second} {
		if j := f.waitJob(c, id); j.Status != state.JobCompleted {
			t.Errorf("job %s ended %s (%s), want completed", id, j.Status, j.Error)
		}
	}
	jobs := f.planJobs(c, "slow")
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID+" "+j.Status)
	}
	if len(jobs) != 2 || jobs[0].ID != first || jobs[1].ID != second {
		t.Fatalf("plan slow has jobs %v, want exactly %s and %s", ids, first, second)
	}
	if c := jobs[1].Counters; c.FilesUnchanged != files || c.FilesTransferred != 0 {
		t.Errorf("the follow-up job found %+v, want all %d files unchanged", c, files)
	}
	assertSameTree(t, src, dst)
}

// 3. A scheduled plan runs on its own (the test build shortens every
// schedule to FERRY_TEST_SCHEDULE_EVERY).
func TestDaemonScheduledPlanRunsOnItsOwn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src, dst := f.mkdir("src"), f.mkdir("dst")
	writeTree(t, src, 10, 1024, 3)
	f.writeConfig(planTOML("nightly", src, dst, `schedule = { every = "24h" }`))
	f.startDaemon("FERRY_TEST_SCHEDULE_EVERY=2s")
	c := f.client()

	var plans []PlanInfo
	if err := json.Unmarshal([]byte(f.mustFerry("plan", "list", "--json")), &plans); err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].NextRun.IsZero() || plans[0].Schedule != "every 1d" {
		t.Errorf("plan list %+v: want a next run and schedule \"every 1d\"", plans)
	}

	deadline := time.Now().Add(waitLimit)
	for {
		var done *state.Job
		for _, j := range f.planJobs(c, "nightly") {
			if j.Trigger != TriggerSchedule {
				t.Fatalf("job %s has trigger %q; only the schedule runs this plan", j.ID, j.Trigger)
			}
			if j.Status == state.JobCompleted {
				done = j
				break
			}
			if terminal(j.Status) {
				t.Fatalf("scheduled job %s ended %s: %s", j.ID, j.Status, j.Error)
			}
		}
		if done != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled job completed")
		}
		time.Sleep(200 * time.Millisecond)
	}
	assertSameTree(t, src, dst)
}

// 4. SIGHUP with a broken config keeps the running one; a valid one is
// taken.
func TestDaemonReloadRefusesBrokenConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src, dst := f.mkdir("src"), f.mkdir("dst-a")
	dstB := f.mkdir("dst-b")
	writeTree(t, src, 5, 1024, 4)
	alpha := planTOML("alpha", src, dst)
	beta := planTOML("beta", src, dstB)
	f.writeConfig(alpha)
	// The CLI reads its --config too: it uses a valid copy while the
	// daemon's file is broken.
	good := f.path("good.toml")
	f.writeConfigAt(good, alpha)
	p := f.startDaemon()

	f.writeConfig("bogus_key = true\n\n" + alpha + beta)
	p.signal(syscall.SIGHUP)
	l := p.waitLog("reload refused", "bogus_key", "unknown key")
	if p.exited() {
		t.Fatalf("the daemon exited after a broken reload\n%s", l)
	}
	var plans []PlanInfo
	if err := json.Unmarshal([]byte(f.mustFerry("--config", good, "--json", "plan", "list")), &plans); err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].Name != "alpha" {
		t.Fatalf("after a refused reload the daemon has plans %+v, want only alpha", plans)
	}
	f.mustFerry("--config", good, "plan", "run", "alpha", "--wait")
	assertSameTree(t, src, dst)

	f.writeConfig(alpha + beta)
	p.signal(syscall.SIGHUP)
	p.waitLogLine(1, "configuration reloaded", "plans=2")
	if err := json.Unmarshal([]byte(f.mustFerry("--json", "plan", "list")), &plans); err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 || plans[1].Name != "beta" {
		t.Fatalf("after a valid reload the daemon has plans %+v, want alpha and beta", plans)
	}
	f.mustFerry("plan", "run", "beta", "--wait")
	assertSameTree(t, src, dstB)

	// Run Now trusts the file index (recheck_destination, 24 h by
	// default); --check-destination has the daemon's job list the
	// destination and restore a copy deleted there.
	victim := firstFile(t, dstB)
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	f.mustFerry("plan", "run", "beta", "--wait")
	if _, err := os.Stat(victim); err == nil {
		t.Errorf("%s came back without a destination check", victim)
	}
	f.mustFerry("plan", "run", "beta", "--wait", "--check-destination")
	assertSameTree(t, src, dstB)

	// A reload that drops a plan: Run Now of it is refused, not queued.
	f.writeConfig(beta)
	p.signal(syscall.SIGHUP)
	p.waitLogLine(1, "configuration reloaded", "plans=1")
	_, err := f.client().RunPlan(context.Background(), "alpha")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("Run Now of a plan the reload removed: %v; want a 404", err)
	}
}

// 5 and 6. A daemon stopped in mid-job — gently by SIGTERM, or killed by
// SIGKILL — resumes the job at its next start: same job, completed, the
// destination equal to the source.
func TestDaemonSIGTERMMidJobExitsAndResumes(t *testing.T) {
	t.Parallel()
	testStopMidJob(t, syscall.SIGTERM)
}

func TestDaemonSIGKILLMidJobResumes(t *testing.T) {
	t.Parallel()
	testStopMidJob(t, syscall.SIGKILL)
}

func testStopMidJob(t *testing.T, sig syscall.Signal) {
	f := newFixture(t)
	const files = 800
	plan, src, dst := f.slowPlan("big", files)
	f.writeConfig(plan)
	p := f.startDaemon()
	c := f.client()
	id, err := c.RunPlan(context.Background(), "big")
	if err != nil {
		t.Fatal(err)
	}
	// Stop it once a good part of the files were copied.
	deadline := time.Now().Add(waitLimit)
	for countFiles(dst) < files/5 {
		if time.Now().After(deadline) {
			t.Fatalf("the job copied only %d files", countFiles(dst))
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.signal(sig)
	code := p.waitExit(stopBound)
	copied := countFiles(dst)
	if copied >= files {
		t.Fatalf("the job had copied all %d files before it was stopped; the test proves nothing", files)
	}
	switch sig {
	case syscall.SIGTERM:
		if code != 0 {
			t.Fatalf("after SIGTERM the daemon exited %d (%v), want 0\n%s", code, p.state, p.log())
		}
		if _, err := os.Stat(f.sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after SIGTERM the socket %s remains (%v)", f.sock, err)
		}
		l := p.log()
		for _, want := range []string{"shutting down", "ferry daemon stopped"} {
			if !strings.Contains(l, want) {
				t.Errorf("daemon log lacks %q", want)
			}
		}
	case syscall.SIGKILL:
		// The killed daemon left its socket behind; the next one must
		// take it over.
		if _, err := os.Stat(f.sock); err != nil {
			t.Logf("socket after SIGKILL: %v", err)
		}
	}

	p2 := f.startDaemon()
	c = f.client()
	j := f.waitJob(c, id)
	if j.Status != state.JobCompleted || j.Resumes < 1 {
		t.Fatalf("job %s after the restart: %s, resumes %d (%s); want the same job completed after ≥1 resume\nfirst daemon:\n%s",
			id, j.Status, j.Resumes, j.Error, p.log())
	}
	// Files the first attempt copied count as resumed. After SIGKILL, a
	// few may have reached the destination without being recorded (their
	// task did not commit): the resumed job finds and adopts them
	// (unchanged) instead of copying them again.
	cs := j.Counters
	adopted := int64(0)
	if sig == syscall.SIGKILL {
		adopted = cs.FilesUnchanged
	}
	if cs.FilesResumed < 1 || cs.FilesTransferred+adopted != files || cs.FilesUnchanged != adopted || cs.FilesFailed != 0 {
		t.Errorf("resumed job counters %+v: want %d files transferred (or, after SIGKILL, adopted), some of them by the first attempt", cs, files)
	}
	if jobs := f.planJobs(c, "big"); len(jobs) != 1 {
		t.Errorf("plan big has %d jobs after the restart, want the one resumed job", len(jobs))
	}
	if j.Error != "" {
		t.Errorf("the completed job still carries the error %q of its interrupted attempt", j.Error)
	}
	if !strings.Contains(p2.log(), "resuming interrupted job") {
		t.Errorf("the second daemon did not log that it resumes job %s", id)
	}
	if sig == syscall.SIGTERM {
		assertSameTree(t, src, dst)
		return
	}
	// A Put the kill interrupted leaves its temporary file, which listings
	// never show and nothing removes yet (reported to remote/local).
	if temps := assertSameFiles(t, src, dst); len(temps) > 0 {
		t.Logf("temporary files left by the killed daemon: %v", temps)
	}
}

// minioRemoteTOML is a remote named minio on the server's bucket, with
// its credential, and a webhook alert named hook to url.
func minioRemoteTOML(srv *testenv.S3Server, bucket, url string) string {
	return fmt.Sprintf(`[remotes.minio]
type = "s3"
endpoint = %q
bucket = %q
region = %q
tls = false
credential = "minio"

[credentials.minio]
access_key = %q
secret_key = %q

[alerts.hook]
type = "webhook"
url = %q

`, srv.Endpoint, bucket, srv.Region, srv.AccessKey, srv.SecretKey, url)
}

// 7. Alerts: a stopped MinIO destination fires job_failed and, after failed
// probes, remote_unreachable to a webhook; remote_recovered when it is back;
// a command alert gets the event JSON.
func TestDaemonAlertsWhenRemoteStops(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv := testenv.StoppableMinIO(t)
	bucket := srv.NewBucket(t)
	hook := newWebhook(t)

	src := f.mkdir("src")
	writeTree(t, src, 8, 2048, 5)
	alertDir := f.mkdir("alerts")
	f.writeConfig(minioRemoteTOML(srv, bucket, hook.URL) + fmt.Sprintf(`[alerts.script]
type = "command"
command = ["sh", "-c", "cat > \"$0/$FERRY_EVENT.json\"", %q]

`, alertDir) + planTOML("offsite", src, "minio:backup/"))
	p := f.startDaemon("FERRY_TEST_PROBE_EVERY=300ms")
	c := f.client()
	ctx := context.Background()

	// While MinIO runs the plan works and nothing alerts.
	id, err := c.RunPlan(ctx, "offsite")
	if err != nil {
		t.Fatal(err)
	}
	if j := f.waitJob(c, id); j.Status != state.JobCompleted {
		t.Fatalf("job with MinIO up: %s (%s)", j.Status, j.Error)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	id, err = c.RunPlan(ctx, "offsite")
	if err != nil {
		t.Fatal(err)
	}
	if j := f.waitJob(c, id); j.Status != state.JobFailed {
		t.Fatalf("job with MinIO down: %s, want failed", j.Status)
	}
	ev := hook.wait(EventJobFailed)
	if ev.Plan != "offsite" || ev.Job != id || ev.Status != state.JobFailed || ev.Message == "" {
		t.Errorf("job_failed event %+v: want plan offsite, job %s", ev, id)
	}
	if ev = hook.wait(EventRemoteUnreachable); ev.Remote != "minio" {
		t.Errorf("remote_unreachable event %+v: want remote minio", ev)
	}
	for _, e := range hook.of(EventRemoteRecovered) {
		t.Errorf("remote_recovered while MinIO is still down: %+v", e)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if ev = hook.wait(EventRemoteRecovered); ev.Remote != "minio" {
		t.Errorf("remote_recovered event %+v: want remote minio", ev)
	}
	var order []string
	for _, e := range hook.of("") {
		order = append(order, e.Type)
	}
	if n := strings.Count(strings.Join(order, " "), EventRemoteUnreachable); n != 1 {
		t.Errorf("events %v: want exactly one remote_unreachable", order)
	}
	if slices.Index(order, EventRemoteRecovered) < slices.Index(order, EventRemoteUnreachable) {
		t.Errorf("events %v: remote_recovered before remote_unreachable", order)
	}

	// The command alert wrote each event's stdin to a file named by
	// FERRY_EVENT.
	data, err := os.ReadFile(filepath.Join(alertDir, EventJobFailed+".json"))
	if err != nil {
		t.Fatalf("command alert: %v\n%s", err, p.log())
	}
	var cev Event
	if err := json.Unmarshal(data, &cev); err != nil {
		t.Fatalf("command alert stdin is not event JSON: %v\n%s", err, data)
	}
	if cev.Type != EventJobFailed || cev.Job != id || cev.Plan != "offsite" {
		t.Errorf("command alert got %+v, want job_failed of job %s", cev, id)
	}
	if strings.Contains(p.log(), srv.SecretKey) {
		t.Error("the daemon log contains the S3 secret key")
	}
}

// 8. sd_notify: a fake NOTIFY_SOCKET receives READY=1, WATCHDOG=1 when
// asked for, and STOPPING=1 after SIGTERM; the daemon exits 0 in the bound.
func TestDaemonNotifySocket(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src, dst := f.mkdir("src"), f.mkdir("dst")
	f.writeConfig(planTOML("p", src, dst))
	notifyPath := f.path("notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			for line := range strings.SplitSeq(string(buf[:n]), "\n") {
				if line != "" {
					msgs <- line
				}
			}
		}
	}()
	var seen []string
	expect := func(want string) {
		t.Helper()
		timeout := time.After(waitLimit)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed; got %v, no %s", seen, want)
				}
				seen = append(seen, m)
				if m == want {
					return
				}
			case <-timeout:
				t.Fatalf("notify socket got %v, never %s", seen, want)
			}
		}
	}

	p := f.startDaemon("NOTIFY_SOCKET="+notifyPath, "WATCHDOG_USEC=400000")
	expect("READY=1")
	if !slices.ContainsFunc(seen, func(s string) bool { return strings.HasPrefix(s, "STATUS=") }) {
		t.Errorf("no STATUS= before READY=1: %v", seen)
	}
	expect("WATCHDOG=1")
	p.signal(syscall.SIGTERM)
	expect("STOPPING=1")
	if code := p.waitExit(stopBound); code != 0 {
		t.Errorf("after SIGTERM the daemon exited %d, want 0", code)
	}
	if _, err := os.Stat(f.sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after SIGTERM the socket %s remains (%v)", f.sock, err)
	}
}

// 9. /metrics serves Prometheus text that the client library parses, with
// the finished job counted.
func TestDaemonMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src, dst := f.mkdir("src"), f.mkdir("dst")
	writeTree(t, src, 12, 1024, 9)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f.writeConfig(fmt.Sprintf("metrics_listen = %q\n\n", addr) + planTOML("m", src, dst))
	f.startDaemon()
	f.mustFerry("plan", "run", "m", "--wait")

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		mf, ok := families[name]
		if !ok {
			return 0, false
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	if v, ok := value("ferry_jobs_total", map[string]string{"plan": "m", "status": "completed"}); !ok || v < 1 {
		t.Errorf("ferry_jobs_total{plan=\"m\",status=\"completed\"} = %v (present %v), want ≥ 1", v, ok)
	}
	if v, ok := value("ferry_files_transferred_total", map[string]string{"plan": "m"}); !ok || v != 12 {
		t.Errorf("ferry_files_transferred_total{plan=\"m\"} = %v (present %v), want 12", v, ok)
	}
	if v, ok := value("ferry_last_success_timestamp_seconds", map[string]string{"plan": "m"}); !ok || v <= 0 {
		t.Errorf("ferry_last_success_timestamp_seconds{plan=\"m\"} = %v (present %v)", v, ok)
	}
	if _, ok := value("ferry_queue_depth", map[string]string{"plan": "m"}); !ok {
		t.Error("ferry_queue_depth{plan=\"m\"} is missing")
	}
}

// Cancel: `ferry job cancel` drops a queued job and stops a running one;
// `plan run --wait` following the running job exits 6 (canceled).
func TestDaemonCancelJobs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	plan, _, _ := f.slowPlan("slow", 600)
	f.writeConfig(plan)
	f.startDaemon()
	c := f.client()
	ctx := context.Background()

	// Follow a Run Now with the CLI in the background.
	waitCtx, cancelWait := context.WithTimeout(ctx, waitLimit)
	defer cancelWait()
	follow := exec.CommandContext(waitCtx, f.bin, "--config", f.cfg, "plan", "run", "slow", "--wait")
	follow.Env = childEnv()
	var followOut bytes.Buffer
	follow.Stdout, follow.Stderr = &followOut, &followOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	var running string
	deadline := time.Now().Add(waitLimit)
	for running == "" {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		running = st.Plans[0].RunningJob
		if time.Now().After(deadline) {
			t.Fatal("the Run Now never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	queued, err := c.RunPlan(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if out := f.mustFerry("job", "cancel", queued); !strings.Contains(out, queued) {
		t.Errorf("job cancel printed %q", out)
	}
	if j, err := c.Job(ctx, queued); err != nil || j.Status != state.JobCanceled {
		t.Errorf("queued job after cancel: %+v, %v; want canceled", j, err)
	}
	f.mustFerry("job", "cancel", running)
	if j := f.waitJob(c, running); j.Status != state.JobCanceled {
		t.Errorf("running job after cancel: %s (%s), want canceled", j.Status, j.Error)
	}
	err = follow.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 6 {
		t.Errorf("plan run --wait of the canceled job: %v, want exit 6\n%s", err, followOut.String())
	}
	if st, err := c.Status(ctx); err != nil || st.Plans[0].RunningJob != "" || st.Plans[0].QueuedJob != "" {
		t.Errorf("after both cancels: %+v, %v; want nothing running or queued", st, err)
	}
}
