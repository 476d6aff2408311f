"""The Flask example against a real ratecached: 429 with RateLimit headers once the limit is spent."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from flask_app import LIMIT, make_app  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    binary = os.environ.get("RATECACHED_BIN", str(REPO / "target" / "release" / "ratecached"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        args += ["-u", "root"]
    proc = subprocess.Popen(args)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("ratecached did not start")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def test_limit_then_429_with_headers(server):
    client = make_app(server).test_client()
    for i in range(LIMIT):
        r = client.get("/hello", headers={"X-Api-Key": "k1"})
        assert r.status_code == 200
        assert r.headers["RateLimit-Policy"] == f'"default";q={LIMIT};w=60'
        assert r.headers["RateLimit"].startswith(f'"default";r={LIMIT - 1 - i};t=')
    r = client.get("/hello", headers={"X-Api-Key": "k1"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["RateLimit"].startswith('"default";r=0;t=')
    # Another subject is not affected.
    assert client.get("/hello", headers={"X-Api-Key": "k2"}).status_code == 200
