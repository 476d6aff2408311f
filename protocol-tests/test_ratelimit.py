"""The ratelimit command family (../shared/spec/ratelimit.md) over TCP: ratecached only."""
import base64
import re
import socket
import struct
import subprocess
import threading
import time

import pytest
from pymemcache.client.base import Client

import binproto as bp
from helpers import base_args, free_port

pytestmark = pytest.mark.ratecached_only

LINE = re.compile(rb"^(ALLOWED|DENIED) (\d+) (\d+) (\d+) (\d+)\r\n$")


# memcached's form for `delete`: the error, two spaces, the usage.
USAGE = (
    b"CLIENT_ERROR bad command line format.  Usage: ratelimit <key> <limit> <period> "
    b"[<burst> [<cost>]] [gcra|fixed|sliding] [peek|refund] [noreply] "
    b"or ratelimit <key> @<policy> [<cost>] [peek|refund] [noreply]"
)
ALL_USAGE = (
    b"CLIENT_ERROR bad command line format.  Usage: ratelimit_all <n> [peek] [noreply], "
    b"then <n> lines of <key> <limit> <period> [<burst> [<cost>]] [gcra|fixed|sliding]"
)


def decision(reply: bytes):
    m = LINE.match(reply)
    assert m, reply
    return m.group(1).decode(), *(int(x) for x in m.groups()[1:])


def test_spec_example(conn):
    start = time.monotonic()
    assert conn.request(b"ratelimit api:u42 100 60s 10\r\n") == b"ALLOWED 10 9 0 600\r\n"
    for _ in range(9):
        assert conn.request(b"ratelimit api:u42 100 60s 10\r\n").startswith(b"ALLOWED 10 ")
    line = conn.request(b"ratelimit api:u42 100 60s 10\r\n")
    elapsed_ms = (time.monotonic() - start) * 1000
    # The spec's `DENIED 10 0 600 6000`, less the milliseconds the eleven calls took.
    verdict, limit, remaining, retry, reset = LINE.match(line).groups()
    assert (verdict, limit, remaining) == (b"DENIED", b"10", b"0")
    assert 600 - elapsed_ms - 1 <= int(retry) <= 600 and int(reset) == int(retry) + 5400


def test_pymemcache_raw_command_unchanged(server):
    c = Client(("127.0.0.1", server.port))
    try:
        assert c.raw_command(b"ratelimit rc:1 3 1m") == b"ALLOWED 3 2 0 20000"
        c.raw_command(b"ratelimit rc:1 3 1m")
        c.raw_command(b"ratelimit rc:1 3 1m")
        verdict, limit, remaining, retry, reset = c.raw_command(b"ratelimit rc:1 3 1m").split()
        assert (verdict, limit, remaining) == (b"DENIED", b"3", b"0")
        assert int(retry) >= 1 and int(reset) >= int(retry)
    finally:
        c.close()


@pytest.mark.parametrize("period,ns_per_token_ms", [(b"1s", 100), (b"1", 100), (b"1000ms", 100), (b"1m", 6000), (b"1h", 360000)])
def test_period_units(conn, period, ns_per_token_ms):
    r = conn.request(b"ratelimit u:%s 10 %s\r\n" % (period, period))
    assert decision(r) == ("ALLOWED", 10, 9, 0, ns_per_token_ms)


@pytest.mark.parametrize("alg", [b"gcra", b"fixed", b"sliding"])
def test_each_algorithm_allows_then_denies(conn, alg):
    for i in range(3):
        assert decision(conn.request(b"ratelimit a:%s 3 1h %s\r\n" % (alg, alg)))[:3] == ("ALLOWED", 3, 2 - i)
    v, limit, remaining, retry, reset = decision(conn.request(b"ratelimit a:%s 3 1h %s\r\n" % (alg, alg)))
    assert (v, limit, remaining) == ("DENIED", 3, 0)
    assert retry >= 1


def test_peek_answers_like_consume_without_spending(conn):
    peek = conn.request(b"ratelimit p 5 1m peek\r\n")
    assert peek.startswith(b"ALLOWED 5 4 0 ")
    assert conn.request(b"ratelimit p 5 1m peek\r\n") == peek
    assert conn.request(b"ratelimit p 5 1m\r\n").startswith(b"ALLOWED 5 4 0 ")


