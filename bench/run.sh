#!/usr/bin/env bash
# bench/run.sh [SCENARIO...]: Ferry against its peers, side by side in the
# same run, on MinIO servers on this machine (`make bench`). What each
# scenario and column means is in bench/RESULTS.md, where every run appends
# its tables.
#
#   (a) first sync of 10,000 small files      Ferry, rclone copy, bare PUT loop
#   (b) the same sync again, nothing changed   Ferry, rclone copy
#   (c) one 1 GiB file                         Ferry, rclone copy, bare PUT loop
#   (d) 100 changed among 100,000 synced files Ferry changelist / watcher / scan, rclone copy
#   (e) backup 10,000 files / 1 GiB, 1% change Ferry vault, restic; replication: Ferry, rclone sync
#   (f) FUSE: read 1 GiB, ls -l 10,000, cp -r  Ferry vault and remote mounts, direct GET, rclone mount
#
# Scenarios are chosen by the arguments (`bench/run.sh d e`) or BENCH_ONLY
# ("d e"); without either, all of them run (about 17 minutes on 2 CPUs).
#
# Installs what it needs when missing (rclone, restic, fuse3 and GNU time from
# Debian, MinIO through scripts/install-minio.sh), builds bin/ferry and
# bench/putloop, and leaves nothing behind: servers, daemons and mounts are
# stopped, and their data lives in a temp directory that is removed at exit.
#
# Environment:
#   BENCH_ONLY      scenarios to run, e.g. "a b c" (default: all)
#   BENCH_WORKERS   concurrency given to every tool (default 8)
#   BENCH_REPEAT    runs of each measurement; the best is reported (default 3;
#                   (d) does at most 2, (e) 1: its runs build on each other)
#   BENCH_RESULTS   file the tables are appended to (default bench/RESULTS.md;
#                   "-" appends nowhere)
#   BENCH_QUICK=1   tiny data sets, to check the script itself; appends nowhere
#   BENCH_KEEP=1    keep the temp directory (servers stopped) for inspection
#   FERRY_MINIO_BIN MinIO server binary to use (see scripts/install-minio.sh)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
repo=$PWD
started_at=$(date +%s)

N=${BENCH_WORKERS:-8}
REPS=${BENCH_REPEAT:-3}
RESULTS=${BENCH_RESULTS:-bench/RESULTS.md}
QUICK=${BENCH_QUICK:-}
MIB=$((1024 * 1024))
GIB=$((1024 * MIB))

# (a) (b): small files; (c): one large file.
SMALL_DIRS=100 SMALL_FILES=100 SMALL_SIZE=4096
LARGE_BYTES=$GIB
PART_MIB=16 # Ferry's default part_size; rclone and the loop are given the same
# (d): D_DIRS × D_PER_DIR files of D_SIZE bytes, D_CHANGED of them changed.
D_DIRS=1000 D_PER_DIR=100 D_SIZE=100 D_CHANGED=100
D_WATCH_DELAY=100ms
D_SETUP_WORKERS=32
# (e): E_SMALL_DIRS × 10 small files of 4 KiB plus E_BIG files, E_TOTAL bytes.
E_SMALL_DIRS=999 E_SMALL_SIZE=4096 E_BIG=10 E_TOTAL=$GIB
# (f): a file of F_BYTES, a directory of F_LS entries, F_CP_DIRS × F_CP_FILES
# files of 4 KiB to copy.
F_BYTES=$GIB F_LS=10000 F_CP_DIRS=10 F_CP_FILES=100 F_CP_SIZE=4096
if [[ $QUICK == 1 ]]; then
	RESULTS=-
	SMALL_DIRS=10 SMALL_FILES=20 LARGE_BYTES=$((64 * MIB))
	D_DIRS=100 D_PER_DIR=10
	E_SMALL_DIRS=99 E_TOTAL=$((48 * MIB))
	F_BYTES=$((64 * MIB)) F_LS=500 F_CP_DIRS=5 F_CP_FILES=20
fi
SMALL_COUNT=$((SMALL_DIRS * SMALL_FILES))
D_FILES=$((D_DIRS * D_PER_DIR))
D_REPS=$((REPS < 2 ? REPS : 2))
E_SMALL=$((E_SMALL_DIRS * 10))
E_BIG_SIZE=$(((E_TOTAL - E_SMALL * E_SMALL_SIZE) / E_BIG))
E_TOTAL=$((E_SMALL * E_SMALL_SIZE + E_BIG * E_BIG_SIZE)) # exactly what is made
E_CHANGE_SMALL=$((E_SMALL / 100))
E_CHANGE_BIG=$((E_TOTAL / 100 - E_CHANGE_SMALL * E_SMALL_SIZE)) # bytes changed in one big file
F_CP_COUNT=$((F_CP_DIRS * F_CP_FILES))

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ------------------------------------------------------------ selection --

