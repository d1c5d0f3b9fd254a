package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeList(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChangelistValidate(t *testing.T) {
	path := writeList(t, "list.csv", "path,op,owner\n/a.txt,upsert,x\nb.txt,D,x\n../../etc/passwd,,x\nc.txt,rename,x\n")
	stdout, stderr, code := runFerry(t, "changelist", "validate", "--paths", path)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"Changelist " + path + " is well-formed; 2 of its 4 rows would be skipped.",
		"format           CSV with a header row",
		"ignored columns  owner",
		"rows             4",
		"upserts          1",
		"deletes          1",
		"skipped          2",
		`line 4: ../../etc/passwd: invalid path: has a ".." component`,
		`line 5: c.txt: unknown op "rename"; use upsert`,
		"Upserts:\n  a.txt\n",
		"Deletes:\n  b.txt\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	// --strict: skipped rows fail.
	_, stderr, code = runFerry(t, "changelist", "validate", "--strict", path)
	if code != exitFailure || !strings.Contains(stderr, "2 of 4 rows would be skipped") {
		t.Errorf("--strict: exit %d, stderr %q", code, stderr)
	}

	// --json.
	stdout, _, code = runFerry(t, "--json", "changelist", "validate", path)
	var rep changelistReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != exitOK {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, stdout)
	}
	if !rep.Valid || rep.Rows != 4 || rep.Upserts != 1 || rep.Deletes != 1 || len(rep.Skipped) != 2 ||
		rep.Skipped[0].Line != 4 || rep.Skipped[0].Path != "../../etc/passwd" || len(rep.SHA256) != 64 {
		t.Errorf("--json report %+v", rep)
	}
}

func TestChangelistValidateGzip(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("a.txt\nb.txt\n"))
	zw.Close()
	path := writeList(t, "list.csv.gz", b.String())
	stdout, stderr, code := runFerry(t, "changelist", "validate", path)
	if code != exitOK || !strings.Contains(stdout, "CSV, one path per row (no header), gzip-compressed") ||
		!strings.Contains(stdout, "upserts  2\n") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

func TestChangelistValidateBroken(t *testing.T) {
	path := writeList(t, "broken.csv", "path\nok.txt\n\"never closed\n")
	stdout, stderr, code := runFerry(t, "changelist", "validate", path)
	if code != exitFailure || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "ferry: changelist "+path+" line 3: unterminated or malformed quoted field") ||
		!strings.Contains(stderr, "the whole list would be rejected") {
		t.Errorf("stderr %q", stderr)
	}

	stdout, _, code = runFerry(t, "--json", "changelist", "validate", path)
	var rep changelistReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != exitFailure {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, stdout)
	}
	if rep.Valid || rep.Error == nil || rep.Error.Line != 3 || !strings.Contains(rep.Error.Reason, "quoted field") {
		t.Errorf("--json report %+v", rep)
	}
}

func TestChangelistValidateArgs(t *testing.T) {
	if _, _, code := runFerry(t, "changelist", "validate"); code != exitUsage {
		t.Errorf("no FILE: exit %d", code)
	}
	_, stderr, code := runFerry(t, "changelist", "validate", filepath.Join(t.TempDir(), "nope.csv"))
	if code != exitFailure || !strings.Contains(stderr, "nope.csv") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
}
