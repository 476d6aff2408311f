"""A Flask API rate limited by ratecached, answering 429 with the IETF RateLimit headers.

Run: RATECACHE=127.0.0.1:11211 flask --app docs/examples/flask_app.py run --with-threads

- One pooled client for the whole app (Flask serves requests on many threads; a plain
  pymemcache Client is one socket and must not be shared between them), with short connect
  and read timeouts so a slow or missing ratecached cannot hang a request.
- The subject is the `X-Api-Key` header (checked: 1 to 128 of `A-Z a-z 0-9 . _ : -`, else
  400) or, without one, the client address.
- Headers: `RateLimit-Policy` advertises the configured limit and window (not the reply's
  capacity, which is the burst); `RateLimit` the remaining requests and the seconds until the
  budget is whole again; `Retry-After` on 429.
- When ratecached cannot be reached, requests pass (fail-open: an outage of the limiter must
  not take the API down) and are logged; set RATE_FAIL=closed to answer 503 instead.
"""
import logging
import math
import os
import re

from flask import Flask, g, jsonify, request
from pymemcache.client.base import PooledClient

LIMIT = int(os.environ.get("RATE_LIMIT", "5"))
PERIOD_S = int(os.environ.get("RATE_PERIOD", "60"))
FAIL_CLOSED = os.environ.get("RATE_FAIL", "open") == "closed"
API_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")

log = logging.getLogger(__name__)


def make_app(server: str | None = None, fail_closed: bool = FAIL_CLOSED) -> Flask:
    host, port = (server or os.environ.get("RATECACHE", "127.0.0.1:11211")).rsplit(":", 1)
    cache = PooledClient(
        (host, int(port)),
        connect_timeout=0.2,
        timeout=0.2,
        max_pool_size=64,
        no_delay=True,
    )
    app = Flask(__name__)

    def refused(status, message):
        resp = jsonify(error=message)
        resp.status_code = status
        return resp

    @app.before_request
    def limit():
        key = request.headers.get("X-Api-Key")
        if key is not None and not API_KEY.fullmatch(key):
            return refused(400, "X-Api-Key: 1 to 128 of A-Z a-z 0-9 . _ : -")
        subject = f"key:{key}" if key is not None else f"ip:{request.remote_addr or 'unknown'}"
        try:
            reply = cache.raw_command(f"ratelimit api:{subject} {LIMIT} {PERIOD_S}s".encode())
            verdict, _capacity, remaining, retry_ms, reset_ms = reply.decode().split()
        except Exception as e:  # unreachable, timed out, or an answer we do not understand
            log.warning("ratelimit unavailable (%s): failing %s", e, "closed" if fail_closed else "open")
            return refused(503, "rate limiter unavailable") if fail_closed else None
        g.ratelimit = (int(remaining), int(reset_ms))
        if verdict == "DENIED":
            resp = refused(429, "rate limited")
            resp.headers["Retry-After"] = str(math.ceil(int(retry_ms) / 1000))
            return resp
        return None

    @app.after_request
    def headers(resp):
        if "ratelimit" in g:
            remaining, reset_ms = g.ratelimit
            resp.headers["RateLimit-Policy"] = f'"default";q={LIMIT};w={PERIOD_S}'
            resp.headers["RateLimit"] = f'"default";r={remaining};t={math.ceil(reset_ms / 1000)}'
        return resp

    @app.get("/hello")
    def hello():
        return jsonify(message="hello")

    return app


app = make_app() if __name__ != "__main__" and os.environ.get("RATECACHE") else None

if __name__ == "__main__":
    make_app().run(threaded=True)
