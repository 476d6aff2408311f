#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (committed).

Seeds are real requests of every command (from protocol-tests/ and docs/), each prefixed
with the selector byte its target reads first (see the target's doc comment). Rerun after
changing a target's input format: python3 fuzz/make_seeds.py (files not named seed-* are
kept: they are crash inputs of fixed bugs).
"""

import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# text_decode / binary_decode selector: bits 0-1 item size (1 KiB, 1 MiB, 8 MiB, 1 GiB),
# bit 2 no cas, bit 3 SASL.
DEFAULT, SMALL, NOCAS, SASL = 0x01, 0x00, 0x05, 0x09

TEXT = [
    b"get foo\r\n",
    b"gets a b c\r\n",
    b"gat 10 k\r\n",
    b"gats 0 a b\r\n",
    b"bget x\r\n",
    b"get a\r\nget b\r\nset c 0 0 1\r\nx\r\n",
    b"set k 0 0 5\r\nhello\r\n",
    b"set k 1 100 3 noreply\r\nabc\r\n",
    b"add k 0 0 1\r\nx\r\n",
    b"replace k 0 0 1\r\nx\r\n",
    b"append k 0 0 2\r\nyz\r\n",
    b"prepend k 0 0 2\r\nab\r\n",
    b"cas k 0 0 1 123\r\nx\r\n",
    b"set k 0 0 3\r\nabcde\r\n",
    b"set k 0 -1 5\r\nhello\r\n",
    b"set k 0 0 2000\r\n" + b"x" * 64,
    b"delete k\r\n",
    b"delete k 0\r\n",
    b"delete k noreply\r\n",
    b"incr k 1\r\n",
    b"decr k 5 noreply\r\n",
    b"incr k 18446744073709551616\r\n",
    b"touch k 10\r\n",
    b"stats\r\n",
    b"stats settings\r\n",
    b"stats items\r\n",
    b"stats slabs\r\n",
    b"stats sizes\r\n",
    b"stats conns\r\n",
    b"stats detail on\r\n",
    b"stats cachedump 1 10\r\n",
    b"stats reset\r\n",
    b"flush_all\r\n",
    b"flush_all 10 noreply\r\n",
    b"version\r\n",
    b"verbosity 1\r\n",
    b"quit\r\n",
    b"shutdown graceful\r\n",
    b"cache_memlimit 100\r\n",
    b"slabs reassign 1 2\r\n",
    b"slabs automove 1\r\n",
    b"lru_crawler crawl all\r\n",
    b"lru_crawler sleep 100\r\n",
    b"lru mode flat\r\n",
    b"lru tune 10 20 0.5 1\r\n",
    b"slabs automove ratio 0.8\r\n",
    b"lru_crawler tocrawl 10\r\n",
    b"lru_crawler enable\r\n",
    b"ratelimit_all 2\r\nk 5 60 5 6\r\nv 0 1m\n",
    b"watch\r\n",
    b"mg foo v k O123 T30 N5 q\r\n",
    b"ms foo 3 F5 C9 MA I\r\nabc\r\n",
    b"ms foo 5 !\r\nhello\r\n",
    b"md foo q I T30\r\n",
    b"ma n D5 J10 N0 MD\r\n",
    b"mn\r\n",
    b"me foo\r\n",
    b"mg Zm9v b k v\r\n",
    b"ratelimit api:u42 100 60s 10\r\n",
    b"ratelimit k 5 250ms 5 2 peek fixed\r\n",
    b"ratelimit u1 @free 3 peek noreply\r\n",
    b"ratelimit_all 2\r\nu 1 1s\r\nv 2 1m\r\n",
    b"ratelimit_all 1 peek noreply\r\nk 10 1h 10 1 sliding\r\n",
    b"ml api:u42 R100 W60s B10 l r a t k O7\r\n",
    b"ml YWJj R5 W1m AF MP b k q\r\n",
    b"GET / HTTP/1.1\r\n",
    b"get " + b" ".join(b"k%d" % i for i in range(40)),
    b"x" * 2100,
    b"\r\n",
    b"foo\r\n",
]

# binary_decode
OP = dict(
    GET=0x00, SET=0x01, ADD=0x02, REPLACE=0x03, DELETE=0x04, INCR=0x05, DECR=0x06,
    QUIT=0x07, FLUSH=0x08, GETQ=0x09, NOOP=0x0A, VERSION=0x0B, GETK=0x0C, GETKQ=0x0D,
    APPEND=0x0E, PREPEND=0x0F, STAT=0x10, SETQ=0x11, VERBOSITY=0x1B, TOUCH=0x1C, GAT=0x1D,
    GATQ=0x1E, SASL_LIST=0x20, SASL_AUTH=0x21, SASL_STEP=0x22, GATK=0x23, RATELIMIT=0x4C,
    RATELIMITQ=0x4D,
)


def packet(op, key=b"", extras=b"", value=b"", opaque=0, cas=0):
    body = len(extras) + len(key) + len(value)
    head = struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0, body, opaque, cas)
    return head + extras + key + value


def rl_extras(period_ms, limit, burst=0, cost=1, alg=0, mode=0):
    return struct.pack(">QIIIBBH", period_ms, limit, burst, cost, alg, mode, 0)


BINARY = [
    (DEFAULT, packet(OP["GET"], b"foo")),
    (DEFAULT, packet(OP["GETK"], b"foo", opaque=7)),
    (DEFAULT, packet(OP["GETKQ"], b"a") + packet(OP["GETKQ"], b"b") + packet(OP["NOOP"])),
    (DEFAULT, packet(OP["SET"], b"k", struct.pack(">II", 5, 0), b"hello")),
    (DEFAULT, packet(OP["SETQ"], b"k", struct.pack(">II", 0, 100), b"v", cas=9)),
    (SMALL, packet(OP["SET"], b"k", struct.pack(">II", 0, 0), b"x" * 1100)),
    (DEFAULT, packet(OP["ADD"], b"k", struct.pack(">II", 0, 0), b"v")),
    (DEFAULT, packet(OP["REPLACE"], b"k", struct.pack(">II", 0, 0), b"v")),
    (DEFAULT, packet(OP["APPEND"], b"k", b"", b"tail")),
    (DEFAULT, packet(OP["PREPEND"], b"k", b"", b"head")),
    (DEFAULT, packet(OP["DELETE"], b"k")),
    (DEFAULT, packet(OP["INCR"], b"c", struct.pack(">QQI", 1, 0, 0))),
    (DEFAULT, packet(OP["DECR"], b"c", struct.pack(">QQI", 5, 10, 0xFFFFFFFF))),
    (DEFAULT, packet(OP["QUIT"])),
    (DEFAULT, packet(OP["FLUSH"])),
    (DEFAULT, packet(OP["FLUSH"], extras=struct.pack(">I", 10))),
    (DEFAULT, packet(OP["NOOP"])),
    (DEFAULT, packet(OP["VERSION"])),
    (DEFAULT, packet(OP["STAT"])),
    (DEFAULT, packet(OP["STAT"], b"items")),
    (DEFAULT, packet(OP["VERBOSITY"], extras=struct.pack(">I", 1))),
    (DEFAULT, packet(OP["TOUCH"], b"k", struct.pack(">I", 10))),
    (DEFAULT, packet(OP["GAT"], b"k", struct.pack(">I", 10))),
    (DEFAULT, packet(OP["GATK"], b"k", struct.pack(">I", 0))),
    (SASL, packet(OP["SASL_LIST"])),
    (SASL, packet(OP["SASL_AUTH"], b"PLAIN", b"", b"\x00user\x00pass")),
    (SASL, packet(OP["SASL_STEP"], b"PLAIN", b"", b"more")),
    (DEFAULT, packet(OP["SASL_AUTH"], b"PLAIN", b"", b"\x00user\x00pass")),
    (DEFAULT, packet(OP["RATELIMIT"], b"api:u42", rl_extras(60000, 100, 10))),
    (DEFAULT, packet(OP["RATELIMITQ"], b"u", rl_extras(1000, 5, 0, 2, 1, 1))),
    (DEFAULT, packet(OP["RATELIMIT"], b"u", rl_extras(0, 5))),
    (DEFAULT, packet(OP["RATELIMIT"], b"u", rl_extras(250, 10, 0, 11, 2, 2), b"xyz")),
    (DEFAULT, packet(0x40, b"k", b"", b"body")),
    (DEFAULT, packet(OP["GET"], b"k" * 251)),
    (DEFAULT, struct.pack(">BBHBBHIIQ", 0x80, 0, 5, 0, 0, 0, 3, 0, 0)),
    (NOCAS, packet(OP["GET"], b"k")[:20]),
    (DEFAULT, b"\x81" + packet(OP["NOOP"])[1:]),
    (DEFAULT, b"get foo\r\n"),
]

# ratelimit_args: even selector = raw line, odd = structured bytes.
RATELIMIT_LINES = [
    b"api:u42 100 60s 10",
    b"k 5 250ms 5 2 peek fixed",
    b"k 5 60",
    b"k 5 1h refund sliding",
    b"k 5 60 noreply",
    b"u1 @free 3 peek",
    b"u1 @free noreply",
    b"k 0 60",
    b"k 4294967296 60",
    b"k 5 0",
    b"k 5 366d",
    b"k 5 60 4294967296",
    b"k 5 60 5 0",
    b"k 5 60 5 6",
    b"k 5 60 bogus",
    b"k 5 60 gcra fixed",
    b"k 10 1m 10 1 fixed",
    b"k 10 1m 5 1 sliding",
    b"3 peek",
    b"17",
    b"api:u42 R100 W60s B10 l r a t k O7",
    b"YWJj R5 W1m AF MP b k q",
    b"k R5 W1s D6",
    b"k R5 W1s R6",
    b"k R1 W365d B0 D1 AS MR",
    b"60",
    b"250ms",
    b"365d",
    b"8760h",
    b"525600m",
    b"31536000000ms",
    b"18446744073709551616ms",
]

# meta: selector bits 0-2 command (mg ms md ma me mn ml mx), bit 3 base64 key, bit 4 bad
# value terminator, bits 5-7 limits (0 = 1 KiB items).
META = [
    (0x20, b"foo v k O123 T30 N5 q"),
    (0x20, b"foo s f t c h l"),
    (0x21, b"foo F5 C9 MA I\nabc"),
    (0x21, b"foo T0 q\nvalue"),
    (0x31, b"foo T0\nvalue"),
    (0x01, b"foo\n" + b"v" * 1100),
    (0x29, b"foo b k\nvalue"),
    (0x22, b"foo q I T30"),
    (0x22, b"foo C12 x"),
    (0x23, b"n D5 J10 N0 MD"),
    (0x23, b"n MI D18446744073709551615"),
    (0x24, b"foo"),
    (0x2C, b"foo b"),
    (0x25, b""),
    (0x26, b"api:u42 R100 W60s B10 l r a t k O7"),
    (0x2E, b"abc R5 W1m AF MP b k q"),
    (0x26, b"k R5 W1s D6"),
    (0x28, b"foo b k v"),
    (0x20, b"foo v v"),
    (0x20, b"foo O" + b"x" * 40),
    (0x27, b"foo"),
]


def write(target, seeds):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    # Only seeds are rewritten; other files (fixed crash inputs) stay.
    for old in os.listdir(d):
        if old.startswith("seed-"):
            os.remove(os.path.join(d, old))
    for data in seeds:
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    write("text_decode", [bytes([DEFAULT]) + r for r in TEXT]
          + [bytes([SMALL]) + b"set k 0 0 2000\r\n", bytes([NOCAS]) + b"ms k 2000 T0\r\n"])
    write("binary_decode", [bytes([sel]) + p for sel, p in BINARY])
    structured = [bytes([1]) + hashlib.sha256(b"%d" % i).digest() for i in range(8)]
    write("ratelimit_args", [b"\x00" + line for line in RATELIMIT_LINES] + structured)
    write("meta", [bytes([sel]) + rest for sel, rest in META])


if __name__ == "__main__":
    main()
