package s3

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// User metadata names, as stored in x-amz-meta-<name> headers. "mtime" is
// the name rclone and s3fs use.
const (
	metaMtime  = "mtime"
	metaSHA256 = "sha256"
)

// FormatMtime formats t as rclone writes x-amz-meta-mtime: decimal Unix
// seconds with up to nine fractional digits, trailing zeros dropped (and the
// point too when the time is a whole second), e.g. "1700000000.123456789" or
// "1700000000". Times before 1970 get a minus sign.
func FormatMtime(t time.Time) string {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	sign := ""
	if sec < 0 {
		sign = "-"
		if nsec > 0 {
			sec++
			nsec = 1e9 - nsec
		}
		sec = -sec
	}
	s := sign + strconv.FormatUint(uint64(sec), 10)
	if nsec == 0 {
		return s
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", nsec), "0")
	return s + "." + frac
}

// ParseMtime parses an x-amz-meta-mtime value: decimal Unix seconds with an
// optional fraction ("1700000000.5", rclone) or whole seconds ("1700000000",
// s3fs). Digits beyond nanoseconds are truncated. Anything else is an error.
func ParseMtime(s string) (time.Time, error) {
	bad := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("mtime %q: want decimal Unix seconds such as 1700000000.123456789", s)
	}
	rest := s
	neg := false
	if r, ok := strings.CutPrefix(rest, "-"); ok {
		neg, rest = true, r
	}
	intPart, frac, hasPoint := strings.Cut(rest, ".")
	if intPart == "" || !allDigits(intPart) || (hasPoint && (frac == "" || !allDigits(frac))) {
		return bad()
	}
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || sec > maxMtimeSeconds {
		return bad()
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	var nsec int64
	if frac != "" {
		nsec, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec), nil
}

// maxMtimeSeconds bounds a parsed mtime to ±2^40 seconds (about 35,000
// years) around 1970; larger values are not times anyone stored.
const maxMtimeSeconds = 1 << 40

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// errBadSHA256 is returned for a PutMeta.SHA256 that is not 64 hex digits.
var errBadSHA256 = errors.New("SHA-256 must be 64 hex digits")

// normalizeSHA256 checks a caller-given hex SHA-256 and returns it in lower
// case; "" stays "".
func normalizeSHA256(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if len(s) != 64 {
		return "", fmt.Errorf("%q: %w", s, errBadSHA256)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("%q: %w", s, errBadSHA256)
	}
	return strings.ToLower(s), nil
}

// checksumHeader returns the x-amz-checksum-sha256 value (base64) for a raw
// SHA-256 sum.
func checksumHeader(sum []byte) string {
	return base64.StdEncoding.EncodeToString(sum)
}

// checksumToHex turns an x-amz-checksum-sha256 value (base64 of the raw
// sum) into hex, or "" when it is not one.
func checksumToHex(b64 string) string {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		return ""
	}
	return hex.EncodeToString(raw)
}

// metaValue looks name up in user metadata whose keys may be in any case
// and may still carry the "X-Amz-Meta-" prefix (list results).
func metaValue(m map[string]string, name string) string {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		k = strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-")
		if k == name {
			return v
		}
	}
	return ""
}

// userMetadata builds the metadata recorded with an object.
func userMetadata(mtime time.Time, sha string) map[string]string {
	m := map[string]string{metaMtime: FormatMtime(mtime)}
	if sha != "" {
		m[metaSHA256] = sha
	}
	return m
}

// modTimeAndSHA reads an object's mtime and SHA-256 from its user
// metadata, falling back to lastModified and "" when they are missing or
// malformed. lastModified is cut to whole seconds: HEAD gives it so (an HTTP
// date), listings with milliseconds, and Stat and List must agree.
func modTimeAndSHA(meta map[string]string, lastModified time.Time) (time.Time, string) {
	mtime := lastModified.Truncate(time.Second)
	if v := metaValue(meta, metaMtime); v != "" {
		if t, err := ParseMtime(v); err == nil {
			mtime = t
		}
	}
	sha, err := normalizeSHA256(metaValue(meta, metaSHA256))
	if err != nil {
		sha = ""
	}
	return mtime, sha
}
