"""Hostile clients, measured: each attack runs against a fresh server and reports the server's
peak RSS (VmHWM), whether it survived and whether a sentinel key set before the attack still
reads back. `test_hostile.py` asserts bounds on these figures; run this file to print them for
both servers side by side (the table in docs/reliability.md):

    target/venv/bin/python protocol-tests/attacks.py [--only NAME] [--ratecached BIN]

Every loop is bounded in count and time, and every target is on loopback.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import shutil
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import HOST, Server  # noqa: E402

MB = 1024 * 1024
SENTINEL = b"sentinel-key"
SENTINEL_VALUE = b"still-here"


@dataclass
class Outcome:
    """What one attack did to a server."""

    alive: bool
    sentinel_intact: bool
    peak_rss_mb: float
    notes: dict = field(default_factory=dict)


def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def small_rcvbuf(port: int) -> socket.socket:
    """A client socket with a small receive buffer: a client that does not read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect((HOST, port))
    return s


def request(port: int, data: bytes, until: bytes, timeout: float = 5.0) -> bytes:
    with connect(port, timeout) as s:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(until) and time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        return buf


def set_value(port: int, key: bytes, value: bytes) -> None:
    reply = request(port, b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value), b"\r\n")
    assert reply == b"STORED\r\n", reply


def sentinel_ok(port: int) -> bool:
    try:
        reply = request(port, b"get %s\r\n" % SENTINEL, b"END\r\n")
    except OSError:
        return False
    return reply == b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (SENTINEL, len(SENTINEL_VALUE), SENTINEL_VALUE)


def start(target: str, binary: str, *flags) -> Server:
    log_dir = Path(tempfile.mkdtemp(prefix=f"attack-{target}-"))
    return Server(target, binary, flags, log_dir).start()


def finish(srv: Server, notes: dict | None = None, auth: bytes | None = None) -> Outcome:
    """Reads the outcome of an attack that has ended (its sockets closed or still open)."""
    alive = srv.alive()
    intact = alive and (auth is not None or sentinel_ok(srv.port))
    peak = rss_kb(srv.proc.pid, "VmHWM") / 1024 if alive else float("nan")
    return Outcome(alive, intact, round(peak, 1), notes or {})


def prepare(srv: Server, big: int = 0) -> None:
    set_value(srv.port, SENTINEL, SENTINEL_VALUE)
    if big:
        set_value(srv.port, b"big", b"x" * big)


# -- 1. replies a client does not read ------------------------------------------------------


def multiget_not_read(target: str, binary: str, keys: int = 5000) -> Outcome:
    """`get big big ...` (a 1 MB value, `keys` times on one line), the client not reading."""
    srv = start(target, binary, "-m", "64")
    try:
        prepare(srv, big=1_000_000)
        s = small_rcvbuf(srv.port)
        s.sendall(b"get" + b" big" * keys + b"\r\n")
        time.sleep(1.5)
        out = finish(srv)
        s.close()
        return out
    finally:
        srv.stop()


def pipelined_gets_not_read(target: str, binary: str, count: int = 1000) -> Outcome:
    """`count` pipelined `get big` (1 MB value), the client not reading."""
    srv = start(target, binary, "-m", "64")
    try:
        prepare(srv, big=1_000_000)
        s = small_rcvbuf(srv.port)
        s.sendall(b"get big\r\n" * count)
        time.sleep(1.5)
        out = finish(srv)
        s.close()
        return out
    finally:
        srv.stop()


def binary_gets_not_read(target: str, binary: str, count: int = 1000) -> Outcome:
    """`count` pipelined binary GETs of a 1 MB value, the client not reading."""
    srv = start(target, binary, "-m", "64")
    try:
        prepare(srv, big=1_000_000)
        get = struct.pack(">BBHBBHIIQ", 0x80, 0x00, 3, 0, 0, 0, 3, 0, 0) + b"big"
        s = small_rcvbuf(srv.port)
        s.sendall(get * count)
        time.sleep(1.5)
        out = finish(srv)
        s.close()
        return out
    finally:
        srv.stop()


