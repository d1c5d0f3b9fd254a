package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse: no input makes Parse panic, and every failure is a
// ValidationError whose problems all carry a message.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"../examples/quickstart.toml", "../examples/full.toml"} {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(string(data))
		}
	}
	f.Add(base)
	f.Add("[[plans]]\nname = \"a\"\nsource = \"/a\"\ndestination = \"s3a:b\"\nschedule = { every = \"5m\", start = 02:00:00 }\nfiles = [\"a\", 1]\n")
	f.Add("a = \"\"\"\n[[x]]\n\"\"\"\n[b.'c d'.\"e\"]\nf = [ { g = 1 }, [2, 3] ]\n")
	f.Add("[remotes.x]\ntype = \"s3\"\npart_size = 9223372036854775807\n[credentials.c]\nsecret_key_file = \"\"\n")
	f.Add("[[replication_policies]]\nkeep = { count = 1, days = \"x\", z = {} }\n[[mounts]]\n[[mounts]]\npath = 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse([]byte(text), "fuzz.toml")
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrConfig) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error %T %v is not a ValidationError with problems", err, err)
			}
			for _, p := range ve.Problems {
				if p.Message == "" || p.File != "fuzz.toml" || p.Line < 0 {
					t.Fatalf("bad problem %+v", p)
				}
				if strings.Contains(p.Message, "internal error") {
					t.Fatalf("decoder met a type it does not know: %+v", p)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without an error")
		}
		// A valid config's locations parse and obey the path rules.
		for _, p := range cfg.Plans {
			for _, l := range []Location{p.SourceLocation(), p.DestinationLocation()} {
				if l.IsLocal() && localPathProblem(l.Path) != "" || !l.IsLocal() && prefixProblem(l.Path) != "" {
					t.Fatalf("accepted plan %q with location %q", p.Name, l)
				}
			}
		}
		// The line scanner copes with everything toml accepts.
		_ = scanKeyLines(text)
	})
}

// FuzzParseLocation: a remote location always has a valid name, local and
// remote forms print back as given, and an accepted path is never unsafe.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"/srv/data", "s3a:photos/2024", "./x:y", "/a:b", "r:", ":x", "a\\b:c", "x:../..", "x:a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLocation(s)
		if err != nil {
			return
		}
		if l.String() != s {
			t.Fatalf("String() = %q, want %q", l.String(), s)
		}
		if !l.IsLocal() && !validName(l.Remote) {
			t.Fatalf("remote name %q is not a valid name", l.Remote)
		}
		if l.IsLocal() && localPathProblem(l.Path) == "" {
			if !strings.HasPrefix(l.Path, "/") || strings.Contains(l.Path, "//") || strings.Contains(l.Path, "\\") ||
				strings.Contains(l.Path+"/", "/../") || strings.Contains(l.Path+"/", "/./") || strings.ContainsRune(l.Path, 0) {
				t.Fatalf("accepted unsafe local path %q", l.Path)
			}
		}
		if !l.IsLocal() && prefixProblem(l.Path) == "" {
			p := l.Prefix()
			if strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, "\\") ||
				strings.Contains("/"+p, "/../") || strings.Contains("/"+p, "/./") || strings.ContainsRune(p, 0) {
				t.Fatalf("accepted unsafe prefix %q from %q", p, s)
			}
		}
	})
}

// FuzzValues: the value parsers never panic, and what they accept prints
// back to the same value.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"1h30m", "7d", "2w", "1GiB", "1.5KiB", "500MB", "50%", "1000", "0", ".", "1e9", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil {
			if d.Duration < 0 {
				t.Fatalf("ParseDuration(%q) = %v, negative", s, d.Duration)
			}
			if back, err := ParseDuration(d.String()); err != nil || back != d {
				t.Fatalf("duration %q → %v → %q → %v, %v", s, d.Duration, d.String(), back.Duration, err)
			}
		}
		if n, err := ParseSize(s); err == nil {
			if n < 0 {
				t.Fatalf("ParseSize(%q) = %d, negative", s, n)
			}
			if back, err := ParseSize(n.String()); err != nil || back != n {
				t.Fatalf("size %q → %d → %q → %d, %v", s, n, n.String(), back, err)
			}
		}
		if l, err := ParseLimit(s); err == nil {
			if l.Percent < 0 || l.Percent > 100 || l.Count < 0 {
				t.Fatalf("ParseLimit(%q) = %+v", s, l)
			}
			if back, err := ParseLimit(l.String()); err != nil || back != l {
				t.Fatalf("limit %q → %+v → %q → %+v, %v", s, l, l.String(), back, err)
			}
		}
	})
}
