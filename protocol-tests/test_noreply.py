"""`noreply` on every command that has it: the command is executed, it
answers nothing, and the next command's answer is the first thing read."""

import pytest

from helpers import value_reply

# (name, setup value of key "k" or None, noreply request, value of "k" after)
CASES = [
    ("set", None, b"set k 1 0 3 noreply\r\nnew\r\n", (b"new", 1)),
    ("set-overwrite", b"old", b"set k 2 0 3 noreply\r\nnew\r\n", (b"new", 2)),
    ("add-hit", None, b"add k 0 0 3 noreply\r\nnew\r\n", (b"new", 0)),
    ("add-miss", b"old", b"add k 0 0 3 noreply\r\nnew\r\n", (b"old", 0)),
    ("replace-hit", b"old", b"replace k 0 0 3 noreply\r\nnew\r\n", (b"new", 0)),
    ("replace-miss", None, b"replace k 0 0 3 noreply\r\nnew\r\n", None),
    ("append", b"old", b"append k 0 0 1 noreply\r\n+\r\n", (b"old+", 0)),
    ("append-miss", None, b"append k 0 0 1 noreply\r\n+\r\n", None),
    ("prepend", b"old", b"prepend k 0 0 1 noreply\r\n+\r\n", (b"+old", 0)),
    ("prepend-miss", None, b"prepend k 0 0 1 noreply\r\n+\r\n", None),
    ("cas-miss", None, b"cas k 0 0 3 1 noreply\r\nnew\r\n", None),
    ("cas-exists", b"old", b"cas k 0 0 3 999999999 noreply\r\nnew\r\n", (b"old", 0)),
    ("delete", b"old", b"delete k noreply\r\n", None),
    ("delete-miss", None, b"delete k noreply\r\n", None),
    ("delete-0", b"old", b"delete k 0 noreply\r\n", None),
    ("incr", b"41", b"incr k 1 noreply\r\n", (b"42", 0)),
    ("incr-miss", None, b"incr k 1 noreply\r\n", None),
    ("incr-non-numeric", b"abc", b"incr k 1 noreply\r\n", (b"abc", 0)),
    ("decr", b"43", b"decr k 1 noreply\r\n", (b"42", 0)),
    ("decr-floor", b"3", b"decr k 9 noreply\r\n", (b"0", 0)),
    ("touch", b"old", b"touch k -1 noreply\r\n", None),
    ("touch-miss", None, b"touch k 10 noreply\r\n", None),
    ("flush_all", b"old", b"flush_all noreply\r\n", None),
    ("flush_all-0", b"old", b"flush_all 0 noreply\r\n", None),
    ("verbosity", b"old", b"verbosity 0 noreply\r\n", (b"old", 0)),
]


@pytest.mark.parametrize("setup,request_bytes,after", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_noreply(conn, setup, request_bytes, after):
    if setup is not None:
        conn.set(b"k", setup)
    # Sent together: only the get answers.
    reply = conn.roundtrip(request_bytes + b"get k\r\n")
    if after is None:
        assert reply == b"END\r\n"
    else:
        value, flags = after
        assert reply == value_reply(b"k", value, flags) + b"END\r\n"


def test_cas_hit_noreply(conn):
    conn.set(b"k", b"old")
    unique = conn.gets_cas(b"k")
    assert conn.roundtrip(b"cas k 3 0 3 %d noreply\r\nnew\r\nget k\r\n" % unique) == (
        value_reply(b"k", b"new", 3) + b"END\r\n"
    )


def test_cache_memlimit_noreply(conn):
    try:
        assert conn.roundtrip(b"cache_memlimit 65 noreply\r\n") == b""
        assert conn.stats()["limit_maxbytes"] == str(65 * 1024 * 1024)
    finally:
        assert conn.roundtrip(b"cache_memlimit 64\r\n") == b"OK\r\n"


@pytest.mark.parametrize("cmd", [b"get k noreply", b"gets k noreply", b"gat 0 k noreply"])
def test_retrieval_commands_have_no_noreply(conn, cmd):
    conn.set(b"k", b"v")
    reply = conn.roundtrip(cmd + b"\r\n")
    assert reply.endswith(b"\r\nv\r\nEND\r\n") and reply.startswith(b"VALUE k 0 1")


def test_noreply_storm_then_get(conn):
    req = b"".join(b"set n%d 0 0 1 noreply\r\n%d\r\nincr n%d 1 noreply\r\n" % (i, i % 9, i) for i in range(300))
    assert conn.roundtrip(req) == b""
    assert conn.roundtrip(b"get n0 n299\r\n") == value_reply(b"n0", b"1") + value_reply(b"n299", b"3") + b"END\r\n"
