#!/usr/bin/env python3
"""Differential, structure-aware fuzzing of ratecached against memcached 1.6.18 over TCP.

Both servers get the same sequence of cases (generated from a grammar of text, meta and
binary requests, sometimes mutated at the byte level); each case goes on a fresh connection
to each server in the same chunks, and the replies are compared after normalizing cas
uniques, times and stats values. A difference is either explained by a documented one
(wirefuzz_check.EXPLAINED) or reported, minimized, and makes the exit status 1.

    scripts/wire-fuzz.py --cases 300                 # a short pass (about 10 s)
    scripts/wire-fuzz.py --cases 25000 --save target/wire-fuzz
    scripts/wire-fuzz.py --replay target/wire-fuzz/diff-1.json
    scripts/wire-fuzz.py --ports 11211,11311 ...     # servers already running
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "protocol-tests"))

from helpers import Server  # noqa: E402
from wirefuzz_check import Ctx, Normalizer, explain, same  # noqa: E402
from wirefuzz_frame import completion  # noqa: E402
from wirefuzz_gen import LONG_OK, ODD_KEYS, POOL, Case, CasRef, Gen, literal_len, render, split  # noqa: E402
from wirefuzz_io import Exchange, sentinel  # noqa: E402
from wirefuzz_min import minimize, signature  # noqa: E402

NAMES = ("memcached", "ratecached")
PAUSE = 0.01  # between chunks, so both servers read them apart (even on a loaded machine)
QUIET = 0.15  # no byte for this long ends a case that has no sentinel reply
QUIET_RECHECK = 1.0  # before a difference involving 'quiet' is believed
HISTORY = 150  # cases between two flushes of both stores
# After each case: every key the grammar uses, on both servers ("key" for "key\0x", which
# memcached cuts at the NUL); no value (a value in flight holds a reference to its item, and
# memcached then stores an incr/decr result unpadded).
AUDIT_KEYS = POOL + [LONG_OK, b"key"] + [k for k in ODD_KEYS if b"\0" not in k]
AUDIT = b"".join(b"mg %s s f t c k\r\n" % k for k in AUDIT_KEYS) + b"mn\r\n"
AUDIT_VALUES = AUDIT.replace(b" k\r\n", b" v k\r\n")


def binaries() -> list:
    mc = os.environ.get("MEMCACHED_BIN", "/usr/bin/memcached")
    rc = os.environ.get("RATECACHED_BIN") or str(REPO / "target" / "release" / "ratecached")
    return [mc, rc]


class Pair:
    """The two servers under comparison: started here (fresh) or given by port."""

    def __init__(self, ports=None, log_dir: Path | None = None):
        self.servers: list = []
        if ports:
            self.ports = list(ports)
            return
        log_dir = log_dir or Path(tempfile.mkdtemp(prefix="wire-fuzz-"))
        for name, binary in zip(NAMES, binaries()):
            self.servers.append(Server(name, binary, (), log_dir).start())
        self.ports = [s.port for s in self.servers]

    def dead(self) -> list:
        return [s.target for s in self.servers if not s.alive()]

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def flush(self) -> None:
        ex = Exchange(self.ports)
        try:
            ex.send([[b"flush_all\r\n"]] * 2, [b""] * 2, [b"OK\r\n"] * 2, 0)
            ex.finish(1.0)
        finally:
            ex.close()


class Runner:
    """Runs cases on a pair with one normalizer per server."""

    def __init__(self, pair: Pair):
        self.pair = pair
        self.norms = [Normalizer(), Normalizer()]

    def reset(self) -> None:
        self.norms = [Normalizer(), Normalizer()]

    def run(self, case: Case, nonce: int):
        """Ctx of the case (bytes sent to memcached, outcomes) and whether they agree."""
        chunks = split(case.pieces, case.splits)
        per = [[render(c, n.last_cas) for c in chunks] for n in self.norms]
        whole = [b"".join(p) for p in per]
        tails, expects = zip(*(sentinel(w, nonce) for w in whole))
        binary = whole[0][:1] == b"\x80"
        ex = Exchange(self.pair.ports)
        held = False
        try:
            ex.send(per, list(tails), list(expects), PAUSE)
            outs = self._read(ex, binary)
            if self._pending(outs):
                # memcached may be holding replies until the request it is reading is
                # complete: complete it on both, then compare everything.
                filler = completion(binary, whole[0] + tails[0])
                if filler:
                    tail, expect = sentinel(b"\x80" if binary else b"\n", nonce + 10**9)
                    ex.send([[filler], [filler]], [tail, tail], [expect, expect], 0)
                    full = self._read(ex, binary)
                    held = same(*full)
                    if not held:
                        outs = full  # the whole exchange shows the real difference
        finally:
            ex.close()
        ctx = Ctx(whole[0] + tails[0], binary, outs[0], outs[1], held)
        if not same(*outs):
            return ctx, False
        # Equal replies can still leave different stores (noreply, quiet, side effects).
        audit = self.audit()
        if audit is not None:
            return audit._replace(sent=ctx.sent), False
        return ctx, True

    def audit(self):
        """None when both stores hold the same keys of the pool (size, flags, TTL, cas
        ordinal), else a Ctx whose outcomes are both servers' views, values included."""
        ex = Exchange(self.pair.ports)
        try:
            ex.send([[AUDIT], [AUDIT]], [b"", b""], [b"MN\r\n", b"MN\r\n"], 0)
            got = ex.finish(QUIET_RECHECK)
        finally:
            ex.close()
        outs = [n.outcome(d, False, e) for n, (d, e) in zip(self.norms, got)]
        if same(*outs):
            return None
        # Again with the values, to show (and explain) the difference.
        ex = Exchange(self.pair.ports)
        try:
            ex.send([[AUDIT_VALUES], [AUDIT_VALUES]], [b"", b""], [b"MN\r\n", b"MN\r\n"], 0)
            got = ex.finish(QUIET_RECHECK)
        finally:
            ex.close()
        outs = [n.outcome(d, False, e) for n, (d, e) in zip(self.norms, got)]
        return Ctx(AUDIT_VALUES, False, outs[0], outs[1], diverged=True)

    def _read(self, ex: Exchange, binary: bool) -> list:
        got = ex.finish(QUIET)
        outs = [n.outcome(d, binary, e) for n, (d, e) in zip(self.norms, got)]
        if not same(*outs) and any(o.end == "quiet" for o in outs):
            got = ex.drained(QUIET_RECHECK, 10.0)
            outs = [n.outcome(d, binary, e) for n, (d, e) in zip(self.norms, got)]
        return outs

    @staticmethod
    def _pending(outs: list) -> bool:
        mc, rc = outs
        return (
            not same(mc, rc)
            and mc.end == "quiet"
            and rc.end != "sentinel"
            and rc.norm.startswith(mc.norm)
        )


