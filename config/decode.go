package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// keyPath names a value in the file: table keys and array indexes, printed
// as "plans[1].schedule.every" or `remotes."my remote".bucket`.
type keyPath []pathElem

type pathElem struct {
	name  string
	index int // used when isIndex
	isIdx bool
}

// key returns a new path with the key name appended.
func (p keyPath) key(name string) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, pathElem{name: name})
}

// idx returns a new path with the array index i appended.
func (p keyPath) idx(i int) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, pathElem{index: i, isIdx: true})
}

// keys appends a dotted sequence of names ("keep.count").
func (p keyPath) keys(dotted string) keyPath {
	for part := range strings.SplitSeq(dotted, ".") {
		p = p.key(part)
	}
	return p
}

func (p keyPath) String() string {
	var b strings.Builder
	for i, e := range p {
		if e.isIdx {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(e.name))
	}
	return b.String()
}

// quoteKey writes a key part as TOML would: bare when it can be, else quoted.
func quoteKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return strconv.Quote(k)
		}
	}
	return k
}

// fromTOMLer is implemented by the value types that read themselves from a
// decoded TOML value (Duration, Size, Limit).
type fromTOMLer interface {
	fromTOML(v any) error
}

// defaulter is implemented by the tables that have defaults; decoding calls
// it on each new table before filling in the keys the file sets.
type defaulter interface {
	setDefaults()
}

// decoder fills the config structs from the generic tree that toml.Decode
// returns, strictly: every key must match a toml tag exactly, and every
// mismatch is recorded as a problem rather than stopping the decode, so one
// run reports everything.
type decoder struct {
	problems []pathProblem
	defined  map[string]bool // key paths set in the file
}

// pathProblem is a problem before its line is known.
type pathProblem struct {
	path keyPath
	msg  string
}

func (d *decoder) addf(p keyPath, format string, args ...any) {
	d.problems = append(d.problems, pathProblem{path: p, msg: fmt.Sprintf(format, args...)})
}

var (
	timeType = reflect.TypeFor[time.Time]()
	fromType = reflect.TypeFor[fromTOMLer]()
)

// tagsOf returns the toml tags of a struct type's fields and their indexes.
func tagsOf(t reflect.Type) (tags []string, index map[string]int) {
	index = make(map[string]int)
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		tags = append(tags, tag)
		index[tag] = i
	}
	return tags, index
}

// decodeStruct fills the struct rv (addressable) from table m. prefix is ""
// or a dotted group ("keep.") for tags such as "keep.count".
func (d *decoder) decodeStruct(path keyPath, m map[string]any, rv reflect.Value, prefix string) {
	tags, index := tagsOf(rv.Type())
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		kp := path.key(k)
		if i, ok := index[prefix+k]; ok {
			d.defined[kp.String()] = true
			d.decodeValue(kp, v, rv.Field(i))
			continue
		}
		group := prefix + k + "."
		if slices.ContainsFunc(tags, func(t string) bool { return strings.HasPrefix(t, group) }) {
			d.defined[kp.String()] = true
			sub, ok := v.(map[string]any)
			if !ok {
				d.addf(kp, "must be a table like %s = { ... }, not %s", k, tomlTypeName(v))
				continue
			}
			d.decodeStruct(kp, sub, rv, group)
			continue
		}
		d.addf(kp, "unknown key%s", suggest(k, prefix, tags))
	}
}

// suggest returns " (did you mean X?)" for a near miss, and the valid keys.
func suggest(k, prefix string, tags []string) string {
	var valid []string
	seen := map[string]bool{}
	for _, t := range tags {
		if !strings.HasPrefix(t, prefix) {
			continue
		}
		t = strings.TrimPrefix(t, prefix)
		t, _, _ = strings.Cut(t, ".")
		if !seen[t] {
			seen[t] = true
			valid = append(valid, t)
		}
	}
	best, bestDist := "", 3
	for _, t := range valid {
		if dist := editDistance(strings.ToLower(k), t); dist < bestDist {
			best, bestDist = t, dist
		}
	}
	slices.Sort(valid)
	msg := ""
	if best != "" {
		msg = fmt.Sprintf("; did you mean %q?", best)
	}
	return fmt.Sprintf("%s (valid keys here: %s)", msg, strings.Join(valid, ", "))
}

