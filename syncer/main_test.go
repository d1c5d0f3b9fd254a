package syncer

import (
	"os"
	"testing"

	"github.com/ferrysync/ferry/internal/testenv"
)

// TestMain stops the shared MinIO server the integration tests start.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}
