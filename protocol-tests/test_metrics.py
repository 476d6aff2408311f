"""Rate-limit observability (ratecached only): `stats ratelimit` (text and binary) with its
per-policy and per-prefix counters, and the Prometheus endpoint of `--metrics ADDR`,
scraped over HTTP with exact counter values."""
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import binproto as bp
from helpers import HOST, base_args, free_port, parse_stats

pytestmark = pytest.mark.ratecached_only

POLICIES = (
    '[policy.free]\nlimits = [ { limit = 2, period = "1h" } ]\n'
    '[policy.pro]\nlimits = [ { limit = 100, period = "1h", burst = 10 },'
    ' { limit = 5, period = "1m", algorithm = "fixed" } ]\n'
)


def run_workload(srv) -> None:
    """14 rate-limit requests over text, meta and binary, and a little cache traffic.

    Outcomes: 8 allowed, 2 denied, 4 errors. Policy free 2/1/0 (1 state), pro 1/0/1 (2 states:
    one per limit); prefix `user` 4/1/2 (4 states), `ip` 4/1/0 (4 states); `nodelim` has no
    prefix; one unknown policy."""
    with srv.connect() as c:
        steps = [
            (b"ratelimit user:1 @free\r\n", b"ALLOWED 2 1 "),
            (b"ratelimit user:1 @free\r\n", b"ALLOWED 2 0 "),
            (b"ratelimit user:1 @free\r\n", b"DENIED 2 0 "),
            (b"ratelimit user:2 @pro\r\n", b"ALLOWED 5 4 "),
        ]
        for line, start in steps:
            assert c.request(line, until=b"END\r\n").startswith(start), line
        # (Error texts may gain usage hints: only their kind is checked.)
        assert c.roundtrip(b"ratelimit user:2 @pro 20\r\n").startswith(b"CLIENT_ERROR cost exceeds burst")
        assert c.roundtrip(b"ratelimit user:3 @gold\r\n").startswith(b"CLIENT_ERROR unknown policy")
        assert c.request(b"ratelimit ip:10.0.0.1 1 1m\r\n").startswith(b"ALLOWED 1 0 ")
        assert c.request(b"ratelimit ip:10.0.0.1 1 1m\r\n").startswith(b"DENIED 1 0 ")
        assert c.roundtrip(b"ml ip:10.0.0.2 R5 W1m\r\n") == b"HD\r\n"
        reply = c.request(b"ratelimit_all 2\r\nuser:4 10 1m\r\nip:10.0.0.4 10 1m\r\n", until=b"END\r\n")
        assert reply.startswith(b"ALLOWED 10 9 ")
        assert c.request(b"ratelimit nodelim 5 1m\r\n").startswith(b"ALLOWED 5 4 ")
        assert c.roundtrip(b"set user:9 0 0 1\r\nx\r\n") == b"STORED\r\n"
        assert c.roundtrip(b"ratelimit user:9 5 1m\r\n").startswith(b"CLIENT_ERROR key holds incompatible")
        assert c.roundtrip(b"ratelimit bad\r\n").startswith(b"CLIENT_ERROR ")
        assert c.roundtrip(b"get user:9\r\nget nope\r\n") == b"VALUE user:9 0 1\r\nx\r\nEND\r\nEND\r\n"
    with srv.connect() as b:
        [r] = bp.roundtrip(b, bp.ratelimit(b"ip:10.0.0.3", 5, 60_000))
        assert r.status == bp.OK


def counts(base: str, allowed: int, denied: int, errors: int, keys: int) -> list[str]:
    return [f"{base}:allowed {allowed}", f"{base}:denied {denied}", f"{base}:errors {errors}", f"{base}:keys {keys}"]


