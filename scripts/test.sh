#!/usr/bin/env bash
# The project's single test command (CI runs it through .ci/run).
#
#   1. system tools: memcached (the reference server) and memccapable
#   1b. optional clients of the scaling and client-library tests: twemproxy (nutcracker), Go
#       and gomemcache, PHP Memcached, libmemcached-dev, memjs from npm (skips with a line each)
#   2. Python venv at target/venv with protocol-tests/requirements.txt
#   3. cargo test --workspace
#   3b. the unsafe code under Miri (scripts/miri.sh: its own tests and the lock-free races;
#       `scripts/miri.sh --all` by hand; skips with a line if no nightly)
#   3c. a short pass of every decoder fuzz target (scripts/fuzz.sh, FUZZ_SECONDS each)
#   4. cargo build --release
#   5. differential protocol tests (pytest) against memcached and ratecached
#   5b. the HTTP example in docs/examples against ratecached
#   5c. a short differential wire fuzz against memcached (scripts/wire-fuzz.py, WIRE_CASES)
#   6. memccapable (ascii and binary conformance) against target/release/ratecached
#
# Environment:
#   PROTOCOL_TARGETS   comma list for step 5 (default: memcached,ratecached)
#   PYTEST_ARGS        extra pytest arguments for step 5 (e.g. "-k incr -x")
#   RATECACHED_BIN     server binary (default: target/release/ratecached)
#   FUZZ_SECONDS       seconds per fuzz target in step 3c (default 10)
#   WIRE_CASES         cases of the wire fuzz in step 5c (default 300, about 10 s)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

export PROTOCOL_TARGETS="${PROTOCOL_TARGETS:-memcached,ratecached}"
export RATECACHED_BIN="${RATECACHED_BIN:-$ROOT/target/release/ratecached}"
VENV="$ROOT/target/venv"
PY="$VENV/bin/python"
LOG_DIR="$ROOT/target/test-logs"
mkdir -p "$LOG_DIR"

declare -a SUMMARY=()
FAILED=0
SERVER_PID=""

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

banner() { printf '\n==== %s ====\n' "$*"; }

# record NAME STATUS DETAIL
record() {
    SUMMARY+=("$(printf '%-16s %-5s %s' "$1" "$2" "$3")")
    if [ "$2" = FAIL ]; then FAILED=$((FAILED + 1)); fi
}

# step NAME COMMAND...: run, time and record one step; never exits.
step() {
    local name=$1
    shift
    banner "$name: $*"
    local start=$SECONDS
    if "$@"; then
        record "$name" ok "($((SECONDS - start))s)"
        return 0
    else
        local rc=$?
        record "$name" FAIL "(exit $rc, $((SECONDS - start))s)"
        return "$rc"
    fi
}

skip() { record "$1" skip "($2)"; }

# -- 1. system tools ---------------------------------------------------------
install_tools() {
    local missing=()
    command -v memcached >/dev/null 2>&1 || missing+=(memcached)
    command -v memccapable >/dev/null 2>&1 || missing+=(libmemcached-tools)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: memcached and memccapable are needed but ${missing[*]} is missing;" \
                "run: sudo apt-get install -y memcached libmemcached-tools" >&2
            return 1
        fi
        echo "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q memcached libmemcached-tools || return 1
    fi
    command -v memcached >/dev/null 2>&1 || { echo "error: memcached not found" >&2; return 1; }
    command -v memccapable >/dev/null 2>&1 || { echo "error: memccapable not found" >&2; return 1; }
    echo "reference: $(memcached -V 2>&1) at $(command -v memcached); memccapable at $(command -v memccapable)"
}

