#!/usr/bin/env bash
# Instructions per rate-limit decision, measured with valgrind's callgrind (repeatable, unlike
# timings on a shared machine): the server runs under callgrind twice, once answering 20,000
# and once 10,000 pipelined `ratelimit` lines over 1,000 subjects; the difference divided by
# 10,000 is the cost of one decision, start-up excluded.
#   usage: scripts/profile-ratelimit.sh [path/to/ratecached]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-target/release/ratecached}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --bin ratecached
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
USER_ARGS=()
[ "$(id -u)" -eq 0 ] && USER_ARGS=(-u root)

run() { # run BATCHES -> total instructions
    local batches=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$batches" "$BIN" -p "$port" -U 0 -t 1 "${USER_ARGS[@]}" \
        >/dev/null 2>"$OUT/valgrind.$batches.log" &
    local pid=$!
    python3 - "$port" "$batches" <<'PY'
import socket, sys, time
port, batches = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 60
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("server did not start")
        time.sleep(0.2)
for b in range(batches):
    s.sendall(b"".join(b"ratelimit user:%06d 100 1s\r\n" % ((b * 200 + i) % 1000) for i in range(200)))
    got = b""
    while got.count(b"\n") < 200:
        got += s.recv(65536)
PY
    kill -INT "$pid"
    wait "$pid" || true
    callgrind_annotate "$OUT/cg.$batches" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
FULL=$(run 100)
HALF=$(run 50)
echo "instructions per decision: $(( (FULL - HALF) / 10000 )) (totals: $FULL for 20,000, $HALF for 10,000)"
