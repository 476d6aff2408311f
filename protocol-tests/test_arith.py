"""incr / decr."""

import pytest

from helpers import value_reply

NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
MAX64 = 2**64 - 1


def test_incr_decr_basic(conn):
    conn.set(b"n", b"10", flags=5)
    assert conn.roundtrip(b"incr n 5\r\n") == b"15\r\n"
    assert conn.roundtrip(b"decr n 3\r\n") == b"12\r\n"
    assert conn.roundtrip(b"get n\r\n") == value_reply(b"n", b"12", 5) + b"END\r\n"


@pytest.mark.parametrize("cmd", [b"incr", b"decr"])
def test_miss(conn, cmd):
    assert conn.roundtrip(cmd + b" nope 1\r\n") == b"NOT_FOUND\r\n"
    assert conn.roundtrip(b"get nope\r\n") == b"END\r\n"


def test_decr_shrinks_in_place_with_space_padding(conn):
    """memcached rewrites a shorter number in place, padded with spaces."""
    conn.set(b"n", b"100")
    assert conn.roundtrip(b"decr n 1\r\n") == b"99\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 3\r\n99 \r\nEND\r\n"
    assert conn.roundtrip(b"decr n 1000\r\n") == b"0\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 3\r\n0  \r\nEND\r\n"
    # The padding is accepted as a number again; growing back fits in place.
    assert conn.roundtrip(b"incr n 100\r\n") == b"100\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 3\r\n100\r\nEND\r\n"


def test_incr_grows_value(conn):
    conn.set(b"n", b"99")
    assert conn.roundtrip(b"incr n 1\r\n") == b"100\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 3\r\n100\r\nEND\r\n"


def test_incr_after_decr_padding(conn):
    conn.set(b"n", b"10")
    assert conn.roundtrip(b"decr n 1\r\nincr n 1\r\n") == b"9\r\n10\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 2\r\n10\r\nEND\r\n"


def test_incr_leading_zero_value(conn):
    conn.set(b"n", b"07", flags=5)
    assert conn.roundtrip(b"incr n 1\r\n") == b"8\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 5 2\r\n8 \r\nEND\r\n"


def test_incr_wraps_at_2_64(conn):
    conn.set(b"n", b"%d" % MAX64)
    assert conn.roundtrip(b"incr n 1\r\n") == b"0\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 20\r\n0" + b" " * 19 + b"\r\nEND\r\n"
    conn.set(b"n", b"%d" % MAX64)
    assert conn.roundtrip(b"incr n 2\r\n") == b"1\r\n"
    conn.set(b"n", b"1")
    assert conn.roundtrip(b"incr n %d\r\n" % MAX64) == b"0\r\n"


def test_decr_floors_at_zero(conn):
    conn.set(b"n", b"5")
    assert conn.roundtrip(b"decr n 6\r\n") == b"0\r\n"
    assert conn.roundtrip(b"decr n 1\r\n") == b"0\r\n"
    conn.set(b"n", b"5")
    assert conn.roundtrip(b"decr n %d\r\n" % MAX64) == b"0\r\n"


def test_incr_zero_delta(conn):
    conn.set(b"n", b"42")
    assert conn.roundtrip(b"incr n 0\r\ndecr n 0\r\n") == b"42\r\n42\r\n"


@pytest.mark.parametrize(
    "value",
    [b"abc", b"12a", b"-1", b"", b"18446744073709551616", b"1.5", b"0x10"],
    ids=["alpha", "trailing-alpha", "negative", "empty", "too-big", "float", "hex"],
)
@pytest.mark.parametrize("cmd", [b"incr", b"decr"])
def test_non_numeric_value(conn, cmd, value):
    conn.set(b"n", value)
    assert conn.roundtrip(cmd + b" n 1\r\n") == NON_NUMERIC
    assert conn.roundtrip(b"get n\r\n") == value_reply(b"n", value) + b"END\r\n"


@pytest.mark.parametrize("value,result", [(b" 12", b"13"), (b"12 ", b"13"), (b"0", b"1")])
def test_whitespace_around_number_is_accepted(conn, value, result):
    conn.set(b"n", value)
    assert conn.roundtrip(b"incr n 1\r\n") == result + b"\r\n"


@pytest.mark.parametrize(
    "delta", [b"abc", b"-1", b"18446744073709551616", b"1.0", b"0x1", b"1a"]
)
@pytest.mark.parametrize("cmd", [b"incr", b"decr"])
def test_invalid_delta(conn, cmd, delta):
    conn.set(b"n", b"5")
    assert conn.roundtrip(cmd + b" n " + delta + b"\r\n") == BAD_DELTA
    # Checked before the key is looked up.
    assert conn.roundtrip(cmd + b" nope " + delta + b"\r\n") == BAD_DELTA


def test_delta_with_plus_and_leading_zeros(conn):
    conn.set(b"n", b"5")
    assert conn.roundtrip(b"incr n +1\r\nincr n 007\r\n") == b"6\r\n13\r\n"


def test_value_with_plus_sign_is_numeric(conn):
    conn.set(b"n", b"+1")
    assert conn.roundtrip(b"incr n 1\r\n") == b"2\r\n"
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 2\r\n2 \r\nEND\r\n"


def test_value_with_leading_zero_is_numeric(conn):
    conn.set(b"n", b"01")
    assert conn.roundtrip(b"incr n 1\r\n") == b"2\r\n"


@pytest.mark.parametrize("cmd", [b"incr", b"decr"])
def test_token_count(conn, cmd):
    conn.set(b"n", b"5")
    assert conn.roundtrip(cmd + b"\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(cmd + b" n\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(cmd + b" n \r\n") == b"ERROR\r\n"
    # A 4th token that is not "noreply" is ignored...
    assert conn.roundtrip(cmd + b" n 1 extra\r\n") == (b"6\r\n" if cmd == b"incr" else b"4\r\n")
    # ...but a 5th one makes it an unknown command.
    assert conn.roundtrip(cmd + b" n 1 noreply extra\r\n") == b"ERROR\r\n"


@pytest.mark.parametrize("cmd", [b"incr", b"decr"])
def test_key_too_long(conn, cmd):
    assert conn.roundtrip(cmd + b" " + b"k" * 251 + b" 1\r\n") == b"CLIENT_ERROR bad command line format\r\n"


def test_noreply(conn):
    conn.set(b"n", b"5")
    assert conn.roundtrip(b"incr n 1 noreply\r\ndecr n 3 noreply\r\n") == b""
    assert conn.roundtrip(b"get n\r\n") == b"VALUE n 0 1\r\n3\r\nEND\r\n"


def test_incr_changes_cas(conn):
    conn.set(b"n", b"5")
    before = conn.gets_cas(b"n")
    assert conn.roundtrip(b"incr n 1\r\n") == b"6\r\n"
    assert conn.gets_cas(b"n") > before


def test_incr_keeps_flags_and_ttl_free_value(conn):
    conn.set(b"n", b"1", flags=123)
    assert conn.roundtrip(b"incr n 999\r\n") == b"1000\r\n"
    assert conn.roundtrip(b"get n\r\n") == value_reply(b"n", b"1000", 123) + b"END\r\n"
