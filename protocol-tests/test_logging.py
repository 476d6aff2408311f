"""memcached's verbose log: -v errors, -vv every command and reply of a connection, in
memcached's exact format. Each test reads the log of one connection (its descriptor found
through `stats conns`, then written as FD) and expects the lines memcached 1.6.18 prints."""
import os
import re
import signal
import subprocess
import time

import pytest

import binproto as bp
from helpers import Conn, free_port

ROOT_ARGS = ["-u", "root"] if os.geteuid() == 0 else []
DEADLINE = 10  # seconds for a log line to appear (a bound on waiting, never asserted)


def fd_of(srv, conn) -> int:
    """The server's descriptor for `conn`, asked on another connection, whose closing is
    waited for: memcached writes a line in several pieces, so another connection's line
    could land inside one of ours."""
    port = conn.sock.getsockname()[1]
    fds = {}
    with srv.connect() as admin:
        admin_port = admin.sock.getsockname()[1]
        for line in admin.stats_raw(b"conns").decode().splitlines():
            m = re.match(r"STAT (\d+):addr tcp:127\.0\.0\.1:(\d+)$", line)
            if m:
                fds[int(m.group(2))] = int(m.group(1))
    assert port in fds, f"no connection from port {port} in stats conns"
    if admin_port in fds:
        closed_log(srv, fds[admin_port])
    return fds[port]


def wait_for(path, needle: str) -> str:
    """The text of `path` once it contains `needle` (bounded wait)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        text = read_log(path)
        if needle in text:
            return text
        assert time.monotonic() < deadline, f"{needle!r} never logged; log:\n{text[-3000:]}"
        time.sleep(0.05)


OTHER_CONN = re.compile(r"^(?:[<>](\d+) |(\d+): )")


def read_log(path) -> str:
    # Bytes, not text mode: a logged "\r" must stay one.
    return path.read_bytes().decode(errors="replace") if path.exists() else ""


def closed_log(srv, fd: int) -> list[str]:
    """The log's lines from connection `fd`'s last `new ... connection` line on, once its
    `connection closed.` line is there (waited for); none below -vv."""
    deadline = time.monotonic() + DEADLINE
    while True:
        lines = read_log(srv.log_path).split("\n")
        starts = [i for i, line in enumerate(lines) if re.match(rf"<{fd} new .*connection", line)]
        if not starts:
            return []  # not logged at this verbosity
        start = starts[-1]
        if f"<{fd} connection closed." in lines[start:]:
            return lines[start:]
        assert time.monotonic() < deadline, f"connection {fd} never closed: {lines[start:][-20:]}"
        time.sleep(0.05)


def conn_lines(srv, fd: int) -> list[str]:
    """The lines of connection `fd` from its last `new ... connection` line to its
    `connection closed.`, with fd-less lines (binary commands, -v errors) kept and other
    connections' lines dropped; `fd` becomes FD."""
    out = []
    for line in closed_log(srv, fd):
        m = OTHER_CONN.match(line)
        if m and int(m.group(1) or m.group(2)) != fd:
            continue
        line = re.sub(rf"^([<>]){fd}\b", r"\1FD", line)
        line = re.sub(rf"^{fd}:", "FD:", line)
        out.append(line.replace(f"close connection {fd}", "close connection FD"))
        if line == "<FD connection closed.":
            return out
    raise AssertionError("unreachable: the closing line was seen")


def session(srv, talk, binary=False) -> list[str]:
    """Runs `talk(conn)` on a new connection, closes it, and returns its log lines. The
    connection first says `version` (or a binary noop), so that the server has set it up
    before `stats conns` is asked for its descriptor."""
    # The server's start-up probe connection first: memcached writes a line in several
    # pieces, so another connection's line could land inside one of ours.
    wait_for(srv.log_path, "connection closed.")
    c = srv.connect()
    if binary:
        bp.roundtrip(c, b"")
    else:
        assert c.roundtrip(b"") == b""
    fd = fd_of(srv, c)
    try:
        talk(c)
    finally:
        c.close()
    return conn_lines(srv, fd)


NOOP = bp.simple(bp.NOOP, opaque=0x5E5E5E5E)