# -- 2. values in transit --------------------------------------------------------------------


def partial_sets(target: str, binary: str, clients: int = 1000, size: int = 900_000) -> Outcome:
    """`clients` connections each half-way through a `size`-byte set (-m 64)."""
    raise_nofile(clients + 256)
    srv = start(target, binary, "-m", "64", "-c", str(clients + 100))
    socks = []
    try:
        prepare(srv)
        half = b"x" * (size // 2)
        refused = 0
        for _ in range(clients):
            s = connect(srv.port)
            s.sendall(b"set p 0 0 %d\r\n" % size)
            s.setblocking(False)
            try:
                s.sendall(half)
            except BlockingIOError:
                pass
            s.setblocking(True)
            socks.append(s)
        time.sleep(1.0)
        for s in socks:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                try:
                    if s.recv(100).startswith(b"SERVER_ERROR out of memory"):
                        refused += 1
                except OSError:
                    pass
        out = finish(srv, {"refused": refused})
        return out
    finally:
        for s in socks:
            s.close()
        srv.stop()


# -- 3. before authentication ----------------------------------------------------------------


def unauthenticated_body(target: str, binary: str, mode: str, stream_mb: int = 64) -> Outcome:
    """With -Y (`mode` "ascii") or -S ("sasl"), an unauthenticated client announces a 300 MB
    body and streams up to `stream_mb` MB of it."""
    tmp = Path(tempfile.mkdtemp(prefix="attack-auth-"))
    env_flags = []
    if mode == "ascii":
        auth = tmp / "auth"
        auth.write_text("user:pass\n")
        env_flags = ["-Y", str(auth)]
        head = b"set a 0 0 300000000\r\n"
    else:
        env_flags = ["-S"]
        (tmp / "memcached.conf").write_text("mech_list: plain\n")
        (tmp / "sasl").write_text("user:pass\n")
        os.environ["SASL_CONF_PATH"] = str(tmp)
        os.environ["MEMCACHED_SASL_PWDB"] = str(tmp / "sasl")
        head = struct.pack(">BBHBBHIIQ", 0x80, 0x21, 5, 0, 0, 0, 5 + 300_000_000, 0, 0) + b"PLAIN"
    srv = start(target, binary, "-m", "64", *env_flags)
    try:
        s = connect(srv.port)
        s.sendall(head)
        sent = 0
        chunk = b"x" * MB
        deadline = time.monotonic() + 10
        closed_after = None
        while sent < stream_mb * MB and time.monotonic() < deadline:
            try:
                sent += s.send(chunk)
            except OSError:
                closed_after = sent
                break
        s.close()
        time.sleep(0.2)
        out = finish(srv, {"closed_after_mb": None if closed_after is None else round(closed_after / MB, 1)}, auth=b"")
        return out
    finally:
        srv.stop()


# -- 5. memory per connection ------------------------------------------------------------------


def idle_connections(target: str, binary: str, count: int = 5000) -> Outcome:
    """`count` connections that each ran one `get` and then sit idle: RSS per connection."""
    raise_nofile(count + 256)
    srv = start(target, binary, "-c", str(count + 100))
    socks = []
    try:
        prepare(srv)
        time.sleep(0.2)
        before = rss_kb(srv.proc.pid)
        for _ in range(count):
            s = connect(srv.port)
            s.sendall(b"get %s\r\n" % SENTINEL)
            socks.append(s)
        for s in socks:
            buf = b""
            while not buf.endswith(b"END\r\n"):
                buf += s.recv(4096)
        time.sleep(0.5)
        after = rss_kb(srv.proc.pid)
        per_conn = (after - before) * 1024 / count
        return finish(srv, {"bytes_per_idle_conn": round(per_conn)})
    finally:
        for s in socks:
            s.close()
        srv.stop()


def connection_bursts(target: str, binary: str, rounds: int = 8, count: int = 5000) -> Outcome:
    """`rounds` bursts of `count` connections that each run a get and close: RSS after each."""
    raise_nofile(count + 256)
    srv = start(target, binary, "-c", str(count + 100))
    try:
        prepare(srv)
        after = []
        for _ in range(rounds):
            socks = []
            for _ in range(count):
                s = connect(srv.port)
                s.sendall(b"get %s\r\n" % SENTINEL)
                socks.append(s)
            for s in socks:
                buf = b""
                while not buf.endswith(b"END\r\n"):
                    buf += s.recv(4096)
            for s in socks:
                s.close()
            time.sleep(0.5)
            after.append(round(rss_kb(srv.proc.pid) / 1024, 1))
        return finish(srv, {"rss_mb_after_each_round": after})
    finally:
        srv.stop()


# -- 6. idle timeout ------------------------------------------------------------------------------


def trickle(target: str, binary: str, limit_s: float = 12.0) -> Outcome:
    """With -o idle_timeout=2, a client trickles one byte a second of a line that never ends:
    seconds until the server closes it (None if it did not within `limit_s`)."""
    srv = start(target, binary, "-o", "idle_timeout=2")
    try:
        prepare(srv)
        s = connect(srv.port)
        start_t = time.monotonic()
        closed = None
        while time.monotonic() - start_t < limit_s:
            try:
                s.send(b"g")
            except OSError:
                closed = time.monotonic() - start_t
                break
            r, _, _ = select.select([s], [], [], 1.0)
            if r:
                try:
                    if s.recv(100) == b"":
                        closed = time.monotonic() - start_t
                        break
                except OSError:
                    closed = time.monotonic() - start_t
                    break
        s.close()
        return finish(srv, {"closed_after_s": None if closed is None else round(closed, 1)})
    finally:
        srv.stop()


# -- 8. UDP -----------------------------------------------------------------------------------------


def udp_amplification(target: str, binary: str) -> Outcome:
    """One datagram asking 100 times for a 1 MB value (-U on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    srv = start(target, binary, "-m", "64", "-U", str(port))
    try:
        prepare(srv, big=1_000_000)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        u.settimeout(0.5)
        u.sendto(struct.pack(">HHHH", 7, 0, 1, 0) + b"get" + b" big" * 100 + b"\r\n", (HOST, port))
        datagrams, counts = 0, set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                d, _ = u.recvfrom(2048)
            except socket.timeout:
                break
            datagrams += 1
            counts.add(struct.unpack(">H", d[4:6])[0])
        u.close()
        return finish(srv, {"datagrams": datagrams, "counts": sorted(counts)[:3]})
    finally:
        srv.stop()


ATTACKS = {
    "multiget_not_read": multiget_not_read,
    "pipelined_gets_not_read": pipelined_gets_not_read,
    "binary_gets_not_read": binary_gets_not_read,
    "partial_sets": partial_sets,
    "unauth_ascii": lambda t, b: unauthenticated_body(t, b, "ascii"),
    "unauth_sasl": lambda t, b: unauthenticated_body(t, b, "sasl"),
    "idle_connections": idle_connections,
    "connection_bursts": connection_bursts,
    "trickle": trickle,
    "udp_amplification": udp_amplification,
}


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", help="attack name (repeatable)")
    p.add_argument("--ratecached", default=os.environ.get("RATECACHED_BIN", str(root / "target/release/ratecached")))
    p.add_argument("--memcached", default=shutil.which("memcached") or "/usr/bin/memcached")
    args = p.parse_args()
    names = args.only or list(ATTACKS)
    print("| attack | server | alive | sentinel | peak RSS MB | notes |")
    print("| --- | --- | --- | --- | ---: | --- |")
    for name in names:
        for target, binary in (("ratecached", args.ratecached), ("memcached", args.memcached)):
            t0 = time.monotonic()
            o = ATTACKS[name](target, binary)
            notes = ", ".join(f"{k}={v}" for k, v in o.notes.items())
            print(
                f"| {name} | {target} | {o.alive} | {o.sentinel_intact} | {o.peak_rss_mb} | {notes} ({time.monotonic() - t0:.1f}s) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
