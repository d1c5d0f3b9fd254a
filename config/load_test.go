package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// problemsOf parses text and returns its problems (nil when valid).
func problemsOf(t *testing.T, text string) (*Config, []Problem) {
	t.Helper()
	cfg, err := Parse([]byte(text), "test.toml")
	if err == nil {
		return cfg, nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse returned %T %v, want *ValidationError", err, err)
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("a ValidationError does not match ErrConfig")
	}
	return nil, ve.Problems
}

func findProblem(ps []Problem, key string) (Problem, bool) {
	for _, p := range ps {
		if p.Key == key {
			return p, true
		}
	}
	return Problem{}, false
}

// The acceptance case of issue 2: all three problems at once, each with
// file, line and key path.
func TestAllProblemsAtOnce(t *testing.T) {
	const text = `state_dir = "/tmp/ferry-test"
colour = "blue"

[remotes.disk]
type = "local"
path = "/srv/disk"

[[plans]]
name = "docs"
source = "/srv/docs"
destination = "nosuch:docs"
schedule = { every = "5m" }
`
	_, ps := problemsOf(t, text)
	want := []Problem{
		{File: "test.toml", Line: 2, Key: "colour", Message: "unknown key"},
		{File: "test.toml", Line: 11, Key: "plans[0].destination", Message: `unknown remote "nosuch"`},
		{File: "test.toml", Line: 12, Key: "plans[0].schedule.every", Message: `"5m" is below the minimum of "10m"`},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i, w := range want {
		p := ps[i]
		if p.File != w.File || p.Line != w.Line || p.Key != w.Key || !strings.Contains(p.Message, w.Message) {
			t.Errorf("problem %d = %+v, want %+v", i, p, w)
		}
	}
	if got := ps[0].String(); !strings.HasPrefix(got, "test.toml:2: colour: unknown key") {
		t.Errorf("String() = %q", got)
	}
	// The error text lists every problem, one per line.
	_, err := Parse([]byte(text), "test.toml")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "3 problems") {
		t.Errorf("Error() =\n%s", err)
	}
	for i, p := range ps {
		if lines[i+1] != p.String() {
			t.Errorf("line %d = %q, want %q", i+1, lines[i+1], p.String())
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.toml", Line: 3, Key: "a.b", Message: "bad"}, "f.toml:3: a.b: bad"},
		{Problem{File: "f.toml", Key: "a.b", Message: "bad"}, "f.toml: a.b: bad"},
		{Problem{File: "f.toml", Line: 3, Message: "bad"}, "f.toml:3: bad"},
		{Problem{Key: "a", Message: "bad"}, "a: bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	cfg, ps := problemsOf(t, `
[[plans]]
name = "p"
source = "/srv/a"
destination = "/srv/b"
schedule = { every = "1h" }

[remotes.s3]
type = "s3"
endpoint = "minio.local:9000"
bucket = "bkt"
prefix = "data"

[credentials.c]
access_key = "AK"
secret_key = "SK"

[vaults.v]
remote = "s3"
`)
	if ps != nil {
		t.Fatalf("problems: %v", ps)
	}
	if cfg.StateDir != "/var/lib/ferry" || cfg.Socket != "/run/ferry/ferry.sock" || cfg.LogLevel != "info" ||
		cfg.JobRetention.Duration != 180*24*time.Hour || cfg.MetricsListen != "" || cfg.File != "test.toml" {
		t.Errorf("global defaults: %+v", cfg)
	}
	p := cfg.Plans[0]
	if p.Conflict != "update" || p.Mode != "scan" || p.Verify != "transferred" || p.Workers != 8 ||
		p.MaxFilesPerTask != 1000 || p.MaxBytesPerTask != GiB || p.MaxDelete != (Limit{Percent: 50}) ||
		p.Delete || p.Watch || p.WatchDelay.Duration != 10*time.Second || p.WatchMaxDelay.Duration != 60*time.Second ||
		p.ChangelistPoll.Duration != 30*time.Second || p.Alerts != nil {
		t.Errorf("plan defaults: %+v", p)
	}
	if p.Schedule == nil || p.Schedule.Every.Duration != time.Hour || p.Schedule.Start.Before(before) || p.Schedule.Start.After(time.Now()) {
		t.Errorf("schedule: %+v", p.Schedule)
	}
	r := cfg.Remotes["s3"]
	if r.Name != "s3" || !r.TLS || r.PartSize != 16*MiB || r.Prefix != "data/" {
		t.Errorf("remote defaults: %+v", r)
	}
	if c := cfg.Credentials["c"]; c.Name != "c" || c.Account != "c" || c.SecretKey.Reveal() != "SK" {
		t.Errorf("credential defaults: %+v", c)
	}
	if v := cfg.Vaults["v"]; v.Kind != "backup" || v.Name != "v" {
		t.Errorf("vault defaults: %+v", v)
	}
	if src := p.SourceLocation(); !src.IsLocal() || src.Path != "/srv/a" {
		t.Errorf("SourceLocation = %+v", src)
	}
	if got, ok := cfg.LookupPlan("p"); !ok || got != p {
		t.Errorf("LookupPlan")
	}
}

func TestEmptyConfigIsValid(t *testing.T) {
	cfg, ps := problemsOf(t, "")
	if ps != nil || cfg == nil || len(cfg.Plans) != 0 {
		t.Fatalf("empty file: %v", ps)
	}
}

// base has one of each referable thing for the table below.
const base = `
[remotes.s3a]
type = "s3"
endpoint = "s3.example.com"
bucket = "bucket-a"

[remotes.disk]
type = "local"
path = "/srv/disk"

[vaults.main]
remote = "s3a"
prefix = "vaults/main"

[vaults.off]
remote = "disk"
kind = "replication"

[alerts.ops]
type = "webhook"
url = "https://hooks.example.com/ferry"
`

func TestValidationProblems(t *testing.T) {
	plan := func(extra string) string {
		return "[[plans]]\nname = \"p\"\nsource = \"/srv/src\"\ndestination = \"s3a:dst\"\n" + extra + "\n"
	}
	long := make([]string, 0, 200)
	for range 200 {
		long = append(long, `"dir/some-file-name.txt"`)
	}
	tests := []struct {
		name string
		top  string // before base (top-level keys)
		body string // after base
		key  string
		msg  string
	}{
		// global
		{"state_dir relative", `state_dir = "var/lib"`, "", "state_dir", "not an absolute path"},
		{"socket dotdot", `socket = "/run/../x.sock"`, "", "socket", `".." component`},
		{"log level", `log_level = "loud"`, "", "log_level", `"debug", "info", "warn", "error"`},
		{"metrics listen", `metrics_listen = "localhost"`, "", "metrics_listen", "HOST:PORT"},
		{"job retention bad", `job_retention = "180 days"`, "", "job_retention", "invalid duration"},
		{"job retention number", `job_retention = 180`, "", "job_retention", "must be a string"},
		{"job retention zero", `job_retention = "0"`, "", "job_retention", "longer than zero"},
		{"top-level type", `state_dir = 5`, "", "state_dir", "must be a string, not an integer"},

		// remotes
		{"remote no type", "", "[remotes.x]\npath = \"/a\"", "remotes.x.type", `is required (valid: "local", "s3")`},
		{"remote bad type", "", "[remotes.x]\ntype = \"ftp\"", "remotes.x.type", `"ftp" is not valid (valid: "local", "s3")`},
		{"local no path", "", "[remotes.x]\ntype = \"local\"", "remotes.x.path", "is required"},
		{"local relative path", "", "[remotes.x]\ntype = \"local\"\npath = \"srv\"", "remotes.x.path", "absolute"},
		{"local with bucket", "", "[remotes.x]\ntype = \"local\"\npath = \"/srv\"\nbucket = \"b\"", "remotes.x.bucket", `only to remotes of type "s3"`},
		{"local with tls", "", "[remotes.x]\ntype = \"local\"\npath = \"/srv\"\ntls = false", "remotes.x.tls", `only to remotes of type "s3"`},
		{"s3 with path", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com\"\nbucket = \"bbb\"\npath = \"/a\"", "remotes.x.path", `only to remotes of type "local"`},
		{"s3 no endpoint", "", "[remotes.x]\ntype = \"s3\"\nbucket = \"bbb\"", "remotes.x.endpoint", "is required"},
		{"s3 endpoint scheme", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"https://e.com\"\nbucket = \"bbb\"", "remotes.x.endpoint", "scheme"},
		{"s3 endpoint port", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com:99999\"\nbucket = \"bbb\"", "remotes.x.endpoint", "port"},
		{"s3 no bucket", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com\"", "remotes.x.bucket", "is required"},
		{"s3 bad bucket", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com\"\nbucket = \"a/b\"", "remotes.x.bucket", "not a valid bucket name"},
		{"s3 bad prefix", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com\"\nbucket = \"bbb\"\nprefix = \"a/../b\"", "remotes.x.prefix", `".." component`},
		{"s3 unknown credential", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com\"\nbucket = \"bbb\"\ncredential = \"nope\"", "remotes.x.credential", `unknown credential "nope"`},
		{"s3 part size small", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com\"\nbucket = \"bbb\"\npart_size = \"1MiB\"", "remotes.x.part_size", "5MiB to 5GiB"},
		{"s3 part size bad", "", "[remotes.x]\ntype = \"s3\"\nendpoint = \"e.com\"\nbucket = \"bbb\"\npart_size = \"lots\"", "remotes.x.part_size", "invalid size"},
		{"remote bad name", "", "[remotes.\"my remote\"]\ntype = \"local\"\npath = \"/a\"", `remotes."my remote"`, "invalid name"},

		// credentials
		{"credential both secrets", "", "[credentials.c]\naccess_key = \"a\"\nsecret_key = \"s\"\nsecret_key_file = \"/x\"", "credentials.c.secret_key", "both"},
		{"credential no secret", "", "[credentials.c]\naccess_key = \"a\"", "credentials.c.secret_key_file", "is required"},
		{"credential no access key", "", "[credentials.c]\nsecret_key = \"s\"", "credentials.c.access_key", "is required"},
		{"credential missing file", "", "[credentials.c]\naccess_key = \"a\"\nsecret_key_file = \"/nonexistent/ferry/secret\"", "credentials.c.secret_key_file", "cannot read /nonexistent/ferry/secret"},
		{"credential empty account", "", "[credentials.c]\naccess_key = \"a\"\nsecret_key = \"s\"\naccount = \"\"", "credentials.c.account", "is empty"},

		// plans
		{"plan unknown key", "", plan(`conflikt = "skip"`), "plans[0].conflikt", `did you mean "conflict"?`},
		{"plan no name", "", "[[plans]]\nsource = \"/a\"\ndestination = \"/b\"", "plans[0].name", "is required"},
		{"plan bad name", "", "[[plans]]\nname = \"a/b\"\nsource = \"/a\"\ndestination = \"/b\"", "plans[0].name", "invalid name"},
		{"plan duplicate name", "", plan("") + plan(""), "plans[1].name", `duplicate plan name "p" (also used by plans[0])`},
		{"plan no source", "", "[[plans]]\nname = \"p\"\ndestination = \"/b\"", "plans[0].source", "is required"},
		{"plan relative source", "", "[[plans]]\nname = \"p\"\nsource = \"srv/a\"\ndestination = \"/b\"", "plans[0].source", "not an absolute path"},
		{"plan dotdot source", "", "[[plans]]\nname = \"p\"\nsource = \"/srv/../etc\"\ndestination = \"/b\"", "plans[0].source", `".." component`},
		{"plan double slash source", "", "[[plans]]\nname = \"p\"\nsource = \"/srv//a\"\ndestination = \"/b\"", "plans[0].source", "empty component"},
		{"plan backslash source", "", "[[plans]]\nname = \"p\"\nsource = '/srv\\a'\ndestination = \"/b\"", "plans[0].source", "backslash"},
		{"plan s3 source bad prefix", "", "[[plans]]\nname = \"p\"\nsource = \"s3a:a/./b\"\ndestination = \"/b\"", "plans[0].source", `"." component`},
		{"plan unknown remote", "", "[[plans]]\nname = \"p\"\nsource = \"/a\"\ndestination = \"s3b:x\"", "plans[0].destination", `unknown remote "s3b" in "s3b:x" (configured: disk, s3a`},
		{"plan destination is source", "", "[[plans]]\nname = \"p\"\nsource = \"/srv/a\"\ndestination = \"/srv/a/\"", "plans[0].destination", "inside it"},
		{"plan destination inside source", "", "[[plans]]\nname = \"p\"\nsource = \"/srv\"\ndestination = \"/srv/backup\"", "plans[0].destination", "inside it"},
		{"plan remote destination inside source", "", "[[plans]]\nname = \"p\"\nsource = \"s3a:data\"\ndestination = \"s3a:data/copy\"", "plans[0].destination", "inside it"},
		// A source inside its destination, deletes on: the delete pass would
		// remove the source. Compared by what the locations are, not by names.
		{"plan source inside destination", "", "[[plans]]\nname = \"p\"\nsource = \"disk:x/sub\"\ndestination = \"disk:x\"\ndelete = true\nmax_delete = \"100%\"", "plans[0].destination", "would delete the source itself"},
		{"plan local source inside local remote", "", "[[plans]]\nname = \"p\"\nsource = \"/srv/disk/x/sub\"\ndestination = \"disk:x\"\ndelete = true", "plans[0].destination", "would delete the source itself"},
		{"plan local destination is local remote", "", "[[plans]]\nname = \"p\"\nsource = \"disk:x\"\ndestination = \"/srv/disk/x/\"", "plans[0].destination", "inside it"},
		{"plan two remotes one bucket", "", "[remotes.b]\ntype = \"s3\"\nendpoint = \"S3.example.com:443\"\nbucket = \"bucket-a\"\nprefix = \"x/\"\n[[plans]]\nname = \"p\"\nsource = \"s3a:x/sub\"\ndestination = \"b:\"\ndelete = true", "plans[0].destination", "would delete the source itself"},
		{"plan two remotes destination in source", "", "[remotes.b]\ntype = \"s3\"\nendpoint = \"s3.example.com\"\nbucket = \"bucket-a\"\nprefix = \"x/sub\"\n[[plans]]\nname = \"p\"\nsource = \"s3a:x\"\ndestination = \"b:\"", "plans[0].destination", "inside it"},
		{"plan conflict", "", plan(`conflict = "newest"`), "plans[0].conflict", `(valid: "skip", "update", "overwrite")`},
		{"plan mode", "", plan(`mode = "walk"`), "plans[0].mode", `(valid: "scan", "files")`},
		{"plan verify", "", plan(`verify = "some"`), "plans[0].verify", `(valid: "transferred", "all", "none")`},
		{"plan files without mode", "", plan(`files = ["a.txt"]`), "plans[0].files", `only with mode = "files"`},
		{"plan mode files without files", "", plan(`mode = "files"`), "plans[0].mode", "needs a non-empty files list"},
		{"plan files too long", "", plan("mode = \"files\"\nfiles = [" + strings.Join(long, ", ") + "]"), "plans[0].files", "use changelist"},
		{"plan bad file", "", plan("mode = \"files\"\nfiles = [\"a/../b\"]"), "plans[0].files[0]", `".." component`},
		{"plan file not string", "", plan("mode = \"files\"\nfiles = [\"a\", 3]"), "plans[0].files[1]", "must be a string"},
		{"plan include and exclude", "", plan("include = [\"*.a\"]\nexclude = [\"*.b\"]"), "plans[0].exclude", "cannot be used together"},
		{"plan bad glob", "", plan(`include = ["[a-"]`), "plans[0].include[0]", "not a valid glob"},
		{"plan schedule too often", "", plan(`schedule = { every = "9m59s" }`), "plans[0].schedule.every", "below the minimum"},
		{"plan schedule no every", "", plan(`schedule = { start = 2025-01-01T00:00:00Z }`), "plans[0].schedule.every", "is required"},
		{"plan schedule bad every", "", plan(`schedule = { every = "often" }`), "plans[0].schedule.every", "invalid duration"},
		{"plan schedule start time only", "", plan(`schedule = { start = 02:00:00, every = "1h" }`), "plans[0].schedule.start", "without a date"},
		{"plan schedule start old", "", plan(`schedule = { start = 1900-01-01T00:00:00Z, every = "1h" }`), "plans[0].schedule.start", "between 1970 and 2200"},
		{"plan schedule not table", "", plan(`schedule = "1h"`), "plans[0].schedule", "must be a table"},
		{"plan schedule unknown key", "", plan(`schedule = { every = "1h", at = "02:00" }`), "plans[0].schedule.at", "unknown key"},
		{"plan workers zero", "", plan(`workers = 0`), "plans[0].workers", "1 to 1024"},
		{"plan workers string", "", plan(`workers = "8"`), "plans[0].workers", "must be an integer"},
		{"plan max files", "", plan(`max_files_per_task = 0`), "plans[0].max_files_per_task", "1 or more"},
		{"plan max bytes", "", plan(`max_bytes_per_task = "0"`), "plans[0].max_bytes_per_task", "at least 1 byte"},
		{"plan max bytes bad", "", plan(`max_bytes_per_task = "1GiBs"`), "plans[0].max_bytes_per_task", "invalid size"},
		{"plan max delete", "", plan(`max_delete = "150%"`), "plans[0].max_delete", "0% to 100%"},
		{"plan watch remote source", "", "[[plans]]\nname = \"p\"\nsource = \"s3a:x\"\ndestination = \"/b\"\nwatch = true", "plans[0].watch", "needs a local source"},
		{"plan watch delays", "", plan("watch = true\nwatch_delay = \"1m\"\nwatch_max_delay = \"30s\""), "plans[0].watch_max_delay", "shorter than watch_delay"},
		{"plan watch delay zero", "", plan("watch_delay = \"0\""), "plans[0].watch_delay", "longer than zero"},
		{"plan changelist relative", "", plan(`changelist = "inbox"`), "plans[0].changelist", "absolute"},
		{"plan changelist poll", "", plan(`changelist_poll = "10ms"`), "plans[0].changelist_poll", "1s or more"},
		{"plan unknown alert", "", plan(`alerts = ["ops", "pager"]`), "plans[0].alerts[1]", `unknown alert "pager" (configured: ops)`},
		{"plan delete not bool", "", plan(`delete = "yes"`), "plans[0].delete", "must be true or false"},

		// vaults
		{"vault unknown remote", "", "[vaults.x]\nremote = \"nope\"", "vaults.x.remote", `unknown remote "nope"`},
		{"vault no remote", "", "[vaults.x]\nprefix = \"a\"", "vaults.x.remote", "is required"},
		{"vault kind", "", "[vaults.x]\nremote = \"s3a\"\nprefix = \"other\"\nkind = \"archive\"", "vaults.x.kind", `(valid: "backup", "replication")`},
		{"vault overlap", "", "[vaults.x]\nremote = \"s3a\"\nprefix = \"vaults/main/sub\"", "vaults.x.prefix", `overlaps vault "main"`},

		// backup policies
		{"backup unknown vault", "", "[[backup_policies]]\nname = \"b\"\nsource = \"/home\"\nvault = \"nope\"", "backup_policies[0].vault", `unknown vault "nope" (configured: main, off)`},
		{"backup wrong kind", "", "[[backup_policies]]\nname = \"b\"\nsource = \"/home\"\nvault = \"off\"", "backup_policies[0].vault", `kind "replication"`},
		{"backup keep negative", "", "[[backup_policies]]\nname = \"b\"\nsource = \"/home\"\nvault = \"main\"\nkeep = { daily = -1 }", "backup_policies[0].keep.daily", "negative"},
		{"backup keep unknown", "", "[[backup_policies]]\nname = \"b\"\nsource = \"/home\"\nvault = \"main\"\nkeep = { yearly = 1 }", "backup_policies[0].keep.yearly", "unknown key"},
		{"backup duplicate", "", "[[backup_policies]]\nname = \"b\"\nsource = \"/home\"\nvault = \"main\"\n[[backup_policies]]\nname = \"b\"\nsource = \"/srv\"\nvault = \"main\"", "backup_policies[1].name", "duplicate"},
		{"backup schedule", "", "[[backup_policies]]\nname = \"b\"\nsource = \"/home\"\nvault = \"main\"\nschedule = { every = \"1m\" }", "backup_policies[0].schedule.every", "below the minimum"},

		// replication policies
		{"replication wrong kind", "", "[[replication_policies]]\nname = \"r\"\nsource_vault = \"off\"\ndestination_vault = \"main\"", "replication_policies[0].destination_vault", `kind "backup"`},
		{"replication same vault", "", "[[replication_policies]]\nname = \"r\"\nsource_vault = \"off\"\ndestination_vault = \"off\"", "replication_policies[0].destination_vault", "same vault"},
		{"replication unknown source", "", "[[replication_policies]]\nname = \"r\"\nsource_vault = \"nope\"\ndestination_vault = \"off\"", "replication_policies[0].source_vault", `unknown vault "nope"`},
		{"replication keep negative", "", "[[replication_policies]]\nname = \"r\"\nsource_vault = \"main\"\ndestination_vault = \"off\"\nkeep = { count = -1 }", "replication_policies[0].keep.count", "negative"},
		{"replication keep unknown", "", "[[replication_policies]]\nname = \"r\"\nsource_vault = \"main\"\ndestination_vault = \"off\"\nkeep = { last = 1 }", "replication_policies[0].keep.last", `unknown key (valid keys here: count, days)`},
		{"replication keep not table", "", "[[replication_policies]]\nname = \"r\"\nsource_vault = \"main\"\ndestination_vault = \"off\"\nkeep = 5", "replication_policies[0].keep", "must be a table"},

		// alerts
		{"alert no type", "", "[alerts.x]\nurl = \"https://a.b\"", "alerts.x.type", "is required"},
		{"alert bad type", "", "[alerts.x]\ntype = \"email\"", "alerts.x.type", `(valid: "webhook", "command")`},
		{"webhook no url", "", "[alerts.x]\ntype = \"webhook\"", "alerts.x.url", "is required"},
		{"webhook bad url", "", "[alerts.x]\ntype = \"webhook\"\nurl = \"ftp://a.b/c\"", "alerts.x.url", "http or https"},
		{"webhook with command", "", "[alerts.x]\ntype = \"webhook\"\nurl = \"https://a.b\"\ncommand = [\"x\"]", "alerts.x.command", "only to alerts of type \"command\""},
		{"command empty", "", "[alerts.x]\ntype = \"command\"\ncommand = []", "alerts.x.command", "is required"},
		{"command with url", "", "[alerts.x]\ntype = \"command\"\ncommand = [\"/bin/true\"]\nurl = \"https://a.b\"", "alerts.x.url", "only to alerts of type \"webhook\""},

		// mounts
		{"mount neither", "", "[[mounts]]\npath = \"/mnt/x\"", "mounts[0]", "set one of vault or remote"},
		{"mount both", "", "[[mounts]]\nvault = \"main\"\nremote = \"s3a\"\npath = \"/mnt/x\"", "mounts[0].remote", "only one"},
		{"mount relative path", "", "[[mounts]]\nvault = \"main\"\npath = \"mnt/x\"", "mounts[0].path", "absolute"},
		{"mount no path", "", "[[mounts]]\nvault = \"main\"", "mounts[0].path", "is required"},
		{"mount unknown vault", "", "[[mounts]]\nvault = \"nope\"\npath = \"/mnt/x\"", "mounts[0].vault", `unknown vault "nope"`},
		{"mount unknown remote", "", "[[mounts]]\nremote = \"nope\"\npath = \"/mnt/x\"", "mounts[0].remote", `unknown remote "nope"`},
		{"mount duplicate path", "", "[[mounts]]\nvault = \"main\"\npath = \"/mnt/x\"\n[[mounts]]\nremote = \"s3a\"\npath = \"/mnt/x/\"", "mounts[1].path", "already used by mounts[0]"},
		{"mount unknown key", "", "[[mounts]]\nvault = \"main\"\npath = \"/mnt/x\"\nreadonly = true", "mounts[0].readonly", `did you mean "read_only"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.top + "\n" + base + "\n" + tt.body + "\n"
			_, ps := problemsOf(t, text)
			p, ok := findProblem(ps, tt.key)
			if !ok {
				t.Fatalf("no problem for key %s; got %v", tt.key, ps)
			}
			if !strings.Contains(p.Message, tt.msg) {
				t.Errorf("problem %q does not contain %q", p.String(), tt.msg)
			}
			if len(ps) != 1 {
				t.Errorf("want exactly one problem, got %d: %v", len(ps), ps)
			}
			if p.Line < 1 {
				t.Errorf("problem %q has no line", p.String())
			}
			if p.File != "test.toml" {
				t.Errorf("problem file = %q", p.File)
			}
		})
	}
	// The base itself is valid.
	if _, ps := problemsOf(t, base); ps != nil {
		t.Fatalf("base config has problems: %v", ps)
	}
}

// Lines point at the key itself, wherever TOML lets it be written.
func TestProblemLines(t *testing.T) {
	const text = `# comment with "quotes" and [brackets]
description = """
[[plans]]
name = "not a table"
"""

[[plans]]
name = "a"
source = "/srv/a"
destination = "/srv/b"
schedule.every = "1m"

[[plans]]
name = "b"
source = "/srv/c"
destination = "/srv/d"
exclude = [
  "*.tmp",
  '[bad',
]

[plans.schedule]
every = "1h"
strat = 2025-01-01T00:00:00Z

[remotes."odd name"]
type = "local"
path = "/x"

[[mounts]]
vault = "v"
path = "/mnt"
`
	_, ps := problemsOf(t, text)
	want := map[string]int{
		"description":             2,
		"plans[0].schedule.every": 11,
		"plans[1].exclude[1]":     19,
		"plans[1].schedule.strat": 24,
		`remotes."odd name"`:      26,
		"mounts[0].vault":         31,
	}
	for key, line := range want {
		p, ok := findProblem(ps, key)
		if !ok {
			t.Errorf("no problem for %s; got %v", key, ps)
			continue
		}
		if p.Line != line {
			t.Errorf("%s: line %d, want %d", key, p.Line, line)
		}
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d: %v", len(ps), len(want), ps)
	}
	// Problems come in the order of their lines.
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems out of order: %v", ps)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse([]byte("state_dir = \"/a\"\n[[plans]]\nname = \n"), "bad.toml")
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 {
		t.Fatalf("err = %#v", err)
	}
	p := ve.Problems[0]
	if p.File != "bad.toml" || p.Line != 3 || !strings.Contains(p.Message, "TOML syntax error") {
		t.Errorf("problem = %+v", p)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, ErrConfig) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	_, err = Load(t.TempDir())
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
}

func TestSecretKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ferry.toml")
	secret := filepath.Join(dir, "secrets", "key")
	if err := os.Mkdir(filepath.Dir(secret), 0o700); err != nil {
		t.Fatal(err)
	}
	load := func(file string) (*Config, []Problem) {
		t.Helper()
		writeFile(t, cfgPath, "[credentials.c]\naccess_key = \"AK\"\nsecret_key_file = \""+file+"\"\n", 0o644)
		cfg, err := Load(cfgPath)
		if err == nil {
			return cfg, nil
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Load: %v", err)
		}
		return nil, ve.Problems
	}

	writeFile(t, secret, "  s3cr3t-value\n", 0o600)
	cfg, ps := load(secret)
	if ps != nil {
		t.Fatalf("0600 secret file refused: %v", ps)
	}
	if got := cfg.Credentials["c"].SecretKey.Reveal(); got != "s3cr3t-value" {
		t.Errorf("secret = %q", got)
	}
	// Relative to the configuration file's directory.
	if cfg, ps = load("secrets/key"); ps != nil || cfg.Credentials["c"].SecretKey.Reveal() != "s3cr3t-value" {
		t.Errorf("relative secret_key_file: %v", ps)
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644, 0o610} {
		writeFile(t, secret, "s3cr3t-value\n", mode)
		_, ps = load(secret)
		p, ok := findProblem(ps, "credentials.c.secret_key_file")
		if !ok || !strings.Contains(p.Message, "chmod 600 "+secret) || p.Line != 3 {
			t.Errorf("mode %04o: %v", mode, ps)
		}
		if strings.Contains(p.String(), "s3cr3t") {
			t.Errorf("problem shows the secret: %s", p)
		}
	}

	writeFile(t, secret, "\n", 0o600)
	if _, ps = load(secret); len(ps) != 1 || !strings.Contains(ps[0].Message, "is empty") {
		t.Errorf("empty secret file: %v", ps)
	}
}

