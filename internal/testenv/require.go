package testenv

import (
	"os"
	"strings"
	"testing"
)

// RequireEnv is the environment variable listing the parts that must be
// present: a comma-separated list such as "s3,fuse".
const RequireEnv = "FERRY_TEST_REQUIRE"

// Part names used with Missing and Required.
const (
	PartS3   = "s3"
	PartFUSE = "fuse"
)

// hints says how to get each known part.
var hints = map[string]string{
	PartS3:   "run `make minio` (installs the pinned MinIO server into $(go env GOPATH)/bin), set FERRY_MINIO_BIN to a minio binary, or point FERRY_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY at an S3 endpoint",
	PartFUSE: "install FUSE (the fuse3 package: /dev/fuse and fusermount3) and run the tests as a user allowed to mount",
}

// Required reports whether part is listed in FERRY_TEST_REQUIRE.
func Required(part string) bool {
	return requiredIn(os.Getenv(RequireEnv), part)
}

// requiredIn reports whether part is in the comma-separated list (case and
// surrounding spaces ignored). "all" requires every part.
func requiredIn(list, part string) bool {
	for item := range strings.SplitSeq(list, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "all" || (item != "" && item == strings.ToLower(part)) {
			return true
		}
	}
	return false
}

// Missing ends the test because part is not available, why saying what is
// missing: it fails the test (t.Fatal) when part is listed in
// FERRY_TEST_REQUIRE and skips it otherwise. The message says how to get the
// part.
func Missing(t testing.TB, part, why string) {
	t.Helper()
	msg := missingMessage(part, why, Required(part))
	if Required(part) {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// missingMessage builds Missing's message.
func missingMessage(part, why string, required bool) string {
	var b strings.Builder
	b.WriteString(part)
	b.WriteString(" not available: ")
	b.WriteString(why)
	if hint, ok := hints[part]; ok {
		b.WriteString("; to get it, ")
		b.WriteString(hint)
	}
	if required {
		b.WriteString(" (failing, not skipping: ")
		b.WriteString(RequireEnv)
		b.WriteString(" lists ")
		b.WriteString(part)
		b.WriteString(")")
	} else {
		b.WriteString(" (set ")
		b.WriteString(RequireEnv)
		b.WriteString("=")
		b.WriteString(part)
		b.WriteString(" to make this a failure)")
	}
	return b.String()
}
