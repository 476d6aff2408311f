"""Pipelined requests, and requests split across TCP packets."""

import time

import pytest

from helpers import value_reply

# Self-contained: it first resets every key it reads, so it replies the same
# bytes every time it runs.
BATCH = (
    b"set p 1 0 5\r\nhello\r\n"
    b"set n 0 0 2\r\n10\r\n"
    b"delete gone noreply\r\n"
    b"append p 0 0 3 noreply\r\n\r\n!\r\n"
    b"get p n gone\r\n"
    b"incr n 5\r\n"
    b"decr n 100\r\n"
    b"bogus\r\n"
    b"add p 0 0 1\r\nz\r\n"
    b"set q 0 0 3\r\nabcd\r\n"
    b"delete p\r\n"
    b"touch n 0\r\n"
    b"get n\n"
)
BATCH_REPLY = (
    b"STORED\r\n"
    b"STORED\r\n"
    + value_reply(b"p", b"hello\r\n!", 1)
    + value_reply(b"n", b"10")
    + b"END\r\n"
    b"15\r\n"
    b"0\r\n"
    b"ERROR\r\n"
    b"NOT_STORED\r\n"
    b"CLIENT_ERROR bad data chunk\r\n"
    b"ERROR\r\n"  # "\n" left over from the bad chunk
    b"DELETED\r\n"
    b"TOUCHED\r\n"
    b"VALUE n 0 2\r\n0 \r\nEND\r\n"
)


def test_batch_in_one_send(conn):
    assert conn.roundtrip(BATCH) == BATCH_REPLY


def test_batch_repeated_back_to_back(conn):
    assert conn.roundtrip(BATCH * 20) == BATCH_REPLY * 20


def test_batch_one_byte_at_a_time(conn):
    for i in range(len(BATCH)):
        conn.send(BATCH[i:i + 1])
    assert conn.roundtrip(b"") == BATCH_REPLY


def test_batch_split_at_every_byte_boundary(conn):
    """Same batch sent in two parts with a short pause, for each of the
    len(BATCH)-1 split points: the replies must never change."""
    for cut in range(1, len(BATCH)):
        conn.send(BATCH[:cut])
        time.sleep(0.002)
        reply = conn.roundtrip(BATCH[cut:])
        assert reply == BATCH_REPLY, f"split at byte {cut}: {BATCH[:cut][-20:]!r} | {BATCH[cut:][:20]!r}"


def test_replies_come_in_request_order_with_noreply_mixed_in(conn):
    req = b"".join(
        b"set k%d 0 0 1 noreply\r\n%d\r\nget k%d\r\n" % (i, i % 10, i) for i in range(100)
    )
    expected = b"".join(value_reply(b"k%d" % i, b"%d" % (i % 10)) + b"END\r\n" for i in range(100))
    assert conn.roundtrip(req) == expected


def test_many_sets_pipelined_then_read(conn):
    n = 2000
    req = b"".join(b"set key%d 0 0 %d\r\n%s\r\n" % (i, len(b"v%d" % i), b"v%d" % i) for i in range(n))
    assert conn.roundtrip(req) == b"STORED\r\n" * n
    reply = conn.roundtrip(b"get key0 key999 key1999\r\n")
    assert reply == (
        value_reply(b"key0", b"v0") + value_reply(b"key999", b"v999") + value_reply(b"key1999", b"v1999") + b"END\r\n"
    )


def test_large_value_split_in_many_chunks(conn):
    value = bytes(range(256)) * 400  # 102400 bytes
    conn.send(b"set big 0 0 %d\r\n" % len(value))
    for i in range(0, len(value), 7001):
        conn.send(value[i:i + 7001])
    conn.send(b"\r\n")
    assert conn.recv_line() == b"STORED\r\n"
    assert conn.roundtrip(b"get big\r\n") == value_reply(b"big", value) + b"END\r\n"


def test_client_half_close_still_gets_replies(conn):
    conn.set(b"a", b"x")
    import socket

    conn.send(b"get a\r\n")
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.recv_until(b"END\r\n") == value_reply(b"a", b"x") + b"END\r\n"


@pytest.mark.parametrize("clients", [8])
def test_concurrent_connections_see_each_others_writes(connect, clients):
    conns = [connect() for _ in range(clients)]
    for i, c in enumerate(conns):
        c.send(b"set shared%d 0 0 1\r\n%d\r\n" % (i, i))
    for c in conns:
        assert c.recv_line() == b"STORED\r\n"
    keys = b" ".join(b"shared%d" % i for i in range(clients))
    expected = b"".join(value_reply(b"shared%d" % i, b"%d" % i) for i in range(clients)) + b"END\r\n"
    for c in conns:
        assert c.roundtrip(b"get " + keys + b"\r\n") == expected


@pytest.mark.parametrize("lines,head,tail", [(3500, 1000, 3000), (2000, 1500, 8000)])
def test_a_long_line_split_across_reads_is_read_whole(conn, lines, head, tail):
    # Found by scripts/wire-fuzz.py: memcached moves a partial line to the front of its
    # buffer before reading on, so a long line that arrives in two parts, the first near the
    # end of a buffer, is answered ERROR rather than closing the connection.
    conn.send(b"mn\r\n" * lines + b"x" * head)
    assert conn.recv_exact(4 * lines) == b"MN\r\n" * lines
    time.sleep(0.2)
    assert conn.roundtrip(b"x" * tail + b"\r\nmn\r\n") == b"ERROR\r\nMN\r\n"


@pytest.mark.parametrize("per_event", [2, 3, 20])
def test_reqs_per_event_yields_to_other_connections_between_pipelined_requests(
    make_server, per_event
):
    # -R: after about that many requests of one read a connection gives way (conn_yields),
    # and every reply still comes, in order. (memcached's exact count depends on its state
    # machine, one more or less; a batch shorter than -R never yields.)
    srv = make_server("-R", str(per_event))
    with srv.connect() as c, srv.connect() as watcher:
        c.request(b"set k 0 0 1\r\nv\r\n")
        before = int(watcher.stats()["conn_yields"])
        c.send(b"".join(b"get k\r\nmg m%d v\r\n" % i for i in range(5)))
        for _ in range(5):
            assert c.recv_until(b"END\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
            assert c.recv_line() == b"EN\r\n"
        yields = int(watcher.stats()["conn_yields"]) - before
    if per_event < 10:
        assert 10 // per_event - 2 <= yields <= 10 // per_event, yields
    else:
        assert yields == 0, yields