ALL_SCENARIOS=(a b c d e f)
want=()
if (($# > 0)); then
	want=("$@")
elif [[ -n ${BENCH_ONLY:-} ]]; then
	read -ra want <<<"$BENCH_ONLY"
fi
((${#want[@]} > 0)) || want=("${ALL_SCENARIOS[@]}")
for s in "${want[@]}"; do
	[[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario \"$s\" (valid: ${ALL_SCENARIOS[*]})"
done
SCENARIOS=()
for s in "${ALL_SCENARIOS[@]}"; do
	[[ " ${want[*]} " == *" $s "* ]] && SCENARIOS+=("$s")
done
selected() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------- tools --

apt_install() {
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	say "installing $* (apt-get)"
	if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; then
		"${sudo[@]}" apt-get update -q >/dev/null
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
	fi
}

command -v go >/dev/null || die "go is not on PATH"
[[ -x /usr/bin/time ]] || apt_install time
command -v rclone >/dev/null || apt_install rclone
command -v jq >/dev/null || apt_install jq
if selected e; then command -v restic >/dev/null || apt_install restic; fi
if selected f; then command -v fusermount3 >/dev/null || apt_install fuse3; fi
minio_bin=$(scripts/install-minio.sh)

say "scenarios: ${SCENARIOS[*]}; building bin/ferry and bench/putloop"
make -s build
# What was built: the tree may change while the benchmark runs.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- . ':(exclude)bench' ':(exclude)Makefile' 2>/dev/null) ]]; then
	commit+=" + uncommitted changes"
elif [[ -n $(git status --porcelain 2>/dev/null) ]]; then
	commit+=" + uncommitted changes to bench/ only"
fi
started=$(date -u '+%Y-%m-%d %H:%M UTC')
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
mkdir -p "$tmp/out" "$tmp/pids"
: >"$tmp/mounts"
minio_pids=()

# Processes started for a scenario (daemons, mounts) are registered as
# $tmp/pids/PID and unregistered when they have been stopped; mount points
# are listed in $tmp/mounts. release() stops whatever is still registered.
is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }
register() { echo "$2" >"$tmp/pids/$1"; }
ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$tmp"; }
# wait_exit PID SECONDS: wait for a child to exit; 1 when it did not.
wait_exit() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	return 1
}
# stop PID: SIGTERM, then SIGKILL after 30 s; only a process of this run.
stop() {
	local pid=$1
	if ours "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_exit "$pid" 30; then
			echo "bench: $(cat "$tmp/pids/$pid" 2>/dev/null) (pid $pid) did not stop in 30 s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			wait_exit "$pid" 10 || true
		fi
	fi
	rm -f "$tmp/pids/$pid"
}
unmount() {
	is_mounted "$1" || return 0
	fusermount3 -u "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
}
release() {
	local m f
	while read -r m; do unmount "$m"; done <"$tmp/mounts"
	for f in "$tmp"/pids/*; do
		[[ -e $f ]] && stop "${f##*/}"
	done
	while read -r m; do unmount "$m"; done <"$tmp/mounts"
}
cleanup() {
	release
	local p
	for p in "${minio_pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if grep -qF " $tmp/" /proc/mounts; then
		echo "bench: something is still mounted under $tmp; leaving the directory" >&2
	elif [[ ${BENCH_KEEP:-} == 1 ]]; then
		echo "bench: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
go build -o "$tmp/putloop" ./bench/putloop
putloop=$tmp/putloop
ferry_bin=$repo/bin/ferry

# -------------------------------------------------------------- servers --

access=benchadmin
secret=bench-$RANDOM$RANDOM$RANDOM
export PUTLOOP_ACCESS_KEY=$access PUTLOOP_SECRET_KEY=$secret
declare -a EP
# start_minio I: a MinIO server with its data in $tmp/minioI; EP[I] is its
# HOST:PORT.
start_minio() {
	local i=$1 port cport
	port=$("$putloop" freeport)
	cport=$("$putloop" freeport)
	EP[i]=127.0.0.1:$port
	mkdir -p "$tmp/minio$i"
	say "starting MinIO $i on ${EP[i]}"
	env MINIO_ROOT_USER=$access MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=on \
		"$minio_bin" server --quiet --address "${EP[i]}" --console-address "127.0.0.1:$cport" "$tmp/minio$i" \
		>"$tmp/minio$i.log" 2>&1 &
	minio_pids+=($!)
	"$putloop" wait -endpoint "${EP[i]}" -timeout 60s || { tail -20 "$tmp/minio$i.log" >&2; die "MinIO $i did not start"; }
}
start_minio 1
endpoint=${EP[1]}
if selected e; then start_minio 2; fi
"$putloop" mb -endpoint "$endpoint" ferry-small rclone-small putloop-small ferry-large rclone-large putloop-large \
	ferry-d ferry-vault restic-repo f-data f-vault f-cp-ferry f-cp-rclone f-cp-rclone5
if selected e; then "$putloop" mb -endpoint "${EP[2]}" ferry-rep rclone-rep; fi

# rclone: remotes "bench" (and "bench2", the second server) from environment
# variables, no config file. rclone's S3 backend fails to load a custom CA
# bundle named by AWS_CA_BUNDLE (LoadCustomCABundleError) even for plain
# http, so it is unset; nothing here uses TLS.
unset AWS_CA_BUNDLE
: >"$tmp/rclone.conf"
export RCLONE_CONFIG=$tmp/rclone.conf \
	RCLONE_CONFIG_BENCH_TYPE=s3 \
	RCLONE_CONFIG_BENCH_PROVIDER=Minio \
	RCLONE_CONFIG_BENCH_ENDPOINT=http://$endpoint \
	RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$access \
	RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$secret \
	RCLONE_CONFIG_BENCH_REGION=us-east-1
if selected e; then
	export RCLONE_CONFIG_BENCH2_TYPE=s3 \
		RCLONE_CONFIG_BENCH2_PROVIDER=Minio \
		RCLONE_CONFIG_BENCH2_ENDPOINT=http://${EP[2]} \
		RCLONE_CONFIG_BENCH2_ACCESS_KEY_ID=$access \
		RCLONE_CONFIG_BENCH2_SECRET_ACCESS_KEY=$secret \
		RCLONE_CONFIG_BENCH2_REGION=us-east-1
fi

# Ferry: one s3 remote per bucket. The second server stands for another
# cloud: its credential has another account. The file holds an inline
# secret, so it is private to its owner.
s3remote() { # NAME BUCKET [CREDENTIAL [ENDPOINT]]
	cat <<EOF

[remotes.$1]
type       = "s3"
endpoint   = "${4:-$endpoint}"
bucket     = "$2"
region     = "us-east-1"
tls        = false
credential = "${3:-bench}"
EOF
}
# ferry_config FILE STATE_DIR: the common part of every configuration.
ferry_config() {
	(
		umask 077
		{
			cat <<EOF
state_dir = "$2"
socket    = "$2.sock"

[credentials.bench]
access_key = "$access"
secret_key = "$secret"
account    = "cloud-one"
EOF
			s3remote small ferry-small
			s3remote large ferry-large
			s3remote dsmall ferry-d
			s3remote vault1 ferry-vault
			s3remote fdata f-data
			s3remote fvault f-vault
			s3remote fcp f-cp-ferry
			if selected e; then
				cat <<EOF

[credentials.bench2]
access_key = "$access"
secret_key = "$secret"
account    = "cloud-two"
EOF
				s3remote vault2 ferry-rep bench2 "${EP[2]}"
			fi
			cat <<EOF

[vaults.main]
remote = "vault1"

[vaults.fvault]
remote = "fvault"
EOF
			if selected e; then
				cat <<EOF

[vaults.offsite]
remote = "vault2"
kind   = "replication"
EOF
			fi
		} >"$1"
	)
	chmod 600 "$1"
}
cfg=$tmp/ferry.toml
ferry_config "$cfg" "$tmp/state"
ferry() { "$ferry_bin" --config "$cfg" "$@"; }

# ------------------------------------------------------------ measuring --

# measure NAME CMD...: runs CMD under GNU time, keeping the best (lowest)
# wall time and the highest peak RSS over repeats under NAME, in the
# caller's WALL, RSS and ALL (declare -A them in the scenario).
measure() {
	local name=$1
	shift
	local out=$tmp/run.$name
	local t0 t1 wall rss cpu
	t0=$(date +%s%N)
	if ! /usr/bin/time -v -o "$out.time" "$@" >"$out.out" 2>"$out.err"; then
		echo "bench: $name failed: $*" >&2
		tail -20 "$out.err" "$out.out" "$out.time" >&2
		exit 1
	fi
	t1=$(date +%s%N)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$out.time")
	cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' "$out.time")
	printf '   %-18s %8.3f s wall  %6.2f s CPU  %6.1f MiB peak\n' "$name" "$wall" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" >&2
	keep "$name" "$wall" "$wall ($cpu)"
	if [[ -z ${RSS[$name]:-} ]] || ((rss > RSS[$name])); then
		RSS[$name]=$rss
	fi
}
# keep NAME WALL [NOTE]: record a wall time measured some other way.
keep() {
	if [[ -z ${WALL[$1]:-} ]] || awk -v a="$2" -v b="${WALL[$1]}" 'BEGIN { exit !(a < b) }'; then
		WALL[$1]=$2
	fi
	ALL[$1]="${ALL[$1]:-}${ALL[$1]:+, }${3:-$2}"
}
# since T0 [T1]: seconds from T0 to T1 (default now), both in Unix nanoseconds.
since() { awk -v a="$1" -v b="${2:-$(date +%s%N)}" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# expect BUCKET PREFIX COUNT BYTES [ENDPOINT]: the run really stored what it should.
expect() {
	local got
	got=$("$putloop" count -endpoint "${5:-$endpoint}" -bucket "$1" -prefix "$2")
	[[ $got == "$3 $4" ]] || die "$1/$2 holds $got (objects bytes), want $3 $4"
}
# bucket_bytes BUCKET [PREFIX [ENDPOINT]]: "objects bytes" stored there now.
bucket_bytes() { "$putloop" count -endpoint "${3:-$endpoint}" -bucket "$1" -prefix "${2:-}"; }

# counter FILE FIELD: a counter of a Ferry job summary (--json).
counter() { jq -r ".counters.$2 // 0" "$1"; }

num() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
mib() { num "$1 / 1024" 0; }
mb() { num "$1 / 1e6" 1; }
goal() { awk "BEGIN { exit !($1) }" && echo MET || echo MISSED; }
every_run() { # NAMES...: the "every run" lines of a table
	echo
	echo "Every run, wall seconds (CPU seconds of the tool, user + system, where measured):"
	local k
	for k in "$@"; do
		[[ -n ${ALL[$k]:-} ]] && echo "- $k: ${ALL[$k]}"
	done
	return 0
}
loadline() { echo "Load average at the start of ($1): $2; at its end: $(loadavg)."; }

# -------------------------------------------------------------- daemons --

# daemon_start CFG: start `ferry daemon` and wait until it answers.
daemon_start() {
	"$ferry_bin" --config "$1" daemon >>"$tmp/daemon.log" 2>&1 &
	daemon_pid=$!
	register "$daemon_pid" "ferry daemon"
	local i
	for ((i = 0; i < 600; i++)); do
		"$ferry_bin" --config "$1" status >/dev/null 2>&1 && return 0
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -20 "$tmp/daemon.log" >&2
	die "ferry daemon did not come up"
}
daemon_stop() { stop "$daemon_pid"; }

# ---------------------------------------------------------------- mounts --

# wait_mounted MNT PID LOG: until MNT is a mount (30 s), or PID died.
wait_mounted() {
	local i
	for ((i = 0; i < 300; i++)); do
		is_mounted "$1" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	tail -20 "$3" >&2
	die "mount on $1 did not come up"
}
# mount_ferry MNT CFG remote|vault WHAT: a foreground `ferry mount` in the
# background; mount_pid is its pid.
mount_ferry() {
	local mnt=$1 c=$2
	shift 2
	mkdir -p "$mnt"
	echo "$mnt" >>"$tmp/mounts"
	"$ferry_bin" --config "$c" mount "$@" "$mnt" >>"$tmp/mount.log" 2>&1 &
	mount_pid=$!
	register "$mount_pid" "ferry mount"
	wait_mounted "$mnt" "$mount_pid" "$tmp/mount.log"
}
# mount_rclone MNT REMOTE ARGS...
mount_rclone() {
	local mnt=$1 what=$2
	shift 2
	mkdir -p "$mnt"
	echo "$mnt" >>"$tmp/mounts"
	rclone mount "$what" "$mnt" "$@" >>"$tmp/rclone-mount.log" 2>&1 &
	mount_pid=$!
	register "$mount_pid" "rclone mount"
	wait_mounted "$mnt" "$mount_pid" "$tmp/rclone-mount.log"
}
# mount_peak NAME: keep the peak RSS of the mount's process (VmHWM) in
# RSS[NAME].
mount_peak() {
	local kb
	kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$mount_pid/status" 2>/dev/null || echo 0)
	if [[ -z ${RSS[$1]:-} ]] || ((kb > RSS[$1])); then
		RSS[$1]=$kb
	fi
}
# umount_pid MNT PID: stop the mount's process (both unmount on SIGTERM),
# then make sure nothing is left mounted.
umount_pid() {
	stop "$2"
	unmount "$1"
	! is_mounted "$1" || die "$1 is still mounted"
}

# ----------------------------------------------------------------- data --

ensure_small() {
	[[ -d $tmp/src-small ]] && return
	say "making $SMALL_COUNT files of $SMALL_SIZE bytes"
	"$putloop" gen -dir "$tmp/src-small" -dirs $SMALL_DIRS -files $SMALL_FILES -size $SMALL_SIZE
}
ensure_large() {
	[[ -f $tmp/src-large/big.bin ]] && return
	say "making one file of $((LARGE_BYTES / MIB)) MiB"
	mkdir -p "$tmp/src-large"
	head -c $LARGE_BYTES /dev/urandom >"$tmp/src-large/big.bin"
	sync
}

# ===================================================== (a) (b) (c): sync ==

scenario_a() {
	declare -A WALL RSS ALL
	local load0 rep p tool order small_bytes=$((SMALL_COUNT * SMALL_SIZE))
	ensure_small
	load0=$(loadavg)
	for rep in $(seq 1 "$REPS"); do
		say "(a) first sync of $SMALL_COUNT small files, run $rep of $REPS"
		p=r$rep
		# Alternate the order so no tool always runs on a warmer (or busier) server.
		order=(putloop ferry rclone)
		((rep % 2 == 0)) && order=(rclone ferry putloop)
		for tool in "${order[@]}"; do
			case $tool in
			putloop) measure a.putloop "$putloop" put -endpoint "$endpoint" -bucket putloop-small -prefix "$p/" -dir "$tmp/src-small" -concurrency "$N"
				expect putloop-small "$p/" $SMALL_COUNT $small_bytes ;;
			ferry) measure a.ferry "$ferry_bin" --config "$cfg" --json sync "$tmp/src-small" "small:$p" --workers "$N"
				[[ $(counter "$tmp/run.a.ferry.out" files_transferred) == "$SMALL_COUNT" ]] || die "ferry did not transfer $SMALL_COUNT files"
				expect ferry-small "$p/" $SMALL_COUNT $small_bytes ;;
			rclone) measure a.rclone rclone copy "$tmp/src-small" "bench:rclone-small/$p" --transfers "$N" --checkers "$N"
				expect rclone-small "$p/" $SMALL_COUNT $small_bytes ;;
			esac
		done
	done
	touch "$tmp/a.done"
	local f r l fl fr
	f=$(num "$SMALL_COUNT / ${WALL[a.ferry]}" 0)
	r=$(num "$SMALL_COUNT / ${WALL[a.rclone]}" 0)
	l=$(num "$SMALL_COUNT / ${WALL[a.putloop]}" 0)
	fl=$(num "$f / $l")
	fr=$(num "$f / $r")
	echo "| (a) first sync, $SMALL_COUNT × $((SMALL_SIZE / 1024)) KiB | files/s | $f | $r | $l | $fl | $fr | Ferry/limit ≥ 0.9 | $(goal "$fl >= 0.9") |" >"$tmp/out/a.rows"
	echo "| peak memory (a) | MiB | $(mib "${RSS[a.ferry]}") | $(mib "${RSS[a.rclone]}") | $(mib "${RSS[a.putloop]}") | | | | |" >"$tmp/out/a.mem"
	every_run a.ferry a.rclone a.putloop | tail -n +3 >"$tmp/out/a.runs"
	loadline a "$load0" >"$tmp/out/a.load"
}

scenario_b() {
	declare -A WALL RSS ALL
	local load0 rep
	ensure_small
	if [[ ! -e $tmp/a.done ]]; then
		say "(b) setup: first sync of $SMALL_COUNT small files (not measured; (a) did not run)"
		ferry --json sync "$tmp/src-small" "small:r1" --workers "$N" >/dev/null
		rclone copy "$tmp/src-small" "bench:rclone-small/r1" --transfers "$N" --checkers "$N"
	fi
	load0=$(loadavg)
	for rep in $(seq 1 "$REPS"); do
		say "(b) re-run with nothing changed, run $rep of $REPS"
		measure b.ferry "$ferry_bin" --config "$cfg" --json sync "$tmp/src-small" "small:r1" --workers "$N"
		[[ $(counter "$tmp/run.b.ferry.out" files_transferred) == 0 ]] || die "ferry re-run transferred files"
		[[ $(counter "$tmp/run.b.ferry.out" files_unchanged) == "$SMALL_COUNT" ]] || die "ferry re-run did not find $SMALL_COUNT unchanged files"
		# The same with the destination listed (what a run does once its
		# recheck_destination, 24 h by default, has passed).
		measure b.ferrycheck "$ferry_bin" --config "$cfg" --json sync "$tmp/src-small" "small:r1" --workers "$N" --check-destination
		[[ $(counter "$tmp/run.b.ferrycheck.out" files_unchanged) == "$SMALL_COUNT" ]] || die "ferry re-run with --check-destination did not find $SMALL_COUNT unchanged files"
		measure b.rclone rclone copy "$tmp/src-small" "bench:rclone-small/r1" --transfers "$N" --checkers "$N" -v
		grep -Eq 'Transferred:[[:space:]]+0 B / 0 B' "$tmp/run.b.rclone.err" || { cat "$tmp/run.b.rclone.err" >&2; die "rclone re-run transferred data"; }
	done
	local rf rfc
	rf=$(num "${WALL[b.rclone]} / ${WALL[b.ferry]}" 1)
	rfc=$(num "${WALL[b.rclone]} / ${WALL[b.ferrycheck]}" 1)
	{
		echo "| (b) re-run, nothing changed | s | ${WALL[b.ferry]} | ${WALL[b.rclone]} | — | — | rclone/Ferry = $rf | rclone/Ferry ≥ 10 | $(goal "$rf >= 10") |"
		echo "| … Ferry listing the destination too (\`--check-destination\`) | s | ${WALL[b.ferrycheck]} | | — | — | rclone/Ferry = $rfc | | |"
	} >"$tmp/out/b.rows"
	echo "| peak memory (b) | MiB | $(mib "${RSS[b.ferry]}") | $(mib "${RSS[b.rclone]}") | — | | | | |" >"$tmp/out/b.mem"
	every_run b.ferry b.ferrycheck b.rclone | tail -n +3 >"$tmp/out/b.runs"
	loadline b "$load0" >"$tmp/out/b.load"
}

scenario_c() {
	declare -A WALL RSS ALL
	local load0 rep p tool order
	ensure_large
	load0=$(loadavg)
	for rep in $(seq 1 "$REPS"); do
		say "(c) one file of $((LARGE_BYTES / MIB)) MiB, run $rep of $REPS"
		p=r$rep
		order=(putloop ferry rclone)
		((rep % 2 == 0)) && order=(rclone ferry putloop)
		for tool in "${order[@]}"; do
			case $tool in
			putloop) measure c.putloop "$putloop" putfile -endpoint "$endpoint" -bucket putloop-large -key "$p/big.bin" -file "$tmp/src-large/big.bin" -part-size-mib $PART_MIB -concurrency "$N"
				expect putloop-large "$p/" 1 $LARGE_BYTES ;;
			ferry) measure c.ferry "$ferry_bin" --config "$cfg" --json sync "$tmp/src-large" "large:$p" --workers "$N"
				expect ferry-large "$p/" 1 $LARGE_BYTES ;;
			rclone) measure c.rclone rclone copy "$tmp/src-large" "bench:rclone-large/$p" --transfers "$N" --checkers "$N" \
				--s3-chunk-size ${PART_MIB}M --s3-upload-concurrency "$N"
				expect rclone-large "$p/" 1 $LARGE_BYTES ;;
			esac
		done
	done
	local f r l fl fr
	f=$(num "$LARGE_BYTES / 1e6 / ${WALL[c.ferry]}" 0)
	r=$(num "$LARGE_BYTES / 1e6 / ${WALL[c.rclone]}" 0)
	l=$(num "$LARGE_BYTES / 1e6 / ${WALL[c.putloop]}" 0)
	fl=$(num "$f / $l")
	fr=$(num "$f / $r")
	{
		echo "| (c) one $((LARGE_BYTES / MIB)) MiB file | MB/s | $f | $r | $l | $fl | $fr | Ferry/limit ≥ 0.9 | $(goal "$fl >= 0.9") |"
		echo "| | | | | | | | Ferry/rclone ≥ 1.5 | $(goal "$fr >= 1.5") |"
	} >"$tmp/out/c.rows"
	echo "| peak memory (c) | MiB | $(mib "${RSS[c.ferry]}") | $(mib "${RSS[c.rclone]}") | $(mib "${RSS[c.putloop]}") | | | | |" >"$tmp/out/c.mem"
	every_run c.ferry c.rclone c.putloop | tail -n +3 >"$tmp/out/c.runs"
	loadline c "$load0" >"$tmp/out/c.load"
}

