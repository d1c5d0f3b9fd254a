#!/usr/bin/env bash
# bench/run.sh: Ferry against rclone and a bare minio-go PUT loop, side by
# side, against one local MinIO server (`make bench`). What each scenario and
# column means is in bench/RESULTS.md, where every run appends its table.
#
# Installs what it needs when missing (rclone and GNU time from Debian, MinIO
# through scripts/install-minio.sh), builds bin/ferry and bench/putloop, and
# leaves nothing behind: the server and its data live in a temp directory
# that is removed at exit.
#
# Environment:
#   BENCH_WORKERS   concurrency given to every tool (default 8)
#   BENCH_REPEAT    runs of each measurement; the best is reported (default 3)
#   BENCH_RESULTS   file the table is appended to (default bench/RESULTS.md;
#                   "-" appends nowhere)
#   BENCH_KEEP=1    keep the temp directory (server stopped) for inspection
#   FERRY_MINIO_BIN MinIO server binary to use (see scripts/install-minio.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

N=${BENCH_WORKERS:-8}
REPS=${BENCH_REPEAT:-3}
RESULTS=${BENCH_RESULTS:-bench/RESULTS.md}
SMALL_DIRS=100
SMALL_FILES=100
SMALL_SIZE=4096
SMALL_COUNT=$((SMALL_DIRS * SMALL_FILES))
LARGE_BYTES=$((1024 * 1024 * 1024))
PART_MIB=16 # Ferry's default part_size; rclone and the loop are given the same

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

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
minio_bin=$(scripts/install-minio.sh)

say "building bin/ferry and bench/putloop"
make -s build
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
minio_pid=
cleanup() {
	if [[ -n $minio_pid ]]; then
		kill "$minio_pid" 2>/dev/null || true
		wait "$minio_pid" 2>/dev/null || true
	fi
	if [[ ${BENCH_KEEP:-} == 1 ]]; then
		echo "bench: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
go build -o "$tmp/putloop" ./bench/putloop
putloop=$tmp/putloop

# --------------------------------------------------------------- server --

access=benchadmin
secret=bench-$RANDOM$RANDOM$RANDOM
port=$("$putloop" freeport)
cport=$("$putloop" freeport)
endpoint=127.0.0.1:$port
mkdir -p "$tmp/minio"
say "starting MinIO on $endpoint"
env MINIO_ROOT_USER=$access MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=on \
	"$minio_bin" server --quiet --address "$endpoint" --console-address "127.0.0.1:$cport" "$tmp/minio" \
	>"$tmp/minio.log" 2>&1 &
minio_pid=$!
export PUTLOOP_ACCESS_KEY=$access PUTLOOP_SECRET_KEY=$secret
"$putloop" wait -endpoint "$endpoint" -timeout 60s || { tail -20 "$tmp/minio.log" >&2; die "MinIO did not start"; }
buckets=(ferry-small rclone-small putloop-small ferry-large rclone-large putloop-large)
"$putloop" mb -endpoint "$endpoint" "${buckets[@]}"

# rclone: a remote named "bench" from environment variables, no config
# file. rclone's S3 backend fails to load a custom CA bundle named by
# AWS_CA_BUNDLE (LoadCustomCABundleError) even for plain http, so it is
# unset; nothing here uses TLS.
unset AWS_CA_BUNDLE
: >"$tmp/rclone.conf"
export RCLONE_CONFIG=$tmp/rclone.conf \
	RCLONE_CONFIG_BENCH_TYPE=s3 \
	RCLONE_CONFIG_BENCH_PROVIDER=Minio \
	RCLONE_CONFIG_BENCH_ENDPOINT=http://$endpoint \
	RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$access \
	RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$secret \
	RCLONE_CONFIG_BENCH_REGION=us-east-1

# Ferry: one s3 remote per bucket; the config holds an inline secret, so
# it is private to its owner.
cfg=$tmp/ferry.toml
(
	umask 077
	cat >"$cfg" <<EOF
state_dir = "$tmp/ferry-state"
socket    = "$tmp/ferry.sock"

[credentials.bench]
access_key = "$access"
secret_key = "$secret"

[remotes.small]
type       = "s3"
endpoint   = "$endpoint"
bucket     = "ferry-small"
region     = "us-east-1"
tls        = false
credential = "bench"

[remotes.large]
type       = "s3"
endpoint   = "$endpoint"
bucket     = "ferry-large"
region     = "us-east-1"
tls        = false
credential = "bench"
EOF
)
chmod 600 "$cfg"
ferry() { "$repo/bin/ferry" --config "$cfg" "$@"; }

# ----------------------------------------------------------------- data --

say "making $SMALL_COUNT files of $SMALL_SIZE bytes and one file of $((LARGE_BYTES >> 20)) MiB"
"$putloop" gen -dir "$tmp/src-small" -dirs $SMALL_DIRS -files $SMALL_FILES -size $SMALL_SIZE
mkdir -p "$tmp/src-large"
head -c $LARGE_BYTES /dev/urandom >"$tmp/src-large/big.bin"
sync

# ------------------------------------------------------------ measuring --

declare -A WALL RSS ALL
# measure NAME CMD...: runs CMD under GNU time, keeping the best (lowest)
# wall time and the highest peak RSS over repeats under NAME.
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
	printf '   %-10s %8.3f s wall  %6.2f s CPU  %6.1f MiB peak\n' "$name" "$wall" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" >&2
	if [[ -z ${WALL[$name]:-} ]] || awk -v a="$wall" -v b="${WALL[$name]}" 'BEGIN { exit !(a < b) }'; then
		WALL[$name]=$wall
	fi
	if [[ -z ${RSS[$name]:-} ]] || ((rss > RSS[$name])); then
		RSS[$name]=$rss
	fi
	ALL[$name]="${ALL[$name]:-}${ALL[$name]:+, }$wall ($cpu)"
}

