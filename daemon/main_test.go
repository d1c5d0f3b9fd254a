package daemon

import (
	"os"
	"testing"

	"github.com/ferrysync/ferry/internal/testenv"
)

// testBinDir holds the ferry binary the integration tests build (set by
// them on first use); TestMain removes it.
var testBinDir string

// TestMain stops the shared MinIO server and removes the test build of
// the ferry binary when the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	if testBinDir != "" {
		os.RemoveAll(testBinDir)
	}
	os.Exit(code)
}
