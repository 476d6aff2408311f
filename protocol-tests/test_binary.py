"""memcached's binary protocol, byte for byte as memcached 1.6.18 answers it.

Every test runs against both servers (except the rate-limit opcodes, ratecached only). Replies
are compared field by field with `binproto.resp(...)`; cas uniques are compared between
replies of one server (their absolute values depend on the server's history).
"""

from __future__ import annotations

import struct
import time

import pytest

import binproto as bp
from binproto import (
    ADD,
    ADDQ,
    APPEND,
    APPENDQ,
    DECR,
    DECRQ,
    DELETE,
    DELETEQ,
    EINVAL,
    ENOMEM,
    EXISTS,
    FLUSH,
    FLUSHQ,
    GAT,
    GATK,
    GATKQ,
    GATQ,
    GET,
    GETK,
    GETKQ,
    GETQ,
    INCR,
    INCRQ,
    NOOP,
    NOT_FOUND,
    NOT_STORED,
    OK,
    PREPEND,
    PREPENDQ,
    QUIT,
    QUITQ,
    REPLACE,
    REPLACEQ,
    SET,
    SETQ,
    STAT,
    TOUCH,
    UNKNOWN,
    VERSION,
    resp,
    roundtrip,
)

MSG = {
    NOT_FOUND: b"Not found",
    EXISTS: b"Data exists for key.",
    bp.TOO_LARGE: b"Too large.",
    EINVAL: b"Invalid arguments",
    NOT_STORED: b"Not stored.",
    bp.DELTA_BADVAL: b"Non-numeric server-side value for incr or decr",
    bp.AUTH_ERROR: b"Auth failure.",
    UNKNOWN: b"Unknown command",
    ENOMEM: b"Out of memory",
}


def err(opcode: int, status: int, opaque: int = 0) -> bp.Resp:
    return resp(opcode, status, value=MSG[status], opaque=opaque)


def ok(opcode: int, cas: int = 0, value: bytes = b"", opaque: int = 0) -> bp.Resp:
    return resp(opcode, OK, value=value, cas=cas, opaque=opaque)


def item(opcode: int, value: bytes, cas: int, flags: int = 0, key: bytes = b"", opaque: int = 0):
    return resp(opcode, OK, extras=bp.flags_extra(flags), key=key, value=value, cas=cas, opaque=opaque)


def one(conn, data: bytes) -> bp.Resp:
    """The single reply to `data` (checked with a noop sentinel)."""
    rs = roundtrip(conn, data)
    assert len(rs) == 1, rs
    return rs[0]


def set_cas(conn, key: bytes, value: bytes, flags: int = 0, exptime: int = 0) -> int:
    r = one(conn, bp.store(SET, key, value, flags, exptime))
    assert r.status == OK and r.bodylen == 0 and r.cas != 0, r
    return r.cas


def closed_after(conn, data: bytes) -> list[bp.Resp]:
    """Send `data`; the server must close. Returns every reply packet sent before the close."""
    conn.send(data)
    raw = conn.assert_closed(allow_data=True)
    rs, rest = bp.parse(raw)
    assert rest == b"", rest
    return rs


@pytest.fixture
def bconn(server):
    c = server.connect()
    yield c
    c.close()


# -- retrieval ---------------------------------------------------------------------------


def test_get_hit_has_flags_cas_and_value(bconn):
    cas = set_cas(bconn, b"k", b"hello", flags=0xDEADBEEF)
    assert one(bconn, bp.get(b"k", opaque=0x01020304)) == item(
        GET, b"hello", cas, 0xDEADBEEF, opaque=0x01020304
    )


def test_get_miss_is_not_found(bconn):
    assert one(bconn, bp.get(b"nope", opaque=7)) == err(GET, NOT_FOUND, 7)


def test_getk_hit_and_miss_carry_the_key(bconn):
    cas = set_cas(bconn, b"key1", b"v", flags=3)
    rs = roundtrip(bconn, bp.get(b"key1", GETK) + bp.get(b"other", GETK, opaque=9))
    assert rs == [
        item(GETK, b"v", cas, 3, key=b"key1"),
        resp(GETK, NOT_FOUND, key=b"other", opaque=9),
    ]


def test_getq_getkq_send_hits_only(bconn):
    cas = set_cas(bconn, b"a", b"1")
    rs = roundtrip(
        bconn,
        bp.get(b"miss1", GETQ)
        + bp.get(b"a", GETQ, opaque=1)
        + bp.get(b"miss2", GETKQ)
        + bp.get(b"a", GETKQ, opaque=2),
    )
    assert rs == [item(GETQ, b"1", cas, opaque=1), item(GETKQ, b"1", cas, key=b"a", opaque=2)]


def test_multiget_pipeline_of_getkq_ended_by_noop(bconn):
    cas = {k: set_cas(bconn, k, k.upper()) for k in (b"m1", b"m3", b"m5")}
    keys = [b"m%d" % i for i in range(1, 7)]
    rs = roundtrip(bconn, b"".join(bp.get(k, GETKQ, opaque=i) for i, k in enumerate(keys)), opaque=99)
    assert rs == [item(GETKQ, k.upper(), cas[k], key=k, opaque=keys.index(k)) for k in (b"m1", b"m3", b"m5")]


def test_key_of_250_bytes_is_served(bconn):
    key = b"k" * 250
    cas = set_cas(bconn, key, b"x")
    assert one(bconn, bp.get(key, GETK)) == item(GETK, b"x", cas, key=key)


def test_binary_safe_keys_and_values(bconn):
    value = bytes(range(256)) + b"\r\nEND\r\n"
    key = b"k\x00\r\n y"
    cas = set_cas(bconn, key, value)
    assert one(bconn, bp.get(key)) == item(GET, value, cas)


def test_empty_value(bconn):
    cas = set_cas(bconn, b"e", b"")
    assert one(bconn, bp.get(b"e")) == item(GET, b"", cas)


def test_text_and_binary_clients_share_items(server, bconn):
    with server.connect() as t:
        t.set(b"shared", b"from-text", flags=5)
        cas = t.gets_cas(b"shared")
    assert one(bconn, bp.get(b"shared")) == item(GET, b"from-text", cas, 5)
    set_cas(bconn, b"shared2", b"from-binary", flags=6)
    with server.connect() as t:
        assert t.request(b"get shared2\r\n", b"END\r\n") == b"VALUE shared2 6 11\r\nfrom-binary\r\nEND\r\n"


