#!/usr/bin/env bash
# Renders systemd/ferry.service as `make install` would (ExecStart pointing at
# this checkout's bin/ferry) and runs systemd-analyze verify on it. Installs
# Debian's systemd package first when systemd-analyze is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v systemd-analyze >/dev/null; then
  echo "installing systemd (for systemd-analyze)..." >&2
  apt-get update -qq && apt-get install -y -qq systemd >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|@BINDIR@|$PWD/bin|g" -e "s|@SYSCONFDIR@|/etc|g" -e "s|@DOCDIR@|$PWD|g" \
  systemd/ferry.service > "$tmp/ferry.service"
out=$(systemd-analyze verify "$tmp/ferry.service" 2>&1 || true)
# systemd-analyze also reports on unrelated units of the host; keep ours.
ours=$(printf '%s\n' "$out" | grep -F 'ferry.service' || true)
if [ -n "$ours" ]; then
  printf '%s\n' "$ours" >&2
  echo "systemd-analyze verify: problems in ferry.service" >&2
  exit 1
fi
echo "systemd-analyze verify: ferry.service is clean"
