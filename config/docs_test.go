package config

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docSections maps the code span in a docs/config.md heading to the struct
// whose keys that section's reference table documents.
var docSections = []struct {
	heading string
	typ     reflect.Type
}{
	{"Global keys", reflect.TypeFor[Config]()},
	{"[remotes.NAME]", reflect.TypeFor[Remote]()},
	{"[credentials.NAME]", reflect.TypeFor[Credential]()},
	{"[[plans]]", reflect.TypeFor[Plan]()},
	{"schedule", reflect.TypeFor[Schedule]()},
	{"[vaults.NAME]", reflect.TypeFor[Vault]()},
	{"[[backup_policies]]", reflect.TypeFor[BackupPolicy]()},
	{"keep", reflect.TypeFor[Keep]()},
	{"[[replication_policies]]", reflect.TypeFor[ReplicationPolicy]()},
	{"[alerts.NAME]", reflect.TypeFor[Alert]()},
	{"[[mounts]]", reflect.TypeFor[Mount]()},
}

type schemaKey struct{ section, key string }

// isSection reports whether a field is a whole section of its own (the
// top-level tables and arrays of tables), documented by a heading rather
// than a row.
func isSection(t reflect.Type) bool {
	return (t.Kind() == reflect.Map || t.Kind() == reflect.Slice) && t.Elem().Kind() == reflect.Pointer
}

// allKeys lists every key the decoder accepts, by section.
func allKeys() []schemaKey {
	var keys []schemaKey
	for _, s := range docSections {
		for i := range s.typ.NumField() {
			f := s.typ.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" || isSection(f.Type) {
				continue
			}
			keys = append(keys, schemaKey{s.heading, tag})
		}
	}
	return keys
}

// Every struct the decoder reaches is covered by docSections.
func TestDocSectionsCoverSchema(t *testing.T) {
	known := map[reflect.Type]bool{}
	for _, s := range docSections {
		known[s.typ] = true
	}
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || reflect.PointerTo(typ).Implements(fromType) || typ == timeType {
			return
		}
		seen[typ] = true
		if !known[typ] {
			t.Errorf("struct %s has no section in docSections", typ)
		}
		for i := range typ.NumField() {
			if tag := typ.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
				walk(typ.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// readDocTables returns, per section heading, the keys in the first column
// of its reference table, and the headings found.
func readDocTables(t *testing.T) (map[string][]string, map[string]bool) {
	t.Helper()
	f, err := os.Open("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string][]string{}
	headings := map[string]bool{}
	section := ""
	sc := bufio.NewScanner(f)
	inFence := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if strings.HasPrefix(line, "#") {
			section = ""
			title := strings.TrimSpace(strings.TrimLeft(line, "#"))
			name := title
			if m := codeSpan.FindStringSubmatch(title); m != nil {
				name = m[1]
			}
			for _, s := range docSections {
				if s.heading == name {
					section = name
					headings[name] = true
				}
			}
			continue
		}
		if section == "" || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			t.Errorf("docs/config.md section %s: row %q has %d cells, want 5 (key, type, default, example, description)", section, line, len(cells))
			continue
		}
		for i, c := range cells {
			if strings.TrimSpace(c) == "" {
				t.Errorf("docs/config.md section %s: row %q has an empty cell %d", section, line, i)
			}
		}
		m := codeSpan.FindStringSubmatch(cells[0])
		rows[section] = append(rows[section], m[1])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, headings
}

// docs/config.md and the code document the same keys: every key the
// decoder accepts has a row in its section's table, and every row names a
// key the decoder accepts.
func TestDocsMatchSchema(t *testing.T) {
	rows, headings := readDocTables(t)
	for _, s := range docSections {
		if !headings[s.heading] {
			t.Errorf("docs/config.md has no section heading for %s", s.heading)
		}
	}
	code := map[string][]string{}
	for _, k := range allKeys() {
		code[k.section] = append(code[k.section], k.key)
	}
	for _, s := range docSections {
		documented := rows[s.heading]
		for _, k := range code[s.heading] {
			if !slices.Contains(documented, k) {
				t.Errorf("docs/config.md section %s does not document key `%s`", s.heading, k)
			}
		}
		for _, k := range documented {
			if !slices.Contains(code[s.heading], k) {
				t.Errorf("docs/config.md section %s documents `%s`, which the code does not accept", s.heading, k)
			}
		}
	}
	// The top-level sections are named in the docs too.
	text, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		if tag := f.Tag.Get("toml"); isSection(f.Type) && !strings.Contains(string(text), "`"+tag+"`") {
			t.Errorf("docs/config.md does not mention section `%s`", tag)
		}
	}
}