def opened(protocol="ascii"):
    """The first lines of a session: connected, protocol chosen, the first request."""
    lines = ["<FD new auto-negotiating client connection", f"FD: Client using the {protocol} protocol"]
    if protocol == "ascii":
        return lines + VERSION
    return lines + read_dump(NOOP) + write_dump(bp.resp(bp.NOOP, opaque=0x5E5E5E5E))


CLOSED = ["<FD connection closed."]
VERSION = ["<FD version", ">FD VERSION 1.6.18"]


def test_text_commands_and_replies(make_server):
    srv = make_server("-vv")

    def talk(c):
        c.roundtrip(
            b"set a 0 0 1\r\nx\r\nget a\r\nget b\r\nget a b a\r\ngets a\r\ngat 0 a\r\n"
            b"touch a 10\r\ntouch zz 10\r\nincr a 1\r\nset n 0 0 1\r\n5\r\nincr n 2\r\n"
            b"decr n 1\r\nappend n 0 0 1\r\n1\r\nprepend zz 0 0 1\r\n1\r\nadd n 0 0 1\r\n1\r\n"
            b"delete n\r\ndelete n\r\nbogus\r\nset k 0 0 1\r\nxyz\r\nget " + b"k" * 251 + b"\r\n"
            b"flush_all\r\nstats settings\r\nstats reset\r\n"
        )

    assert session(srv, talk) == opened() + [
        "<FD set a 0 0 1", ">FD STORED",
        "<FD get a", ">FD sending key a", ">FD END",
        "<FD get b", ">FD END",
        "<FD get a b a", ">FD sending key a", ">FD sending key a", ">FD END",
        "<FD gets a", ">FD sending key a", ">FD END",
        "<FD gat 0 a", ">FD sending key a", ">FD END",
        "<FD touch a 10", ">FD TOUCHED",
        "<FD touch zz 10", ">FD NOT_FOUND",
        "<FD incr a 1", ">FD CLIENT_ERROR cannot increment or decrement non-numeric value",
        "<FD set n 0 0 1", ">FD STORED",
        "<FD incr n 2", ">FD 7",
        "<FD decr n 1", ">FD 6",
        "<FD append n 0 0 1", ">FD STORED",
        "<FD prepend zz 0 0 1", ">FD NOT_STORED",
        "<FD add n 0 0 1", ">FD NOT_STORED",
        "<FD delete n", ">FD DELETED",
        "<FD delete n", ">FD NOT_FOUND",
        "<FD bogus", ">FD ERROR",
        # A bad data chunk, then the rest of the value line read as a command ("\r").
        "<FD set k 0 0 1", ">FD CLIENT_ERROR bad data chunk",
        "<FD \r", ">FD ERROR",
        # A key over 250 bytes: END, then the error.
        "<FD get " + "k" * 251, ">FD END", ">FD CLIENT_ERROR bad command line format",
        "<FD flush_all", ">FD OK",
        # Reports are not logged, single-line answers are.
        "<FD stats settings",
        "<FD stats reset", ">FD RESET",
        "<FD version", ">FD VERSION 1.6.18",
    ] + CLOSED


def test_noreply_replies_are_logged_as_noreply(make_server):
    srv = make_server("-vv")

    def talk(c):
        assert c.roundtrip(
            b"set a 0 0 1 noreply\r\nx\r\nincr a 1 noreply\r\ndelete a noreply\r\n"
            b"delete a noreply\r\ntouch a 1 noreply\r\nflush_all noreply\r\n"
            b"verbosity 2 noreply\r\nverbosity abc noreply\r\n"
        ) == b""

    assert session(srv, talk) == opened() + [
        "<FD set a 0 0 1 noreply", ">FD NOREPLY STORED",
        "<FD incr a 1 noreply",
        ">FD NOREPLY CLIENT_ERROR cannot increment or decrement non-numeric value",
        "<FD delete a noreply", ">FD NOREPLY DELETED",
        "<FD delete a noreply", ">FD NOREPLY NOT_FOUND",
        "<FD touch a 1 noreply", ">FD NOREPLY NOT_FOUND",
        "<FD flush_all noreply", ">FD NOREPLY OK",
        "<FD verbosity 2 noreply", ">FD NOREPLY OK",
        "<FD verbosity abc noreply", ">FD NOREPLY CLIENT_ERROR bad command line format",
        "<FD version", ">FD VERSION 1.6.18",
    ] + CLOSED