// editDistance is the Levenshtein distance between a and b, capped at 10 to
// keep very long keys cheap.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 10
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeValue stores v into the field rv.
func (d *decoder) decodeValue(path keyPath, v any, rv reflect.Value) {
	if rv.CanAddr() && rv.Addr().Type().Implements(fromType) {
		if err := rv.Addr().Interface().(fromTOMLer).fromTOML(v); err != nil {
			d.addf(path, "%s", err.Error())
		}
		return
	}
	t := rv.Type()
	switch {
	case t == timeType:
		tm, msg := toTime(v)
		if msg != "" {
			d.addf(path, "%s", msg)
			return
		}
		rv.Set(reflect.ValueOf(tm))
		return
	case t.Kind() == reflect.String:
		s, ok := v.(string)
		if !ok {
			d.addf(path, "must be a string, not %s", tomlTypeName(v))
			return
		}
		rv.SetString(s)
	case t.Kind() == reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.addf(path, "must be true or false, not %s", tomlTypeName(v))
			return
		}
		rv.SetBool(b)
	case t.Kind() == reflect.Int:
		n, ok := v.(int64)
		if !ok {
			d.addf(path, "must be an integer, not %s", tomlTypeName(v))
			return
		}
		if n > math.MaxInt32 || n < math.MinInt32 {
			d.addf(path, "%d is out of range", n)
			return
		}
		rv.SetInt(n)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		arr, ok := v.([]any)
		if !ok {
			d.addf(path, "must be an array of strings like [\"a\", \"b\"], not %s", tomlTypeName(v))
			return
		}
		out := reflect.MakeSlice(t, 0, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				d.addf(path.idx(i), "must be a string, not %s", tomlTypeName(e))
				continue
			}
			out = reflect.Append(out, reflect.ValueOf(s).Convert(t.Elem()))
		}
		rv.Set(out)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.addf(path, "must be a table, not %s", tomlTypeName(v))
			return
		}
		nv := newTable(t.Elem())
		d.decodeStruct(path, m, nv.Elem(), "")
		rv.Set(nv)
	case t.Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.addf(path, "must be a table, not %s", tomlTypeName(v))
			return
		}
		d.decodeStruct(path, m, rv, "")
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Pointer:
		m, ok := v.(map[string]any)
		if !ok {
			d.addf(path, "must be a table of named tables like [%s.NAME], not %s", path, tomlTypeName(v))
			return
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, name := range slices.Sorted(maps.Keys(m)) {
			np := path.key(name)
			sub, ok := m[name].(map[string]any)
			if !ok {
				d.addf(np, "must be a table like [%s], not %s", np, tomlTypeName(m[name]))
				continue
			}
			nv := newTable(t.Elem().Elem())
			if f := nv.Elem().FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String {
				f.SetString(name)
			}
			d.decodeStruct(np, sub, nv.Elem(), "")
			out.SetMapIndex(reflect.ValueOf(name), nv)
		}
		rv.Set(out)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Pointer:
		var tables []any
		switch x := v.(type) {
		case []map[string]any:
			for _, e := range x {
				tables = append(tables, e)
			}
		case []any:
			tables = x
		default:
			d.addf(path, "must be an array of tables like [[%s]], not %s", path, tomlTypeName(v))
			return
		}
		out := reflect.MakeSlice(t, 0, len(tables))
		for i, e := range tables {
			m, ok := e.(map[string]any)
			if !ok {
				d.addf(path.idx(i), "must be a table, not %s", tomlTypeName(e))
				continue
			}
			nv := newTable(t.Elem().Elem())
			d.decodeStruct(path.idx(i), m, nv.Elem(), "")
			out = reflect.Append(out, nv)
		}
		rv.Set(out)
	default:
		// A field type this decoder does not know is a bug in this package,
		// reported like any problem rather than a panic.
		d.addf(path, "internal error: cannot decode into %s", t)
	}
}

// newTable allocates a *T and applies its defaults.
func newTable(t reflect.Type) reflect.Value {
	nv := reflect.New(t)
	if df, ok := nv.Interface().(defaulter); ok {
		df.setDefaults()
	}
	return nv
}

// toTime accepts a TOML date-time, or a date (midnight), or an RFC 3339
// string. Local date-times are read in the machine's time zone.
func toTime(v any) (time.Time, string) {
	const help = "(valid: a TOML date-time like 2025-01-01T02:00:00 or 2025-01-01T02:00:00Z)"
	switch x := v.(type) {
	case time.Time:
		switch x.Location().String() {
		case "time-local":
			return time.Time{}, "is a time of day without a date " + help
		case "datetime-local", "date-local":
			x = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.Local)
		}
		return x, ""
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			loc := time.Local
			if t, err := time.ParseInLocation(layout, x, loc); err == nil {
				return t, ""
			}
		}
		return time.Time{}, fmt.Sprintf("%q is not a date-time %s", x, help)
	}
	return time.Time{}, fmt.Sprintf("must be a date-time, not %s %s", tomlTypeName(v), help)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
