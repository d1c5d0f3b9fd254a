package config

import (
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ferrysync/ferry/remote"
)

// validator completes a decoded Config (defaults that depend on other keys,
// secrets read from files, normalized prefixes) and checks it, adding each
// problem to the decoder's list.
type validator struct {
	*decoder
	cfg     *Config
	mode    *fs.FileMode // of the configuration file, when known
	baseDir string       // for relative secret_key_file paths
	now     time.Time
}

// add records a problem unless the same key already has one (a value that
// failed to decode is not also reported as missing or invalid).
func (v *validator) add(p keyPath, format string, args ...any) {
	k := p.String()
	for _, q := range v.problems {
		if q.path.String() == k {
			return
		}
	}
	v.addf(p, format, args...)
}

func (v *validator) isSet(p keyPath) bool { return v.defined[p.String()] }

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, s := range vals {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// enum checks that val is one of valid.
func (v *validator) enum(p keyPath, val string, valid ...string) {
	if !slices.Contains(valid, val) {
		v.add(p, "%q is not valid (valid: %s)", val, quoteList(valid))
	}
}

// ref checks that name is a key of m, the section called what.
func ref[T any](v *validator, p keyPath, name, what string, m map[string]T) bool {
	if _, ok := m[name]; ok {
		return true
	}
	names := sortedKeys(m)
	if len(names) == 0 {
		v.add(p, "unknown %s %q: no %ss are configured (add a [%ss.%s] table)", what, name, what, what, name)
	} else {
		v.add(p, "unknown %s %q (configured: %s)", what, name, strings.Join(names, ", "))
	}
	return false
}

func (v *validator) name(p keyPath, name string) {
	if !validName(name) {
		v.add(p, "invalid name %q (%s)", name, nameRule)
	}
}

func (v *validator) localPath(p keyPath, path string) {
	if msg := localPathProblem(path); msg != "" {
		v.add(p, "%s", msg)
	}
}

// finish applies the defaults that depend on other keys and reads secrets.
func (v *validator) finish() {
	c := v.cfg
	for _, name := range sortedKeys(c.Credentials) {
		cr := c.Credentials[name]
		if cr.Account == "" && !v.isSet(keyPath{}.key("credentials").key(name).key("account")) {
			cr.Account = name
		}
	}
	for _, r := range c.Remotes {
		if r.Type == RemoteS3 {
			r.Prefix = normalizePrefix(r.Prefix)
		}
	}
	for _, vt := range c.Vaults {
		vt.Prefix = normalizePrefix(vt.Prefix)
	}
	for i, p := range c.Plans {
		v.scheduleStart(keyPath{}.key("plans").idx(i), p.Schedule)
	}
	for i, b := range c.BackupPolicies {
		v.scheduleStart(keyPath{}.key("backup_policies").idx(i), b.Schedule)
	}
	for i, r := range c.ReplicationPolicies {
		v.scheduleStart(keyPath{}.key("replication_policies").idx(i), r.Schedule)
	}
}

func (v *validator) scheduleStart(p keyPath, s *Schedule) {
	if s != nil && !v.isSet(p.key("schedule").key("start")) {
		s.Start = v.now
	}
}

func (v *validator) validate() {
	c := v.cfg
	root := keyPath{}
	v.localPath(root.key("state_dir"), c.StateDir)
	v.localPath(root.key("socket"), c.Socket)
	v.enum(root.key("log_level"), c.LogLevel, "debug", "info", "warn", "error")
	if c.MetricsListen != "" {
		v.listenAddr(root.key("metrics_listen"), c.MetricsListen)
	}
	if c.JobRetention.Duration <= 0 {
		v.add(root.key("job_retention"), "must be longer than zero, e.g. \"180d\"")
	}

	for _, name := range sortedKeys(c.Remotes) {
		v.remote(root.key("remotes").key(name), c.Remotes[name])
	}
	for _, name := range sortedKeys(c.Credentials) {
		v.credential(root.key("credentials").key(name), c.Credentials[name])
	}
	names := map[string]int{}
	for i, p := range c.Plans {
		v.plan(root.key("plans").idx(i), p, names)
	}
	v.vaults(root.key("vaults"))
	names = map[string]int{}
	for i, b := range c.BackupPolicies {
		v.backupPolicy(root.key("backup_policies").idx(i), b, names)
	}
	names = map[string]int{}
	for i, r := range c.ReplicationPolicies {
		v.replicationPolicy(root.key("replication_policies").idx(i), r, names)
	}
	for _, name := range sortedKeys(c.Alerts) {
		v.alert(root.key("alerts").key(name), c.Alerts[name])
	}
	paths := map[string]int{}
	for i, m := range c.Mounts {
		v.mount(root.key("mounts").idx(i), m, paths)
	}
}

func (v *validator) listenAddr(p keyPath, addr string) {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, "/ ") {
		v.add(p, "%q is not a listen address (valid: HOST:PORT like \"127.0.0.1:9810\" or \":9810\")", addr)
	}
}

