"""A small encoder/decoder for memcached's binary protocol, for the black-box tests.

Requests are built with `req(opcode, key, value, extras, cas, opaque)` (or the helpers
below); replies are parsed into `Resp` tuples by `read_resp` from a helpers.Conn.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

REQ_MAGIC = 0x80
RES_MAGIC = 0x81
HEADER = struct.Struct(">BBHBBHIIQ")

# Opcodes.
GET = 0x00
SET = 0x01
ADD = 0x02
REPLACE = 0x03
DELETE = 0x04
INCR = 0x05
DECR = 0x06
QUIT = 0x07
FLUSH = 0x08
GETQ = 0x09
NOOP = 0x0A
VERSION = 0x0B
GETK = 0x0C
GETKQ = 0x0D
APPEND = 0x0E
PREPEND = 0x0F
STAT = 0x10
SETQ = 0x11
ADDQ = 0x12
REPLACEQ = 0x13
DELETEQ = 0x14
INCRQ = 0x15
DECRQ = 0x16
QUITQ = 0x17
FLUSHQ = 0x18
APPENDQ = 0x19
PREPENDQ = 0x1A
VERBOSITY = 0x1B
TOUCH = 0x1C
GAT = 0x1D
GATQ = 0x1E
SASL_LIST = 0x20
SASL_AUTH = 0x21
SASL_STEP = 0x22
GATK = 0x23
GATKQ = 0x24
RATELIMIT = 0x4C
RATELIMITQ = 0x4D

# Status codes.
OK = 0x00
NOT_FOUND = 0x01
EXISTS = 0x02
TOO_LARGE = 0x03
EINVAL = 0x04
NOT_STORED = 0x05
DELTA_BADVAL = 0x06
AUTH_ERROR = 0x20
AUTH_CONTINUE = 0x21
UNKNOWN = 0x81
ENOMEM = 0x82


class Resp(NamedTuple):
    magic: int
    opcode: int
    keylen: int
    extlen: int
    datatype: int
    status: int
    bodylen: int
    opaque: int
    cas: int
    extras: bytes
    key: bytes
    value: bytes

    def raw(self) -> bytes:
        return (
            HEADER.pack(
                self.magic,
                self.opcode,
                self.keylen,
                self.extlen,
                self.datatype,
                self.status,
                self.bodylen,
                self.opaque,
                self.cas,
            )
            + self.extras
            + self.key
            + self.value
        )


def header(
    opcode: int,
    keylen: int = 0,
    extlen: int = 0,
    bodylen: int = 0,
    opaque: int = 0,
    cas: int = 0,
    magic: int = REQ_MAGIC,
    datatype: int = 0,
    vbucket: int = 0,
) -> bytes:
    """A raw 24-byte request header (lengths given explicitly, for malformed frames)."""
    return HEADER.pack(magic, opcode, keylen, extlen, datatype, vbucket, bodylen, opaque, cas)


def req(
    opcode: int,
    key: bytes = b"",
    value: bytes = b"",
    extras: bytes = b"",
    cas: int = 0,
    opaque: int = 0,
) -> bytes:
    """A well-formed request."""
    body = extras + key + value
    return header(opcode, len(key), len(extras), len(body), opaque, cas) + body


def get(key: bytes, opcode: int = GET, opaque: int = 0) -> bytes:
    return req(opcode, key, opaque=opaque)


def store(
    opcode: int,
    key: bytes,
    value: bytes,
    flags: int = 0,
    exptime: int = 0,
    cas: int = 0,
    opaque: int = 0,
) -> bytes:
    """set/add/replace (and quiet forms): extras are flags and expiration."""
    return req(opcode, key, value, struct.pack(">II", flags, exptime), cas, opaque)


def concat(opcode: int, key: bytes, value: bytes, cas: int = 0, opaque: int = 0) -> bytes:
    """append/prepend (and quiet forms): no extras."""
    return req(opcode, key, value, cas=cas, opaque=opaque)


def arith(
    opcode: int,
    key: bytes,
    delta: int = 1,
    initial: int = 0,
    exptime: int = 0xFFFFFFFF,
    cas: int = 0,
    opaque: int = 0,
) -> bytes:
    """incr/decr (and quiet forms): extras are delta, initial value, expiration."""
    return req(opcode, key, extras=struct.pack(">QQI", delta, initial, exptime), cas=cas, opaque=opaque)


def touch(opcode: int, key: bytes, exptime: int, opaque: int = 0) -> bytes:
    """touch/gat/gatq/gatk/gatkq: extras are the expiration."""
    return req(opcode, key, extras=struct.pack(">I", exptime), opaque=opaque)


def flush(opcode: int = FLUSH, exptime: int | None = None, opaque: int = 0) -> bytes:
    extras = b"" if exptime is None else struct.pack(">I", exptime)
    return req(opcode, extras=extras, opaque=opaque)


def simple(opcode: int, opaque: int = 0) -> bytes:
    """noop, version, quit(q), sasl list: no body."""
    return req(opcode, opaque=opaque)


def stat(key: bytes = b"", opaque: int = 0) -> bytes:
    return req(STAT, key, opaque=opaque)


def ratelimit(
    key: bytes,
    limit: int,
    period_ms: int,
    burst: int = 0,
    cost: int = 0,
    algorithm: int = 0,
    mode: int = 0,
    reserved: int = 0,
    opcode: int = RATELIMIT,
    opaque: int = 0,
) -> bytes:
    extras = struct.pack(">QIIIBBH", period_ms, limit, burst, cost, algorithm, mode, reserved)
    return req(opcode, key, extras=extras, opaque=opaque)


def parse(data: bytes) -> tuple[list[Resp], bytes]:
    """Every complete response packet in `data`, and the bytes left over."""
    out = []
    while len(data) >= 24:
        f = HEADER.unpack(data[:24])
        bodylen = f[6]
        if len(data) < 24 + bodylen:
            break
        body = data[24 : 24 + bodylen]
        extlen, keylen = f[3], f[2]
        out.append(
            Resp(*f, body[:extlen], body[extlen : extlen + keylen], body[extlen + keylen :])
        )
        data = data[24 + bodylen :]
    return out, data


def read_resp(conn) -> Resp:
    """One response packet from a helpers.Conn."""
    head = conn.recv_exact(24)
    f = HEADER.unpack(head)
    body = conn.recv_exact(f[6]) if f[6] else b""
    extlen, keylen = f[3], f[2]
    return Resp(*f, body[:extlen], body[extlen : extlen + keylen], body[extlen + keylen :])


def roundtrip(conn, data: bytes, opaque: int = 0x5E5E5E5E) -> list[Resp]:
    """Send `data` plus a NOOP sentinel (with `opaque`); every packet answered before the
    sentinel's reply. Proves the exact replies and that the connection survived."""
    conn.send(data + simple(NOOP, opaque=opaque))
    out = []
    while True:
        r = read_resp(conn)
        if r.opcode == NOOP and r.opaque == opaque:
            assert r.status == OK and r.bodylen == 0, r
            return out
        out.append(r)


def resp(
    opcode: int,
    status: int = OK,
    extras: bytes = b"",
    key: bytes = b"",
    value: bytes = b"",
    opaque: int = 0,
    cas: int = 0,
) -> Resp:
    """The expected response with these fields."""
    return Resp(
        RES_MAGIC,
        opcode,
        len(key),
        len(extras),
        0,
        status,
        len(extras) + len(key) + len(value),
        opaque,
        cas,
        extras,
        key,
        value,
    )


def flags_extra(flags: int) -> bytes:
    return struct.pack(">I", flags)


def u64(v: int) -> bytes:
    return struct.pack(">Q", v)
