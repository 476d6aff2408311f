"""Checks of scripts/wire-fuzz.py's own pure parts (no server needed):
`scripts/wire-fuzz.py --self-test`."""

from __future__ import annotations

import random
import struct

from wirefuzz_check import Ctx, Normalizer, _wiped, explain, same, unpad
from wirefuzz_frame import c_strtol, c_strtoul, completion, tokens, walk_binary, walk_text
from wirefuzz_gen import CasRef, Gen, edit, literal, render, split

HEADER = struct.Struct(">BBHBBHIIQ")


def _bin(op: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", bodylen=None) -> bytes:
    body = extras + key + value
    n = len(body) if bodylen is None else bodylen
    return HEADER.pack(0x80, op, len(key), len(extras), 0, 0, n, 7, 0) + body


def check_templates() -> None:
    p = [b"abc", CasRef(b"k", False), b"defg"]
    assert render(p, {b"k": 5}) == b"abc5defg"
    assert literal(edit(p, 1, 1, b"X")) == b"aXcdefg" and CasRef(b"k", False) in edit(p, 1, 1, b"X")
    assert edit(p, 2, 2, b"") == [b"ab", b"efg"]  # the placeholder inside the cut goes
    assert split(p, [2, 5]) == [[b"ab"], [b"c", CasRef(b"k", False), b"de"], [b"fg"]]
    gen = Gen(random.Random(5))
    for _ in range(300):
        c = gen.case()
        assert b"".join(render(ch, {}) for ch in split(c.pieces, c.splits)) == render(c.pieces, {})


def check_framing() -> None:
    assert c_strtol(b"4102444800") == 4102444800 - 2**32 and c_strtol(b"9" * 20) is None
    assert c_strtoul(b"4294967296") == 0 and c_strtoul(b"-3") is None and c_strtoul(b"-0") == 0
    assert tokens(b"set  k\x00x 0\r") == [b"set", b"k"]
    assert walk_text(b"set k 0 0 5\r\nhel") == ("incomplete", 4, ())
    assert walk_text(b"set k 0 4102444800 1\r\nx\r\n").state == "complete"
    assert walk_text(b"set " + b"k" * 251 + b" 0 0 1\r\n" + b"v" * 3000).state == "close"
    assert completion(False, b"set k 0 0 5\r\nhel") == b"xx\r\n"
    get = _bin(0x00, b"k")
    assert walk_binary(get + get[:10]).state == "incomplete"
    assert walk_binary(get + b"\x00" * 24).state == "bad_magic"
    assert walk_binary(_bin(0x30, b"ab", bodylen=2)) == ("incomplete", 2, ((0x30, 7),))
    gat_with_value = _bin(0x1D, b"k", struct.pack(">I", 0), b"zz")
    assert walk_binary(gat_with_value).state == "bad_magic"  # memcached leaves the value
    assert walk_binary(HEADER.pack(0x80, 0x00, 0x9A00, 0, 0, 0, 0, 0, 0)).state == "oversize"


def check_comparison() -> None:
    a, b = Normalizer(), Normalizer()
    ra = a.outcome(b"VALUE k 0 1 77\r\nx\r\nEND\r\nHD c77 t100 kk\r\n", False, "sentinel")
    rb = b.outcome(b"VALUE k 0 1 12\r\nx\r\nEND\r\nHD c12 t101 kk\r\n", False, "sentinel")
    assert same(ra, rb) and a.last_cas[b"k"] == 77 and b.last_cas[b"k"] == 12
    assert not same(ra, b.outcome(b"VALUE k 0 1 12\r\nx\r\nEND\r\nHD c13 t100 kk\r\n", False, "sentinel"))
    assert not same(ra, rb._replace(end="closed"))
    assert unpad(b"VA 3 s3 f1\r\n7  \r\n", False) == b"VA 1 s1 f1\r\n7\r\n"
    bad = b"CLIENT_ERROR bad command line format\r"
    assert _wiped([b"OK\r", b"X\r", bad, b""], [b"OK\r", bad, b""])
    assert not _wiped([b"OK\r", b"X\r", bad, b""], [b"X\r", b"OK\r", bad, b""])
    mc = Normalizer().outcome(b"", False, "quiet")
    rc = Normalizer().outcome(b"STORED\r\nSERVER_ERROR object too large for cache\r\n", False, "quiet")
    sent = b"set k 0 0 1\r\nx\r\nset k 0 0 200000000\r\nabc"
    assert explain(Ctx(sent, False, mc, rc)).name.startswith("too-large")
    assert explain(Ctx(b"set k 0 0 1\r\nx\r\n", False, mc, rc)) is None


def main() -> int:
    for check in (check_templates, check_framing, check_comparison):
        check()
        print(f"ok  {check.__name__}")
    return 0
