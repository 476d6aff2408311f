"""The command line: memcached's flags, refusals with its messages, -h/-V, -s, -d/-P, -A."""
import os
import socket
import subprocess
import time

import pytest

from helpers import free_port

ROOT_ARGS = ["-u", "root"] if os.geteuid() == 0 else []


def connect_when_listening(port, deadline, failure):
    """A connection to `port`, retried while it is refused until `deadline` (monotonic)."""
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, failure
            time.sleep(0.05)


def run(binary, *args, timeout=5):
    return subprocess.run([binary, *ROOT_ARGS, "-U", "0", *args], capture_output=True, timeout=timeout)


@pytest.mark.parametrize(
    "args,message",
    [
        (["-c", "0"], b"Maximum connections must be greater than 0"),
        (["-t", "0"], b"Number of threads must be greater than 0"),
        (["-I", "1000"], b"Item max size cannot be less than 1024 bytes."),
        (["-I", "256m"], b"Cannot set item size limit higher than 1/2 of memory max."),
        (["-B", "http"], b"Invalid value for binding protocol: http"),
        (["-f", "0.5"], b"Factor must be greater than 1"),
        (["-R", "0"], b"Number of requests per event must be greater than 0"),
        (["-n", "0"], b"Chunk size must be greater than 0"),
        (["--bogus"], b"unrecognized option '--bogus'"),
        (["-x"], b"invalid option -- 'x'"),
        (["-l", "fooble"], b"failed to listen on one of interface(s) fooble"),
    ],
)
def test_bad_flags_stop_with_memcached_reason(binary, args, message):
    r = run(binary, "-p", str(free_port()), *args)
    assert r.returncode != 0
    assert message in r.stderr + r.stdout


def test_help_and_version_exit_zero(binary, target):
    h = run(binary, "-h")
    assert h.returncode == 0
    assert b"-p, --port=<num>" in h.stdout and b"-m, --memory-limit=<num>" in h.stdout
    v = run(binary, "-V")
    assert v.returncode == 0
    assert b"1.6.18" in v.stdout


@pytest.mark.ratecached_only
def test_help_shows_the_rate_limit_commands_and_options(binary):
    h = run(binary, "-h").stdout
    for text in [b"ratelimit <key> <limit> <period>", b"ratelimit_all <n>", b"ml <key>",
                 b"ratelimit_memory=<mb>", b"ratelimit_full=", b"docs/ratelimit.md"]:
        assert text in h, text


def test_unix_socket_serves(make_server, tmp_path, target):
    path = tmp_path / "mc.sock"
    proc = subprocess.Popen([pytest_binary(target), *ROOT_ARGS, "-s", str(path), "-a", "700"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert oct(path.stat().st_mode & 0o777) == "0o700"
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(b"set u 0 0 2\r\nok\r\nget u\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += s.recv(4096)
        assert data == b"STORED\r\nVALUE u 0 2\r\nok\r\nEND\r\n"
        s.close()
    finally:
        proc.kill()
        proc.wait()


def test_daemonize_writes_pid_file(binary, tmp_path):
    pidfile = tmp_path / "mc.pid"
    port = free_port()
    r = run(binary, "-d", "-P", str(pidfile), "-p", str(port), "-l", "127.0.0.1")
    assert r.returncode == 0
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pidfile.read_text().strip())
    try:
        with connect_when_listening(port, deadline, "the daemon never listened") as s:
            s.sendall(b"version\r\n")
            assert s.recv(100).startswith(b"VERSION ")
    finally:
        os.kill(pid, 15)


def test_shutdown_with_A_stops_the_server(make_server):
    srv = make_server("-A")
    with srv.connect() as c:
        c.send(b"shutdown\r\n")
        c.assert_closed()
    deadline = time.monotonic() + 10
    while srv.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not srv.alive()


def pytest_binary(target):
    from conftest import binary_for

    return binary_for(target)


@pytest.mark.ratecached_only
def test_logs_into_a_pipe_carry_no_colour_codes(binary):
    # stderr is a pipe here, as it is for a file or journald: no ANSI escapes.
    proc = subprocess.Popen(
        [binary, *ROOT_ARGS, "-U", "0", "-p", str(free_port()), "-vv"],
        stderr=subprocess.PIPE,
    )
    try:
        # -vv prints memcached's slab classes first, then the listening lines.
        lines = []
        while not lines or b"listening on" not in lines[-1]:
            lines.append(proc.stderr.readline())
            assert lines[-1] and len(lines) < 100, lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not any(b"\x1b[" in line for line in lines), lines


@pytest.mark.ratecached_only
def test_the_verbosity_command_changes_what_is_logged(binary, tmp_path):
    # A debug line comes every second (the periodic rate-limit snapshot), shown from -vv on.
    import select

    port = free_port()
    proc = subprocess.Popen(
        [binary, *ROOT_ARGS, "-U", "0", "-p", str(port), "-e", str(tmp_path / "mem"),
         "-o", "ratelimit_snapshot=1"],
        stderr=subprocess.PIPE,
    )

    def logged_within(seconds):
        got = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.1)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 65536)
                if not chunk:
                    break
                got += chunk
        return got

    try:
        with connect_when_listening(port, time.monotonic() + 10, "server did not start") as s:
            assert b"saved" not in logged_within(2.5)
            s.sendall(b"verbosity 2\r\n")
            assert s.recv(100) == b"OK\r\n"
            assert b"saved 0 rate-limit states" in logged_within(2.5)
            s.sendall(b"verbosity 0\r\n")
            assert s.recv(100) == b"OK\r\n"
            logged_within(0.5)  # a line already on its way
            assert b"saved" not in logged_within(2.5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
