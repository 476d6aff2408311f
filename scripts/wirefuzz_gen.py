"""Request generation for scripts/wire-fuzz.py: a grammar of real memcached requests
(text, meta, binary) and byte-level mutations.

A case is a template: a list of pieces, each either literal bytes or a `CasRef` (the cas
unique a server last showed for a key, rendered per server), plus the literal offsets at
which the bytes are split into separately sent chunks. Everything is drawn from one
`random.Random`, so a seed gives the same cases on every run.
"""

from __future__ import annotations

import base64
import random
import struct
from typing import NamedTuple, Union

HEADER = struct.Struct(">BBHBBHIIQ")
# memcached's default -I (1 MiB); values above it are refused.
MAX_ITEM = 1 << 20
# Cas placeholder value when a server never showed a cas for the key.
UNKNOWN_CAS = 987654321987


class CasRef(NamedTuple):
    """The cas unique a server last showed for `key`: decimal text or 8 binary bytes."""

    key: bytes
    binary: bool


Piece = Union[bytes, CasRef]


class Case(NamedTuple):
    """One connection's worth of requests: template pieces and chunk split offsets."""

    pieces: list
    splits: list
    desc: str


def literal_len(pieces: list) -> int:
    """Length of the literal bytes of a template (placeholders count 0)."""
    return sum(len(p) for p in pieces if isinstance(p, bytes))


def literal(pieces: list) -> bytes:
    """The literal bytes of a template, placeholders left out."""
    return b"".join(p for p in pieces if isinstance(p, bytes))


def render(pieces: list, casmap: dict) -> bytes:
    """The template's bytes for one server, with its cas uniques filled in."""
    out = []
    for p in pieces:
        if isinstance(p, CasRef):
            cas = casmap.get(p.key, UNKNOWN_CAS)
            out.append(struct.pack(">Q", cas & (2**64 - 1)) if p.binary else b"%d" % cas)
        else:
            out.append(p)
    return b"".join(out)


def split(pieces: list, splits: list) -> list:
    """The template cut at literal offsets `splits` into chunks (lists of pieces); a
    placeholder stays with the bytes before it."""
    cuts = sorted(set(s for s in splits if 0 < s < literal_len(pieces)))
    chunks, cur, pos = [[]], 0, 0
    for p in pieces:
        if isinstance(p, CasRef):
            chunks[-1].append(p)
            continue
        start = 0
        while cur < len(cuts) and cuts[cur] < pos + len(p):
            off = cuts[cur] - pos
            if off > start:
                chunks[-1].append(p[start:off])
            chunks.append([])
            start, cur = off, cur + 1
        if start < len(p):
            chunks[-1].append(p[start:])
        pos += len(p)
    return [c for c in chunks if c]


def edit(pieces: list, pos: int, n: int, ins: bytes) -> list:
    """Delete `n` literal bytes at literal offset `pos` and insert `ins` there; placeholders
    strictly inside the deleted range go too."""
    out, cur, done = [], 0, False
    for p in pieces:
        if isinstance(p, CasRef):
            if not (pos < cur < pos + n):
                out.append(p)
            continue
        before = p[: max(0, min(len(p), pos - cur))]
        after = p[max(0, min(len(p), pos + n - cur)) :]
        if not done and cur <= pos < cur + len(p):
            out.append(before + ins + after)
            done = True
        else:
            out.append(before + after)
        cur += len(p)
    if not done:
        out.append(ins)
    return [p for p in out if not (isinstance(p, bytes) and not p)]


