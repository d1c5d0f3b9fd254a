package testenv

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// SeedEnv names the variable that replays a randomized test's run.
const SeedEnv = "FERRY_TEST_SEED"

// Seed returns the seed of a randomized test: $FERRY_TEST_SEED when set,
// else one from the clock. It logs it, so that a failing run can be
// replayed with FERRY_TEST_SEED=N.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(SeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, s, err)
		}
	}
	t.Logf("seed %d (%s=%d replays this run)", seed, SeedEnv, seed)
	return seed
}
