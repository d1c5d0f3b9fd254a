package remote

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KeyError says why a key was refused. It wraps ErrInvalidKey.
type KeyError struct {
	Key    string // the refused key, as given
	Reason string // e.g. `has a ".." component`
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("invalid key %s: %s", PrintableKey(e.Key), e.Reason)
}

func (e *KeyError) Unwrap() error { return ErrInvalidKey }

// ValidateKey checks the key rules. A valid key is a non-empty,
// slash-separated relative path in valid UTF-8 with no NUL byte, no
// backslash, no empty component (no leading, trailing or doubled slash) and
// no "." or ".." component. These rules are what make it impossible for a
// key to name anything outside a store's root, on any platform. It returns
// nil or a *KeyError.
func ValidateKey(key string) error {
	if reason := keyProblem(key); reason != "" {
		return &KeyError{Key: key, Reason: reason}
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "is empty"
	case !utf8.ValidString(key):
		return "is not valid UTF-8"
	case strings.IndexByte(key, 0) >= 0:
		return "contains a NUL byte"
	case strings.IndexByte(key, '\\') >= 0:
		return "contains a backslash"
	case key[0] == '/':
		return "is an absolute path (starts with /)"
	}
	for comp := range strings.SplitSeq(key, "/") {
		switch comp {
		case "":
			return "has an empty path component (// or a trailing /)"
		case ".":
			return `has a "." component`
		case "..":
			return `has a ".." component`
		}
	}
	return ""
}

// ValidatePrefix checks a listing prefix: "" (everything) or a valid key
// followed by "/".
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if !strings.HasSuffix(prefix, "/") {
		return &KeyError{Key: prefix, Reason: "a prefix must be empty or end with /"}
	}
	return ValidateKey(strings.TrimSuffix(prefix, "/"))
}

// UserPathToKey turns a path a user wrote relative to a store's root (in a
// files list, a changelist, a --path flag) into a key: one leading "/" is
// allowed and removed, as in "/dir1/example.txt". The result passes
// ValidateKey or an error wrapping ErrInvalidKey is returned.
func UserPathToKey(p string) (string, error) {
	key := strings.TrimPrefix(p, "/")
	if err := ValidateKey(key); err != nil {
		return "", &KeyError{Key: p, Reason: err.(*KeyError).Reason}
	}
	return key, nil
}

// JoinKey joins a directory prefix ("" or ending in "/") and a key.
func JoinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + key
}

// PrintableKey quotes a key for messages and lists when it holds anything a
// terminal or a CSV reader could misread (control bytes, invalid UTF-8), and
// returns it unchanged otherwise.
func PrintableKey(key string) string {
	if utf8.ValidString(key) && strconv.IsPrint(firstUnprintable(key)) {
		return key
	}
	return strconv.Quote(key)
}

// firstUnprintable returns the first rune of s that strconv.IsPrint rejects,
// or 'a' when there is none.
func firstUnprintable(s string) rune {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return r
		}
	}
	return 'a'
}

// CheckKey is the preamble of a store operation op on key: the key rules,
// then ctx. Errors name op and the key.
func CheckKey(ctx context.Context, op, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

// CheckPrefix is CheckKey for a listing prefix.
func CheckPrefix(ctx context.Context, op, prefix string) error {
	if err := ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, prefix, err)
	}
	return nil
}