def test_refund_gives_tokens_back(conn):
    conn.request(b"ratelimit r 2 1h 2 2\r\n")
    assert conn.request(b"ratelimit r 2 1h\r\n").startswith(b"DENIED 2 0 ")
    assert conn.request(b"ratelimit r 2 1h 2 2 refund\r\n").startswith(b"ALLOWED 2 2 0 ")
    assert conn.request(b"ratelimit r 2 1h\r\n").startswith(b"ALLOWED 2 1 0 ")


def test_cost_and_burst(conn):
    assert conn.request(b"ratelimit c 100 1s 20 15\r\n").startswith(b"ALLOWED 20 5 0 ")
    assert conn.request(b"ratelimit c 100 1s 20 15\r\n").startswith(b"DENIED 20 5 ")


def test_denied_changes_nothing(conn):
    conn.request(b"ratelimit d 1 1h\r\n")
    first = decision(conn.request(b"ratelimit d 1 1h\r\n"))
    second = decision(conn.request(b"ratelimit d 1 1h\r\n"))
    assert first[0] == second[0] == "DENIED"
    assert second[3] <= first[3]


def test_parameters_may_change_between_calls(conn):
    assert conn.request(b"ratelimit t 10 1m\r\n").startswith(b"ALLOWED 10 9 ")
    assert conn.request(b"ratelimit t 100 1m\r\n").startswith(b"ALLOWED 100 89 "), "gcra keeps its debt in time (6 s)"
    assert conn.request(b"ratelimit t 100 1m 50\r\n").startswith(b"ALLOWED 50 ")


@pytest.mark.parametrize(
    "line,reply",
    [
        (b"ratelimit\r\n", USAGE),
        (b"ratelimit k\r\n", USAGE),
        (b"ratelimit k 5\r\n", USAGE),
        (b"ratelimit k x 60\r\n", USAGE),
        (b"ratelimit k -1 60\r\n", USAGE),
        (b"ratelimit k 5 60w\r\n", USAGE),
        (b"ratelimit k 5 60 1 1 1\r\n", USAGE),
        (b"ratelimit " + b"k" * 251 + b" 5 60\r\n", USAGE),
        (b"ratelimit k 0 60\r\n", b"CLIENT_ERROR invalid limit"),
        (b"ratelimit k 4294967296 60\r\n", b"CLIENT_ERROR invalid limit"),
        (b"ratelimit k 5 0\r\n", b"CLIENT_ERROR invalid period"),
        (b"ratelimit k 5 0ms\r\n", b"CLIENT_ERROR invalid period"),
        (b"ratelimit k 5 366d\r\n", b"CLIENT_ERROR invalid period"),
        (b"ratelimit k 5 60 4294967296\r\n", b"CLIENT_ERROR invalid burst"),
        (b"ratelimit k 5 60 3 fixed\r\n", b"CLIENT_ERROR invalid burst"),
        (b"ratelimit k 5 60 5 0\r\n", b"CLIENT_ERROR invalid cost"),
        (b"ratelimit k 5 60 0 6\r\n", b"CLIENT_ERROR cost exceeds burst"),
        (b"ratelimit k 5 60 bogus\r\n", b"CLIENT_ERROR unknown option"),
        (b"ratelimit k 5 60 gcra sliding\r\n", b"CLIENT_ERROR unknown option"),
        (b"ratelimit k 5 60 peek refund\r\n", b"CLIENT_ERROR unknown option"),
        (b"ratelimit k @nosuch\r\n", b"CLIENT_ERROR unknown policy"),
        (b"ratelimit_all\r\n", ALL_USAGE),
        (b"ratelimit_all 0\r\n", ALL_USAGE),
        (b"ratelimit_all 17\r\n", ALL_USAGE),
        (b"ratelimit_all 1 refund\r\n", b"CLIENT_ERROR unknown option"),
    ],
)
def test_errors_keep_the_connection_and_data(conn, line, reply):
    conn.set(b"keep", b"me")
    assert conn.roundtrip(line) == reply + b"\r\n"
    assert conn.get(b"keep") == b"me"


