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
#   5. writes docs/benchmarks.md: every table, the targets with the measured ratios, the
#      machine and the exact commands
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
#                    (default: all)
#   RATECACHED_BIN   the ratecached binary to benchmark (default: target/release/ratecached,
#                    built by this script); e.g. an older build for a before/after comparison
set -euo pipefail

if [ -n "${RATECACHED_BIN:-}" ]; then
    RATECACHED_BIN=$(realpath -- "$RATECACHED_BIN")
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
START=$(date +%s)

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

DURATION="${BENCH_DURATION:-4}"
ROUNDS="${BENCH_ROUNDS:-3}"
EXPIRY_BOUND="${BENCH_EXPIRY_BOUND:-20}"
DOC="${BENCH_DOC:-docs/benchmarks.md}"
PLOTS="$(dirname "$DOC")/bench"
CASES="${BENCH_CASES:-getset-p1 getset-p16 getset-p16-binary incr ratelimit ratelimit-p16 memory expiry ratelimit-memory ratelimit-hot}"
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
else
    SERVER_CPUS="all"
    GEN_CPUS="all"
    THREADS="${BENCH_THREADS:-1}"
    SRV_PIN=()
    GEN_PIN=()
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
trap - EXIT
cleanup

# --- 5. the document ------------------------------------------------------------------------
ELAPSED=$(($(date +%s) - START))
export OUT DOC PLOTS ELAPSED ROUNDS THREADS SERVER_CPUS GEN_CPUS LOAD_BEFORE DURATION EXPIRY_BOUND ROOT
export RATECACHED_BIN="${RATECACHED_BIN:-}"
export FAILED="${FAILED_CASES[*]:-}"
export MEMCACHED_VERSION REDIS_VERSION
MEMCACHED_VERSION=$(memcached -V 2>/dev/null || memcached -h | head -1)
REDIS_VERSION=$(redis-server --version)
python3 - <<'PY'
import json, os, platform, re, subprocess

out, doc, plots = os.environ["OUT"], os.environ["DOC"], os.environ["PLOTS"]
root = os.environ["ROOT"]

