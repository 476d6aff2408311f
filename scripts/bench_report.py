#!/usr/bin/env python3
"""Writes docs/benchmarks.md from the outputs of one run of scripts/bench-compare.sh.

    scripts/bench_report.py OUT_DIR DOC

OUT_DIR holds the run: `run.json` (the machine, versions and settings, written by
bench-compare.sh), per case and round the load generator's NAME.json, NAME.md, NAME.png and
NAME.cmd, and for the memtier cases NAME.json written by scripts/bench_memtier.py. DOC is
rewritten; its hand-written blocks (between the `notes` and `changes` markers) are kept.
Nothing is measured here, so a run can be rendered again (`BENCH_REPORT_ONLY=DIR
scripts/bench-compare.sh`).
"""
import json
import os
import shlex
import shutil
import sys

if len(sys.argv) != 3:
    sys.exit(__doc__)
out, doc = sys.argv[1], sys.argv[2]
plots = os.path.join(os.path.dirname(doc), "bench")
os.makedirs(plots, exist_ok=True)
with open(os.path.join(out, "run.json")) as f:
    run = json.load(f)
# Paths as the run wrote them into its commands (the run may have been copied since).
run_out, run_root = run["out"], run["root"]


def load_file(name):
    p = os.path.join(out, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def rounds(name):
    """The reports of a case: one per round (NAME.r1, NAME.r2, ...) or the single NAME."""
    reps, r = [], 1
    while os.path.exists(os.path.join(out, f"{name}.r{r}.json")):
        reps.append((f"{name}.r{r}", load_file(f"{name}.r{r}")))
        r += 1
    if not reps and load_file(name):
        reps.append((name, load_file(name)))
    return reps


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def res(rep, name):
    if rep:
        for r in rep["results"]:
            if r["name"] == name:
                return r
    return None


def tput(r): return r["ops_per_sec"] if r else None
def p99(r): return r["latency_us"]["p99"] if r else None
def cpu(r): return r.get("server_cpu_us_per_op") if r else None


# The round each case's table, plot and command come from: the one with the median of the
# case's headline ratio (ratecached over the first other server; CPU per op at pipeline 1).
def headline(name, rep):
    if not rep or len(rep["results"]) < 2:
        return 0
    a, b = rep["results"][0], rep["results"][1]
    if name in ("getset-p1", "ratelimit"):
        return ratio(cpu(a), cpu(b)) or 0
    return ratio(tput(a), tput(b)) or 0


shown = {}


def load(name):
    """The shown round's report of a case."""
    reps = rounds(name)
    if not reps:
        return None
    order = sorted(range(len(reps)), key=lambda i: headline(name, reps[i][1]))
    i = order[len(order) // 2]
    shown[name] = (i + 1, len(reps), reps[i][0])
    return reps[i][1]


def per_round(name, f):
    """f(report) for every round of a case, the median, and the rounds as text."""
    vals = [f(rep) for _, rep in rounds(name)]
    m = median(vals)
    txt = "" if len(vals) < 2 else " (rounds: " + ", ".join(fmt(v) for v in vals) + ")"
    return m, txt


def between(a, b, f):
    """Per round: f(a's result) / f(b's result)."""
    return lambda rep: ratio(f(res(rep, a)), f(res(rep, b)))


# --- memtier_benchmark: one result file per server, protocol and round -------------------
MEMTIER_SERVERS = ("ratecached", "memcached")


def memtier_rounds(proto):
    """[(round, {server: result})] of the memtier case of one protocol."""
    out_rounds, r = [], 1
    while True:
        found = {s: load_file(f"memtier-{proto}.{s}.r{r}") for s in MEMTIER_SERVERS}
        if not any(found.values()):
            break
        out_rounds.append((r, found))
        r += 1
    return out_rounds


def memtier_as_report(found):
    """A memtier round shaped like a ratecache-bench report (for `between`)."""
    return {"results": [dict(v) for v in found.values() if v]}


summary = []


def row(case, other, measured):
    summary.append((case, other, measured))


for name, label in (("getset-p16", "get/set 1:10, pipeline 16, text"),
                    ("getset-p16-binary", "get/set 1:10, pipeline 16, binary")):
    if rounds(name):
        t, tr = per_round(name, between("ratecached", "memcached", tput))
        l, lr = per_round(name, between("ratecached", "memcached", p99))
        row(label, "memcached", f"{fmt(t)}x ops/s{tr}, p99 {fmt(l)}x{lr}")
if rounds("getset-p1"):
    c, cr = per_round("getset-p1", between("ratecached", "memcached", cpu))
    l, lr = per_round("getset-p1", between("ratecached", "memcached", p99))
    row("get/set 1:10, pipeline 1, text", "memcached", f"server CPU per op {fmt(c)}x{cr}, p99 {fmt(l)}x{lr}")
for name, label in (("ratelimit", "pipeline 1"), ("ratelimit-p16", "pipeline 16")):
    if not rounds(name):
        continue
    for other, what in (("redis-fixed-window", "Redis fixed-window Lua script (EVALSHA)"),
                        ("redis-sliding-log", "Redis sliding-log Lua script (EVALSHA)")):
        t, tr = per_round(name, between("ratecached", other, tput))
        l, lr = per_round(name, between("ratecached", other, p99))
        row(f"rate limit, 100k subjects, {label}", what, f"{fmt(t)}x ops/s{tr}, p99 {fmt(l)}x{lr}")
    c, cr = per_round(name, between("ratecached", "memcached-ma", cpu))
    row(f"rate limit, 100k subjects, {label}", "memcached's counter `ma key N60 J1 v t`",
        f"server CPU per decision {fmt(c)}x{cr}")
if rounds("ratelimit-hot"):
    t, tr = per_round("ratelimit-hot", between("ratecached", "redis-fixed-window", tput))
    l, lr = per_round("ratelimit-hot", between("ratecached", "redis-fixed-window", p99))
    row("one hot subject, pipeline 16, ratecached `-t 2`", "Redis fixed-window script on one key",
        f"{fmt(t)}x ops/s{tr}, p99 {fmt(l)}x{lr}")
mem = load("memory")
rc = res(mem, "ratecached")
if rc:
    others = ", ".join(f"{n}: {fmt(res(mem, n).get('rss_bytes_per_item'), 1)} B"
                       for n in ("memcached", "redis") if res(mem, n))
    row("memory per stored counter (RSS growth over 1,000,000)", "memcached, Redis",
        f"{fmt(rc.get('rss_bytes_per_item'), 1)} B/item ({others})")
rm = load("ratelimit-memory")
rc = res(rm, "ratecached")
if rc:
    others = ", ".join(f"{n}: {fmt(res(rm, n).get('rss_bytes_per_item'), 1)} B"
                       for n in ("redis-fixed-window", "redis-fill") if res(rm, n))
    row("memory per rate-limit subject (RSS growth over 1,000,000 GCRA subjects)", "Redis",
        f"{fmt(rc.get('rss_bytes_per_item'), 1)} B/subject ({others})")
exp = load("expiry")
rc = res(exp, "ratecached")
e = rc.get("expiry") if rc else None
if e is not None:
    z = e.get("zero_after_load_ms")
    meas = (f"all reclaimed {z / 1000:.2f} s after the load ended (TTL {e['ttl_s']} s)"
            if z is not None else
            f"{e.get('items_at_end', 0) - e.get('items_before_load', 0)} items left "
            f"{e['bound_s']:.0f} s after the load")
    others = []
    for n in ("memcached", "redis"):
        oz = ((res(exp, n) or {}).get("expiry") or {}).get("zero_after_load_ms")
        others.append(f"{n}: " + ("not all" if oz is None else f"{oz / 1000:.2f} s"))
    row("expiry: 1,000,000 keys with a 2 s TTL, never read", "memcached, Redis",
        f"{meas} ({', '.join(others)})")
for proto in ("text", "binary"):
    mr = memtier_rounds(proto)
    if mr:
        reps = [memtier_as_report(f) for _, f in mr]
        vals_t = [between("ratecached", "memcached", tput)(r) for r in reps]
        vals_c = [between("ratecached", "memcached", cpu)(r) for r in reps]
        rt = "" if len(reps) < 2 else " (rounds: " + ", ".join(fmt(v) for v in vals_t) + ")"
        rcpu = "" if len(reps) < 2 else " (rounds: " + ", ".join(fmt(v) for v in vals_c) + ")"
        row(f"memtier_benchmark get/set 1:10, pipeline 16, {proto}", "memcached",
            f"{fmt(median(vals_t))}x ops/s{rt}, server CPU per op {fmt(median(vals_c))}x{rcpu}")


def bench_cmd(name):
    """The command of a case's shown round, as a user would type it."""
    if name not in shown:
        return None
    p = os.path.join(out, shown[name][2] + ".cmd")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        args = [a for a in f.read().split("\0") if a]
    drop = {"--json", "--markdown"}
    keep, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in drop:
            skip = True
        else:
            keep.append(a.replace(run_out + "/", plots + "/")
                        .replace(shown[name][2] + ".png", name + ".png")
                        .replace(run_root + "/", ""))
    return shlex.join(keep)


def memtier_cmd(result):
    """A memtier run's command without the report file, memtier named by its program name."""
    keep = []
    for a in result["command"]:
        if a.startswith("--json-out-file="):
            continue
        if a.endswith("/memtier_benchmark"):
            a = "memtier_benchmark"
        keep.append(a)
    return shlex.join(keep)


cases = [
    ("getset-p1", "(1) get/set 1:10, pipeline 1, text",
     "50 connections, each with one request in flight, send 1 `set` for every 10 `get`s over "
     "100,000 keys (20-byte keys, 32-byte values, all stored before the measurement, so every "
     "`get` hits). At this depth the load generator's one core limits the ops/s of every "
     "server, so compare server CPU per op and latency."),
    ("getset-p16", "(2) get/set 1:10, pipeline 16, text",
     "The same requests with 16 in flight per connection (800 in all): the server's core is "
     "the limit, and ops/s compare the servers."),
    ("getset-p16-binary", "(2b) get/set 1:10, pipeline 16, binary",
     "Case 2 in memcached's binary protocol (Redis has none)."),
    ("incr", "(3) incr on 100k counters",
     "`incr` (Redis: INCR) on 100,000 counters chosen at random, 50 connections, pipeline 1."),
    ("ratelimit", "(4) rate limit on 100k subjects, pipeline 1",
     "One rate-limit decision per request on 100,000 subjects chosen at random, each allowed "
     "100 per second (ratecached: `ratelimit <key> 100 1s`, GCRA), 50 connections, pipeline 1; "
     "the load stays under every limit, so every decision allows. Redis runs the two usual Lua "
     "limiters through EVALSHA: the fixed window (INCR + PEXPIRE) and the sliding log (a sorted "
     "set); docs/migrating-from-redis.md shows both. memcached-ma is memcached's own one-round-trip "
     "counter `ma <key> N60 J1 v t`: a counter with a TTL, not a limiter, as a floor for what a "
     "decision over the network can cost."),
    ("ratelimit-p16", "(4b) rate limit on 100k subjects, pipeline 16",
     "Case 4 with 16 requests in flight per connection: the servers, not the load generator, "
     "are the limit."),
    ("memory", "(5) memory: 1,000,000 counters",
     "1,000,000 `set`s of distinct keys (20-byte keys, 8-byte values), then the growth of the "
     "server's resident memory (RSS) divided by the items it holds."),
    ("expiry", "(6) expiry: 1,000,000 keys, 2 s TTL",
     "1,000,000 keys stored with a 2 s TTL and never read again; the item count is then polled "
     "until it reaches 0: how soon memory held by expired keys comes back without any read."),
    ("ratelimit-memory", "(7) rate-limit memory: 1,000,000 GCRA subjects",
     "One decision (100 per hour) on each of 1,000,000 new subjects with 20-byte keys, then the "
     "RSS growth divided by the subjects held (ratecached's `ratelimit_keys`, Redis' DBSIZE). "
     "Redis runs the fixed-window script; redis-fill is a plain Redis fill of as many keys, for "
     "scale."),
    ("ratelimit-hot", "(8) one hot subject, pipeline 16, ratecached -t 2",
     "Every request decides on the same subject (100 per second, so almost every decision "
     "denies), 50 connections, pipeline 16; ratecached runs two worker threads on its one core, "
     "beside the Redis fixed-window script on one key: the cost of many clients on one limit."),
]

L = []
w = L.append
w("# Benchmarks: ratecached beside memcached and Redis")
w("")
w("How fast ratecached serves cache and rate-limit traffic next to memcached 1.6.18 and Redis "
  "7 on the same machine, as measured by `scripts/bench-compare.sh`. Every figure on this page "
  "comes from one run of that script, on the machine described under *How these figures were "
  "taken*, and each result shows the command that produced it. Ratios are ratecached over the "
  "other server in the same run, so they carry over to other machines better than the "
  "absolute ops/s do; to measure your own machine, see *Reproducing*.")
w("")
w("This page is written by the script: a rerun replaces the figures and keeps the two sections "
  "written by hand (*Why the numbers are what they are*, *Changes*).")
w("")
w("## Summary")
w("")
w("A ratio above 1 means more ops/s for ratecached; below 1, lower latency or less CPU. Where a "
  "case ran several rounds, the ratio is their median and each round is listed.")
w("")
w("| workload | ratecached compared with | measured |")
w("| --- | --- | --- |")
for case, other, meas in summary:
    w(f"| {case} | {other} | {meas} |")
w("")
w("## How these figures were taken")
w("")
w(f"- CPU: {run['cpu_model']}, `nproc` = {run['nproc']}; kernel {run['kernel']}; "
  f"load average before the run: {run['load_before']}")
w(f"- {run['ratecached']}; {run['memcached_version']}; {run['redis_version']}"
  + (f"; {run['memtier_version']}" if run.get("memtier_version") else ""))
w(f"- servers pinned to CPUs {run['server_cpus']} (`taskset`), the load generator to CPUs "
  f"{run['gen_cpus']}; ratecached and memcached with `-t {run['threads']}` "
  f"(case 8: ratecached `-t 2`; Redis executes commands on one thread); all on 127.0.0.1")
w(f"- {run['duration']} s per server, case and round; {run['rounds']} "
  f"round{'' if run['rounds'] == 1 else 's'} of every "
  "throughput case, the servers taking turns round after round; one fill for memory and "
  f"expiry; the whole script took {run['elapsed_s']} s")
w("- load generator: `ratecache-bench` (bench/), closed loop over tokio: each connection keeps "
  "`pipeline` requests in flight; every reply is checked (a wrong value, an error line, a "
  "malformed verdict counts in *errors*); latency from write to checked reply, in "
  "hdrhistogram; *CPU µs/op* is the server's utime+stime from /proc/PID/stat over the "
  "measured phase divided by the requests, *server CPU* that time over the wall time "
  "(100% = one core busy)")
w("- at pipeline 1 the load generator's core is the bottleneck (its own CPU µs/op, listed "
  "under each table, times ops/s is about 100%), so there ops/s are much the same for every "
  "server and the comparison is in server CPU µs/op and latency; at pipeline 16 the server "
  "is the bottleneck and ops/s compare the servers")
busy = []
for name, _, _ in cases:
    rep = load(name)
    if rep:
        worst = max((r.get("other_cpu_share") or 0) for r in rep["results"])
        if worst > 0.10:
            busy.append(f"{name} (up to {100 * worst:.0f}% of a core)")
for proto in ("text", "binary"):
    for rnd, found in memtier_rounds(proto):
        worst = max((v.get("other_cpu_share") or 0) for v in found.values() if v)
        if worst > 0.10:
            busy.append(f"memtier-{proto} round {rnd} (up to {100 * worst:.0f}% of a core)")
if busy:
    w("- **disturbed:** other processes of the machine used CPU during " + ", ".join(busy)
      + "; those cases' numbers are less reliable: run the script again on a quiet machine")
else:
    w("- other processes of the machine used less than 10% of a core during every case")
if run.get("failed"):
    w(f"- **cases that reported errors or failed:** {', '.join(run['failed'])}")
w("")
w("## Results")
for name, title, what in cases:
    rep = load(name)
    if rep is None:
        continue
    r, n, base = shown[name]
    p = os.path.join(out, base + ".md")
    if not os.path.exists(p):
        continue
    if os.path.exists(os.path.join(out, base + ".png")):
        shutil.copyfile(os.path.join(out, base + ".png"), os.path.join(plots, name + ".png"))
    w("")
    w(f"### {title}")
    w("")
    w(what)
    w("")
    if n > 1:
        w(f"Round {r} of {n}: the round with the median ratio; the summary lists every round.")
        w("")
    with open(p) as f:
        w(f.read().rstrip())
    if os.path.exists(os.path.join(plots, name + ".png")):
        w("")
        rel = os.path.relpath(os.path.join(plots, name + ".png"), os.path.dirname(doc) or ".")
        w(f"![{title} latency percentiles]({rel})")
    gen = [f"{x['name']} {fmt(x.get('loadgen_cpu_us_per_op'))}" for x in rep["results"]]
    w("")
    w("Load generator CPU µs/op: " + ", ".join(gen) + ".")
    other = [f"{x['name']} {100 * x['other_cpu_share']:.0f}%" for x in rep["results"]
             if x.get("other_cpu_share") is not None]
    if other:
        w("CPU used by other processes of the machine meanwhile (100% = one core): "
          + ", ".join(other) + ".")
    if name == "ratelimit-memory":
        held = [f"{x['name']} {x['items_held']}" for x in rep["results"]
                if x.get("items_held") is not None]
        if held:
            w("Held at the end, the B/item divisor (ratecached `ratelimit_keys`, Redis "
              "DBSIZE): " + ", ".join(held) + ".")
    if name.startswith("ratelimit"):
        dec = [f"{x['name']} {x['allowed']} allowed / {x['denied']} denied"
               for x in rep["results"] if x["allowed"] or x["denied"]]
        if dec:
            w("Decisions: " + ", ".join(dec) + ".")
    if name == "expiry":
        for x in rep["results"]:
            e = x.get("expiry") or {}
            s = e.get("samples") or []
            pts = ", ".join(f"{t:.1f}s:{k}" for t, k in s[:: max(1, len(s) // 12)])
            w(f"- {x['name']}: items after the load {e.get('items_after_load')}, "
              f"seconds since the load ended : items = {pts}")
    c = bench_cmd(name)
    if c:
        w("")
        w("Command:")
        w("")
        w("```sh")
        w(c)
        w("```")

# --- memtier ------------------------------------------------------------------------------
w("")
w("### (9) memtier_benchmark: get/set 1:10, pipeline 16, text and binary")
w("")
w("The same kind of load as cases 2 and 2b, generated by "
  "[memtier_benchmark](https://github.com/RedisLabs/memtier_benchmark) instead of "
  "ratecache-bench, so the comparison does not rest on this project's own tool: each server "
  "with `-t 1` pinned to one core, memtier with one thread pinned to another, 50 connections, "
  "16 requests in flight on each, 1 `set` per 10 `get`s over 100,000 keys (`memtier-1` to "
  "`memtier-100000`) with 32-byte values, all stored by a first memtier pass before the "
  "measured one so that gets hit, as in case 2. *Server CPU µs/op* is measured as for the "
  "other cases (the server's utime+stime over the memtier run, divided by the operations "
  "memtier completed); *memtier CPU µs/op* is memtier's own CPU time per operation.")
w("")
w("| server | protocol | ops/s | misses/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | CPU µs/op | server CPU | memtier CPU µs/op |")
w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
measured_memtier = False
memtier_cmds = []
for proto in ("text", "binary"):
    mr = memtier_rounds(proto)
    if not mr:
        for s in MEMTIER_SERVERS:
            w(f"| {s} | {proto} | to be measured | | | | | | | | | |")
        continue
    measured_memtier = True
    # The round with the median ops/s ratio, as for the other cases.
    reps = [(rnd, f) for rnd, f in mr]
    order = sorted(range(len(reps)), key=lambda i: between("ratecached", "memcached", tput)(
        memtier_as_report(reps[i][1])) or 0)
    rnd, found = reps[order[len(order) // 2]]
    for s in MEMTIER_SERVERS:
        v = found.get(s)
        if not v:
            continue
        lat = v["latency_us"]
        share = v.get("server_cpu_share")
        w(f"| {s} | {proto} | {v['ops_per_sec']:.0f} | {v['misses_per_sec']:.0f} | "
          f"{fmt(lat['p50'], 1)} | {fmt(lat['p90'], 1)} | {fmt(lat['p99'], 1)} | "
          f"{fmt(lat['p99.9'], 1)} | {fmt(lat['max'], 0)} | {fmt(v.get('server_cpu_us_per_op'))} | "
          f"{'n/a' if share is None else f'{100 * share:.0f}%'} | {fmt(v.get('loadgen_cpu_us_per_op'))} |")
        memtier_cmds.append(memtier_cmd(v))
    a, b = found.get("ratecached"), found.get("memcached")
    if a and b:
        w(f"| | {proto}: ratecached vs memcached (round {rnd} of {len(reps)}) | "
          f"{fmt(ratio(tput(a), tput(b)))}x | | | | {fmt(ratio(p99(a), p99(b)))}x | | | "
          f"{fmt(ratio(cpu(a), cpu(b)))}x | | |")
w("")
if not measured_memtier:
    why = run.get("memtier_skipped") or "the memtier cases were not selected"
    w(f"*To be measured*: this run did not include memtier ({why}). Build memtier as "
      "described under *Reproducing* and run `MEMTIER=/path/to/memtier_benchmark "
      "scripts/bench-compare.sh`.")
    w("")
w("Commands (each server is started fresh for each protocol and loaded first with "
  "`--ratio=1:0 --key-pattern=P:P --requests=allkeys` over the same keys):")
w("")
w("```sh")
if memtier_cmds:
    for c in memtier_cmds:
        w(c)
else:
    w("taskset -c 1 memtier_benchmark --server=127.0.0.1 --port=PORT --protocol=memcache_text "
      "--threads=1 --clients=50 --pipeline=16 --ratio=1:10 --key-minimum=1 --key-maximum=100000 "
      "--key-pattern=R:R --data-size=32 --test-time=4 --print-percentiles=50,90,99,99.9 "
      "--hide-histogram")
    w("# the same with --protocol=memcache_binary; the servers run as "
      "`taskset -c 0 ratecached -t 1 ...` and `taskset -c 0 memcached -t 1 ...`")
w("```")
w("")
w("**Why memtier and ratecache-bench can differ.** Both keep 16 requests in flight on each of "
  "50 connections and refill the pipeline as replies arrive, but they are different clients, "
  "and at pipeline 16 a server's ops/s ratio depends on more than the server:")
w("")
w("- *Client CPU per operation.* With one client core, the client's own cost per operation "
  "caps what any server can show. memtier allocates a request object per command and, in the "
  "text protocol, copies every reply line out of its buffer and scans `VALUE` lines with "
  "`sscanf`; ratecache-bench compares each reply, in its read buffer, with the bytes it "
  "expects. When the client's core saturates before "
  "the server's, the faster server's lead shrinks; compare the *memtier CPU µs/op* column with "
  "the load generator CPU under cases 2 and 2b.")
w("- *What is checked.* memtier does not verify values (unless `--data-verify`): it counts "
  "hits and misses and treats any other reply line as an error. ratecache-bench checks every "
  "reply against the value it stored and reports wrong ones in *errors*.")
w("- *Connection model.* memtier runs all 50 connections on one libevent loop per thread; "
  "ratecache-bench on a single-threaded tokio runtime. How many replies a client collects per "
  "read, and so how many requests it writes back per system call, sets the server's batch "
  "sizes, and with them its system calls per request.")
w("- *Keys and values.* memtier's keys are `memtier-<n>` (9 to 14 bytes here) with a fixed "
  "32-byte value; ratecache-bench's are 20 bytes, zero-padded, with values it can check. Both "
  "draw keys uniformly at random here (memtier `--key-pattern=R:R`, ratecache-bench "
  "`--key-dist uniform`); a skewed pattern (memtier's `G` Gaussian or `Z` zipf, "
  "ratecache-bench's `zipf`) keeps the hot keys in the CPU caches and favours whichever "
  "server misses the cache more on a uniform load. memtier's defaults differ from this case: "
  "10,000,000 keys (`--key-maximum`) and no loading pass, so most gets of a default run miss "
  "and are answered `END` (or a binary `Not found`), which is cheaper than a hit: check "
  "*misses/s* before comparing runs.")
w("- *Time and CPU accounting.* memtier's ops/s is its own count over its test time; the "
  "server's CPU per op here spans the whole memtier process (connection set-up included), "
  "which adds a little at short test times.")

# --- hand-written blocks -------------------------------------------------------------------
BLOCKS = {
    "notes": "(no analysis yet: write it between the notes markers; reruns keep it)",
    "changes": "(nothing yet: write it between the changes markers; reruns keep it)",
}
if os.path.exists(doc):
    with open(doc) as f:
        old = f.read()
    for key in BLOCKS:
        b, e = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
        if b in old and e in old:
            BLOCKS[key] = old.split(b, 1)[1].split(e, 1)[0].strip()

w("")
w("## Why the numbers are what they are")
w("")
w(f"<!-- notes:begin -->\n{BLOCKS['notes']}\n<!-- notes:end -->")
w("")
w("## Reproducing")
w("")
w("```sh")
w(f"scripts/bench-compare.sh        # every case above, then this page (the run above took {run['elapsed_s']} s)")
w("MEMTIER=/work/tools/memtier/bin/memtier_benchmark scripts/bench-compare.sh   # with case 9")
w("# another ratecached build, a subset of the cases, the page written elsewhere:")
w("RATECACHED_BIN=path/to/ratecached BENCH_CASES=\"ratelimit-hot\" BENCH_DOC=/tmp/b.md scripts/bench-compare.sh")
w("BENCH_REPORT_ONLY=target/bench-compare scripts/bench-compare.sh   # rewrite this page from the last run, measuring nothing")
w("```")
w("")
w("The script installs memcached and redis-server with apt-get when they are missing (as root), "
  "builds ratecached and ratecache-bench, starts fresh servers on free loopback ports for each "
  "case, and writes this page and the plots under `docs/bench/`. `BENCH_DURATION` (seconds per "
  "server, case and round, default 4), `BENCH_ROUNDS` (default 3), `BENCH_CASES` (a subset of "
  "`getset-p1 getset-p16 getset-p16-binary incr ratelimit ratelimit-p16 memory expiry "
  "ratelimit-memory ratelimit-hot memtier-text memtier-binary`) and `BENCH_DOC` change that. "
  "Its raw outputs stay in `target/bench-compare/`. In the commands above, `127.0.0.1:PORT` "
  "are the free ports the script picked and `--server-pid` each server's pid; start your "
  "servers and put their ports and pids there to run one case by hand.")
w("")
w("Numbers from a busy machine are not comparable: the script reports the CPU other processes "
  "used during each case and marks the page *disturbed* above 10% of a core.")
w("")
w("### memtier_benchmark")
w("")
w("memtier_benchmark is not a Debian package; it builds from its source with autotools. "
  "The memtier cases run when `MEMTIER=path` names the binary or `memtier_benchmark` is on "
  "`PATH`, and are skipped with one line otherwise. To build release 2.3.0 into "
  "`/work/tools/memtier` (any prefix will do):")
w("")
w("```sh")
w("apt-get install build-essential autoconf automake pkg-config libevent-dev zlib1g-dev libssl-dev")
w("git clone --branch 2.3.0 --depth 1 https://github.com/RedisLabs/memtier_benchmark /work/tools/memtier/src")
w("cd /work/tools/memtier/src")
w("autoreconf -ivf")
w("./configure --prefix=/work/tools/memtier")
w("make -j2 && make install        # /work/tools/memtier/bin/memtier_benchmark")
w("/work/tools/memtier/bin/memtier_benchmark --version")
w("```")
w("")
w("### ratecache-bench by hand")
w("")
w("```sh")
w("cargo build --release -p ratecache-bench")
w("target/release/ratecache-bench \\")
w("    --server 127.0.0.1:11211 --name ratecached --server-pid $(pidof ratecached) \\")
w("    --server 127.0.0.1:6379 --name redis --server-protocol redis --server-workload redis-fixed \\")
w("    --workload ratelimit --connections 50 --pipeline 16 --keys 100000 --duration 10 \\")
w("    --json out.json --plot out.png")
w("```")
w("")
w("`--name`, `--server-pid`, `--server-protocol` and `--server-workload` belong to the `--server` "
  "before them; servers run one after another with the same load and share one table, "
  "with ratios of the first server over each other. `--protocol text|meta|binary|redis`, "
  "`--workload getset|incr|ratelimit|redis-fixed|redis-sliding|fill|rl-fill`, `--ratio SET:GET` "
  "(default 1:10), `--key-dist uniform|zipf` (`--zipf-s`), `--value-size`, `--requests N` "
  "and/or `--duration SECS` (whichever comes first), `--seed`, `--ttl` and `--watch-expiry "
  "SECS` for fills; `ratecache-bench --help` lists them all. It exits with status 2 when "
  "any reply was wrong or missing.")
w("")
w("## Changes")
w("")
w(f"<!-- changes:begin -->\n{BLOCKS['changes']}\n<!-- changes:end -->")
with open(doc, "w") as f:
    f.write("\n".join(L) + "\n")
print(f"wrote {doc}")
