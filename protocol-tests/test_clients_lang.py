"""Rate limiting from unchanged client libraries of five languages: each makes decisions with its
plain `get` on a decision key (`--ratelimit-prefix rl:`) and gets exact counts, in the protocol
it speaks (text, binary). The small programs are in protocol-tests/clients/; docs/ratelimit.md
("From any client library") has the same calls as copy-paste snippets.

| client | language | protocol |
| --- | --- | --- |
| pymemcache | Python | text `get` |
| pylibmc | Python (libmemcached) | text `get`, binary GET |
| gomemcache | Go | text `gets` |
| memjs | Node | binary GET |
| Memcached | PHP (libmemcached) | text `get`, binary GET |
| libmemcached | C | text `get`, binary GET |
| memccat | shell (libmemcached) | text `get` |

scripts/test.sh installs the clients (Debian packages as root, memjs from npm into
target/node-clients, pylibmc from PyPI); a client that is not installed is skipped with the
reason, never failed."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from decisions import PREFIX, SERVER_FLAGS, assert_exact, decisions_on, verdict
from helpers import HOST

pytestmark = pytest.mark.ratecached_only

HERE = Path(__file__).resolve().parent
CLIENTS = HERE / "clients"
REPO = HERE.parent
NODE_MODULES = Path(os.environ.get("MEMJS_NODE_PATH", REPO / "target" / "node-clients" / "node_modules"))
GOPATH = Path("/usr/share/gocode")
RUN_TIMEOUT = 60


class Unavailable(Exception):
    """The client is not installed here (a skip, with the reason)."""


def run(argv, env=None) -> list[tuple[str, str]]:
    """Run a client program; its lines are `KEY VALUE` (or `KEY MISS`, `KEY ERROR ...`)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    assert done.returncode == 0, (argv, done.returncode, done.stdout, done.stderr)
    return [tuple(line.split(" ", 1)) for line in done.stdout.splitlines()]


@functools.lru_cache(maxsize=None)
def build(name: str, out_dir: str) -> str:
    """Compile a client program once per session; raises Unavailable without its toolchain."""
    out = str(Path(out_dir) / name)
    if name == "gomemcache":
        if shutil.which("go") is None:
            raise Unavailable("gomemcache: `go` not found (Debian golang-go; scripts/test.sh installs it as root)")
        if not (GOPATH / "src/github.com/bradfitz/gomemcache/memcache").is_dir():
            raise Unavailable("gomemcache: golang-github-bradfitz-gomemcache-dev not installed")
        env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), GOFLAGS="",
                   GOCACHE=str(REPO / "target" / "go-build-cache"))
        argv = ["go", "build", "-o", out, str(CLIENTS / "gomemcache_decide.go")]
    else:
        if shutil.which("cc") is None or shutil.which("pkg-config") is None:
            raise Unavailable("libmemcached (C): no cc or pkg-config")
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmemcached"],
                               capture_output=True, text=True)
        if flags.returncode != 0:
            raise Unavailable("libmemcached (C): libmemcached-dev not installed")
        argv = ["cc", "-O1", "-o", out, str(CLIENTS / "libmemcached_decide.c"), *flags.stdout.split()]
        env = None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return out


def pylibmc_module():
    try:
        import pylibmc
    except ImportError as e:
        raise Unavailable(f"pylibmc not installed ({e})") from e
    return pylibmc


