package config

import (
	"strings"
	"time"
)

// Config is a whole, validated configuration file. The toml tags are the
// keys users write; docs/config.md documents each of them.
type Config struct {
	StateDir      string   `toml:"state_dir" json:"state_dir"`
	Socket        string   `toml:"socket" json:"socket"`
	LogLevel      string   `toml:"log_level" json:"log_level"`
	MetricsListen string   `toml:"metrics_listen" json:"metrics_listen,omitempty"`
	JobRetention  Duration `toml:"job_retention" json:"job_retention"`

	Remotes             map[string]*Remote     `toml:"remotes" json:"remotes,omitempty"`
	Credentials         map[string]*Credential `toml:"credentials" json:"credentials,omitempty"`
	Plans               []*Plan                `toml:"plans" json:"plans,omitempty"`
	Vaults              map[string]*Vault      `toml:"vaults" json:"vaults,omitempty"`
	BackupPolicies      []*BackupPolicy        `toml:"backup_policies" json:"backup_policies,omitempty"`
	ReplicationPolicies []*ReplicationPolicy   `toml:"replication_policies" json:"replication_policies,omitempty"`
	Alerts              map[string]*Alert      `toml:"alerts" json:"alerts,omitempty"`
	Mounts              []*Mount               `toml:"mounts" json:"mounts,omitempty"`

	// File is the path (Load) or name (Parse) the configuration came from.
	File string `toml:"-" json:"file"`
}

// Defaults of the global keys and of a plan's keys.
const (
	DefaultStateDir = "/var/lib/ferry"
	DefaultSocket   = "/run/ferry/ferry.sock"
	DefaultLogLevel = "info"

	DefaultJobRetention    = 180 * day
	DefaultConflict        = "update"
	DefaultMode            = "scan"
	DefaultVerify          = "transferred"
	DefaultWorkers         = 8
	DefaultMaxFilesPerTask = 1000
	DefaultMaxBytesPerTask = GiB
	DefaultMaxDeletePct    = 50
	DefaultWatchDelay      = 10 * time.Second
	DefaultRecheckDest     = 24 * time.Hour
	DefaultWatchMaxDelay   = 60 * time.Second
	DefaultChangelistPoll  = 30 * time.Second
	DefaultPartSize        = 16 * MiB

	// MinScheduleEvery is the shortest schedule interval accepted; use watch
	// or a changelist for anything more frequent.
	MinScheduleEvery = 10 * time.Minute
	// MaxFilesChars is the longest a plan's files list may be, counting one
	// separator between entries; longer lists belong in a changelist.
	MaxFilesChars = 3000
)

// Remote types.
const (
	RemoteLocal = "local"
	RemoteS3    = "s3"
)

// Remote is a place data lives: a local directory or an S3 bucket prefix.
type Remote struct {
	Name string `toml:"-" json:"name"`
	Type string `toml:"type" json:"type"` // "local" or "s3"

	// local
	Path string `toml:"path" json:"path,omitempty"`

	// s3
	Endpoint   string `toml:"endpoint" json:"endpoint,omitempty"` // host[:port], no scheme
	Bucket     string `toml:"bucket" json:"bucket,omitempty"`
	Prefix     string `toml:"prefix" json:"prefix,omitempty"` // "" or ending in "/" after Load
	Region     string `toml:"region" json:"region,omitempty"`
	TLS        bool   `toml:"tls" json:"tls"` // default true
	Credential string `toml:"credential" json:"credential,omitempty"`
	PartSize   Size   `toml:"part_size" json:"part_size,omitempty"` // multipart threshold and part size; default 16MiB
}

// Credential is an access key pair for S3 remotes.
type Credential struct {
	Name      string `toml:"-" json:"name"`
	AccessKey string `toml:"access_key" json:"access_key"`
	// SecretKey is the secret: as written inline, or, after Load, read from
	// SecretKeyFile (surrounding white space removed).
	SecretKey     Secret `toml:"secret_key" json:"secret_key"`
	SecretKeyFile string `toml:"secret_key_file" json:"secret_key_file,omitempty"`
	// Account is the account identity replication rules compare; default:
	// the credential's name.
	Account string `toml:"account" json:"account"`
}

