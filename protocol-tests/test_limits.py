"""Item size limit (-I), memory limit and eviction (-m, -M), connection
limit (-c)."""

import socket
import time

import pytest

from helpers import value_reply

TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
OUT_OF_MEMORY = b"SERVER_ERROR out of memory storing object\r\n"
MB = 1024 * 1024


def _set(key, size, flags=0, noreply=False, cmd=b"set", cas=None):
    tail = (b" %d" % cas if cas is not None else b"") + (b" noreply" if noreply else b"")
    return cmd + b" %s %d 0 %d%s\r\n" % (key, flags, size, tail) + b"v" * size + b"\r\n"


# -- default item size limit (1 MiB) ----------------------------------------

@pytest.mark.parametrize("size", [1024, 100 * 1024, MB - 1024])
def test_values_clearly_below_the_limit_are_stored(conn, size):
    assert conn.roundtrip(_set(b"big", size)) == b"STORED\r\n"
    conn.send(b"get big\r\n")
    assert conn.recv_line() == b"VALUE big 0 %d\r\n" % size
    assert conn.recv_exact(size + 2) == b"v" * size + b"\r\n"
    assert conn.recv_line() == b"END\r\n"


@pytest.mark.parametrize("size", [MB, MB + 1, 2 * MB])
def test_values_over_the_limit_are_rejected_and_swallowed(conn, size):
    # The data block is read and thrown away: the next command works.
    assert conn.roundtrip(_set(b"big", size)) == TOO_LARGE
    assert conn.roundtrip(b"get big\r\n") == b"END\r\n"


def test_too_large_set_deletes_the_old_value(conn):
    conn.set(b"k", b"old")
    assert conn.roundtrip(_set(b"k", MB + 100)) == TOO_LARGE
    assert conn.roundtrip(b"get k\r\n") == b"END\r\n"


def test_too_large_set_noreply_is_silent_and_deletes_the_old_value(conn):
    conn.set(b"k", b"old")
    assert conn.roundtrip(_set(b"k", MB + 100, noreply=True)) == b""
    assert conn.roundtrip(b"get k\r\n") == b"END\r\n"


@pytest.mark.parametrize("cmd", [b"add", b"replace", b"append", b"prepend", b"cas"])
def test_too_large_other_commands_keep_the_old_value(conn, cmd):
    conn.set(b"k", b"old")
    cas = conn.gets_cas(b"k") if cmd == b"cas" else None
    assert conn.roundtrip(_set(b"k", MB + 100, cmd=cmd, cas=cas)) == TOO_LARGE
    assert conn.roundtrip(b"get k\r\n") == value_reply(b"k", b"old") + b"END\r\n"


def test_too_large_data_block_is_exactly_length_plus_two(conn):
    conn.set(b"k", b"old")
    size = MB + 100
    # The server swallows size+2 bytes ("...XX"), then sees "\r\n": an empty line.
    req = b"set k 0 0 %d\r\n" % size + b"v" * size + b"XX\r\n"
    assert conn.roundtrip(req) == TOO_LARGE + b"ERROR\r\n"
    assert conn.roundtrip(b"get k\r\n") == b"END\r\n"


def test_too_large_data_arriving_slowly_is_swallowed(conn):
    size = MB + 100
    data = b"v" * size + b"\r\n"
    conn.send(b"set k 0 0 %d\r\n" % size)
    for i in range(0, len(data), 100_000):
        conn.send(data[i:i + 100_000])
        time.sleep(0.001)
    assert conn.roundtrip(b"") == TOO_LARGE


def test_append_over_the_limit_is_not_stored(conn):
    assert conn.roundtrip(_set(b"k", 600_000)) == b"STORED\r\n"
    assert conn.roundtrip(_set(b"k", 600_000, cmd=b"append")) == b"NOT_STORED\r\n"
    assert conn.roundtrip(_set(b"k", 600_000, cmd=b"prepend")) == b"NOT_STORED\r\n"
    conn.send(b"get k\r\n")
    assert conn.recv_line() == b"VALUE k 0 600000\r\n"
    assert conn.recv_exact(600_002) == b"v" * 600_000 + b"\r\n"
    assert conn.recv_line() == b"END\r\n"


@pytest.mark.memcached_only
@pytest.mark.parametrize(
    "flags_args,flags,key,max_value",
    [
        # memcached's item = 48-byte header + 8 (cas) + 4 (nonzero flags)
        # + key + 1 + data + 2 must fit in -I.
        ((), 0, b"k", MB - 59 - 1),
        ((), 5, b"k", MB - 63 - 1),
        ((), 0, b"k" * 250, MB - 59 - 250),
        (("-C",), 0, b"k", MB - 51 - 1),
    ],
    ids=["plain", "flags", "key250", "no-cas"],
)
def test_exact_item_size_boundary(make_server, flags_args, flags, key, max_value):
    srv = make_server(*flags_args)
    with srv.connect() as c:
        assert c.roundtrip(_set(key, max_value, flags=flags)) == b"STORED\r\n"
        assert c.roundtrip(_set(key, max_value + 1, flags=flags)) == TOO_LARGE


