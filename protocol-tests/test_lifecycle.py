"""Stopping and restarting: SIGUSR1 with -e (memcached's restartable cache), SIGTERM, the
pid file, periodic rate-limit snapshots and a crash, a damaged snapshot file."""

import os
import re
import signal
import subprocess
import time

import pytest

from helpers import free_port, value_reply

LINE = re.compile(rb"^(ALLOWED|DENIED) (\d+) (\d+) (\d+) (\d+)\r\n$")


def wait_exit(srv, timeout=10.0):
    try:
        return srv.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{srv.target} did not exit within {timeout} s")


def restart(make_server, srv, *flags):
    """A new server of the same target with `flags` (the old one has exited)."""
    return make_server(*flags)


def test_sigusr1_with_a_memory_file_keeps_items_across_a_restart(make_server, tmp_path):
    mem = str(tmp_path / "mem")
    srv = make_server("-e", mem)
    with srv.connect() as c:
        c.set(b"k", b"hello", flags=3)
        c.set(b"t", b"short", exptime=100)
    srv.proc.send_signal(signal.SIGUSR1)
    assert wait_exit(srv) == 0
    # memcached refuses to restore when restarted within the second it stopped in.
    time.sleep(1.1)
    again = restart(make_server, srv, "-e", mem)
    with again.connect() as c:
        assert c.roundtrip(b"get k t\r\n") == (
            value_reply(b"k", b"hello", 3) + value_reply(b"t", b"short") + b"END\r\n"
        )


@pytest.mark.ratecached_only
def test_a_denied_subject_stays_denied_across_a_graceful_restart(make_server, tmp_path):
    mem = str(tmp_path / "mem")
    srv = make_server("-e", mem)
    with srv.connect() as c:
        for _ in range(3):
            assert c.request(b"ratelimit u 3 1h\r\n").startswith(b"ALLOWED")
        assert c.request(b"ratelimit u 3 1h\r\n").startswith(b"DENIED 3 0 1200000 ")
    stopped = time.monotonic()
    srv.proc.send_signal(signal.SIGUSR1)
    assert wait_exit(srv) == 0
    assert os.path.exists(mem)
    again = restart(make_server, srv, "-e", mem)
    with again.connect() as c:
        line = c.request(b"ratelimit u 3 1h\r\n")
    down_ms = (time.monotonic() - stopped) * 1000
    verdict, limit, remaining, retry, reset = LINE.match(line).groups()
    assert (verdict, limit, remaining) == (b"DENIED", b"3", b"0")
    # The wait went on during the downtime: 20 minutes less the time since the stop.
    assert 1_200_000 - down_ms - 1 <= int(retry) <= 1_200_000
    assert int(reset) == int(retry) + 2_400_000
    assert not os.path.exists(mem), "a restored snapshot is removed"


@pytest.mark.ratecached_only
def test_sigterm_answers_the_requests_already_read_and_removes_the_pid_file(make_server, tmp_path):
    pid = str(tmp_path / "pid")
    srv = make_server("-P", pid)
    with srv.connect() as c:
        c.set(b"big", b"x" * 500_000)
        # 40 requests, 20 MB of replies, not read yet: the server is blocked writing them.
        c.send(b"get big\r\n" * 40)
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        got = b""
        per = len(value_reply(b"big", b"x" * 500_000)) + len(b"END\r\n")
        while len(got) < 40 * per:
            chunk = c.sock.recv(1 << 20)
            assert chunk, f"closed after {len(got)} of {40 * per} bytes"
            got += chunk
        assert got == (value_reply(b"big", b"x" * 500_000) + b"END\r\n") * 40
    assert wait_exit(srv) == 0
    assert not os.path.exists(pid)


@pytest.mark.ratecached_only
def test_periodic_snapshots_bound_what_a_crash_loses(make_server, tmp_path):
    mem = str(tmp_path / "mem")
    srv = make_server("-e", mem, "-o", "ratelimit_snapshot=1")
    with srv.connect() as c:
        for _ in range(3):
            c.request(b"ratelimit crash 3 1h\r\n")
        assert c.request(b"ratelimit crash 3 1h\r\n").startswith(b"DENIED")
    deadline = time.monotonic() + 5
    while not os.path.exists(mem) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.2)  # at least one snapshot after the last decision
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=5)
    again = restart(make_server, srv, "-e", mem, "-o", "ratelimit_snapshot=1")
    with again.connect() as c:
        assert c.request(b"ratelimit crash 3 1h\r\n").startswith(b"DENIED 3 0 ")


@pytest.mark.ratecached_only
def test_a_damaged_or_foreign_snapshot_is_refused(binary, tmp_path):
    mem = tmp_path / "mem"
    root = ["-u", "root"] if os.geteuid() == 0 else []
    for content in [b"not a snapshot at all", b"ratecached-snap\n\x01\x00\x00\x00" + b"\x00" * 40]:
        mem.write_bytes(content)
        r = subprocess.run(
            [binary, *root, "-p", str(free_port()), "-U", "0", "-e", str(mem)],
            capture_output=True,
            timeout=10,
        )
        assert r.returncode != 0
        assert b"snapshot" in r.stderr and b"move it away" in r.stderr, r.stderr
        assert mem.read_bytes() == content, "the file is left as it was"
