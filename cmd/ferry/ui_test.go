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