var s3OnlyKeys = []string{"endpoint", "bucket", "prefix", "region", "tls", "credential", "part_size"}

func (v *validator) remote(p keyPath, r *Remote) {
	v.name(p, r.Name)
	switch r.Type {
	case RemoteLocal:
		if r.Path == "" {
			v.add(p.key("path"), "is required for a remote of type \"local\" (an absolute directory, e.g. path = \"/srv/ferry\")")
		} else {
			v.localPath(p.key("path"), r.Path)
		}
		for _, k := range s3OnlyKeys {
			if v.isSet(p.key(k)) {
				v.add(p.key(k), "applies only to remotes of type \"s3\"; this remote has type \"local\"")
			}
		}
	case RemoteS3:
		if v.isSet(p.key("path")) {
			v.add(p.key("path"), "applies only to remotes of type \"local\"; for s3 use bucket and prefix")
		}
		v.endpoint(p.key("endpoint"), r.Endpoint)
		switch {
		case r.Bucket == "":
			v.add(p.key("bucket"), "is required for a remote of type \"s3\" (the bucket name, e.g. bucket = \"backups\")")
		case !validBucket(r.Bucket):
			v.add(p.key("bucket"), "%q is not a valid bucket name (valid: 3 to 63 letters, digits, \".\", \"-\" or \"_\", starting and ending with a letter or digit)", r.Bucket)
		}
		if msg := prefixProblem(r.Prefix); msg != "" {
			v.add(p.key("prefix"), "%s", msg)
		}
		if r.Credential != "" {
			ref(v, p.key("credential"), r.Credential, "credential", v.cfg.Credentials)
		}
		if r.PartSize < 5*MiB || r.PartSize > 5*GiB {
			v.add(p.key("part_size"), "%s is out of range (valid: 5MiB to 5GiB, the limits S3 sets on a part)", r.PartSize)
		}
	case "":
		v.add(p.key("type"), "is required (valid: \"local\", \"s3\")")
	default:
		v.enum(p.key("type"), r.Type, RemoteLocal, RemoteS3)
	}
}

