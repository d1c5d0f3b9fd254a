package config

import (
	"strings"
	"testing"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in     string
		remote string
		path   string
		prefix string
		err    bool
	}{
		{"/srv/data", "", "/srv/data", "", false},
		{"relative/dir", "", "relative/dir", "", false},
		{"s3a:photos", "s3a", "photos", "photos/", false},
		{"s3a:photos/2024/", "s3a", "photos/2024/", "photos/2024/", false},
		{"s3a:/photos", "s3a", "/photos", "photos/", false},
		{"s3a:", "s3a", "", "", false},
		{"my-remote_2:a/b", "my-remote_2", "a/b", "a/b/", false},
		{"./x:y", "", "./x:y", "", false},
		{"/a:b", "", "/a:b", "", false},
		{":foo", "", ":foo", "", false},
		{"a b:c", "", "a b:c", "", false},
		{"s3.a:c", "", "s3.a:c", "", false},
		{"r:a:b", "r", "a:b", "a:b/", false},
		{"C:foo", "C", "foo", "foo/", false},
		{"", "", "", "", true},
		{"a\x00b", "", "", "", true},
		{"\xff", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLocation(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseLocation(%q) = %+v; want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLocation(%q): %v", tt.in, err)
			}
			if got.Remote != tt.remote || got.Path != tt.path || got.Prefix() != tt.prefix {
				t.Errorf("ParseLocation(%q) = %+v prefix %q; want remote %q path %q prefix %q",
					tt.in, got, got.Prefix(), tt.remote, tt.path, tt.prefix)
			}
			if got.IsLocal() != (tt.remote == "") {
				t.Errorf("IsLocal() = %v", got.IsLocal())
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestLocalPathRules(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the problem; "" means accepted
	}{
		{"/", ""},
		{"/srv/data", ""},
		{"/srv/data/", ""},
		{"/srv/my files/ünïcode", ""},
		{"/srv/a..b/.hidden", ""},
		{"", "empty"},
		{"srv/data", "not an absolute path"},
		{"./data", "not an absolute path"},
		{"/srv/../etc", `".." component`},
		{"/srv/./data", `"." component`},
		{"/srv/..", `".." component`},
		{"/srv//data", "empty component"},
		{"//srv", "empty component"},
		{"/srv/data//", "empty component"},
		{`/srv\data`, "backslash"},
		{"/srv/\x00", "NUL"},
		{"/srv/\xff", "UTF-8"},
	}
	for _, tt := range tests {
		got := localPathProblem(tt.in)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("localPathProblem(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrefixRules(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"photos", true},
		{"photos/", true},
		{"/photos/2024", true},
		{"a/../b", false},
		{"a/./b", false},
		{"a//b", false},
		{`a\b`, false},
		{"..", false},
		{"//", false},
	}
	for _, tt := range tests {
		if got := prefixProblem(tt.in); (got == "") != tt.ok {
			t.Errorf("prefixProblem(%q) = %q, want ok=%v", tt.in, got, tt.ok)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		inner, outer string
		want         bool
	}{
		{"/a", "/a", true},
		{"/a/b", "/a", true},
		{"/ab", "/a", false},
		{"/a", "/a/b", false},
		{"/x", "/", true},
		{"a/b/", "a/", true},
		{"ab/", "a/", false},
		{"a/", "", true},
		{"", "a/", false},
	}
	for _, tt := range tests {
		if got := within(tt.inner, tt.outer); got != tt.want {
			t.Errorf("within(%q, %q) = %v, want %v", tt.inner, tt.outer, got, tt.want)
		}
	}
}
