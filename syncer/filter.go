package syncer

import (
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Filter decides which source paths a plan syncs: include globs or exclude
// globs, never both. Pattern rules, as in rclone and .gitignore:
//
//   - a pattern with no "/" matches the file's name at any depth ("*.log");
//   - a pattern starting with "/" is anchored at the source root ("/tmp/*");
//   - any other pattern matches the whole relative path ("photos/**/*.jpg");
//   - a pattern ending in "/" matches everything below that directory;
//   - "**" matches any number of path components, "*" any run of characters
//     within one component, "?" one character, "[abc]" and "{a,b}" as usual.
type Filter struct {
	include  bool
	patterns []pattern
}

type pattern struct {
	glob     string
	basename bool
}

// NewFilter compiles include or exclude patterns (at most one list may be
// non-empty). A nil *Filter matches everything.
func NewFilter(include, exclude []string) (*Filter, error) {
	if len(include) > 0 && len(exclude) > 0 {
		return nil, fmt.Errorf("filter: include and exclude cannot both be set")
	}
	list, inc := exclude, false
	if len(include) > 0 {
		list, inc = include, true
	}
	if len(list) == 0 {
		return nil, nil
	}
	f := &Filter{include: inc}
	for _, raw := range list {
		p, err := compilePattern(raw)
		if err != nil {
			return nil, err
		}
		f.patterns = append(f.patterns, p)
	}
	return f, nil
}

func compilePattern(raw string) (pattern, error) {
	g := strings.TrimSpace(raw)
	if g == "" {
		return pattern{}, fmt.Errorf("filter pattern %q is empty", raw)
	}
	if strings.HasSuffix(g, "/") {
		g += "**"
	}
	p := pattern{glob: g}
	switch {
	case strings.HasPrefix(g, "/"):
		p.glob = strings.TrimPrefix(g, "/")
	case !strings.Contains(g, "/"):
		p.basename = true
	}
	if !doublestar.ValidatePattern(p.glob) {
		return pattern{}, fmt.Errorf("filter pattern %q is not a valid glob", raw)
	}
	return p, nil
}

// Match reports whether the plan syncs the file at key.
func (f *Filter) Match(key string) bool {
	if f == nil {
		return true
	}
	for _, p := range f.patterns {
		name := key
		if p.basename {
			name = path.Base(key)
		}
		if ok, _ := doublestar.Match(p.glob, name); ok {
			return f.include
		}
	}
	return !f.include
}