func (v *validator) endpoint(p keyPath, ep string) {
	if ep == "" {
		v.add(p, "is required for a remote of type \"s3\" (HOST or HOST:PORT, e.g. endpoint = \"s3.eu-central-1.amazonaws.com\")")
		return
	}
	if strings.Contains(ep, "://") {
		v.add(p, "%q has a scheme; write only HOST[:PORT] (use tls = false for plain http)", ep)
		return
	}
	host := ep
	if h, port, err := net.SplitHostPort(ep); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.add(p, "%q has an invalid port (valid: HOST[:PORT] with a port from 1 to 65535)", ep)
			return
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, "/ \\?#@") {
		v.add(p, "%q is not a host name (valid: HOST[:PORT], e.g. \"s3.example.com\" or \"127.0.0.1:9000\")", ep)
	}
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if !alnum(b[0]) || !alnum(b[len(b)-1]) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c := b[i]; !alnum(c) && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func (v *validator) credential(p keyPath, cr *Credential) {
	v.name(p, cr.Name)
	if cr.AccessKey == "" {
		v.add(p.key("access_key"), "is required (the access key ID)")
	}
	inline, file := v.isSet(p.key("secret_key")), cr.SecretKeyFile != ""
	switch {
	case inline && file:
		v.add(p.key("secret_key"), "set both secret_key and secret_key_file; keep one (secret_key_file is safer)")
	case !inline && !file:
		v.add(p.key("secret_key_file"), "is required: a file holding the secret key, mode 600 (or an inline secret_key)")
	case inline:
		if cr.SecretKey == "" {
			v.add(p.key("secret_key"), "is empty")
		}
		if v.mode != nil && *v.mode&0o004 != 0 {
			v.add(p.key("secret_key"), "an inline secret is refused because %s is readable by others (mode %04o); run chmod o-r %s or move the secret to a secret_key_file", v.cfg.File, uint32(*v.mode), v.cfg.File)
		}
	case file:
		v.readSecret(p.key("secret_key_file"), cr)
	}
	if cr.Account == "" {
		v.add(p.key("account"), "is empty (leave it out to use the credential's name)")
	}
}

const maxSecretSize = 64 << 10

