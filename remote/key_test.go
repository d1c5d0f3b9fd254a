package remote

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key    string
		reason string // "" means valid
	}{
		{"a", ""},
		{"dir/file.txt", ""},
		{"with space/and,comma/\"quote\".txt", ""},
		{"naïve/日本語/файл", ""},
		{"...", ""},
		{"a..b/c", ""},
		{".hidden/x", ""},
		{"", "is empty"},
		{"/etc/passwd", "is an absolute path (starts with /)"},
		{"a//b", "has an empty path component (// or a trailing /)"},
		{"a/", "has an empty path component (// or a trailing /)"},
		{"./a", `has a "." component`},
		{"a/./b", `has a "." component`},
		{"a/.", `has a "." component`},
		{"..", `has a ".." component`},
		{"../../etc/passwd", `has a ".." component`},
		{"a/../b", `has a ".." component`},
		{"a\\b", "contains a backslash"},
		{"..\\..\\windows", "contains a backslash"},
		{"a\x00b", "contains a NUL byte"},
		{"bad\xffutf8", "is not valid UTF-8"},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if tt.reason == "" {
			if err != nil {
				t.Errorf("ValidateKey(%q) = %v, want nil", tt.key, err)
			}
			continue
		}
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Reason != tt.reason {
			t.Errorf("ValidateKey(%q) = %v, want reason %q", tt.key, err, tt.reason)
		}
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) error does not wrap ErrInvalidKey", tt.key)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, ok := range []string{"", "a/", "a/b/"} {
		if err := ValidatePrefix(ok); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"a", "/", "//", "../", "a//", "/a/"} {
		if err := ValidatePrefix(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestUserPathToKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/dir1/example.txt", "dir1/example.txt"},
		{"dir1/example.txt", "dir1/example.txt"},
	}
	for _, tt := range tests {
		got, err := UserPathToKey(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("UserPathToKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"//etc/passwd", "/", "", "/../x", "a\\b"} {
		if _, err := UserPathToKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("UserPathToKey(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestPrintableKey(t *testing.T) {
	if got := PrintableKey("plain/ü.txt"); got != "plain/ü.txt" {
		t.Errorf("PrintableKey changed a printable key: %q", got)
	}
	for _, k := range []string{"a\x00b", "bad\xff", "new\nline"} {
		got := PrintableKey(k)
		if got == k || !utf8.ValidString(got) || strings.ContainsAny(got, "\x00\n") {
			t.Errorf("PrintableKey(%q) = %q, want a quoted printable form", k, got)
		}
	}
}

// FuzzValidateKey checks the promise the rest of Ferry relies on: nothing
// ValidateKey accepts can climb out of a root or be read two ways.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "a//b", "a\\b", "a\x00", "\xff", "/abs", ".", "a/./b", "ü/ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidateKey(key)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		if key == "" || key[0] == '/' || strings.HasSuffix(key, "/") ||
			strings.Contains(key, "//") || strings.Contains(key, "\\") ||
			strings.Contains(key, "\x00") || !utf8.ValidString(key) {
			t.Fatalf("accepted bad key %q", key)
		}
		for _, c := range strings.Split(key, "/") {
			if c == "." || c == ".." {
				t.Fatalf("accepted key %q with a %q component", key, c)
			}
		}
		if PrintableKey(key) == "" {
			t.Fatalf("PrintableKey(%q) is empty", key)
		}
	})
}