# -- storage -----------------------------------------------------------------------------


def test_set_add_replace(bconn):
    rs = roundtrip(
        bconn,
        bp.store(ADD, b"k", b"1")
        + bp.store(ADD, b"k", b"2")
        + bp.store(REPLACE, b"k", b"3")
        + bp.store(REPLACE, b"missing", b"3")
        + bp.store(SET, b"k", b"4", opaque=5),
    )
    assert [(r.opcode, r.status, r.value, r.opaque) for r in rs] == [
        (ADD, OK, b"", 0),
        (ADD, EXISTS, MSG[EXISTS], 0),
        (REPLACE, OK, b"", 0),
        (REPLACE, NOT_FOUND, MSG[NOT_FOUND], 0),
        (SET, OK, b"", 5),
    ]
    assert rs[0].cas < rs[2].cas < rs[4].cas
    assert rs[1].cas == rs[3].cas == 0
    assert one(bconn, bp.get(b"k")) == item(GET, b"4", rs[4].cas)


def test_set_with_cas(bconn):
    cas = set_cas(bconn, b"k", b"v1")
    rs = roundtrip(
        bconn,
        bp.store(SET, b"k", b"v2", cas=cas + 1000)
        + bp.store(SET, b"nope", b"v2", cas=cas)
        + bp.store(SET, b"k", b"v3", cas=cas),
    )
    assert rs[:2] == [err(SET, EXISTS), err(SET, NOT_FOUND)]
    assert rs[2].status == OK and rs[2].cas > cas
    assert one(bconn, bp.get(b"k")).value == b"v3"


def test_add_and_replace_with_cas_act_as_cas(bconn):
    cas = set_cas(bconn, b"k", b"v1")
    rs = roundtrip(
        bconn,
        bp.store(ADD, b"k", b"x", cas=cas + 1000)
        + bp.store(ADD, b"nope", b"x", cas=5)
        + bp.store(REPLACE, b"k", b"v2", cas=cas),
    )
    assert rs[:2] == [err(ADD, EXISTS), err(ADD, NOT_FOUND)]
    assert rs[2].status == OK and rs[2].opcode == REPLACE
    assert one(bconn, bp.get(b"nope")) == err(GET, NOT_FOUND)


def test_quiet_stores_send_errors_only(bconn):
    set_cas(bconn, b"k", b"v")
    rs = roundtrip(
        bconn,
        bp.store(SETQ, b"q1", b"v")
        + bp.store(ADDQ, b"k", b"v", opaque=1)
        + bp.store(ADDQ, b"q2", b"v")
        + bp.store(REPLACEQ, b"missing", b"v", opaque=2)
        + bp.store(REPLACEQ, b"k", b"v2")
        + bp.concat(APPENDQ, b"missing", b"v", opaque=3)
        + bp.concat(PREPENDQ, b"k", b"<"),
    )
    assert rs == [err(ADDQ, EXISTS, 1), err(REPLACEQ, NOT_FOUND, 2), err(APPENDQ, NOT_STORED, 3)]
    assert one(bconn, bp.get(b"k")).value == b"<v2"


def test_flags_and_exptime_extras(bconn):
    cas = set_cas(bconn, b"k", b"v", flags=42, exptime=1000)
    assert one(bconn, bp.get(b"k")) == item(GET, b"v", cas, 42)
    # An absolute expiration in the past (1970) expires at once.
    set_cas(bconn, b"gone", b"v", exptime=60 * 60 * 24 * 30 + 1)
    assert one(bconn, bp.get(b"gone")) == err(GET, NOT_FOUND)


def test_append_prepend(bconn):
    cas = set_cas(bconn, b"k", b"mid", flags=9)
    rs = roundtrip(bconn, bp.concat(APPEND, b"k", b">>") + bp.concat(PREPEND, b"k", b"<<"))
    assert [r.status for r in rs] == [OK, OK] and cas < rs[0].cas < rs[1].cas
    assert one(bconn, bp.get(b"k")) == item(GET, b"<<mid>>", rs[1].cas, 9)
    assert one(bconn, bp.concat(PREPEND, b"missing", b"x")) == err(PREPEND, NOT_STORED)


def test_append_with_cas(bconn):
    cas = set_cas(bconn, b"k", b"a")
    assert one(bconn, bp.concat(APPEND, b"k", b"b", cas=cas + 7)) == err(APPEND, EXISTS)
    r = one(bconn, bp.concat(APPEND, b"k", b"c", cas=cas))
    assert r.status == OK
    assert one(bconn, bp.get(b"k")).value == b"ac"


def test_value_split_across_packets(bconn):
    value = bytes(i % 251 for i in range(300_000))
    data = bp.store(SET, b"big", value, flags=1)
    for i in range(0, len(data), 65_536):
        bconn.send(data[i : i + 65_536])
        time.sleep(0.01)
    r = bp.read_resp(bconn)
    assert r.status == OK and r.opcode == SET
    assert one(bconn, bp.get(b"big")) == item(GET, value, r.cas, 1)


def test_request_sent_byte_by_byte(bconn):
    data = bp.store(SET, b"slow", b"value", flags=2) + bp.get(b"slow", GETK)
    for b in data:
        bconn.send(bytes([b]))
    first = bp.read_resp(bconn)
    assert first.status == OK
    assert bp.read_resp(bconn) == item(GETK, b"value", first.cas, 2, key=b"slow")


@pytest.mark.parametrize("opcode", [SET, SETQ, ADD, APPEND])
def test_too_large_value(make_server, opcode):
    srv = make_server("-I", "2k", "-o", "slab_chunk_max=1024")
    with srv.connect() as c:
        set_cas(c, b"k", b"old")
        if opcode == APPEND:
            data = bp.concat(APPEND, b"k", b"x" * 3000)
        else:
            data = bp.store(opcode, b"k", b"x" * 3000)
        rs = roundtrip(c, data + bp.get(b"k"))
        assert rs[0] == err(opcode, bp.TOO_LARGE)
        # A refused set drops the old value; add and append leave it.
        if opcode in (SET, SETQ):
            assert rs[1] == err(GET, NOT_FOUND)
        else:
            assert rs[1].status == OK and rs[1].value == b"old"
        # The connection lives on and the refused value was swallowed.
        assert one(c, bp.simple(VERSION)) == ok(VERSION, value=b"1.6.18")


