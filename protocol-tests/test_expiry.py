"""Expiration times: negative, relative, absolute (> 30 days)."""

import time

import pytest

from helpers import value_reply

THIRTY_DAYS = 60 * 60 * 24 * 30


def _stored(conn, key, exptime):
    return conn.roundtrip(b"set %s 0 %s 1\r\nx\r\n" % (key, exptime))


@pytest.mark.parametrize(
    "exptime",
    [b"-1", b"-100", b"-99999999999", b"2592001", b"1000000000", b"4294967295"],
    ids=["-1", "-100", "huge-negative", "30days+1-absolute-1970", "absolute-2001", "u32max-is--1"],
)
def test_expired_at_once(conn, exptime):
    assert _stored(conn, b"e", exptime) == b"STORED\r\n"
    assert conn.roundtrip(b"get e\r\n") == b"END\r\n"


@pytest.mark.parametrize(
    "exptime",
    [b"0", b"100", b"2592000", b"4294967296", b"+100"],
    ids=["0", "100s", "exactly-30-days-relative", "2^32-wraps-to-0", "plus-sign"],
)
def test_not_expired(conn, exptime):
    assert _stored(conn, b"e", exptime) == b"STORED\r\n"
    assert conn.roundtrip(b"get e\r\n") == value_reply(b"e", b"x") + b"END\r\n"


def test_absolute_future_time(conn):
    future = int(time.time()) + 3600
    assert _stored(conn, b"e", b"%d" % future) == b"STORED\r\n"
    assert conn.roundtrip(b"get e\r\n") == value_reply(b"e", b"x") + b"END\r\n"


def test_absolute_past_time(conn):
    past = int(time.time()) - 100
    assert _stored(conn, b"e", b"%d" % past) == b"STORED\r\n"
    assert conn.roundtrip(b"get e\r\n") == b"END\r\n"


@pytest.mark.parametrize("cmd", [b"add", b"replace", b"append", b"prepend", b"cas"])
def test_negative_exptime_with_other_storage_commands(conn, cmd):
    if cmd != b"add":
        conn.set(b"e", b"x")
    tail = b" %d" % conn.gets_cas(b"e") if cmd == b"cas" else b""
    assert conn.roundtrip(cmd + b" e 0 -1 1" + tail + b"\r\ny\r\n") == b"STORED\r\n"
    if cmd in (b"append", b"prepend"):
        # append/prepend ignore the exptime: the item keeps its own.
        assert conn.roundtrip(b"get e\r\n") == value_reply(b"e", b"xy" if cmd == b"append" else b"yx") + b"END\r\n"
    else:
        assert conn.roundtrip(b"get e\r\n") == b"END\r\n"


def test_expired_item_can_be_added_again(conn):
    assert _stored(conn, b"e", b"-1") == b"STORED\r\n"
    assert conn.roundtrip(b"add e 0 0 1\r\nz\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get e\r\n") == value_reply(b"e", b"z") + b"END\r\n"


def test_expired_item_is_not_replaced_or_touched(conn):
    assert _stored(conn, b"e", b"-1") == b"STORED\r\n"
    assert conn.roundtrip(b"replace e 0 0 1\r\nz\r\n") == b"NOT_STORED\r\n"
    assert conn.roundtrip(b"touch e 100\r\n") == b"NOT_FOUND\r\n"
    assert conn.roundtrip(b"incr e 1\r\n") == b"NOT_FOUND\r\n"
    assert conn.roundtrip(b"delete e\r\n") == b"NOT_FOUND\r\n"


def _wait_gone(conn, key, limit):
    """Poll until `key` misses; return seconds waited (bounded by `limit`)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if conn.roundtrip(b"get " + key + b"\r\n") == b"END\r\n":
            return time.monotonic() - start
        time.sleep(0.05)
    return None


@pytest.mark.slow
def test_relative_ttl_really_expires(conn):
    """Keys given a 2 s TTL by set/add/touch/gat/cas stay for at least ~1 s
    (clock granularity is one second) and are gone within ~3 s."""
    conn.set(b"t_set", b"x", exptime=2)
    assert conn.roundtrip(b"add t_add 0 2 1\r\nx\r\n") == b"STORED\r\n"
    conn.set(b"t_touch", b"x")
    assert conn.roundtrip(b"touch t_touch 2\r\n") == b"TOUCHED\r\n"
    conn.set(b"t_gat", b"x")
    assert conn.roundtrip(b"gat 2 t_gat\r\n") == value_reply(b"t_gat", b"x") + b"END\r\n"
    conn.set(b"t_cas", b"x")
    cas = conn.gets_cas(b"t_cas")
    assert conn.roundtrip(b"cas t_cas 0 2 1 %d\r\ny\r\n" % cas) == b"STORED\r\n"
    conn.set(b"t_incr", b"5", exptime=2)
    assert conn.roundtrip(b"incr t_incr 1\r\n") == b"6\r\n"  # keeps the TTL
    conn.set(b"forever", b"x")
    keys = [b"t_set", b"t_add", b"t_touch", b"t_gat", b"t_cas", b"t_incr"]
    reply = conn.roundtrip(b"get " + b" ".join(keys) + b"\r\n")
    assert reply.count(b"VALUE ") == len(keys)
    time.sleep(0.5)
    reply = conn.roundtrip(b"get " + b" ".join(keys) + b"\r\n")
    assert reply.count(b"VALUE ") == len(keys), "expired too early"
    for key in keys:
        assert _wait_gone(conn, key, 3.5) is not None, f"{key!r} did not expire"
    assert conn.roundtrip(b"get forever\r\n") == value_reply(b"forever", b"x") + b"END\r\n"


@pytest.mark.slow
def test_touch_extends_and_zero_removes_ttl(conn):
    conn.set(b"keep", b"x", exptime=1)
    assert conn.roundtrip(b"touch keep 0\r\n") == b"TOUCHED\r\n"
    conn.set(b"gatkeep", b"x", exptime=1)
    assert conn.roundtrip(b"gat 0 gatkeep\r\n") == value_reply(b"gatkeep", b"x") + b"END\r\n"
    conn.set(b"gone", b"x", exptime=1)
    assert _wait_gone(conn, b"gone", 3) is not None
    assert conn.roundtrip(b"get keep gatkeep\r\n") == (
        value_reply(b"keep", b"x") + value_reply(b"gatkeep", b"x") + b"END\r\n"
    )


def test_exptime_over_30_days_relative_boundary(conn):
    # Exactly 30 days is still relative; 30 days + 1 s is an absolute time.
    assert _stored(conn, b"a", b"%d" % THIRTY_DAYS) == b"STORED\r\n"
    assert _stored(conn, b"b", b"%d" % (THIRTY_DAYS + 1)) == b"STORED\r\n"
    assert conn.roundtrip(b"get a b\r\n") == value_reply(b"a", b"x") + b"END\r\n"
