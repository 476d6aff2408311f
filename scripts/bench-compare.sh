#!/usr/bin/env bash
# ratecached vs memcached vs redis-server, side by side, on loopback; writes docs/benchmarks.md
# and the latency plots under docs/bench/.
#
#   1. installs memcached and redis-server through apt-get when missing (as root)
#   2. cargo build --release (ratecached and ratecache-bench)
#   3. starts the three servers on free 127.0.0.1 ports with the same thread count, pinned
#      with taskset to the first half of the cores, the load generator to the other half
#   4. runs the standard suite of issue 5 against each server in one run:
#        (1) get/set 1:10, 50 connections, pipeline 1
#        (2) the same at pipeline 16, text and binary
#        (3) incr on 100k counters
#        (4) ratelimit gcra on 100k subjects vs Redis EVALSHA fixed-window and sliding-log,
#            and memcached's own one-round-trip counter `ma <key> N60 J1 v t`, at pipeline 1
#            and (4b) at pipeline 16, where the servers rather than the load generator bound
#            the throughput
#        (5) memory: RSS growth over 1,000,000 counters (20-byte keys, 8-byte values)
#        (6) expiry: 1,000,000 keys with a 2 s TTL, then the time until the item count is
#            back to 0 without a read
#        (7) rate-limit memory: one gcra decision on each of 1,000,000 new subjects (20-byte
#            keys, 100 per hour), RSS growth over the subjects held (`ratelimit_keys`), beside
#            Redis' fixed-window script on as many keys (over DBSIZE) and a plain Redis fill
#        (8) one hot subject: ratelimit on a single subject, 50 connections, pipeline 16,
#            ratecached with -t 2, beside the Redis fixed-window script on one key
#        (9) memtier_benchmark (when MEMTIER names it or it is on PATH; else skipped with one
#            line): ratecached and memcached with -t 1 on one core, memtier with one thread on
#            another, 50 connections, pipeline 16, 1:10 set:get over 100k loaded keys, text
#            and binary protocol (scripts/bench_memtier.py measures the server's CPU per op)
#   5. writes docs/benchmarks.md with scripts/bench_report.py: the summary of ratios, every
#      table with its command, the machine; the raw outputs stay in target/bench-compare/
#
# Environment:
#   BENCH_DURATION   seconds per server, case and round (default 4)
#   BENCH_ROUNDS     rounds of each throughput case (default 3): the servers take turns, round
#                    after round, and each target is the median of the rounds' ratios, so one
#                    slow moment of a shared machine does not decide a verdict
#   BENCH_THREADS    server threads (default: the cores given to the servers)
#   BENCH_EXPIRY_BOUND  seconds to watch the item count in case 6 (default 20)
#   BENCH_DOC        output document (default docs/benchmarks.md); the plots go to bench/ beside it
#   BENCH_CASES      space-separated subset of: getset-p1 getset-p16 getset-p16-binary incr
#                    ratelimit ratelimit-p16 memory expiry ratelimit-memory ratelimit-hot
#                    memtier-text memtier-binary (default: all)
#   MEMTIER          the memtier_benchmark binary for case 9 (default: memtier_benchmark on
#                    PATH); docs/benchmarks.md says how to build it
#   BENCH_REPORT_ONLY=DIR  measure nothing: rewrite BENCH_DOC from the outputs of an earlier
#                    run kept in DIR (e.g. target/bench-compare)
#   RATECACHED_BIN   the ratecached binary to benchmark (default: target/release/ratecached,
#                    built by this script); e.g. an older build for a before/after comparison
set -euo pipefail

if [ -n "${RATECACHED_BIN:-}" ]; then
    RATECACHED_BIN=$(realpath -- "$RATECACHED_BIN")
fi
if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
    BENCH_REPORT_ONLY=$(realpath -- "$BENCH_REPORT_ONLY")