def test_append_over_the_limit_is_not_stored(make_server):
    srv = make_server("-I", "2k", "-o", "slab_chunk_max=1024")
    with srv.connect() as c:
        set_cas(c, b"k", b"x" * 1500)
        assert one(c, bp.concat(APPEND, b"k", b"y" * 1000)) == err(APPEND, NOT_STORED)


def test_too_large_reply_and_the_swallowed_value(make_server, target):
    srv = make_server("-I", "2k", "-o", "slab_chunk_max=1024")
    with srv.connect() as c:
        data = bp.store(SET, b"k", b"x" * 3000)
        c.send(data[:100])
        if target == "memcached":
            # memcached holds the reply until the refused value has been swallowed...
            c.assert_silent(0.3)
            c.send(data[100:])
            assert bp.read_resp(c) == err(SET, bp.TOO_LARGE)
        else:
            # ...ratecached answers at once and discards the value as it arrives
            # (docs/protocol-differences.md).
            assert bp.read_resp(c) == err(SET, bp.TOO_LARGE)
            c.send(data[100:])
        assert one(c, bp.simple(VERSION)) == ok(VERSION, value=b"1.6.18")


def test_out_of_memory_without_eviction(make_server):
    srv = make_server("-m", "2", "-M")
    with srv.connect() as c:
        statuses = [one(c, bp.store(SET, b"k%d" % i, b"x" * 100_000)) for i in range(40)]
        stored = [r for r in statuses if r.status == OK]
        refused = [r for r in statuses if r.status != OK]
        assert len(stored) == 20
        assert set(refused) == {resp(SET, ENOMEM, value=b"Out of memory allocating item")}


def test_cas_disabled_ignores_request_cas_on_stores(make_server):
    srv = make_server("-C")
    with srv.connect() as c:
        r = one(c, bp.store(SET, b"k", b"v", cas=5))
        assert r == ok(SET)  # no cas uniques: the request's cas is ignored, the reply's is 0
        rs = roundtrip(
            c,
            bp.concat(APPEND, b"k", b"x", cas=5)
            + bp.store(ADD, b"new", b"n", cas=5)
            + bp.req(DELETE, b"k", cas=5)
            + bp.arith(INCR, b"c", 1, initial=5, exptime=0)
            + bp.arith(INCR, b"c", 1, cas=5)
            + bp.get(b"k"),
        )
        assert rs == [
            ok(APPEND),
            ok(ADD),
            err(DELETE, EXISTS),
            ok(INCR, value=bp.u64(5)),
            err(INCR, EXISTS),
            item(GET, b"vx", 0),
        ]


# -- delete ------------------------------------------------------------------------------


def test_delete(bconn):
    set_cas(bconn, b"k", b"v")
    rs = roundtrip(bconn, bp.req(DELETE, b"k") + bp.req(DELETE, b"k", opaque=4))
    assert rs == [ok(DELETE), err(DELETE, NOT_FOUND, 4)]


def test_deleteq(bconn):
    set_cas(bconn, b"k", b"v")
    rs = roundtrip(bconn, bp.req(DELETEQ, b"k") + bp.req(DELETEQ, b"k"))
    assert rs == [err(DELETEQ, NOT_FOUND)]


def test_delete_with_cas(bconn):
    cas = set_cas(bconn, b"k", b"v")
    assert one(bconn, bp.req(DELETE, b"k", cas=cas + 1)) == err(DELETE, EXISTS)
    assert one(bconn, bp.req(DELETE, b"k", cas=cas)) == ok(DELETE)
    assert one(bconn, bp.req(DELETE, b"k", cas=cas)) == err(DELETE, NOT_FOUND)


# -- incr / decr -------------------------------------------------------------------------


def test_incr_decr_values_and_cas(bconn):
    set_cas(bconn, b"n", b"10")
    rs = roundtrip(bconn, bp.arith(INCR, b"n", 5) + bp.arith(DECR, b"n", 3) + bp.arith(DECR, b"n", 100))
    assert [(r.opcode, r.status, r.value) for r in rs] == [
        (INCR, OK, bp.u64(15)),
        (DECR, OK, bp.u64(12)),
        (DECR, OK, bp.u64(0)),
    ]
    assert rs[0].cas < rs[1].cas < rs[2].cas
    assert one(bconn, bp.get(b"n")) == item(GET, b"0 ", rs[2].cas)


def test_incr_wraps_and_pads(bconn):
    set_cas(bconn, b"big", b"18446744073709551615")
    assert one(bconn, bp.arith(INCR, b"big", 2)).value == bp.u64(1)
    set_cas(bconn, b"sp", b"12  ")
    r = one(bconn, bp.arith(INCR, b"sp", 1))
    assert one(bconn, bp.get(b"sp")) == item(GET, b"13  ", r.cas)


def test_incr_creates_missing_counter_with_initial_value(bconn):
    r = one(bconn, bp.arith(INCR, b"c", 5, initial=42, exptime=0))
    assert r.status == OK and r.value == bp.u64(42) and r.cas != 0
    assert one(bconn, bp.get(b"c")) == item(GET, b"42", r.cas)
    assert one(bconn, bp.arith(INCR, b"c", 5, initial=42, exptime=0)).value == bp.u64(47)
    r = one(bconn, bp.arith(DECR, b"d", 5, initial=7, exptime=100))
    assert r.value == bp.u64(7)


def test_incr_missing_without_autovivify(bconn):
    rs = roundtrip(bconn, bp.arith(INCR, b"m", 1) + bp.arith(DECR, b"m", 1, initial=5))
    assert rs == [err(INCR, NOT_FOUND), err(DECR, NOT_FOUND)]


def test_incr_created_counter_expires(bconn):
    one(bconn, bp.arith(INCR, b"c", 1, initial=1, exptime=60 * 60 * 24 * 30 + 1))
    assert one(bconn, bp.get(b"c")) == err(GET, NOT_FOUND)


def test_incr_non_numeric(bconn):
    set_cas(bconn, b"t", b"abc")
    set_cas(bconn, b"e", b"")
    rs = roundtrip(bconn, bp.arith(INCR, b"t", 1) + bp.arith(DECR, b"e", 1))
    assert rs == [err(INCR, bp.DELTA_BADVAL), err(DECR, bp.DELTA_BADVAL)]