# -- 1b. the client libraries and the proxy of the scaling tests (optional) -------------
# protocol-tests/test_clients_lang.py and test_scaling.py drive ratecached through unchanged
# clients of five languages and through twemproxy; each test whose client is missing skips
# with its reason, so a package that cannot be had here is one line, never a failure.
MEMJS_VERSION=1.3.2
install_clients() {
    local wanted=() missing=() pkg
    command -v nutcracker >/dev/null 2>&1 || [ -x /usr/sbin/nutcracker ] || wanted+=(nutcracker)
    command -v go >/dev/null 2>&1 || wanted+=(golang-go)
    [ -d /usr/share/gocode/src/github.com/bradfitz/gomemcache ] || wanted+=(golang-github-bradfitz-gomemcache-dev)
    command -v php >/dev/null 2>&1 || wanted+=(php-cli)
    if ! command -v php >/dev/null 2>&1 || ! php -r 'exit(class_exists("Memcached") ? 0 : 1);' >/dev/null 2>&1; then
        wanted+=(php-memcached)
    fi
    pkg-config --exists libmemcached 2>/dev/null || wanted+=(libmemcached-dev)
    command -v npm >/dev/null 2>&1 || wanted+=(npm)
    if [ ${#wanted[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "skip: ${wanted[*]} not installed and not root; their clients' tests skip" \
                "(sudo apt-get install -y ${wanted[*]})"
        else
            echo "installing ${wanted[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || true
            if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${wanted[@]}" >/dev/null; then
                for pkg in "${wanted[@]}"; do
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null ||
                        missing+=("$pkg")
                done
            fi
            if [ ${#missing[@]} -gt 0 ]; then
                echo "skip: apt-get could not install ${missing[*]}; their clients' tests skip"
            fi
        fi
    fi
    if [ -d target/node-clients/node_modules/memjs ]; then
        :
    elif ! command -v npm >/dev/null 2>&1; then
        echo "skip: memjs: npm not found; the memjs test skips"
    elif ! timeout 300 npm install --prefix target/node-clients --no-audit --no-fund --silent \
        "memjs@$MEMJS_VERSION" >"$LOG_DIR/npm.log" 2>&1; then
        echo "skip: memjs: npm install failed (registry unreachable?), the memjs test skips:" \
            "$(tail -n 1 "$LOG_DIR/npm.log")"
    fi
    echo "clients: nutcracker $(command -v nutcracker || echo missing)," \
        "go $(command -v go || echo missing), php $(command -v php || echo missing)," \
        "memjs $([ -d target/node-clients/node_modules/memjs ] && echo installed || echo missing)"
}

# -- 2. Python venv ------------------------------------------------------------
setup_venv() {
    if [ ! -x "$PY" ] || ! "$PY" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$VENV"
        python3 -m venv "$VENV" || return 1
    fi
    "$PY" -m pip install -q --disable-pip-version-check -r protocol-tests/requirements.txt || return 1
    "$PY" -m pytest --version || return 1
}

# -- 3b. Miri -------------------------------------------------------------------------
miri_run() {
    scripts/miri.sh 2>&1 | tee "$LOG_DIR/miri.log"
    local rc=${PIPESTATUS[0]}
    MIRI_LINE=$(grep -E '^miri: ' "$LOG_DIR/miri.log" | tail -n 1 || true)
    return "$rc"
}

# -- 3c. fuzzing ------------------------------------------------------------------------
fuzz_run() {
    scripts/fuzz.sh "${FUZZ_SECONDS:-10}" 2>&1 | tee "$LOG_DIR/fuzz.log"
    local rc=${PIPESTATUS[0]}
    FUZZ_LINE=$(grep -E '^fuzz: ' "$LOG_DIR/fuzz.log" | tail -n 1 || true)
    return "$rc"
}

# -- 5. protocol tests ----------------------------------------------------------
protocol_tests() {
    # shellcheck disable=SC2086
    "$PY" -m pytest protocol-tests -q ${PYTEST_ARGS:-} 2>&1 | tee "$LOG_DIR/pytest.log"
    local rc=${PIPESTATUS[0]}
    PYTEST_LINE=$(grep -E '[0-9]+ (passed|failed|error)' "$LOG_DIR/pytest.log" | tail -n 1 || true)
    return "$rc"
}

# -- 5b. the HTTP example (docs/examples) against ratecached ----------------------
examples_tests() {
    "$PY" -m pytest docs/examples -q -p no:cacheprovider 2>&1 | tee "$LOG_DIR/examples.log"
    return "${PIPESTATUS[0]}"
}

# -- 5c. differential wire fuzz ------------------------------------------------------
wire_fuzz_run() {
    "$PY" scripts/wire-fuzz.py --cases "${WIRE_CASES:-300}" --seed "${WIRE_SEED:-1}" 2>&1 |
        tee "$LOG_DIR/wire-fuzz.log"
    local rc=${PIPESTATUS[0]}
    WIRE_LINE=$(grep -E '^wire-fuzz: [0-9]+ unexplained' "$LOG_DIR/wire-fuzz.log" | tail -n 1 || true)
    return "$rc"
}

# -- 6. memccapable against ratecached -------------------------------------------
memccapable_run() {
    local port
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local args=(-p "$port" -l 127.0.0.1 -U 0 -t 2)
    if [ "$(id -u)" -eq 0 ]; then args+=(-u root); fi
    echo "starting $RATECACHED_BIN ${args[*]}"
    "$RATECACHED_BIN" "${args[@]}" >"$LOG_DIR/memccapable-server.log" 2>&1 &
    SERVER_PID=$!
    local ready=0
    for _ in $(seq 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then ready=1; break; fi
        sleep 0.1
    done
    if [ "$ready" -ne 1 ]; then
        echo "ratecached did not start listening on port $port; its log:" >&2
        cat "$LOG_DIR/memccapable-server.log" >&2
        return 1
    fi

    local rc=0 died=0
    timeout 120 memccapable -t 5 -h 127.0.0.1 -p "$port" >"$LOG_DIR/memccapable.log" 2>&1 || rc=$?
    # memccapable prints test names on stdout and [pass]/[FAIL] on stderr.
    cat "$LOG_DIR/memccapable.log"
    local passes fails tests
    passes=$(grep -o '\[pass\]' "$LOG_DIR/memccapable.log" | wc -l)
    tests=$(grep -cE '^(ascii|binary) ' "$LOG_DIR/memccapable.log" || true)
    fails=$(grep -ciE '\[fail\]|tests? failed' "$LOG_DIR/memccapable.log" || true)
    MEMCCAPABLE_LINE="$passes of $tests pass, $fails fail lines, exit $rc"

    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "ratecached died during memccapable; its log:" >&2
        cat "$LOG_DIR/memccapable-server.log" >&2
        died=1
    fi
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""

    if [ "$rc" -ne 0 ] || [ "$died" -ne 0 ] || [ "$fails" -ne 0 ] || [ "$passes" -eq 0 ] \
        || [ "$passes" -ne "$tests" ] || ! grep -q '^binary ' "$LOG_DIR/memccapable.log" \
        || ! grep -q 'All tests passed' "$LOG_DIR/memccapable.log"; then
        echo "memccapable: FAILED ($MEMCCAPABLE_LINE)" >&2
        return 1
    fi
    echo "memccapable: all $passes ascii and binary tests passed"
}

PYTEST_LINE=""
MEMCCAPABLE_LINE=""
MIRI_LINE=""
WIRE_LINE=""
FUZZ_LINE=""

TOOLS_OK=1
step deps install_tools || TOOLS_OK=0
step clients install_clients || true
VENV_OK=1
step venv setup_venv || VENV_OK=0
step "cargo test" cargo test --workspace || true
step miri miri_run || true
SUMMARY[${#SUMMARY[@]} - 1]+=" ${MIRI_LINE}"
step fuzz fuzz_run || true
SUMMARY[${#SUMMARY[@]} - 1]+=" ${FUZZ_LINE}"
BUILD_OK=1
step "cargo build" cargo build --release || BUILD_OK=0

if [ "$VENV_OK" -eq 1 ] && [ "$TOOLS_OK" -eq 1 ]; then
    # Without a build the ratecached tests fail (a missing binary is a failure).
    step "protocol tests" protocol_tests || true
    SUMMARY[${#SUMMARY[@]} - 1]+=" ${PYTEST_LINE}"
else
    skip "protocol tests" "needs deps and venv"
fi

if [ "$BUILD_OK" -eq 1 ] && [ "$VENV_OK" -eq 1 ]; then
    step examples examples_tests || true
else
    skip examples "needs venv and a release build"
fi

if [ "$BUILD_OK" -eq 1 ] && [ "$TOOLS_OK" -eq 1 ] && [ "$VENV_OK" -eq 1 ]; then
    step "wire fuzz" wire_fuzz_run || true
    SUMMARY[${#SUMMARY[@]} - 1]+=" ${WIRE_LINE}"
else
    skip "wire fuzz" "needs deps, venv and a release build"
fi

if [ "$BUILD_OK" -eq 1 ] && [ "$TOOLS_OK" -eq 1 ] && [ "$VENV_OK" -eq 1 ]; then
    step memccapable memccapable_run || true
    SUMMARY[${#SUMMARY[@]} - 1]+=" ${MEMCCAPABLE_LINE}"
else
    skip memccapable "needs deps, venv and a release build"
fi

banner "summary (logs: target/test-logs/)"
for line in "${SUMMARY[@]}"; do echo "$line"; done
if [ "$FAILED" -ne 0 ]; then
    echo "RESULT: FAILED ($FAILED step(s))"
    exit 1
fi
echo "RESULT: all steps passed"
