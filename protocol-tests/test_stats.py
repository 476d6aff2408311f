"""stats and its sub-commands. Values differ between servers; names,
formats and counter semantics must not."""

import re
import time

import pytest

from helpers import parse_stats, stat_names

# General stats both servers must report, in memcached's order.
CORE_STATS = [
    "pid", "uptime", "time", "version", "pointer_size", "rusage_user", "rusage_system",
    "max_connections", "curr_connections", "total_connections", "rejected_connections",
    "connection_structures",
    "cmd_get", "cmd_set", "cmd_flush", "cmd_touch",
    "get_hits", "get_misses", "get_expired", "get_flushed",
    "delete_misses", "delete_hits", "incr_misses", "incr_hits", "decr_misses", "decr_hits",
    "cas_misses", "cas_hits", "cas_badval", "touch_hits", "touch_misses",
    "store_too_large", "store_no_memory", "auth_cmds", "auth_errors",
    "bytes_read", "bytes_written", "limit_maxbytes", "accepting_conns",
    "listen_disabled_num", "threads", "conn_yields",
    "bytes", "curr_items", "total_items", "expired_unfetched", "evicted_unfetched",
    "evictions", "reclaimed",
]

# `stats settings` names both servers must report, in memcached's order.
CORE_SETTINGS = [
    "maxbytes", "maxconns", "tcpport", "udpport", "inter", "verbosity", "oldest",
    "evictions", "growth_factor", "chunk_size", "num_threads", "stat_key_prefix",
    "detail_enabled", "reqs_per_event", "cas_enabled", "tcp_backlog", "binding_protocol",
    "item_size_max", "flush_enabled",
]

ITEM_CLASS_FIELDS = ["number", "age", "evicted", "evicted_nonzero", "evicted_time", "outofmemory", "reclaimed"]
SLAB_CLASS_FIELDS = ["chunk_size", "chunks_per_page", "total_pages", "total_chunks", "used_chunks", "free_chunks"]

NUMERIC = re.compile(r"^\d+$")
DECIMAL = re.compile(r"^\d+\.\d+$")


def _is_subsequence(needles, haystack):
    it = iter(haystack)
    return all(n in it for n in needles)


def test_stats_format_and_core_names(conn):
    raw = conn.stats_raw()
    assert raw.endswith(b"\r\nEND\r\n") and raw.startswith(b"STAT pid ")
    for line in raw.split(b"\r\n")[:-2]:
        assert re.fullmatch(rb"STAT [a-z_0-9]+ [^\r\n]+", line), line
    names = stat_names(raw)
    assert len(names) == len(set(names)), "duplicate stat names"
    missing = [n for n in CORE_STATS if n not in names]
    assert not missing, f"missing stats: {missing}"


def test_stats_core_names_in_memcached_order(conn):
    names = stat_names(conn.stats_raw())
    present = [n for n in names if n in CORE_STATS]
    assert present == CORE_STATS


def test_stats_values_types(server, conn):
    s = conn.stats()
    for name in CORE_STATS:
        if name == "version":
            continue
        if name.startswith("rusage_"):
            assert DECIMAL.match(s[name]), (name, s[name])
        else:
            assert NUMERIC.match(s[name]), (name, s[name])
    assert int(s["pid"]) == server.proc.pid
    assert abs(int(s["time"]) - time.time()) <= 5
    assert 0 <= int(s["uptime"]) < 3600
    assert s["pointer_size"] in ("32", "64")
    assert s["threads"] == "2"
    assert s["max_connections"] == "1024"
    assert s["limit_maxbytes"] == str(64 * 1024 * 1024)
    assert s["accepting_conns"] == "1"
    assert s["version"] == conn.request(b"version\r\n")[8:-2].decode()


def _wait_stat(c, name, value, limit=2.0):
    """Poll `stats` until `name` equals `value` (closes are noticed
    asynchronously); return the last reading."""
    deadline = time.monotonic() + limit
    while True:
        s = c.stats()
        if s[name] == value or time.monotonic() > deadline:
            return s
        time.sleep(0.02)


@pytest.mark.fresh
def test_stats_connection_counters(make_server):
    srv = make_server()
    with srv.connect() as c1:
        # curr_connections counts client connections only.
        before = _wait_stat(c1, "curr_connections", "1")
        assert before["curr_connections"] == "1"
        with srv.connect() as c2:
            c2.roundtrip(b"")
            mid = _wait_stat(c1, "curr_connections", "2")
            assert mid["curr_connections"] == "2"
            # (>=: memcached may count the start-up probe connection late.)
            assert int(mid["total_connections"]) >= int(before["total_connections"]) + 1
            c2.send(b"quit\r\n")
            c2.assert_closed()
        assert _wait_stat(c1, "curr_connections", "1")["curr_connections"] == "1"