# expect BUCKET PREFIX COUNT BYTES: the run really stored what it should.
expect() {
	local got
	got=$("$putloop" count -endpoint "$endpoint" -bucket "$1" -prefix "$2")
	[[ $got == "$3 $4" ]] || die "$1/$2 holds $got (objects bytes), want $3 $4"
}

# ferry_counter RUN FIELD: a counter of the job summary (--json) of a run.
ferry_counter() {
	grep -o "\"$2\": *[0-9]*" "$tmp/run.$1.out" | grep -o '[0-9]*$'
}

small_bytes=$((SMALL_COUNT * SMALL_SIZE))
load0=$(cut -d' ' -f1-3 /proc/loadavg)
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
		ferry) measure a.ferry "$repo/bin/ferry" --config "$cfg" --json sync "$tmp/src-small" "small:$p" --workers "$N"
			[[ $(ferry_counter a.ferry files_transferred) == "$SMALL_COUNT" ]] || die "ferry did not transfer $SMALL_COUNT files"
			expect ferry-small "$p/" $SMALL_COUNT $small_bytes ;;
		rclone) measure a.rclone rclone copy "$tmp/src-small" "bench:rclone-small/$p" --transfers "$N" --checkers "$N"
			expect rclone-small "$p/" $SMALL_COUNT $small_bytes ;;
		esac
	done
done

for rep in $(seq 1 "$REPS"); do
	say "(b) re-run with nothing changed, run $rep of $REPS"
	measure b.ferry "$repo/bin/ferry" --config "$cfg" --json sync "$tmp/src-small" "small:r1" --workers "$N"
	[[ $(ferry_counter b.ferry files_transferred) == 0 ]] || die "ferry re-run transferred files"
	[[ $(ferry_counter b.ferry files_unchanged) == "$SMALL_COUNT" ]] || die "ferry re-run did not find $SMALL_COUNT unchanged files"
	measure b.rclone rclone copy "$tmp/src-small" "bench:rclone-small/r1" --transfers "$N" --checkers "$N" -v
	grep -Eq 'Transferred:[[:space:]]+0 B / 0 B' "$tmp/run.b.rclone.err" || { cat "$tmp/run.b.rclone.err" >&2; die "rclone re-run transferred data"; }
done

