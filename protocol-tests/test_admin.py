"""flush_all, version, verbosity, quit, shutdown, cache_memlimit."""

import time

import pytest

from helpers import value_reply


def test_flush_all(conn):
    conn.set(b"a", b"x")
    conn.set(b"b", b"y")
    assert conn.roundtrip(b"flush_all\r\n") == b"OK\r\n"
    assert conn.roundtrip(b"get a b\r\n") == b"END\r\n"
    # The cache is usable right after a flush.
    conn.set(b"a", b"z")
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"z") + b"END\r\n"


@pytest.mark.parametrize("arg", [b"0", b"-1", b"-100"])
def test_flush_all_zero_or_negative_is_immediate(conn, arg):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"flush_all " + arg + b"\r\n") == b"OK\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"


def test_flush_all_noreply(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"flush_all noreply\r\n") == b""
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"flush_all 0 noreply\r\n") == b""
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"


def test_flush_all_absolute_time_in_the_past_flushes_nothing(conn):
    """2592001 is > 30 days, so an absolute unix time (1970): memcached
    clamps it to the server start and flushes nothing."""
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"flush_all 2592001\r\n") == b"OK\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


@pytest.mark.parametrize("arg", [b"abc", b"1.5", b"99999999999999999999"])
def test_flush_all_bad_argument(conn, arg):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"flush_all " + arg + b"\r\n") == b"CLIENT_ERROR invalid exptime argument\r\n"
    assert conn.roundtrip(b"flush_all " + arg + b" noreply\r\n") == b""
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"