fi
if [ -n "${MEMTIER:-}" ]; then
    MEMTIER=$(realpath -- "$MEMTIER")
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
START=$(date +%s)

if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
    exec python3 scripts/bench_report.py "$BENCH_REPORT_ONLY" "${BENCH_DOC:-docs/benchmarks.md}"
fi

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

DURATION="${BENCH_DURATION:-4}"
ROUNDS="${BENCH_ROUNDS:-3}"
EXPIRY_BOUND="${BENCH_EXPIRY_BOUND:-20}"
DOC="${BENCH_DOC:-docs/benchmarks.md}"
PLOTS="$(dirname "$DOC")/bench"
CASES="${BENCH_CASES:-getset-p1 getset-p16 getset-p16-binary incr ratelimit ratelimit-p16 memory expiry ratelimit-memory ratelimit-hot memtier-text memtier-binary}"
OUT="$ROOT/target/bench-compare"
rm -rf "$OUT"
mkdir -p "$OUT" "$PLOTS"

log() { printf '\n== %s\n' "$*" >&2; }

# --- 1. tools --------------------------------------------------------------------------
need=()
command -v memcached >/dev/null 2>&1 || need+=(memcached)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing: ${need[*]} (run as root to install them with apt-get)" >&2
        exit 1
    fi
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- 2. build --------------------------------------------------------------------------
if [ -n "${RATECACHED_BIN:-}" ]; then
    if [ ! -x "$RATECACHED_BIN" ]; then
        echo "RATECACHED_BIN=$RATECACHED_BIN is not an executable file" >&2
        exit 1
    fi
    log "cargo build --release -p ratecache-bench (ratecached: $RATECACHED_BIN)"
    cargo build --release -q -p ratecache-bench
    RATECACHED="$RATECACHED_BIN"
else
    log "cargo build --release"
    cargo build --release -q -p ratecache -p ratecache-bench
    RATECACHED="$ROOT/target/release/ratecached"
fi
BENCH="$ROOT/target/release/ratecache-bench"

# --- 3. cores, threads, servers ---------------------------------------------------------
NPROC=$(nproc)
if [ "$NPROC" -ge 2 ]; then
    half=$((NPROC / 2))
    SERVER_CPUS="0-$((half - 1))"
    GEN_CPUS="$half-$((NPROC - 1))"
    THREADS="${BENCH_THREADS:-$half}"
    SRV_PIN=(taskset -c "$SERVER_CPUS")
    GEN_PIN=(taskset -c "$GEN_CPUS")
    # memtier case: one core for the server (-t 1), the next half's first for memtier
    MT_SRV_CPU=0
    MT_GEN_CPU=$half
    MT_SRV_PIN=(taskset -c "$MT_SRV_CPU")
    MT_GEN_PIN=(taskset -c "$MT_GEN_CPU")
else
    SERVER_CPUS="all"
    GEN_CPUS="all"
    THREADS="${BENCH_THREADS:-1}"
    SRV_PIN=()
    GEN_PIN=()
    MT_SRV_CPU="all"
    MT_GEN_CPU="all"
    MT_SRV_PIN=()
    MT_GEN_PIN=()
fi
MEMCACHED_USER=()
[ "$(id -u)" -eq 0 ] && MEMCACHED_USER=(-u root)

PIDS=()
cleanup() {
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the kernel's ephemeral range (32768-60999), so no client socket holds the port.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        port_in_use "$p" || { echo "$p"; return; }
    done
}

# launch KIND PORT LOG THREADS: starts one server in the background
launch() {
    case "$1" in
        ratecached)
            "${SRV_PIN[@]}" "$RATECACHED" -l 127.0.0.1 -p "$2" -U 0 -t "$4" \
                -m 2048 -c 4096 >"$3" 2>&1 &
            ;;
        memcached)
            "${SRV_PIN[@]}" memcached "${MEMCACHED_USER[@]}" -l 127.0.0.1 -p "$2" -U 0 \
                -t "$4" -m 2048 -c 4096 >"$3" 2>&1 &
            ;;
        redis)
            "${SRV_PIN[@]}" redis-server --bind 127.0.0.1 --port "$2" --save '' \
                --appendonly no --protected-mode yes --loglevel warning \
                --maxclients 4096 >"$3" 2>&1 &
            ;;
    esac
}

