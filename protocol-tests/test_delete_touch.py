"""delete and touch."""

import pytest

from helpers import value_reply

DELETE_USAGE = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"


def test_delete_hit_then_miss(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"delete a\r\ndelete a\r\n") == b"DELETED\r\nNOT_FOUND\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"


def test_delete_legacy_zero_time_is_accepted(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"delete a 0\r\n") == b"DELETED\r\n"
    assert conn.roundtrip(b"delete a 0\r\n") == b"NOT_FOUND\r\n"


@pytest.mark.parametrize("arg", [b"1", b"x", b"0 0", b"00", b"-1", b"10"])
def test_delete_with_nonzero_time_is_rejected(conn, arg):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"delete a " + arg + b"\r\n") == DELETE_USAGE
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_delete_noreply_forms(conn):
    conn.set(b"a", b"x")
    conn.set(b"b", b"y")
    assert conn.roundtrip(b"delete a noreply\r\ndelete b 0 noreply\r\ndelete nope noreply\r\n") == b""
    assert conn.roundtrip(b"get a b\r\n") == b"END\r\n"


def test_delete_noreply_on_usage_error_is_silent(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"delete a 1 noreply\r\n") == b""
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_delete_token_count(conn):
    assert conn.roundtrip(b"delete\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(b"delete a 0 noreply extra\r\n") == b"ERROR\r\n"


def test_delete_key_too_long(conn):
    assert conn.roundtrip(b"delete " + b"k" * 251 + b"\r\n") == b"CLIENT_ERROR bad command line format\r\n"


def test_touch_hit_and_miss(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"touch a 100\r\ntouch nope 100\r\n") == b"TOUCHED\r\nNOT_FOUND\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_touch_negative_expires_now(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"touch a -1\r\n") == b"TOUCHED\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"


def test_touch_absolute_past_expires_now(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"touch a 2592001\r\n") == b"TOUCHED\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"


def test_touch_does_not_change_cas(conn):
    conn.set(b"a", b"x")
    before = conn.gets_cas(b"a")
    assert conn.roundtrip(b"touch a 1000\r\n") == b"TOUCHED\r\n"
    assert conn.gets_cas(b"a") == before


@pytest.mark.parametrize("exptime", [b"abc", b"99999999999999999999", b"1.5"])
def test_touch_invalid_exptime(conn, exptime):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"touch a " + exptime + b"\r\n") == b"CLIENT_ERROR invalid exptime argument\r\n"


def test_touch_plus_sign(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"touch a +100\r\n") == b"TOUCHED\r\n"


def test_touch_token_count(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"touch\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(b"touch a\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(b"touch a 10 noreply extra\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(b"touch a 10 extra\r\n") == b"TOUCHED\r\n"


def test_touch_noreply(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"touch a 10 noreply\r\ntouch nope 10 noreply\r\ntouch a abc noreply\r\n") == b""
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_touch_key_too_long(conn):
    assert conn.roundtrip(b"touch " + b"k" * 251 + b" 0\r\n") == b"CLIENT_ERROR bad command line format\r\n"


def test_touch_marks_the_item_fetched(conn):
    # Found by scripts/wire-fuzz.py: memcached's touch is a fetch (h1 after it).
    conn.set(b"th", b"x")
    assert conn.roundtrip(b"mg th h\r\n") == b"HD h0\r\n"
    conn.set(b"th", b"x")
    assert conn.roundtrip(b"touch th 0\r\nmg th h\r\n") == b"TOUCHED\r\nHD h1\r\n"
