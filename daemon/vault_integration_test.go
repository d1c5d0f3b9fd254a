//go:build linux

package daemon

// Integration tests of the daemon's vault policies and [[mounts]], through
// the real ferry binary (see integration_test.go for the fixture): backup
// and replication policies run on their own (FERRY_TEST_SCHEDULE_EVERY),
// daemon-managed mounts are up before READY=1 and gone after SIGTERM, and a
// mount that cannot be made is alerted without stopping the daemon.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/vault"
)

// readerConfig writes a second configuration for CLI commands run while
// the daemon holds the fixture's state directory: the same body, its own
// state directory and socket. It returns the file's path.
func (f *fixture) readerConfig(body string) string {
	f.t.Helper()
	p := f.path("cli.toml")
	head := fmt.Sprintf("state_dir = %q\nsocket = %q\n\n", f.path("cli-state"), f.path("cli.sock"))
	if err := os.WriteFile(p, []byte(head+body), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// listBackups runs `ferry backup list --vault name --json` with the
// configuration at cfg.
func (f *fixture) listBackups(cfg, name string) []backupEntry {
	f.t.Helper()
	var out []backupEntry
	raw := f.mustFerry("--config", cfg, "--json", "backup", "list", "--vault", name)
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		f.t.Fatalf("backup list --vault %s --json: %v\n%s", name, err, raw)
	}
	return out
}

// backupEntry is one backup of `ferry backup list --json`.
type backupEntry struct {
	Vault string `json:"vault"`
	vault.Manifest
}

// vaultTOML is a local remote and a vault on it at prefix, of kind (""
// for the default, backup).
func vaultTOML(remoteName, dir, vaultName, prefix, kind string) string {
	s := fmt.Sprintf("[remotes.%s]\ntype = \"local\"\npath = %q\n\n[vaults.%s]\nremote = %q\nprefix = %q\n",
		remoteName, dir, vaultName, remoteName, prefix)
	if kind != "" {
		s += fmt.Sprintf("kind = %q\n", kind)
	}
	return s + "\n"
}

// createdBackups returns, in log order, the ids of the "backup created"
// lines of a backup policy in a daemon log.
func createdBackups(log, policy string) []string {
	var ids []string
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, `msg="backup created"`) || !strings.Contains(line, "backup_policy="+policy+" ") {
			continue
		}
		for field := range strings.FieldsSeq(line) {
			if id, ok := strings.CutPrefix(field, "backup="); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// A [[backup_policies]] entry runs on its own: its backups appear in the
// vault, and its keep rule leaves at most keep.last of them.
func TestDaemonBackupPolicyRunsAndKeepsLast(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src := f.mkdir("src")
	writeTree(t, src, 12, 4096, 21)
	body := vaultTOML("loc", f.path("data"), "v", "vault", "") + fmt.Sprintf(`[[backup_policies]]
name = "docs"
source = %q
vault = "v"
schedule = { every = "1h" }
keep = { last = 2 }
`, src)
	f.writeConfig(body)
	reader := f.readerConfig(body)
	f.mustFerry("vault", "init", "v")
	if got := f.listBackups(f.cfg, "v"); len(got) != 0 {
		t.Fatalf("a new vault lists %d backups", len(got))
	}

	p := f.startDaemon("FERRY_TEST_SCHEDULE_EVERY=2s")
	p.waitLogLine(1, "backup created", "backup_policy=docs")
	first := createdBackups(p.log(), "docs")[0]
	var found *backupEntry
	for _, b := range f.listBackups(reader, "v") {
		if b.ID == first {
			found = &b
		}
	}
	switch {
	case found == nil:
		t.Fatalf("backup %s, created by the policy, is not in backup list --vault v", first)
	case found.Status != vault.StatusAvailable || found.Source != src || found.Name != "docs" ||
		found.IsReplica() || found.Stats.Files != 12 || found.Vault != "v":
		t.Errorf("backup made by the policy: %+v; want an available original of %s named docs with 12 files", *found, src)
	}

	// After four runs the keep rule has deleted at least the two oldest.
	p.waitLogLine(4, "backup created", "backup_policy=docs")
	created := createdBackups(p.log(), "docs")
	deadline := time.Now().Add(waitLimit)
	for {
		got := f.listBackups(reader, "v")
		var ids []string
		ok := len(got) <= 2 && len(got) >= 1
		for _, b := range got {
			ids = append(ids, b.ID)
			ok = ok && b.Status == vault.StatusAvailable && b.Source == src && !slices.Contains(created[:2], b.ID)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d runs of a policy with keep.last = 2 the vault lists %v (want at most 2 available backups, neither of the first two %v)\nlog:\n%s",
				len(created), ids, created[:2], p.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.waitLog("old backups deleted by the keep rules", "backup_policy=docs")
	p.signal(syscall.SIGTERM)
	if code := p.waitExit(stopBound); code != 0 {
		t.Errorf("after SIGTERM the daemon exited %d, want 0", code)
	}
	if l := p.log(); strings.Contains(l, "level=ERROR") {
		t.Errorf("the daemon logged errors:\n%s", l)
	}
}

// A [[replication_policies]] entry runs on its own: the source vault's
// backups reach the replication vault on another account as replicas, once
// each, with a success record in `ferry replication list`.
func TestDaemonReplicationPolicyReplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src := f.mkdir("src")
	writeTree(t, src, 10, 8192, 22)
	body := vaultTOML("loc", f.path("data"), "v", "vault", "") +
		vaultTOML("loc2", f.path("data2"), "dst", "replicas", "replication") + `[[replication_policies]]
name = "offsite"
source_vault = "v"
destination_vault = "dst"
schedule = { every = "1h" }
`
	f.writeConfig(body)
	reader := f.readerConfig(body)
	f.mustFerry("vault", "init", "v")
	f.mustFerry("vault", "init", "dst")
	var b1 backupEntry
	if err := json.Unmarshal([]byte(f.mustFerry("--json", "backup", "create", "--vault", "v", "--name", "one", src)), &b1); err != nil {
		t.Fatal(err)
	}

	p := f.startDaemon("FERRY_TEST_SCHEDULE_EVERY=2s")
	p.waitLogLine(1, "backup replicated", "replication_policy=offsite", "backup="+b1.ID)
	// A second backup, made while the daemon runs, is replicated by a later
	// run, which must not copy or record the first one again.
	if err := os.WriteFile(filepath.Join(src, "added.txt"), []byte("added after the first replication\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b2 backupEntry
	if err := json.Unmarshal([]byte(f.mustFerry("--config", reader, "--json", "backup", "create", "--vault", "v", "--name", "two", src)), &b2); err != nil {
		t.Fatal(err)
	}
	p.waitLogLine(1, "backup replicated", "replication_policy=offsite", "backup="+b2.ID)

	replicas := f.listBackups(reader, "dst")
	if len(replicas) != 2 {
		t.Fatalf("the replication vault lists %d backups, want the 2 replicas: %+v", len(replicas), replicas)
	}
	for _, r := range replicas {
		rf := r.ReplicatedFrom
		if r.Status != vault.StatusAvailable || rf == nil || rf.Vault != "v" || rf.Account != "loc" || rf.BackupID != r.ID ||
			(r.ID != b1.ID && r.ID != b2.ID) {
			t.Errorf("replica %+v (from %+v): want an available replica of %s or %s from vault v, account loc", r, rf, b1.ID, b2.ID)
		}
	}

	var recs []*vault.Replication
	raw := f.mustFerry("--config", reader, "--json", "replication", "list")
	if err := json.Unmarshal([]byte(raw), &recs); err != nil {
		t.Fatalf("replication list --json: %v\n%s", err, raw)
	}
	perBackup := map[string][]string{}
	for _, r := range recs {
		perBackup[r.BackupID] = append(perBackup[r.BackupID], r.Status)
		if r.SourceVault != "v" || r.DestinationVault != "dst" || r.SourceAccount != "loc" || r.DestinationAccount != "loc2" {
			t.Errorf("replication record %+v: want v (loc) to dst (loc2)", r)
		}
		if r.Status == vault.ReplSuccess && r.Bytes <= 0 && r.BackupID == b1.ID {
			t.Errorf("replication record %+v: a success that copied no bytes", r)
		}
	}
	for _, id := range []string{b1.ID, b2.ID} {
		if got := perBackup[id]; !slices.Equal(got, []string{vault.ReplSuccess}) {
			t.Errorf("replication records of backup %s: %v; want exactly one success (later runs skip a backup the destination has without a record)", id, got)
		}
	}

	// The replica is whole: restoring it gives the source.
	restored := f.path("restored")
	f.mustFerry("--config", reader, "backup", "restore", b2.ID, restored, "--vault", "dst")
	assertSameFiles(t, src, restored)

	p.signal(syscall.SIGTERM)
	if code := p.waitExit(stopBound); code != 0 {
		t.Errorf("after SIGTERM the daemon exited %d, want 0", code)
	}
	if l := p.log(); strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
		t.Errorf("the daemon logged problems:\n%s", l)
	}
}

// notifyListener is a fake systemd notify socket. onMessage, when set, is
// called on the reading goroutine as each message arrives, before the
// message is delivered.
type notifyListener struct {
	t    *testing.T
	path string
	msgs chan string
	seen []string
}

func listenNotify(t *testing.T, path string, onMessage func(string)) *notifyListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n := &notifyListener{t: t, path: path, msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			for line := range strings.SplitSeq(string(buf[:k]), "\n") {
				if line == "" {
					continue
				}
				if onMessage != nil {
					onMessage(line)
				}
				n.msgs <- line
			}
		}
	}()
	return n
}

// expect waits for the message want and returns the messages seen so far.
func (n *notifyListener) expect(want string) []string {
	n.t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				n.t.Fatalf("notify socket closed; got %v, no %s", n.seen, want)
			}
			n.seen = append(n.seen, m)
			if m == want {
				return n.seen
			}
		case <-timeout:
			n.t.Fatalf("notify socket got %v, never %s", n.seen, want)
		}
	}
}

