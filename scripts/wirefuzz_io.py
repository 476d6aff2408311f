"""Wire I/O for scripts/wire-fuzz.py: sends one case to several servers at once, in the
same chunks with the same pauses, and reads until each answered its sentinel, closed the
connection, or went quiet.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time

HOST = "127.0.0.1"
HEADER = struct.Struct(">BBHBBHIIQ")
# A text sentinel: a meta get of a key the grammar never uses, with an opaque to echo.
SENTINEL_KEY = b"wfz-sentinel"


def sentinel(case_bytes: bytes, nonce: int) -> tuple:
    """(bytes to append, the reply that proves everything before it was answered)."""
    if case_bytes[:1] == b"\x80":
        req = HEADER.pack(0x80, 0x0A, 0, 0, 0, 0, 0, nonce, 0)
        return req, HEADER.pack(0x81, 0x0A, 0, 0, 0, 0, 0, nonce, 0)
    lead = b"\r\n" if case_bytes and not case_bytes.endswith(b"\n") else b""
    return lead + b"mg %s O%d\r\n" % (SENTINEL_KEY, nonce), b"EN O%d\r\n" % nonce


class Peer:
    """One server's connection during a case."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.out = b""
        self.inbuf = bytearray()
        self.eof = False
        self.send_closed = False
        self.last_rx = time.monotonic()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def pump_write(self) -> None:
        if self.send_closed or not self.out:
            return
        try:
            n = self.sock.send(self.out)
            self.out = self.out[n:]
        except BlockingIOError:
            pass
        except OSError:
            self.send_closed, self.out = True, b""

    def pump_read(self) -> None:
        while not self.eof:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                    self.eof = self.send_closed = True
                    return
                raise
            if not data:
                self.eof = self.send_closed = True
                return
            self.inbuf += data
            self.last_rx = time.monotonic()


def _pump(peers: list, until, timeout: float) -> None:
    """Move bytes both ways until `until()` holds or `timeout` passes."""
    sel = selectors.DefaultSelector()
    try:
        deadline = time.monotonic() + timeout
        while True:
            for p in peers:
                p.pump_write()
                p.pump_read()
            if until():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for p in peers:
                ev = 0 if p.eof else selectors.EVENT_READ
                if p.out and not p.send_closed:
                    ev |= selectors.EVENT_WRITE
                if ev:
                    sel.register(p.sock, ev, p)
            if not sel.get_map():
                return
            sel.select(min(left, 0.05))
            for key in list(sel.get_map().values()):
                sel.unregister(key.fileobj)
    finally:
        sel.close()


class Exchange:
    """A case in flight on one connection per server."""

    def __init__(self, ports: list):
        self.peers = [Peer(p) for p in ports]
        self.expect: list = [b""] * len(ports)

    def close(self) -> None:
        for p in self.peers:
            p.close()

    def send(self, chunks: list, tails: list, expects: list, pause: float) -> None:
        """Send `chunks[i][j]` (chunk j for server i) in lockstep: each chunk to every server,
        then a pause while replies are read; `tails[i]` (the sentinel) goes with the last."""
        self.expect = expects
        count = max(len(c) for c in chunks)
        for j in range(count):
            for i, p in enumerate(self.peers):
                part = chunks[i][j] if j < len(chunks[i]) else b""
                if j == count - 1:
                    part += tails[i]
                if not p.send_closed:
                    p.out += part
            _pump(self.peers, lambda: all(not p.out or p.send_closed for p in self.peers), 10.0)
            if j < count - 1:
                _pump(self.peers, lambda: False, pause)

    def finish(self, quiet: float, limit: float = 10.0) -> list:
        """Read until every server answered its sentinel, closed, or sent nothing for
        `quiet` seconds; returns (bytes, 'sentinel' | 'closed' | 'quiet') per server."""
        start = time.monotonic()

        def done(i: int, p: Peer) -> bool:
            if p.eof or (self.expect[i] and p.inbuf.endswith(self.expect[i])):
                return True
            return time.monotonic() - max(p.last_rx, start) >= quiet

        _pump(self.peers, lambda: all(done(i, p) for i, p in enumerate(self.peers)), limit)
        out = []
        for i, p in enumerate(self.peers):
            data = bytes(p.inbuf)
            if self.expect[i] and data.endswith(self.expect[i]) and not p.eof:
                out.append((data[: -len(self.expect[i])], "sentinel"))
            elif p.eof:
                out.append((data, "closed"))
            else:
                out.append((data, "quiet"))
        return out

    def drained(self, quiet: float, limit: float) -> list:
        """Read again after a longer quiet time (a loaded machine can be slow to answer)."""
        for p in self.peers:
            p.last_rx = time.monotonic()
        return self.finish(quiet, limit)
