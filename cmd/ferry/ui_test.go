package main

import (
	"regexp"
	"testing"
	"time"
)

// Times are shown in the local zone with the zone named, and read back to
// the same instant.
func TestTimeStr(t *testing.T) {
	if got := timeStr(time.Time{}); got != "-" {
		t.Errorf("timeStr(zero) = %q, want -", got)
	}
	at := time.Date(2026, 11, 23, 14, 5, 6, 0, time.UTC)
	got := timeStr(at)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Za-z0-9+-]+$`).MatchString(got) {
		t.Fatalf("timeStr = %q, want a date, a time and a zone", got)
	}
	back, err := time.ParseInLocation("2006-01-02 15:04:05 MST", got, time.Local)
	if err != nil || !back.Equal(at) {
		t.Errorf("timeStr = %q reads back as %v (%v), want %v", got, back, err, at)
	}
}

// printable escapes what a terminal would act on and keeps the rest.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode → ok":  "plain text, ünïcode → ok",
		"two\nlines\tand a tab":     "two\nlines\tand a tab",
		"a\x1b[2J.txt":              `a\x1b[2J.txt`,
		"title\x1b]0;x\a":           `title\x1b]0;x\a`,
		"c1 \u009b2J, del \x7f, \r": `c1 \u009b2J, del \x7f, \r`,
		"bad utf-8 \xff\xfe end":    `bad utf-8 \xff\xfe end`,
		"bidi \u202e override":      `bidi \u202e override`,
		"":                          "",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