# ================================= (d) a few changes among many files ==

scenario_d() {
	declare -A WALL RSS ALL
	local src=$tmp/d-src inbox=$tmp/d-inbox list=$tmp/d-changed.txt state=$tmp/d-state
	local load0 i rep t0 out order tool
	say "(d) making $D_FILES files of $D_SIZE bytes in $D_DIRS directories"
	"$putloop" gen -dir "$src" -dirs $D_DIRS -files $D_PER_DIR -size $D_SIZE
	# The changed files: one per directory, in the first directories.
	for ((i = 0; i < D_CHANGED; i++)); do
		printf 'd%03d/sub/f%04d.bin\n' $((i % D_DIRS)) $((i / D_DIRS))
	done >"$list"
	mkdir -p "$inbox"

	# One plan, "d", in three configurations that share its state (the file
	# index is the plan's): for the setup (more workers), with a changelist
	# inbox, and watched.
	local cfg_setup=$tmp/d-setup.toml cfg_cl=$tmp/d-changelist.toml cfg_w=$tmp/d-watch.toml
	dplan() { # FILE WORKERS EXTRA...
		local file=$1 workers=$2
		shift 2
		ferry_config "$file" "$state"
		{
			cat <<EOF

[[plans]]
name        = "d"
source      = "$src"
destination = "dsmall:"
workers     = $workers
EOF
			printf '%s\n' "$@"
		} >>"$file"
	}
	dplan "$cfg_setup" $D_SETUP_WORKERS
	dplan "$cfg_cl" "$N" "changelist  = \"$inbox\""
	dplan "$cfg_w" "$N" "watch       = true" "watch_delay = \"$D_WATCH_DELAY\""

	say "(d) setup (not measured): Ferry copies the $D_FILES files to the bucket"
	t0=$(date +%s%N)
	"$ferry_bin" --config "$cfg_setup" --json plan run d >"$tmp/d.setup.ferry" 2>"$tmp/d.setup.ferry.err" ||
		{ tail "$tmp/d.setup.ferry.err" >&2; die "(d) setup: ferry plan run failed"; }
	local setup
	setup=$(since "$t0")
	[[ $(counter "$tmp/d.setup.ferry" files_transferred) == "$D_FILES" ]] || die "(d) setup: ferry did not transfer $D_FILES files"
	expect ferry-d "" $D_FILES $((D_FILES * D_SIZE))
	say "(d) setup took $setup s"

	load0=$(loadavg)
	# check_job OUT: waitjob's line says every job completed with the
	# changed files; sets job_created (the first) and job_ended (the last).
	check_job() {
		local jobs files ids sts
		read -r jobs files job_ended ids sts job_created <<<"$1"
		[[ $sts =~ ^(completed,?)+$ ]] || die "(d) jobs $ids ended $sts"
		[[ $files == "$D_CHANGED" ]] || die "(d) jobs $ids transferred $files files, want $D_CHANGED"
		echo "   jobs $ids: $files files" >&2
	}

	say "(d) Ferry via a changelist: drop a list of the $D_CHANGED changed paths into the inbox"
	daemon_start "$cfg_cl"
	sleep 2 # the inbox's watch is set up
	for rep in $(seq 1 "$D_REPS"); do
		"$putloop" modify -root "$src" -list "$list" >/dev/null
		# Each list's rows start elsewhere, so no list is a duplicate of another.
		{ tail -n +"$rep" "$list"; head -n $((rep - 1)) "$list"; } >"$inbox/.list$rep.tmp"
		t0=$(date +%s%N)
		mv "$inbox/.list$rep.tmp" "$inbox/list$rep.csv"
		out=$("$putloop" waitjob -ferry "$ferry_bin" -config "$cfg_cl" -plan d -since "$t0" -files $D_CHANGED -timeout 5m)
		check_job "$out"
		keep d.changelist "$(since "$t0" "$job_ended")"
		keep d.changelist.wait "$(since "$t0" "$job_created")"
		keep d.changelist.job "$(since "$job_created" "$job_ended")"
		echo "   d.changelist ${ALL[d.changelist]##*, } s (drop → job created ${ALL[d.changelist.wait]##*, } s)" >&2
		for ((i = 0; i < 100; i++)); do
			[[ -e $inbox/done/list$rep.csv ]] && break
			sleep 0.1
		done
		[[ -e $inbox/done/list$rep.csv ]] || die "(d) list$rep.csv did not reach done/"
	done
	daemon_stop

	say "(d) Ferry via the watcher (watch_delay $D_WATCH_DELAY): change the files, wait for the job"
	t0=$(date +%s%N)
	daemon_start "$cfg_w"
	# Watching starts with a full scan (changes made while nothing watched).
	out=$("$putloop" waitjob -ferry "$ferry_bin" -config "$cfg_w" -plan d -since "$t0" -files 0 -timeout 10m)
	local startscan
	startscan=$(since "$t0" "$(awk '{ print $3 }' <<<"$out")")
	echo "   start-up scan done: $out ($startscan s after the daemon started)" >&2
	sleep 2
	for rep in $(seq 1 "$D_REPS"); do
		t0=$("$putloop" modify -root "$src" -list "$list")
		out=$("$putloop" waitjob -ferry "$ferry_bin" -config "$cfg_w" -plan d -since "$t0" -files $D_CHANGED -timeout 5m)
		check_job "$out"
		keep d.watch "$(since "$t0" "$job_ended")"
		keep d.watch.wait "$(since "$t0" "$job_created")"
		keep d.watch.job "$(since "$job_created" "$job_ended")"
		echo "   d.watch ${ALL[d.watch]##*, } s (last write → job created ${ALL[d.watch.wait]##*, } s)" >&2
		sleep 2
	done
	daemon_stop

	# rclone compares against the same bucket: Ferry writes the mtime as
	# rclone does (x-amz-meta-mtime), so rclone finds the files Ferry copied
	# unchanged. Every run is preceded by a change of the same files, so each
	# finds exactly them changed: rclone against the bucket, Ferry against
	# its index.
	say "(d) full scan with the state index (ferry plan run) against rclone copy"
	for rep in $(seq 1 "$D_REPS"); do
		order=(ferry ferrycheck rclone)
		((rep % 2 == 0)) && order=(rclone ferrycheck ferry)
		for tool in "${order[@]}"; do
			"$putloop" modify -root "$src" -list "$list" >/dev/null
			case $tool in
			ferry) measure d.scan "$ferry_bin" --config "$cfg_cl" --json plan run d
				[[ $(counter "$tmp/run.d.scan.out" files_transferred) == "$D_CHANGED" ]] || die "(d) scan did not transfer $D_CHANGED files"
				[[ $(counter "$tmp/run.d.scan.out" files_unchanged) == $((D_FILES - D_CHANGED)) ]] || die "(d) scan did not find $((D_FILES - D_CHANGED)) unchanged files" ;;
			ferrycheck) measure d.scancheck "$ferry_bin" --config "$cfg_cl" --json plan run d --check-destination
				[[ $(counter "$tmp/run.d.scancheck.out" files_transferred) == "$D_CHANGED" ]] || die "(d) scan with --check-destination did not transfer $D_CHANGED files"
				[[ $(counter "$tmp/run.d.scancheck.out" files_unchanged) == $((D_FILES - D_CHANGED)) ]] || die "(d) scan with --check-destination did not find $((D_FILES - D_CHANGED)) unchanged files" ;;
			rclone) measure d.rclone rclone copy "$src" bench:ferry-d --transfers "$N" --checkers "$N" -v
				grep -Eq "Transferred:[[:space:]]+$D_CHANGED / $D_CHANGED, 100%" "$tmp/run.d.rclone.err" || { tail -5 "$tmp/run.d.rclone.err" >&2; die "(d) rclone did not transfer $D_CHANGED files"; }
				grep -Eq "Checks:[[:space:]]+$D_FILES / $D_FILES, 100%" "$tmp/run.d.rclone.err" || { tail -5 "$tmp/run.d.rclone.err" >&2; die "(d) rclone did not check $D_FILES files"; }
				! grep -q "Updated modification time" "$tmp/run.d.rclone.err" || die "(d) rclone rewrote modification times" ;;
			esac
		done
	done
	expect ferry-d "" $D_FILES $((D_FILES * D_SIZE))

	local r=${WALL[d.rclone]} cl=${WALL[d.changelist]} w=${WALL[d.watch]} s=${WALL[d.scan]} sc=${WALL[d.scancheck]}
	local rcl rw rs rsc
	rcl=$(num "$r / $cl" 1)
	rw=$(num "$r / $w" 1)
	rs=$(num "$r / $s" 1)
	rsc=$(num "$r / $sc" 1)
	{
		echo
		echo "### (d) $D_CHANGED changed files among $D_FILES already synced"
		echo
		echo "$D_FILES files of $D_SIZE bytes in $D_DIRS directories (\`dNNN/sub/fNNNN.bin\`), copied to bucket \`ferry-d\` by"
		echo "Ferry (\`ferry plan run d\`, $D_SETUP_WORKERS workers, $setup s; setup, not measured). All Ferry runs are one plan"
		echo "\`d\` (source the tree, destination the bucket, $N workers), so they share its state index; the"
		echo "daemon and the in-process runs take turns, never at once. rclone copies into the same bucket:"
		echo "Ferry records the mtime as rclone does (\`x-amz-meta-mtime\`), so rclone finds the files Ferry"
		echo "copied unchanged (each rclone run is checked: exactly $D_CHANGED transferred, all $D_FILES checked, no"
		echo "modification time rewritten); one shared copy halves the setup, and rclone's work per file (a"
		echo "HEAD for the mtime) is what it would be in a bucket of its own. Before every measured run the same"
		echo "$D_CHANGED files (one in each of the first $D_CHANGED directories) get new random bytes in place, so each run"
		echo "finds exactly those $D_CHANGED changed; every Ferry job is checked to have copied exactly them. Best of"
		echo "$D_REPS runs each."
		echo
		echo "| method | what is timed | wall s | rclone/method | goal | result |"
		echo "|---|---|--:|--:|---|---|"
		echo "| Ferry, changelist | \`mv\` of a CSV list of the $D_CHANGED paths into the plan's local inbox (\`ferry daemon\` running) → \`ended\` of the job it started (\`ferry job list --json\`) | $cl | $rcl | ≥ 100 | $(goal "$rcl >= 100") |"
		echo "| Ferry, watcher | close of the last changed file → \`ended\` of the job; \`watch = true\`, \`watch_delay = \"$D_WATCH_DELAY\"\` (included) | $w | $rw | ≥ 100 | $(goal "$rw >= 100") |"
		echo "| Ferry, full scan with the state index | \`ferry plan run d\` in-process (daemon stopped): process start → exit; the index is trusted (\`recheck_destination\` 24 h, the setup run listed the bucket) | $s | $rs | ≥ 10 | $(goal "$rs >= 10") |"
		echo "| Ferry, full scan listing the bucket too | \`ferry plan run d --check-destination\`: as the first scan after \`recheck_destination\` | $sc | $rsc | | |"
		echo "| rclone copy | \`rclone copy SRC bench:ferry-d --transfers $N --checkers $N\`: process start → exit | $r | 1.0 | | |"
		echo "| peak memory | MiB: Ferry scan $(mib "${RSS[d.scan]}"), with the listing $(mib "${RSS[d.scancheck]}"), rclone $(mib "${RSS[d.rclone]}") | | | | |"
		echo
		echo "Where the time of the daemon's runs goes (job \`created\` and \`ended\` as Ferry recorded them):"
		echo "changelist: drop → job created ${WALL[d.changelist.wait]} s, job created → ended ${WALL[d.changelist.job]} s (best runs);"
		echo "watcher: last write → job created ${WALL[d.watch.wait]} s, job created → ended ${WALL[d.watch.job]} s. The watcher's daemon"
		echo "starts with a full scan of the source (changes made while nothing watched are found that way); it"
		echo "ended $startscan s after the daemon was started."
		every_run d.changelist d.changelist.wait d.changelist.job d.watch d.watch.wait d.watch.job d.scan d.scancheck d.rclone
		echo
		loadline d "$load0"
	} >"$tmp/out/d.md"
}

