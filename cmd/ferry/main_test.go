package main

import (
	"os"
	"testing"

	"github.com/ferrysync/ferry/internal/testenv"
)

// TestMain stops the shared MinIO server and removes the ferry binary that
// the process tests (kill_test.go) build.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	removeBuiltFerry()
	os.Exit(code)
}
