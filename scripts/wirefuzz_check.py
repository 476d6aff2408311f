"""Reply comparison for scripts/wire-fuzz.py: normalization of the fields that differ
between two correct servers, and the table of explained (documented) differences.

Cas uniques are replaced by per-server ordinals (first seen = 1, 2, ...); times (`t`, `l`
meta flags, `me`'s `exp=` and `la=`) are compared within a tolerance; `stats` values are
masked (names are compared) and ratecached's rate-limit counters left out.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import time
from typing import Callable, NamedTuple

from wirefuzz_frame import (
    COMPLETION_MAX,
    declares_too_large,
    lines,
    strict_b64_invalid,
    walk_binary,
    walk_text,
)

HEADER = struct.Struct(">BBHBBHIIQ")
MULTIGET_MAX = 8 << 20
# Seconds two servers' clocks may disagree on a remaining TTL or an idle time.
TIME_SLACK = 2
META_REPLIES = {b"VA", b"HD", b"NF", b"NS", b"EX", b"EN"}
KEYED_BINARY = {0x0C, 0x0D, 0x23, 0x24}  # getk, getkq, gatk, gatkq
STAT_OP = 0x10
# ratecached's rate-limit counters in `stats` (docs/ratelimit.md): left out of comparisons.
RL_KEY = re.compile(rb"(?:cmd_ratelimit|ratelimit_[a-z_]+)")


class Outcome(NamedTuple):
    """What one server answered to a case: raw bytes, normalized bytes, times, and how the
    exchange ended: 'sentinel' (answered through the sentinel), 'closed' or 'quiet'."""

    raw: bytes
    norm: bytes
    times: tuple
    end: str


class Normalizer:
    """Per-server state: cas unique -> ordinal, and the last cas seen for each key."""

    def __init__(self):
        self.ords: dict = {}
        self.last_cas: dict = {}

    def ordinal(self, cas: int) -> int:
        if cas == 0:
            return 0
        return self.ords.setdefault(cas, len(self.ords) + 1)

    def outcome(self, raw: bytes, binary: bool, end: str) -> Outcome:
        times: list = []
        norm = self._binary(raw) if binary else self._text(raw, times)
        return Outcome(raw, norm, tuple(times), end)

    # -- text -----------------------------------------------------------------------------
    def _text(self, data: bytes, times: list) -> bytes:
        out, pos = [], 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                out.append(data[pos:])
                break
            line = data[pos : nl + 1]
            pos = nl + 1
            toks = line.rstrip(b"\r\n").split(b" ")
            block = -1
            if toks[0] == b"VALUE" and len(toks) >= 4 and toks[3].isdigit():
                block = int(toks[3])
                if len(toks) == 5 and toks[4].isdigit():
                    cas = int(toks[4])
                    self.last_cas[toks[1]] = cas
                    toks[4] = b"#%d" % self.ordinal(cas)
            elif toks[0] in META_REPLIES:
                first = 1
                if toks[0] == b"VA" and len(toks) >= 2 and toks[1].isdigit():
                    block, first = int(toks[1]), 2
                self._meta_flags(toks, first, times)
            elif toks[0] == b"ME" and len(toks) >= 3:
                for i, t in enumerate(toks[2:], 2):
                    name, _, val = t.partition(b"=")
                    if name == b"cas" and val.isdigit():
                        toks[i] = b"cas=#%d" % self.ordinal(int(val))
                    elif name in (b"exp", b"la") and re.fullmatch(rb"-?\d+", val) and val != b"-1":
                        times.append(int(val))
                        toks[i] = name + b"=~"
            elif toks[0] == b"STAT" and len(toks) >= 3:
                if RL_KEY.fullmatch(toks[1]):
                    continue  # ratecached's own counters (docs/ratelimit.md)
                toks = toks[:2] + [b"*"]
            out.append(b" ".join(toks) + (b"\r\n" if line.endswith(b"\r\n") else b"\n"))
            if block >= 0:
                out.append(data[pos : pos + block + 2])
                pos += block + 2
        return b"".join(out)

    def _meta_flags(self, toks: list, first: int, times: list) -> None:
        key, cas_at = None, None
        b64 = b"b" in toks[first:]
        for i in range(first, len(toks)):
            t = toks[i]
            if t[:1] == b"k":
                key = t[1:]
            elif t[:1] == b"c" and t[1:].isdigit():
                cas_at = i
            elif t[:1] in (b"t", b"l") and re.fullmatch(rb"\d+", t[1:]):
                times.append(int(t[1:]))
                toks[i] = t[:1] + b"~"
        if cas_at is not None:
            cas = int(toks[cas_at][1:])
            toks[cas_at] = b"c#%d" % self.ordinal(cas)
            if key is not None:
                try:
                    self.last_cas[base64.b64decode(key) if b64 else key] = cas
                except binascii.Error:
                    pass

    # -- binary ---------------------------------------------------------------------------
    def _binary(self, data: bytes) -> bytes:
        out, pos = [], 0
        while len(data) - pos >= 24:
            f = list(HEADER.unpack_from(data, pos))
            end = pos + 24 + f[6]
            if f[0] != 0x81 or end > len(data):
                break
            extras = data[pos + 24 : pos + 24 + f[3]]
            key = data[pos + 24 + f[3] : pos + 24 + f[3] + f[2]]
            value = data[pos + 24 + f[3] + f[2] : end]
            if f[8]:
                if f[1] in KEYED_BINARY and f[5] == 0:
                    self.last_cas[key] = f[8]
                f[8] = self.ordinal(f[8])
            if f[1] == STAT_OP and RL_KEY.fullmatch(key):
                pos = end
                continue  # ratecached's own counters (docs/ratelimit.md)
            if f[1] == STAT_OP and value:
                value = b"*"
                f[6] = len(extras) + len(key) + 1
            out.append(HEADER.pack(*f) + extras + key + value)
            pos = end
        out.append(data[pos:])
        return b"".join(out)


def same(a: Outcome, b: Outcome) -> bool:
    """Equal replies: same normalized bytes, times within the slack, same ending."""
    return (
        a.norm == b.norm
        and a.end == b.end
        and len(a.times) == len(b.times)
        and all(abs(x - y) <= TIME_SLACK for x, y in zip(a.times, b.times))
    )


# -- the explained differences ----------------------------------------------------------
class Ctx(NamedTuple):
    """A case: the bytes sent to memcached (sentinel included), the protocol, both outcomes,
    `held`: they differed only while memcached waited for more of a request (its reply
    was a prefix of ratecached's, and once both got the rest of the request they agreed);
    `diverged`: the replies agreed but the stores differ afterwards (outcomes are then both
    servers' views of the stores)."""

    sent: bytes
    binary: bool
    mc: Outcome
    rc: Outcome
    held: bool = False
    diverged: bool = False


BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
REPLY_LINE = re.compile(
    rb"(?:ERROR|CLIENT_ERROR .*|SERVER_ERROR .*|STORED|NOT_STORED|EXISTS|NOT_FOUND|END|OK|DELETED|"
    rb"TOUCHED|VERSION .*|VALUE .*|STAT .*|RESET|\d+|(?:VA|HD|EN|NF|NS|EX|MN|ME)(?: .*)?)\r\n"
)


def _extra(c: Ctx) -> bytes:
    """What ratecached answered beyond memcached's reply, when memcached's is a prefix."""
    if c.rc.norm.startswith(c.mc.norm) and c.rc.norm != c.mc.norm:
        return c.rc.norm[len(c.mc.norm) :]
    return b""


def _too_large_at_once(c: Ctx) -> bool:
    """A refused value: memcached answers once it has swallowed the value, ratecached at
    once (after the replies memcached holds meanwhile)."""
    if not (c.held or _held_too_long(c)):
        return False
    if not c.binary:
        return declares_too_large(c.sent)
    packets = _packets(_extra(c)) or [(None, None)]
    return packets[-1] == (walk_binary(c.sent).frames[-1], 0x03)  # Too large.


def _held_too_long(c: Ctx) -> bool:
    """memcached waits for more of a request than the script sends to complete it (a value
    or a discard of hundreds of MiB), holding replies that ratecached sent: the replies
    ratecached sent beyond memcached's answer requests of the case, in order."""
    extra = _extra(c)
    if c.mc.end != "quiet" or c.rc.end != "quiet" or not extra:
        return False
    if not c.binary:
        w = walk_text(c.sent, False)
        ok = all(REPLY_LINE.fullmatch(line + b"\r\n") for line in extra.split(b"\r\n")[:-1])
    else:
        w = walk_binary(c.sent)
        packets = _packets(extra)
        ok = packets is not None and _in_order([p for p, _ in packets], list(w.frames))
    return ok and w.state == "incomplete" and w.missing > COMPLETION_MAX


def _packets(data: bytes):
    """[((opcode, opaque), status)] of whole response packets, or None."""
    out = []
    while len(data) >= 24 and data[0] == 0x81:
        f = HEADER.unpack_from(data)
        if len(data) < 24 + f[6]:
            return None
        out.append(((f[1], f[7]), f[5]))
        data = data[24 + f[6] :]
    return out if out and not data else None


def _not_held(c: Ctx) -> bool:
    return c.held or _held_too_long(c)


def _dropped_at_close(c: Ctx) -> bool:
    extra = _extra(c)
    if not extra or c.rc.end != "closed":
        return False
    if c.binary:
        w = walk_binary(c.sent)
        if not (w.state == "bad_magic" and c.mc.end == "closed" or w.state == "oversize"):
            return False
        packets = _packets(extra)
        return packets is not None and _in_order([p for p, _ in packets], list(w.frames))
    lines = extra.split(b"\r\n")
    return c.mc.end == "closed" and walk_text(c.sent).state == "close" and all(
        REPLY_LINE.fullmatch(line + b"\r\n") for line in lines[:-1]
    ) and lines[-1] == b""


def _in_order(packets: list, frames: list) -> bool:
    """Whether each reply packet (opcode, opaque) answers a request frame, in order (a
    frame may have several, as `stat` has)."""
    j = 0
    for p in packets:
        while j < len(frames) and frames[j] != p:
            j += 1
        if j == len(frames):
            return False
    return True


def _value_length_overflow(c: Ctx) -> bool:
    """A binary length of 2^31 or more overflows memcached's int: it neither reads nor
    discards those bytes (a store answers, then parses the value as requests; an unknown
    opcode goes on with the next bytes), where ratecached discards them: one side's reply
    goes on past the other's."""
    if not c.binary or walk_binary(c.sent).state != "overflow":
        return False
    return c.rc.norm.startswith(c.mc.norm) or c.mc.norm.startswith(c.rc.norm)


def _get_error_wipes_previous(c: Ctx) -> bool:
    if c.binary or c.mc.end != c.rc.end:
        return False
    long_get = any(
        toks[0] in (b"get", b"gets", b"gat", b"gats") and any(len(t) > 250 for t in toks[1:])
        for toks in lines(c.sent)
    )
    if not long_get:
        return False
    return _wiped(c.rc.norm.split(b"\n"), c.mc.norm.split(b"\n"))


def _wiped(rc: list, mc: list) -> bool:
    """Whether `mc` is `rc` with runs of lines removed, each run just before a
    `CLIENT_ERROR bad command line format` line (memcached drops the replies it had not
    written when a get-family command fails on a key over 250 bytes)."""
    bad = BAD_FORMAT[:-1]
    seen: set = set()
    todo = [(0, 0)]
    while todo:
        i, k = todo.pop()
        if (i, k) in seen:
            continue
        seen.add((i, k))
        if i == len(rc):
            if k == len(mc):
                return True
            continue
        if k < len(mc) and rc[i] == mc[k]:
            todo.append((i + 1, k + 1))
        todo += [(j, k) for j in range(i + 1, len(rc)) if rc[j] == bad]
    return False


def _multiget_line(c: Ctx) -> bool:
    return not c.binary and c.rc.end == "closed" and any(
        len(line) > MULTIGET_MAX for line in c.sent.split(b"\n")
    )


def _base64_strict(c: Ctx) -> bool:
    err = b"CLIENT_ERROR error decoding key"
    return not c.binary and strict_b64_invalid(c.sent) and c.rc.raw.count(err) > c.mc.raw.count(err)


def _ratelimit_opcodes(c: Ctx) -> bool:
    return c.binary and bool({0x4C, 0x4D} & {op for op, _ in walk_binary(c.sent).frames})


PADDED = re.compile(rb"(\d+) +")


def unpad(norm: bytes, binary: bool) -> bytes:
    """`norm` with every value that is a number padded with spaces (an incr/decr result
    written over a longer value) cut to the number, lengths adjusted."""
    out, pos = [], 0
    if binary:
        while len(norm) - pos >= 24 and norm[pos] == 0x81:
            f = list(HEADER.unpack_from(norm, pos))
            body = norm[pos + 24 : pos + 24 + f[6]]
            head, value = body[: f[2] + f[3]], body[f[2] + f[3] :]
            m = PADDED.fullmatch(value)
            if m:
                value = m.group(1)
                f[6] = len(head) + len(value)
            out.append(HEADER.pack(*f) + head + value)
            pos += 24 + len(body)
        return b"".join(out) + norm[pos:]
    while pos < len(norm):
        nl = norm.find(b"\n", pos)
        if nl < 0:
            break
        toks = norm[pos:nl].split(b" ")
        at = 3 if toks[0] == b"VALUE" and len(toks) >= 4 else 0
        at = 1 if toks[0] == b"VA" and len(toks) >= 2 else at
        if not at or not toks[at].isdigit():
            out.append(norm[pos : nl + 1])
            pos = nl + 1
            continue
        n = int(toks[at])
        block = norm[nl + 1 : nl + 1 + n]
        m = PADDED.fullmatch(block)
        if m:
            block = m.group(1)
            size = b"%d" % len(block)
            toks = [
                size if i == at else b"s" + size if t == b"s%d" % n and i > at else t
                for i, t in enumerate(toks)
            ]
        out.append(b" ".join(toks) + b"\n" + block)
        pos = nl + 1 + n
    return b"".join(out) + norm[pos:]


B64_KEY = re.compile(rb" k(\S+) b(?=\r\n)")


def _b64(key: bytes) -> bytes:
    try:
        return base64.b64decode(key, validate=True)
    except binascii.Error:
        return key


def _replaced(norm: bytes, memcached: bool) -> bytes:
    """`norm` as if its items had been replaced by a fresh copy: numbers unpadded, `fetch=`
    and the `h` flag masked (on memcached's side only where they read "not fetched")."""
    seen = (b"no", b"yes") if not memcached else (b"no",)
    for word in seen:
        norm = norm.replace(b" fetch=" + word, b" fetch=?")
    # A key stored in base64 (`b`) is shown in base64; the fresh copy forgets that.
    norm = B64_KEY.sub(lambda m: b" k" + _b64(m.group(1)), norm)
    flags = rb" h0(?= |\r)" if memcached else rb" h[01](?= |\r)"
    return re.sub(flags, b" h?", norm)


def _incr_padding(c: Ctx) -> bool:
    """memcached writes an incr/decr result over the old value (padded with spaces, flags
    kept) only while no one else holds the item: a reply not yet written, its LRU
    maintainer or crawler; else it stores a fresh item (the bare number, not fetched)."""
    if not re.search(rb"(?:^|\n)(?:incr|decr|ma) |\x80[\x05\x06\x15\x16]", c.sent):
        return False
    mc = _replaced(unpad(c.mc.norm, c.binary), True)
    rc = _replaced(unpad(c.rc.norm, c.binary), False)
    return c.mc.norm != c.rc.norm and same(c.mc._replace(norm=mc), c.rc._replace(norm=rc))


def _past_flush(sent: bytes, binary: bool) -> bool:
    """A flush whose time is an absolute time already past (over 30 days, before now)."""
    past = lambda t: 2592000 < t < time.time()  # noqa: E731
    if not binary:
        return any(
            toks[0] == b"flush_all" and len(toks) > 1 and toks[1].isdigit() and past(int(toks[1]))
            for toks in lines(sent)
        )
    pos = 0
    while len(sent) - pos >= 28 and sent[pos] == 0x80:
        f = HEADER.unpack_from(sent, pos)
        if f[1] in (0x08, 0x18) and f[3] == 4 and past(struct.unpack_from(">I", sent, pos + 24)[0]):
            return True
        pos += 24 + f[6]
    return False


def _audit_items(norm: bytes) -> dict:
    """key -> its audit reply (header line and value), or None for `EN`."""
    items, pos = {}, 0
    while pos < len(norm):
        nl = norm.find(b"\n", pos)
        if nl < 0:
            break
        line = norm[pos : nl + 1]
        toks = line.rstrip(b"\r\n").split(b" ")
        key = next((t[1:] for t in toks[1:] if t[:1] == b"k"), b"")
        n = int(toks[1]) + 2 if toks[0] == b"VA" and toks[1].isdigit() else 0
        items[key] = None if toks[0] == b"EN" else norm[pos : nl + 1 + n]
        pos = nl + 1 + n
    return items


def _flush_resurrects(c: Ctx) -> bool:
    """memcached flushes lazily (items older than a mark are ignored); a flush_all whose
    time is already past sets the mark to 0, which brings back what an earlier flush_all
    hid, while ratecached dropped those items: only memcached may have extra items."""
    if not (c.diverged and _past_flush(c.sent, c.sent[:1] == b"\x80")):
        return False
    # The items memcached brought back take cas ordinals ratecached's side never saw.
    mc, rc = (_audit_items(re.sub(rb" c#\d+", b"", o.norm)) for o in (c.mc, c.rc))
    return mc.keys() == rc.keys() and all(rc[k] in (mc[k], None) for k in mc)


BIG_NUMBER = re.compile(rb"(\d{19,20}) *\r\n")


def _big_numbers(c: Ctx) -> bool:
    """incr/decr on a stored number of 2^63 or more: memcached then looks for a '-' past the
    value, through stale memory, and may refuse it as non-numeric (leaving the item as it
    was) where ratecached counts: ratecached's item is memcached's after that one text
    incr/decr."""
    if not c.diverged:
        return False
    ops = [t for t in lines(c.sent) if t[0] in (b"incr", b"decr") and len(t) >= 3 and t[2].isdigit()]
    mc, rc = _audit_items(c.mc.norm), _audit_items(c.rc.norm)
    differing = [k for k in mc if mc[k] != rc.get(k)]
    if mc.keys() != rc.keys() or not differing:
        return False
    for k in differing:
        a, b = mc[k] or b"", rc[k] or b""
        ma, mb = BIG_NUMBER.search(a), BIG_NUMBER.search(b)
        mine = [t for t in ops if t[1] == k]
        if not (ma and mb and int(ma.group(1)) >= 2**63 and len(mine) == 1):
            return False
        old, delta = int(ma.group(1)), int(mine[0][2])
        new = (old + delta) % 2**64 if mine[0][0] == b"incr" else max(0, old - delta)
        if int(mb.group(1)) != new:
            return False
    return True


def _audit_ttls(raw: bytes) -> dict:
    """key -> remaining TTL in an audit reply (-1: none), for the keys it holds."""
    out = {}
    for line in raw.split(b"\r\n"):
        toks = line.split(b" ")
        if toks[0] in (b"VA", b"HD"):
            key = next((t[1:] for t in toks if t[:1] == b"k"), b"")
            ttl = next((t[1:] for t in toks[1:] if t[:1] == b"t"), b"-1")
            out[key] = int(ttl) if re.fullmatch(rb"-?\d+", ttl) else -1
    return out


def _expiry_race(c: Ctx) -> bool:
    """An item with a TTL of a few seconds (a mutated expiry time) expired on one server
    and not yet on the other: each counts seconds on its own clock, and they expire items
    differently (lazily in memcached, by a timing wheel in ratecached)."""
    if not c.diverged:
        return False
    mc, rc = _audit_items(c.mc.norm), _audit_items(c.rc.norm)
    ttls = {**_audit_ttls(c.mc.raw), **_audit_ttls(c.rc.raw)}
    differing = [k for k in mc if mc[k] != rc.get(k)]
    return bool(differing) and all(
        (mc[k] is None) != (rc.get(k) is None) and 0 <= ttls.get(k, -1) <= 3 for k in differing
    )


class Explanation(NamedTuple):
    """A documented difference: its name, where it is documented, and its predicate."""

    name: str
    doc: str
    applies: Callable


DOC = "docs/protocol-differences.md"
EXPLAINED = [
    Explanation(
        "too-large value refused at once", f"{DOC} (an error for a value over -I)", _too_large_at_once
    ),
    Explanation(
        "replies not held while a value arrives or bytes are discarded",
        f"{DOC} (replies of complete requests)",
        _not_held,
    ),
    Explanation(
        "replies not dropped when the connection closes (bad magic, long line or key)",
        f"{DOC} (replies of complete requests)",
        _dropped_at_close,
    ),
    Explanation(
        "a get with a key over 250 bytes keeps the replies before it",
        f"{DOC} (memcached defects not reproduced)",
        _get_error_wipes_previous,
    ),
    Explanation(
        "binary length of 2^31 or more (memcached: overflows)",
        f"{DOC} (memcached defects not reproduced)",
        _value_length_overflow,
    ),
    Explanation(
        "incr/decr result written in place (memcached: unless the item is in use)",
        f"{DOC} (memcached defects not reproduced)",
        _incr_padding,
    ),
    Explanation(
        "flush_all to a past time brings back flushed items (memcached)",
        f"{DOC} (memcached defects not reproduced)",
        _flush_resurrects,
    ),
    Explanation(
        "incr/decr on a number of 2^63 or more (memcached: reads past the value)",
        f"{DOC} (memcached defects not reproduced)",
        _big_numbers,
    ),
    Explanation(
        "an item with a TTL of seconds expires on one server first",
        f"{DOC} (expiry)",
        _expiry_race,
    ),
    Explanation("multi-get line over 8 MiB closes", f"{DOC} (multi-get line length)", _multiget_line),
    Explanation("base64 keys decoded strictly", f"{DOC} (base64 keys)", _base64_strict),
    Explanation(
        "rate-limit opcodes 0x4c/0x4d",
        "docs/ratelimit.md (binary form)",
        _ratelimit_opcodes,
    ),
]


def explain(c: Ctx):
    """The first explanation that covers a difference, or None."""
    if c.diverged:
        audits = (_incr_padding, _flush_resurrects, _big_numbers, _expiry_race)
        return next((e for e in EXPLAINED if e.applies in audits and e.applies(c)), None)
    for e in EXPLAINED:
        if e.applies(c):
            return e
    return None
