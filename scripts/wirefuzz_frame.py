"""How memcached 1.6.18 frames a request stream, for scripts/wire-fuzz.py: where it stops
(a bad magic byte, a line or key it cannot buffer, a protocol error), what it is still
waiting for, and the bytes that would complete it. Mirrors proto_bin.c dispatch_bin_command
and proto_text.c process_update_command / process_mset_command.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import NamedTuple

HEADER = struct.Struct(">BBHBBHIIQ")
MAX_ITEM = 1 << 20
# The most bytes the script sends to complete a request memcached is still reading.
COMPLETION_MAX = 24 * MAX_ITEM

# Binary opcodes memcached 1.6.18 answers `Unknown command` (without -S): it reads their
# extras and key, then discards `bodylen` more bytes.
UNKNOWN_OPS = frozenset([0x1B, 0x1F, 0x20] + list(range(0x25, 0x100)))
STORAGE_AT = {b"set": 4, b"add": 4, b"replace": 4, b"append": 4, b"prepend": 4, b"cas": 4, b"ms": 2}
LINE_MAX = 2048
# memcached's read buffer: a binary header whose key and extras do not fit closes silently.
READ_BUFFER = 16384


class Walk(NamedTuple):
    """Where a request stream leaves memcached: 'complete', 'incomplete' (`missing` more
    bytes wanted), 'bad_magic' or 'close' (a text line over 2048 bytes, a binary key and
    extras over the 16 KiB read buffer); `frames` are the
    (opcode, opaque) of the binary requests before that point."""

    state: str
    missing: int
    frames: tuple


STORES = {0x01, 0x02, 0x03, 0x11, 0x12, 0x13}
CONCATS = {0x0E, 0x0F, 0x19, 0x1A}
GETS = {0x00, 0x09, 0x0C, 0x0D}
DELETES = {0x04, 0x14}
ARITHS = {0x05, 0x06, 0x15, 0x16}
TOUCHES = {0x1C, 0x1D, 0x1E, 0x23, 0x24}
BARE = {0x0A, 0x0B, 0x07, 0x17}  # noop, version, quit, quitq


def _bin_need(op: int, keylen: int, extlen: int, bodylen: int):
    """Bytes after the header memcached 1.6.18 consumes for a request (dispatch_bin_command),
    or None when it answers a protocol error and closes."""
    head = keylen + extlen
    if head > bodylen or keylen > 250:
        return None
    if op in UNKNOWN_OPS:
        return head + bodylen  # reads extras and key, then discards bodylen more
    if op in STORES:
        ok = extlen == 8 and keylen > 0
    elif op in CONCATS:
        ok = extlen == 0 and keylen > 0
    elif op in GETS or op in DELETES:
        ok = extlen == 0 and keylen > 0 and bodylen == keylen
    elif op in ARITHS:
        ok = extlen == 20 and keylen > 0 and bodylen == head
    elif op in TOUCHES:
        return head if extlen == 4 and keylen > 0 else None  # a value is left unread
    elif op == 0x10:  # stat: the key only
        return head if extlen == 0 else None
    elif op in BARE:
        ok = bodylen == 0
    elif op in (0x08, 0x18):  # flush
        ok = keylen == 0 and bodylen == extlen and extlen in (0, 4)
    else:  # sasl auth / step
        ok = extlen == 0 and keylen > 0
    return bodylen if ok else None


def walk_binary(sent: bytes) -> Walk:
    """How memcached frames a binary stream: stops at 'bad_magic', 'oversize' (key and
    extras larger than its read buffer: it waits, then closes without a reply), 'overflow'
    (a value length of 2^31 or more, which overflows its int), 'error' (a protocol error
    it answers and closes on), 'incomplete', or 'complete'."""
    frames, pos = [], 0
    while pos < len(sent):
        if sent[pos] != 0x80:
            return Walk("bad_magic", 0, tuple(frames))
        if len(sent) - pos < 24:
            return Walk("incomplete", 24 - (len(sent) - pos), tuple(frames))
        f = HEADER.unpack_from(sent, pos)
        op, keylen, extlen, bodylen, opaque = f[1], f[2], f[3], f[6], f[7]
        frames.append((op, opaque))
        head, have = extlen + keylen, len(sent) - pos - 24
        if 24 + head > READ_BUFFER:
            return Walk("oversize", 0, tuple(frames))
        if have < head:
            return Walk("incomplete", head - have, tuple(frames))
        need = _bin_need(op, keylen, extlen, bodylen)
        if need is None:
            return Walk("error", 0, tuple(frames))
        if (op in STORES or op in CONCATS) and bodylen - head >= 2**31:
            return Walk("overflow", 0, tuple(frames))
        if op in UNKNOWN_OPS and bodylen >= 2**31:
            return Walk("overflow", 0, tuple(frames))  # its swallow count goes negative
        if have < need:
            return Walk("incomplete", need - have, tuple(frames))
        pos += 24 + need
    return Walk("complete", 0, tuple(frames))


# strtol's number: leading white space, a sign, digits, then the end or white space.
C_NUMBER = re.compile(rb"[ \t\n\v\f\r]*([+-]?\d+)(?:[ \t\n\v\f\r].*)?", re.S)


def c_strtol(tok: bytes):
    """memcached's safe_strtol: a C long, then truncated to 32 bits (no range check)."""
    m = C_NUMBER.fullmatch(tok)
    if m is None or not -(2**63) <= int(m.group(1)) < 2**63:
        return None
    return (int(m.group(1)) + 2**31) % 2**32 - 2**31


