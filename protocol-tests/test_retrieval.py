"""get / gets / gat / gats."""

import pytest

from helpers import value_reply

KEY250 = b"k" * 250
KEY251 = b"k" * 251
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"


@pytest.mark.parametrize("cmd", [b"get", b"gets"])
def test_miss(conn, cmd):
    assert conn.roundtrip(cmd + b" nope\r\n") == b"END\r\n"


def test_get_hit(conn):
    conn.set(b"a", b"hello", flags=7)
    assert conn.roundtrip(b"get a\r\n") == b"VALUE a 7 5\r\nhello\r\nEND\r\n"


def test_gets_hit_has_cas(conn):
    conn.set(b"a", b"hello", flags=7)
    reply = conn.roundtrip(b"gets a\r\n")
    head, rest = reply.split(b"\r\n", 1)
    parts = head.split(b" ")
    assert parts[:4] == [b"VALUE", b"a", b"7", b"5"] and len(parts) == 5
    assert parts[4].isdigit() and int(parts[4]) > 0
    assert rest == b"hello\r\nEND\r\n"


def test_multi_get_mixed_hits_and_misses_in_request_order(conn):
    conn.set(b"a", b"1")
    conn.set(b"b", b"22", flags=5)
    assert conn.roundtrip(b"get b nope a c\r\n") == (
        value_reply(b"b", b"22", 5) + value_reply(b"a", b"1") + b"END\r\n"
    )


def test_multi_gets_cas_values_differ(conn):
    conn.set(b"a", b"1")
    conn.set(b"b", b"2")
    reply = conn.roundtrip(b"gets a b\r\n")
    lines = reply.split(b"\r\n")
    assert lines[0].startswith(b"VALUE a 0 1 ") and lines[2].startswith(b"VALUE b 0 1 ")
    assert lines[0].split()[4] != lines[2].split()[4]
    assert lines[1] == b"1" and lines[3] == b"2" and lines[4:] == [b"END", b""]


def test_multi_get_duplicate_key_returned_twice(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"get a a\r\n") == value_reply(b"a", b"x") * 2 + b"END\r\n"


@pytest.mark.parametrize("cmd", [b"get", b"gets"])
def test_multi_get_100_keys(conn, cmd):
    keys = [b"key:%03d" % i for i in range(100)]
    conn.send(b"".join(b"set %s %d 0 %d\r\nv%s\r\n" % (k, i, len(k) + 1, k) for i, k in enumerate(keys)))
    for _ in keys:
        assert conn.recv_line() == b"STORED\r\n"
    request = keys[:50] + [b"missing:1"] + keys[50:] + [b"missing:2"]
    reply = conn.roundtrip(cmd + b" " + b" ".join(request) + b"\r\n")
    lines = reply.split(b"\r\n")
    assert lines[-2:] == [b"END", b""]
    got = []
    for i in range(0, len(lines) - 2, 2):
        head = lines[i].split(b" ")
        assert head[0] == b"VALUE" and len(head) == (5 if cmd == b"gets" else 4)
        assert lines[i + 1] == b"v" + head[1]
        assert head[2] == b"%d" % keys.index(head[1]) and head[3] == b"%d" % len(lines[i + 1])
        got.append(head[1])
    assert got == keys


def test_key_of_250_bytes_works(conn):
    assert conn.roundtrip(b"get " + KEY250 + b"\r\n") == b"END\r\n"
    assert conn.roundtrip(b"set " + KEY250 + b" 3 0 1\r\nz\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get " + KEY250 + b"\r\n") == value_reply(KEY250, b"z", 3) + b"END\r\n"
    assert conn.roundtrip(b"delete " + KEY250 + b"\r\n") == b"DELETED\r\n"


@pytest.mark.parametrize("cmd", [b"get", b"gets", b"gat 0", b"gats 0"])
def test_key_of_251_bytes_rejected(conn, cmd):
    assert conn.roundtrip(cmd + b" " + KEY251 + b"\r\n") == BAD_FORMAT


@pytest.mark.parametrize("position", ["first", "middle", "last"])
@pytest.mark.parametrize("cmd", [b"get", b"gets"])
def test_too_long_key_among_others_discards_whole_reply(conn, cmd, position):
    conn.set(b"a", b"x")
    conn.set(b"b", b"y")
    keys = {"first": [KEY251, b"a", b"b"], "middle": [b"a", KEY251, b"b"], "last": [b"a", b"b", KEY251]}[position]
    # memcached drops the values already found and answers only the error.
    assert conn.roundtrip(cmd + b" " + b" ".join(keys) + b"\r\n") == BAD_FORMAT
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


@pytest.mark.parametrize("cmd", [b"get", b"gets", b"gat 2000", b"gats 2000"])
def test_keys_before_a_too_long_key_are_fetched_and_touched(conn, cmd):
    # Found by scripts/wire-fuzz.py: memcached fetches (and touches) the keys ahead of the bad
    # one before it answers the error; the keys after it are left alone.
    conn.set(b"a", b"x")
    conn.set(b"b", b"y")
    assert conn.roundtrip(cmd + b" a " + KEY251 + b" b\r\n") == BAD_FORMAT
    touched = cmd.startswith(b"gat")
    assert conn.roundtrip(b"mg a h t\r\n") == (b"HD h1 t2000\r\n" if touched else b"HD h1 t-1\r\n")
    assert conn.roundtrip(b"mg b h t\r\n") == b"HD h0 t-1\r\n"


