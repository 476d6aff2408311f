"""Black-box helpers for the differential memcached text-protocol tests.

Everything here talks to a server over a plain TCP socket on the loopback
interface, so the same code drives the reference memcached and ratecached.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
# Upper bound for any single wait on a socket read.
DEFAULT_TIMEOUT = 5.0
# How long a server gets to start accepting connections.
START_TIMEOUT = 10.0

# A VERSION reply line, only where a reply line can start.
VERSION_RE = re.compile(rb"(?:\A|(?<=\n))VERSION [^\r\n]*\r\n")


class ServerStartError(RuntimeError):
    pass


def free_port() -> int:
    """Ask the kernel for a currently free loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def base_args(port: int) -> list[str]:
    """The memcached-style arguments both servers get."""
    args = ["-p", str(port), "-l", HOST, "-U", "0", "-t", "2"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # memcached refuses to run as root without -u; ratecached accepts it.
        args += ["-u", "root"]
    return args


class Conn:
    """A raw text-protocol client with bounded waits."""

    def __init__(self, port: int, timeout: float = DEFAULT_TIMEOUT):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    # -- plumbing -------------------------------------------------------
    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more bytes into the buffer. False on EOF/reset/timeout."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _take(self, n: int) -> bytes:
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # -- reads ------------------------------------------------------------
    def recv_until(self, terminator: bytes, timeout: float | None = None) -> bytes:
        """Everything up to and including the first `terminator`."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            idx = self.buf.find(terminator)
            if idx >= 0:
                return self._take(idx + len(terminator))
            if not self._fill(deadline):
                raise AssertionError(
                    f"did not receive {terminator!r} "
                    f"({'connection closed' if self.eof else 'timeout'}); "
                    f"got so far: {_short(self.buf)}"
                )

    def recv_line(self, timeout: float | None = None) -> bytes:
        return self.recv_until(b"\r\n", timeout)

    def recv_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise AssertionError(
                    f"wanted {n} bytes, got {len(self.buf)} "
                    f"({'connection closed' if self.eof else 'timeout'}): "
                    f"{_short(self.buf)}"
                )
        return self._take(n)

    def recv_available(self, wait: float = 0.2) -> bytes:
        """Whatever arrives within `wait` seconds (may be empty)."""
        deadline = time.monotonic() + wait
        while self._fill(deadline):
            pass
        return self._take(len(self.buf))

    def request(self, data: bytes, until: bytes = b"\r\n") -> bytes:
        """Send `data` and read the reply up to and including `until`."""
        self.send(data)
        return self.recv_until(until)

    def roundtrip(self, data: bytes) -> bytes:
        """Send `data` followed by a `version` sentinel and return every byte
        the server answered to `data` (the sentinel's reply is stripped).

        This proves both the exact reply bytes and that the connection is
        still usable afterwards.
        """
        assert b"version" not in data, "roundtrip() data must not contain 'version'"
        self.send(data + b"version\r\n")
        deadline = time.monotonic() + self.timeout
        while True:
            m = VERSION_RE.search(self.buf)
            if m:
                if m.end() != len(self.buf):
                    raise AssertionError(f"unexpected bytes after VERSION: {_short(self.buf)}")
                out = self.buf[: m.start()]
                self.buf = b""
                return out
            if not self._fill(deadline):
                raise AssertionError(
                    "no VERSION sentinel reply "
                    f"({'connection closed' if self.eof else 'timeout'}); "
                    f"got: {_short(self.buf)}"
                )

    def assert_closed(self, timeout: float | None = None, allow_data: bool = False) -> bytes:
        """Assert the server closes the connection (EOF or RST) in time.

        Returns any bytes received before the close; fails if there were
        some and `allow_data` is false.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            if not self._fill(deadline) and not self.eof:
                raise AssertionError(f"connection still open; got: {_short(self.buf)}")
        data = self._take(len(self.buf))
        if data and not allow_data:
            raise AssertionError(f"unexpected bytes before close: {_short(data)}")
        return data

    def assert_silent(self, wait: float = 0.2) -> None:
        data = self.recv_available(wait)
        assert data == b"", f"unexpected reply: {_short(data)}"

    # -- conveniences -------------------------------------------------
    def set(self, key: bytes, value: bytes, flags: int = 0, exptime: int = 0) -> None:
        reply = self.request(b"set %s %d %d %d\r\n%s\r\n" % (key, flags, exptime, len(value), value))
        assert reply == b"STORED\r\n", reply

    def get(self, key: bytes):
        """Value bytes or None."""
        self.send(b"get " + key + b"\r\n")
        line = self.recv_line()
        if line == b"END\r\n":
            return None
        parts = line.split()
        assert parts[0] == b"VALUE" and parts[1] == key, line
        value = self.recv_exact(int(parts[3]) + 2)[:-2]
        assert self.recv_line() == b"END\r\n"
        return value

    def gets_cas(self, key: bytes) -> int:
        line = self.request(b"gets " + key + b"\r\n")
        parts = line.split()
        assert parts[0] == b"VALUE", line
        self.recv_exact(int(parts[3]) + 2)
        assert self.recv_line() == b"END\r\n"
        return int(parts[4])

    def stats(self, sub: bytes = b"") -> dict[str, str]:
        cmd = b"stats" + ((b" " + sub) if sub else b"") + b"\r\n"
        raw = self.request(cmd, b"END\r\n")
        return parse_stats(raw)

    def stats_raw(self, sub: bytes = b"") -> bytes:
        cmd = b"stats" + ((b" " + sub) if sub else b"") + b"\r\n"
        return self.request(cmd, b"END\r\n")


def parse_stats(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = raw.split(b"\r\n")
    assert lines[-2:] == [b"END", b""], _short(raw)
    for line in lines[:-2]:
        parts = line.split(b" ", 2)
        assert parts[0] == b"STAT" and len(parts) == 3, line
        out[parts[1].decode()] = parts[2].decode()
    return out


def stat_names(raw: bytes) -> list[str]:
    lines = raw.split(b"\r\n")
    assert lines[-2:] == [b"END", b""], _short(raw)
    return [line.split(b" ")[1].decode() for line in lines[:-2]]


def _short(data: bytes, limit: int = 300) -> str:
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit // 2]!r}...({len(data)} bytes)...{data[-limit // 2:]!r}"


def value_reply(key: bytes, value: bytes, flags: int = 0, cas: int | None = None) -> bytes:
    head = b"VALUE %s %d %d" % (key, flags, len(value))
    if cas is not None:
        head += b" %d" % cas
    return head + b"\r\n" + value + b"\r\n"


def _die_with_parent() -> None:
    """Linux: kill the server if the test process dies without teardown."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """One server process (memcached or ratecached) on a free loopback port."""

    def __init__(self, target: str, binary: str, extra_args=(), log_dir: Path | None = None):
        self.target = target
        self.binary = binary
        self.extra_args = [str(a) for a in extra_args]
        self.log_dir = Path(log_dir) if log_dir else Path("/tmp")
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log_path: Path | None = None

    def __repr__(self):
        return f"<Server {self.target} port={self.port} args={self.extra_args}>"

    @property
    def args(self) -> list[str]:
        return [self.binary] + base_args(self.port) + self.extra_args

    def start(self) -> "Server":
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise ServerStartError(f"{self.target} binary not found or not executable: {self.binary}")
        last_log = ""
        for _attempt in range(3):
            self.port = free_port()
            self.log_path = self.log_dir / f"{self.target}-{self.port}.log"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    self.args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection((HOST, self.port), timeout=1):
                        return self
                except OSError:
                    time.sleep(0.02)
            code = self.proc.poll()
            last_log = self.log_text()
            self.stop()
            if code is not None and "in use" in last_log.lower():
                continue  # lost the race for the port: try another one
            break
        raise ServerStartError(
            f"{self.target} did not start ({' '.join(self.args)}); log:\n{last_log}"
        )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def connect(self, timeout: float = DEFAULT_TIMEOUT) -> Conn:
        return Conn(self.port, timeout)