// readSecret loads a secret_key_file into SecretKey after checking, as ssh
// does for private keys, that neither group nor others have any access.
func (v *validator) readSecret(p keyPath, cr *Credential) {
	path := cr.SecretKeyFile
	if !filepath.IsAbs(path) && v.baseDir != "" {
		path = filepath.Join(v.baseDir, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		v.add(p, "cannot read %s: %v", path, unwrapPathError(err))
		return
	}
	if !st.Mode().IsRegular() {
		v.add(p, "%s is not a regular file", path)
		return
	}
	if st.Size() > maxSecretSize {
		v.add(p, "%s is %d bytes long; a secret key file holds only the key (at most %d bytes)", path, st.Size(), maxSecretSize)
		return
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		v.add(p, "%s is accessible by group or others (mode %04o); Ferry refuses it as ssh does: run chmod 600 %s", path, uint32(perm), path)
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		v.add(p, "cannot read %s: %v", path, unwrapPathError(err))
		return
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		v.add(p, "%s is empty", path)
		return
	}
	cr.SecretKey = Secret(secret)
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// location checks a source or destination and returns it, or ok=false.
func (v *validator) location(p keyPath, s string) (Location, bool) {
	if s == "" {
		v.add(p, "is required (an absolute local path like \"/srv/data\", or REMOTE:prefix like \"s3a:photos\")")
		return Location{}, false
	}
	loc, err := ParseLocation(s)
	if err != nil {
		v.add(p, "%v", err)
		return Location{}, false
	}
	if loc.IsLocal() {
		if !strings.HasPrefix(loc.Path, "/") {
			v.add(p, "%q is not an absolute path, nor REMOTE:prefix with a configured remote (valid: a path like \"/srv/data\" or a location like \"s3a:photos\")", s)
			return loc, false
		}
		if msg := localPathProblem(loc.Path); msg != "" {
			v.add(p, "local path %s", msg)
			return loc, false
		}
		return loc, true
	}
	if _, ok := v.cfg.Remotes[loc.Remote]; !ok {
		names := sortedKeys(v.cfg.Remotes)
		if len(names) == 0 {
			v.add(p, "unknown remote %q in %q: no remotes are configured (add [remotes.%s], or write a local path as an absolute path)", loc.Remote, s, loc.Remote)
		} else {
			v.add(p, "unknown remote %q in %q (configured: %s; a local path must be absolute)", loc.Remote, s, strings.Join(names, ", "))
		}
		return loc, false
	}
	if msg := prefixProblem(loc.Path); msg != "" {
		v.add(p, "%s", msg)
		return loc, false
	}
	return loc, true
}

// unique checks an entry's name (p is its "name" key) against the names of
// the entries before it in the same array.
func (v *validator) unique(p keyPath, name, what string, seen map[string]int) {
	idx := p[len(p)-2].index
	if name == "" {
		v.add(p, "is required (a name of letters, digits, \"-\" or \"_\")")
		return
	}
	v.name(p, name)
	if first, dup := seen[name]; dup {
		v.add(p, "duplicate %s name %q (also used by %s); names must be unique", what, name, p[:len(p)-2].idx(first))
		return
	}
	seen[name] = idx
}

func (v *validator) plan(p keyPath, pl *Plan, names map[string]int) {
	v.unique(p.key("name"), pl.Name, "plan", names)

	src, srcOK := v.location(p.key("source"), pl.Source)
	dst, dstOK := v.location(p.key("destination"), pl.Destination)
	if srcOK && dstOK {
		if err := v.cfg.CheckOverlap(src, dst, pl.Delete); err != nil {
			v.add(p.key("destination"), "%q and the source %q: %v", pl.Destination, pl.Source, err)
		}
	}

	v.enum(p.key("conflict"), pl.Conflict, ConflictSkip, ConflictUpdate, ConflictOverwrite)
	v.enum(p.key("mode"), pl.Mode, ModeScan, ModeFiles)
	v.enum(p.key("verify"), pl.Verify, VerifyTransferred, VerifyAll, VerifyNone)

	switch {
	case pl.Mode == ModeFiles && len(pl.Files) == 0:
		v.add(p.key("mode"), "mode = \"files\" needs a non-empty files list (files = [\"dir/a.txt\", ...])")
	case pl.Mode == ModeScan && v.isSet(p.key("files")):
		v.add(p.key("files"), "is used only with mode = \"files\"; set mode = \"files\" or remove files")
	}
	total := 0
	for i, f := range pl.Files {
		if _, err := remote.UserPathToKey(f); err != nil {
			v.add(p.key("files").idx(i), "%q is not a valid path relative to the source: %s", f, keyReason(err))
		}
		total += len(f)
		if i > 0 {
			total++
		}
	}
	if total > MaxFilesChars {
		v.add(p.key("files"), "the list is %d characters long (limit %d); use changelist instead: list the paths in a ChangeList file dropped into an inbox directory (changelist = \"/path/to/inbox\")", total, MaxFilesChars)
	}

	if len(pl.Include) > 0 && len(pl.Exclude) > 0 {
		v.add(p.key("exclude"), "include and exclude cannot be used together; keep one of them")
	}
	v.patterns(p.key("include"), pl.Include)
	v.patterns(p.key("exclude"), pl.Exclude)

	if pl.Changelist != "" {
		switch side, path := pl.ChangelistInbox(); side {
		case "":
			v.localPath(p.key("changelist"), path)
		default:
			if msg := prefixProblem(path); msg != "" || strings.Trim(path, "/") == "" {
				if msg == "" {
					msg = "names no directory"
				}
				v.add(p.key("changelist"), "%q: %s (valid: a local directory, or source:/DIR or destination:/DIR on the plan's own data sources)", pl.Changelist, msg)
			}
		}
	}
	if pl.ChangelistPoll.Duration < time.Second {
		v.add(p.key("changelist_poll"), "%s is too short (valid: 1s or more)", pl.ChangelistPoll)
	}

	if pl.Watch && srcOK && !src.IsLocal() {
		v.add(p.key("watch"), "watch = true needs a local source; %q is on remote %q (use a schedule or a changelist)", pl.Source, src.Remote)
	}
	if pl.RecheckDestination.Duration < 0 {
		v.add(p.key("recheck_destination"), "%s is negative (valid: 0s to list the destination on every scan, or a duration such as \"24h\")", pl.RecheckDestination)
	}
	if pl.WatchDelay.Duration <= 0 {
		v.add(p.key("watch_delay"), "must be longer than zero, e.g. \"10s\"")
	}
	if pl.WatchMaxDelay.Duration < pl.WatchDelay.Duration {
		v.add(p.key("watch_max_delay"), "%s is shorter than watch_delay %s (valid: at least watch_delay)", pl.WatchMaxDelay, pl.WatchDelay)
	}

	v.schedule(p.key("schedule"), pl.Schedule)

	if pl.Workers < 1 || pl.Workers > 1024 {
		v.add(p.key("workers"), "%d is out of range (valid: 1 to 1024)", pl.Workers)
	}
	if pl.MaxFilesPerTask < 1 {
		v.add(p.key("max_files_per_task"), "%d is out of range (valid: 1 or more)", pl.MaxFilesPerTask)
	}
	if pl.MaxBytesPerTask < 1 {
		v.add(p.key("max_bytes_per_task"), "must be at least 1 byte, e.g. \"1GiB\"")
	}
	for i, a := range pl.Alerts {
		ref(v, p.key("alerts").idx(i), a, "alert", v.cfg.Alerts)
	}
}

func keyReason(err error) string {
	if ke, ok := err.(*remote.KeyError); ok {
		return ke.Reason
	}
	return err.Error()
}

func (v *validator) patterns(p keyPath, pats []string) {
	for i, pat := range pats {
		if pat == "" || !doublestar.ValidatePattern(pat) {
			v.add(p.idx(i), "%q is not a valid glob pattern (valid: *, ?, [a-z], {a,b} and ** for any number of directories)", pat)
		}
	}
}

func (v *validator) schedule(p keyPath, s *Schedule) {
	if s == nil {
		return
	}
	switch {
	case !v.isSet(p.key("every")):
		v.add(p.key("every"), "is required in a schedule, e.g. every = \"1h\" (leave out the schedule for Run Now only)")
	case s.Every.Duration < MinScheduleEvery:
		v.add(p.key("every"), "%q is below the minimum of %q; for quicker reaction use watch = true or a changelist", s.Every.String(), Duration{MinScheduleEvery}.String())
	}
	if y := s.Start.Year(); y < 1970 || y > 2200 {
		v.add(p.key("start"), "year %d is out of range (valid: a date-time between 1970 and 2200)", y)
	}
}

func (v *validator) vaults(p keyPath) {
	c := v.cfg
	names := sortedKeys(c.Vaults)
	for i, name := range names {
		vt := c.Vaults[name]
		vp := p.key(name)
		v.name(vp, name)
		v.enum(vp.key("kind"), vt.Kind, VaultBackup, VaultReplication)
		if msg := prefixProblem(vt.Prefix); msg != "" {
			v.add(vp.key("prefix"), "%s", msg)
		}
		if vt.Remote == "" {
			v.add(vp.key("remote"), "is required (the name of a configured remote)")
			continue
		}
		if !ref(v, vp.key("remote"), vt.Remote, "remote", c.Remotes) {
			continue
		}
		for _, other := range names[:i] {
			o := c.Vaults[other]
			if o.Remote == vt.Remote && (within(vt.Prefix, o.Prefix) || within(o.Prefix, vt.Prefix)) {
				v.add(vp.key("prefix"), "vault overlaps vault %q on remote %q (prefixes %q and %q); give each vault its own prefix", other, vt.Remote, vt.Prefix, o.Prefix)
			}
		}
	}
}

func (v *validator) backupPolicy(p keyPath, b *BackupPolicy, names map[string]int) {
	v.unique(p.key("name"), b.Name, "backup policy", names)
	v.location(p.key("source"), b.Source)
	switch {
	case b.Vault == "":
		v.add(p.key("vault"), "is required (the name of a configured vault of kind \"backup\")")
	case ref(v, p.key("vault"), b.Vault, "vault", v.cfg.Vaults):
		if k := v.cfg.Vaults[b.Vault].Kind; k != VaultBackup {
			v.add(p.key("vault"), "vault %q has kind %q; backups go to a vault of kind \"backup\"", b.Vault, k)
		}
	}
	v.schedule(p.key("schedule"), b.Schedule)
	for k, n := range map[string]int{"last": b.Keep.Last, "daily": b.Keep.Daily, "weekly": b.Keep.Weekly, "monthly": b.Keep.Monthly} {
		if n < 0 {
			v.add(p.key("keep").key(k), "%d is negative (valid: 0 or more)", n)
		}
	}
}

func (v *validator) replicationPolicy(p keyPath, r *ReplicationPolicy, names map[string]int) {
	v.unique(p.key("name"), r.Name, "replication policy", names)
	srcOK := false
	if r.SourceVault == "" {
		v.add(p.key("source_vault"), "is required (the name of a configured vault)")
	} else {
		srcOK = ref(v, p.key("source_vault"), r.SourceVault, "vault", v.cfg.Vaults)
	}
	switch {
	case r.DestinationVault == "":
		v.add(p.key("destination_vault"), "is required (the name of a configured vault of kind \"replication\")")
	case ref(v, p.key("destination_vault"), r.DestinationVault, "vault", v.cfg.Vaults):
		if k := v.cfg.Vaults[r.DestinationVault].Kind; k != VaultReplication {
			v.add(p.key("destination_vault"), "vault %q has kind %q; replicas go to a vault of kind \"replication\"", r.DestinationVault, k)
		} else if srcOK && r.SourceVault == r.DestinationVault {
			v.add(p.key("destination_vault"), "is the same vault as source_vault; choose another vault")
		}
	}
	v.schedule(p.key("schedule"), r.Schedule)
	if r.KeepCount < 0 {
		v.add(p.keys("keep.count"), "%d is negative (valid: 0 for no limit, or more)", r.KeepCount)
	}
	if r.KeepDays < 0 {
		v.add(p.keys("keep.days"), "%d is negative (valid: 0 for no limit, or more)", r.KeepDays)
	}
}

func (v *validator) alert(p keyPath, a *Alert) {
	v.name(p, a.Name)
	switch a.Type {
	case AlertWebhook:
		if v.isSet(p.key("command")) {
			v.add(p.key("command"), "applies only to alerts of type \"command\"")
		}
		if a.URL == "" {
			v.add(p.key("url"), "is required for a webhook (an http or https URL)")
			break
		}
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(p.key("url"), "is not an http or https URL (valid: e.g. \"https://hooks.example.com/ferry\")")
		}
	case AlertCommand:
		if v.isSet(p.key("url")) {
			v.add(p.key("url"), "applies only to alerts of type \"webhook\"")
		}
		if len(a.Command) == 0 || a.Command[0] == "" {
			v.add(p.key("command"), "is required: the program and its arguments, e.g. command = [\"/usr/local/bin/notify\", \"--urgent\"]")
		}
	case "":
		v.add(p.key("type"), "is required (valid: \"webhook\", \"command\")")
	default:
		v.enum(p.key("type"), a.Type, AlertWebhook, AlertCommand)
	}
}

func (v *validator) mount(p keyPath, m *Mount, paths map[string]int) {
	switch {
	case m.Vault == "" && m.Remote == "":
		v.add(p, "set one of vault or remote: the vault or remote to show at path")
	case m.Vault != "" && m.Remote != "":
		v.add(p.key("remote"), "set only one of vault and remote")
	case m.Vault != "":
		ref(v, p.key("vault"), m.Vault, "vault", v.cfg.Vaults)
	default:
		ref(v, p.key("remote"), m.Remote, "remote", v.cfg.Remotes)
	}
	if m.Path == "" {
		v.add(p.key("path"), "is required (the absolute directory to mount on, e.g. \"/mnt/ferry\")")
		return
	}
	if msg := localPathProblem(m.Path); msg != "" {
		v.add(p.key("path"), "%s", msg)
		return
	}
	clean := cleanLocal(m.Path)
	if first, dup := paths[clean]; dup {
		v.add(p.key("path"), "%q is already used by mounts[%d]", m.Path, first)
		return
	}
	paths[clean] = p[len(p)-1].index
}