def load_file(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None

def rounds(name):
    """The reports of a case: one per round (NAME.r1, NAME.r2, ...) or the single NAME."""
    reps, r = [], 1
    while os.path.exists(os.path.join(out, f"{name}.r{r}.json")):
        reps.append((f"{name}.r{r}", load_file(f"{name}.r{r}")))
        r += 1
    if not reps and load_file(name):
        reps.append((name, load_file(name)))
    return reps

def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2

# The round each case's table, plot and command come from: the one with the median of the
# case's headline ratio (ratecached over the first other server; CPU per op at pipeline 1).
def headline(name, rep):
    if not rep or len(rep["results"]) < 2:
        return 0
    a, b = rep["results"][0], rep["results"][1]
    if name in ("getset-p1", "ratelimit"):
        return ratio(a.get("server_cpu_us_per_op"), b.get("server_cpu_us_per_op")) or 0
    return ratio(a["ops_per_sec"], b["ops_per_sec"]) or 0

shown = {}
def load(name):
    """The shown round's report of a case."""
    reps = rounds(name)
    if not reps:
        return None
    order = sorted(range(len(reps)), key=lambda i: headline(name, reps[i][1]))
    i = order[len(order) // 2]
    shown[name] = (i + 1, len(reps), reps[i][0])
    return reps[i][1]

def res(rep, name):
    if rep:
        for r in rep["results"]:
            if r["name"] == name:
                return r
    return None

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

def git_rev(where=root):
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

def ratecached_version():
    """The benchmarked build: this tree's, or RATECACHED_BIN and the commit of its tree."""
    b = os.environ.get("RATECACHED_BIN", "")
    if not b:
        return f"ratecached {git_rev()}"
    return f"ratecached `{b}` (RATECACHED_BIN; its tree at {git_rev(os.path.dirname(b))})"

def fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"

def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b

def per_round(name, f):
    """f(report) for every round of a case, the median, and the rounds as text."""
    vals = [f(rep) for _, rep in rounds(name)]
    m = median(vals)
    txt = "" if len(vals) < 2 else " (rounds: " + ", ".join(fmt(v) for v in vals) + ")"
    return m, txt

targets = []
def target(what, measured, met, verdict=None):
    targets.append((what, measured, verdict or ("n/a (not measured)" if met is None else ("**met**" if met else "**not met**"))))

def tput(r): return r["ops_per_sec"] if r else None
def p99(r): return r["latency_us"]["p99"] if r else None
def cpu(r): return r.get("server_cpu_us_per_op") if r else None

mem, exp = load("memory"), load("expiry")

def between(a, b, f):
    """Per round: f(a's result) / f(b's result)."""
    return lambda rep: ratio(f(res(rep, a)), f(res(rep, b)))

for name, label, need in (("getset-p16", "text", 3.0), ("getset-p16-binary", "binary", 1.25)):
    if not rounds(name):
        continue
    t, tr = per_round(name, between("ratecached", "memcached", tput))
    l, lr = per_round(name, between("ratecached", "memcached", p99))
    target(f"get/set pipeline 16, {label}: ratecached >= {need}x memcached ops/s, p99 no worse",
           f"{fmt(t)}x ops/s{tr}, p99 {fmt(l)}x{lr}",
           None if t is None or l is None else (t >= need and l <= 1.0))

c, cr = per_round("getset-p1", between("ratecached", "memcached", cpu))
l, lr = per_round("getset-p1", between("ratecached", "memcached", p99))
if rounds("getset-p1"):
    target("get/set pipeline 1: server CPU per op <= 0.8x memcached's, p99 no worse",
           f"CPU/op {fmt(c)}x{cr}, p99 {fmt(l)}x{lr}",
           None if c is None or l is None else (c <= 0.8 and l <= 1.0))

for name, label in (("ratelimit", "pipeline 1"), ("ratelimit-p16", "pipeline 16")):
    if not rounds(name):
        continue
    for other, need, what in (("redis-fixed-window", 5, "Redis EVALSHA fixed-window"),
                              ("redis-sliding-log", 10, "the Redis sliding-log script")):
        t, tr = per_round(name, between("ratecached", other, tput))
        l, lr = per_round(name, between("ratecached", other, p99))
        target(f"ratelimit, {label}: >= {need}x {what} ops/s, p99 <= 1/3",
               f"{fmt(t)}x ops/s{tr}, p99 {fmt(l)}x{lr}",
               None if t is None or l is None else (t >= need and l <= 1 / 3))
    c, cr = per_round(name, between("ratecached", "memcached-ma", cpu))
    target(f"ratelimit, {label}: server CPU per decision <= memcached's `ma key N60 J1 v t`",
           f"{fmt(c)}x{cr}", None if c is None else c <= 1.0)

rc = res(mem, "ratecached")
b = rc.get("rss_bytes_per_item") if rc else None
others = ", ".join(f"{n}: {fmt(res(mem, n).get('rss_bytes_per_item'), 1)} B"
                   for n in ("memcached", "redis") if res(mem, n))
target("memory: <= 50 bytes per stored counter (RSS growth over 1,000,000)",
       f"{fmt(b, 1)} B/item ({others})", None if b is None else b <= 50)

rm = load("ratelimit-memory")
rc = res(rm, "ratecached")
b = rc.get("rss_bytes_per_item") if rc else None
others = ", ".join(f"{n}: {fmt(res(rm, n).get('rss_bytes_per_item'), 1)} B"
                   for n in ("redis-fixed-window", "redis-fill") if res(rm, n))
target("rate-limit memory: <= 48 bytes per subject (RSS growth over 1,000,000 GCRA subjects), "
       "beside Redis", f"{fmt(b, 1)} B/subject ({others})", None if b is None else b <= 48)

if rounds("ratelimit-hot"):
    t, tr = per_round("ratelimit-hot", between("ratecached", "redis-fixed-window", tput))
    l, lr = per_round("ratelimit-hot", between("ratecached", "redis-fixed-window", p99))
    target("one hot subject, pipeline 16, ratecached `-t 2`: beside the Redis fixed-window "
           "script on one key", f"{fmt(t)}x ops/s{tr}, p99 {fmt(l)}x{lr}", None,
           "no target (reference)")

rc = res(exp, "ratecached")
e = rc.get("expiry") if rc else None
z = e.get("zero_after_load_ms") if e else None
what = "expiry: 1,000,000 expired keys reclaimed within 5 s of their TTL, no reads"
if e is None:
    target(what, "n/a", None)
else:
    meas = (f"all reclaimed {z / 1000:.2f} s after the load ended (TTL {e['ttl_s']} s)"
            if z is not None else
            f"{e.get('items_at_end', 0) - e.get('items_before_load', 0)} items left "
            f"{e['bound_s']:.0f} s after the load")
    target(what, meas, z is not None and z <= (e["ttl_s"] + 5) * 1000)

def bench_cmd(name):
    import shlex
    if name not in shown:
        return None
    p = os.path.join(out, shown[name][2] + ".cmd")
    if not os.path.exists(p):
        return None
    args = [a for a in open(p).read().split("\0") if a]
    drop = {"--json", "--markdown"}
    keep, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in drop:
            skip = True
        else:
            keep.append(a.replace(out + "/", plots + "/")
                        .replace(shown[name][2] + ".png", name + ".png")
                        .replace(root + "/", ""))
    return shlex.join(keep)


cases = [
    ("getset-p1", "(1) get/set 1:10, pipeline 1, text"),
    ("getset-p16", "(2) get/set 1:10, pipeline 16, text"),
    ("getset-p16-binary", "(2b) get/set 1:10, pipeline 16, binary"),
    ("incr", "(3) incr on 100k counters"),
    ("ratelimit", "(4) rate limit on 100k subjects, pipeline 1"),
    ("ratelimit-p16", "(4b) rate limit on 100k subjects, pipeline 16"),
    ("memory", "(5) memory: 1,000,000 counters"),
    ("expiry", "(6) expiry: 1,000,000 keys, 2 s TTL"),
    ("ratelimit-memory", "(7) rate-limit memory: 1,000,000 GCRA subjects"),
    ("ratelimit-hot", "(8) one hot subject, pipeline 16, ratecached -t 2"),
]

L = []
w = L.append
w("# Benchmarks: ratecached vs memcached vs Redis")
w("")
w("Generated by `scripts/bench-compare.sh` (do not edit by hand: run it again). Every number")
w("below comes from one run of that script on the machine described here; ratios are")
w("ratecached over the other server in the same run, so the machine's speed cancels out.")
w("")
w("## Machine and setup")
w("")
w(f"- CPU: {cpu_model()}, `nproc` = {os.cpu_count()}; kernel {platform.release()}; "
  f"load average before the run: {os.environ['LOAD_BEFORE']}")
w(f"- {ratecached_version()}; {os.environ['MEMCACHED_VERSION']}; {os.environ['REDIS_VERSION'].split(' sha=')[0]}")
w(f"- servers pinned to CPUs {os.environ['SERVER_CPUS']} (`taskset`), the load generator to CPUs "
  f"{os.environ['GEN_CPUS']}; ratecached and memcached with `-t {os.environ['THREADS']}` "
  f"(case 8: ratecached `-t 2`; Redis executes commands on one thread); all on 127.0.0.1")
w(f"- {os.environ['DURATION']} s per server, case and round; {os.environ['ROUNDS']} rounds of every "
  "throughput case, the servers taking turns round after round; one fill for memory and "
  f"expiry; the whole script took {os.environ['ELAPSED']} s")
w("- load generator: `ratecache-bench` (bench/), closed loop over tokio: each connection keeps "
  "`pipeline` requests in flight; every reply is checked (a wrong value, an error line, a "
  "malformed verdict counts in *errors*); latency from write to checked reply, in "
  "hdrhistogram; *CPU µs/op* is the server's utime+stime from /proc/PID/stat over the "
  "measured phase divided by the requests, *server CPU* that time over the wall time "
  "(100% = one core busy)")
w("- at pipeline 1 the load generator's core is the bottleneck (its own CPU µs/op, listed "
  "under each table, times ops/s is about 100%), so there ops/s are much the same for every "
  "server and the comparison is in server CPU µs/op and latency; at pipeline 16 the server "
  "is the bottleneck and ops/s compare the servers")
busy = []
for name, _ in cases:
    rep = load(name)
    if rep:
        worst = max((r.get("other_cpu_share") or 0) for r in rep["results"])
        if worst > 0.10:
            busy.append(f"{name} (up to {100 * worst:.0f}% of a core)")
if busy:
    w("- **disturbed:** other processes of the machine used CPU during " + ", ".join(busy)
      + "; those cases' numbers are less reliable: run the script again on a quiet machine")
else:
    w("- other processes of the machine used less than 10% of a core during every case")
failed = os.environ.get("FAILED", "").strip()
if failed:
    w(f"- **cases that reported errors or failed:** {failed}")
w("")
w("## Targets (issue 5)")
w("")
w("| target | measured | verdict |")
w("| --- | --- | --- |")
for what, meas, verdict in targets:
    w(f"| {what} | {meas} | {verdict} |")
w("")
w("Where a target is not met, the section *What bounds the server* below says why, from a profile.")
w("")
w("## Results")
import shutil
for name, title in cases:
    if load(name) is None:
        continue
    r, n, base = shown[name]
    p = os.path.join(out, base + ".md")
    if not os.path.exists(p):
        continue
    if os.path.exists(os.path.join(out, base + ".png")):
        shutil.copyfile(os.path.join(out, base + ".png"), os.path.join(plots, name + ".png"))
    w("")
    w(f"### {title}")
    w("")
    if n > 1:
        w(f"Round {r} of {n}, the median by its headline ratio; the targets above are the "
          "medians over all rounds, each listed.")
        w("")
    w(open(p).read().rstrip())
    if os.path.exists(os.path.join(plots, name + ".png")):
        w("")
        rel = os.path.relpath(os.path.join(plots, name + ".png"), os.path.dirname(doc) or ".")
        w(f"![{title} latency percentiles]({rel})")
    rep = load(name)
    if rep:
        gen = [f"{r['name']} {fmt(r.get('loadgen_cpu_us_per_op'))}" for r in rep["results"]]
        w("")
        w("Load generator CPU µs/op: " + ", ".join(gen) + ".")
        other = [f"{r['name']} {100 * r['other_cpu_share']:.0f}%" for r in rep["results"]
                 if r.get("other_cpu_share") is not None]
        if other:
            w("CPU used by other processes of the machine meanwhile (100% = one core): "
              + ", ".join(other) + ".")
        if name == "ratelimit-memory":
            held = [f"{r['name']} {r['items_held']}" for r in rep["results"]
                    if r.get("items_held") is not None]
            if held:
                w("Held at the end, the B/item divisor (ratecached `ratelimit_keys`, Redis "
                  "DBSIZE): " + ", ".join(held) + ".")
        if name.startswith("ratelimit"):
            dec = [f"{r['name']} {r['allowed']} allowed / {r['denied']} denied"
                   for r in rep["results"] if r["allowed"] or r["denied"]]
            if dec:
                w("Decisions: " + ", ".join(dec) + ".")
        if name == "expiry":
            for r in rep["results"]:
                e = r.get("expiry") or {}
                s = e.get("samples") or []
                pts = ", ".join(f"{t:.1f}s:{n}" for t, n in s[:: max(1, len(s) // 12)])
                w(f"- {r['name']}: items after the load {e.get('items_after_load')}, "
                  f"seconds since the load ended : items = {pts}")
w("")
w("## What bounds the server")
w("")
w("<!-- notes -->")
w("")
w("## Commands")
w("")
w("```sh")
w("scripts/bench-compare.sh        # everything below, then this document")
w("# another ratecached build, a subset of the cases, the document elsewhere:")
w("# RATECACHED_BIN=path/to/ratecached BENCH_CASES=\"ratelimit-hot\" BENCH_DOC=/tmp/b.md scripts/bench-compare.sh")
for name, _ in cases:
    c = bench_cmd(name)
    if c:
        w(c)
w("```")
w("")
w("`127.0.0.1:PORT` are the free ports the script picked; `--server-pid` is each server's pid.")
w("")
w("## Running the load generator by hand")
w("")
w("```sh")
w("cargo build --release -p ratecache-bench")
w("target/release/ratecache-bench \\")
w("    --server 127.0.0.1:11211 --name ratecached --server-pid $(pidof ratecached) \\")
w("    --server 127.0.0.1:6379 --name redis --server-protocol redis --server-workload redis-fixed \\")
w("    --workload ratelimit --connections 50 --pipeline 16 --keys 100000 --duration 10 \\")
w("    --json out.json --plot out.png")
w("```")
w("")
w("`--name`, `--server-pid`, `--server-protocol` and `--server-workload` belong to the `--server` "
  "before them; servers run one after another with the same load and share one table, "
  "with ratios of the first server over each other. `--protocol text|meta|binary|redis`, "
  "`--workload getset|incr|ratelimit|redis-fixed|redis-sliding|fill|rl-fill`, `--ratio SET:GET` "
  "(default 1:10), `--key-dist uniform|zipf` (`--zipf-s`), `--value-size`, `--requests N` "
  "and/or `--duration SECS` (whichever comes first), `--seed`, `--ttl` and `--watch-expiry "
  "SECS` for fills; `ratecache-bench --help` lists them all. It exits with status 2 when "
  "any reply was wrong or missing.")

# The analysis between the markers is written by hand (from profiles) and kept across runs.
BEGIN, END = "<!-- notes:begin -->", "<!-- notes:end -->"
notes = "(no analysis yet: write it between the notes markers; reruns keep it)"
if os.path.exists(doc):
    old = open(doc).read()
    if BEGIN in old and END in old:
        notes = old.split(BEGIN, 1)[1].split(END, 1)[0].strip()
text = "\n".join(L) + "\n"
text = text.replace("<!-- notes -->", f"{BEGIN}\n{notes}\n{END}")
open(doc, "w").write(text)
print(f"wrote {doc}")
PY
log "done in $(($(date +%s) - START)) s"