def test_a_cas_conflict_logs_both_uniques(make_server):
    srv = make_server("-vv")
    cas = []

    def talk(c):
        c.set(b"a", b"x")
        cas.append(c.gets_cas(b"a"))
        bad = cas[0] + 1000
        c.roundtrip(b"cas a 0 0 1 %d\r\ny\r\ncas a 0 0 1 %d noreply\r\ny\r\n" % (bad, bad))

    lines = session(srv, talk)
    n, bad = cas[0], cas[0] + 1000
    assert lines == opened() + [
        "<FD set a 0 0 1", ">FD STORED",
        "<FD gets a", ">FD sending key a", ">FD END",
        f"<FD cas a 0 0 1 {bad}", f"CAS:  failure: expected {n}, got {bad}", ">FD EXISTS",
        f"<FD cas a 0 0 1 {bad} noreply", f"CAS:  failure: expected {n}, got {bad}",
        ">FD NOREPLY EXISTS",
    ] + VERSION + CLOSED
    # The binary protocol's set with a cas unique takes the same path.
    request = bp.store(bp.SET, b"a", b"z", cas=bad)

    def talk_binary(c):
        assert bp.roundtrip(c, request)[0].status == bp.EXISTS

    lines = session(srv, talk_binary, binary=True)
    noop = write_dump(bp.resp(bp.NOOP, opaque=0x5E5E5E5E))
    assert lines == opened("binary") + read_dump(request) + [
        "<FD SET a Value len is 1", f"CAS:  failure: expected {n}, got {bad}",
        ">FD Writing an error: Data exists for key.",
    ] + write_dump(bp.resp(bp.SET, bp.EXISTS, value=b"Data exists for key.")) + read_dump(
        NOOP
    ) + noop + CLOSED


def test_meta_commands_log_their_line_and_errors_only(make_server):
    srv = make_server("-vv")

    def talk(c):
        c.roundtrip(
            b"ms m 5 T0\r\nERROR\r\nmg m v\r\nmg nope v\r\nmg m v q\r\nma m\r\nmd m q\r\n"
            b"mn\r\nme m\r\nme nope\r\nmg m zz\r\nma\r\n"
        )

    assert session(srv, talk) == opened() + [
        "<FD ms m 5 T0",
        # The value read back ("ERROR") is not taken for an error line.
        "<FD mg m v",
        "<FD mg nope v",
        "<FD mg m v q",
        "<FD ma m", ">FD CLIENT_ERROR cannot increment or decrement non-numeric value",
        "<FD md m q",
        "<FD mn", ">FD MN",
        "<FD me m", ">FD EN",
        "<FD me nope", ">FD EN",
        "<FD mg m zz", ">FD CLIENT_ERROR invalid flag",
        "<FD ma", ">FD ERROR",
        "<FD version", ">FD VERSION 1.6.18",
    ] + CLOSED


def dump(title: str, row: str, header: bytes) -> list[str]:
    """memcached's dump of a 24-byte binary header: a title, then rows of four bytes."""
    rows = [row + "".join(f" 0x{b:02x}" for b in header[i:i + 4]) for i in range(0, 24, 4)]
    return [title] + rows


def read_dump(request: bytes) -> list[str]:
    return dump("<FD Read binary protocol data:", "<FD   ", request[:24])


def write_dump(r: bp.Resp, hit=False) -> list[str]:
    raw = bytearray(r.raw()[:24])
    if hit:
        raw[16:24] = bytes(8)  # logged before the cas is filled in
    return dump(">FD Writing bin response:", ">FD  ", bytes(raw))


def error_dump(r: bp.Resp) -> list[str]:
    return [f">FD Writing an error: {r.value.decode()}"] + write_dump(r)