# start_server KIND [NAME [THREADS]] -> sets SRV_PORT and SRV_PID (a few tries if the port was
# taken); the log is $OUT/NAME.log
start_server() {
    local log="$OUT/${2:-$1}.log"
    for _ in 1 2 3 4 5; do
        SRV_PORT=$(free_port)
        launch "$1" "$SRV_PORT" "$log" "${3:-$THREADS}"
        SRV_PID=$!
        for _ in $(seq 1 100); do
            if port_in_use "$SRV_PORT"; then
                PIDS+=("$SRV_PID")
                return 0
            fi
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    done
    echo "${2:-$1} did not start: $(tail -n 3 "$log")" >&2
    exit 1
}

stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

declare -A PORT PID
# start_named NAME KIND [THREADS]: one server, known to srv by NAME
start_named() {
    start_server "$2" "$1" "${3:-}"
    PORT[$1]=$SRV_PORT
    PID[$1]=$SRV_PID
}
start_all() {
    for s in ratecached memcached redis; do
        start_named "$s" "$s"
    done
}
stop_all() {
    local s
    for s in "${!PID[@]}"; do
        stop_server "${PID[$s]}"
    done
    PORT=()
    PID=()
}

# srv NAME SERVER [PROTOCOL [WORKLOAD]]: the bench arguments of one started server
srv() {
    local a=(--server "127.0.0.1:${PORT[$2]}" --name "$1" --server-pid "${PID[$2]}")
    [ -n "${3:-}" ] && a+=(--server-protocol "$3")
    [ -n "${4:-}" ] && a+=(--server-workload "$4")
    echo "${a[@]}"
}

FAILED_CASES=()
# run_case NAME TITLE ARGS...: one bench run, results in $OUT/NAME.{json,md,txt,png}
run_case() {
    local name=$1 title=$2
    shift 2
    log "$name: $title"
    local cmd=("${GEN_PIN[@]}" "$BENCH" --title "$title" --seed 1
        --json "$OUT/$name.json" --markdown "$OUT/$name.md" --plot "$OUT/$name.png" "$@")
    printf '%s\0' "${cmd[@]}" >"$OUT/$name.cmd"
    local rc=0
    "${cmd[@]}" | tee "$OUT/$name.txt" || rc=$?
    if [ "$rc" -ne 0 ]; then
        FAILED_CASES+=("$name (exit $rc)")
    fi
}

# run_rounds NAME TITLE ARGS...: ROUNDS runs of one case on the same servers, as NAME.r1 ...
run_rounds() {
    local name=$1 title=$2
    shift 2
    local r
    for r in $(seq 1 "$ROUNDS"); do
        run_case "$name.r$r" "$title, round $r of $ROUNDS" "$@"
    done
}

want() { [[ " $CASES " == *" $1 "* ]]; }

