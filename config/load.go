package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ErrConfig is wrapped by every error Load and Parse return: a file that
// cannot be read, TOML syntax, and (through ValidationError.Unwrap) invalid
// content.
var ErrConfig = errors.New("config")

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"` // 1-based; 0 if unknown
	Key     string `json:"key,omitempty"`  // key path, e.g. plans[1].schedule.every or remotes.s3a.bucket
	Message string `json:"message"`
}

// String formats the problem as FILE:LINE: KEY: MESSAGE, leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a configuration file, in the
// order of their lines. errors.Is(err, ErrConfig) holds for it.
type ValidationError struct {
	File     string    `json:"file"`
	Problems []Problem `json:"problems"`
}

// Error returns a heading and then each problem on its own line, so that
// "ferry: " + Error() reads well on a terminal.
func (e *ValidationError) Error() string {
	var b strings.Builder
	n := len(e.Problems)
	name := e.File
	if name == "" {
		name = "configuration"
	}
	if n == 1 {
		fmt.Fprintf(&b, "invalid configuration %s: 1 problem", name)
	} else {
		fmt.Fprintf(&b, "invalid configuration %s: %d problems", name, n)
	}
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns ErrConfig.
func (e *ValidationError) Unwrap() error { return ErrConfig }

// Load reads, decodes and validates the configuration file at path. The
// result is a Config with defaults applied, or an error: one wrapping
// ErrConfig when the file cannot be read, or a *ValidationError with every
// problem (TOML syntax, unknown keys, invalid values) found.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: %s is a directory, not a configuration file", ErrConfig, path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrConfig, path, err)
	}
	mode := st.Mode().Perm()
	return parse(data, path, &mode, filepath.Dir(path), time.Now())
}

// SocketOf returns the daemon socket a configuration file names (or the
// default), when the file is readable TOML but not a valid configuration:
// the daemon, started from an earlier version of the file, may still be
// asked what it does. ok is false when the file cannot be read or is not
// TOML, or its socket is not a string.
func SocketOf(path string) (socket string, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return "", false
	}
	switch s := raw["socket"].(type) {
	case nil:
		return DefaultSocket, true
	case string:
		return s, s != ""
	default:
		return "", false
	}
}

// Parse decodes and validates configuration text; name is used in messages
// (usually the file name). The permission check of the file itself is
// skipped; a secret_key_file is still read and checked, and a relative one
// is taken relative to the working directory.
func Parse(data []byte, name string) (*Config, error) {
	return parse(data, name, nil, "", time.Now())
}

// parse does the work of Load and Parse. mode is the configuration file's
// permission bits when known; baseDir resolves relative secret_key_file
// paths; now is the default schedule start.
func parse(data []byte, name string, mode *fs.FileMode, baseDir string, now time.Time) (*Config, error) {
	text := string(data)
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &ValidationError{File: name, Problems: []Problem{{
				File: name, Line: pe.Position.Line,
				Message: syntaxMessage(pe),
			}}}
		}
		return nil, &ValidationError{File: name, Problems: []Problem{{File: name, Message: "TOML: " + err.Error()}}}
	}

	cfg := &Config{File: name}
	cfg.setDefaults()
	d := &decoder{defined: map[string]bool{}}
	d.decodeStruct(nil, raw, reflect.ValueOf(cfg).Elem(), "")

	v := &validator{
		decoder: d,
		cfg:     cfg,
		mode:    mode,
		baseDir: baseDir,
		now:     now.Truncate(time.Second),
	}
	v.finish()
	v.validate()

	if len(d.problems) == 0 {
		return cfg, nil
	}
	lines := scanKeyLines(text)
	probs := make([]Problem, 0, len(d.problems))
	for _, p := range d.problems {
		probs = append(probs, Problem{File: name, Line: lines.lineOf(p.path), Key: p.path.String(), Message: p.msg})
	}
	// Document order; problems without a line last. The sort is stable so
	// problems on one line keep the order they were found in.
	slices.SortStableFunc(probs, func(a, b Problem) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = 1 << 30
		}
		if lb == 0 {
			lb = 1 << 30
		}
		return la - lb
	})
	return nil, &ValidationError{File: name, Problems: probs}
}

func (c *Config) setDefaults() {
	c.StateDir = DefaultStateDir
	c.Socket = DefaultSocket
	c.LogLevel = DefaultLogLevel
	c.JobRetention = Duration{DefaultJobRetention}
}

func (r *Remote) setDefaults() {
	r.TLS = true
	r.PartSize = DefaultPartSize
}

func (p *Plan) setDefaults() {
	p.Conflict = DefaultConflict
	p.Mode = DefaultMode
	p.Verify = DefaultVerify
	p.Workers = DefaultWorkers
	p.MaxFilesPerTask = DefaultMaxFilesPerTask
	p.MaxBytesPerTask = DefaultMaxBytesPerTask
	p.MaxDelete = Limit{Percent: DefaultMaxDeletePct}
	p.WatchDelay = Duration{DefaultWatchDelay}
	p.WatchMaxDelay = Duration{DefaultWatchMaxDelay}
	p.ChangelistPoll = Duration{DefaultChangelistPoll}
	p.RecheckDestination = Duration{DefaultRecheckDest}
}

func (v *Vault) setDefaults() {
	v.Kind = VaultBackup
}

func syntaxMessage(pe toml.ParseError) string {
	msg := "TOML syntax error: " + pe.Message
	if pe.LastKey != "" {
		msg += fmt.Sprintf(" (after key %s)", pe.LastKey)
	}
	return msg
}
