#!/usr/bin/env bash
# Installs the system packages the tests use, from Debian, when missing:
# fuse3 (fusermount3, for the FUSE mount tests) and rsync (a mount test
# copies with it). Idempotent; needs root (or sudo) only when installing.
set -euo pipefail
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v rsync >/dev/null || need+=(rsync)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]} (test dependencies)..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