EXPECTED_STATS = (
    ["policies 2", "unknown_policy 1", "policy:free:limit:0 2 1h 2 gcra"]
    + counts("policy:free", 2, 1, 0, 1)
    + ["policy:pro:limit:0 100 1h 10 gcra", "policy:pro:limit:1 5 1m 5 fixed"]
    + counts("policy:pro", 1, 0, 1, 2)
    + counts("policy_overflow", 0, 0, 0, 0)
    + ["prefixes 2", "prefix_limit 254"]
    + counts("prefix:user", 4, 1, 2, 4)
    + counts("prefix:ip", 4, 1, 0, 4)
    + counts("prefix_overflow", 0, 0, 0, 0)
)


def stats_text(lines: list[str]) -> bytes:
    return b"".join(b"STAT %s\r\n" % line.encode() for line in lines) + b"END\r\n"


@pytest.fixture
def policies(tmp_path):
    path = tmp_path / "policies.toml"
    path.write_text(POLICIES)
    return path


def test_stats_ratelimit_counts_per_policy_and_prefix(make_server, policies):
    srv = make_server("--policies", str(policies))
    run_workload(srv)
    with srv.connect() as c:
        assert c.roundtrip(b"stats ratelimit\r\n") == stats_text(EXPECTED_STATS)
        general = c.stats()
        assert (general["cmd_ratelimit"], general["ratelimit_allowed"], general["ratelimit_denied"],
                general["ratelimit_errors"], general["ratelimit_keys"]) == ("14", "8", "2", "4", "9")
    # The binary protocol's `stat ratelimit` gives the same pairs.
    with srv.connect() as b:
        rs = bp.roundtrip(b, bp.stat(b"ratelimit"))
        assert rs[-1].keylen == 0 and rs[-1].bodylen == 0
        pairs = [f"{r.key.decode()} {r.value.decode()}" for r in rs[:-1]]
        assert pairs == EXPECTED_STATS


SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
LABELS = re.compile(r'(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse_exposition(text: str):
    """Families (name -> type) and samples ((name, labels) -> value), checking the text
    format: HELP then TYPE before each family's samples, each family and series once."""
    assert text.endswith("\n")
    types, samples, current, helped = {}, {}, None, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split(" ", 3)[2]
            assert current not in helped, f"family {current} twice"
            helped.add(current)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and kind in ("counter", "gauge"), line
            types[name] = kind
        else:
            m = SAMPLE.fullmatch(line)
            assert m and m.group(1) == current and current in types, line
            assert LABELS.fullmatch(m.group(2) or ""), line
            key = (m.group(1), tuple(sorted(LABEL.findall(m.group(2) or ""))))
            assert key not in samples, f"series twice: {line}"
            samples[key] = float(m.group(3))
    return types, samples


def scrape(port: int, path: str = "/metrics", method: str = "GET"):
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, dict(r.headers), r.read()


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_scrape_has_exact_counters(make_server, policies):
    port = free_port()
    srv = make_server("--policies", str(policies), "--metrics", f"{HOST}:{port}")
    run_workload(srv)
    status, headers, body = scrape(port)
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["Connection"] == "close" and int(headers["Content-Length"]) == len(body)
    types, s = parse_exposition(body.decode())
    expected = {
        # memcached_exporter's names for the shared stats
        ("memcached_up", ()): 1,
        ("memcached_version", (("version", "1.6.18"),)): 1,
        ("memcached_commands_total", (("command", "get"), ("status", "hit"))): 1,
        ("memcached_commands_total", (("command", "get"), ("status", "miss"))): 1,
        ("memcached_commands_total", (("command", "set"), ("status", "hit"))): 1,
        ("memcached_current_items", ()): 1,
        ("memcached_max_connections", ()): 1024,
        ("memcached_limit_bytes", ()): 64 * 1024 * 1024,
        # the rate-limit metrics
        ("ratecache_ratelimit_commands_total", ()): 14,
        ("ratecache_ratelimit_decisions_total", (("result", "allowed"),)): 8,
        ("ratecache_ratelimit_decisions_total", (("result", "denied"),)): 2,
        ("ratecache_ratelimit_errors_total", ()): 4,
        ("ratecache_ratelimit_keys", ()): 9,
        ("ratecache_ratelimit_evictions_total", ()): 0,
        ("ratecache_ratelimit_limit_bytes", ()): 64 * 1024 * 1024,
        ("ratecache_ratelimit_policies", ()): 2,
        ("ratecache_ratelimit_unknown_policy_total", ()): 1,
        ("ratecache_ratelimit_prefixes", ()): 2,
        ("ratecache_ratelimit_prefix_limit", ()): 254,
    }
    for (name, labels), want in expected.items():
        assert s[(name, labels)] == want, (name, labels)
    rows = {
        ("policy", "free"): (2, 1, 0, 1),
        ("policy", "pro"): (1, 0, 1, 2),
        ("prefix", "user"): (4, 1, 2, 4),
        ("prefix", "ip"): (4, 1, 0, 4),
    }
    for (label, name), (allowed, denied, errors, keys) in rows.items():
        base = f"ratecache_ratelimit_{label}"
        got = (
            value(s, f"{base}_decisions_total", **{label: name, "result": "allowed"}),
            value(s, f"{base}_decisions_total", **{label: name, "result": "denied"}),
            value(s, f"{base}_errors_total", **{label: name}),
            value(s, f"{base}_keys", **{label: name}),
        )
        assert got == (allowed, denied, errors, keys), (label, name)
    assert value(s, "ratecache_ratelimit_policy_limit", policy="pro", index="1", algorithm="fixed") == 5
    assert value(s, "ratecache_ratelimit_policy_period_seconds", policy="pro", index="1") == 60
    assert value(s, "ratecache_ratelimit_policy_burst", policy="pro", index="0") == 10
    assert value(s, "ratecache_ratelimit_overflow_decisions_total", table="prefix", result="allowed") == 0
    assert value(s, "ratecache_ratelimit_bytes") > 0
    assert types["memcached_commands_total"] == "counter" and types["ratecache_ratelimit_keys"] == "gauge"
    assert ("ratecache_ratelimit_prefix_keys", (("prefix", "nodelim"),)) not in s

    # A scrape is read-only: the next one shows the same rate-limit counters; a decision moves one.
    with srv.connect() as c:
        assert c.request(b"ratelimit user:1 @free\r\n", until=b"END\r\n").startswith(b"DENIED")
    _, s2 = parse_exposition(scrape(port)[2].decode())
    assert value(s2, "ratecache_ratelimit_policy_decisions_total", policy="free", result="denied") == 2
    assert value(s2, "ratecache_ratelimit_prefix_decisions_total", prefix="user", result="denied") == 2
    assert value(s2, "ratecache_ratelimit_commands_total") == 15


def test_stats_reset_zeroes_the_counters_and_keeps_rows_and_states(make_server, policies):
    srv = make_server("--policies", str(policies))
    run_workload(srv)
    with srv.connect() as c:
        assert c.roundtrip(b"stats reset\r\n") == b"RESET\r\n"
        after = parse_stats(c.roundtrip(b"stats ratelimit\r\n"))
        assert (after["unknown_policy"], after["policy:free:allowed"], after["prefix:user:errors"]) == ("0", "0", "0")
        assert (after["prefixes"], after["policy:pro:keys"], after["prefix:ip:keys"]) == ("2", "2", "4")
        # A reload keeps a policy's counters by name and adds the new ones at zero.
        assert c.request(b"ratelimit user:1 @free\r\n", until=b"END\r\n").startswith(b"DENIED")
        policies.write_text('[policy.free]\nlimits = [ { limit = 3, period = "1h" } ]\n'
                            '[policy.gold]\nlimits = [ { limit = 9, period = "1d" } ]\n')
        srv.proc.send_signal(1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = parse_stats(c.roundtrip(b"stats ratelimit\r\n"))
            if "policy:gold:allowed" in now:
                break
            time.sleep(0.05)
        assert now["policy:free:limit:0"] == "3 1h 3 gcra" and now["policy:gold:limit:0"] == "9 1d 9 gcra"
        assert (now["policies"], now["policy:free:denied"], now["policy:gold:denied"]) == ("2", "1", "0")
        assert "policy:pro:allowed" not in now


def test_the_prefix_table_is_bounded(make_server):
    # 300 prefixes: the first 254 get rows, the other 46 are counted together as overflow.
    srv = make_server()
    with srv.connect() as c:
        c.send(b"".join(b"ratelimit p%d:x 5 1h noreply\r\n" % i for i in range(300)))
        s = parse_stats(c.roundtrip(b"stats ratelimit\r\n"))
    assert (s["prefixes"], s["prefix_limit"]) == ("254", "254")
    assert (s["prefix:p0:allowed"], s["prefix:p253:keys"]) == ("1", "1")
    assert "prefix:p254:allowed" not in s
    assert (s["prefix_overflow:allowed"], s["prefix_overflow:keys"]) == ("46", "46")


def http(port: int, request: bytes) -> bytes:
    """Send raw bytes to the metrics port; everything it answers before closing."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_metrics_endpoint_answers_http_errors_and_survives(make_server):
    port = free_port()
    srv = make_server("--metrics", str(port))  # a bare port is 127.0.0.1:port
    ok = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n# HELP memcached_up " in ok
    head = http(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) > 1000
    assert http(port, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 Not Found\r\n")
    post = http(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert post.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n") and b"\r\nAllow: GET, HEAD\r\n" in post
    assert http(port, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request\r\n")
    huge = b"GET /metrics HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 9000 + b"\r\n\r\n"
    assert http(port, huge).startswith(b"HTTP/1.1 431 ")
    assert http(port, b"GET /metr") == b"", "a client that gives up gets nothing"
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(port, "/other")
    assert e.value.code == 404
    assert scrape(port)[0] == 200
    assert srv.alive()
    with srv.connect() as c:
        assert c.roundtrip(b"stats ratelimit\r\n").startswith(b"STAT policies 0\r\n")


@pytest.mark.parametrize("addr, message", [
    ("localhost:9150", 'Invalid --metrics address "localhost:9150"'),
    ("0", 'Invalid --metrics address "0": the port must not be 0'),
])
def test_a_bad_metrics_address_stops_the_start(binary, addr, message):
    proc = subprocess.run([binary] + base_args(free_port()) + ["--metrics", addr],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert proc.returncode != 0 and message in proc.stderr.decode(errors="replace")


def test_a_busy_metrics_port_stops_the_start(binary):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run([binary] + base_args(free_port()) + ["--metrics", f"{HOST}:{port}"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert proc.returncode != 0
    assert f"--metrics {HOST}:{port}: " in proc.stderr.decode(errors="replace")


def test_decision_keys_are_counted_like_ratelimit(make_server, policies):
    # The get form (--ratelimit-prefix) decides through the same place: its subject's prefix
    # and its policy are counted too.
    srv = make_server("--policies", str(policies), "--ratelimit-prefix", "rl:")
    with srv.connect() as c:
        for _ in range(3):
            assert c.roundtrip(b"get rl:free/user:1\r\n").startswith(b"VALUE rl:free/user:1 ")
        assert c.roundtrip(b"get rl:5/1m/ip:1\r\n").startswith(b"VALUE rl:5/1m/ip:1 ")
        s = parse_stats(c.roundtrip(b"stats ratelimit\r\n"))
    got = [s[k] for k in ("policy:free:allowed", "policy:free:denied", "policy:free:keys",
                          "prefix:user:allowed", "prefix:user:denied", "prefix:ip:allowed", "prefix:ip:keys")]
    assert got == ["2", "1", "1", "2", "1", "1", "1"]
