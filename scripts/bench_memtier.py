#!/usr/bin/env python3
"""Runs one memtier_benchmark command against one server and measures what ratecache-bench
measures for its own cases: the server's CPU (utime+stime of /proc/PID/stat) over the run
divided by the operations memtier completed, the server's CPU share of the wall time,
memtier's own CPU per operation (its rusage), and the CPU other processes of the machine
used meanwhile (/proc/stat user+nice+system, minus the server and memtier).

    bench_memtier.py --pid PID --name NAME --json OUT.json -- [taskset ...] memtier_benchmark ...

The memtier command must write its JSON report with --json-out-file=FILE; this script reads
that FILE and writes OUT.json (one result, the fields named as in ratecache-bench's reports).
Exit status: memtier's (1 when it wrote no report).
"""
import argparse
import json
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_us(pid):
    """utime+stime of a process, in microseconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(rest[11]) + int(rest[12])) * 1_000_000 // TICK


def machine_busy_us():
    """user + nice + system time of every core, in microseconds (as ratecache-bench)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]]
                return (v[0] + v[1] + v[2]) * 1_000_000 // TICK
    raise OSError("no cpu line in /proc/stat")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True, help="the server's pid")
    ap.add_argument("--name", required=True, help="the server's name in the report")
    ap.add_argument("--protocol", default="", help="label of the protocol")
    ap.add_argument("--json", required=True, help="the result file to write")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    report = next((c.split("=", 1)[1] for c in cmd if c.startswith("--json-out-file=")), None)
    if not cmd or report is None:
        sys.exit("bench_memtier.py: give the memtier command after --, with --json-out-file=FILE")

    srv0, busy0, t0 = proc_cpu_us(a.pid), machine_busy_us(), time.monotonic()
    child = subprocess.Popen(cmd)
    _, status, usage = os.wait4(child.pid, 0)
    t1 = time.monotonic()
    srv1, busy1 = proc_cpu_us(a.pid), machine_busy_us()
    rc = os.waitstatus_to_exitcode(status)
    gen_us = (usage.ru_utime + usage.ru_stime) * 1e6

    try:
        with open(report) as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench_memtier.py: no memtier report in {report}: {e}", file=sys.stderr)
        sys.exit(rc or 1)
    stats = m["ALL STATS"]
    tot = stats["Totals"]
    ops = tot.get("Count") or 0
    pct = tot.get("Percentile Latencies", {})

    def ms_to_us(key):
        v = pct.get(key)
        return None if v is None else float(v) * 1000

    wall = t1 - t0
    srv_us = srv1 - srv0
    gets = stats.get("Gets", {})
    result = {
        "name": a.name,
        "protocol": a.protocol,
        "ops": ops,
        "ops_per_sec": tot.get("Ops/sec"),
        "sets_per_sec": stats.get("Sets", {}).get("Ops/sec"),
        "gets_per_sec": gets.get("Ops/sec"),
        "hits_per_sec": tot.get("Hits/sec"),
        "misses_per_sec": tot.get("Misses/sec"),
        "connection_errors": tot.get("Connection Errors"),
        "latency_us": {
            "p50": ms_to_us("p50.00"),
            "p90": ms_to_us("p90.00"),
            "p99": ms_to_us("p99.00"),
            "p99.9": ms_to_us("p99.90"),
            "max": None if tot.get("Max Latency") is None else float(tot["Max Latency"]) * 1000,
        },
        "wall_s": wall,
        "server_cpu_s": srv_us / 1e6,
        "server_cpu_us_per_op": srv_us / ops if ops else None,
        "server_cpu_share": srv_us / 1e6 / wall if wall > 0 else None,
        "loadgen_cpu_us_per_op": gen_us / ops if ops else None,
        "other_cpu_share": max(0.0, (busy1 - busy0 - srv_us - gen_us) / 1e6 / wall) if wall > 0 else None,
        "exit_status": rc,
        "command": cmd,
    }
    with open(a.json, "w") as f:
        json.dump(result, f, indent=1)
    lat = result["latency_us"]
    cpu = result["server_cpu_us_per_op"]
    print(f"{a.name}: {result['ops_per_sec']} ops/s, p99 {lat['p99']} µs, server CPU "
          f"{'n/a' if cpu is None else f'{cpu:.2f}'} µs/op, misses/s {result['misses_per_sec']}, "
          f"memtier exit {rc}")
    sys.exit(rc)


if __name__ == "__main__":
    main()
