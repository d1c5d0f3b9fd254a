package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a span of time written as a Go duration ("90s", "30m",
// "1h30m") that may also use days ("7d") and weeks ("2w"). A day is 24 hours.
type Duration struct{ time.Duration }

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// ParseDuration parses a duration: one or more decimal numbers, each with a
// unit: ns, us (or µs), ms, s, m, h, d or w. "0" alone is zero. Negative
// durations are refused.
func ParseDuration(s string) (Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("invalid duration %q: %s (valid: a number and a unit ns, us, ms, s, m, h, d, w, e.g. \"90s\", \"1h30m\", \"7d\")", s, err)
	}
	return Duration{d}, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	if s == "0" {
		return 0, nil
	}
	if s[0] == '-' || s[0] == '+' {
		return 0, errors.New("a sign is not allowed")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		// A segment is digits, an optional fraction, and a unit.
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("expected a number at %q", rest)
		}
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if unit == "" {
			return 0, fmt.Errorf("missing unit after %s", num)
		}
		mult, ok := durationUnits[unit]
		if !ok {
			return 0, fmt.Errorf("unknown unit %q", unit)
		}
		v, _, err := decimalTimes(num, mult)
		if err != nil {
			return 0, err
		}
		seg := time.Duration(v)
		if total > math.MaxInt64-seg {
			return 0, errors.New("too large")
		}
		total += seg
	}
	return total, nil
}

var durationUnits = map[string]int64{
	"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9,
	"m": 6e10, "h": 3.6e12, "d": 8.64e13, "w": 6.048e14,
}

// decimalTimes returns num × mult, where num is a decimal number of digits
// with an optional fraction ("12", "1.5"). A fractional result is truncated
// and reported by exact = false.
func decimalTimes(num string, mult int64) (v int64, exact bool, err error) {
	whole, frac, hasFrac := strings.Cut(num, ".")
	if whole == "" || strings.Contains(frac, ".") || (hasFrac && frac == "") {
		return 0, false, fmt.Errorf("bad number %q", num)
	}
	w, err := strconv.ParseUint(whole, 10, 63)
	if err != nil || int64(w) > math.MaxInt64/mult {
		return 0, false, errors.New("too large")
	}
	v, exact = int64(w)*mult, true
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		return v, true, nil
	}
	if len(frac) > 18 {
		return 0, false, errors.New("too many decimal places")
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("bad number %q", num)
	}
	den := int64(1)
	for range len(frac) {
		den *= 10
	}
	// f < den <= 1e18: compute f*mult/den without overflow by dividing out
	// their common factor first.
	g := gcd(mult, den)
	m, d := mult/g, den/g
	if f%d != 0 {
		exact = false
	}
	// f/d * m + (f%d)*m/d; (f%d) < d <= 1e18 and m may be large, so use
	// floating point for the sub-unit remainder, which only truncates.
	part := f / d
	if part > math.MaxInt64/m {
		return 0, false, errors.New("too large")
	}
	part *= m
	part += int64(float64(f%d) * float64(m) / float64(d))
	if v > math.MaxInt64-part {
		return 0, false, errors.New("too large")
	}
	return v + part, exact, nil
}

// String formats the duration so that ParseDuration reads it back: whole
// days as "d", the rest as Go does without trailing zero units ("7d",
// "1d12h", "1h30m", "90s").
func (d Duration) String() string {
	if d.Duration == 0 {
		return "0s"
	}
	var b strings.Builder
	v := d.Duration
	if v < 0 {
		return v.String()
	}
	if days := v / day; days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteString("d")
		v -= days * day
	}
	if v > 0 {
		s := v.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		b.WriteString(s)
	}
	return b.String()
}

// UnmarshalText parses the text form (see ParseDuration).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText returns String's form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Duration) fromTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("must be a string with a unit, like \"1h\" or \"7d\", not %s", tomlTypeName(v))
	}
	return d.UnmarshalText([]byte(s))
}

// Size is a number of bytes, written as a plain integer or with a unit:
// B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024),
// e.g. "1GiB", "500MB", "4KiB", 1048576.
type Size int64