for rep in $(seq 1 "$REPS"); do
	say "(c) one file of $((LARGE_BYTES >> 20)) MiB, run $rep of $REPS"
	p=r$rep
	order=(putloop ferry rclone)
	((rep % 2 == 0)) && order=(rclone ferry putloop)
	for tool in "${order[@]}"; do
		case $tool in
		putloop) measure c.putloop "$putloop" putfile -endpoint "$endpoint" -bucket putloop-large -key "$p/big.bin" -file "$tmp/src-large/big.bin" -part-size-mib $PART_MIB -concurrency "$N"
			expect putloop-large "$p/" 1 $LARGE_BYTES ;;
		ferry) measure c.ferry "$repo/bin/ferry" --config "$cfg" --json sync "$tmp/src-large" "large:$p" --workers "$N"
			expect ferry-large "$p/" 1 $LARGE_BYTES ;;
		rclone) measure c.rclone rclone copy "$tmp/src-large" "bench:rclone-large/$p" --transfers "$N" --checkers "$N" \
			--s3-chunk-size ${PART_MIB}M --s3-upload-concurrency "$N"
			expect rclone-large "$p/" 1 $LARGE_BYTES ;;
		esac
	done
done

# -------------------------------------------------------------- results --

results_header() {
	cat <<'EOF'
# Ferry benchmarks

Run `make bench` (or `bench/run.sh`). It installs what is missing (rclone and GNU `time` from
Debian, MinIO through `scripts/install-minio.sh` — building MinIO takes about six minutes the first
time), builds `bin/ferry` and `bench/putloop`, starts one MinIO server on a free loopback port with
its data in a temp directory, runs every scenario, prints the table and appends it here. Nothing is
left behind. Takes about 5–12 minutes once the tools are installed (longer on a busy machine).
`BENCH_WORKERS` (default 8) and `BENCH_REPEAT` (default 3) change the concurrency and the number of
runs; `BENCH_RESULTS=-` prints the table without appending it.

The three tools run in the same script, against the same server, one after the other, each into its
own bucket (and a fresh prefix per run), all with the same concurrency N:

- **Ferry**: `ferry sync SRC s3remote:PREFIX --workers N` (defaults otherwise: conflict `update`,
  verify `transferred`, part size 16 MiB); its state database is in the temp directory.
- **rclone**: `rclone copy SRC bench:BUCKET/PREFIX --transfers N --checkers N`; for the large file
  also `--s3-chunk-size 16M --s3-upload-concurrency N`, so it gets Ferry's part size and the same
  concurrency. rclone is Debian's package.
- **limit**: `bench/putloop`, the plainest minio-go client: walk the directory and `PutObject`
  every file with default options from N goroutines; for the large file one `PutObject` with
  `PartSize` 16 MiB and `NumThreads` N. It checks nothing and keeps no state, so it marks the
  practical limit of this machine and server.

Scenarios:

- **(a)** first sync of 10,000 files of 4 KiB in 100 directories (`dNNN/sub/fNNNN.bin`): files per
  second over the whole process run (start-up, walk, uploads, exit).
- **(b)** the same sync again with nothing changed (Ferry's and rclone's run (a) destinations):
  wall time in seconds. rclone copy compares size and modification time, which costs it one HEAD per
  object on S3; Ferry consults its state database.
- **(c)** one 1 GiB file of random bytes: MB/s (10^6 bytes per second) over the whole process run.
- **peak memory**: maximum resident set size of the tool's process (GNU `time -v`), the highest of
  the runs.

Columns: **Ferry**, **rclone**, **limit** are the best of `BENCH_REPEAT` runs (lowest wall time;
every run's wall time, and the CPU time the tool itself used, is listed below each table).
**Ferry/limit** and **Ferry/rclone** are speed ratios (above 1: Ferry is faster); for (b) the ratio
is rclone's time over Ferry's. **goal** is the target from the sync engine issue: (a) Ferry/limit ≥
0.9, (b) rclone/Ferry ≥ 10, (c) Ferry/limit ≥ 0.9 and Ferry/rclone ≥ 1.5. Every run is checked:
the object count and total bytes at the destination, Ferry's job counters, and that rclone's re-run
transferred nothing.

The MinIO server runs on the same machine and competes for its CPUs with the tool being measured,
and the machine may be shared with other work: the load average is recorded with each table. Compare
ratios within one table, not absolute numbers across tables.
EOF
}

num() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
mib() { num "$1 / 1024" 0; }
goal() { awk "BEGIN { exit !($1) }" && echo MET || echo MISSED; }

a_f=$(num "$SMALL_COUNT / ${WALL[a.ferry]}" 0)
a_r=$(num "$SMALL_COUNT / ${WALL[a.rclone]}" 0)
a_l=$(num "$SMALL_COUNT / ${WALL[a.putloop]}" 0)
a_fl=$(num "$a_f / $a_l")
a_fr=$(num "$a_f / $a_r")
b_rf=$(num "${WALL[b.rclone]} / ${WALL[b.ferry]}" 1)
c_f=$(num "$LARGE_BYTES / 1e6 / ${WALL[c.ferry]}" 0)
c_r=$(num "$LARGE_BYTES / 1e6 / ${WALL[c.rclone]}" 0)
c_l=$(num "$LARGE_BYTES / 1e6 / ${WALL[c.putloop]}" 0)
c_fl=$(num "$c_f / $c_l")
c_fr=$(num "$c_f / $c_r")
goal_a=$(goal "$a_fl >= 0.9")
goal_b=$(goal "$b_rf >= 10")
goal_c1=$(goal "$c_fl >= 0.9")
goal_c2=$(goal "$c_fr >= 1.5")

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git status --porcelain 2>/dev/null) ]] && commit+=" (uncommitted changes in the tree)"
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
report=$tmp/report.md
{
	echo
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — ferry $commit"
	echo
	echo "Machine: \`$(uname -srm)\`, $(nproc) CPUs, $mem; $(go version | awk '{print $3}'); $(rclone version | head -1);"
	echo "$("$minio_bin" --version 2>/dev/null | head -1). Concurrency $N, best of $REPS runs."
	echo "Load average before the runs: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	echo "| scenario | unit | Ferry | rclone | limit | Ferry/limit | Ferry/rclone | goal | result |"
	echo "|---|---|--:|--:|--:|--:|--:|---|---|"
	echo "| (a) first sync, $SMALL_COUNT × $((SMALL_SIZE / 1024)) KiB | files/s | $a_f | $a_r | $a_l | $a_fl | $a_fr | Ferry/limit ≥ 0.9 | $goal_a |"
	echo "| (b) re-run, nothing changed | s | ${WALL[b.ferry]} | ${WALL[b.rclone]} | — | — | rclone/Ferry = $b_rf | rclone/Ferry ≥ 10 | $goal_b |"
	echo "| (c) one $((LARGE_BYTES >> 30)) GiB file | MB/s | $c_f | $c_r | $c_l | $c_fl | $c_fr | Ferry/limit ≥ 0.9 | $goal_c1 |"
	echo "| | | | | | | | Ferry/rclone ≥ 1.5 | $goal_c2 |"
	echo "| peak memory (a) | MiB | $(mib "${RSS[a.ferry]}") | $(mib "${RSS[a.rclone]}") | $(mib "${RSS[a.putloop]}") | | | | |"
	echo "| peak memory (b) | MiB | $(mib "${RSS[b.ferry]}") | $(mib "${RSS[b.rclone]}") | — | | | | |"
	echo "| peak memory (c) | MiB | $(mib "${RSS[c.ferry]}") | $(mib "${RSS[c.rclone]}") | $(mib "${RSS[c.putloop]}") | | | | |"
	echo
	echo "Every run, wall seconds (CPU seconds of the tool, user + system):"
	for k in a.ferry a.rclone a.putloop b.ferry b.rclone c.ferry c.rclone c.putloop; do
		echo "- $k: ${ALL[$k]}"
	done
} >"$report"
cat "$report"
if [[ $RESULTS != - ]]; then
	[[ -s $RESULTS ]] || results_header >"$RESULTS"
	cat "$report" >>"$RESULTS"
	echo "bench: appended to $RESULTS" >&2
fi