ODD = [b"\x00", b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x80", b"\xff", b"0", b"9", b"-", b"\x7f"]


def mutate(rng: random.Random, pieces: list) -> tuple:
    """One byte-level mutation: flip, insert, delete, duplicate or truncate."""
    n = literal_len(pieces)
    if n == 0:
        return pieces, "empty"
    pos = rng.randrange(n)
    kind = rng.choice(["flip", "flip", "insert", "delete", "dup", "truncate"])
    if kind == "flip":
        lit = literal(pieces)
        new = bytes([lit[pos] ^ (1 << rng.randrange(8))]) if rng.random() < 0.5 else rng.choice(ODD)[:1]
        return edit(pieces, pos, 1, new), f"flip@{pos}"
    if kind == "insert":
        if rng.random() < 0.7:
            ins = rng.choice(ODD)
        else:
            ins = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        return edit(pieces, pos, 0, ins), f"insert@{pos}"
    if kind == "delete":
        return edit(pieces, pos, rng.randint(1, 8), b""), f"delete@{pos}"
    if kind == "dup":
        span = literal(pieces)[pos : pos + rng.randint(1, 40)]
        return edit(pieces, pos, 0, span), f"dup@{pos}"
    # A truncation also drops the placeholders after the cut.
    out, cur = [], 0
    for p in edit(pieces, pos, n - pos, b""):
        if isinstance(p, CasRef) and cur >= pos:
            continue
        out.append(p)
        cur += len(p) if isinstance(p, bytes) else 0
    return out, f"truncate@{pos}"


# -- keys, values, numbers ------------------------------------------------------------
POOL = [b"k%d" % i for i in range(8)] + [b"n0", b"n1", b"n2", b"a"]
LONG_OK = b"L" * 250
LONG_BAD = b"L" * 251
ODD_KEYS = [b"k\x01", b"\xc3\xa9t\xc3\xa9", b"k\x7f", b"k\xff", b"-", b"0", b"key\x00x"]
# Expiry times that cannot expire during a run, and ones already expired (-1, 2592001: an
# absolute time in 1970, 4102444800: past 2^31, which memcached truncates to a negative).
TTLS = [b"0", b"0", b"0", b"100000", b"2500000", b"-1", b"2592001", b"4102444800"]
# Numbers: memcached 1.6.18 parses a stored number of 2^63 or more with strtoull and then
# looks for a '-' with strchr from the value's start: past the value, through the item's
# memory, until a NUL. Whether incr/decr then answers "non-numeric" depends on stale memory,
# so the grammar never stores such numbers (values, increments, initial values < 2^63).
BAD_NUMS = [b"abc", b"", b"1x", b"4294967296", b"-4294967297", b"99999999999999999999", b"+5", b"0x10", b" "]


class Gen:
    """The grammar: draws whole requests of every protocol from one generator."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def key(self) -> bytes:
        r = self.rng.random()
        if r < 0.90:
            return self.rng.choice(POOL)
        if r < 0.94:
            return LONG_OK
        if r < 0.96:
            return LONG_BAD
        return self.rng.choice(ODD_KEYS)

    def value(self) -> bytes:
        rng, r = self.rng, self.rng.random()
        if r < 0.30:
            # No numbers in [2^63, 2^64): see "Numbers" above.
            return rng.choice([b"0", b"1", b"42", b"4294967296", b"9223372036854775", b"007",
                               b" 12", b"12abc", b"-3", b"99999999999999999999"])
        if r < 0.60:
            n = rng.randint(0, 12)
        elif r < 0.85:
            n = rng.randint(13, 300)
        elif r < 0.97:
            n = rng.randint(301, 20000)
        elif r < 0.993:
            n = rng.randint(20001, 300000)
        else:
            n = rng.choice([MAX_ITEM + 1, MAX_ITEM + rng.randint(2, 5000), 2 * MAX_ITEM])
        if rng.random() < 0.5:
            return rng.randbytes(n)
        return (b"v%d-" % n * (n // 3 + 1))[:n]

    def num(self, small: bool = False, decr: bool = False) -> bytes:
        """A flags value (`small`) or an arithmetic delta; only a decrement gets deltas of
        2^63 and more, so no stored number reaches 2^63 (see "Numbers")."""
        r = self.rng.random()
        if r < 0.75:
            return b"%d" % self.rng.choice([0, 1, 2, 5, 100, 65535, 2**32 - 1] if small else
                                           [0, 1, 7, 1000, 2**32] + ([2**63, 2**64 - 1] if decr else []))
        if r < 0.85:
            return b"%d" % (2**64 if not small else 2**32)
        return self.rng.choice(BAD_NUMS)

    def ttl(self) -> bytes:
        return self.rng.choice(TTLS) if self.rng.random() < 0.95 else self.rng.choice(BAD_NUMS)

    def noreply(self) -> bytes:
        r = self.rng.random()
        return b" noreply" if r < 0.15 else (b" norepl" if r < 0.17 else b"")

    def cas_piece(self, key: bytes, binary: bool) -> Piece:
        """Mostly the cas a server last showed for a key of the pool; sometimes a literal
        far above any cas a server could have issued."""
        r = self.rng.random()
        if r < 0.55:
            return CasRef(key, binary)
        if r < 0.80:
            return CasRef(self.rng.choice(POOL), binary)
        lit = self.rng.choice([0, 2**63 + 11, 2**64 - 1, 123456789012345])
        return struct.pack(">Q", lit) if binary else b"%d" % lit

    # -- text ---------------------------------------------------------------------------
    def data_block(self, value: bytes) -> tuple:
        """The declared length and the data chunk, sometimes wrong."""
        rng, r = self.rng, self.rng.random()
        n, tail = len(value), b"\r\n"
        if r < 0.05:
            n += rng.choice([-2, -1, 1, 2, 3])
        elif r < 0.08:
            tail = rng.choice([b"", b"\n", b"\r", b"xx", b"\r\r\n", b"  "])
        decl = b"%d" % n if r > 0.01 else rng.choice(BAD_NUMS + [b"-1"])
        return decl, value + tail

    def text(self) -> list:
        rng, r = self.rng, self.rng.random()
        if r < 0.22:
            cmd = rng.choice([b"get", b"gets", b"gat", b"gats"])
            keys = [self.key() for _ in range(rng.choice([0, 1, 1, 1, 2, 3, 5]))]
            if rng.random() < 0.01:
                keys = [rng.choice(POOL) for _ in range(rng.randint(300, 3000))]
            args = [self.ttl()] if cmd in (b"gat", b"gats") and rng.random() < 0.95 else []
            return [b" ".join([cmd] + args + keys) + b"\r\n"]
        if r < 0.52:
            cmd = rng.choice([b"set", b"set", b"add", b"replace", b"append", b"prepend", b"cas"])
            key, value = self.key(), self.value()
            decl, block = self.data_block(value)
            flags = self.num(small=True) if rng.random() < 0.2 else b"%d" % rng.choice([0, 0, 1, 5, 2**32 - 1])
            head = [cmd + b" " + key + b" " + flags + b" " + self.ttl() + b" " + decl]
            if cmd == b"cas":
                head += [b" ", self.cas_piece(key, False)]
            if rng.random() < 0.03:
                head.append(rng.choice([b" extra", b"", b" 0 0"]))
            return head + [self.noreply() + b"\r\n" + block]
        if r < 0.60:
            cmd = rng.choice([b"incr", b"decr"])
            return [cmd + b" " + self.key() + b" " + self.num(decr=cmd == b"decr") + self.noreply() + b"\r\n"]
        if r < 0.66:
            extra = rng.choice([b"", b"", b" 0", b" 5", b" noreply", b" 0 noreply"])
            return [b"delete " + self.key() + extra + b"\r\n"]
        if r < 0.70:
            return [b"touch " + self.key() + b" " + self.ttl() + self.noreply() + b"\r\n"]
        if r < 0.90:
            return self.meta()
        return self.misc()

    def misc(self) -> list:
        rng, r = self.rng, self.rng.random()
        if r < 0.05:
            return [rng.choice([b"flush_all\r\n", b"flush_all 0\r\n", b"flush_all noreply\r\n",
                                b"flush_all 3000000\r\n", b"flush_all -1\r\n", b"flush_all x\r\n"])]
        if r < 0.20:
            return [b"verbosity " + rng.choice([b"0", b"1", b"x", b"", b"0 noreply", b"1 2"]) + b"\r\n"]
        if r < 0.35:
            return [rng.choice([b"version\r\n", b"VERSION\r\n", b"version x\r\n"])]
        if r < 0.42:
            return [rng.choice([b"stats\r\n", b"stats nosuch\r\n", b"stats reset x\r\n",
                                b"stats detail x\r\n", b"stats sizes\r\n"])]
        if r < 0.45:
            return [b"quit\r\n"]
        if r < 0.60:
            return [rng.choice([b"\r\n", b"\n", b" \r\n", b"GET k0\r\n", b"gett k0\r\n", b"get\r\n",
                                b"set k0\r\n", b"incr\r\n", b"cas k0 0 0 1\r\n", b"delete\r\n",
                                b"touch k0\r\n", b"mg\r\n", b"ms k0\r\n", b"md\r\n", b"ma\r\n"])]
        if r < 0.70:
            n = rng.choice([2040, 2047, 2048, 2049, 4096, 9000])
            line = rng.choice([b"get ", b"set ", b"xx ", b"mg "]) + b"k" * n
            return [line + (b"\r\n" if rng.random() < 0.7 else b"")]
        vocabulary = [b"get", b"k0", b"0", b"noreply", b"\x00", b"mg", b"v", b"T0"]
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 8))]
        return [b" ".join(words) + b"\r\n"]

    # -- meta ---------------------------------------------------------------------------
    META_FLAGS = {
        b"mg": b"bcfhklOqstuvNRTE",
        b"ms": b"bcCEFIkOqsSTM",
        b"md": b"bCEIkOqTx",
        b"ma": b"bCENJDTMOqtcvk",
    }

    def token(self, flag: int) -> bytes:
        rng = self.rng
        if flag in b"TNR":
            return self.ttl()
        if flag == ord("O"):
            return rng.choice([b"", b"1", b"abc", b"x" * 32, b"x" * 33, b"%d" % rng.randrange(10**6)])
        if flag in b"CE":
            p = self.cas_piece(rng.choice(POOL), False)
            return b"%d" % UNKNOWN_CAS if isinstance(p, CasRef) else p
        if flag in b"FJD":
            return self.num()
        if flag == ord("M"):
            return rng.choice([b"E", b"A", b"P", b"R", b"S", b"I", b"+", b"D", b"-", b"a", b"s", b"x", b""])
        if flag == ord("S"):
            return rng.choice([b"1", b"10", b"x"])
        return b""

    def meta(self) -> list:
        rng = self.rng
        cmd = rng.choice([b"mg", b"mg", b"mg", b"ms", b"ms", b"md", b"ma", b"mn", b"me"])
        if cmd == b"mn":
            return [b"mn\r\n" if rng.random() < 0.9 else b"mn x\r\n"]
        key = self.key()
        b64 = rng.random() < 0.08
        if b64:
            key = base64.b64encode(key)
        if cmd == b"me":
            return [b"me " + key + (b" b" if b64 else b"") + b"\r\n"]
        parts: list = [cmd + b" " + key]
        value = None
        if cmd == b"ms":
            value = self.value()
            decl, block = self.data_block(value)
            parts.append(b" " + decl)
        table = self.META_FLAGS[cmd]
        flags = [table[rng.randrange(len(table))] for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 6]))]
        if b64:
            flags.append(ord("b"))
        if rng.random() < 0.05:
            flags.append(rng.choice(b"aAzZ!9Xy"))
        for f in flags:
            if f in b"CE" and rng.random() < 0.7:
                parts += [b" " + bytes([f]), CasRef(key if not b64 else base64.b64decode(key), False)]
            else:
                parts.append(b" " + bytes([f]) + self.token(f))
        parts.append(b"\r\n")
        if value is not None:
            parts.append(block)
        return parts

    # -- binary -------------------------------------------------------------------------
    def binary(self) -> list:
        rng = self.rng
        ops = [(0x00, "k"), (0x09, "k"), (0x0C, "k"), (0x0D, "k"), (0x01, "fkv"), (0x11, "fkv"),
               (0x02, "fkv"), (0x12, "fkv"), (0x03, "fkv"), (0x13, "fkv"), (0x0E, "kv"),
               (0x19, "kv"), (0x0F, "kv"), (0x1A, "kv"), (0x04, "k"), (0x14, "k"), (0x05, "ak"),
               (0x15, "ak"), (0x06, "ak"), (0x16, "ak"), (0x1C, "tk"), (0x1D, "tk"), (0x1E, "tk"),
               (0x23, "tk"), (0x24, "tk"), (0x0A, ""), (0x0B, ""), (0x1B, "e")]
        r = rng.random()
        if r < 0.94:
            op, shape = rng.choice(ops)
        elif r < 0.955:
            op, shape = rng.choice([(0x08, "x"), (0x18, "x")])
        elif r < 0.97:
            op, shape = 0x10, "s"
        elif r < 0.975:
            op, shape = rng.choice([0x07, 0x17]), ""
        elif r < 0.985:
            op, shape = rng.choice([0x20, 0x21, 0x22]), "kv"
        else:
            op = rng.choice([x for x in range(0x25, 0x100) if x not in (0x4C, 0x4D)])
            shape = rng.choice(["", "k", "kv"])
        key = self.key() if "k" in shape else b""
        extras, value = b"", b""
        if "f" in shape:
            flags, exptime = rng.choice([0, 1, 2**32 - 1]), rng.choice([0, 0, 100000, 2**32 - 1])
            extras = struct.pack(">II", flags, exptime)
        if "a" in shape:
            big = [2**64 - 1] if op in (0x06, 0x16) else []
            extras = struct.pack(">QQI", rng.choice([0, 1, 5] + big), rng.choice([0, 7, 2**62]),
                                 rng.choice([0, 0, 100000, 0xFFFFFFFF]))
        if "t" in shape:
            extras = struct.pack(">I", rng.choice([0, 100000, 0xFFFFFFFF]))
        if "e" in shape:
            extras = struct.pack(">I", rng.choice([0, 1, 7]))
        if "x" in shape and rng.random() < 0.5:
            extras = struct.pack(">I", rng.choice([0, 3000000]))
        if "s" in shape:
            key = rng.choice([b"", b"", b"sizes", b"nosuch", b"detail dump"])
        if "v" in shape:
            value = self.value()
        if rng.random() < 0.08:  # malformed on purpose
            which = rng.randrange(4)
            if which == 0:
                extras = rng.randbytes(rng.choice([0, 1, 4, 8, 20, 30]))
            elif which == 1:
                key = b""
            elif which == 2:
                value = rng.randbytes(rng.randint(1, 20))
            else:
                key = self.key()
        cas: Piece = b"\x00" * 8
        if rng.random() < 0.3:
            cas = self.cas_piece(key or rng.choice(POOL), True)
        body = extras + key + value
        keylen, extlen, bodylen = len(key), len(extras), len(body)
        dtype = rng.choice([1, 0x80]) if rng.random() < 0.02 else 0
        vb = 7 if rng.random() < 0.02 else 0
        if rng.random() < 0.03:
            keylen, bodylen = rng.choice(
                [(keylen + 5, bodylen), (keylen, max(0, bodylen - 3)), (keylen, bodylen + 4)]
            )
        opaque = rng.randrange(2**32) if rng.random() < 0.7 else 0
        head = HEADER.pack(0x80, op, keylen & 0xFFFF, extlen, dtype, vb, bodylen, opaque, 0)
        return [head[:16], cas, body]

    # -- cases --------------------------------------------------------------------------
    def case(self) -> Case:
        """A sequence of 1..6 requests of one protocol, maybe mutated, with split points."""
        rng = self.rng
        binary = rng.random() < 0.3
        n = rng.choice([1, 1, 2, 2, 3, 4, 6])
        pieces: list = []
        for _ in range(n):
            pieces += self.binary() if binary else self.text()
        descs = ["binary" if binary else "text", f"{n} req"]
        if rng.random() < 0.25:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                pieces, what = mutate(rng, pieces)
                descs.append(what)
        total = literal_len(pieces)
        cuts = rng.choice([0, 0, 1, 2, 3]) if total > 1 else 0
        splits = sorted(rng.randrange(1, total) for _ in range(cuts))
        return Case(pieces, splits, " ".join(descs))