# ============================================= (e) backup and replication ==

scenario_e() {
	declare -A WALL RSS ALL
	local src=$tmp/e-src load0 i list=$tmp/e-changed.txt
	say "(e) making $E_SMALL files of $E_SMALL_SIZE bytes and $E_BIG of $E_BIG_SIZE bytes ($E_TOTAL bytes)"
	"$putloop" gen -dir "$src" -dirs $E_SMALL_DIRS -files 10 -size $E_SMALL_SIZE
	mkdir -p "$src/big"
	for ((i = 0; i < E_BIG; i++)); do
		head -c $E_BIG_SIZE /dev/urandom >"$src/big/b$i.bin"
	done
	sync
	# 1% of the files change: E_CHANGE_SMALL small files whole, and
	# E_CHANGE_BIG bytes in the middle of one big file (1% of the bytes in all).
	for ((i = 0; i < E_CHANGE_SMALL; i++)); do
		printf 'd%03d/sub/f%04d.bin\n' $((i * E_SMALL_DIRS / E_CHANGE_SMALL)) $((i % 10))
	done >"$list"
	echo "big/b$((E_BIG / 2)).bin" >"$tmp/e-changed-big.txt"

	export AWS_ACCESS_KEY_ID=$access AWS_SECRET_ACCESS_KEY=$secret RESTIC_PASSWORD=bench-restic-password \
		RESTIC_CACHE_DIR=$tmp/restic-cache RESTIC_REPOSITORY=s3:http://$endpoint/restic-repo
	restic init >/dev/null 2>"$tmp/restic-init.err" || { cat "$tmp/restic-init.err" >&2; die "restic init failed"; }
	ferry vault init main >/dev/null
	ferry vault init offsite >/dev/null
	local restic_backup=(restic backup "$src" --host bench -o s3.connections="$N" --json)

	# up NAME BUCKET [PREFIX [ENDPOINT]]: objects and bytes added to BUCKET
	# since the last call with the same NAME.
	declare -A UPN UPB
	up() {
		local n b
		read -r n b <<<"$(bucket_bytes "$2" "${3:-}" "${4:-}")"
		UPN[$1]=$((n - ${PREVN[$1]:-0}))
		UPB[$1]=$((b - ${PREVB[$1]:-0}))
		PREVN[$1]=$n
		PREVB[$1]=$b
	}
	declare -A PREVN PREVB
	up f.all ferry-vault
	up f.data ferry-vault packs/
	up r.all restic-repo
	up rep.all ferry-rep "" "${EP[2]}"
	up rep.data ferry-rep packs/ "${EP[2]}"
	up rc.all rclone-rep "" "${EP[2]}"

	load0=$(loadavg)
	say "(e) full backup: restic, then Ferry"
	measure e.full.restic "${restic_backup[@]}"
	up r.all restic-repo
	local rfull_n=${UPN[r.all]} rfull_b=${UPB[r.all]}
	measure e.full.ferry "$ferry_bin" --config "$cfg" --json backup create --vault main "$src" --workers "$N"
	local id1
	id1=$(jq -r .id "$tmp/run.e.full.ferry.out")
	[[ $(jq -r .stats.files "$tmp/run.e.full.ferry.out") == $((E_SMALL + E_BIG)) ]] || die "(e) ferry backup did not back up $((E_SMALL + E_BIG)) files"
	up f.all ferry-vault
	up f.data ferry-vault packs/
	local ffull_n=${UPN[f.all]} ffull_b=${UPB[f.all]}

	say "(e) replication of the full backup to the second server: Ferry, then rclone sync of the vault"
	measure e.rep1.ferry "$ferry_bin" --config "$cfg" --json backup replicate "$id1" --to offsite --workers "$N"
	up rep.all ferry-rep "" "${EP[2]}"
	up rep.data ferry-rep packs/ "${EP[2]}"
	local rep1_n=${UPN[rep.all]} rep1_b=${UPB[rep.all]}
	measure e.rep1.rclone rclone sync bench:ferry-vault bench2:rclone-rep --transfers "$N" --checkers "$N"
	up rc.all rclone-rep "" "${EP[2]}"
	local rc1_n=${UPN[rc.all]} rc1_b=${UPB[rc.all]}

	say "(e) change 1%: $E_CHANGE_SMALL small files, $E_CHANGE_BIG bytes of one big file"
	"$putloop" modify -root "$src" -list "$list" >/dev/null
	"$putloop" modify -root "$src" -list "$tmp/e-changed-big.txt" -offset $((E_BIG_SIZE / 2)) -length $E_CHANGE_BIG >/dev/null

	say "(e) incremental backup: Ferry, then restic"
	measure e.incr.ferry "$ferry_bin" --config "$cfg" --json backup create --vault main "$src" --workers "$N"
	local id2
	id2=$(jq -r .id "$tmp/run.e.incr.ferry.out")
	up f.all ferry-vault
	up f.data ferry-vault packs/
	local fincr_n=${UPN[f.all]} fincr_b=${UPB[f.all]} fnew_n=${UPN[f.data]} fnew_b=${UPB[f.data]}
	measure e.incr.restic "${restic_backup[@]}"
	up r.all restic-repo
	local rincr_n=${UPN[r.all]} rincr_b=${UPB[r.all]}

	say "(e) replication of the incremental backup: rclone sync, then Ferry"
	measure e.rep2.rclone rclone sync bench:ferry-vault bench2:rclone-rep --transfers "$N" --checkers "$N"
	up rc.all rclone-rep "" "${EP[2]}"
	local rc2_n=${UPN[rc.all]} rc2_b=${UPB[rc.all]}
	measure e.rep2.ferry "$ferry_bin" --config "$cfg" --json backup replicate "$id2" --to offsite --workers "$N"
	up rep.all ferry-rep "" "${EP[2]}"
	up rep.data ferry-rep packs/ "${EP[2]}"
	local rep2_n=${UPN[rep.all]} rep2_b=${UPB[rep.all]} rep2d_n=${UPN[rep.data]} rep2d_b=${UPB[rep.data]}

	local s_full s_incr r_rep1 r_rep2
	s_full=$(num "${WALL[e.full.restic]} / ${WALL[e.full.ferry]}")
	s_incr=$(num "${WALL[e.incr.restic]} / ${WALL[e.incr.ferry]}")
	r_rep1=$(num "${WALL[e.rep1.rclone]} / ${WALL[e.rep1.ferry]}")
	r_rep2=$(num "${WALL[e.rep2.rclone]} / ${WALL[e.rep2.ferry]}")
	local only_new=MISSED
	((rep2d_n == fnew_n && rep2d_b == fnew_b)) && only_new=MET
	{
		echo
		echo "### (e) backup of $((E_SMALL + E_BIG)) files / $(num "$E_TOTAL / $GIB" 2) GiB, and replication to a second server"
		echo
		echo "$E_SMALL files of $E_SMALL_SIZE bytes in $E_SMALL_DIRS directories and $E_BIG files of $(num "$E_BIG_SIZE / $MIB" 1) MiB, random"
		echo "bytes ($E_TOTAL bytes). Ferry backs up into vault \`main\` on MinIO 1 (\`ferry backup create --workers $N\`);"
		echo "restic $(restic version | awk '{print $2}') into its repository on the same server (\`restic backup --host bench -o"
		echo "s3.connections=$N\`, its other settings default: compression auto, read concurrency 2). Then"
		echo "1% changes: $E_CHANGE_SMALL small files get new content and $(num "$E_CHANGE_BIG / $MIB" 1) MiB in the middle of one big file are"
		echo "overwritten ($E_CHANGE_SMALL + 1 files, $(num "($E_CHANGE_SMALL * $E_SMALL_SIZE + $E_CHANGE_BIG) * 100 / $E_TOTAL" 2)% of the bytes), and both"
		echo "back up again. **Bytes up** is what the bucket holds more afterwards (sum of object sizes"
		echo "from a listing): objects and bytes. One run each: every run builds on the one before."
		echo
		echo "| backup | Ferry s | restic s | restic/Ferry | Ferry up | restic up | goal | result |"
		echo "|---|--:|--:|--:|--:|--:|---|---|"
		echo "| full | ${WALL[e.full.ferry]} | ${WALL[e.full.restic]} | $s_full | $ffull_n obj, $(mb "$ffull_b") MB | $rfull_n obj, $(mb "$rfull_b") MB | restic/Ferry ≥ 1.5 | $(goal "$s_full >= 1.5") |"
		echo "| incremental, 1% changed | ${WALL[e.incr.ferry]} | ${WALL[e.incr.restic]} | $s_incr | $fincr_n obj, $(mb "$fincr_b") MB | $rincr_n obj, $(mb "$rincr_b") MB | restic/Ferry ≥ 1.5 | $(goal "$s_incr >= 1.5") |"
		echo "| peak memory, full | $(mib "${RSS[e.full.ferry]}") MiB | $(mib "${RSS[e.full.restic]}") MiB | | | | | |"
		echo
		echo "Replication to MinIO 2 (another \"cloud\": a credential with another account): Ferry"
		echo "\`ferry backup replicate ID --to offsite --workers $N\` (vault kind \`replication\`) against"
		echo "\`rclone sync bench:ferry-vault bench2:rclone-rep --transfers $N --checkers $N\` of the whole vault. **Bytes up**"
		echo "is what the destination bucket holds more afterwards."
		echo
		echo "| replication | Ferry s | rclone s | rclone/Ferry | Ferry up | rclone up | goal | result |"
		echo "|---|--:|--:|--:|--:|--:|---|---|"
		echo "| full backup | ${WALL[e.rep1.ferry]} | ${WALL[e.rep1.rclone]} | $r_rep1 | $rep1_n obj, $(mb "$rep1_b") MB | $rc1_n obj, $(mb "$rc1_b") MB | | |"
		echo "| incremental backup | ${WALL[e.rep2.ferry]} | ${WALL[e.rep2.rclone]} | $r_rep2 | $rep2_n obj, $(mb "$rep2_b") MB | $rc2_n obj, $(mb "$rc2_b") MB | only new chunks | $only_new |"
		echo
		echo "Only new chunks: the incremental backup stored $(jq -r .stats.new_chunks "$tmp/run.e.incr.ferry.out") new chunks"
		echo "($(jq -r .stats.new_bytes "$tmp/run.e.incr.ferry.out") bytes) in $fnew_n pack files ($fnew_b bytes) under \`packs/\` of vault \`main\`;"
		echo "replicating it added $rep2d_n pack files ($rep2d_b bytes) under \`packs/\` of \`offsite\`."
		every_run e.full.ferry e.full.restic e.incr.ferry e.incr.restic e.rep1.ferry e.rep1.rclone e.rep2.ferry e.rep2.rclone
		echo
		loadline e "$load0"
	} >"$tmp/out/e.md"
}