# memtier_benchmark for case 9: $MEMTIER, else memtier_benchmark on PATH; never installed here
# (it is not a Debian package: docs/benchmarks.md says how to build it).
MEMTIER_BIN=""
MEMTIER_SKIPPED=""
MEMTIER_VERSION=""
if want memtier-text || want memtier-binary; then
    if [ -n "${MEMTIER:-}" ]; then
        MEMTIER_BIN=$MEMTIER
    else
        MEMTIER_BIN=$(command -v memtier_benchmark || true)
    fi
    if [ -z "$MEMTIER_BIN" ]; then
        MEMTIER_SKIPPED="memtier_benchmark not found: set MEMTIER=/path/to/memtier_benchmark or put it on PATH"
    elif [ -d "$MEMTIER_BIN" ] || [ ! -x "$MEMTIER_BIN" ]; then
        MEMTIER_SKIPPED="MEMTIER=$MEMTIER_BIN is not an executable file"
    elif ! MEMTIER_VERSION=$("$MEMTIER_BIN" --version 2>&1 | head -n 1) \
        || [[ "$MEMTIER_VERSION" != memtier_benchmark* ]]; then
        MEMTIER_SKIPPED="$MEMTIER_BIN --version failed: $MEMTIER_VERSION"
    fi
    if [ -n "$MEMTIER_SKIPPED" ]; then
        MEMTIER_BIN=""
        MEMTIER_VERSION=""
        echo "memtier: skipped ($MEMTIER_SKIPPED; docs/benchmarks.md says how to build it)" >&2
    fi
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 4. the suite ------------------------------------------------------------------------
# Every case starts from three fresh servers, so no case sees another's keys and RSS starts
# from an empty server.
if want getset-p1; then
    start_all
    # shellcheck disable=SC2046
    run_rounds getset-p1 "(1) get/set 1:10, 50 connections, pipeline 1, text" \
        --workload getset --ratio 1:10 --connections 50 --pipeline 1 --keys 100000 \
        --value-size 32 --duration "$DURATION" \
        $(srv ratecached ratecached) $(srv memcached memcached) $(srv redis redis redis)
    stop_all
fi
if want getset-p16; then
    start_all
    # shellcheck disable=SC2046
    run_rounds getset-p16 "(2) get/set 1:10, 50 connections, pipeline 16, text" \
        --workload getset --ratio 1:10 --connections 50 --pipeline 16 --keys 100000 \
        --value-size 32 --duration "$DURATION" \
        $(srv ratecached ratecached) $(srv memcached memcached) $(srv redis redis redis)
    stop_all
fi
if want getset-p16-binary; then
    start_all
    # shellcheck disable=SC2046
    run_rounds getset-p16-binary "(2b) get/set 1:10, 50 connections, pipeline 16, binary" \
        --workload getset --ratio 1:10 --connections 50 --pipeline 16 --keys 100000 \
        --value-size 32 --duration "$DURATION" --protocol binary \
        $(srv ratecached ratecached) $(srv memcached memcached)
    stop_all
fi
if want incr; then
    start_all
    # shellcheck disable=SC2046
    run_rounds incr "(3) incr on 100k counters, 50 connections, pipeline 1" \
        --workload incr --connections 50 --pipeline 1 --keys 100000 --duration "$DURATION" \
        $(srv ratecached ratecached) $(srv memcached memcached) $(srv redis redis redis)
    stop_all
fi
if want ratelimit; then
    start_all
    # shellcheck disable=SC2046
    run_rounds ratelimit "(4) rate limit on 100k subjects (100/s), 50 connections, pipeline 1" \
        --workload ratelimit --rl-algo gcra --rl-limit 100 --rl-period-ms 1000 \
        --connections 50 --pipeline 1 --keys 100000 --duration "$DURATION" \
        $(srv ratecached ratecached) \
        $(srv redis-fixed-window redis redis redis-fixed) \
        $(srv redis-sliding-log redis redis redis-sliding) \
        $(srv memcached-ma memcached meta incr)
    stop_all
fi
if want ratelimit-p16; then
    start_all
    # shellcheck disable=SC2046
    run_rounds ratelimit-p16 "(4b) rate limit on 100k subjects (100/s), 50 connections, pipeline 16" \
        --workload ratelimit --rl-algo gcra --rl-limit 100 --rl-period-ms 1000 \
        --connections 50 --pipeline 16 --keys 100000 --duration "$DURATION" \
        $(srv ratecached ratecached) \
        $(srv redis-fixed-window redis redis redis-fixed) \
        $(srv redis-sliding-log redis redis redis-sliding) \
        $(srv memcached-ma memcached meta incr)
    stop_all