def c_strtoul(tok: bytes):
    """memcached's safe_strtoul: a C unsigned long (a '-' only for small magnitudes),
    truncated to 32 bits."""
    m = C_NUMBER.fullmatch(tok)
    if m is None or abs(int(m.group(1))) >= 2**64:
        return None
    v = int(m.group(1)) % 2**64
    if v >= 2**63 and b"-" in tok:
        return None
    return v % 2**32


def tokens(line: bytes) -> list:
    """A command line as memcached's tokenize_command sees it: cut at a NUL (strlen) and at
    a final '\r', split on spaces, empty tokens skipped."""
    line = line.split(b"\0", 1)[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    return [t for t in line.split(b" ") if t] or [b""]


def lines(sent: bytes):
    """The tokens of every line of a text stream (values included, as if they were lines)."""
    return (tokens(line) for line in sent.split(b"\n"))


def _value_len(toks: list):
    """The value length a storage line makes memcached read (or swallow), else None
    (process_update_command, process_mset_command)."""
    at = STORAGE_AT.get(toks[0])
    if at is None or len(toks) <= at or len(toks[1]) > 250:
        return None  # memcached checks the key length before anything else
    if toks[0] == b"ms":
        vlen = c_strtol(toks[2]) if len(toks) < 20 else None
    elif len(toks) not in ((6, 7) if toks[0] == b"cas" else (5, 6)):
        return None
    elif c_strtoul(toks[2]) is None or c_strtol(toks[3]) is None:
        return None
    else:
        vlen = c_strtol(toks[4])
    return vlen if vlen is not None and 0 <= vlen <= 2**31 - 3 else None


def walk_text(sent: bytes, long_lines_close: bool = True) -> Walk:
    """How memcached frames a text stream. A line over 2048 bytes closes the connection
    when memcached reads it in pieces; `long_lines_close=False` when it is known to have
    read it whole (it did not close)."""
    pos = 0
    while pos < len(sent):
        nl = sent.find(b"\n", pos)
        if nl < 0:
            if len(sent) - pos > LINE_MAX:
                return Walk("close", 0, ())
            return Walk("incomplete", 2, ())
        toks = tokens(sent[pos:nl])
        if long_lines_close and nl - pos > LINE_MAX and toks[0] not in (b"get", b"gets"):
            # memcached closes when a read leaves over 2048 bytes without a newline.
            return Walk("close", 0, ())
        pos = nl + 1
        vlen = _value_len(toks)
        if vlen is None:
            continue
        need, have = vlen + 2, len(sent) - pos
        if have < need:
            return Walk("incomplete", need - have, ())
        pos += need
    return Walk("complete", 0, ())


def completion(binary: bool, sent: bytes) -> bytes:
    """Bytes that complete the request memcached is still reading (zeros for a binary body,
    `x`s and CRLF for a text value), or b"" when it is not waiting for any."""
    filler = b""
    for _ in range(4):
        w = walk_binary(sent + filler) if binary else walk_text(sent + filler, False)
        if w.state != "incomplete" or w.missing > COMPLETION_MAX:
            break
        if binary:
            filler += bytes(w.missing)
        else:
            filler += b"x" * max(0, w.missing - 2) + b"\r\n"[max(0, 2 - w.missing) :]
    return filler


def declares_too_large(sent: bytes) -> bool:
    return any((_value_len(toks) or 0) > MAX_ITEM for toks in lines(sent))


def strict_b64_invalid(sent: bytes) -> bool:
    for toks in lines(sent):
        if toks[0] in (b"mg", b"ms", b"md", b"ma", b"me") and len(toks) > 1 and b"b" in toks[2:]:
            try:
                base64.b64decode(toks[1], validate=True)
            except binascii.Error:
                return True
    return False