def test_flush_all_token_count(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"flush_all 0 noreply extra\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"
    # A third token that is not noreply is ignored.
    assert conn.roundtrip(b"flush_all 0 extra\r\n") == b"OK\r\n"
    assert conn.roundtrip(b"get a\r\n") == b"END\r\n"


@pytest.mark.fresh
@pytest.mark.slow
def test_flush_all_with_delay(make_server):
    srv = make_server()
    with srv.connect() as c:
        c.set(b"a", b"x")
        assert c.roundtrip(b"flush_all 2\r\n") == b"OK\r\n"
        assert c.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and c.roundtrip(b"get a\r\n") != b"END\r\n":
            time.sleep(0.1)
        assert c.roundtrip(b"get a\r\n") == b"END\r\n"
        # Items stored after the flush point survive.
        time.sleep(1.1)
        c.set(b"b", b"y")
        assert c.roundtrip(b"get b\r\n") == value_reply(b"b", b"y") + b"END\r\n"


@pytest.mark.fresh
def test_flush_all_disabled_with_F(make_server):
    srv = make_server("-F")
    with srv.connect() as c:
        c.set(b"a", b"x")
        for cmd in (b"flush_all\r\n", b"flush_all 0\r\n", b"flush_all bogus\r\n"):
            assert c.roundtrip(cmd) == b"CLIENT_ERROR flush_all not allowed\r\n"
        assert c.roundtrip(b"flush_all noreply\r\n") == b""
        assert c.roundtrip(b"get a\r\n") == value_reply(b"a", b"x") + b"END\r\n"
        assert c.stats(b"settings")["flush_enabled"] == "no"


def test_version(conn):
    conn.send(b"version\r\n")
    line = conn.recv_line()
    assert line.startswith(b"VERSION ") and len(line) > len(b"VERSION \r\n")


def test_version_ignores_extra_tokens(conn):
    conn.send(b"version extra\r\n")
    assert conn.recv_line().startswith(b"VERSION ")


def test_version_matches_stats(conn):
    line = conn.request(b"version\r\n")
    assert conn.stats()["version"] == line[len(b"VERSION "):-2].decode()


@pytest.mark.parametrize("level", [b"0", b"1", b"2", b"+0"])
def test_verbosity(conn, level):
    assert conn.roundtrip(b"verbosity " + level + b"\r\n") == b"OK\r\n"
    assert conn.roundtrip(b"verbosity 0\r\n") == b"OK\r\n"


def test_verbosity_noreply(conn):
    assert conn.roundtrip(b"verbosity 1 noreply\r\nverbosity 0 noreply\r\n") == b""


def test_verbosity_errors(conn):
    assert conn.roundtrip(b"verbosity\r\n") == b"ERROR\r\n"
    assert conn.roundtrip(b"verbosity abc\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert conn.roundtrip(b"verbosity abc noreply\r\n") == b""
    assert conn.roundtrip(b"verbosity 1 2 3\r\n") == b"ERROR\r\n"
    # A second token that is not noreply is ignored.
    assert conn.roundtrip(b"verbosity 0 2\r\n") == b"OK\r\n"


def test_quit_closes_connection(conn):
    conn.send(b"quit\r\n")
    conn.assert_closed()


def test_quit_with_extra_token_closes(conn):
    conn.send(b"quit extra\r\n")
    conn.assert_closed()


def test_quit_answers_pipelined_commands_before_it_only(conn):
    conn.set(b"a", b"x")
    conn.send(b"get a\r\nquit\r\nget a\r\n")
    assert conn.assert_closed(allow_data=True) == value_reply(b"a", b"x") + b"END\r\n"


def test_quit_leaves_server_running(server, conn):
    conn.send(b"quit\r\n")
    conn.assert_closed()
    with server.connect() as c2:
        assert c2.roundtrip(b"get a\r\n") == b"END\r\n"


@pytest.mark.parametrize("cmd", [b"shutdown", b"shutdown graceful"])
def test_shutdown_not_enabled(server, conn, cmd):
    assert conn.roundtrip(cmd + b"\r\n") == b"ERROR: shutdown not enabled\r\n"
    assert server.alive()


@pytest.mark.fresh
@pytest.mark.parametrize("cmd", [b"shutdown", b"shutdown graceful"])
def test_shutdown_with_A_exits(make_server, cmd):
    srv = make_server("-A")
    with srv.connect() as c:
        assert c.stats(b"settings")["shutdown_command"] == "yes"
        c.send(cmd + b"\r\n")
        c.assert_closed()
    srv.proc.wait(timeout=5)
    assert srv.proc.returncode == 0


@pytest.mark.fresh
@pytest.mark.parametrize("arg", [b"foo", b"graceful now", b"noreply"])
def test_shutdown_with_A_bad_mode(make_server, arg):
    srv = make_server("-A")
    with srv.connect() as c:
        assert c.roundtrip(b"shutdown " + arg + b"\r\n") == b"CLIENT_ERROR invalid shutdown mode\r\n"
    assert srv.alive()


def test_cache_memlimit(server, conn):
    try:
        assert conn.roundtrip(b"cache_memlimit 100\r\n") == b"OK\r\n"
        assert conn.stats()["limit_maxbytes"] == str(100 * 1024 * 1024)
        assert conn.roundtrip(b"cache_memlimit 80 noreply\r\n") == b""
        assert conn.stats()["limit_maxbytes"] == str(80 * 1024 * 1024)
    finally:
        assert conn.roundtrip(b"cache_memlimit 64\r\n") == b"OK\r\n"
    assert conn.stats()["limit_maxbytes"] == str(64 * 1024 * 1024)


@pytest.mark.parametrize("arg", [b"0", b"1", b"7"])
def test_cache_memlimit_too_small(conn, arg):
    assert conn.roundtrip(b"cache_memlimit " + arg + b"\r\n") == (
        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    )


@pytest.mark.parametrize("line", [b"cache_memlimit", b"cache_memlimit abc", b"cache_memlimit -5"])
def test_cache_memlimit_errors(conn, line):
    assert conn.roundtrip(line + b"\r\n") == b"ERROR\r\n"


def _metadump(srv, arg):
    # memcached refuses a metadump pipelined behind other replies: a connection of its own.
    with srv.connect() as c:
        c.send(b"lru_crawler metadump %s\r\n" % arg)
        return c.recv_until(b"END\r\n")


def _masked(dump):
    """The dump's lines as a set, with the clock's seconds masked (the servers' clocks may
    tick apart) but the expiry's distance from the last access kept."""
    lines = set()
    for line in dump.split(b"\n"):
        if not line.startswith(b"key="):
            continue
        fields = dict(f.split(b"=", 1) for f in line.split(b" "))
        la = int(fields.pop(b"la"))
        exp = int(fields[b"exp"])
        fields[b"exp"] = b"-1" if exp == -1 else str(exp - la).encode()
        lines.add(b" ".join(k + b"=" + v for k, v in sorted(fields.items())))
    return lines


def test_lru_crawler_metadump_lists_every_item_with_its_metadata(make_server):
    srv = make_server()
    with srv.connect() as c:
        assert c.request(b"set foo 5 100 3\r\nbar\r\n") == b"STORED\r\n"
        assert c.request(b"set b%20z 0 0 1\r\nx\r\n") == b"STORED\r\n"
        assert c.request(b"set big 0 0 2000\r\n" + b"a" * 2000 + b"\r\n") == b"STORED\r\n"
        c.request(b"get foo\r\n", until=b"END\r\n")
    # memcached lists an item only once its LRU maintainer moved it out of the hot LRU (slower
    # on a busy machine): ask again for a few seconds at most, as the memcdump test does.
    for _ in range(30):
        dump = _metadump(srv, b"all")
        if len(_masked(dump)) == 3:
            break
        time.sleep(0.2)
    assert dump.endswith(b"\nEND\r\n")
    assert _masked(dump) == {
        b"cas=1 cls=1 exp=100 fetch=yes key=foo size=69",
        b"cas=2 cls=1 exp=-1 fetch=no key=b%2520z size=65",
        b"cas=3 cls=15 exp=-1 fetch=no key=big size=2062",
    }
    assert _masked(_metadump(srv, b"hash")) == _masked(dump)
    assert {l.split(b" ")[-1] for l in _masked(_metadump(srv, b"1,2"))} == {b"size=69", b"size=65"}
    assert _metadump(srv, b"12") == b"END\r\n"
    with srv.connect() as c:
        for bad in [b"0", b"64", b"foo", b"1,foo"]:
            assert c.request(b"lru_crawler metadump %s\r\n" % bad) == b"BADCLASS invalid class id\r\n"


def test_memcdump_lists_the_keys(make_server):
    import shutil
    import subprocess

    tool = shutil.which("memcdump")
    if tool is None:
        pytest.skip("memcdump (libmemcached-tools) not installed")
    srv = make_server()
    with srv.connect() as c:
        for k in [b"alpha", b"beta", b"gamma"]:
            c.request(b"set %s 0 0 1\r\nx\r\n" % k)
    # memcached lists an item only once its LRU maintainer moved it out of the hot LRU (up
    # to a second on an idle server): ask again for a few seconds at most.
    for _ in range(30):
        r = subprocess.run([tool, f"--servers=127.0.0.1:{srv.port}"], capture_output=True, timeout=20)
        if sorted(r.stdout.split()) == [b"alpha", b"beta", b"gamma"]:
            break
        time.sleep(0.2)
    assert sorted(r.stdout.split()) == [b"alpha", b"beta", b"gamma"], r


def test_disable_dumping_refuses_metadump_and_cachedump(make_server):
    # Differential: memcached's -X answers both with its own errors; the connection lives on.
    srv = make_server("-X")
    with srv.connect() as c:
        c.request(b"set a 0 0 1\r\nx\r\n")
        assert c.roundtrip(b"lru_crawler metadump all\r\n") == b"ERROR metadump not allowed\r\n"
        assert c.roundtrip(b"stats cachedump 1 1\r\n") == b"CLIENT_ERROR stats cachedump not allowed\r\n"
        assert c.roundtrip(b"get a\r\n") == b"VALUE a 0 1\r\nx\r\nEND\r\n"