# ====================================================== (f) FUSE mounts ==

scenario_f() {
	declare -A WALL RSS ALL
	[[ -c /dev/fuse ]] || die "(f) needs /dev/fuse"
	local fcfg=$tmp/f.toml fstate=$tmp/f-state mnt=$tmp/mnt load0 rep i tool order
	ferry_config "$fcfg" "$fstate"
	local vault_ok=1
	"$ferry_bin" --config "$fcfg" mount vault --help >/dev/null 2>&1 || vault_ok=

	say "(f) setup (not measured): a $((F_BYTES / MIB)) MiB object, $F_LS objects under one prefix, a vault backup of the same file"
	mkdir -p "$tmp/f-big"
	head -c $F_BYTES /dev/urandom >"$tmp/f-big/big.bin"
	"$putloop" putfile -endpoint "$endpoint" -bucket f-data -key big.bin -file "$tmp/f-big/big.bin" -part-size-mib $PART_MIB -concurrency "$N" >/dev/null
	"$putloop" gen -dir "$tmp/f-ls" -dirs 1 -files $F_LS -size 100
	"$putloop" put -endpoint "$endpoint" -bucket f-data -prefix ls/ -dir "$tmp/f-ls" -concurrency "$N" >/dev/null
	local lsdir=ls/d000/sub
	"$putloop" gen -dir "$tmp/f-cp" -dirs $F_CP_DIRS -files $F_CP_FILES -size $F_CP_SIZE
	if [[ -n $vault_ok ]]; then
		"$ferry_bin" --config "$fcfg" vault init fvault >/dev/null
		"$ferry_bin" --config "$fcfg" --json backup create --vault fvault "$tmp/f-big" >/dev/null
	fi
	sync

	load0=$(loadavg)
	# Reads: every run on a fresh mount (the kernel's page cache of a FUSE
	# file goes with the mount) and, for Ferry, an empty cache directory.
	local big_dd=("bs=1M" "of=/dev/null")
	check_dd() { grep -q "^$F_BYTES bytes" "$tmp/run.$1.err" || { cat "$tmp/run.$1.err" >&2; die "(f) $1 did not read $F_BYTES bytes"; }; }
	for rep in $(seq 1 "$REPS"); do
		say "(f) sequential read of $((F_BYTES / MIB)) MiB, run $rep of $REPS"
		order=(get remote vault rclone)
		((rep % 2 == 0)) && order=(rclone vault remote get)
		for tool in "${order[@]}"; do
			case $tool in
			get) measure f.read.get "$putloop" get -endpoint "$endpoint" -bucket f-data -key big.bin
				grep -q "$F_BYTES bytes" "$tmp/run.f.read.get.out" || die "(f) get read the wrong size" ;;
			remote) rm -rf "$fstate/mountcache" "$fstate/spool"
				mount_ferry "$mnt" "$fcfg" remote fdata:
				measure f.read.remote dd if="$mnt/big.bin" "${big_dd[@]}"
				check_dd f.read.remote
				mount_peak mnt.f.read.remote
				umount_pid "$mnt" "$mount_pid" ;;
			vault) [[ -n $vault_ok ]] || continue
				rm -rf "$fstate/vaultcache"
				mount_ferry "$mnt" "$fcfg" vault fvault
				measure f.read.vault dd if="$mnt/latest/big.bin" "${big_dd[@]}"
				check_dd f.read.vault
				mount_peak mnt.f.read.vault
				umount_pid "$mnt" "$mount_pid" ;;
			rclone) mount_rclone "$mnt" bench:f-data --vfs-cache-mode off
				measure f.read.rclone dd if="$mnt/big.bin" "${big_dd[@]}"
				check_dd f.read.rclone
				mount_peak mnt.f.read.rclone
				umount_pid "$mnt" "$mount_pid" ;;
			esac
		done
	done

	check_ls() { (($(wc -l <"$tmp/run.$1.out") == F_LS + 1)) || die "(f) $1 listed $(($(wc -l <"$tmp/run.$1.out") - 1)) entries, want $F_LS"; }
	for rep in $(seq 1 "$REPS"); do
		say "(f) ls -l of $F_LS entries, cold then warm, run $rep of $REPS"
		order=(ferry rclone)
		((rep % 2 == 0)) && order=(rclone ferry)
		for tool in "${order[@]}"; do
			case $tool in
			ferry) rm -rf "$fstate/mountcache"
				mount_ferry "$mnt" "$fcfg" remote fdata: ;;
			rclone) mount_rclone "$mnt" bench:f-data --vfs-cache-mode off ;;
			esac
			measure "f.ls.cold.$tool" ls -l "$mnt/$lsdir"
			check_ls "f.ls.cold.$tool"
			measure "f.ls.warm.$tool" ls -l "$mnt/$lsdir"
			check_ls "f.ls.warm.$tool"
			umount_pid "$mnt" "$mount_pid"
		done
	done

	# cp -r into a mount, timed until the bucket holds every file (a listing
	# every 50 ms); the time cp itself took is kept too.
	local cp_bytes=$((F_CP_COUNT * F_CP_SIZE))
	cp_into() { # NAME BUCKET PREFIX
		local t0 t1 t2
		t0=$(date +%s%N)
		cp -r "$tmp/f-cp" "$mnt/$3"
		t1=$(date +%s%N)
		t2=$("$putloop" waitcount -endpoint "$endpoint" -bucket "$2" -prefix "$3/" -count $F_CP_COUNT -bytes $cp_bytes -timeout 5m)
		((t2 > t1)) || t2=$t1
		keep "f.cp.$1" "$(since "$t0" "$t2")"
		keep "f.cpret.$1" "$(since "$t0" "$t1")"
		echo "   f.cp.$1: cp returned after $(since "$t0" "$t1") s, all uploaded after $(since "$t0" "$t2") s" >&2
	}
	for rep in $(seq 1 "$REPS"); do
		say "(f) cp -r of $F_CP_COUNT files of $F_CP_SIZE bytes into the mount, run $rep of $REPS"
		order=(ferry rclone rclone5)
		((rep % 2 == 0)) && order=(rclone5 rclone ferry)
		for tool in "${order[@]}"; do
			case $tool in
			ferry) mount_ferry "$mnt" "$fcfg" remote fcp:
				cp_into ferry f-cp-ferry "r$rep" ;;
			rclone) rm -rf "$tmp/rclone-cache"
				mount_rclone "$mnt" bench:f-cp-rclone --vfs-cache-mode writes --vfs-write-back 0s --transfers "$N" --cache-dir "$tmp/rclone-cache"
				cp_into rclone f-cp-rclone "r$rep" ;;
			rclone5) rm -rf "$tmp/rclone-cache"
				mount_rclone "$mnt" bench:f-cp-rclone5 --vfs-cache-mode writes --cache-dir "$tmp/rclone-cache"
				cp_into rclone5 f-cp-rclone5 "r$rep" ;;
			esac
			umount_pid "$mnt" "$mount_pid"
		done
	done

	local v=— r g c rv rr vr vg rg lsw cpr rc5
	g=$(num "$F_BYTES / 1e6 / ${WALL[f.read.get]}" 0)
	r=$(num "$F_BYTES / 1e6 / ${WALL[f.read.remote]}" 0)
	c=$(num "$F_BYTES / 1e6 / ${WALL[f.read.rclone]}" 0)
	rg=$(num "$r / $g")
	rr=$(num "$r / $c")
	local vrow1 vrow2
	if [[ -n $vault_ok ]]; then
		v=$(num "$F_BYTES / 1e6 / ${WALL[f.read.vault]}" 0)
		vg=$(num "$v / $g")
		vr=$(num "$v / $c")
		vrow1="| | | | | | | vault/GET = $vg ≥ 0.8 | $(goal "$vg >= 0.8") |"
		vrow2="| | | | | | | vault/rclone = $vr ≥ 1.0 | $(goal "$vr >= 1.0") |"
	else
		vrow1="| | | | | | | vault mount | not available: \`ferry mount vault\` is not in this build |"
		vrow2=
	fi
	lsw=${WALL[f.ls.warm.ferry]}
	cpr=$(num "${WALL[f.cp.rclone]} / ${WALL[f.cp.ferry]}")
	rc5=$(num "${WALL[f.cp.rclone5]} / ${WALL[f.cp.ferry]}")
	{
		echo
		echo "### (f) FUSE mounts"
		echo
		echo "Ferry's vault mount (\`ferry mount vault\`, a backup of the file) and remote mount (\`ferry mount remote fdata:\`)"
		echo "against a direct read (\`putloop get\`: one plain minio-go GetObject, streamed to nowhere) and"
		echo "\`rclone mount\` of the same bucket (Debian rclone, fuse3; \`--vfs-cache-mode off\` for reads and"
		echo "listings). Reads are \`dd bs=1M of=/dev/null\` of a $((F_BYTES / MIB)) MiB random file, each on a fresh mount (so"
		echo "nothing is in the kernel's page cache) with Ferry's cache directories emptied, MB/s = 10^6 B/s."
		echo "\`ls -l\` lists a directory of $F_LS objects of 100 bytes: cold is the first listing on a fresh mount"
		echo "(Ferry's listing cache emptied), warm the one right after it. \`cp -r\` copies $F_CP_COUNT files of"
		echo "$F_CP_SIZE bytes in $F_CP_DIRS directories onto a fresh mount, timed until a listing of the bucket (every 50 ms)"
		echo "shows every file with its size: Ferry uploads each file when it is closed, rclone after it. rclone"
		echo "runs with \`--vfs-cache-mode writes --transfers $N --vfs-write-back 0s\` (upload at once, rather than its"
		echo "default 5 s after the close; the goal is checked against this faster setting), and for reference"
		echo "with its defaults (\`--vfs-cache-mode writes\` only). Best of $REPS runs."
		echo
		echo "| measurement | unit | Ferry vault | Ferry remote | direct GET | rclone mount | goal | result |"
		echo "|---|---|--:|--:|--:|--:|---|---|"
		echo "| sequential read, $((F_BYTES / MIB)) MiB | MB/s | $v | $r | $g | $c | remote/GET = $rg ≥ 0.8 | $(goal "$rg >= 0.8") |"
		echo "| | | | | | | remote/rclone = $rr ≥ 1.0 | $(goal "$rr >= 1.0") |"
		echo "$vrow1"
		[[ -n $vrow2 ]] && echo "$vrow2"
		echo "| \`ls -l\`, $F_LS entries, cold | s | — | ${WALL[f.ls.cold.ferry]} | — | ${WALL[f.ls.cold.rclone]} | | |"
		echo "| \`ls -l\`, $F_LS entries, warm | s | — | $lsw | — | ${WALL[f.ls.warm.rclone]} | Ferry < 1 s | $(goal "$lsw < 1") |"
		echo "| \`cp -r\` $F_CP_COUNT files, until all uploaded | s | — | ${WALL[f.cp.ferry]} | — | ${WALL[f.cp.rclone]} | rclone/Ferry = $cpr ≥ 1.0 | $(goal "$cpr >= 1.0") |"
		echo "| … rclone with its defaults (write-back 5 s) | s | — | | — | ${WALL[f.cp.rclone5]} | rclone/Ferry = $rc5 | |"
		echo "| \`cp -r\`, until cp returned | s | — | ${WALL[f.cpret.ferry]} | — | ${WALL[f.cpret.rclone]} (defaults: ${WALL[f.cpret.rclone5]}) | | |"
		echo "| peak memory while reading: the mount's process (VmHWM), putloop | MiB | $([[ -n $vault_ok ]] && mib "${RSS[mnt.f.read.vault]}" || echo —) | $(mib "${RSS[mnt.f.read.remote]}") | $(mib "${RSS[f.read.get]}") | $(mib "${RSS[mnt.f.read.rclone]}") | | |"
		every_run f.read.vault f.read.remote f.read.get f.read.rclone f.ls.cold.ferry f.ls.warm.ferry f.ls.cold.rclone f.ls.warm.rclone \
			f.cp.ferry f.cp.rclone f.cp.rclone5 f.cpret.ferry f.cpret.rclone f.cpret.rclone5
		echo
		loadline f "$load0"
	} >"$tmp/out/f.md"
}