def test_incr_with_cas(bconn):
    cas = set_cas(bconn, b"n", b"1")
    set_cas(bconn, b"t", b"abc")
    rs = roundtrip(
        bconn,
        bp.arith(INCR, b"n", 1, cas=cas + 100)
        # memcached compares the cas before it parses the number
        + bp.arith(INCR, b"t", 1, cas=1),
    )
    assert rs == [err(INCR, EXISTS), err(INCR, EXISTS)]
    r = one(bconn, bp.arith(INCR, b"n", 1, cas=cas))
    assert r.status == OK and r.value == bp.u64(2)


def test_quiet_incr_decr(bconn):
    set_cas(bconn, b"n", b"5")
    rs = roundtrip(
        bconn,
        bp.arith(INCRQ, b"n", 1)
        + bp.arith(DECRQ, b"n", 2)
        + bp.arith(INCRQ, b"missing", 1, opaque=8)
        + bp.arith(INCRQ, b"new", 1, initial=3, exptime=0),
    )
    assert rs == [err(INCRQ, NOT_FOUND, 8)]
    assert one(bconn, bp.get(b"n")).value == b"4"
    assert one(bconn, bp.get(b"new")).value == b"3"


# -- touch / gat -------------------------------------------------------------------------


def test_touch_returns_flags_only(bconn):
    cas = set_cas(bconn, b"k", b"value", flags=3)
    rs = roundtrip(bconn, bp.touch(TOUCH, b"k", 100) + bp.touch(TOUCH, b"nope", 100))
    assert rs == [resp(TOUCH, OK, extras=bp.flags_extra(3), cas=cas), err(TOUCH, NOT_FOUND)]


def test_touch_sets_a_new_expiration(bconn):
    set_cas(bconn, b"k", b"v")
    one(bconn, bp.touch(TOUCH, b"k", 60 * 60 * 24 * 30 + 1))
    assert one(bconn, bp.get(b"k")) == err(GET, NOT_FOUND)


def test_gat_family(bconn):
    cas = set_cas(bconn, b"g", b"val", flags=7)
    rs = roundtrip(
        bconn,
        bp.touch(GAT, b"g", 100)
        + bp.touch(GATK, b"g", 100)
        + bp.touch(GATQ, b"g", 100)
        + bp.touch(GATKQ, b"g", 100)
        + bp.touch(GAT, b"nx", 1)
        + bp.touch(GATK, b"nx", 1)
        + bp.touch(GATQ, b"nx", 1)
        + bp.touch(GATKQ, b"nx", 1),
    )
    assert rs == [
        item(GAT, b"val", cas, 7),
        item(GATK, b"val", cas, 7, key=b"g"),
        item(GATQ, b"val", cas, 7),
        item(GATKQ, b"val", cas, 7, key=b"g"),
        err(GAT, NOT_FOUND),
        resp(GATK, NOT_FOUND, key=b"nx"),
    ]


def test_gat_expires_the_item(bconn):
    set_cas(bconn, b"g", b"v")
    assert one(bconn, bp.touch(GAT, b"g", 60 * 60 * 24 * 30 + 1)).value == b"v"
    assert one(bconn, bp.get(b"g")) == err(GET, NOT_FOUND)


# -- admin -------------------------------------------------------------------------------


def test_noop_and_version(bconn):
    rs = roundtrip(bconn, bp.simple(VERSION, opaque=3) + bp.simple(NOOP, opaque=4))
    assert rs == [ok(VERSION, value=b"1.6.18", opaque=3), ok(NOOP, opaque=4)]


def test_quit_replies_then_closes(bconn):
    assert closed_after(bconn, bp.simple(QUIT, opaque=2) + bp.simple(NOOP)) == [ok(QUIT, opaque=2)]


def test_quitq_closes_silently_after_earlier_replies(bconn):
    assert closed_after(bconn, bp.simple(VERSION) + bp.simple(QUITQ) + bp.simple(NOOP)) == [
        ok(VERSION, value=b"1.6.18")
    ]


def test_flush(bconn):
    set_cas(bconn, b"a", b"1")
    rs = roundtrip(bconn, bp.flush(opaque=1) + bp.get(b"a") + bp.flush(FLUSHQ) + bp.flush(exptime=0))
    assert rs == [ok(FLUSH, opaque=1), err(GET, NOT_FOUND), ok(FLUSH)]


def test_delayed_flush(bconn):
    set_cas(bconn, b"a", b"1")
    assert one(bconn, bp.flush(exptime=100)) == ok(FLUSH)
    assert one(bconn, bp.get(b"a")).value == b"1"


def test_flush_disabled(make_server):
    srv = make_server("-F")
    with srv.connect() as c:
        set_cas(c, b"a", b"1")
        rs = roundtrip(c, bp.flush() + bp.flush(FLUSHQ) + bp.get(b"a"))
        assert rs[:2] == [err(FLUSH, bp.AUTH_ERROR), err(FLUSHQ, bp.AUTH_ERROR)]
        assert rs[2].value == b"1"


def test_verbosity_is_an_unknown_command(bconn):
    # memcached 1.6.18 does not serve binary verbosity: "Unknown command", then it discards
    # bodylen (4) more bytes after the 4 bytes of extras.
    rs = roundtrip(bconn, bp.req(bp.VERBOSITY, extras=b"\0\0\0\1") + b"XXXX")
    assert rs == [err(bp.VERBOSITY, UNKNOWN)]


# -- stat --------------------------------------------------------------------------------


def stat_packets(conn, key: bytes = b"", opaque: int = 0) -> list[bp.Resp]:
    """Every packet of one stat reply, up to and including the empty terminator."""
    conn.send(bp.stat(key, opaque=opaque))
    out = []
    while True:
        r = bp.read_resp(conn)
        out.append(r)
        assert r.opcode == STAT and r.opaque == opaque and r.status == OK and r.cas == 0, r
        assert r.extlen == 0
        if r.keylen == 0:
            assert r.bodylen == 0
            return out