// Plan enumeration modes, conflict policies and verify levels.
const (
	ModeScan  = "scan"
	ModeFiles = "files"

	ConflictSkip      = "skip"
	ConflictUpdate    = "update"
	ConflictOverwrite = "overwrite"

	VerifyTransferred = "transferred"
	VerifyAll         = "all"
	VerifyNone        = "none"
)

// Plan is a sync plan: what to copy from where to where, when, and how.
type Plan struct {
	Name        string `toml:"name" json:"name"`
	Source      string `toml:"source" json:"source"`           // local path or REMOTE:prefix
	Destination string `toml:"destination" json:"destination"` // local path or REMOTE:prefix
	Conflict    string `toml:"conflict" json:"conflict"`       // skip, update (default), overwrite
	Mode        string `toml:"mode" json:"mode"`               // scan (default), files

	Files   []string `toml:"files" json:"files,omitempty"` // paths relative to the source, for mode "files"
	Include []string `toml:"include" json:"include,omitempty"`
	Exclude []string `toml:"exclude" json:"exclude,omitempty"`

	Changelist     string   `toml:"changelist" json:"changelist,omitempty"` // inbox directory of ChangeList CSV files
	ChangelistPoll Duration `toml:"changelist_poll" json:"changelist_poll"`

	Watch         bool     `toml:"watch" json:"watch"`
	WatchDelay    Duration `toml:"watch_delay" json:"watch_delay"`
	WatchMaxDelay Duration `toml:"watch_max_delay" json:"watch_max_delay"`

	// Schedule is nil when the plan runs only on demand ("Run Now only").
	Schedule *Schedule `toml:"schedule" json:"schedule,omitempty"`

	Verify          string `toml:"verify" json:"verify"` // transferred (default), all, none
	Workers         int    `toml:"workers" json:"workers"`
	MaxFilesPerTask int    `toml:"max_files_per_task" json:"max_files_per_task"`
	MaxBytesPerTask Size   `toml:"max_bytes_per_task" json:"max_bytes_per_task"`
	Delete          bool   `toml:"delete" json:"delete"`
	MaxDelete       Limit  `toml:"max_delete" json:"max_delete"`

	// RecheckDestination is how long a scan trusts the file index for the
	// destination's copies before it lists the destination again; 0 lists
	// it on every scan.
	RecheckDestination Duration `toml:"recheck_destination" json:"recheck_destination"`

	// Alerts names the alerts this plan fires. nil (the key absent) means
	// every configured alert; an empty list means none.
	Alerts []string `toml:"alerts" json:"alerts"`
}

// SourceLocation returns the parsed source. After Load it never fails, so
// the error is dropped.
func (p *Plan) SourceLocation() Location {
	l, _ := ParseLocation(p.Source)
	return l
}

// DestinationLocation returns the parsed destination.
func (p *Plan) DestinationLocation() Location {
	l, _ := ParseLocation(p.Destination)
	return l
}

// Changelist inbox sides: an inbox on the plan's own source or destination.
const (
	ChangelistSource      = "source"
	ChangelistDestination = "destination"
)

// ChangelistInbox splits the changelist setting: side is "" for a local
// directory (path is that directory), or ChangelistSource /
// ChangelistDestination for "source:/DIR" and "destination:/DIR" (path is
// DIR, relative to that data source's root).
func (p *Plan) ChangelistInbox() (side, path string) {
	for _, s := range []string{ChangelistSource, ChangelistDestination} {
		if rest, ok := strings.CutPrefix(p.Changelist, s+":"); ok {
			return s, rest
		}
	}
	return "", p.Changelist
}

// AlertNames returns the names of the alerts this plan fires, resolving nil
// to every alert in c, sorted.
func (p *Plan) AlertNames(c *Config) []string {
	if p.Alerts != nil {
		return p.Alerts
	}
	return sortedKeys(c.Alerts)
}

// Schedule says when something runs by itself: at Start and every Every
// after it.
type Schedule struct {
	Start time.Time `toml:"start" json:"start"` // default: when the configuration was loaded
	Every Duration  `toml:"every" json:"every"`
}