// Byte multiples.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var sizeUnits = []struct {
	name string
	mult int64
}{
	// Largest first: String picks the first that divides evenly.
	{"TiB", 1 << 40}, {"TB", 1e12},
	{"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6},
	{"KiB", 1 << 10}, {"KB", 1e3},
	{"B", 1},
}

const sizeHelp = `valid: an integer number of bytes or a number and a unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, e.g. "1GiB", "500MB"`

// ParseSize parses a size. The unit is case-insensitive ("1gib" = "1GiB"),
// "K", "M", "G", "T" alone mean KB, MB, GB, TB, a space may separate number
// and unit, and a decimal fraction is allowed when the result is a whole
// number of bytes ("1.5KiB").
func ParseSize(s string) (Size, error) {
	n, err := parseSize(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %s (%s)", s, err, sizeHelp)
	}
	return n, nil
}

func parseSize(s string) (Size, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, errors.New("expected a number")
	}
	mult := int64(1)
	if unit != "" {
		found := false
		u := strings.ToLower(unit)
		if len(u) == 1 && u != "b" {
			u += "b"
		}
		for _, su := range sizeUnits {
			if strings.ToLower(su.name) == u {
				mult, found = su.mult, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown unit %q", unit)
		}
	}
	total, exact, err := decimalTimes(num, mult)
	if err != nil {
		return 0, err
	}
	if !exact {
		return 0, errors.New("not a whole number of bytes")
	}
	return Size(total), nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// String formats the size with the largest unit that divides it evenly
// ("16MiB", "500MB", "1500B"); ParseSize reads it back.
func (s Size) String() string {
	if s <= 0 {
		return strconv.FormatInt(int64(s), 10) + "B"
	}
	for _, u := range sizeUnits {
		if int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalText parses the text form (see ParseSize).
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText returns String's form.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Size) fromTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return errors.New("must not be negative")
		}
		*s = Size(x)
		return nil
	case string:
		return s.UnmarshalText([]byte(x))
	}
	return fmt.Errorf("must be a size like \"1GiB\" or an integer number of bytes, not %s", tomlTypeName(v))
}

// Limit caps how much of something may happen: a percentage of a total
// ("50%") or a count ("1000"). When Percent is above zero the limit is a
// percentage and Count is ignored; otherwise it is Count items ("0%" and "0"
// both allow nothing).
type Limit struct {
	Percent float64 // 0–100
	Count   int64
}

// IsPercent reports whether the limit is a percentage.
func (l Limit) IsPercent() bool { return l.Percent > 0 }

// Max returns how many of total items the limit allows.
func (l Limit) Max(total int64) int64 {
	if l.IsPercent() {
		return int64(math.Floor(float64(total) * l.Percent / 100))
	}
	return l.Count
}

const limitHelp = `valid: a percentage from 0% to 100% like "50%", or a count like 1000`

// ParseLimit parses "50%", "12.5%" or "1000".
func ParseLimit(s string) (Limit, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 || strings.ContainsAny(p, "eEinfINFxX") {
			return Limit{}, fmt.Errorf("invalid limit %q (%s)", s, limitHelp)
		}
		return Limit{Percent: f}, nil
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return Limit{}, fmt.Errorf("invalid limit %q (%s)", s, limitHelp)
	}
	return Limit{Count: n}, nil
}

// String returns "50%" or "1000"; ParseLimit reads it back.
func (l Limit) String() string {
	if l.IsPercent() {
		return strconv.FormatFloat(l.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatInt(l.Count, 10)
}

// UnmarshalText parses the text form (see ParseLimit).
func (l *Limit) UnmarshalText(text []byte) error {
	v, err := ParseLimit(string(text))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// MarshalText returns String's form.
func (l Limit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l *Limit) fromTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("must not be negative (%s)", limitHelp)
		}
		*l = Limit{Count: x}
		return nil
	case string:
		return l.UnmarshalText([]byte(x))
	}
	return fmt.Errorf("must be a percentage string like \"50%%\" or an integer count, not %s", tomlTypeName(v))
}

// Secret holds a password or key. Every way of printing it — fmt's %v, %s
// and %#v, JSON, text marshaling and slog — shows "***"; Reveal returns the
// value for the one place that needs it.
type Secret string

const redacted = "***"

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String returns "***".
func (s Secret) String() string { return redacted }

// GoString returns "***", so %#v does not print the value either.
func (s Secret) GoString() string { return `"` + redacted + `"` }

// MarshalJSON returns "***" as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText returns "***".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue makes slog print "***".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format makes every fmt verb (%v, %s, %q, %x, %#v) print "***".
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprint(f, strconv.Quote(redacted))
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, redacted)
	default:
		fmt.Fprint(f, redacted)
	}
}

var (
	_ fmt.Stringer   = Secret("")
	_ fmt.GoStringer = Secret("")
	_ slog.LogValuer = Secret("")
	_ json.Marshaler = Secret("")
	_ fmt.Formatter  = Secret("")
)

// tomlTypeName names the TOML type of a decoded value for messages.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}