def test_stat_general_matches_text_stats(server, bconn):
    packets = stat_packets(bconn, opaque=77)
    names = [r.key.decode() for r in packets[:-1]]
    with server.connect() as t:
        text = t.stats_raw()
    from helpers import stat_names

    assert names == stat_names(text)
    values = {r.key: r.value for r in packets}
    assert values[b"version"] == b"1.6.18"
    assert int(values[b"curr_connections"]) >= 1


@pytest.mark.parametrize("sub", [b"settings", b"items", b"slabs"])
def test_stat_reports_match_text(server, bconn, sub):
    set_cas(bconn, b"k", b"v")
    names = [r.key.decode() for r in stat_packets(bconn, sub)[:-1]]
    with server.connect() as t:
        from helpers import stat_names

        assert names == stat_names(t.stats_raw(sub))


def test_stat_settings_by_prefix(bconn):
    packets = stat_packets(bconn, b"settingsXYZ")
    assert packets[0].key == b"maxbytes"


def test_stat_sizes(bconn):
    assert stat_packets(bconn, b"sizes") == [
        resp(STAT, key=b"sizes_status", value=b"disabled"),
        resp(STAT),
    ]


def test_stat_reset(make_server):
    srv = make_server()
    with srv.connect() as c:
        roundtrip(c, bp.get(b"a") + bp.get(b"b"))
        assert dict((r.key, r.value) for r in stat_packets(c))[b"get_misses"] == b"2"
        assert stat_packets(c, b"reset") == [resp(STAT)]
        assert stat_packets(c, b"resetXYZ") == [resp(STAT)]
        assert dict((r.key, r.value) for r in stat_packets(c))[b"get_misses"] == b"0"


def test_stat_detail(make_server):
    srv = make_server()
    with srv.connect() as c:
        assert stat_packets(c, b"detail dump") == [
            resp(STAT, key=b"detailed", value=b"END\r\n"),
            resp(STAT),
        ]
        assert stat_packets(c, b"detail on") == [resp(STAT)]
        set_cas(c, b"p:1", b"x")
        roundtrip(c, bp.get(b"p:1") + bp.get(b"p:2") + bp.req(DELETE, b"p:1"))
        assert stat_packets(c, b"detail dump") == [
            resp(STAT, key=b"detailed", value=b"PREFIX p get 2 hit 1 set 1 del 1\r\nEND\r\n"),
            resp(STAT),
        ]
        assert stat_packets(c, b"detail off") == [resp(STAT)]


@pytest.mark.parametrize("sub", [b"nonsense", b"conns", b"detail", b"detail bogus", b"detailon", b"item"])
def test_stat_unknown_is_not_found(bconn, sub):
    assert one(bconn, bp.stat(sub)) == err(STAT, NOT_FOUND)


def test_stat_counters_of_binary_commands(make_server):
    srv = make_server()
    with srv.connect() as c:
        before = {r.key: int(r.value) for r in stat_packets(c)[:-1] if r.value.isdigit()}
        roundtrip(
            c,
            bp.store(SET, b"a", b"1")
            + bp.get(b"a")
            + bp.get(b"b", GETQ)
            + bp.touch(GAT, b"a", 0)
            + bp.touch(TOUCH, b"b", 0)
            + bp.arith(INCR, b"a", 1)
            + bp.arith(INCR, b"b", 1)
            + bp.arith(INCR, b"c", 1, initial=1, exptime=0)
            + bp.req(DELETE, b"x")
            + bp.req(DELETE, b"a", cas=1)
            + bp.concat(APPEND, b"a", b"1", cas=1)
            + bp.flush(),
        )
        after = {r.key: int(r.value) for r in stat_packets(c)[:-1] if r.value.isdigit()}
        counters = (
            "cmd_get cmd_set cmd_touch cmd_flush get_hits get_misses get_expired get_flushed "
            "delete_hits delete_misses incr_hits incr_misses decr_hits decr_misses cas_hits "
            "cas_misses cas_badval touch_hits touch_misses total_items"
        ).split()
        # curr_items is left out: after the flush, memcached's LRU crawler and ratecached's
        # sweep drop the flushed items in the background, so it is 2 or 0 depending on timing.
        delta = {k: after[k.encode()] - before[k.encode()] for k in counters}
        delta = {k: v for k, v in delta.items() if v}
        assert delta == {
            "cmd_get": 2,
            "cmd_set": 2,
            "cmd_touch": 2,
            "cmd_flush": 1,
            "get_hits": 1,
            "get_misses": 1,
            "touch_hits": 1,
            "touch_misses": 1,
            "incr_hits": 1,
            "incr_misses": 1,
            "delete_misses": 1,
            "total_items": 2,
        }


# -- malformed frames ----------------------------------------------------------------------


def test_bad_magic_closes(bconn):
    one(bconn, bp.simple(NOOP))
    assert closed_after(bconn, bp.header(NOOP, magic=0x81)) == []


def test_bad_magic_and_replies_not_yet_flushed(bconn, target):
    # memcached batches ordinary replies and closes before sending them; ratecached sends
    # the reply of every complete request before it closes (docs/protocol-differences.md).
    rs = closed_after(bconn, bp.simple(VERSION) + b"\0" * 24)
    assert rs == ([] if target == "memcached" else [ok(VERSION, value=b"1.6.18")])


def test_bad_magic_keeps_replies_already_flushed(bconn):
    # memcached flushes an error reply or a noop at once.
    assert closed_after(bconn, bp.simple(VERSION) + bp.get(b"miss") + b"\0" * 24) == [
        ok(VERSION, value=b"1.6.18"),
        err(GET, NOT_FOUND),
    ]


@pytest.mark.parametrize("count,flushed", [(20, 0), (21, 21), (40, 21), (41, 41)])
def test_bad_magic_after_a_long_pipeline(server, target, count, flushed):
    # memcached yields (and flushes) every 20 requests of one read; ratecached answers all.
    with server.connect() as c:
        rs = closed_after(c, bp.simple(VERSION) * count + b"\0" * 24)
        assert len(rs) == (flushed if target == "memcached" else count)


def test_text_after_binary_start_closes(bconn):
    one(bconn, bp.simple(NOOP))
    assert closed_after(bconn, b"get foo\r\n" + b"x" * 20) == []


def test_short_header_waits(bconn):
    data = bp.simple(VERSION, opaque=1)
    bconn.send(data[:10])
    bconn.assert_silent(0.3)
    bconn.send(data[10:])
    assert bp.read_resp(bconn) == ok(VERSION, value=b"1.6.18", opaque=1)