func TestInlineSecretNeedsPrivateConfig(t *testing.T) {
	const text = "[credentials.c]\naccess_key = \"AK\"\nsecret_key = \"inline-secret\"\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "ferry.toml")

	writeFile(t, path, text, 0o644)
	_, err := Load(path)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Key != "credentials.c.secret_key" ||
		!strings.Contains(ve.Problems[0].Message, "readable by others") || ve.Problems[0].Line != 3 {
		t.Fatalf("world-readable config with inline secret: %v", err)
	}
	if strings.Contains(err.Error(), "inline-secret") {
		t.Errorf("error shows the secret: %v", err)
	}

	for _, mode := range []os.FileMode{0o600, 0o640} {
		writeFile(t, path, text, mode)
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
		if cfg.Credentials["c"].SecretKey.Reveal() != "inline-secret" || cfg.File != path {
			t.Errorf("mode %04o: %+v", mode, cfg.Credentials["c"])
		}
	}

	// Parse has no file mode to check.
	if _, err := Parse([]byte(text), "inline"); err != nil {
		t.Errorf("Parse: %v", err)
	}
}

func TestAlertsNilMeansAll(t *testing.T) {
	cfg, ps := problemsOf(t, base+`
[alerts.pager]
type = "command"
command = ["/usr/bin/true"]

[[plans]]
name = "all"
source = "/a"
destination = "/b"

[[plans]]
name = "none"
source = "/a"
destination = "/c"
alerts = []

[[plans]]
name = "one"
source = "/a"
destination = "/d"
alerts = ["pager"]
`)
	if ps != nil {
		t.Fatal(ps)
	}
	got := func(name string) string {
		p, _ := cfg.LookupPlan(name)
		return strings.Join(p.AlertNames(cfg), ",")
	}
	if got("all") != "ops,pager" || got("none") != "" || got("one") != "pager" {
		t.Errorf("alert names: all=%q none=%q one=%q", got("all"), got("none"), got("one"))
	}
	if p, _ := cfg.LookupPlan("none"); p.Alerts == nil {
		t.Errorf("alerts = [] decoded as nil")
	}
}

