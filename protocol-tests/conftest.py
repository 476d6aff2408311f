"""Fixtures for the differential protocol tests.

Every test that uses `server`, `conn` or `make_server` runs once per target
(`memcached`, `ratecached`); pick targets with PROTOCOL_TARGETS=memcached,...
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers import Conn, Server, ServerStartError

REPO = Path(__file__).resolve().parent.parent
ALL_TARGETS = ("memcached", "ratecached")


def selected_targets() -> list[str]:
    raw = os.environ.get("PROTOCOL_TARGETS", ",".join(ALL_TARGETS))
    names = [t.strip() for t in raw.split(",") if t.strip()]
    bad = [t for t in names if t not in ALL_TARGETS]
    if bad or not names:
        raise pytest.UsageError(
            f"PROTOCOL_TARGETS={raw!r}: use a comma list of {', '.join(ALL_TARGETS)}"
        )
    return list(dict.fromkeys(names))


def binary_for(target: str) -> str:
    if target == "memcached":
        return os.environ.get("MEMCACHED_BIN") or shutil.which("memcached") or "/usr/bin/memcached"
    return os.environ.get("RATECACHED_BIN") or str(REPO / "target" / "release" / "ratecached")


def pytest_report_header(config):
    return [f"protocol targets: {', '.join(f'{t}={binary_for(t)}' for t in selected_targets())}"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "make_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fresh)
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target") if callspec else None
        if target is None:
            continue
        if target != "memcached" and item.get_closest_marker("memcached_only"):
            item.add_marker(pytest.mark.skip(reason="memcached-only behaviour"))
        if target != "ratecached" and item.get_closest_marker("ratecached_only"):
            item.add_marker(pytest.mark.skip(reason="ratecached-only behaviour"))


@pytest.fixture(scope="session", params=selected_targets())
def target(request) -> str:
    """The server implementation under test: 'memcached' or 'ratecached'."""
    return request.param


class _SharedServer:
    """The default server of one target, restarted if a test killed it."""

    def __init__(self, target: str, log_dir: Path):
        self.target = target
        self.log_dir = log_dir
        self.server: Server | None = None
        self.restarts = 0

    def get(self) -> Server:
        if self.server is not None and not self.server.alive():
            self.server.stop()
            self.server = None
            self.restarts += 1
        if self.server is None:
            self.server = _start(self.target, (), self.log_dir)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def _start(target: str, extra, log_dir: Path) -> Server:
    try:
        return Server(target, binary_for(target), extra, log_dir).start()
    except ServerStartError as e:
        # A selected target that cannot run is a failure, never a skip.
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def _shared_server(target, tmp_path_factory):
    holder = _SharedServer(target, tmp_path_factory.mktemp(f"{target}-shared"))
    yield holder
    holder.stop()


@pytest.fixture
def server(_shared_server) -> Server:
    """The session's default server for this target, emptied (flush_all)."""
    srv = _shared_server.get()
    with srv.connect() as c:
        assert c.request(b"flush_all\r\n") == b"OK\r\n"
    return srv


@pytest.fixture
def conn(server):
    """A fresh raw connection to the default server."""
    c = server.connect()
    yield c
    c.close()


@pytest.fixture
def make_server(target, tmp_path):
    """Factory: start a fresh server of this target with extra flags.

    `make_server("-m", "2")` -> Server; all are killed at teardown.
    """
    started: list[Server] = []

    def _make(*extra) -> Server:
        srv = _start(target, extra, tmp_path)
        started.append(srv)
        return srv

    yield _make
    for srv in started:
        srv.stop()


@pytest.fixture
def connect(server):
    """Open extra connections to the default server (closed at teardown)."""
    opened: list[Conn] = []

    def _connect() -> Conn:
        c = server.connect()
        opened.append(c)
        return c

    yield _connect
    for c in opened:
        c.close()


@pytest.fixture
def binary(target) -> str:
    """Path of this target's server binary (fails if it is missing)."""
    path = binary_for(target)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{target} binary not found or not executable: {path}", pytrace=False)
    return path
