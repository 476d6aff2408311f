"""set / add / replace / append / prepend / cas, flags and data blocks."""

import pytest

from helpers import value_reply

BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"


def test_set_then_get(conn):
    assert conn.roundtrip(b"set a 0 0 5\r\nhello\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"VALUE a 0 5\r\nhello\r\nEND\r\n"


def test_set_overwrites_value_and_flags(conn):
    conn.set(b"a", b"one", flags=1)
    assert conn.roundtrip(b"set a 2 0 3\r\ntwo\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"two", 2) + b"END\r\n"


@pytest.mark.parametrize(
    "flags,stored",
    [
        (b"0", 0),
        (b"1", 1),
        (b"65535", 65535),
        (b"4294967295", 4294967295),
        # 32-bit flags: larger values are parsed as 64-bit and truncated.
        (b"4294967296", 0),
        (b"4294967297", 1),
        (b"9999999999999", 9999999999999 % 2**32),
        (b"18446744073709551615", 4294967295),
        (b"+5", 5),
        (b"007", 7),
    ],
)
def test_flags(conn, flags, stored):
    assert conn.roundtrip(b"set f " + flags + b" 0 1\r\nx\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get f\r\n") == value_reply(b"f", b"x", stored) + b"END\r\n"


@pytest.mark.parametrize("flags", [b"-1", b"abc", b"18446744073709551616", b"0x10", b"1.5"])
def test_bad_flags_rejected_and_data_line_parsed_as_command(conn, flags):
    conn.set(b"f", b"old")
    assert conn.roundtrip(b"set f " + flags + b" 0 1\r\nx\r\n") == BAD_FORMAT + b"ERROR\r\n"
    assert conn.roundtrip(b"get f\r\n") == value_reply(b"f", b"old") + b"END\r\n"


@pytest.mark.parametrize("exptime", [b"abc", b"99999999999999999999", b"1.5"])
def test_bad_exptime_rejected(conn, exptime):
    assert conn.roundtrip(b"set e 0 " + exptime + b" 1\r\nx\r\n") == BAD_FORMAT + b"ERROR\r\n"
    assert conn.roundtrip(b"get e\r\n") == b"END\r\n"


@pytest.mark.parametrize("length", [b"abc", b"1.5", b"0x1"])
def test_non_numeric_length_rejected(conn, length):
    assert conn.roundtrip(b"set l 0 0 " + length + b"\r\nx\r\n") == BAD_FORMAT + b"ERROR\r\n"


# The length is parsed as a long and truncated to 32 bits: negative after
# truncation (or too close to INT32_MAX to add 2) is rejected, and the next
# line is a command again.
@pytest.mark.parametrize("length", [b"-1", b"-100", b"2147483646", b"2147483647", b"2147483648", b"4294967295"])
def test_negative_or_huge_length_rejected_without_reading_data(conn, length):
    conn.set(b"l", b"old")
    assert conn.roundtrip(b"set l 0 0 " + length + b"\r\n") == BAD_FORMAT
    assert conn.roundtrip(b"get l\r\n") == value_reply(b"l", b"old") + b"END\r\n"


@pytest.mark.parametrize(
    "length,value",
    [(b"4294967296", b""), (b"4294967297", b"x"), (b"8589934593", b"y")],
)
def test_length_is_truncated_to_32_bits(conn, length, value):
    assert conn.roundtrip(b"set l 0 0 " + length + b"\r\n" + value + b"\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get l\r\n") == value_reply(b"l", value) + b"END\r\n"


def test_length_with_plus_sign_and_leading_zero(conn):
    assert conn.roundtrip(b"set a 00 +0 +1\r\nx\r\nset b 0 0 01\r\ny\r\n") == b"STORED\r\nSTORED\r\n"
    assert conn.roundtrip(b"get a b\r\n") == value_reply(b"a", b"x") + value_reply(b"b", b"y") + b"END\r\n"


@pytest.mark.parametrize("cmd", [b"set", b"add", b"replace", b"append", b"prepend"])
def test_too_few_tokens(conn, cmd):
    assert conn.roundtrip(cmd + b" k 0 0\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(cmd + b" k\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(cmd + b"\r\n") == b"ERROR\r\n"


@pytest.mark.parametrize("cmd", [b"set", b"add", b"replace", b"append", b"prepend"])
def test_too_many_tokens(conn, cmd):
    # "x" is then read as a command line of its own.
    assert conn.roundtrip(cmd + b" k 0 0 1 noreply extra\r\nx\r\n") == b"ERROR\r\nERROR\r\n"


@pytest.mark.parametrize("junk", [b"junk", b"NOREPLY", b"norepl", b"noreplyy"])
def test_unknown_sixth_token_is_ignored(conn, junk):
    assert conn.roundtrip(b"set k 0 0 1 " + junk + b"\r\nx\r\n") == b"STORED\r\n"


def test_extra_spaces_between_tokens(conn):
    assert conn.roundtrip(b"set  a  0  0  1 \r\nx\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_bare_lf_after_command_and_data(conn):
    assert conn.roundtrip(b"set a 0 0 1\nx\r\n") == b"STORED\r\n"


def test_value_may_contain_crlf(conn):
    assert conn.roundtrip(b"set a 0 0 4\r\n\r\n\r\n\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"VALUE a 0 4\r\n\r\n\r\n\r\nEND\r\n"


def test_add(conn):
    assert conn.roundtrip(b"add a 1 0 1\r\nx\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"add a 2 0 1\r\ny\r\n") == b"NOT_STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x", 1) + b"END\r\n"


def test_replace(conn):
    assert conn.roundtrip(b"replace a 1 0 1\r\nx\r\n") == b"NOT_STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"
    conn.set(b"a", b"old")
    assert conn.roundtrip(b"replace a 3 0 1\r\nz\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"z", 3) + b"END\r\n"


def test_append_prepend_keep_original_flags(conn):
    conn.set(b"a", b"z", flags=3)
    assert conn.roundtrip(b"append a 9 0 2\r\nAA\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"prepend a 9 0 2\r\nPP\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"PPzAA", 3) + b"END\r\n"


@pytest.mark.parametrize("cmd", [b"append", b"prepend"])
def test_append_prepend_miss(conn, cmd):
    assert conn.roundtrip(cmd + b" nope 0 0 1\r\nx\r\n") == b"NOT_STORED\r\n"
    assert conn.roundtrip(b"get nope\r\n") == b"END\r\n"


def test_append_changes_cas(conn):
    conn.set(b"a", b"x")
    before = conn.gets_cas(b"a")
    assert conn.roundtrip(b"append a 0 0 1\r\ny\r\n") == b"STORED\r\n"
    assert conn.gets_cas(b"a") > before


def test_cas_flow(conn):
    assert conn.roundtrip(b"cas a 0 0 1 1\r\nq\r\n") == b"NOT_FOUND\r\n"
    conn.set(b"a", b"x")
    unique = conn.gets_cas(b"a")
    assert conn.roundtrip(b"cas a 0 0 1 %d\r\nq\r\n" % (unique + 1000)) == b"EXISTS\r\n"
    assert conn.roundtrip(b"cas a 5 0 1 %d\r\ny\r\n" % unique) == b"STORED\r\n"
    # The unique changed with the store: the old one no longer matches.
    assert conn.roundtrip(b"cas a 0 0 1 %d\r\nz\r\n" % unique) == b"EXISTS\r\n"
    new = conn.gets_cas(b"a")
    assert new != unique
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"y", 5) + b"END\r\n"


def test_cas_after_delete_is_not_found(conn):
    conn.set(b"a", b"x")
    unique = conn.gets_cas(b"a")
    assert conn.roundtrip(b"delete a\r\n") == b"DELETED\r\n"
    assert conn.roundtrip(b"cas a 0 0 1 %d\r\nq\r\n" % unique) == b"NOT_FOUND\r\n"


def test_cas_noreply(conn):
    conn.set(b"a", b"x")
    unique = conn.gets_cas(b"a")
    assert conn.roundtrip(b"cas a 0 0 1 %d noreply\r\nr\r\n" % (unique + 1)) == b""
    assert conn.roundtrip(b"cas nope 0 0 1 1 noreply\r\nr\r\n") == b""
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"
    assert conn.roundtrip(b"cas a 0 0 1 %d noreply\r\nr\r\n" % unique) == b""
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"r") + b"END\r\n"


def test_cas_missing_unique_is_error(conn):
    assert conn.roundtrip(b"cas a 0 0 1\r\nq\r\n") == b"ERROR\r\nERROR\r\n"


@pytest.mark.parametrize("unique", [b"abc", b"-1", b"18446744073709551616"])
def test_cas_bad_unique(conn, unique):
    assert conn.roundtrip(b"cas a 0 0 1 " + unique + b"\r\nq\r\n") == BAD_FORMAT + b"ERROR\r\n"


def test_cas_uniques_on_fresh_server(make_server):
    """The exact cas sequence of a fresh memcached: a global counter that
    every store and flush_all advances."""
    srv = make_server()
    with srv.connect() as c:
        assert c.roundtrip(b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\nx\r\n") == b"STORED\r\nSTORED\r\n"
        assert c.roundtrip(b"gets a b\r\n") == b"VALUE a 0 1 1\r\n1\r\nVALUE b 0 1 2\r\nx\r\nEND\r\n"
        assert c.roundtrip(b"add a 0 0 1\r\nx\r\nset c 0 0 1\r\nx\r\n") == b"NOT_STORED\r\nSTORED\r\n"
        assert c.roundtrip(b"gets c\r\n") == b"VALUE c 0 1 3\r\nx\r\nEND\r\n"
        assert c.roundtrip(b"touch a 100\r\ngets a\r\n") == b"TOUCHED\r\nVALUE a 0 1 1\r\n1\r\nEND\r\n"
        assert c.roundtrip(b"incr a 1\r\ngets a\r\n") == b"2\r\nVALUE a 0 1 4\r\n2\r\nEND\r\n"
        assert c.roundtrip(b"append b 0 0 1\r\ny\r\ngets b\r\n") == b"STORED\r\nVALUE b 0 2 5\r\nxy\r\nEND\r\n"
        assert c.roundtrip(b"flush_all\r\nset d 0 0 1\r\nx\r\ngets d\r\n") == (
            b"OK\r\nSTORED\r\nVALUE d 0 1 7\r\nx\r\nEND\r\n"
        )


@pytest.mark.fresh
def test_cas_disabled_with_C(make_server):
    srv = make_server("-C")
    with srv.connect() as c:
        c.set(b"a", b"x")
        assert c.roundtrip(b"gets a\r\n") == b"VALUE a 0 1 0\r\nx\r\nEND\r\n"
        assert c.roundtrip(b"gats 0 a\r\n") == b"VALUE a 0 1 0\r\nx\r\nEND\r\n"
        assert c.roundtrip(b"cas a 0 0 1 0\r\ny\r\ncas a 0 0 1 1\r\nz\r\n") == b"EXISTS\r\nEXISTS\r\n"
        assert c.roundtrip(b"cas nope 0 0 1 0\r\ny\r\n") == b"NOT_FOUND\r\n"
        assert c.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"
        assert c.stats(b"settings")["cas_enabled"] == "no"


# -- data blocks that do not match the declared length -------------------

@pytest.mark.parametrize(
    "declared,sent,follow_up",
    [
        # The server reads exactly <bytes>+2 bytes; when they do not end in
        # \r\n it answers "bad data chunk" and parses whatever follows them
        # as new command lines.
        (1, b"xyz\r\n", b"ERROR\r\n"),  # "xyz" consumed, "\r\n" = empty line
        (2, b"xyz\r\n", b"ERROR\r\n"),  # "xyz\r" consumed, "\n" = empty line
        (1, b"xy\r\n", b"ERROR\r\n"),  # "xy\r", then "\n"
        (1, b"x\n\r\n", b"ERROR\r\n"),  # "x\n\r", then "\n"
        (1, b" x\r\n", b"ERROR\r\n"),  # " x\r", then "\n"
        (3, b"x\r\nget k\r\n", b"ERROR\r\n"),  # "x\r\nge", then "t k" = unknown command
        (1, b"x\nget k\r\n", b"ERROR\r\n"),  # "x\ng", then "et k"
        (10, b"0123456789abcdefghij\r\n", b"ERROR\r\n"),  # "...9ab", then "cdefghij"
    ],
    ids=["1<xyz", "2<xyz", "1<xy", "x-lf-cr", "leading-space", "3<x+get", "lf-only", "10<20"],
)
@pytest.mark.parametrize("cmd", [b"set", b"add", b"append"])
def test_bad_data_chunk(conn, cmd, declared, sent, follow_up):
    if cmd != b"add":
        conn.set(b"k", b"old")
    reply = conn.roundtrip(cmd + b" k 0 0 %d\r\n" % declared + sent)
    assert reply == BAD_CHUNK + follow_up
    # A bad chunk leaves the old item alone.
    expected = value_reply(b"k", b"old") if cmd != b"add" else b""
    assert conn.roundtrip(b"get k\r\n") == expected + b"END\r\n"


def test_bad_data_chunk_with_noreply_still_swallows_silently(conn):
    conn.set(b"k", b"old")
    assert conn.roundtrip(b"set k 0 0 1 noreply\r\nxyz\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(b"get k\r\n") == value_reply(b"k", b"old") + b"END\r\n"


def test_short_data_waits_for_the_rest(conn):
    conn.send(b"set k 0 0 10\r\n01234")
    conn.assert_silent(0.2)
    conn.send(b"56789\r\n")
    assert conn.recv_line() == b"STORED\r\n"
    assert conn.roundtrip(b"get k\r\n") == value_reply(b"k", b"0123456789") + b"END\r\n"


@pytest.mark.parametrize("cmd", [b"set", b"add", b"replace", b"append", b"prepend", b"cas"])
def test_key_too_long_for_storage_commands(conn, cmd):
    extra = b" 1" if cmd == b"cas" else b""
    # The length is never parsed, so the data line becomes a command.
    assert conn.roundtrip(cmd + b" " + b"k" * 251 + b" 0 0 1" + extra + b"\r\nx\r\n") == BAD_FORMAT + b"ERROR\r\n"
    assert conn.roundtrip(cmd + b" " + b"k" * 3000 + b" 0 0 1" + extra + b"\r\nx\r\n") == BAD_FORMAT + b"ERROR\r\n"
