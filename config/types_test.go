package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string // substring of the error; "" means success
	}{
		{"0", 0, ""},
		{"1h", time.Hour, ""},
		{"30m", 30 * time.Minute, ""},
		{"90s", 90 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"7d", 7 * 24 * time.Hour, ""},
		{"2w", 14 * 24 * time.Hour, ""},
		{"1w2d3h", (7+2)*24*time.Hour + 3*time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"180d", 180 * 24 * time.Hour, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"10us", 10 * time.Microsecond, ""},
		{"10µs", 10 * time.Microsecond, ""},
		{"1ns", 1, ""},
		{"", 0, "empty"},
		{"10", 0, "missing unit"},
		{"-1h", 0, "sign"},
		{"+1h", 0, "sign"},
		{"1y", 0, `unknown unit "y"`},
		{"h", 0, "expected a number"},
		{"1h 30m", 0, "unknown unit"},
		{"1..5h", 0, "bad number"},
		{"100000000w", 0, "too large"},
		{"3000000h", 0, "too large"},
		{"100000d100000d", 0, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				if !strings.Contains(err.Error(), "valid:") {
					t.Errorf("error %q does not say what is valid", err)
				}
				return
			}
			if err != nil || got.Duration != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			// The printed form reads back to the same value.
			back, err := ParseDuration(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %v via %q = %v, %v", got.Duration, got.String(), back, err)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Minute, "1h30m"},
		{time.Hour, "1h"},
		{10 * time.Minute, "10m"},
		{90 * time.Second, "1m30s"},
		{180 * 24 * time.Hour, "180d"},
		{36 * time.Hour, "1d12h"},
		{24*time.Hour + time.Second, "1d1s"},
	}
	for _, tt := range tests {
		if got := (Duration{tt.d}).String(); got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  string
	}{
		{"0", 0, ""},
		{"1024", 1024, ""},
		{"1GiB", GiB, ""},
		{"1gib", GiB, ""},
		{"500MB", 500_000_000, ""},
		{"4KiB", 4096, ""},
		{"4 KiB", 4096, ""},
		{"16MiB", 16 * MiB, ""},
		{"1TiB", TiB, ""},
		{"2TB", 2_000_000_000_000, ""},
		{"1K", 1000, ""},
		{"1k", 1000, ""},
		{"1G", 1_000_000_000, ""},
		{"10B", 10, ""},
		{"1.5KiB", 1536, ""},
		{"1.5GB", 1_500_000_000, ""},
		{"0.5MiB", 512 * KiB, ""},
		{"2.50KB", 2500, ""},
		{"", 0, "expected a number"},
		{"GiB", 0, "expected a number"},
		{"-1GiB", 0, "expected a number"},
		{"1XB", 0, `unknown unit "XB"`},
		{"1.5B", 0, "whole number of bytes"},
		{"1.", 0, "bad number"},
		{".5KiB", 0, "bad number"},
		{"1.2.3KB", 0, "bad number"},
		{"9999999999TiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"0.0000000000000000001KB", 0, "too many decimal places"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			back, err := ParseSize(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %d via %q = %d, %v", got, got.String(), back, err)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		s    Size
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1500, "1500B"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{16 * MiB, "16MiB"},
		{GiB, "1GiB"},
		{500_000_000, "500MB"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    Limit
		percent bool
		err     bool
	}{
		{"50%", Limit{Percent: 50}, true, false},
		{"12.5%", Limit{Percent: 12.5}, true, false},
		{"100%", Limit{Percent: 100}, true, false},
		{" 5 % ", Limit{Percent: 5}, true, false},
		{"0%", Limit{}, false, false},
		{"1000", Limit{Count: 1000}, false, false},
		{"0", Limit{}, false, false},
		{"101%", Limit{}, false, true},
		{"-1%", Limit{}, false, true},
		{"-5", Limit{}, false, true},
		{"NaN%", Limit{}, false, true},
		{"1e1%", Limit{}, false, true},
		{"inf%", Limit{}, false, true},
		{"ten", Limit{}, false, true},
		{"", Limit{}, false, true},
		{"%", Limit{}, false, true},
		{"1.5", Limit{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLimit(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseLimit(%q) = %v; want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "valid:") {
					t.Errorf("error %q does not say what is valid", err)
				}
				return
			}
			if err != nil || got != tt.want || got.IsPercent() != tt.percent {
				t.Fatalf("ParseLimit(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			back, err := ParseLimit(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %+v via %q = %+v, %v", got, got.String(), back, err)
			}
		})
	}
}

func TestLimitMax(t *testing.T) {
	tests := []struct {
		l     Limit
		total int64
		want  int64
	}{
		{Limit{Percent: 50}, 10, 5},
		{Limit{Percent: 50}, 3, 1},
		{Limit{Percent: 100}, 7, 7},
		{Limit{Count: 1000}, 10, 1000},
		{Limit{}, 10, 0},
	}
	for _, tt := range tests {
		if got := tt.l.Max(tt.total); got != tt.want {
			t.Errorf("%v.Max(%d) = %d, want %d", tt.l, tt.total, got, tt.want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const value = "wJalrXUtnFEMI-very-secret"
	s := Secret(value)
	type holder struct {
		Key Secret `json:"key"`
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("login", "secret", s)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("login", slog.Any("secret", s))
	js, err := json.Marshal(holder{s})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := s.MarshalText()
	outputs := map[string]string{
		"%v":     fmt.Sprintf("%v", s),
		"%s":     fmt.Sprintf("%s", s),
		"%q":     fmt.Sprintf("%q", s),
		"%x":     fmt.Sprintf("%x", s),
		"%#v":    fmt.Sprintf("%#v", s),
		"%+v":    fmt.Sprintf("%+v", holder{s}),
		"%#v st": fmt.Sprintf("%#v", holder{s}),
		"String": s.String(),
		"json":   string(js),
		"text":   string(text),
		"slog":   logBuf.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s printed the secret: %s", how, out)
		}
		if !strings.Contains(out, "***") {
			t.Errorf("%s printed %q, want ***", how, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}