// mountInfo is one line of /proc/mounts.
type mountInfo struct{ source, fsType string }

// procMounts reads /proc/mounts now, by mount point. Test paths contain no
// character the kernel escapes there (space, tab, newline, backslash).
func procMounts() (map[string]mountInfo, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]mountInfo{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 {
			out[fields[1]] = mountInfo{source: fields[0], fsType: fields[2]}
		}
	}
	return out, sc.Err()
}

// needFUSE ends the test (skip, or fail under FERRY_TEST_REQUIRE=fuse)
// when this machine cannot mount FUSE file systems.
func needFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, testenv.PartFUSE, "no /dev/fuse: "+err.Error())
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		testenv.Missing(t, testenv.PartFUSE, "no fusermount3 on PATH")
	}
}

// noMountLeftAt makes sure, when the test ends, that nothing is mounted at
// mp: a mount still there (a daemon killed by the test's cleanup leaves
// one) is unmounted lazily, and is an error unless the test already failed.
// Register it before the daemon starts, so that it runs after the daemon is
// gone.
func noMountLeftAt(t *testing.T, mp string) {
	if strings.ContainsAny(mp, " \t\n\\") {
		t.Fatalf("mount point %q has a character /proc/mounts escapes; use a plainer temporary directory", mp)
	}
	t.Cleanup(func() {
		// Mounts may be stacked: unmount until none is left.
		for i := 0; ; i++ {
			ms, err := procMounts()
			if err != nil {
				t.Errorf("read /proc/mounts: %v", err)
				return
			}
			if _, ok := ms[mp]; !ok {
				return
			}
			if i == 0 && !t.Failed() {
				t.Errorf("%s is still mounted when the test ends", mp)
			}
			if out, err := exec.Command("fusermount3", "-u", "-z", mp).CombinedOutput(); err != nil || i == 10 {
				t.Errorf("fusermount3 -u -z %s: %v\n%s", mp, err, out)
				return
			}
		}
	})
}

