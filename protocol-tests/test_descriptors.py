"""File descriptors: RLIMIT_NOFILE against -c at start, running out of
descriptors while serving (EMFILE), and the supplementary groups -u drops."""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import signal
import socket
import subprocess
import time

import pytest

from helpers import HOST, START_TIMEOUT, base_args, free_port

TOO_MANY = b"ERROR Too many open connections\r\n"
RLIMIT_FAILED = (
    "failed to set rlimit for open files. "
    "Try starting as root or requesting smaller maxconns value."
)
IS_ROOT = os.geteuid() == 0
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
CAP_SYS_RESOURCE = 24


def _child_setup(soft: int | None = None, hard: int | None = None):
    """preexec_fn: die with the test; optionally set RLIMIT_NOFILE and, as root,
    drop CAP_SYS_RESOURCE so the server cannot raise the hard limit (as an
    unprivileged user could not)."""

    def setup():
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if soft is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if IS_ROOT and libc.prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) != 0:
            os._exit(99)

    return setup


@pytest.fixture
def spawn(binary, tmp_path):
    """Start `binary` with the base flags plus `extra` and a child setup; returns
    (process, port) once it accepts connections. Killed at teardown."""
    procs: list[subprocess.Popen] = []

    def _spawn(extra, setup, **popen):
        port = free_port()
        log = open(tmp_path / f"server-{port}.log", "wb")
        proc = subprocess.Popen(
            [binary] + base_args(port) + [str(a) for a in extra],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=setup, **popen,
        )
        procs.append(proc)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / f"server-{port}.log").read_text()
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return proc, port
            except OSError:
                time.sleep(0.02)
        pytest.fail("server did not start")

    yield _spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def _nofile(pid: int) -> tuple[int, int]:
    return resource.prlimit(pid, resource.RLIMIT_NOFILE)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _connect(port: int) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=5)
    s.settimeout(5)
    return s


def _try_client(port: int) -> tuple[str, socket.socket]:
    """Connect, send `version`, and classify the first answer: 'served',
    'refused' (the ERROR line then a close), 'closed' (no bytes) or 'silent'
    (nothing within the socket timeout)."""
    s = _connect(port)
    try:
        s.sendall(b"version\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return "closed", s
    except socket.timeout:
        return "silent", s
    if data.startswith(b"VERSION "):
        return "served", s
    if not data:
        return "closed", s
    assert data == TOO_MANY, data
    try:
        assert s.recv(4096) == b"", "connection left open after the ERROR line"
    except ConnectionResetError:
        pass
    return "refused", s


def _request(s: socket.socket, data: bytes, end: bytes = b"\r\n") -> bytes:
    s.sendall(data)
    out = b""
    while not out.endswith(end):
        chunk = s.recv(65536)
        assert chunk, f"connection closed; got {out!r}"
        out += chunk
    return out


def _stats(s: socket.socket) -> dict[str, str]:
    raw = _request(s, b"stats\r\n", b"END\r\n")
    return {
        line.split(" ")[1]: line.split(" ", 2)[2]
        for line in raw.decode().split("\r\n")
        if line.startswith("STAT ")
    }


# -- the limit at start -------------------------------------------------------

def test_conn_limit_above_the_hard_descriptor_limit_exits_71(binary):
    proc = subprocess.run(
        [binary] + base_args(free_port()) + ["-c", "1000"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
        preexec_fn=_child_setup(64, 64),
    )
    assert proc.returncode == 71, proc
    assert RLIMIT_FAILED in (proc.stdout + proc.stderr).decode(errors="replace")


def test_soft_limit_is_raised_to_fit_the_conn_limit(spawn):
    proc, port = spawn(["-c", "1000"], _child_setup(64, 4096))
    soft, hard = _nofile(proc.pid)
    assert 1000 <= soft <= hard
    with _connect(port) as s:
        assert _request(s, b"version\r\n").startswith(b"VERSION ")


def test_a_hard_limit_without_headroom_still_serves(spawn):
    """-c fits the hard limit but the runtime's headroom does not: start anyway."""
    proc, port = spawn(["-c", "60"], _child_setup(64, 64))
    soft, _ = _nofile(proc.pid)
    assert soft >= 60
    with _connect(port) as s:
        assert _request(s, b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        assert _request(s, b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"


# -- running out while serving -------------------------------------------------

@pytest.mark.ratecached_only
def test_out_of_descriptors_answers_new_clients_without_spinning(spawn):
    """The descriptor limit is lowered under a running server until accept()
    fails with EMFILE. ratecached answers the clients that keep arriving, does
    not spin, and serves again once descriptors are free. (memcached stops
    accepting on EMFILE and leaves new clients waiting silently: not tested.)"""
    proc, port = spawn(["-c", "1000"], _child_setup())
    sentinel = _connect(port)
    assert _request(sentinel, b"set sentinel 0 0 4\r\nkept\r\n") == b"STORED\r\n"
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (64, 64))
    clients: list[socket.socket] = []
    try:
        outcome = "served"
        for _ in range(300):
            outcome, c = _try_client(port)
            clients.append(c)
            if outcome != "served":
                break
        assert outcome in ("refused", "closed"), f"client beyond the limit: {outcome}"
        assert len(clients) < 64

        before = _cpu_seconds(proc.pid)
        for _ in range(5):
            outcome, c = _try_client(port)
            clients.append(c)
            assert outcome in ("refused", "closed"), f"client while saturated: {outcome}"
        time.sleep(1.0)
        spent = _cpu_seconds(proc.pid) - before
        assert spent < 0.5, f"{spent:.2f}s of CPU in 1s while out of descriptors"

        s = _stats(sentinel)
        assert s["accepting_conns"] == "0"
        assert int(s["listen_disabled_num"]) >= 1
        assert int(s["rejected_connections"]) >= 1
    finally:
        for c in clients:
            c.close()

    deadline = time.monotonic() + 10
    while True:
        outcome, c = _try_client(port)
        if outcome == "served":
            break
        c.close()
        assert time.monotonic() < deadline, f"not served after the clients closed: {outcome}"
        time.sleep(0.05)
    with c:
        assert _request(c, b"get sentinel\r\n", b"END\r\n") == (
            b"VALUE sentinel 0 4\r\nkept\r\nEND\r\n"
        )
        s = _stats(c)
        assert s["accepting_conns"] == "1"
        assert int(s["time_in_listen_disabled_us"]) > 0
    sentinel.close()


# -- -u ---------------------------------------------------------------------------

@pytest.mark.skipif(not IS_ROOT, reason="dropping supplementary groups needs root and another user")
def test_user_switch_drops_supplementary_groups(spawn):
    nobody = pwd.getpwnam("nobody")
    proc, _ = spawn(["-u", "nobody"], _child_setup(), extra_groups=[1, 2, 3])
    status = open(f"/proc/{proc.pid}/status").read()
    lines = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert lines["Uid"].split() == [str(nobody.pw_uid)] * 4
    assert lines["Gid"].split() == [str(nobody.pw_gid)] * 4
    assert lines["Groups"].split() == []