@pytest.mark.parametrize("cmd", [b"get", b"gets", b"gat", b"gats"])
def test_no_key_is_error(conn, cmd):
    assert conn.roundtrip(cmd + b"\r\n") == b"ERROR\r\n"


@pytest.mark.parametrize("cmd", [b"gat 0", b"gats 0"])
def test_gat_with_exptime_but_no_key_is_end(conn, cmd):
    assert conn.roundtrip(cmd + b"\r\n") == b"END\r\n"


def test_tab_is_not_a_separator(conn):
    conn.set(b"a", b"x")
    conn.set(b"b", b"y")
    assert conn.roundtrip(b"get a\tb\r\n") == b"END\r\n"


def test_repeated_and_leading_spaces(conn):
    conn.set(b"a", b"x")
    conn.set(b"b", b"y")
    expected = value_reply(b"a", b"x") + value_reply(b"b", b"y") + b"END\r\n"
    assert conn.roundtrip(b"get a   b  \r\n") == expected
    assert conn.roundtrip(b"   get a b\r\n") == expected


def test_bare_lf_line_ending(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"get a\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_extra_cr_becomes_part_of_key(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"get a\r\r\n") == b"END\r\n"


def test_commands_are_case_sensitive(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"GET a\r\nGet a\r\n") == b"ERROR\r\nERROR\r\n"


def test_noreply_is_just_a_key_for_get(conn):
    conn.set(b"a", b"x")
    conn.set(b"noreply", b"n")
    assert conn.roundtrip(b"get a noreply\r\n") == (
        value_reply(b"a", b"x") + value_reply(b"noreply", b"n") + b"END\r\n"
    )


@pytest.mark.parametrize(
    "key",
    [b"caf\xc3\xa9", b"a\x7fb", b"\xff\xfe", b"k:with:colons", b"{}[]!@#$%^&*()"],
    ids=["utf8", "del-byte", "high-bytes", "colons", "punctuation"],
)
def test_unusual_key_bytes_roundtrip(conn, key):
    assert conn.roundtrip(b"set " + key + b" 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get " + key + b"\r\n") == value_reply(key, b"x") + b"END\r\n"


def test_nul_byte_ends_the_command_line(conn):
    conn.set(b"a", b"x")
    # memcached sees "set a" (too few tokens) and then the data line "x".
    assert conn.roundtrip(b"set a\x00b 0 0 1\r\nx\r\n") == b"ERROR\r\nERROR\r\n"
    # "get a\0b" is "get a".
    assert conn.roundtrip(b"get a\x00b\r\n") == value_reply(b"a", b"x") + b"END\r\n"


@pytest.mark.parametrize("cmd,with_cas", [(b"gat", False), (b"gats", True)])
def test_gat_hit_and_miss(conn, cmd, with_cas):
    conn.set(b"a", b"x", flags=4)
    conn.set(b"b", b"yy")
    reply = conn.roundtrip(cmd + b" 100 a nope b\r\n")
    lines = reply.split(b"\r\n")
    if with_cas:
        assert lines[0].startswith(b"VALUE a 4 1 ") and lines[2].startswith(b"VALUE b 0 2 ")
        lines[0] = b"VALUE a 4 1"
        lines[2] = b"VALUE b 0 2"
    assert b"\r\n".join(lines) == value_reply(b"a", b"x", 4) + value_reply(b"b", b"yy") + b"END\r\n"


def test_gats_cas_matches_gets(conn):
    conn.set(b"a", b"x")
    cas = conn.gets_cas(b"a")
    assert conn.roundtrip(b"gats 0 a\r\n") == b"VALUE a 0 1 %d\r\nx\r\nEND\r\n" % cas


def test_gat_negative_exptime_returns_value_then_expires_it(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"gat -1 a\r\n") == value_reply(b"a", b"x") + b"END\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"


@pytest.mark.parametrize("exptime", [b"abc", b"99999999999999999999", b"1.5"])
@pytest.mark.parametrize("cmd", [b"gat", b"gats"])
def test_gat_invalid_exptime(conn, cmd, exptime):
    conn.set(b"a", b"x")
    assert conn.roundtrip(cmd + b" " + exptime + b" a\r\n") == b"CLIENT_ERROR invalid exptime argument\r\n"


def test_gat_missing_exptime_uses_key_as_exptime(conn):
    conn.set(b"a", b"x")
    # "gat a" parses "a" as the exptime.
    assert conn.roundtrip(b"gat a\r\n") == b"CLIENT_ERROR invalid exptime argument\r\n"


def test_empty_value(conn):
    assert conn.roundtrip(b"set e 0 0 0\r\n\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"get e\r\n") == b"VALUE e 0 0\r\n\r\nEND\r\n"


def test_binary_value_with_crlf_and_nul(conn):
    value = b"\r\n\x00\xff\nEND\r\n" + bytes(range(256))
    assert conn.roundtrip(b"set bin 0 0 %d\r\n%s\r\n" % (len(value), value)) == b"STORED\r\n"
    assert conn.roundtrip(b"get bin\r\n") == value_reply(b"bin", value) + b"END\r\n"