def test_binary_requests_and_responses(make_server):
    srv = make_server("-vv")
    reqs = [
        bp.store(bp.SET, b"a", b"xy", flags=5, opaque=1),
        bp.get(b"a"),
        bp.get(b"b"),
        bp.get(b"b", bp.GETK),
        bp.get(b"b", bp.GETQ),
        bp.store(bp.SETQ, b"q", b"1"),
        bp.store(bp.ADD, b"a", b"z"),
        bp.req(bp.DELETE, b"q"),
        bp.req(bp.DELETE, b"q"),
        bp.arith(bp.INCR, b"n", 1, 5, 0),
        bp.arith(bp.DECR, b"a", 1),
        bp.touch(bp.GAT, b"a", 10),
        bp.concat(bp.APPEND, b"a", b"0"),
        bp.stat(b"settings"),
        bp.simple(bp.VERSION),
    ]
    replies = []

    def talk(c):
        replies.extend(bp.roundtrip(c, b"".join(reqs)))

    lines = session(srv, talk, binary=True)
    r = iter(replies)
    noop_reply = bp.resp(bp.NOOP, opaque=0x5E5E5E5E)
    expected = opened("binary")
    expected += read_dump(reqs[0]) + ["<FD SET a Value len is 2"] + write_dump(next(r))
    expected += read_dump(reqs[1]) + ["<FD GET a"] + write_dump(next(r), hit=True)
    expected += read_dump(reqs[2]) + ["<FD GET b"] + error_dump(next(r))
    # A getk miss carries its key: no error text.
    expected += read_dump(reqs[3]) + ["<FD GET b"] + write_dump(next(r))
    # Quiet: a getq miss and a setq answer nothing.
    expected += read_dump(reqs[4]) + ["<FD GET b"]
    expected += read_dump(reqs[5]) + ["<FD SET q Value len is 1"]
    expected += read_dump(reqs[6]) + ["<FD ADD a Value len is 1"] + error_dump(next(r))
    expected += read_dump(reqs[7]) + ["Deleting q"] + write_dump(next(r))
    expected += read_dump(reqs[8]) + ["Deleting q"] + error_dump(next(r))
    expected += read_dump(reqs[9]) + ["incr n 1, 5, 0"] + write_dump(next(r))
    expected += read_dump(reqs[10]) + ["incr a 1, 0, -1"] + error_dump(next(r))
    expected += read_dump(reqs[11]) + ["<FD TOUCH a"] + write_dump(next(r), hit=True)
    expected += read_dump(reqs[12]) + ["Value len is 1"] + write_dump(next(r))
    # The stat packets are not logged.
    expected += read_dump(reqs[13]) + ["<FD STATS settings"]
    while (s := next(r)).opcode == bp.STAT:
        pass
    expected += read_dump(reqs[14]) + write_dump(s)
    expected += read_dump(NOOP) + write_dump(noop_reply)
    assert lines == expected + CLOSED


def test_verbosity_1_stops_the_command_lines_and_2_brings_them_back(make_server):
    srv = make_server("-vv")

    def talk(c):
        assert c.request(b"get a\r\n") == b"END\r\n"
        assert c.request(b"verbosity 1\r\n") == b"OK\r\n"
        assert c.request(b"get a\r\n") == b"END\r\n"
        assert c.request(b"verbosity 2\r\n") == b"OK\r\n"
        assert c.request(b"get b\r\n") == b"END\r\n"

    assert session(srv, talk) == opened() + [
        "<FD get a", ">FD END",
        # The level drops before the reply is logged, and rises before it too.
        "<FD verbosity 1",
        ">FD OK",
        "<FD get b", ">FD END",
    ] + CLOSED


def test_v_logs_errors_and_warnings_only(make_server):
    srv = make_server("-v")
    with srv.connect() as c:
        assert c.roundtrip(b"get a\r\nset a 0 0 1\r\nx\r\ncache_memlimit 100\r\n") == (
            b"END\r\nSTORED\r\nOK\r\n"
        )
    with srv.connect() as c:
        bp.roundtrip(c, b"")
        fd = fd_of(srv, c)
        c.send(bp.get(b"k" * 251))
        assert bp.read_resp(c).status == bp.EINVAL
        c.assert_closed()
    text = wait_for(srv.log_path, f"close connection {fd}")
    assert "maxbytes adjusted to 100m\n" in text
    assert f"Protocol error (opcode 00), close connection {fd}\n" in text
    assert not re.search(r"^[<>]\d+ ", text, re.M), "no command lines at -v"


