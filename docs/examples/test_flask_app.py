"""The Flask example against a real ratecached: 429 with RateLimit headers once the limit is
spent, exact counts from 16 threads through a threaded server, subjects checked, and what it
does when ratecached is unreachable."""
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from flask_app import LIMIT, PERIOD_S, make_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

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
        assert r.headers["RateLimit-Policy"] == f'"default";q={LIMIT};w={PERIOD_S}'
        assert r.headers["RateLimit"].startswith(f'"default";r={LIMIT - 1 - i};t=')
    r = client.get("/hello", headers={"X-Api-Key": "k1"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["RateLimit"].startswith('"default";r=0;t=')
    # Another subject is not affected.
    assert client.get("/hello", headers={"X-Api-Key": "k2"}).status_code == 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sixteen_threads_through_a_threaded_server_get_exactly_the_limit(server):
    http = make_server("127.0.0.1", 0, make_app(server), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{http.server_port}/hello"

    def call(i):
        req = urllib.request.Request(url, headers={"X-Api-Key": f"t{i % 4}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return f"t{i % 4}", r.status
        except urllib.error.HTTPError as e:
            return f"t{i % 4}", e.code

    try:
        with ThreadPoolExecutor(16) as pool:
            results = Counter(pool.map(call, range(200)))
    finally:
        http.shutdown()
        thread.join(timeout=10)
    for subject in ["t0", "t1", "t2", "t3"]:
        assert results[(subject, 200)] == LIMIT, results
        assert results[(subject, 429)] == 50 - LIMIT, results


def test_bad_api_keys_are_refused_not_crashed_on(server):
    client = make_app(server).test_client()
    for key in ["has space", "k" * 300, "", "\u00e9t\u00e9"]:
        r = client.get("/hello", headers={"X-Api-Key": key})
        assert r.status_code == 400, key
    assert client.get("/hello", headers={"X-Api-Key": "ok:key-1.a_b"}).status_code == 200


def test_an_unreachable_limiter_fails_open_or_closed_as_chosen():
    nobody = f"127.0.0.1:{free_port()}"
    r = make_app(nobody, fail_closed=False).test_client().get("/hello")
    assert r.status_code == 200 and "RateLimit" not in r.headers
    r = make_app(nobody, fail_closed=True).test_client().get("/hello")
    assert r.status_code == 503