fi
if want memory; then
    start_all
    # shellcheck disable=SC2046
    run_case memory "(5) memory: 1,000,000 counters, 20-byte keys, 8-byte values" \
        --workload fill --keys 1000000 --key-size 20 --value-size 8 --connections 50 \
        --pipeline 16 --duration 120 \
        $(srv ratecached ratecached) $(srv memcached memcached) $(srv redis redis redis)
    stop_all
fi
if want expiry; then
    start_all
    # shellcheck disable=SC2046
    run_case expiry "(6) expiry: 1,000,000 keys with a 2 s TTL, no reads" \
        --workload fill --keys 1000000 --key-size 20 --value-size 8 --ttl 2 \
        --watch-expiry "$EXPIRY_BOUND" --connections 50 --pipeline 16 --duration 120 \
        $(srv ratecached ratecached) $(srv memcached memcached) $(srv redis redis redis)
    stop_all
fi
if want ratelimit-memory; then
    start_named ratecached ratecached
    start_named redis redis
    start_named redis-fill redis
    # GCRA at 100 per hour: one decision leaves a state that is full again after 36 s, longer
    # than the fill; the Redis window key lives the whole hour.
    # shellcheck disable=SC2046
    run_case ratelimit-memory "(7) rate-limit memory: 1,000,000 GCRA subjects (100/h), 20-byte keys" \
        --workload rl-fill --keys 1000000 --key-size 20 --value-size 8 --rl-algo gcra \
        --rl-limit 100 --rl-period-ms 3600000 --connections 50 --pipeline 16 --duration 120 \
        $(srv ratecached ratecached) $(srv redis-fixed-window redis redis) \
        $(srv redis-fill redis-fill redis fill)
    stop_all
fi
if want ratelimit-hot; then
    start_named ratecached ratecached 2
    start_named redis redis
    # shellcheck disable=SC2046
    run_rounds ratelimit-hot "(8) one hot subject (100/s), 50 connections, pipeline 16, ratecached -t 2" \
        --workload ratelimit --rl-algo gcra --rl-limit 100 --rl-period-ms 1000 \
        --connections 50 --pipeline 16 --keys 1 --duration "$DURATION" \
        $(srv ratecached ratecached) $(srv redis-fixed-window redis redis redis-fixed)
    stop_all
fi
if [ -n "$MEMTIER_BIN" ]; then
    # Case 9: the same get/set load from an independent client. Each server with -t 1 on one
    # core, memtier with one thread on another; keys memtier-1..memtier-100000, 32-byte
    # values, all stored first so that gets hit (as ratecache-bench's loading phase does).
    MT_KEYS=(--key-minimum=1 --key-maximum=100000 --data-size=32)
    SRV_PIN_CASES=("${SRV_PIN[@]+"${SRV_PIN[@]}"}")
    SRV_PIN=("${MT_SRV_PIN[@]+"${MT_SRV_PIN[@]}"}")
    for proto in text binary; do
        want "memtier-$proto" || continue
        start_named ratecached ratecached 1
        start_named memcached memcached 1
        for s in ratecached memcached; do
            log "memtier-$proto: loading 100000 keys into $s"
            if ! "${MT_GEN_PIN[@]}" "$MEMTIER_BIN" --server=127.0.0.1 --port="${PORT[$s]}" \
                --protocol="memcache_$proto" --threads=1 --clients=50 --pipeline=16 \
                "${MT_KEYS[@]}" --ratio=1:0 --key-pattern=P:P --requests=allkeys \
                --hide-histogram >"$OUT/memtier-$proto.$s.load.txt" 2>&1; then
                FAILED_CASES+=("memtier-$proto loading $s")
            fi
        done
        for r in $(seq 1 "$ROUNDS"); do
            for s in ratecached memcached; do
                name="memtier-$proto.$s.r$r"
                log "memtier-$proto: $s, round $r of $ROUNDS"
                rc=0
                python3 scripts/bench_memtier.py --pid "${PID[$s]}" --name "$s" \
                    --protocol "$proto" --json "$OUT/$name.json" -- \
                    "${MT_GEN_PIN[@]}" "$MEMTIER_BIN" --server=127.0.0.1 --port="${PORT[$s]}" \
                    --protocol="memcache_$proto" --threads=1 --clients=50 --pipeline=16 \
                    --ratio=1:10 "${MT_KEYS[@]}" --key-pattern=R:R --test-time="$DURATION" \
                    --print-percentiles=50,90,99,99.9 --hide-histogram \
                    --json-out-file="$OUT/$name.memtier.json" >"$OUT/$name.txt" 2>&1 || rc=$?
                tail -n 1 "$OUT/$name.txt"
                if [ "$rc" -ne 0 ]; then
                    FAILED_CASES+=("$name (exit $rc)")
                fi
            done
        done
        stop_all
    done
    SRV_PIN=("${SRV_PIN_CASES[@]+"${SRV_PIN_CASES[@]}"}")