def test_key_and_extras_longer_than_body(bconn):
    assert closed_after(bconn, bp.header(GET, keylen=5, bodylen=3) + b"abcde") == [err(GET, UNKNOWN)]


def test_extras_and_key_longer_than_body(bconn):
    data = bp.header(SET, keylen=1, extlen=8, bodylen=8) + b"\0" * 8 + b"k"
    assert closed_after(bconn, data) == [err(SET, UNKNOWN)]


def test_key_over_250_bytes(bconn):
    assert closed_after(bconn, bp.get(b"k" * 251) + bp.simple(NOOP)) == [err(GET, EINVAL)]


MALFORMED = {
    "get-with-extras": bp.req(GET, b"k", extras=b"1234"),
    "get-with-value": bp.req(GET, b"k", b"v"),
    "get-without-key": bp.req(GET),
    "noop-with-body": bp.req(NOOP, value=b"xx"),
    "version-with-key": bp.req(VERSION, b"xx"),
    "quit-with-body": bp.req(QUIT, value=b"x"),
    "set-without-extras": bp.req(SET, b"k", b"v"),
    "set-without-key": bp.req(SET, b"", b"v", extras=b"\0" * 8),
    "incr-short-extras": bp.req(INCR, b"k", extras=b"\0" * 12),
    "incr-with-value": bp.req(INCR, b"k", b"v", extras=b"\0" * 20),
    "delete-with-extras": bp.req(DELETE, b"k", extras=b"1234"),
    "flush-8-byte-extras": bp.req(FLUSH, extras=b"\0" * 8),
    "flush-with-key": bp.req(FLUSH, b"x"),
    "touch-without-extras": bp.req(TOUCH, b"k"),
    "append-with-extras": bp.req(APPEND, b"k", b"v", extras=b"1234"),
    "append-without-key": bp.req(APPEND, b"", b"v"),
    "stat-with-extras": bp.req(STAT, extras=b"1234"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_answers_invalid_and_closes(bconn, name):
    data = MALFORMED[name]
    rs = closed_after(bconn, bp.simple(VERSION) + data + bp.simple(NOOP))
    assert rs == [ok(VERSION, value=b"1.6.18"), err(data[1], EINVAL)]


def test_unknown_opcode_without_body(bconn):
    assert one(bconn, bp.simple(0x40, opaque=9)) == err(0x40, UNKNOWN, 9)


def test_unknown_opcode_discards_bodylen_after_key_and_extras(bconn):
    # memcached consumes extras and key, then discards bodylen more bytes.
    data = bp.req(0x40, b"ab", extras=b"1234") + b"Z" * 6
    assert roundtrip(bconn, data) == [err(0x40, UNKNOWN)]


def test_unknown_opcode_reply_and_discarded_bytes(bconn, target):
    bconn.send(bp.header(0x41, bodylen=4))
    if target == "memcached":
        # memcached holds the reply until the discarded bytes have arrived.
        bconn.assert_silent(0.3)
        bconn.send(b"abcd")
        assert bp.read_resp(bconn) == err(0x41, UNKNOWN)
    else:
        assert bp.read_resp(bconn) == err(0x41, UNKNOWN)
        bconn.send(b"abcd")
    assert one(bconn, bp.simple(NOOP)) == ok(NOOP)


def test_trailing_body_of_touch_is_read_as_next_request(bconn):
    set_cas(bconn, b"k", b"v", flags=1)
    # A touch whose bodylen also covers a whole noop request: the noop is answered.
    data = bp.header(TOUCH, keylen=1, extlen=4, bodylen=5 + 24) + struct.pack(">I", 0) + b"k"
    rs = roundtrip(bconn, data + bp.simple(NOOP, opaque=5))
    assert [(r.opcode, r.status) for r in rs] == [(TOUCH, OK), (NOOP, OK)]
    assert rs[1].opaque == 5


def test_trailing_body_of_stat_with_bad_magic_closes(bconn, target):
    data = bp.header(STAT, keylen=5, bodylen=9) + b"sizesVVVV" + b"V" * 20
    rs = closed_after(bconn, data)
    # The trailing body is read as a request with a bad magic byte: memcached closes before
    # flushing the stat reply; ratecached sends it, then closes.
    if target == "memcached":
        assert rs == []
    else:
        assert [(r.opcode, r.key, r.value) for r in rs] == [(STAT, b"sizes_status", b"disabled"), (STAT, b"", b"")]


def test_datatype_and_vbucket_are_ignored(bconn):
    rs = roundtrip(bconn, bp.header(NOOP, datatype=1, vbucket=5, opaque=1))
    assert rs == [ok(NOOP, opaque=1)]


# -- protocol choice -----------------------------------------------------------------------


def test_each_connection_picks_its_protocol(server):
    with server.connect() as b, server.connect() as t:
        set_cas(b, b"k", b"v")
        assert t.request(b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
        assert one(b, bp.simple(VERSION)).value == b"1.6.18"
        # A text connection stays text: a binary request later is a bad text line.
        assert t.roundtrip(bp.simple(NOOP)[:1] + b"\r\n") == b"ERROR\r\n"


def test_ascii_only_server_reads_binary_as_text(make_server):
    srv = make_server("-B", "ascii")
    with srv.connect() as c:
        # The noop header holds a '\n' (its opcode, 0x0a): one bad line.
        assert c.roundtrip(bp.simple(NOOP) + b"\r\n") == b"ERROR\r\nERROR\r\n"


def test_binary_only_server_closes_text(make_server):
    srv = make_server("-B", "binary")
    with srv.connect() as c:
        c.send(b"version\r\n")
        c.assert_silent(0.3)
        c.send(b"x" * 30)
        c.assert_closed()
    with srv.connect() as c:
        assert one(c, bp.simple(VERSION)).value == b"1.6.18"


def test_binary_over_udp(make_server):
    from helpers import free_port
    from test_udp import reassemble, udp_request

    port = free_port()
    make_server("-U", str(port))
    data = bp.store(SET, b"u", b"v", flags=2) + bp.get(b"u", GETK) + bp.get(b"x", GETQ) + bp.simple(NOOP)
    rs, rest = bp.parse(reassemble(udp_request(port, data, 11), 11))
    assert rest == b""
    assert [(r.opcode, r.status) for r in rs] == [(SET, OK), (GETK, OK), (NOOP, OK)]
    assert rs[1] == item(GETK, b"v", rs[0].cas, 2, key=b"u")


# -- SASL ----------------------------------------------------------------------------------


def test_sasl_opcodes_without_sasl(bconn):
    rs = roundtrip(
        bconn,
        bp.simple(bp.SASL_LIST)
        + bp.req(bp.SASL_AUTH, b"PLAIN", b"\0user\0pass")
        + bp.req(bp.SASL_STEP, b"PLAIN", b"\0user\0pass"),
    )
    assert rs == [err(bp.SASL_LIST, UNKNOWN), err(bp.SASL_AUTH, UNKNOWN), err(bp.SASL_STEP, UNKNOWN)]


@pytest.fixture
def sasl_server(make_server, tmp_path, monkeypatch):
    """A server with -S; memcached gets a SASL config listing PLAIN, ratecached a password
    file (user:pass) through MEMCACHED_SASL_PWDB."""
    (tmp_path / "memcached.conf").write_text("mech_list: plain\n")
    (tmp_path / "pwdb").write_text("user:pass\n")
    monkeypatch.setenv("SASL_CONF_PATH", str(tmp_path))
    monkeypatch.setenv("MEMCACHED_SASL_PWDB", str(tmp_path / "pwdb"))
    return make_server("-S")


def test_sasl_unauthenticated_requests_are_refused(sasl_server):
    with sasl_server.connect() as c:
        c.send(bp.simple(VERSION) + bp.simple(bp.SASL_LIST))
        assert bp.read_resp(c) == ok(VERSION, value=b"1.6.18")
        assert bp.read_resp(c) == ok(bp.SASL_LIST, value=b"PLAIN")
        assert closed_after(c, bp.get(b"k")) == [err(GET, bp.AUTH_ERROR)]
    with sasl_server.connect() as c:
        assert closed_after(c, bp.simple(NOOP)) == [err(NOOP, bp.AUTH_ERROR)]


def test_sasl_bad_credentials(sasl_server):
    with sasl_server.connect() as c:
        c.send(bp.req(bp.SASL_AUTH, b"PLAIN", b"\0user\0wrong") + bp.req(bp.SASL_AUTH, b"NOPE", b"x"))
        assert bp.read_resp(c) == err(bp.SASL_AUTH, bp.AUTH_ERROR)
        assert bp.read_resp(c) == err(bp.SASL_AUTH, bp.AUTH_ERROR)
        c.send(bp.req(bp.SASL_AUTH, b"PLAIN"))
        assert bp.read_resp(c) == resp(bp.SASL_AUTH, bp.AUTH_CONTINUE)
        assert closed_after(c, bp.get(b"k")) == [err(GET, bp.AUTH_ERROR)]


def test_sasl_text_connection_is_not_served(sasl_server):
    with sasl_server.connect() as c:
        c.send(b"version\r\n")
        c.assert_silent(0.3)


@pytest.mark.ratecached_only
def test_sasl_plain_authentication(sasl_server):
    with sasl_server.connect() as c:
        c.send(bp.req(bp.SASL_AUTH, b"PLAIN", b"\0user\0pass"))
        assert bp.read_resp(c) == ok(bp.SASL_AUTH, value=b"Authenticated")
        cas = set_cas(c, b"k", b"v")
        assert one(c, bp.get(b"k")) == item(GET, b"v", cas)
    with sasl_server.connect() as c:
        c.send(bp.req(bp.SASL_AUTH, b"PLAIN") + bp.req(bp.SASL_STEP, b"PLAIN", b"authz\0user\0pass"))
        assert bp.read_resp(c) == resp(bp.SASL_AUTH, bp.AUTH_CONTINUE)
        assert bp.read_resp(c) == ok(bp.SASL_STEP, value=b"Authenticated")
        assert one(c, bp.get(b"k")).value == b"v"
        stats = {r.key: r.value for r in stat_packets(c)}
        assert (stats[b"auth_cmds"], stats[b"auth_errors"]) == (b"2", b"0")


# -- a stock client library ------------------------------------------------------------------


@pytest.fixture
def bmc(server):
    import bmemcached
    c = bmemcached.Client([f"127.0.0.1:{server.port}"], socket_timeout=5)
    yield c
    c.disconnect_all()


def test_bmemcached_set_get_delete(bmc):
    assert bmc.set("a", "hello") is True
    assert bmc.get("a") == "hello"
    assert bmc.set("b", b"\x00\xffbytes") is True
    assert bmc.get("b") == b"\x00\xffbytes"
    assert bmc.set("n", 42) is True and bmc.get("n") == 42
    assert bmc.set("obj", {"x": [1, 2]}) is True and bmc.get("obj") == {"x": [1, 2]}
    assert bmc.get("missing") is None
    assert bmc.delete("a") is True
    assert bmc.get("a") is None
    assert bmc.delete("a") is True  # bmemcached: a missing key counts as deleted


def test_bmemcached_add_replace_cas(bmc):
    assert bmc.add("k", "1") is True
    assert bmc.add("k", "2") is False
    assert bmc.replace("k", "3") is True
    assert bmc.replace("nope", "3") is False
    value, cas = bmc.gets("k")
    assert value == "3" and cas
    assert bmc.cas("k", "4", cas) is True
    assert bmc.cas("k", "5", cas) is False
    assert bmc.get("k") == "4"


def test_bmemcached_incr_decr(bmc):
    assert bmc.incr("c", 1) == 0  # created with the default 0
    assert bmc.incr("c", 5) == 5
    assert bmc.decr("c", 2) == 3
    assert bmc.decr("c", 10) == 0


def test_bmemcached_multi(bmc):
    assert bmc.set_multi({"m1": "a", "m2": "b", "m3": "c"}) == []  # the keys that failed
    assert bmc.get_multi(["m1", "m2", "nope", "m3"]) == {"m1": "a", "m2": "b", "m3": "c"}
    assert bmc.delete_multi(["m1", "m2"]) is True
    assert bmc.get_multi(["m1", "m2", "m3"]) == {"m3": "c"}


def test_bmemcached_stats_and_flush(bmc):
    bmc.set("a", "1")
    stats = list(bmc.stats().values())[0]
    assert stats["version"] == b"1.6.18" or stats["version"] == "1.6.18"
    assert int(stats["curr_items"]) >= 1
    assert bmc.flush_all() is True
    assert bmc.get("a") is None


# -- rate limiting: opcodes 0x4c / 0x4d (ratecached only) -----------------------------------


def rl_decision(r: bp.Resp):
    return struct.unpack(">IIQQ", r.extras)


@pytest.mark.ratecached_only
def test_ratelimit_allowed_then_denied(bconn):
    start = time.monotonic()
    r = one(bconn, bp.ratelimit(b"api:u42", 100, 60_000, burst=10, opaque=3))
    assert (r.opcode, r.status, r.opaque, r.cas, r.keylen, r.bodylen) == (bp.RATELIMIT, OK, 3, 0, 0, 24)
    assert rl_decision(r) == (10, 9, 0, 600)
    for _ in range(9):
        assert one(bconn, bp.ratelimit(b"api:u42", 100, 60_000, burst=10)).status == OK
    r = one(bconn, bp.ratelimit(b"api:u42", 100, 60_000, burst=10))
    elapsed_ms = (time.monotonic() - start) * 1000
    limit, remaining, retry, reset = rl_decision(r)
    assert r.status == NOT_STORED and (limit, remaining) == (10, 0)
    # 600 ms per token, less the time the calls took; reset is nine more tokens away.
    assert 600 - elapsed_ms - 1 <= retry <= 600 and reset == retry + 5400


@pytest.mark.ratecached_only
def test_ratelimitq_sends_denials_only(bconn):
    data = b"".join(bp.ratelimit(b"q", 2, 60_000, opcode=bp.RATELIMITQ, opaque=i) for i in range(4))
    rs = roundtrip(bconn, data)
    assert [(r.opcode, r.status, r.opaque) for r in rs] == [
        (bp.RATELIMITQ, NOT_STORED, 2),
        (bp.RATELIMITQ, NOT_STORED, 3),
    ]


@pytest.mark.ratecached_only
def test_ratelimit_modes_and_algorithms(bconn):
    # peek answers as consume would, without spending
    assert rl_decision(one(bconn, bp.ratelimit(b"p", 5, 1000, mode=1)))[:2] == (5, 4)
    assert rl_decision(one(bconn, bp.ratelimit(b"p", 5, 1000)))[:2] == (5, 4)
    # refund gives back
    assert rl_decision(one(bconn, bp.ratelimit(b"p", 5, 1000, mode=2)))[:2] == (5, 5)
    for alg in (1, 2):
        key = b"alg%d" % alg
        assert rl_decision(one(bconn, bp.ratelimit(key, 3, 60_000, algorithm=alg, cost=2)))[:2] == (3, 1)
        assert one(bconn, bp.ratelimit(key, 3, 60_000, algorithm=alg, cost=2)).status == NOT_STORED


@pytest.mark.ratecached_only
@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"period_ms": 0},
        {"period_ms": 366 * 86_400_000},
        {"cost": 11},
        {"algorithm": 3},
        {"mode": 3},
        {"reserved": 1},
        {"algorithm": 1, "burst": 5},
    ],
)
def test_ratelimit_invalid_arguments(bconn, kwargs):
    args = {"limit": 10, "period_ms": 1000, **kwargs}
    key = b"inv"
    assert one(bconn, bp.ratelimit(key, **args)) == err(bp.RATELIMIT, EINVAL)