// Next returns the first run time strictly after t: Start when t is before
// it, else Start plus the smallest whole number of Every past t.
func (s *Schedule) Next(t time.Time) time.Time {
	if t.Before(s.Start) {
		return s.Start
	}
	if s.Every.Duration <= 0 {
		return time.Time{}
	}
	n := t.Sub(s.Start)/s.Every.Duration + 1
	return s.Start.Add(n * s.Every.Duration)
}

// Vault kinds.
const (
	VaultBackup      = "backup"
	VaultReplication = "replication"
)

// Vault is a prefix on a remote holding backups.
type Vault struct {
	Name   string `toml:"-" json:"name"`
	Remote string `toml:"remote" json:"remote"`
	Prefix string `toml:"prefix" json:"prefix,omitempty"` // "" or ending in "/" after Load
	Kind   string `toml:"kind" json:"kind"`               // backup (default) or replication
}

// BackupPolicy makes backups of a source into a vault on a schedule and
// prunes them by the keep rules.
type BackupPolicy struct {
	Name     string    `toml:"name" json:"name"`
	Source   string    `toml:"source" json:"source"` // local path or REMOTE:prefix
	Vault    string    `toml:"vault" json:"vault"`
	Schedule *Schedule `toml:"schedule" json:"schedule,omitempty"`
	Keep     Keep      `toml:"keep" json:"keep"`
}

// SourceLocation returns the parsed source.
func (b *BackupPolicy) SourceLocation() Location {
	l, _ := ParseLocation(b.Source)
	return l
}

// Keep says which backups pruning keeps: the Last newest, and the newest
// of each of the last Daily days, Weekly weeks and Monthly months. All zero
// keeps every backup.
type Keep struct {
	Last    int `toml:"last" json:"last"`
	Daily   int `toml:"daily" json:"daily"`
	Weekly  int `toml:"weekly" json:"weekly"`
	Monthly int `toml:"monthly" json:"monthly"`
}

// ReplicationPolicy replicates backups from one vault to another on a
// schedule and keeps KeepCount replicas and those younger than KeepDays days
// (0 = no limit of that kind). In TOML: keep = { count = 5, days = 30 }.
type ReplicationPolicy struct {
	Name             string    `toml:"name" json:"name"`
	SourceVault      string    `toml:"source_vault" json:"source_vault"`
	DestinationVault string    `toml:"destination_vault" json:"destination_vault"`
	Schedule         *Schedule `toml:"schedule" json:"schedule,omitempty"`
	KeepCount        int       `toml:"keep.count" json:"keep_count"`
	KeepDays         int       `toml:"keep.days" json:"keep_days"`
}

// Alert types.
const (
	AlertWebhook = "webhook"
	AlertCommand = "command"
)

// Alert is where Ferry reports a job that ended partial or failed.
type Alert struct {
	Name    string   `toml:"-" json:"name"`
	Type    string   `toml:"type" json:"type"`                 // webhook or command
	URL     string   `toml:"url" json:"url,omitempty"`         // webhook: http(s) URL that receives a JSON POST
	Command []string `toml:"command" json:"command,omitempty"` // command: argv, run without a shell
}

// Mount shows a vault (read-only) or a remote as a directory.
type Mount struct {
	Vault      string `toml:"vault" json:"vault,omitempty"`
	Remote     string `toml:"remote" json:"remote,omitempty"`
	Path       string `toml:"path" json:"path"`
	ReadOnly   bool   `toml:"read_only" json:"read_only"` // always true in effect for a vault
	AllowOther bool   `toml:"allow_other" json:"allow_other"`
}

// LookupPlan returns the plan called name.
func (c *Config) LookupPlan(name string) (*Plan, bool) {
	for _, p := range c.Plans {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}

// RemoteAccount returns the account identity of the named remote, which
// replication rules compare: for an S3 remote its credential's account
// (default: the credential's name), or the remote's own name when it has no
// credential; for a local remote its own name.
func (c *Config) RemoteAccount(name string) string {
	r, ok := c.Remotes[name]
	if !ok {
		return ""
	}
	if r.Type == RemoteS3 && r.Credential != "" {
		if cr, ok := c.Credentials[r.Credential]; ok {
			return cr.Account
		}
	}
	return r.Name
}
