"""Checks shared by the tests of `get`-form decisions from unchanged clients (test_scaling.py,
test_clients_lang.py): the verdict line a decision key's value carries, exact counts per
subject, and where a subject's state lives."""

from __future__ import annotations

import re

from helpers import Conn

PREFIX = "rl:"
SERVER_FLAGS = ("--ratelimit-prefix", PREFIX)
VERDICT = re.compile(r"^(ALLOWED|DENIED) (\d+) (\d+) (\d+) (\d+)$")


def verdict(value) -> tuple[str, int, int, int, int]:
    """`ALLOWED 5 4 0 720000` (bytes or str) -> ("ALLOWED", 5, 4, 0, 720000)."""
    text = value.decode() if isinstance(value, (bytes, bytearray)) else value
    m = VERDICT.match(text or "")
    assert m, f"not a verdict line: {value!r}"
    return (m.group(1), *(int(x) for x in m.groups()[1:]))


def assert_exact(values, capacity: int, allowed: int | None = None) -> None:
    """`values` are one subject's verdicts in the order they were decided, on a fresh subject
    of `capacity` tokens and a period long enough that nothing refills during the test:
    exactly `allowed` (default: capacity) ALLOWED with remaining capacity-1, capacity-2, ...
    and retry 0, then only DENIED with remaining 0 and a positive retry."""
    allowed = capacity if allowed is None else allowed
    got = [verdict(v) for v in values]
    assert len(got) > allowed, f"too few decisions to see a denial: {got}"
    for i, (word, cap, remaining, retry, reset) in enumerate(got):
        assert cap == capacity, got
        if i < allowed:
            assert (word, remaining, retry) == ("ALLOWED", capacity - 1 - i, 0), (i, got)
            assert reset > 0, got
        else:
            assert (word, remaining) == ("DENIED", 0), (i, got)
            assert retry > 0 and reset >= retry, got


def stats(server) -> dict[str, str]:
    with server.connect() as c:
        return c.stats()


def decisions_on(server) -> tuple[int, int]:
    """(allowed, denied) decisions a node made so far."""
    s = stats(server)
    return int(s["ratelimit_allowed"]), int(s["ratelimit_denied"])


def holders(servers, subject: str, limit: int, period: str, algorithm: str = "gcra") -> list:
    """The nodes holding a spent state of `subject` (a peek there is DENIED): a subject's
    decisions all went to one node exactly when this is a one-element list."""
    out = []
    for srv in servers:
        with Conn(srv.port) as c:
            line = c.request(f"ratelimit {subject} {limit} {period} {algorithm} peek\r\n".encode())
        if verdict(line.rstrip(b"\r\n"))[0] == "DENIED":
            out.append(srv)
    return out
