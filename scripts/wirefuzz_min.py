"""Reproduction and minimization for scripts/wire-fuzz.py: replays a difference on a fresh
pair of servers with as little history and as few bytes as still show it."""

from __future__ import annotations

import re
import time

from wirefuzz_check import HEADER, Ctx, explain
from wirefuzz_gen import Case, edit, literal_len


def _mask(line: bytes) -> str:
    return repr(re.sub(rb"\d+", b"9", line[:80]))


def _packets(data: bytes) -> list:
    out, pos = [], 0
    while len(data) - pos >= 24:
        f = HEADER.unpack_from(data, pos)
        out.append(f"op={f[1]:#04x} status={f[5]:#x}")
        pos += 24 + f[6]
    if pos < len(data):
        out.append(f"{len(data) - pos} stray bytes")
    return out


def signature(ctx: Ctx) -> tuple:
    """What kind of difference this is: the first differing reply unit (line, or binary
    packet opcode and status) of each server, digits masked, and how each case ended."""
    if ctx.diverged:
        return ("stores diverged",) + signature(ctx._replace(diverged=False))
    if ctx.binary:
        a, b = _packets(ctx.mc.norm), _packets(ctx.rc.norm)
    else:
        a = [_mask(x) for x in ctx.mc.norm.split(b"\n")]
        b = [_mask(x) for x in ctx.rc.norm.split(b"\n")]
    for x, y in zip(a, b):
        if x != y:
            return (x, y, ctx.mc.end, ctx.rc.end)
    longer = a[len(b)] if len(a) > len(b) else (b[len(a)] if len(b) > len(a) else "")
    return ("(more)" if len(a) > len(b) else "", "(more)" if len(b) > len(a) else "", longer,
            ctx.mc.end, ctx.rc.end)


def _without(case: Case, pos: int, n: int) -> Case:
    splits = sorted({s - n if s >= pos + n else min(s, pos) for s in case.splits})
    return Case(edit(case.pieces, pos, n, b""), [s for s in splits if s > 0], case.desc)


def minimize(make_pair, runner_cls, history: list, case: Case, sig: tuple,
             budget: int = 300, seconds: float = 120.0):
    """(history, case, ctx) of a smaller reproduction on fresh servers, or None when the
    difference does not show again."""
    pair = make_pair()
    runner = runner_cls(pair)
    deadline = time.monotonic() + seconds
    tries = [0]

    def spent() -> bool:
        return tries[0] >= budget or time.monotonic() > deadline

    def check(hist: list, c: Case):
        if spent():
            return None
        tries[0] += 1
        pair.flush()
        runner.reset()
        for j, h in enumerate(hist):
            runner.run(h, 2_000_000 + j)
        ctx, ok = runner.run(c, 3_000_000)
        if ok or pair.dead() or explain(ctx) is not None or signature(ctx) != sig:
            return None
        return ctx

    try:
        hist, ctx = None, None
        for n in sorted({0, 1, 4, 16, 64, len(history)}):
            if n <= len(history):
                ctx = check(history[len(history) - n :], case)
                if ctx is not None:
                    hist = history[len(history) - n :]
                    break
        if hist is None:
            return None
        size = max(1, len(hist) // 2)
        while size >= 1 and hist and not spent():  # drop runs of earlier cases, halving
            i = 0
            while i < len(hist) and not spent():
                got = check(hist[:i] + hist[i + size :], case)
                if got is not None:
                    hist, ctx = hist[:i] + hist[i + size :], got
                else:
                    i += size
            size //= 2
        for s in list(case.splits):  # drop split points
            c = Case(case.pieces, [x for x in case.splits if x != s], case.desc)
            got = check(hist, c)
            if got is not None:
                case, ctx = c, got
        size = literal_len(case.pieces) // 2
        while size >= 1 and not spent():  # delete byte ranges, halving their size
            pos = 0
            while pos < literal_len(case.pieces) and not spent():
                c = _without(case, pos, size)
                got = check(hist, c)
                if got is not None:
                    case, ctx = c, got
                else:
                    pos += size
            size //= 2
        return hist, case, ctx
    finally:
        pair.stop()