func TestScheduleNext(t *testing.T) {
	start := time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC)
	s := &Schedule{Start: start, Every: Duration{time.Hour}}
	tests := []struct {
		after, want time.Time
	}{
		{start.Add(-time.Minute), start},
		{start, start.Add(time.Hour)},
		{start.Add(90 * time.Minute), start.Add(2 * time.Hour)},
		{start.Add(2 * time.Hour), start.Add(3 * time.Hour)},
	}
	for _, tt := range tests {
		if got := s.Next(tt.after); !got.Equal(tt.want) {
			t.Errorf("Next(%v) = %v, want %v", tt.after, got, tt.want)
		}
	}
}

func TestScheduleStartLocal(t *testing.T) {
	cfg, ps := problemsOf(t, `
[[plans]]
name = "a"
source = "/a"
destination = "/b"
schedule = { start = 2025-03-01T02:30:00, every = "24h" }

[[plans]]
name = "b"
source = "/a"
destination = "/c"
schedule = { start = 2025-03-01, every = "1w" }

[[plans]]
name = "c"
source = "/a"
destination = "/d"
schedule = { start = "2025-03-01T02:30:00Z", every = "1h" }
`)
	if ps != nil {
		t.Fatal(ps)
	}
	if got, want := cfg.Plans[0].Schedule.Start, time.Date(2025, 3, 1, 2, 30, 0, 0, time.Local); !got.Equal(want) || got.Location() != time.Local {
		t.Errorf("local date-time = %v, want %v", got, want)
	}
	if got, want := cfg.Plans[1].Schedule.Start, time.Date(2025, 3, 1, 0, 0, 0, 0, time.Local); !got.Equal(want) {
		t.Errorf("local date = %v, want %v", got, want)
	}
	if got, want := cfg.Plans[2].Schedule.Start, time.Date(2025, 3, 1, 2, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("string date-time = %v, want %v", got, want)
	}
}