def test_stats_bytes_read_and_written_grow(conn):
    before = conn.stats()
    conn.set(b"a", b"x" * 1000)
    assert len(conn.roundtrip(b"get a\r\n")) > 1000
    after = conn.stats()
    assert int(after["bytes_read"]) - int(before["bytes_read"]) >= 1000
    assert int(after["bytes_written"]) - int(before["bytes_written"]) >= 1000


@pytest.mark.fresh
def test_stats_command_counters(make_server):
    srv = make_server()
    with srv.connect() as c:
        before = c.stats()
        ops = (
            b"set a 0 0 1\r\nx\r\n"  # cmd_set, total_items
            b"add a 0 0 1\r\nx\r\n"  # cmd_set (NOT_STORED)
            b"replace zz 0 0 1\r\nx\r\n"  # cmd_set (NOT_STORED)
            b"append zz 0 0 1\r\nx\r\n"  # cmd_set (NOT_STORED)
            b"get a zz a\r\n"  # cmd_get 3, hits 2, misses 1
            b"delete a\r\ndelete a\r\n"  # delete hit, miss
            b"set n 0 0 1\r\n1\r\n"  # cmd_set, total_items
            b"incr n 1\r\nincr zz 1\r\n"  # incr hit, miss
            b"decr n 1\r\ndecr zz 1\r\n"  # decr hit, miss
            b"touch n 0\r\ntouch zz 0\r\n"  # cmd_touch 2, touch hit, miss
            b"gets n\r\n"  # cmd_get, hit
            b"cas n 0 0 1 999999\r\n2\r\n"  # cmd_set, cas_badval
            b"cas zz 0 0 1 1\r\n1\r\n"  # cmd_set, cas_misses
            b"set e 0 -1 1\r\nx\r\n"  # cmd_set, total_items
            b"get e\r\n"  # cmd_get, miss, get_expired
            b"gat 0 n zz\r\n"  # cmd_touch 2, touch hit, miss
            b"flush_all\r\n"  # cmd_flush
            b"get n\r\n"  # cmd_get, miss, get_flushed
            b"set big 0 0 1100000\r\n" + b"v" * 1100000 + b"\r\n"  # store_too_large
        )
        reply = c.roundtrip(ops)
        assert reply.endswith(b"OK\r\nEND\r\nSERVER_ERROR object too large for cache\r\n")
        after = c.stats()
    delta = {k: int(after[k]) - int(before[k]) for k in CORE_STATS if NUMERIC.match(before.get(k, "x"))}
    expected = {
        "cmd_get": 6, "get_hits": 3, "get_misses": 3, "get_expired": 1, "get_flushed": 1,
        "cmd_set": 8, "total_items": 3, "cmd_flush": 1, "cmd_touch": 4,
        "touch_hits": 2, "touch_misses": 2,
        "delete_hits": 1, "delete_misses": 1, "incr_hits": 1, "incr_misses": 1,
        "decr_hits": 1, "decr_misses": 1, "cas_hits": 0, "cas_misses": 1, "cas_badval": 1,
        "store_too_large": 1, "store_no_memory": 0, "evictions": 0,
    }
    assert {k: delta[k] for k in expected} == expected
    assert int(after["bytes_read"]) - int(before["bytes_read"]) >= 1100000


@pytest.mark.fresh
def test_stats_curr_items_and_bytes(make_server):
    srv = make_server()
    with srv.connect() as c:
        s = c.stats()
        assert (s["curr_items"], s["total_items"], s["bytes"]) == ("0", "0", "0")
        for i in range(10):
            c.set(b"k%d" % i, b"v" * 100)
        s = c.stats()
        assert (s["curr_items"], s["total_items"]) == ("10", "10")
        assert int(s["bytes"]) >= 10 * 100
        assert c.roundtrip(b"delete k0\r\n") == b"DELETED\r\n"
        s2 = c.stats()
        assert s2["curr_items"] == "9" and int(s2["bytes"]) < int(s["bytes"])
        c.set(b"k1", b"w")
        assert c.stats()["curr_items"] == "9"
        assert c.stats()["total_items"] == "11"


def test_cas_hits_counter(conn):
    conn.set(b"a", b"x")
    cas = conn.gets_cas(b"a")
    before = conn.stats()
    assert conn.roundtrip(b"cas a 0 0 1 %d\r\ny\r\n" % cas) == b"STORED\r\n"
    after = conn.stats()
    assert int(after["cas_hits"]) - int(before["cas_hits"]) == 1


