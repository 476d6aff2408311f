"""A Flask API rate limited by ratecached, answering 429 with the RateLimit headers.

Run: RATECACHE=127.0.0.1:11211 flask --app docs/examples/flask_app.py run
"""
import math
import os

from flask import Flask, g, jsonify, request
from pymemcache.client.base import Client

LIMIT = int(os.environ.get("RATE_LIMIT", "5"))
PERIOD_S = int(os.environ.get("RATE_PERIOD", "60"))


def make_app(server: str | None = None) -> Flask:
    host, port = (server or os.environ.get("RATECACHE", "127.0.0.1:11211")).rsplit(":", 1)
    cache = Client((host, int(port)))
    app = Flask(__name__)

    @app.before_request
    def limit():
        subject = request.headers.get("X-Api-Key", request.remote_addr or "anonymous")
        reply = cache.raw_command(f"ratelimit api:{subject} {LIMIT} {PERIOD_S}s".encode())
        verdict, cap, remaining, retry_ms, reset_ms = reply.decode().split()
        g.ratelimit = (int(cap), int(remaining), int(reset_ms))
        if verdict == "DENIED":
            resp = jsonify(error="rate limited")
            resp.status_code = 429
            resp.headers["Retry-After"] = str(math.ceil(int(retry_ms) / 1000))
            return resp
        return None

    @app.after_request
    def headers(resp):
        if "ratelimit" in g:
            cap, remaining, reset_ms = g.ratelimit
            resp.headers["RateLimit-Policy"] = f'"default";q={cap};w={PERIOD_S}'
            resp.headers["RateLimit"] = f'"default";r={remaining};t={math.ceil(reset_ms / 1000)}'
        return resp

    @app.get("/hello")
    def hello():
        return jsonify(message="hello")

    return app


app = make_app() if __name__ != "__main__" and os.environ.get("RATECACHE") else None

if __name__ == "__main__":
    make_app().run()