def test_vv_start_lines(make_server, target):
    srv = make_server("-vv")
    text = srv.log_text()
    slabs = [line for line in text.splitlines() if line.startswith("slab class")]
    assert len(slabs) == 39
    assert slabs[0] == "slab class   1: chunk size        96 perslab   10922"
    assert slabs[-1] == "slab class  39: chunk size    524288 perslab       2"
    assert re.search(r"^<\d+ server listening \(auto-negotiate\)$", text, re.M)


def test_protocol_forced_by_B_is_named_at_connect(make_server):
    srv = make_server("-vv", "-B", "ascii")

    def talk(c):
        assert c.roundtrip(b"") == b""

    assert session(srv, talk) == ["<FD new ascii client connection."] + VERSION * 2 + CLOSED
    assert re.search(r"^<\d+ server listening \(ascii\)$", srv.log_text(), re.M)


@pytest.mark.ratecached_only
def test_rate_limit_commands_log_in_the_same_style(make_server):
    srv = make_server("-vv")

    def talk(c):
        assert c.roundtrip(
            b"ratelimit k 10 1s\r\nratelimit k 10 1s noreply\r\nratelimit_all 1\r\nj 1 1m\r\n"
            b"ml k R10 W1s\r\nml k\r\n"
        ).startswith(b"ALLOWED")

    lines = session(srv, talk)
    # Decisions carry times: compare those lines up to their time fields.
    decision = re.compile(r"(>FD (?:NOREPLY )?(?:ALLOWED|DENIED) \d+ \d+) \d+ \d+$")
    lines = [m.group(1) if (m := decision.match(line)) else line for line in lines]
    assert lines == opened() + [
        "<FD ratelimit k 10 1s", ">FD ALLOWED 10 9",
        "<FD ratelimit k 10 1s noreply", ">FD NOREPLY ALLOWED 10 8",
        "<FD ratelimit_all 1", ">FD ALLOWED 1 0", ">FD ALLOWED 1 0", ">FD END",
        # ml logs as a meta command: its line, then errors only.
        "<FD ml k R10 W1s",
        "<FD ml k", ">FD CLIENT_ERROR bad command line format",
    ] + VERSION + CLOSED
    # The binary rate-limit opcode logs as GET does.
    request = bp.ratelimit(b"k", 10, 1000)
    replies = []

    def talk_binary(c):
        replies.extend(bp.roundtrip(c, request))

    lines = session(srv, talk_binary, binary=True)
    noop = read_dump(NOOP) + write_dump(bp.resp(bp.NOOP, opaque=0x5E5E5E5E))
    assert lines == opened("binary") + read_dump(request) + ["<FD RATELIMIT k"] + write_dump(
        replies[0]
    ) + noop + CLOSED


@pytest.mark.ratecached_only
def test_log_file_under_d_gets_the_lines_and_is_reopened_on_sighup(binary, tmp_path):
    from test_cli import connect_when_listening

    log, pidfile, port = tmp_path / "rc.log", tmp_path / "rc.pid", free_port()
    r = subprocess.run(
        [binary, *ROOT_ARGS, "-U", "0", "-p", str(port), "-l", "127.0.0.1", "-d",
         "-P", str(pidfile), "--log", str(log), "-vv"],
        capture_output=True, timeout=10,
    )
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + DEADLINE
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "no pid file"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        with connect_when_listening(port, deadline, "the daemon never listened") as s:
            s.sendall(b"get a\r\n")
            assert s.recv(100) == b"END\r\n"
            text = wait_for(log, " END\n")
            assert re.search(r"^<\d+ get a\n>\d+ END$", text, re.M), text
            assert "\x1b[" not in text
            # Log rotation: the file moves away, SIGHUP opens a new one at the path.
            log.rename(tmp_path / "rc.log.1")
            os.kill(pid, signal.SIGHUP)
            while not log.exists():
                assert time.monotonic() < deadline + DEADLINE, "not reopened"
                time.sleep(0.05)
            s.sendall(b"get b\r\n")
            assert s.recv(100) == b"END\r\n"
            assert re.search(r"^<\d+ get b$", wait_for(log, "get b"), re.M)
            assert "get b" not in (tmp_path / "rc.log.1").read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