# ------------------------------------------------------------------ run --

for s in "${SCENARIOS[@]}"; do
	t0=$(date +%s)
	# Each scenario runs in a subshell: a failure ends that scenario only,
	# and what it started is stopped when it ends.
	# (Not as the condition of an if: that would switch off set -e inside.)
	set +e
	(
		set -e
		trap release EXIT
		trap 'exit 130' INT TERM
		"scenario_$s"
	) 2> >(tee "$tmp/out/$s.log" >&2)
	rc=$?
	set -e
	if ((rc == 0)); then
		say "($s) done in $(($(date +%s) - t0)) s"
	else
		((rc == 130)) && exit 130
		sleep 0.2 # let tee finish
		sed 's/\x1b\[[0-9;]*m//g' "$tmp/out/$s.log" | grep -v '^== ' | tail -8 >"$tmp/out/$s.fail" || true
		say "($s) FAILED after $(($(date +%s) - t0)) s"
	fi
done
release

# -------------------------------------------------------------- results --

results_header() {
	cat <<'EOF'
# Ferry benchmarks

Run `make bench` (or `bench/run.sh`). It installs what is missing (rclone, restic, fuse3, jq and GNU
`time` from Debian, MinIO through `scripts/install-minio.sh` — building MinIO takes about six
minutes the first time), builds `bin/ferry` and `bench/putloop`, starts MinIO on free loopback
ports with their data in a temp directory, runs the scenarios, prints the tables and appends them
here. Nothing is left behind: daemons and mounts are stopped (a mount that will not go is lazily
unmounted), and the temp directory is removed. All six scenarios take about 17 minutes on this
machine's 2 CPUs once the tools are installed (longer on a busy machine).

- Choose scenarios with arguments or `BENCH_ONLY`: `bench/run.sh d e`, `make bench BENCH_ONLY="a b c"`.
  A failed scenario is reported as such and the others still run.
- `BENCH_WORKERS` (default 8) is the concurrency every tool gets; `BENCH_REPEAT` (default 3) the runs
  of each measurement, of which the best (lowest wall time) is reported — (d) does at most 2, (e) 1
  (its runs build on each other); `BENCH_RESULTS=-` prints the tables without appending them;
  `BENCH_QUICK=1` runs tiny data sets to check the script and appends nothing.

Every tool runs in the same script, against the same servers, one after the other (never two
measured at once), with the same concurrency N. **Ferry** is `bin/ferry` with defaults otherwise
(conflict `update`, verify `transferred`, part size 16 MiB); its state database is in the temp
directory. The peers are Debian's packages: **rclone** 1.60 and **restic** 0.14. **limit** and
**direct GET** are `bench/putloop`, the plainest minio-go client: it checks nothing and keeps no
state, so it marks the practical limit of this machine and server.

Scenarios:

- **(a)** first sync of 10,000 files of 4 KiB in 100 directories (`dNNN/sub/fNNNN.bin`): files per
  second over the whole process run (start-up, walk, uploads, exit). Ferry: `ferry sync SRC
  s3remote:PREFIX --workers N`; rclone: `rclone copy SRC bench:BUCKET/PREFIX --transfers N --checkers
  N`; limit: walk the directory and `PutObject` every file from N goroutines.
- **(b)** the same sync again with nothing changed (run (a)'s destinations): wall seconds. rclone copy
  compares size and modification time, which costs it one HEAD per object on S3; Ferry consults
  its state database, which it trusts for `recheck_destination` (24 h) after its last listing of
  the destination. A second Ferry row lists the destination as well (`--check-destination`), as
  the first run after that interval does.
- **(c)** one 1 GiB file of random bytes: MB/s (10^6 bytes per second) over the whole process run.
  rclone also gets `--s3-chunk-size 16M --s3-upload-concurrency N`; the limit is one `PutObject`
  with `PartSize` 16 MiB and `NumThreads` N.
- **(d)** 100,000 files of 100 bytes already synced, 100 of them changed: the time until the 100 are
  copied and verified, for Ferry through a changelist dropped into the inbox of a running daemon,
  through the daemon's watcher (`watch_delay` 100 ms, included), and through a full scan with its
  state index (`ferry plan run`; and with `--check-destination`, listing the bucket too), against
  `rclone copy` of the whole tree. Goals (issue 4): changelist and
  watcher ≥ 100× faster than rclone, scan ≥ 10×.
- **(e)** backup of 10,000 files / 1 GiB (9,990 of 4 KiB, 10 of ~98 MiB) into a vault on MinIO, then
  again after 1% changed, against restic to a repository on the same server: seconds and bytes
  uploaded (what the bucket holds more afterwards). Then replication of the vault's backups to a
  second MinIO server (another "cloud") with `ferry backup replicate`, against `rclone sync` of the
  vault's bucket. Goals (issue 6): Ferry ≥ 1.5× restic's backup speed, and the incremental replication
  moves only the new chunks.
- **(f)** FUSE: sequential read of a 1 GiB file through Ferry's vault mount and remote mount, against
  a direct GET and `rclone mount`; `ls -l` of a 10,000-entry directory through the remote mount,
  cold and warm; `cp -r` of 1,000 small files into the remote mount against `rclone mount
  --vfs-cache-mode writes`, until all are uploaded. Goals (issue 7): reads ≥ 0.8× direct GET and ≥
  1.0× rclone mount, warm `ls -l` under 1 s, small-file copy ≥ 1.0× rclone mount.

Each table says exactly what was timed and what was checked (object counts and bytes at the
destination, Ferry's job counters, rclone's transfer counts), gives every run's time below it, and
marks each goal MET or MISSED. Ratios are speed ratios: above 1 Ferry is faster.

The MinIO servers run on the same machine and compete for its CPUs with the tool being measured,
and the machine may be shared with other work: the load average at the start and end of each
scenario is recorded with it. Compare ratios within one table, not absolute numbers across tables.
EOF
}

mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
report=$tmp/report.md
{
	echo
	echo "## $started — ferry $commit — scenarios ${SCENARIOS[*]}"
	echo
	echo "Machine: \`$(uname -srm)\`, $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $mem; $(go version | awk '{print $3}');"
	echo "$(rclone version | head -1); $("$minio_bin" --version 2>/dev/null | head -1)."
	echo "Concurrency $N. \`bin/ferry\` built from the tree at the start; the whole run took $(((($(date +%s) - started_at) + 30) / 60)) min."
	[[ $QUICK == 1 ]] && echo "**BENCH_QUICK: tiny data sets, a check of the script, not a measurement.**"
	echo "Other sessions may be using the same CPUs: the load average at the start and end of each"
	echo "scenario is given with it."
	for s in "${SCENARIOS[@]}"; do
		if [[ -e $tmp/out/$s.fail ]]; then
			echo
			echo "**($s) did not complete.** Its last messages:"
			echo
			echo '```text'
			cat "$tmp/out/$s.fail"
			echo '```'
		fi
	done
	abc=()
	for s in a b c; do [[ -e $tmp/out/$s.rows ]] && abc+=("$s"); done
	if ((${#abc[@]} > 0)); then
		echo
		echo "### Sync (${abc[*]}), best of $REPS runs"
		echo
		echo "| scenario | unit | Ferry | rclone | limit | Ferry/limit | Ferry/rclone | goal | result |"
		echo "|---|---|--:|--:|--:|--:|--:|---|---|"
		for s in "${abc[@]}"; do cat "$tmp/out/$s.rows"; done
		for s in "${abc[@]}"; do cat "$tmp/out/$s.mem"; done
		echo
		echo "Every run, wall seconds (CPU seconds of the tool, user + system):"
		for s in "${abc[@]}"; do cat "$tmp/out/$s.runs"; done
		echo
		for s in "${abc[@]}"; do cat "$tmp/out/$s.load"; done
	fi
	for s in d e f; do
		[[ -e $tmp/out/$s.md ]] && cat "$tmp/out/$s.md"
	done
	true
} >"$report"
cat "$report"
if [[ $RESULTS != - ]]; then
	[[ -s $RESULTS ]] || results_header >"$RESULTS"
	cat "$report" >>"$RESULTS"
	echo "bench: appended to $RESULTS" >&2
fi
failed=0
for s in "${SCENARIOS[@]}"; do [[ -e $tmp/out/$s.fail ]] && failed=1; done
exit $failed
