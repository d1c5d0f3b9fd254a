package s3

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferrysync/ferry/remote"
)

func TestFormatMtime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1700000000, 123456789), "1700000000.123456789"},
		{time.Unix(1700000000, 0), "1700000000"},
		{time.Unix(1700000000, 500000000), "1700000000.5"},
		{time.Unix(1354040105, 120000000), "1354040105.12"},
		{time.Unix(0, 1), "0.000000001"},
		{time.Unix(0, 0), "0"},
		{time.Unix(-1, 500000000), "-0.5"},
		{time.Unix(-2, 0), "-2"},
		{time.Unix(-2, 999999999), "-1.000000001"},
	}
	for _, tt := range tests {
		if got := FormatMtime(tt.t); got != tt.want {
			t.Errorf("FormatMtime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestParseMtime(t *testing.T) {
	valid := []struct {
		in   string
		want time.Time
	}{
		{"1700000000.123456789", time.Unix(1700000000, 123456789)},
		{"1700000000", time.Unix(1700000000, 0)}, // s3fs
		{"1700000000.5", time.Unix(1700000000, 500000000)},
		{"1700000000.1234567891234", time.Unix(1700000000, 123456789)}, // truncated to ns
		{"0", time.Unix(0, 0)},
		{"-0.5", time.Unix(-1, 500000000)},
		{"-2", time.Unix(-2, 0)},
		{"0001700000000", time.Unix(1700000000, 0)},
	}
	for _, tt := range valid {
		got, err := ParseMtime(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseMtime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", ".", "1.", ".5", "-", "-.5", "abc", "1e9", "+1", "--1", " 1", "1 ", "1.2.3", "1,5",
		"99999999999999999999", "2023-11-14T22:13:20Z", "1.-5", "٣"} {
		if got, err := ParseMtime(in); err == nil {
			t.Errorf("ParseMtime(%q) = %v; want an error", in, got)
		}
	}
}

func FuzzParseMtime(f *testing.F) {
	for _, s := range []string{"1700000000.123456789", "1700000000", "-0.5", "", "1e9", "0.0000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseMtime(s)
		if err != nil {
			return
		}
		again, err := ParseMtime(FormatMtime(tm))
		if err != nil || !again.Equal(tm) {
			t.Fatalf("ParseMtime(%q) = %v, but its formatted form %q parses to %v, %v", s, tm, FormatMtime(tm), again, err)
		}
	})
}

func FuzzFormatMtime(f *testing.F) {
	f.Add(int64(1700000000), int64(123456789))
	f.Add(int64(-1), int64(1))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		sec %= maxMtimeSeconds
		nsec %= 1e9
		tm := time.Unix(sec, nsec)
		got, err := ParseMtime(FormatMtime(tm))
		if err != nil || !got.Equal(tm) {
			t.Fatalf("%v formats as %q, which parses to %v, %v", tm, FormatMtime(tm), got, err)
		}
	})
}

