#!/usr/bin/env bash
# install-minio.sh: make sure the MinIO server the S3 tests run against is
# installed, and print its path on stdout.
#
# The binary is cached outside the clone, in $(go env GOPATH)/bin, so a fresh
# clone (CI) does not rebuild it. The build is pinned; building it takes about
# six minutes. Idempotent: an existing binary is reused as-is.
#
# Environment: FERRY_MINIO_BIN, if set, names the binary to use instead; it is
# checked, never built.
set -euo pipefail

MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

if [[ -n "${FERRY_MINIO_BIN:-}" ]]; then
	if [[ -x "$FERRY_MINIO_BIN" ]]; then
		echo "$FERRY_MINIO_BIN"
		exit 0
	fi
	echo "install-minio: FERRY_MINIO_BIN=$FERRY_MINIO_BIN is not an executable file" >&2
	exit 1
fi

gopath=$(go env GOPATH 2>/dev/null || true)
gopath=${gopath:-$HOME/go}
gobin=$(go env GOBIN 2>/dev/null || true)
gobin=${gobin:-${gopath%%:*}/bin}
target=$gobin/minio

if [[ -x "$target" ]]; then
	echo "$target"
	exit 0
fi
if onpath=$(command -v minio 2>/dev/null); then
	echo "$onpath"
	exit 0
fi

echo "install-minio: building $MINIO_MODULE@$MINIO_VERSION into $gobin (takes about 6 minutes, once)" >&2
go install "$MINIO_MODULE@$MINIO_VERSION"
if [[ ! -x "$target" ]]; then
	echo "install-minio: go install finished but $target is missing" >&2
	exit 1
fi
echo "$target"