@pytest.mark.fresh
def test_stats_reset(make_server):
    srv = make_server()
    with srv.connect() as c:
        c.set(b"a", b"x")
        c.roundtrip(b"get a\r\nget b\r\nincr a 1\r\n")
        assert c.roundtrip(b"stats reset\r\n") == b"RESET\r\n"
        s = c.stats()
        for name in ("cmd_get", "cmd_set", "get_hits", "get_misses", "incr_misses", "total_items",
                     "total_connections", "cmd_flush", "evictions"):
            assert s[name] == "0", name
        # State, not history: kept.
        assert s["curr_items"] == "1"
        assert s["curr_connections"] != "0"
        assert c.roundtrip(b"stats reset extra\r\n") == b"RESET\r\n"


def test_stats_settings_core_names(conn):
    raw = conn.stats_raw(b"settings")
    for line in raw.split(b"\r\n")[:-2]:
        assert re.fullmatch(rb"STAT [a-z_0-9]+ [^\r\n]+", line), line
    names = stat_names(raw)
    assert [n for n in names if n in CORE_SETTINGS] == CORE_SETTINGS


def test_stats_settings_default_values(server, conn):
    s = conn.stats(b"settings")
    assert s["maxbytes"] == str(64 * 1024 * 1024)
    assert s["maxconns"] == "1024"
    assert s["tcpport"] == str(server.port)
    assert s["udpport"] == "0"
    assert s["inter"] == "127.0.0.1"
    assert s["verbosity"] == "0"
    assert s["evictions"] == "on"
    assert s["num_threads"] == "2"
    assert s["cas_enabled"] == "yes"
    assert s["item_size_max"] == "1048576"
    assert s["flush_enabled"] == "yes"
    assert s["stat_key_prefix"] == ":"
    assert s["detail_enabled"] == "no"
    assert s["growth_factor"] == "1.25"
    assert s["chunk_size"] == "48"


def test_stats_settings_verbosity_follows_command(conn):
    try:
        assert conn.roundtrip(b"verbosity 1\r\n") == b"OK\r\n"
        assert conn.stats(b"settings")["verbosity"] == "1"
    finally:
        conn.roundtrip(b"verbosity 0\r\n")
    assert conn.stats(b"settings")["verbosity"] == "0"