def test_incompatible_value_is_not_reset(conn):
    conn.set(b"plain", b"hello")
    assert conn.request(b"ratelimit plain 5 60\r\n") == b"CLIENT_ERROR key holds incompatible value\r\n"
    assert conn.get(b"plain") == b"hello"
    conn.request(b"ratelimit g 5 60\r\n")
    assert conn.request(b"ratelimit g 5 60 fixed\r\n") == b"CLIENT_ERROR key holds incompatible value\r\n"


def test_delete_and_flush_reset_state(conn):
    conn.request(b"ratelimit z 1 1h\r\n")
    assert conn.request(b"ratelimit z 1 1h\r\n").startswith(b"DENIED")
    assert conn.request(b"delete z\r\n") == b"DELETED\r\n"
    assert conn.request(b"ratelimit z 1 1h\r\n").startswith(b"ALLOWED")
    assert conn.request(b"flush_all\r\n") == b"OK\r\n"
    assert conn.request(b"ratelimit z 1 1h\r\n").startswith(b"ALLOWED")


def test_limiter_states_are_not_cache_items(conn):
    # A subject's state lives in the limiter's own memory: cache commands on its key see no
    # item, and cannot reset or shorten the state; delete (and md) reset it.
    assert conn.request(b"ratelimit s 2 1h\r\n").startswith(b"ALLOWED 2 1 ")
    assert conn.roundtrip(b"get s\r\n") == b"END\r\n"
    assert conn.roundtrip(b"touch s 1\r\n") == b"NOT_FOUND\r\n"
    assert conn.roundtrip(b"mg s v T1\r\n") == b"EN\r\n"
    assert conn.roundtrip(b"set s 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert conn.request(b"ratelimit s 2 1h\r\n").startswith(b"ALLOWED 2 0 "), "set reset nothing"
    assert conn.request(b"ratelimit s 2 1h\r\n").startswith(b"DENIED 2 0 ")
    assert conn.roundtrip(b"delete s\r\n") == b"DELETED\r\n"
    assert conn.request(b"ratelimit s 2 1h\r\n").startswith(b"ALLOWED 2 1 ")
    assert conn.roundtrip(b"md s\r\n") == b"HD\r\n"
    assert conn.roundtrip(b"md s\r\n") == b"NF\r\n"
    assert conn.request(b"ratelimit s 2 1h\r\n").startswith(b"ALLOWED 2 1 ")


def test_noreply_suppresses_replies(conn):
    assert conn.roundtrip(b"ratelimit n 5 60 noreply\r\nratelimit n 0 60 noreply\r\n") == b""
    assert conn.request(b"ratelimit n 5 60\r\n").startswith(b"ALLOWED 5 3 ")


def test_ratelimit_all_spends_all_or_none(conn):
    body = b"ratelimit_all 2\r\nu 100 1h\r\nu 2 1m fixed\r\n"
    r = conn.request(body, until=b"END\r\n").split(b"\r\n")
    assert r[0].startswith(b"ALLOWED 2 1 0 ") and r[1].startswith(b"ALLOWED 100 99 0 ")
    assert r[2].startswith(b"ALLOWED 2 1 0 ") and r[3] == b"END"
    conn.request(body, until=b"END\r\n")
    r = conn.request(body, until=b"END\r\n").split(b"\r\n")
    assert r[0].startswith(b"DENIED 2 0 ")
    # The hourly limit was not spent by the denied set: 98 left, peek shows 97 after a spend.
    assert conn.request(b"ratelimit u 100 1h peek\r\n").startswith(b"ALLOWED 100 97 ")


def test_ratelimit_all_bad_line_consumes_the_set(conn):
    r = conn.roundtrip(b"ratelimit_all 2\r\na 5 60\r\nb 5 60 bogus\r\n")
    assert r == b"CLIENT_ERROR unknown option\r\n"
    assert conn.request(b"ratelimit a 5 60 peek\r\n").startswith(b"ALLOWED 5 4 ")


def test_ratelimit_all_split_at_every_byte(server):
    data = b"ratelimit_all 2\r\nsp 10 1h\r\nsp 3 1m\r\n"
    for cut in range(1, len(data)):
        with server.connect() as c:
            c.send(data[:cut])
            time.sleep(0.002)
            c.send(data[cut:])
            lines = c.recv_until(b"END\r\n").split(b"\r\n")
            assert lines[0].startswith((b"ALLOWED", b"DENIED")) and lines[3] == b"END"


def test_stats_fields(conn):
    before = conn.stats()
    conn.request(b"ratelimit st 1 1h\r\n")
    conn.request(b"ratelimit st 1 1h\r\n")
    conn.request(b"ratelimit st 0 1h\r\n")
    after = conn.stats()
    keys = ("cmd_ratelimit", "ratelimit_allowed", "ratelimit_denied", "ratelimit_errors")
    delta = {k: int(after[k]) - int(before[k]) for k in keys}
    assert delta == {"cmd_ratelimit": 3, "ratelimit_allowed": 1, "ratelimit_denied": 1, "ratelimit_errors": 1}
    assert int(after["ratelimit_keys"]) >= 1


@pytest.mark.parametrize("alg", [b"gcra", b"fixed", b"sliding"])
def test_64_clients_on_one_key_never_over_admit(server, alg):
    limit, per_client = 300, 10
    key = b"hot:" + alg
    admitted = []
    lock = threading.Lock()

    def client():
        with server.connect() as c:
            batch = b"".join(b"ratelimit %s %d 1h %s\r\n" % (key, limit, alg) for _ in range(per_client))
            c.send(batch)
            n = 0
            for _ in range(per_client):
                n += c.recv_line().startswith(b"ALLOWED")
            with lock:
                admitted.append(n)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(admitted) == 64
    assert sum(admitted) == limit


def test_policies_file_and_sighup_reload(make_server, tmp_path):
    policies = tmp_path / "policies.toml"
    policies.write_text('[policy.free]\nlimits = [ { limit = 100, period = "1h" }, { limit = 2, period = "1m" } ]\n')
    srv = make_server("--policies", str(policies))
    with srv.connect() as c:
        r = c.request(b"ratelimit u1 @free\r\n", until=b"END\r\n").split(b"\r\n")
        assert r[0].startswith(b"ALLOWED 2 1 0 ") and r[1].startswith(b"ALLOWED 100 99 ")
        c.request(b"ratelimit u1 @free\r\n", until=b"END\r\n")
        assert c.request(b"ratelimit u1 @free\r\n", until=b"END\r\n").startswith(b"DENIED 2 0 ")
        assert c.request(b"ratelimit u1 @pro\r\n") == b"CLIENT_ERROR unknown policy\r\n"
        policies.write_text('[policy.pro]\nlimits = [ { limit = 1000, period = "1h", burst = 50 } ]\n')
        srv.proc.send_signal(1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = c.request(b"ratelimit u2 @pro peek\r\n", until=b"\r\n")
            if not r.startswith(b"CLIENT_ERROR"):
                break
            time.sleep(0.05)
        assert r.startswith(b"ALLOWED 50 49 ")
        c.recv_until(b"END\r\n")
        assert c.request(b"ratelimit u1 @free\r\n") == b"CLIENT_ERROR unknown policy\r\n"


def test_cache_traffic_never_evicts_limiter_state(make_server):
    # The repro of issue 10: -m 8, 1,000 subjects spent until DENIED, then 100,000 sets of
    # 16-byte values. The limiter has its own memory: the cache evicts its items, never a
    # state, and the next pass admits nobody.
    srv = make_server("-m", "8")
    with srv.connect() as c:
        spend = b"".join(b"ratelimit s%d 5 1h noreply\r\n" % i for i in range(1000)) * 5
        c.send(spend)
        c.request(b"mn\r\n", until=b"MN\r\n")
        for start in range(0, 100_000, 5_000):
            c.send(b"".join(b"set k%d 0 0 16 noreply\r\n%s\r\n" % (i, b"v" * 16) for i in range(start, start + 5_000)))
            c.request(b"mn\r\n", until=b"MN\r\n")
        stats = c.request(b"stats\r\n", until=b"END\r\n")
        assert int(re.search(rb"STAT evictions (\d+)", stats).group(1)) > 0, "the cache evicted"
        assert int(re.search(rb"STAT ratelimit_keys (\d+)", stats).group(1)) == 1000
        replies = c.request(b"".join(b"ratelimit s%d 5 1h\r\n" % i for i in range(1000)) + b"mn\r\n", until=b"MN\r\n")
        assert replies.count(b"DENIED") == 1000 and b"ALLOWED" not in replies


def test_delete_resets_every_limit_of_a_policy(make_server, tmp_path):
    policies = tmp_path / "policies.toml"
    policies.write_text('[policy.two]\nlimits = [ { limit = 100, period = "1h" }, { limit = 1, period = "1h" } ]\n')
    srv = make_server("--policies", str(policies))
    with srv.connect() as c:
        assert c.request(b"ratelimit u @two\r\n", until=b"END\r\n").startswith(b"ALLOWED 1 0 ")
        assert c.request(b"ratelimit u @two\r\n", until=b"END\r\n").startswith(b"DENIED 1 0 ")
        assert c.request(b"delete u\r\n") == b"DELETED\r\n"
        # Both states are gone: the hourly limit starts over too (99 left, not 98).
        r = c.request(b"ratelimit u @two\r\n", until=b"END\r\n").split(b"\r\n")
        assert r[0].startswith(b"ALLOWED 1 0 ") and r[1].startswith(b"ALLOWED 100 99 ")


def test_policy_cost_over_a_limits_capacity_is_refused(make_server, tmp_path):
    # As on an explicit line: a cost no limit of the policy could ever admit is an error,
    # not a denial with an endless retry.
    policies = tmp_path / "policies.toml"
    policies.write_text('[policy.p]\nlimits = [ { limit = 100, period = "1h" }, { limit = 5, period = "1m" } ]\n')
    srv = make_server("--policies", str(policies))
    with srv.connect() as c:
        assert c.request(b"ratelimit u @p 6\r\n") == b"CLIENT_ERROR cost exceeds burst\r\n"
        assert c.request(b"ratelimit u @p 5\r\n", until=b"END\r\n").startswith(b"ALLOWED 5 0 0 ")


def wait_for(check, what: str, timeout: float = 10.0):
    """Polls `check()` until it returns something truthy (a reload is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_extreme_parameters_are_exact(conn):
    # 600 tokens at one per 365 days: 600 years of debt, past 2^64 ns.
    assert conn.request(b"ratelimit x:1 1 365d 1000 600\r\n") == b"ALLOWED 1000 400 0 18921600000000\r\n"
    # The largest corner: a reset_after past 2^64 ms is printed in full.
    full = (2**32 - 1) * 31_536_000_000
    assert conn.request(b"ratelimit x:2 1 365d 4294967295 4294967295\r\n") == (
        b"ALLOWED 4294967295 0 0 %d\r\n" % full
    )
    assert conn.request(b"ratelimit x:2 1 365d 4294967295\r\n") == (
        b"DENIED 4294967295 0 31536000000 %d\r\n" % full
    )
    assert conn.request(b"ml x:2 R1 W365d B4294967295 a t\r\n") == b"NS a31536000000 t%d\r\n" % full
    assert conn.request(b"ratelimit x:3 4294967295 1ms 4294967295 4294967295\r\n") == (
        b"ALLOWED 4294967295 0 0 1\r\n"
    )


def test_policy_reload_refuses_an_empty_file_and_restarts_changed_algorithms(make_server, tmp_path):
    policies = tmp_path / "policies.toml"
    policies.write_text(
        '[policy.p]\nlimits = [ { limit = 1, period = "1h" }, { limit = 100, period = "1h" } ]\n'
    )
    srv = make_server("--policies", str(policies))
    with srv.connect() as c:
        def policy(line: bytes) -> list[bytes]:
            return c.request(line, until=b"END\r\n").split(b"\r\n")[:3]

        assert policy(b"ratelimit u1 @p\r\n")[0].startswith(b"ALLOWED 1 0 ")
        assert policy(b"ratelimit u1 @p\r\n")[0].startswith(b"DENIED 1 0 ")
        # A truncated deploy: the reload is refused, the old policy stays in force.
        policies.write_text("")
        srv.proc.send_signal(1)
        wait_for(lambda: "policy reload failed" in srv.log_text(), "the refused reload in the log")
        assert "defines no policy" in srv.log_text()
        assert policy(b"ratelimit u1 @p\r\n")[0].startswith(b"DENIED 1 0 ")
        # The first limit becomes a fixed window: its live subject starts afresh instead of
        # answering "incompatible"; the second limit keeps its state (99 left).
        policies.write_text(
            '[policy.p]\nlimits = [ { limit = 1, period = "1h", algorithm = "fixed" },'
            ' { limit = 100, period = "1h" } ]\n'
        )
        srv.proc.send_signal(1)
        wait_for(lambda: c.request(b"ratelimit u1 @p peek\r\n", until=b"END\r\n").startswith(b"ALLOWED"),
                 "the reloaded policy")
        lines = policy(b"ratelimit u1 @p\r\n")
        assert lines[0].startswith(b"ALLOWED 1 0 ")
        assert lines[2].startswith(b"ALLOWED 100 98 ")
        assert policy(b"ratelimit u1 @p\r\n")[0].startswith(b"DENIED 1 0 ")
        # Explicit requests still refuse another algorithm's state.
        assert c.request(b"ratelimit u1 1 1h\r\n") == b"CLIENT_ERROR key holds incompatible value\r\n"
        assert c.request(b"ratelimit u1 1 1h fixed\r\n").startswith(b"DENIED 1 0 ")


def test_an_empty_policy_file_stops_the_server_at_start(binary, tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    proc = subprocess.run(
        [binary] + base_args(free_port()) + ["--policies", str(empty)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
    )
    assert proc.returncode != 0
    assert f"{empty}: policy file defines no policy" in proc.stderr.decode(errors="replace")


def test_hidden_states_are_out_of_clients_reach(make_server, tmp_path):
    policies = tmp_path / "policies.toml"
    policies.write_text(
        '[policy.two]\nlimits = [ { limit = 100, period = "1h" },'
        ' { limit = 2, period = "1h", algorithm = "fixed" } ]\n'
    )
    srv = make_server("--policies", str(policies))
    hidden = b"u42\x00\x01"  # where the second limit's state of subject u42 lives
    b64 = base64.b64encode(hidden)
    with srv.connect() as c, srv.connect() as b:
        def decide() -> list[bytes]:
            return c.request(b"ratelimit u42 @two\r\n", until=b"END\r\n").split(b"\r\n")[:3]

        first = decide()
        assert first[1].startswith(b"ALLOWED 100 99 ") and first[2].startswith(b"ALLOWED 2 1 ")

        def binary(packet: bytes) -> bp.Resp:
            b.send(packet)
            return bp.read_resp(b)

        # Binary commands with the raw key, meta commands with the base64 key: all miss.
        assert binary(bp.get(hidden)).status == bp.NOT_FOUND
        assert binary(bp.req(bp.DELETE, hidden)).status == bp.NOT_FOUND
        assert c.request(b"mg " + b64 + b" b v\r\n") == b"EN\r\n"
        assert c.request(b"md " + b64 + b" b\r\n") == b"NF\r\n"
        # Storing under those bytes makes a separate client item, seen by both protocols.
        assert c.roundtrip(b"ms " + b64 + b" 4 b\r\nmine\r\n") == b"HD\r\n"
        assert c.request(b"mg " + b64 + b" b v\r\nmn\r\n", until=b"MN\r\n") == b"VA 4\r\nmine\r\nMN\r\n"
        r = binary(bp.get(hidden))
        assert (r.status, r.value) == (bp.OK, b"mine")
        assert binary(bp.store(bp.SET, hidden, b"bin")).status == bp.OK
        assert binary(bp.get(hidden)).value == b"bin"
        # The policy's decisions are unaffected: the second limit has one token left.
        second = decide()
        assert second[0].startswith(b"ALLOWED 2 0 ") and second[2].startswith(b"ALLOWED 2 0 ")
        assert binary(bp.req(bp.DELETE, hidden)).status == bp.OK
        assert binary(bp.req(bp.DELETE, hidden)).status == bp.NOT_FOUND
        assert binary(bp.get(hidden)).status == bp.NOT_FOUND
        assert c.request(b"mg " + b64 + b" b v\r\n") == b"EN\r\n"
        assert decide()[0].startswith(b"DENIED 2 0 ")
        assert int(c.stats()["ratelimit_keys"]) == 2

# ---- ml: the meta form -------------------------------------------------------------------


def test_ml_spec_example_and_fields(conn):
    assert conn.request(b"ml api:u42 R100 W60s B10 l r a t\r\n") == b"HD l10 r9 a0 t600\r\n"
    for _ in range(9):
        conn.request(b"ml api:u42 R100 W60s B10\r\n")
    r = conn.request(b"ml api:u42 R100 W60s B10 l r a t k O77\r\n")
    # The spec's a600 t6000 when no time passed; on a busy machine a millisecond may have, so
    # check the exact relation instead: the bucket is full 9 tokens (5,400 ms) after the retry.
    m = re.fullmatch(rb"NS l10 r0 a(\d+) t(\d+) kapi:u42 O77\r\n", r)
    assert m, r
    retry, reset = int(m.group(1)), int(m.group(2))
    assert 0 < retry <= 600 and reset - retry == 5400, r


def test_ml_quiet_pipeline_returns_only_denials(conn):
    batch = b"".join(b"ml q:%d R2 W1h q O%d\r\n" % (i % 2, i) for i in range(6)) + b"mn\r\n"
    reply = conn.request(batch, until=b"MN\r\n")
    assert reply == b"NS O4\r\nNS O5\r\nMN\r\n"


def test_ml_modes_algorithms_and_base64(conn):
    assert conn.request(b"ml bWw= b R3 W1m AF MP r k\r\n") == b"HD r2 kbWw= b\r\n"
    assert conn.request(b"ml ml R3 W1m AF r\r\n") == b"HD r2\r\n", "the base64 key is the same subject"
    assert conn.request(b"ml ml R3 W1m AF MR r\r\n") == b"HD r3\r\n"
    assert conn.request(b"ml ml R3 W1m AS\r\n") == b"CLIENT_ERROR key holds incompatible value\r\n"


@pytest.mark.parametrize(
    "line,reply",
    [
        (b"ml\r\n", b"ERROR"),
        (b"ml k R5\r\n", b"CLIENT_ERROR bad command line format"),
        (b"ml k W5\r\n", b"CLIENT_ERROR bad command line format"),
        (b"ml k R5 W1s R5\r\n", b"CLIENT_ERROR duplicate flag"),
        (b"ml k R5 W1s Z\r\n", b"CLIENT_ERROR invalid flag"),
        (b"ml k Rx W1s\r\n", b"CLIENT_ERROR bad token in command line format"),
        (b"ml k R5 W1s O" + b"x" * 40 + b"\r\n", b"CLIENT_ERROR opaque token too long"),
        (b"ml k R0 W1s\r\n", b"CLIENT_ERROR invalid limit"),
        (b"ml k R5 W0\r\n", b"CLIENT_ERROR invalid period"),
        (b"ml k R5 W1s D6\r\n", b"CLIENT_ERROR cost exceeds burst"),
        (b"ml k R5 W1s AQ\r\n", b"CLIENT_ERROR invalid mode for ml A token"),
        (b"ml k R5 W1s MQ\r\n", b"CLIENT_ERROR invalid mode for ml M token"),
    ],
)
def test_ml_errors(conn, line, reply):
    assert conn.roundtrip(line) == reply + b"\r\n"


@pytest.mark.parametrize("alg", [b"G", b"F", b"S"])
def test_ml_64_clients_never_over_admit(server, alg):
    limit, per_client = 200, 8
    admitted = []
    lock = threading.Lock()

    def client():
        with server.connect() as c:
            c.send(b"".join(b"ml hotml:%s R%d W1h A%s\r\n" % (alg, limit, alg) for _ in range(per_client)))
            n = sum(c.recv_line().startswith(b"HD") for _ in range(per_client))
            with lock:
                admitted.append(n)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(admitted) == 64 and sum(admitted) == limit


def test_ratelimit_all_64_clients_never_partial(server):
    """Two limits on overlapping subjects: every admitted set spent both, no denied set spent any."""
    admitted = []
    lock = threading.Lock()
    body = b"ratelimit_all 2\r\nsetA 100 1h\r\nsetB 150 1h\r\n"

    def client():
        with server.connect() as c:
            n = 0
            for _ in range(4):
                n += c.request(body, until=b"END\r\n").startswith(b"ALLOWED")
            with lock:
                admitted.append(n)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(admitted) == 100
    with server.connect() as c:
        assert c.request(b"ratelimit setB 150 1h peek\r\n").startswith(b"ALLOWED 150 49 ")
