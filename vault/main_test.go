package vault

import (
	"os"
	"testing"

	"github.com/ferrysync/ferry/internal/testenv"
)

// TestMain runs the tests, or, when the test binary is started as a helper
// process by a kill test, the helper.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}
