//go:build ferrytest

package daemon

import (
	"os"
	"time"
)

// In a test build (go build -tags ferrytest), FERRY_TEST_SCHEDULE_EVERY
// shortens every schedule so integration tests can watch one run on its own.
func init() {
	if v := os.Getenv("FERRY_TEST_SCHEDULE_EVERY"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			testScheduleEvery = d
		}
	}
	if v := os.Getenv("FERRY_TEST_PROBE_EVERY"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			probeEvery = d
		}
	}
}