# -- saving and replaying ----------------------------------------------------------------
def case_to_json(c: Case) -> dict:
    pieces = [
        {"cas": p.key.decode("latin-1"), "binary": p.binary} if isinstance(p, CasRef) else p.decode("latin-1")
        for p in c.pieces
    ]
    return {"pieces": pieces, "splits": c.splits, "desc": c.desc}


def case_from_json(d: dict) -> Case:
    pieces = [
        CasRef(p["cas"].encode("latin-1"), p["binary"]) if isinstance(p, dict) else p.encode("latin-1")
        for p in d["pieces"]
    ]
    return Case(pieces, list(d["splits"]), d.get("desc", ""))


def describe(ctx: Ctx, note: str = "") -> str:
    lines = [note] if note else []
    if ctx.diverged:
        lines.append("both answered the case alike, but their stores differ after it "
                     "(the replies below are to `mg <key> s f t c v k` for every key)")
    lines.append(f"sent to memcached ({'binary' if ctx.binary else 'text'}, sentinel included):")
    lines.append(f"  {ctx.sent[:2000]!r}{' ...' if len(ctx.sent) > 2000 else ''}")
    for name, o in zip(NAMES, (ctx.mc, ctx.rc)):
        lines.append(f"{name} ({o.end}): {o.raw[:2000]!r}{' ...' if len(o.raw) > 2000 else ''}")
    return "\n".join(lines)


def save(dirpath: Path, n: int, history: list, case: Case, ctx: Ctx, meta: dict) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    path = dirpath / f"diff-{n}.json"
    doc = dict(meta, cases=[case_to_json(c) for c in history + [case]])
    path.write_text(json.dumps(doc, indent=1) + "\n")
    (dirpath / f"diff-{n}.txt").write_text(describe(ctx, json.dumps(meta)) + "\n")
    return path


def replay(path: Path, ports) -> int:
    doc = json.loads(path.read_text())
    cases = [case_from_json(d) for d in doc["cases"]]
    pair = Pair(ports)
    try:
        runner = Runner(pair)
        if ports:
            pair.flush()
        bad = 0
        for i, c in enumerate(cases):
            ctx, ok = runner.run(c, 1_000_000 + i)
            e = None if ok else explain(ctx)
            status = "same" if ok else (f"explained: {e.name}" if e else "DIFFERENT")
            print(f"case {i + 1}/{len(cases)}: {status}")
            print(describe(ctx))
            bad += (not ok) and e is None
        return 1 if bad else 0
    finally:
        pair.stop()