fi
trap - EXIT
cleanup

# --- 5. the document ------------------------------------------------------------------------
# run.json keeps what the page says about this run, so BENCH_REPORT_ONLY can render it again.
ELAPSED=$(($(date +%s) - START))
export OUT ROOT ELAPSED ROUNDS THREADS SERVER_CPUS GEN_CPUS MT_SRV_CPU MT_GEN_CPU LOAD_BEFORE
export DURATION EXPIRY_BOUND MEMTIER_VERSION MEMTIER_SKIPPED
export RATECACHED_BIN="${RATECACHED_BIN:-}"
export FAILED="${FAILED_CASES[*]+"$(printf '%s\n' "${FAILED_CASES[@]}")"}"
export MEMCACHED_VERSION REDIS_VERSION
MEMCACHED_VERSION=$(memcached -V 2>/dev/null || memcached -h | head -1)
REDIS_VERSION=$(redis-server --version)
python3 - <<'PY'
import json, os, platform, subprocess

e = os.environ
root = e["ROOT"]

def git_rev(where):
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, cwd=where).stdout.strip() or where
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=top).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], capture_output=True,
                               text=True, cwd=top).stdout.strip()
        return (rev or "unknown") + (" with uncommitted changes under src/" if dirty else "")
    except OSError:
        return "unknown"

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

b = e.get("RATECACHED_BIN", "")
ratecached = (f"ratecached {git_rev(root)}" if not b else
              f"ratecached `{b}` (RATECACHED_BIN; its tree at {git_rev(os.path.dirname(b))})")
run = {
    "out": e["OUT"], "root": root, "ratecached": ratecached,
    "memcached_version": e["MEMCACHED_VERSION"],
    "redis_version": e["REDIS_VERSION"].split(" sha=")[0],
    "memtier_version": e.get("MEMTIER_VERSION", "").split(" sha=")[0] or None,
    "memtier_skipped": e.get("MEMTIER_SKIPPED") or None,
    "cpu_model": cpu_model(), "nproc": os.cpu_count(), "kernel": platform.release(),
    "load_before": e["LOAD_BEFORE"], "elapsed_s": int(e["ELAPSED"]),
    "rounds": int(e["ROUNDS"]), "duration": e["DURATION"], "expiry_bound": e["EXPIRY_BOUND"],
    "threads": e["THREADS"], "server_cpus": e["SERVER_CPUS"], "gen_cpus": e["GEN_CPUS"],
    "memtier_server_cpu": e["MT_SRV_CPU"], "memtier_gen_cpu": e["MT_GEN_CPU"],
    "failed": [f for f in e.get("FAILED", "").split("\n") if f],
}
with open(os.path.join(e["OUT"], "run.json"), "w") as f:
    json.dump(run, f, indent=1)
PY
python3 scripts/bench_report.py "$OUT" "$DOC"
log "done in $(($(date +%s) - START)) s"
