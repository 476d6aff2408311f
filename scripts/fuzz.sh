#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a fixed time each, one after the other, and fails
# on the first crash (see docs/fuzzing.md).
#
#   scripts/fuzz.sh [seconds-per-target]     (default 20)
#
# Needs the nightly toolchain and cargo-fuzz (installed with `cargo install cargo-fuzz` when
# missing). Without nightly, or when cargo-fuzz or the fuzz crate's dependencies cannot be
# fetched, it prints `fuzz: skipped (<reason>)` and exits 0.
#
# New corpus entries go to target/fuzz-corpus/<target> (the committed seeds in
# fuzz/corpus/<target> are only read); logs to target/fuzz-logs/<target>.log; a crashing
# input to fuzz/artifacts/<target>/.
#
# Environment:
#   FUZZ_TARGETS     space-separated targets to run (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER   cargo-fuzz sanitizer (default: none; the decoders are safe Rust, and
#                    overflow checks and debug assertions are on either way)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
SECONDS_PER_TARGET="${1:-20}"
SANITIZER="${FUZZ_SANITIZER:-none}"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

skip() {
    echo "fuzz: skipped ($1)"
    exit 0
}

case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-target]" >&2; exit 2 ;;
esac

command -v cargo >/dev/null 2>&1 || skip "cargo not found"
cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain"
mkdir -p "$ROOT/target/fuzz-logs"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz >"$ROOT/target/fuzz-logs/install.log" 2>&1 \
        || skip "cargo install cargo-fuzz failed, see target/fuzz-logs/install.log"
fi
cargo +nightly fetch --manifest-path fuzz/Cargo.toml >"$ROOT/target/fuzz-logs/fetch.log" 2>&1 \
    || skip "crates.io unavailable, see target/fuzz-logs/fetch.log"

FLAGS=(--debug-assertions --sanitizer "$SANITIZER")
start=$(date +%s)
echo "fuzz: building targets"
if ! cargo +nightly fuzz build "${FLAGS[@]}" >"$ROOT/target/fuzz-logs/build.log" 2>&1; then
    tail -n 30 "$ROOT/target/fuzz-logs/build.log"
    echo "fuzz: FAILED (build, see target/fuzz-logs/build.log)"
    exit 1
fi
echo "fuzz: built in $(($(date +%s) - start)) s"

read -r -a TARGETS <<<"${FUZZ_TARGETS:-$(cargo +nightly fuzz list | tr '\n' ' ')}"
failed=0
for t in "${TARGETS[@]}"; do
    corpus="$ROOT/target/fuzz-corpus/$t"
    log="$ROOT/target/fuzz-logs/$t.log"
    mkdir -p "$corpus" "fuzz/corpus/$t"
    # One process per target (no -jobs/-workers): the machine stays usable for others.
    if cargo +nightly fuzz run "${FLAGS[@]}" "$t" "$corpus" "fuzz/corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1 \
        >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "fuzz: $t ok (${SECONDS_PER_TARGET} s, ${runs:-?} execs, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) in target/fuzz-corpus)"
    else
        failed=1
        grep -E "panicked at|^(Failing input|Reproduce with)|Test unit written" -A2 "$log" | head -n 20 || true
        tail -n 5 "$log"
        echo "fuzz: $t FAILED (log: target/fuzz-logs/$t.log, input in fuzz/artifacts/$t/)"
    fi
done
echo "fuzz: $([ "$failed" = 0 ] && echo ok || echo FAILED) in $(($(date +%s) - start)) s"
exit "$failed"