func TestRemoteAccount(t *testing.T) {
	cfg, ps := problemsOf(t, `
[remotes.aws]
type = "s3"
endpoint = "s3.amazonaws.com"
bucket = "bkt"
credential = "main"

[remotes.anon]
type = "s3"
endpoint = "s3.amazonaws.com"
bucket = "public"

[remotes.disk]
type = "local"
path = "/srv"

[credentials.main]
access_key = "AK"
secret_key = "SK"
account = "aws-1234"
`)
	if ps != nil {
		t.Fatal(ps)
	}
	for name, want := range map[string]string{"aws": "aws-1234", "anon": "anon", "disk": "disk", "nope": ""} {
		if got := cfg.RemoteAccount(name); got != want {
			t.Errorf("RemoteAccount(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestExamplesLoad(t *testing.T) {
	t.Run("quickstart", func(t *testing.T) {
		cfg, err := Load("../examples/quickstart.toml")
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Remotes) != 0 || len(cfg.Plans) != 2 {
			t.Errorf("quickstart: %d remotes, %d plans", len(cfg.Remotes), len(cfg.Plans))
		}
		var watched, scheduled bool
		for _, p := range cfg.Plans {
			if !p.SourceLocation().IsLocal() || !p.DestinationLocation().IsLocal() {
				t.Errorf("plan %s is not local-only", p.Name)
			}
			watched = watched || p.Watch
			scheduled = scheduled || p.Schedule != nil && p.Schedule.Every.Duration == 15*time.Minute
		}
		for _, dir := range []string{cfg.StateDir, cfg.Socket} {
			if !strings.HasPrefix(dir, "/tmp/ferry-quickstart/") {
				t.Errorf("%s is outside /tmp/ferry-quickstart", dir)
			}
		}
		if !watched || !scheduled {
			t.Errorf("quickstart needs a watched plan and a 15m scheduled plan")
		}
	})
	t.Run("full", func(t *testing.T) {
		data, err := os.ReadFile("../examples/full.toml")
		if err != nil {
			t.Fatal(err)
		}
		// Point the secret files at a temporary directory.
		dir := t.TempDir()
		text := strings.ReplaceAll(string(data), "/etc/ferry/secrets/", dir+"/")
		writeFile(t, filepath.Join(dir, "aws-main.key"), "aws-secret\n", 0o600)
		writeFile(t, filepath.Join(dir, "wasabi.key"), "wasabi-secret\n", 0o600)
		path := filepath.Join(dir, "full.toml")
		writeFile(t, path, text, 0o640)
		cfg, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Remotes) == 0 || len(cfg.Credentials) == 0 || len(cfg.Plans) == 0 || len(cfg.Vaults) == 0 ||
			len(cfg.BackupPolicies) == 0 || len(cfg.ReplicationPolicies) == 0 || len(cfg.Alerts) == 0 || len(cfg.Mounts) == 0 {
			t.Errorf("full.toml lacks a section: %+v", cfg)
		}
		if cfg.Credentials["aws-main"].SecretKey.Reveal() != "aws-secret" {
			t.Errorf("secret not read")
		}
		// Every key of the schema appears in the full example (set, or
		// shown in a comment when it cannot be set alongside another).
		for _, k := range allKeys() {
			leaf := k.key[strings.LastIndex(k.key, ".")+1:]
			if !strings.Contains(text, leaf+" ") && !strings.Contains(text, leaf+"=") {
				t.Errorf("full.toml does not show %s key %q", k.section, k.key)
			}
		}
	})
}

// A symlink to the source's parent is the source's parent: a plan with
// deletes from the source into it is refused; without deletes it is not
// (the copies cannot reach the source, and nothing is deleted).
func TestOverlapThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real", "x", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real", "x"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	plan := fmt.Sprintf("[[plans]]\nname = \"p\"\nsource = %q\ndestination = %q\n", filepath.Join(dir, "real", "x", "sub"), filepath.Join(dir, "link"))
	_, ps := problemsOf(t, plan+"delete = true\n")
	p, ok := findProblem(ps, "plans[0].destination")
	if !ok || !strings.Contains(p.Message, "would delete the source itself") || p.Line < 1 {
		t.Errorf("deletes into a symlink to the source's parent: problems %v; want one at plans[0].destination with its line", ps)
	}
	if _, ps := problemsOf(t, plan); ps != nil {
		t.Errorf("without deletes the same plan is valid; got %v", ps)
	}
	// The other way round is refused with or without deletes.
	back := fmt.Sprintf("[[plans]]\nname = \"p\"\nsource = %q\ndestination = %q\n", filepath.Join(dir, "link"), filepath.Join(dir, "real", "x", "sub"))
	if _, ps := problemsOf(t, back); !hasProblem(ps, "plans[0].destination", "inside it") {
		t.Errorf("destination inside the source through a symlink: problems %v", ps)
	}
}

func hasProblem(ps []Problem, key, msg string) bool {
	p, ok := findProblem(ps, key)
	return ok && strings.Contains(p.Message, msg)
}
