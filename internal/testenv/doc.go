// Package testenv gives tests the real external parts they need — today a
// MinIO server for the S3 store — and decides what happens when a part is
// missing.
//
// A missing part (no MinIO binary, no FUSE) skips the test on a developer's
// machine. In CI, FERRY_TEST_REQUIRE lists the parts that must be present
// (comma separated, e.g. "s3,fuse"); a missing required part fails the test
// instead, so nothing is skipped without anyone noticing.
//
// # MinIO
//
// MinIO(t) starts a private server for one test and stops it when the test
// ends. SharedMinIO(t) starts one server per test binary, for packages whose
// tests only need buckets; such a package stops it from TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testenv.StopShared()
//		os.Exit(code)
//	}
//
// Tests give each other isolation by using their own bucket (NewBucket). A
// test that stops and restarts the server (S3Server.Stop and Start, which
// keep the data directory and port) must use MinIO(t), not the shared one;
// with an external endpoint they return ErrExternal (check External first).
//
// The server binary is $FERRY_MINIO_BIN when set, else `minio` on PATH, else
// $(go env GOPATH)/bin/minio; `make minio` (scripts/install-minio.sh)
// installs the pinned build there. When FERRY_TEST_S3_ENDPOINT,
// FERRY_TEST_S3_ACCESS_KEY and FERRY_TEST_S3_SECRET_KEY are set (and
// FERRY_TEST_S3_TLS=1 for https), that endpoint is used and no server is
// started.
//
// Servers are started with their own data directory on a free loopback port,
// and die with the test binary (SIGKILL on parent death on Linux) so no
// process is left behind even when a test binary is killed.
//
// This package is for tests only; it uses minio-go internally, but no minio
// type appears in its API.
package testenv
