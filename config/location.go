package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/ferrysync/ferry/remote"
)

// Location is where a plan reads or writes: a local path, or a prefix on a
// configured remote.
type Location struct {
	Remote string // the remote's name; "" for a local path
	Path   string // the local path, or the prefix on the remote as written
}

// IsLocal reports whether the location is a local path.
func (l Location) IsLocal() bool { return l.Remote == "" }

// String returns the location as a user writes it: "/path" or "REMOTE:prefix".
func (l Location) String() string {
	if l.IsLocal() {
		return l.Path
	}
	return l.Remote + ":" + l.Path
}

// Prefix returns the key prefix on the remote: "" for the remote's root,
// otherwise the path with one leading "/" removed and a trailing "/" added
// ("REMOTE:photos" and "REMOTE:/photos/" both give "photos/"). For a local
// location it returns "". The result passes remote.ValidatePrefix when the
// location passed validation.
func (l Location) Prefix() string {
	if l.IsLocal() {
		return ""
	}
	return normalizePrefix(l.Path)
}

func normalizePrefix(p string) string {
	p = strings.TrimPrefix(p, "/")
	if p == "" || strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

// ParseLocation reads "REMOTE:prefix" or a local path. REMOTE is a name of
// letters, digits, "-" and "_" followed by a colon; anything else is a local
// path, absolute or relative ("/a:b" and "./x:y" are local paths). It does
// not check that the remote exists or that the path obeys the path rules;
// validation does that.
func ParseLocation(s string) (Location, error) {
	switch {
	case s == "":
		return Location{}, errors.New("empty location (valid: an absolute local path or REMOTE:prefix)")
	case !utf8.ValidString(s):
		return Location{}, fmt.Errorf("location %q is not valid UTF-8", s)
	case strings.IndexByte(s, 0) >= 0:
		return Location{}, fmt.Errorf("location %q contains a NUL byte", s)
	}
	if i := strings.IndexByte(s, ':'); i > 0 && validName(s[:i]) {
		return Location{Remote: s[:i], Path: s[i+1:]}, nil
	}
	return Location{Path: s}, nil
}

// validName reports whether s is a name Ferry accepts for remotes,
// credentials, plans, vaults, policies and alerts: one or more ASCII letters,
// digits, "-" or "_".
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

const nameRule = `a name is one or more letters, digits, "-" or "_"`

// localPathProblem returns why p is not an acceptable local path, or "".
// Accepted paths are absolute, in valid UTF-8, and have no NUL, backslash,
// empty component ("//") or "." / ".." component; one trailing "/" is
// allowed.
func localPathProblem(p string) string {
	switch {
	case p == "":
		return "is empty (valid: an absolute path like /srv/data)"
	case !utf8.ValidString(p):
		return "is not valid UTF-8"
	case strings.IndexByte(p, 0) >= 0:
		return "contains a NUL byte"
	case p[0] != '/':
		return fmt.Sprintf("%q is not an absolute path (valid: a path starting with /, like /srv/data)", p)
	case strings.IndexByte(p, '\\') >= 0:
		return fmt.Sprintf("%q contains a backslash (valid: / separates directories)", p)
	}
	if p == "/" {
		return ""
	}
	inner := strings.TrimSuffix(p[1:], "/")
	for comp := range strings.SplitSeq(inner, "/") {
		switch comp {
		case "":
			return fmt.Sprintf("%q has an empty component (//); write each / once", p)
		case ".", "..":
			return fmt.Sprintf("%q has a %q component (valid: a plain absolute path without . or ..)", p, comp)
		}
	}
	return ""
}

// cleanLocal returns an accepted local path without its trailing "/".
func cleanLocal(p string) string {
	if len(p) > 1 {
		return strings.TrimSuffix(p, "/")
	}
	return p
}

// prefixProblem returns why a prefix on a remote is refused, or "".
func prefixProblem(p string) string {
	if err := remote.ValidatePrefix(normalizePrefix(p)); err != nil {
		var ke *remote.KeyError
		if errors.As(err, &ke) {
			return fmt.Sprintf("prefix %q %s (valid: a relative path like \"photos/2024\" without \".\", \"..\", \"//\" or backslashes)", p, ke.Reason)
		}
		return fmt.Sprintf("prefix %q: %v", p, err)
	}
	return ""
}

// CheckLocation refuses a location c cannot use, with why and what would
// be valid: a local path that breaks the path rules (it must be absolute),
// a remote c does not configure, a prefix that breaks the key rules. It is
// the check of a plan's source and destination, for locations from
// elsewhere (a command line); it opens nothing.
func (c *Config) CheckLocation(loc Location) error {
	if loc.IsLocal() {
		if msg := localPathProblem(loc.Path); msg != "" {
			return fmt.Errorf("local path %s", msg)
		}
		return nil
	}
	if _, ok := c.Remotes[loc.Remote]; !ok {
		if len(c.Remotes) == 0 {
			return fmt.Errorf("%s: no remote named %q: %s configures no remotes; add a [remotes.%s] table, or use a local path", loc, loc.Remote, c.File, loc.Remote)
		}
		return fmt.Errorf("%s: no remote named %q in %s (configured: %s)", loc, loc.Remote, c.File, strings.Join(sortedKeys(c.Remotes), ", "))
	}
	if msg := prefixProblem(loc.Path); msg != "" {
		return fmt.Errorf("%s: %s", loc, msg)
	}
	return nil
}

// Place resolves where loc's objects are (see remote.Place): a local path,
// or the directory of a local remote, with its symlinks resolved as they
// are now; an S3 remote's endpoint, bucket and prefix. The remote must be
// one of c's.
func (c *Config) Place(loc Location) (remote.Place, error) {
	if loc.IsLocal() {
		return remote.LocalPlace(loc.Path)
	}
	r, ok := c.Remotes[loc.Remote]
	if !ok {
		return remote.Place{}, fmt.Errorf("%s: no remote named %q", loc, loc.Remote)
	}
	switch r.Type {
	case RemoteLocal:
		return remote.LocalPlace(filepath.Join(r.Path, filepath.FromSlash(loc.Prefix())))
	case RemoteS3:
		return remote.S3Place(r.Endpoint, r.TLS, r.Bucket, normalizePrefix(r.Prefix)+loc.Prefix()), nil
	}
	return remote.Place{}, fmt.Errorf("remote %s: unknown type %q", r.Name, r.Type)
}

// CheckOverlap refuses a plan from src to dst whose two ends overlap (see
// remote.CheckOverlap), compared by what they are: resolved local paths,
// S3 endpoint, bucket and prefix. When a local path cannot be resolved
// (a dangling symlink on the way) it compares the locations as written;
// the sync engine checks the resolved places again before a job writes.
func (c *Config) CheckOverlap(src, dst Location, deletes bool) error {
	sp, serr := c.Place(src)
	dp, derr := c.Place(dst)
	if serr == nil && derr == nil {
		return remote.CheckOverlap(sp, dp, deletes)
	}
	switch {
	case dst.Within(src):
		return fmt.Errorf("%w: the destination %s is the source %s or lies inside it; choose a destination outside the source", remote.ErrOverlap, dst, src)
	case deletes && src.Within(dst):
		return fmt.Errorf("%w: the source %s lies inside the destination %s, so deletes would delete the source itself", remote.ErrOverlap, src, dst)
	}
	return nil
}

// Within reports whether l is outer or lies inside it: the same remote and
// a prefix under outer's, or a local path under outer's (local paths are
// compared cleaned, as written; make them absolute first).
func (l Location) Within(outer Location) bool {
	if l.Remote != outer.Remote {
		return false
	}
	if l.IsLocal() {
		return within(cleanLocal(l.Path), cleanLocal(outer.Path))
	}
	return within(l.Prefix(), outer.Prefix())
}

// within reports whether inner is outer or lies inside it. Both are cleaned
// absolute paths, or both are key prefixes ("" or ending in "/").
func within(inner, outer string) bool {
	if inner == outer || outer == "" || outer == "/" {
		return true
	}
	if !strings.HasSuffix(outer, "/") {
		outer += "/"
	}
	return strings.HasPrefix(inner, outer)
}