def decide(lib: str, port: int, count: int, keys: list[str], out_dir: str) -> dict[str, list]:
    """`count` rounds of one plain `get` per key through client `lib`: {key: [values]}."""
    server = f"{HOST}:{port}"
    lines: list[tuple[str, str]] = []
    if lib == "pymemcache":
        from pymemcache.client.base import Client

        c = Client((HOST, port), timeout=5, connect_timeout=5)
        for _ in range(count):
            for k in keys:
                value = c.get(k)
                assert value is not None, k
                lines.append((k, value.decode()))
        c.close()
    elif lib.startswith("pylibmc"):
        mc = pylibmc_module().Client([server], binary=lib.endswith("binary"))
        for _ in range(count):
            for k in keys:
                value = mc.get(k)
                assert value is not None, k
                lines.append((k, value.decode() if isinstance(value, bytes) else value))
    elif lib == "gomemcache":
        lines = run([build("gomemcache", out_dir), server, str(count), *keys])
    elif lib == "memjs":
        if shutil.which("node") is None:
            raise Unavailable("memjs: `node` not found")
        if not (NODE_MODULES / "memjs").is_dir():
            raise Unavailable(f"memjs: not installed in {NODE_MODULES} (scripts/test.sh installs it from npm)")
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        lines = run(["node", str(CLIENTS / "memjs_decide.js"), server, str(count), *keys], env)
    elif lib.startswith("php"):
        if shutil.which("php") is None:
            raise Unavailable("PHP Memcached: `php` not found (Debian php-cli; scripts/test.sh installs it as root)")
        probe = subprocess.run(["php", "-r", 'exit(class_exists("Memcached") ? 0 : 1);'], capture_output=True)
        if probe.returncode != 0:
            raise Unavailable("PHP Memcached: the memcached extension is not loaded (Debian php-memcached)")
        mode = "binary" if lib.endswith("binary") else "text"
        lines = run(["php", str(CLIENTS / "memcached_decide.php"), server, mode, str(count), *keys])
    elif lib.startswith("libmemcached"):
        config = f"--SERVER={server}" + (" --BINARY-PROTOCOL" if lib.endswith("binary") else "")
        lines = run([build("libmemcached", out_dir), config, str(count), *keys])
    elif lib == "memccat":
        if shutil.which("memccat") is None:
            raise Unavailable("memccat: libmemcached-tools not installed")
        for _ in range(count):
            for k in keys:
                done = subprocess.run(["memccat", f"--servers={server}", k],
                                      capture_output=True, text=True, timeout=RUN_TIMEOUT)
                assert done.returncode == 0, (k, done.stdout, done.stderr)  # 1 = a miss
                lines.append((k, done.stdout.removesuffix("\n")))
    else:
        raise AssertionError(lib)
    out: dict[str, list] = {k: [] for k in keys}
    for key, value in lines:
        assert key in out, (lib, key, value)
        out[key].append(value)
    return out


LIBS = [
    "pymemcache",
    "pylibmc-text",
    "pylibmc-binary",
    "gomemcache",
    "memjs",
    "php-text",
    "php-binary",
    "libmemcached-text",
    "libmemcached-binary",
    "memccat",
]


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("lang-clients"))


@pytest.mark.parametrize("lib", LIBS)
def test_plain_get_decides_exactly(lib, make_server, out_dir):
    srv = make_server(*SERVER_FLAGS)
    subject = lib.replace("-", "_")
    a = f"{PREFIX}5/1h/{subject}:a"  # gcra, 5 per hour
    b = f"{PREFIX}3/1h/fixed/{subject}:b"  # fixed window, 3 per hour
    try:
        got = decide(lib, srv.port, 7, [a, b], out_dir)
    except Unavailable as e:
        pytest.skip(str(e))
    # printing the value turns bytes into lines: a value carrying "\r\n" would show here
    assert all(isinstance(v, str) and "\n" not in v for vs in got.values() for v in vs), got
    assert_exact(got[a], 5)
    assert_exact(got[b], 3)
    assert decisions_on(srv) == (5 + 3, 2 + 4)

    with srv.connect() as c:
        # the client's decisions and the raw command share the subject's state ...
        assert verdict(c.request(f"ratelimit {subject}:a 5 1h\r\n".encode()).rstrip())[:3] == ("DENIED", 5, 0)
        # ... and deleting the decision key resets it
        assert c.request(f"delete {a}\r\n".encode()) == b"DELETED\r\n"
    again = decide(lib, srv.port, 2, [a], out_dir)
    assert [verdict(v)[:3] for v in again[a]] == [("ALLOWED", 5, 4), ("ALLOWED", 5, 3)]