@pytest.mark.fresh
@pytest.mark.parametrize(
    "flags,name,value",
    [
        (("-m", "2"), "maxbytes", "2097152"),
        (("-m", "100"), "maxbytes", str(100 * 1024 * 1024)),
        (("-c", "100"), "maxconns", "100"),
        (("-M",), "evictions", "off"),
        (("-C",), "cas_enabled", "no"),
        (("-I", "512k"), "item_size_max", "524288"),
        (("-I", "2m"), "item_size_max", "2097152"),
        (("-F",), "flush_enabled", "no"),
        (("-X",), "dump_enabled", "no"),
        ((), "dump_enabled", "yes"),
        (("-A",), "shutdown_command", "yes"),
        ((), "shutdown_command", "no"),
        (("-v",), "verbosity", "1"),
        (("-vv",), "verbosity", "2"),
        (("-n", "64"), "chunk_size", "64"),
        (("-f", "1.5"), "growth_factor", "1.50"),
        (("-R", "5"), "reqs_per_event", "5"),
        (("-b", "64"), "tcp_backlog", "64"),
        (("-D", "/"), "stat_key_prefix", "/"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else v,
)
def test_stats_settings_reflect_flags(make_server, flags, name, value):
    srv = make_server(*flags)
    with srv.connect() as c:
        assert c.stats(b"settings")[name] == value
        if name == "maxbytes":
            assert c.stats()["limit_maxbytes"] == value
        if name == "maxconns":
            assert c.stats()["max_connections"] == value


@pytest.mark.fresh
def test_stats_items_and_slabs_empty(make_server):
    srv = make_server()
    with srv.connect() as c:
        assert c.roundtrip(b"stats items\r\n") == b"END\r\n"
        assert c.roundtrip(b"stats slabs\r\n") == b"STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n"


@pytest.mark.fresh
def test_stats_items_after_stores(make_server):
    srv = make_server()
    with srv.connect() as c:
        for i in range(5):
            c.set(b"small%d" % i, b"x")
        for i in range(3):
            c.set(b"large%d" % i, b"y" * 5000)
        raw = c.stats_raw(b"items")
    per_class: dict[str, dict[str, str]] = {}
    for line in raw.split(b"\r\n")[:-2]:
        m = re.fullmatch(rb"STAT items:(\d+):([a-z_]+) (\d+)", line)
        assert m, line
        per_class.setdefault(m.group(1).decode(), {})[m.group(2).decode()] = m.group(3).decode()
    assert len(per_class) == 2
    for fields in per_class.values():
        assert [f for f in fields if f in ITEM_CLASS_FIELDS] == ITEM_CLASS_FIELDS
    assert sorted(int(f["number"]) for f in per_class.values()) == [3, 5]


@pytest.mark.fresh
def test_stats_slabs_after_stores(make_server):
    srv = make_server()
    with srv.connect() as c:
        for i in range(4):
            c.set(b"small%d" % i, b"x")
        raw = c.stats_raw(b"slabs")
    lines = raw.split(b"\r\n")[:-2]
    assert re.fullmatch(rb"STAT active_slabs 1", lines[-2]), lines[-2]
    assert re.fullmatch(rb"STAT total_malloced \d+", lines[-1]), lines[-1]
    fields = {}
    for line in lines[:-2]:
        m = re.fullmatch(rb"STAT (\d+):([a-z_]+) (\d+)", line)
        assert m, line
        fields[m.group(2).decode()] = m.group(3).decode()
    assert [f for f in fields if f in SLAB_CLASS_FIELDS] == SLAB_CLASS_FIELDS
    assert fields["used_chunks"] == "4"
    assert fields["cmd_set"] == "4"


def test_stats_sizes(conn):
    assert conn.roundtrip(b"stats sizes\r\n") == b"STAT sizes_status disabled\r\nEND\r\n"


def test_stats_conns_lists_listener_and_this_connection(server, conn):
    local_port = conn.sock.getsockname()[1]
    raw = conn.stats_raw(b"conns")
    per_fd: dict[str, dict[str, str]] = {}
    for line in raw.split(b"\r\n")[:-2]:
        m = re.fullmatch(rb"STAT (\d+):([a-z_]+) ([^\r\n]+)", line)
        assert m, line
        per_fd.setdefault(m.group(1).decode(), {})[m.group(2).decode()] = m.group(3).decode()
    listener = f"tcp:127.0.0.1:{server.port}"
    me = [f for f in per_fd.values() if f.get("addr") == f"tcp:127.0.0.1:{local_port}"]
    assert len(me) == 1
    assert me[0]["listen_addr"] == listener
    assert me[0]["state"] == "conn_parse_cmd"
    assert NUMERIC.match(me[0]["secs_since_last_cmd"])
    listeners = [f for f in per_fd.values() if f.get("addr") == listener]
    assert len(listeners) == 1 and listeners[0]["state"] == "conn_listening"


@pytest.mark.fresh
def test_stats_detail(make_server):
    srv = make_server()
    with srv.connect() as c:
        assert c.roundtrip(b"stats detail dump\r\n") == b"END\r\n"
        assert c.roundtrip(b"stats detail on\r\n") == b"OK\r\n"
        assert c.stats(b"settings")["detail_enabled"] == "yes"
        c.set(b"foo:a", b"x")
        c.roundtrip(b"get foo:a\r\nget foo:b\r\nset bar:x 0 0 1\r\nx\r\ndelete foo:a\r\nget nocolon\r\n")
        assert c.roundtrip(b"stats detail dump\r\n") == (
            b"PREFIX foo get 2 hit 1 set 1 del 1\r\n"
            b"PREFIX bar get 0 hit 0 set 1 del 0\r\n"
            b"END\r\n"
        )
        assert c.roundtrip(b"stats detail off\r\n") == b"OK\r\n"
        c.roundtrip(b"get foo:c\r\n")
        # Collected data stays readable, nothing new is counted.
        assert c.roundtrip(b"stats detail dump\r\n").startswith(b"PREFIX foo get 2 hit 1 set 1 del 1\r\n")
        assert c.roundtrip(b"stats reset\r\n") == b"RESET\r\n"
        assert c.roundtrip(b"stats detail dump\r\n") == b"END\r\n"


@pytest.mark.parametrize("line", [b"stats detail", b"stats detail bogus"])
def test_stats_detail_usage(conn, line):
    assert conn.roundtrip(line + b"\r\n") == b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"


@pytest.mark.parametrize("line", [b"stats bogus", b"stats noreply", b"stats SETTINGS", b"stats setting"])
def test_stats_unknown_subcommand(conn, line):
    assert conn.roundtrip(line + b"\r\n") == b"ERROR\r\n"


@pytest.mark.parametrize("sub", [b"settings", b"items", b"slabs", b"sizes", b"conns"])
def test_stats_subcommand_ignores_extra_token(conn, sub):
    raw = conn.roundtrip(b"stats " + sub + b" extra\r\n")
    parse_stats(raw)
    assert raw.endswith(b"END\r\n")
