"""Malformed input, line-length limits, and survival after errors."""

import pytest

from helpers import value_reply


@pytest.mark.parametrize(
    "line",
    [b"bogus", b"", b" ", b"   ", b"bogus noreply", b"GET a", b"sets a 0 0 1", b"get_a", b"\t", b"\x01\x02", b"meta"],
    ids=["bogus", "empty", "space", "spaces", "bogus-noreply", "upper", "sets", "get_a", "tab", "ctrl", "meta"],
)
def test_unknown_command_is_error(conn, line):
    assert conn.roundtrip(line + b"\r\n") == b"ERROR\r\n"


def test_bare_lf_empty_line_is_error(conn):
    assert conn.roundtrip(b"\n") == b"ERROR\r\n"


def test_many_errors_in_a_row_keep_the_connection(conn):
    assert conn.roundtrip(b"bogus\r\n" * 50) == b"ERROR\r\n" * 50
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_line_just_under_limit_without_newline_waits(conn):
    conn.send(b"x" * 2048)
    conn.assert_silent(0.3)
    conn.send(b"\r\n")
    assert conn.recv_line() == b"ERROR\r\n"
    assert conn.roundtrip(b"") == b""


@pytest.mark.parametrize("size", [2049, 3000, 20000])
def test_long_line_without_newline_closes_connection(conn, size):
    conn.send(b"x" * size)
    conn.assert_closed()


def test_long_line_arriving_in_pieces_closes_connection(conn):
    conn.send(b"x" * 2048)
    conn.assert_silent(0.2)
    conn.send(b"y")
    conn.assert_closed()


def test_long_line_with_newline_in_same_packet_is_parsed(conn):
    """The limit applies to buffered bytes without a newline; a complete
    3000-byte line that arrives at once is still parsed."""
    assert conn.roundtrip(b"x" * 3000 + b"\r\n") == b"ERROR\r\n"


def test_long_line_does_not_affect_other_connections(server, conn):
    with server.connect() as other:
        other.set(b"a", b"x")
        conn.send(b"x" * 5000)
        conn.assert_closed()
        assert other.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


@pytest.mark.parametrize("cmd", [b"get", b"gets"])
def test_long_multiget_arriving_slowly_is_allowed(conn, cmd):
    keys = [b"key:%05d" % i for i in range(500)]  # ~5 KB of keys
    conn.set(keys[0], b"first")
    conn.set(keys[-1], b"last")
    line = cmd + b" " + b" ".join(keys)
    conn.send(line[:3000])
    conn.assert_silent(0.2)
    conn.send(line[3000:])
    conn.assert_silent(0.1)
    reply = conn.roundtrip(b"\r\n")
    assert reply.count(b"VALUE ") == 2 and reply.endswith(b"END\r\n")
    assert b"\r\nfirst\r\n" in reply and b"\r\nlast\r\n" in reply


def test_long_multiget_with_leading_spaces_is_allowed(conn):
    conn.send(b" " * 50 + b"get " + b"k" * 3000)
    conn.assert_silent(0.2)
    assert conn.roundtrip(b"\r\n") == b"CLIENT_ERROR bad command line format\r\n"


def test_long_multiget_with_too_many_leading_spaces_closes(conn):
    conn.send(b" " * 101 + b"get " + b"k" * 3000)
    conn.assert_closed()


@pytest.mark.parametrize("prefix", [b"gat 0 ", b"set ", b"getx ", b"get"])
def test_other_long_lines_without_newline_close(conn, prefix):
    conn.send(prefix + b"k" * 3000)
    conn.assert_closed()


def test_long_get_line_with_newline_sent_at_once(conn):
    keys = [b"key:%05d" % i for i in range(3000)]  # ~30 KB line
    conn.set(keys[1234], b"mid")
    assert conn.roundtrip(b"get " + b" ".join(keys) + b"\r\n") == value_reply(keys[1234], b"mid") + b"END\r\n"


@pytest.mark.parametrize(
    "request_bytes,reply",
    [
        (b"set k 0 0 1 noreply\r\nxyz\r\n", b"ERROR\r\n"),  # bad chunk silenced, leftover "\r\n" is not
        (b"set k abc 0 1 noreply\r\nx\r\n", b"ERROR\r\n"),  # format error silenced, data line is a command
        (b"set " + b"k" * 251 + b" 0 0 1 noreply\r\nx\r\n", b"ERROR\r\n"),
        (b"set k 0 0 -1 noreply\r\n", b""),
        (b"incr k abc noreply\r\n", b""),
        (b"incr nope 1 noreply\r\n", b""),
        (b"touch k abc noreply\r\n", b""),
        (b"delete k 1 noreply\r\n", b""),
        (b"flush_all abc noreply\r\n", b""),
        (b"verbosity abc noreply\r\n", b""),
        (b"bogus noreply\r\n", b"ERROR\r\n"),  # unknown commands always answer
        (b"cas k 0 0 1 abc noreply\r\nx\r\n", b"ERROR\r\n"),
    ],
    ids=[
        "bad-chunk", "bad-flags", "long-key", "negative-length", "bad-delta", "incr-miss",
        "bad-exptime", "delete-usage", "flush-bad-arg", "verbosity-bad", "unknown-cmd", "cas-bad-unique",
    ],
)
def test_noreply_on_errors(conn, request_bytes, reply):
    conn.set(b"k", b"5")
    assert conn.roundtrip(request_bytes) == reply
    assert conn.roundtrip(b"get k\r\n") == value_reply(b"k", b"5") + b"END\r\n"


def test_connection_lives_on_after_each_error(conn):
    conn.set(b"a", b"x")
    errors = [
        b"bogus\r\n",
        b"\r\n",
        b"set a\r\n",
        b"set a abc 0 1\r\nx\r\n",
        b"set a 0 0 1\r\nxyz\r\n",
        b"get " + b"k" * 251 + b"\r\n",
        b"incr a 1\r\n",
        b"incr a x\r\n",
        b"delete a 5\r\n",
        b"touch a x\r\n",
        b"cas a 0 0 1\r\nx\r\n",
        b"stats bogus\r\n",
        b"shutdown\r\n",
        b"cache_memlimit 1\r\n",
    ]
    for err in errors:
        reply = conn.roundtrip(err)
        assert reply and reply.endswith(b"\r\n"), err
        assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n", err