@pytest.mark.ratecached_only
def test_ratelimit_bad_lengths_answer_invalid_and_keep_the_connection(bconn):
    good = bp.ratelimit(b"k", 10, 1000)
    extras = good[24:48]
    rs = roundtrip(
        bconn,
        bp.req(bp.RATELIMIT, b"k", extras=extras[:20])
        + bp.req(bp.RATELIMITQ, b"", extras=extras)
        + bp.req(bp.RATELIMIT, b"k", b"value", extras=extras),
    )
    assert rs == [err(bp.RATELIMIT, EINVAL), err(bp.RATELIMITQ, EINVAL), err(bp.RATELIMIT, EINVAL)]


@pytest.mark.ratecached_only
def test_ratelimit_on_a_plain_value_is_incompatible(bconn):
    set_cas(bconn, b"plain", b"x")
    r = one(bconn, bp.ratelimit(b"plain", 10, 1000))
    assert (r.status, r.value) == (bp.DELTA_BADVAL, b"key holds incompatible value")


@pytest.mark.ratecached_only
def test_ratelimit_stats(make_server):
    srv = make_server()
    with srv.connect() as c:
        roundtrip(
            c,
            bp.ratelimit(b"s", 1, 60_000) + bp.ratelimit(b"s", 1, 60_000) + bp.ratelimit(b"s", 0, 60_000),
        )
        stats = {r.key: r.value for r in stat_packets(c)}
        assert stats[b"cmd_ratelimit"] == b"3"
        assert (stats[b"ratelimit_allowed"], stats[b"ratelimit_denied"], stats[b"ratelimit_errors"]) == (
            b"1",
            b"1",
            b"1",
        )
        assert stats[b"ratelimit_keys"] == b"1"


@pytest.mark.ratecached_only
@pytest.mark.parametrize("algorithm", [0, 1, 2], ids=["gcra", "fixed", "sliding"])
def test_ratelimit_is_atomic_across_64_binary_connections(server, algorithm):
    import threading

    admitted = []
    lock = threading.Lock()
    key = b"hot%d" % algorithm

    def worker():
        with server.connect() as c:
            n = 0
            for _ in range(8):
                if one(c, bp.ratelimit(key, 200, 3_600_000, algorithm=algorithm)).status == OK:
                    n += 1
            with lock:
                admitted.append(n)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(admitted) == 64 and sum(admitted) == 200


@pytest.mark.ratecached_only
def test_ratelimit_text_and_binary_share_state(server, bconn):
    with server.connect() as t:
        assert t.request(b"ratelimit shared 2 60s\r\n").startswith(b"ALLOWED 2 1 ")
    r = one(bconn, bp.ratelimit(b"shared", 2, 60_000))
    assert rl_decision(r)[:2] == (2, 0)
    assert one(bconn, bp.ratelimit(b"shared", 2, 60_000)).status == NOT_STORED