func TestNormalizeSHA256(t *testing.T) {
	const h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for in, want := range map[string]string{"": "", h: h, strings.ToUpper(h): h} {
		if got, err := normalizeSHA256(in); err != nil || got != want {
			t.Errorf("normalizeSHA256(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"abc", h[:63], h + "0", "g" + h[1:], " " + h[1:]} {
		if _, err := normalizeSHA256(in); !errors.Is(err, errBadSHA256) {
			t.Errorf("normalizeSHA256(%q): %v; want errBadSHA256", in, err)
		}
	}
}

func TestArchiveSkipReason(t *testing.T) {
	tests := []struct {
		class    string
		restored bool
		skip     bool
	}{
		{"", false, false},
		{"STANDARD", false, false},
		{"REDUCED_REDUNDANCY", false, false},
		{"STANDARD_IA", false, false},
		{"INTELLIGENT_TIERING", false, false},
		{"GLACIER_IR", false, false},
		{"GLACIER", false, true},
		{"glacier", false, true},
		{"DEEP_ARCHIVE", false, true},
		{"GLACIER", true, false},
		{"DEEP_ARCHIVE", true, false},
	}
	for _, tt := range tests {
		got := archiveSkipReason(tt.class, tt.restored)
		if (got != "") != tt.skip {
			t.Errorf("archiveSkipReason(%q, restored=%v) = %q; want skip=%v", tt.class, tt.restored, got, tt.skip)
		}
		if tt.skip && !strings.Contains(got, "archived storage class "+strings.ToUpper(tt.class)) {
			t.Errorf("archiveSkipReason(%q) = %q does not name the class", tt.class, got)
		}
	}
}

func TestListEntry(t *testing.T) {
	lm := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	lmMilli := lm.Add(678 * time.Millisecond) // listings have milliseconds
	const sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	future := time.Now().Add(24 * time.Hour)
	tests := []struct {
		name      string
		rel       string
		obj       minio.ObjectInfo
		wantKey   string
		wantMtime time.Time
		wantSHA   string
		skip      string // substring of SkipReason; "" for none
	}{
		{"MinIO metadata", "a/b", minio.ObjectInfo{LastModified: lm, UserMetadataStripped: map[string]string{"Mtime": "1700000000.5", "Sha256": sha}},
			"a/b", time.Unix(1700000000, 500000000), sha, ""},
		{"raw metadata", "a/b", minio.ObjectInfo{LastModified: lm, UserMetadata: map[string]string{"X-Amz-Meta-Mtime": "1700000000", "content-type": "x"}},
			"a/b", time.Unix(1700000000, 0), "", ""},
		{"no metadata (not MinIO)", "a/b", minio.ObjectInfo{LastModified: lmMilli}, "a/b", lm, "", ""},
		{"bad metadata", "a/b", minio.ObjectInfo{LastModified: lm, UserMetadataStripped: map[string]string{"Mtime": "yesterday", "Sha256": "xyz"}},
			"a/b", lm, "", ""},
		{"double slash", "a//b", minio.ObjectInfo{LastModified: lm}, "a//b", lm, "", "empty path component"},
		{"dot dot", "../x", minio.ObjectInfo{LastModified: lm}, "../x", lm, "", `".."`},
		{"non-empty dir marker", "dir/", minio.ObjectInfo{LastModified: lm, Size: 3}, "dir/", lm, "", "empty path component"},
		{"newline is a valid key", "a\nb", minio.ObjectInfo{LastModified: lm}, "a\nb", lm, "", ""},
		{"backslash", `a\b`, minio.ObjectInfo{LastModified: lm}, `a\b`, lm, "", "backslash"},
		{"glacier", "cold", minio.ObjectInfo{LastModified: lm, StorageClass: "GLACIER"}, "cold", lm, "", "archived storage class GLACIER"},
		{"glacier restoring", "cold", minio.ObjectInfo{LastModified: lm, StorageClass: "GLACIER", Restore: &minio.RestoreInfo{OngoingRestore: true}},
			"cold", lm, "", "archived storage class GLACIER"},
		{"glacier restored", "cold", minio.ObjectInfo{LastModified: lm, StorageClass: "GLACIER", Restore: &minio.RestoreInfo{ExpiryTime: future}},
			"cold", lm, "", ""},
		{"deep archive", "colder", minio.ObjectInfo{LastModified: lm, StorageClass: "DEEP_ARCHIVE"}, "colder", lm, "", "DEEP_ARCHIVE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listEntry(tt.rel, tt.obj)
			if got.Key != tt.wantKey || !got.ModTime.Equal(tt.wantMtime) || got.SHA256 != tt.wantSHA {
				t.Errorf("listEntry(%q) = %+v; want key %q mtime %v sha %q", tt.rel, got, tt.wantKey, tt.wantMtime, tt.wantSHA)
			}
			if tt.skip == "" && got.SkipReason != "" {
				t.Errorf("listEntry(%q) SkipReason = %q; want none", tt.rel, got.SkipReason)
			}
			if tt.skip != "" && !strings.Contains(got.SkipReason, tt.skip) {
				t.Errorf("listEntry(%q) SkipReason = %q; want it to mention %q", tt.rel, got.SkipReason, tt.skip)
			}
			if got.SkipReason == "" && remote.ValidateKey(got.Key) != nil {
				t.Errorf("listEntry(%q) passes invalid key %q without a SkipReason", tt.rel, got.Key)
			}
		})
	}
}