// A [[mounts]] entry of a remote is mounted before READY=1 — /proc/mounts
// lists it when READY=1 arrives, and the remote's files read through it —
// and is gone after SIGTERM.
func TestDaemonMountUpBeforeReadyGoneAfterStop(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	f := newFixture(t)
	data := f.mkdir("data")
	const content = "read through the daemon's mount\n"
	if err := os.MkdirAll(filepath.Join(data, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "docs", "hello.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	mp := f.mkdir("mnt")
	noMountLeftAt(t, mp)
	f.writeConfig(fmt.Sprintf(`[remotes.loc]
type = "local"
path = %q

[[mounts]]
remote = "loc"
path = %q
`, data, mp))

	// /proc/mounts is read on the notify socket's goroutine the moment
	// READY=1 arrives, before the test goroutine hears of it.
	var mu sync.Mutex
	var atReady map[string]mountInfo
	var atReadyErr error
	n := listenNotify(t, f.path("notify.sock"), func(m string) {
		if m == "READY=1" {
			mu.Lock()
			defer mu.Unlock()
			if atReady == nil && atReadyErr == nil {
				atReady, atReadyErr = procMounts()
			}
		}
	})
	p := f.spawnDaemon("NOTIFY_SOCKET=" + n.path)
	n.expect("READY=1")
	mu.Lock()
	mi, ok := atReady[mp]
	err := atReadyErr
	mu.Unlock()
	if err != nil {
		t.Fatalf("read /proc/mounts at READY=1: %v", err)
	}
	if !ok {
		t.Fatalf("READY=1 arrived before %s was mounted\nlog:\n%s", mp, p.log())
	}
	if !strings.HasPrefix(mi.fsType, "fuse") || mi.source != "ferry:loc" {
		t.Errorf("/proc/mounts at READY=1 has %s as %+v; want a FUSE file system with source ferry:loc", mp, mi)
	}
	got, err := os.ReadFile(filepath.Join(mp, "docs", "hello.txt"))
	if err != nil || string(got) != content {
		t.Errorf("read docs/hello.txt through the mount: %q, %v; want %q", got, err, content)
	}
	p.waitReady() // the control API answers too

	p.signal(syscall.SIGTERM)
	n.expect("STOPPING=1")
	if code := p.waitExit(stopBound); code != 0 {
		t.Errorf("after SIGTERM the daemon exited %d, want 0", code)
	}
	ms, err := procMounts()
	if err != nil {
		t.Fatal(err)
	}
	if mi, ok := ms[mp]; ok {
		t.Errorf("after SIGTERM %s is still mounted (%+v)\nlog:\n%s", mp, mi, p.log())
	}
	if l := p.log(); !strings.Contains(l, `msg=unmounted path=`+mp) {
		t.Errorf("the daemon did not log the unmount of %s:\n%s", mp, l)
	}
}

// A daemon killed with its mount up leaves a dead FUSE mount; the next
// daemon removes it and mounts there again, and SIGTERM leaves nothing.
func TestDaemonMountAfterKillIsRemounted(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	f := newFixture(t)
	data := f.mkdir("data")
	if err := os.WriteFile(filepath.Join(data, "a.txt"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	mp := f.mkdir("mnt")
	noMountLeftAt(t, mp)
	f.writeConfig(fmt.Sprintf("[remotes.loc]\ntype = \"local\"\npath = %q\n\n[[mounts]]\nremote = \"loc\"\npath = %q\n", data, mp))
	p := f.startDaemon()
	p.waitLog("msg=mounted", "path="+mp)
	p.signal(syscall.SIGKILL)
	p.waitExit(stopBound)
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(mp, &sfs); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL, statfs %s: %v; want the dead mount's ENOTCONN (the test proves nothing otherwise)", mp, err)
	}

	p2 := f.startDaemon()
	p2.waitLog("removed the dead FUSE mount", "path="+mp)
	if b, err := os.ReadFile(filepath.Join(mp, "a.txt")); err != nil || string(b) != "A" {
		t.Errorf("read a.txt through the new mount: %q, %v", b, err)
	}
	p2.signal(syscall.SIGTERM)
	if code := p2.waitExit(stopBound); code != 0 {
		t.Errorf("after SIGTERM the daemon exited %d, want 0", code)
	}
	if ms, err := procMounts(); err != nil {
		t.Fatal(err)
	} else if mi, ok := ms[mp]; ok {
		t.Errorf("after SIGTERM %s is still mounted (%+v)", mp, mi)
	}
}

// webhookEvents collects the events posted to a test webhook.
type webhookEvents struct {
	t      *testing.T
	URL    string
	mu     sync.Mutex
	events []Event
}

func newWebhook(t *testing.T) *webhookEvents {
	w := &webhookEvents{t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL + "/"
	return w
}

// of returns the events of type typ received so far, or all with "".
func (w *webhookEvents) of(typ string) []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Event
	for _, ev := range w.events {
		if typ == "" || ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the first event of type typ, waiting for it.
func (w *webhookEvents) wait(typ string) Event {
	w.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		w.mu.Lock()
		for _, ev := range w.events {
			if ev.Type == typ {
				w.mu.Unlock()
				return ev
			}
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			w.t.Fatalf("no %s event reached the webhook", typ)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A [[mounts]] entry whose path does not exist does not stop the daemon:
// it becomes ready, logs the failure and alerts mount_failed.
func TestDaemonMountFailureIsAlerted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	data := f.mkdir("data")
	missing := f.path("no-such-dir")
	noMountLeftAt(t, missing)
	hook := newWebhook(t)
	f.writeConfig(fmt.Sprintf(`[remotes.loc]
type = "local"
path = %q

[alerts.hook]
type = "webhook"
url = %q

[[mounts]]
remote = "loc"
path = %q
`, data, hook.URL, missing))
	n := listenNotify(t, f.path("notify.sock"), nil)
	p := f.spawnDaemon("NOTIFY_SOCKET=" + n.path)
	n.expect("READY=1")
	p.waitReady()
	p.waitLog(`msg="mount failed"`, "path="+missing, "does not exist")
	ev := hook.wait(EventMountFailed)
	if !strings.Contains(ev.Message, missing) || !strings.Contains(ev.Message, "does not exist") || ev.Host == "" {
		t.Errorf("mount_failed event %+v: want a message naming %s and the reason", ev, missing)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("the daemon created the missing mount point %s", missing)
	}
	p.signal(syscall.SIGTERM)
	n.expect("STOPPING=1")
	if code := p.waitExit(stopBound); code != 0 {
		t.Errorf("after SIGTERM the daemon exited %d, want 0", code)
	}
}
