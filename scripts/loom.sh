#!/usr/bin/env bash
# Model-checks the limiter's per-entry lock (src/limiter/entry.rs) with loom: every
# interleaving, up to three preemptions, of two writers, and of a writer and a reader. Builds
# the crate with `--cfg ratecache_loom` in target/loom (a separate build: a few minutes the
# first time); the models themselves run in well under a second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
start=$(date +%s)
CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg ratecache_loom" \
    cargo test --lib limiter::entry::loom_tests -- --test-threads 1
echo "loom: passed in $(($(date +%s) - start)) s"
