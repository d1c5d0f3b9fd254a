#!/usr/bin/env bash
# The quick start: builds ferry, makes sample files under /tmp/ferry-quickstart
# and runs the plans of examples/quickstart.toml on them, showing the jobs and
# their file lists. Local directories only; no cloud account needed.
set -euo pipefail
cd "$(dirname "$0")/.."

root=/tmp/ferry-quickstart
ferry() { bin/ferry --config examples/quickstart.toml "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

make -s build
rm -rf "$root"
mkdir -p "$root/src" "$root/dst/live" "$root/dst/scheduled"

step "Making sample files in $root/src"
for d in docs photos/2026/11 photos/2026/10 projects/ferry/src .cache; do mkdir -p "$root/src/$d"; done
for i in $(seq 1 40); do echo "note $i" > "$root/src/docs/note-$i.txt"; done
for i in $(seq 1 30); do head -c $((20000 + i * 997)) /dev/urandom > "$root/src/photos/2026/11/img-$i.jpg"; done
for i in $(seq 1 30); do head -c $((15000 + i * 331)) /dev/urandom > "$root/src/photos/2026/10/img-$i.jpg"; done
for i in $(seq 1 20); do echo "package main // $i" > "$root/src/projects/ferry/src/f$i.go"; done
echo "scratch" > "$root/src/docs/draft.tmp"
echo "cached" > "$root/src/.cache/blob"
head -c $((24 * 1024 * 1024)) /dev/urandom > "$root/src/projects/disk.img"
echo "made $(find "$root/src" -type f | wc -l) files"

step "ferry config check"
ferry config check

step "ferry plan run every-15m   (first run: copies everything but *.tmp and .cache)"
ferry plan run every-15m

step "Changing one file, adding one, then running again"
echo "note 1, edited" > "$root/src/docs/note-1.txt"
echo "new" > "$root/src/docs/new.txt"
ferry plan run every-15m || true   # conflict = skip: the edited file is skipped, not overwritten

step "ferry job list"
ferry job list
job=$(ferry job list --plan every-15m --limit 1 | awk 'NR==2 {print $1}')

step "ferry job files $job --list skipped"
ferry job files "$job" --list skipped

step "ferry plan run live   (conflict = update: overwrites what changed)"
ferry plan run live
job=$(ferry job list --plan live --limit 1 | awk 'NR==2 {print $1}')
step "ferry job files $job --list success   (first lines)"
ferry job files "$job" --list success > "$root/success.csv"
head -5 "$root/success.csv"

if [ -n "${DEMO_NO_DAEMON:-}" ]; then
  echo; echo "Done. The copies are in $root/dst."
  exit 0
fi

step "Starting the daemon in the foreground (Ctrl-C stops it)"
cat <<EOT
It watches $root/src for the "live" plan and runs "every-15m" on its schedule.
Try, in another terminal:
  echo hello > $root/src/docs/hello.txt      # synced to $root/dst/live about 10 s later
  bin/ferry --config examples/quickstart.toml status
  bin/ferry --config examples/quickstart.toml plan run every-15m --wait
  bin/ferry --config examples/quickstart.toml job list
EOT
exec bin/ferry --config examples/quickstart.toml daemon