# -- the main loop -----------------------------------------------------------------------
def fuzz(args) -> int:
    start = time.monotonic()
    pair = Pair(args.ports)
    runner = Runner(pair)
    if args.ports:
        pair.flush()
    rng = random.Random(args.seed)
    gen = Gen(rng)
    explained: Counter = Counter()
    unexplained: list = []
    signatures: Counter = Counter()
    history: list = []  # cases since the last flush, for reproductions
    ends: Counter = Counter()
    done = 0
    try:
        for i in range(args.cases):
            if args.time and time.monotonic() - start > args.time:
                break
            case = gen.case()
            ctx, ok = runner.run(case, i + 1)
            done += 1
            ends[ctx.mc.end] += 1
            if args.verbose:
                print(f"[{i + 1}] {case.desc}: {'same' if ok else 'DIFF'} ({ctx.mc.end})")
            dead = pair.dead()
            if ok and not dead:
                history.append(case)
                if len(history) == HISTORY:
                    # Start both from empty now and then: a reproduction replays at most
                    # the cases since the last flush.
                    pair.flush()
                    runner.reset()
                    history = []
                continue
            e = None if dead else explain(ctx)
            if e is not None:
                explained[e.name] += 1
                if args.verbose:
                    print(describe(ctx, f"  explained: {e.name}"))
            else:
                sig = ("server died: " + ",".join(dead),) if dead else signature(ctx)
                signatures[sig] += 1
                print(f"\n=== unexplained difference at case {i + 1} ({case.desc}) ===")
                print(describe(ctx))
                if signatures[sig] == 1 and len(unexplained) < args.max_reports:
                    unexplained.append(report(args, i + 1, history, case, ctx, sig, dead))
                if dead:
                    print(f"server died: {dead}; stopping")
                    break
            # Either way the stores may have diverged: start both from empty.
            pair.flush()
            runner.reset()
            history = []
    finally:
        pair.stop()
    elapsed = time.monotonic() - start
    print(f"\nwire-fuzz: seed {args.seed}, {done} cases in {elapsed:.1f} s "
          f"(memcached ends: {dict(ends)})")
    for name, n in explained.most_common():
        print(f"  explained  {n:6d}  {name}")
    for sig, n in signatures.most_common():
        print(f"  UNEXPLAINED {n:5d}  {sig}")
    for line in unexplained:
        print(f"  reproduction: {line}")
    total = sum(signatures.values())
    print(f"wire-fuzz: {total} unexplained difference(s), {sum(explained.values())} explained")
    return 1 if total else 0


def report(args, index: int, history: list, case: Case, ctx: Ctx, sig, dead) -> str:
    meta = {"seed": args.seed, "case": index, "signature": list(sig)}
    if dead or args.no_minimize:
        cases, mctx = history, ctx
    else:
        print("minimizing ...", flush=True)
        found = minimize(lambda: Pair(None), Runner, history, case, sig)
        if found is None:
            print("  not reproduced on fresh servers; saving the case with its history")
            cases, mctx = history, ctx
        else:
            cases, case, mctx = found
            print(describe(mctx, f"minimal reproduction ({len(cases)} earlier case(s), "
                                 f"{literal_len(case.pieces)} bytes):"))
    if args.save:
        path = save(Path(args.save), index, cases, case, mctx, meta)
        return f"case {index}: {path}"
    return f"case {index}: {mctx.sent[:300]!r}"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="cases to run (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--time", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--verbose", action="store_true", help="print every case")
    ap.add_argument("--save", metavar="DIR", help="write each unexplained difference as diff-N.json/.txt")
    ap.add_argument("--replay", metavar="FILE", help="run the cases of a saved diff-N.json")
    ap.add_argument("--ports", help="MEMCACHED_PORT,RATECACHED_PORT of running servers")
    ap.add_argument("--max-reports", type=int, default=10, help="distinct differences to minimize")
    ap.add_argument("--no-minimize", action="store_true", help="report differences as found")
    ap.add_argument("--self-test", action="store_true", help="check the script's own parts, no servers")
    args = ap.parse_args(argv)
    if args.ports:
        args.ports = [int(p) for p in args.ports.split(",")]
        if len(args.ports) != 2:
            ap.error("--ports wants two ports: memcached,ratecached")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.self_test:
        import wirefuzz_selftest

        return wirefuzz_selftest.main()
    if args.replay:
        return replay(Path(args.replay), args.ports)
    return fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