@pytest.mark.fresh
@pytest.mark.parametrize(
    "limit,below,above",
    [("512k", 500_000, 530_000), ("1m", MB - 2048, MB + 10), ("2m", 2 * MB - 4096, 2 * MB)],
)
def test_item_size_limit_flag(make_server, limit, below, above):
    srv = make_server("-I", limit)
    with srv.connect() as c:
        c.set(b"old", b"x")
        assert c.roundtrip(_set(b"a", below)) == b"STORED\r\n"
        assert c.roundtrip(_set(b"old", above)) == TOO_LARGE
        assert c.roundtrip(b"get old\r\n") == b"END\r\n"
        assert c.stats()["store_too_large"] == "1"
        conn_reply = c.roundtrip(b"get a\r\n")
        assert conn_reply.startswith(b"VALUE a 0 %d\r\n" % below) and len(conn_reply) == len(
            b"VALUE a 0 %d\r\n" % below
        ) + below + 2 + 5


# -- memory limit ---------------------------------------------------------------

def _fill(c, count, size):
    value = b"v" * size
    req = b"".join(b"set key%d 0 0 %d\r\n%s\r\n" % (i, size, value) for i in range(count))
    c.send(req)
    return [c.recv_line() for _ in range(count)]


@pytest.mark.fresh
@pytest.mark.slow
def test_eviction_with_small_memory_limit(make_server):
    srv = make_server("-m", "2")
    with srv.connect() as c:
        count = 4000  # ~4 MB of 1000-byte values into a 2 MB cache
        replies = _fill(c, count, 1000)
        assert set(replies) == {b"STORED\r\n"}
        assert c.roundtrip(b"get key0 key1 key2\r\n") == b"END\r\n"
        last = b"key%d" % (count - 1)
        assert c.roundtrip(b"get " + last + b"\r\n") == value_reply(last, b"v" * 1000) + b"END\r\n"
        s = c.stats()
        assert int(s["evictions"]) > 0
        assert 0 < int(s["curr_items"]) < count
        assert int(s["total_items"]) == count
        assert int(s["bytes"]) <= 2 * MB
        assert s["limit_maxbytes"] == str(2 * MB)
        # Still fully usable.
        c.set(b"fresh", b"new")
        assert c.roundtrip(b"get fresh\r\n") == value_reply(b"fresh", b"new") + b"END\r\n"


@pytest.mark.fresh
@pytest.mark.slow
def test_out_of_memory_without_eviction(make_server):
    srv = make_server("-m", "2", "-M")
    with srv.connect() as c:
        count = 4000
        replies = _fill(c, count, 1000)
        stored = replies.count(b"STORED\r\n")
        assert 0 < stored < count
        # All the stores that worked come first, then every one fails.
        assert replies == [b"STORED\r\n"] * stored + [OUT_OF_MEMORY] * (count - stored)
        assert c.roundtrip(b"get key0\r\n") == value_reply(b"key0", b"v" * 1000) + b"END\r\n"
        last = b"key%d" % (count - 1)
        assert c.roundtrip(b"get " + last + b"\r\n") == b"END\r\n"
        s = c.stats()
        assert s["evictions"] == "0"
        assert int(s["curr_items"]) == stored
        assert c.stats(b"settings")["evictions"] == "off"
        # noreply silences it; the connection is fine.
        assert c.roundtrip(b"set more 0 0 1000 noreply\r\n" + b"v" * 1000 + b"\r\n") == b""
        assert c.roundtrip(b"delete key0\r\n") == b"DELETED\r\n"


# -- connection limit -------------------------------------------------------------

@pytest.mark.fresh
def test_connection_limit(make_server):
    """memcached counts file descriptors, so with -c 20 it lets only a few
    clients in; ratecached may let in up to 20. Either way a connection
    beyond the limit gets exactly this line and is closed."""
    limit = 20
    srv = make_server("-c", str(limit))
    accepted, refused = [], []
    try:
        for _ in range(limit + 5):
            c = srv.connect()
            data = c.recv_available(0.15)
            if data:
                assert data == b"ERROR Too many open connections\r\n"
                c.assert_closed()
                refused.append(c)
                break
            assert c.roundtrip(b"") == b""
            accepted.append(c)
        assert refused, "no connection was refused"
        assert accepted, "every connection was refused"
        # Accepted connections keep working.
        for c in accepted:
            assert c.roundtrip(b"get a\r\n") == b"END\r\n"
        s = accepted[0].stats()
        assert s["max_connections"] == str(limit)
        assert int(s["rejected_connections"]) >= 1
        # Closing one makes room for a new one.
        accepted.pop().close()
        deadline = time.monotonic() + 3
        while True:
            c = srv.connect()
            if not c.recv_available(0.1):
                assert c.roundtrip(b"get a\r\n") == b"END\r\n"
                accepted.append(c)
                break
            c.close()
            assert time.monotonic() < deadline, "no room after closing a connection"
    finally:
        for c in accepted + refused:
            c.close()
