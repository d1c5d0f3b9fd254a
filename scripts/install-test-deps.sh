#!/usr/bin/env bash
# Installs the system packages the tests use, from Debian, when missing:
# fuse3 (fusermount3, for the FUSE mount tests), rsync (a mount test
# copies with it) and util-linux (setpriv). Idempotent; needs root (or
# sudo) only when installing.
set -euo pipefail
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v rsync >/dev/null || need+=(rsync)
# setpriv: as root, the tests of unreadable directories run without the
# capability that lets root read them (internal/testenv.Unprivileged).
command -v setpriv >/dev/null || need+=(util-linux)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]} (test dependencies)..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
