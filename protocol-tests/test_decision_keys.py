"""Decisions through `get` (`--ratelimit-prefix`, ../shared/spec/ratelimit.md "Any client, any
proxy"): every retrieval command of the three protocols decides a decision key, delete resets
it, writes are refused. The first test is differential: without the flag such keys are plain
keys on both servers."""
import re
import struct

import pytest

import binproto as bp

LINE = re.compile(rb"^(ALLOWED|DENIED) (\d+) (\d+) (\d+) (\d+)$")
ONLY = pytest.mark.ratecached_only


def verdict(value: bytes):
    m = LINE.match(value)
    assert m, value
    return m.group(1).decode(), int(m.group(3))


def values(reply: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) of every VALUE block of a text get reply ending in END."""
    out, rest = [], reply
    while rest.startswith(b"VALUE "):
        head, rest = rest.split(b"\r\n", 1)
        parts = head.split(b" ")
        n = int(parts[3])
        out.append((parts[1], rest[:n]))
        assert rest[n : n + 2] == b"\r\n"
        rest = rest[n + 2 :]
    assert rest == b"END\r\n", reply
    return out


@pytest.fixture
def rl(make_server):
    return make_server("--ratelimit-prefix", "rl:")


def test_without_the_flag_decision_shaped_keys_are_plain_keys(conn):
    # Differential: a drop-in server never changes the meaning of an existing key.
    assert conn.roundtrip(b"get rl:2/60s/u1\r\n") == b"END\r\n"
    assert conn.roundtrip(b"set rl:2/60s/u1 5 0 2\r\nhi\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get rl:2/60s/u1\r\n") == b"VALUE rl:2/60s/u1 5 2\r\nhi\r\nEND\r\n"
    assert conn.roundtrip(b"incr rl:2/60s/u1 1\r\n") == (
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    )
    assert conn.roundtrip(b"delete rl:2/60s/u1\r\n") == b"DELETED\r\n"


@ONLY
def test_get_decides_exactly_the_limit_and_shares_state_with_ratelimit(rl):
    with rl.connect() as c:
        seen = [verdict(values(c.roundtrip(b"get rl:3/1h/api:u42\r\n"))[0][1]) for _ in range(3)]
        assert seen == [("ALLOWED", 2), ("ALLOWED", 1), ("ALLOWED", 0)]
        assert values(c.roundtrip(b"get rl:3/1h/api:u42\r\n"))[0][1].startswith(b"DENIED 3 0 ")
        # The same bucket as the ratelimit command on the subject.
        assert c.roundtrip(b"ratelimit api:u42 3 1h peek\r\n").startswith(b"DENIED 3 0 ")
        c.roundtrip(b"ratelimit api:u43 3 1h\r\n")
        v = values(c.roundtrip(b"get rl:3/1h/api:u43\r\n"))[0][1]
        assert v.startswith(b"ALLOWED 3 1 0 ")
        s = c.stats()
        assert (s["cmd_ratelimit"], s["ratelimit_allowed"], s["ratelimit_denied"]) == ("7", "5", "2")  # four gets, the peek, one ratelimit, one get


@ONLY
def test_every_text_retrieval_decides_and_always_hits(rl):
    with rl.connect() as c:
        r = c.roundtrip(b"gets rl:5/1m/fixed/ip:10.1.2.3\r\n")
        assert r.startswith(b"VALUE rl:5/1m/fixed/ip:10.1.2.3 0 ") and b" 0\r\nALLOWED 5 4 " in r
        r = c.roundtrip(b"gat 100 rl:5/1m/fixed/ip:10.1.2.3\r\n")
        assert verdict(values(r)[0][1]) == ("ALLOWED", 3)
        r = c.roundtrip(b"gats 100 rl:5/1m/fixed/ip:10.1.2.3\r\n")
        assert b"ALLOWED 5 2 " in r
        # A multi-get decides each key in order; a key named twice is decided twice.
        r = values(c.roundtrip(b"get rl:2/1h/a miss rl:2/1h/a rl:2/1h/a rl:2/1h/b\r\n"))
        assert [k for k, _ in r] == [b"rl:2/1h/a"] * 3 + [b"rl:2/1h/b"]
        assert [verdict(v) for _, v in r] == [
            ("ALLOWED", 1),
            ("ALLOWED", 0),
            ("DENIED", 0),
            ("ALLOWED", 1),
        ]


@ONLY
def test_a_bad_decision_key_is_an_error_for_the_command_never_a_miss(rl):
    with rl.connect() as c:
        for key in [b"rl:nope/u1", b"rl:2/60s", b"rl:0/60s/u1", b"rl:2/forever/u1", b"rl:"]:
            assert c.roundtrip(b"get " + key + b"\r\n") == b"CLIENT_ERROR bad rate-limit key\r\n"
        # Nothing before the bad key was decided.
        r = c.roundtrip(b"get rl:2/1h/u1 rl:nope/u1\r\n")
        assert r == b"CLIENT_ERROR bad rate-limit key\r\n"
        assert c.roundtrip(b"ratelimit u1 2 1h peek\r\n").startswith(b"ALLOWED 2 1 0 1800000")
        assert c.roundtrip(b"ratelimit u1 2 1h peek\r\n").startswith(b"ALLOWED 2 1 0 1800000")
        s = c.stats()
        assert (s["ratelimit_errors"], s["ratelimit_allowed"]) == ("6", "2")  # the two peeks


@ONLY
def test_delete_resets_and_writes_are_read_only(rl):
    with rl.connect() as c:
        c.roundtrip(b"get rl:1/1h/u1\r\n")
        assert b"DENIED" in c.roundtrip(b"get rl:1/1h/u1\r\n")
        assert c.roundtrip(b"delete rl:1/1h/u1\r\n") == b"DELETED\r\n"
        assert c.roundtrip(b"delete rl:1/1h/u1\r\n") == b"NOT_FOUND\r\n"
        assert b"ALLOWED 1 0 " in c.roundtrip(b"get rl:1/1h/u1\r\n")
        assert c.roundtrip(b"delete rl:nope/u1\r\n") == b"CLIENT_ERROR bad rate-limit key\r\n"
        ro = b"CLIENT_ERROR rate-limit key is read-only\r\n"
        for cmd in [b"set", b"add", b"replace", b"append", b"prepend"]:
            assert c.roundtrip(cmd + b" rl:1/1h/u1 0 0 2\r\nhi\r\n") == ro, cmd
        assert c.roundtrip(b"cas rl:1/1h/u1 0 0 2 1\r\nhi\r\n") == ro
        assert c.roundtrip(b"incr rl:1/1h/u1 1\r\n") == ro
        assert c.roundtrip(b"decr rl:x 1\r\n") == ro
        assert c.roundtrip(b"touch rl:1/1h/u1 10\r\n") == ro
        assert c.roundtrip(b"set rl:x 0 0 2 noreply\r\nhi\r\n") == b""
        # Nothing was stored and the state is untouched.
        assert b"DENIED 1 0 " in c.roundtrip(b"get rl:1/1h/u1\r\n")
        assert c.stats()["curr_items"] == "0"


@ONLY
def test_policy_keys_answer_the_overall_verdict(make_server, tmp_path):
    policies = tmp_path / "policies.toml"
    policies.write_text(
        '[policy.free]\nlimits = [ { limit = 100, period = "1h" }, { limit = 2, period = "1m" } ]\n'
    )
    srv = make_server("--policies", str(policies), "-o", "ratelimit_prefix=rl:")
    with srv.connect() as c:
        got = [values(c.roundtrip(b"get rl:free/api:u42\r\n"))[0][1] for _ in range(3)]
        assert got[0].startswith(b"ALLOWED 2 1 0 ")
        assert got[1].startswith(b"ALLOWED 2 0 0 ")
        assert got[2].startswith(b"DENIED 2 0 ")
        r = c.request(b"ratelimit api:u42 @free peek\r\n", until=b"END\r\n")
        # The denial spent nothing: two spent of 100, and the peek reports one more.
        assert b"ALLOWED 100 97 " in r and r.startswith(b"DENIED 2 0 ")
        assert c.roundtrip(b"delete rl:free/api:u42\r\n") == b"DELETED\r\n"
        assert c.roundtrip(b"get rl:pro/api:u42\r\n") == b"CLIENT_ERROR bad rate-limit key\r\n"


@ONLY
def test_meta_commands_on_decision_keys(rl):
    with rl.connect() as c:
        r = c.roundtrip(b"mg rl:2/1h/u1 s v t c f k O99\r\n")
        assert r == b"VA 21 s21 t-1 c0 f0 krl:2/1h/u1 O99\r\nALLOWED 2 1 0 1800000\r\n", r
        assert c.roundtrip(b"mg rl:2/1h/u1\r\n") == b"HD\r\n"
        r = c.roundtrip(b"mg rl:2/1h/u1 v q\r\n")
        assert re.fullmatch(rb"VA (\d+)\r\n(DENIED 2 0 \d+ \d+)\r\n", r), r
        assert c.roundtrip(b"mg rl:nope/u1 v\r\n") == b"CLIENT_ERROR bad rate-limit key\r\n"
        ro = b"CLIENT_ERROR rate-limit key is read-only\r\n"
        assert c.roundtrip(b"ms rl:2/1h/u1 2\r\nhi\r\n") == ro
        assert c.roundtrip(b"ma rl:2/1h/u1\r\n") == ro
        assert c.roundtrip(b"md rl:2/1h/u1 O1\r\n") == b"HD O1\r\n"
        assert c.roundtrip(b"md rl:2/1h/u1\r\n") == b"NF\r\n"


@ONLY
def test_every_binary_retrieval_decides(rl):
    key = b"rl:8/1h/u1"
    with rl.connect() as c:
        reqs = [
            bp.get(key, bp.GET),
            bp.get(key, bp.GETK),
            bp.get(key, bp.GETQ),
            bp.get(key, bp.GETKQ),
        ] + [bp.touch(op, key, 100) for op in (bp.GAT, bp.GATQ, bp.GATK, bp.GATKQ)]
        got = bp.roundtrip(c, b"".join(reqs))
        assert len(got) == 8
        for i, r in enumerate(got):
            assert r.status == bp.OK and r.extras == struct.pack(">I", 0) and r.cas == 0
            assert r.key == (key if r.opcode in (bp.GETK, bp.GETKQ, bp.GATK, bp.GATKQ) else b"")
            assert verdict(r.value) == ("ALLOWED", 7 - i)
        for op in (bp.GET, bp.GETQ):
            (r,) = bp.roundtrip(c, bp.get(b"rl:nope/u1", op))
            assert (r.status, r.value) == (bp.EINVAL, b"bad rate-limit key")
        for data in [
            bp.store(bp.SET, key, b"x"),
            bp.arith(bp.INCR, key, 1),
            bp.touch(bp.TOUCH, key, 10),
        ]:
            (r,) = bp.roundtrip(c, data)
            assert (r.status, r.value) == (bp.EINVAL, b"rate-limit key is read-only")
        assert bp.roundtrip(c, bp.req(bp.DELETE, key))[0].status == bp.OK
        assert bp.roundtrip(c, bp.req(bp.DELETE, key))[0].status == bp.NOT_FOUND
