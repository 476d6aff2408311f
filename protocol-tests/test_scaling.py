"""Several ratecached nodes behind existing engines (docs/scaling.md): twemproxy with ketama in
front of three nodes, and client-side consistent hashing (pymemcache's HashClient, pylibmc /
libmemcached ketama), deciding through the `get` form (`--ratelimit-prefix rl:`) with exact
counts per subject; the helper of docs/examples/ratelimit_nodes.py that sends the raw
`ratelimit` command to the right node; what a failed or an added node does to the subjects.

twemproxy (Debian package `nutcracker`) and pylibmc are installed by scripts/test.sh; a test
that needs one that is missing is skipped with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError

from decisions import PREFIX, SERVER_FLAGS, assert_exact, decisions_on, holders, stats, verdict
from helpers import HOST, _die_with_parent, free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs" / "examples"))
from ratelimit_nodes import RateLimitNodes, SubjectHash, allowed, subject_of  # noqa: E402

pytestmark = pytest.mark.ratecached_only

POLICIES = '[policy.free]\nlimits = [ { limit = 3, period = "1h" } ]\n'

# The configuration docs/scaling.md shows, with this test's ports.
TWEMPROXY_YAML = """\
ratecache:
  listen: 127.0.0.1:{port}
  hash: md5
  distribution: ketama
  hash_tag: "{{}}"
  timeout: 2000
  auto_eject_hosts: false
  servers:
{servers}
"""


def client(port: int) -> Client:
    return Client((HOST, port), default_noreply=False, timeout=5, connect_timeout=5)


def addrs(nodes) -> list[tuple[str, int]]:
    return [(HOST, n.port) for n in nodes]


@pytest.fixture
def nodes(make_server, tmp_path):
    """Three ratecached nodes deciding `rl:` keys, with the policy `free` (3 per hour)."""
    policies = tmp_path / "policies.toml"
    policies.write_text(POLICIES)
    return [make_server(*SERVER_FLAGS, "--policies", str(policies)) for _ in range(3)]


def nutcracker_binary() -> str | None:
    found = shutil.which("nutcracker")
    if found:
        return found
    for path in ("/usr/sbin/nutcracker", "/usr/bin/nutcracker"):
        if os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture
def twemproxy(nodes, tmp_path):
    """twemproxy on a loopback port in front of `nodes`; yields its port."""
    binary = nutcracker_binary()
    if binary is None:
        pytest.skip("twemproxy: nutcracker not installed (scripts/test.sh installs it as root)")
    port = free_port()
    conf = tmp_path / "nutcracker.yml"
    servers = "\n".join(f"   - {HOST}:{n.port}:1" for n in nodes)
    conf.write_text(TWEMPROXY_YAML.format(port=port, servers=servers))
    log = tmp_path / "nutcracker.log"
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-s", str(free_port()), "-a", HOST, "-o", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace") if log.exists() else ""
                pytest.fail(f"nutcracker did not start listening on {port}:\n{text}")
            try:
                socket_ok = Client((HOST, port), connect_timeout=1, timeout=1)
                socket_ok.version()
                socket_ok.close()
                break
            except Exception:
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=5)


def node_holding(nodes, key: str):
    """The one node whose cache holds `key`."""
    found = [n for n in nodes if client(n.port).get(key) is not None]
    assert len(found) == 1, (key, found)
    return found[0]


# -- twemproxy ----------------------------------------------------------------------------


def test_twemproxy_passes_cache_commands_over_three_nodes(nodes, twemproxy):
    c = client(twemproxy)
    keys = [f"cache:{i}" for i in range(30)]
    for k in keys:
        assert c.set(k, k.encode()) is True
    assert c.get_many(keys) == {k: k.encode() for k in keys}  # split per node and merged
    assert c.add("cache:0", b"x") is False
    assert c.set("counter", b"10") is True
    assert c.incr("counter", 5) == 15
    assert c.delete("cache:1") is True
    assert c.get("cache:1") is None
    items = [int(stats(n)["curr_items"]) for n in nodes]
    assert sum(items) == 30 and all(items), items  # ketama spread the keys over all three


def test_twemproxy_get_form_exact_per_subject_routed_by_hash_tag(nodes, twemproxy):
    c = client(twemproxy)
    subjects = [f"{{tw:{i}}}" for i in range(12)]
    keys = [f"{PREFIX}5/1h/{s}" for s in subjects]
    seen = {k: [] for k in keys}
    for _ in range(7):
        got = c.get_many(keys)  # one multi-get per round: twemproxy splits it per node
        for k in keys:
            seen[k].append(got[k])
    for k in keys:
        assert_exact(seen[k], 5)

    held = {s: holders(nodes, s, 5, "1h") for s in subjects}  # (peeks count in the stats)
    assert all(len(h) == 1 for h in held.values()), held
    held = {s: h[0] for s, h in held.items()}
    assert len({id(h) for h in held.values()}) >= 2, "all subjects on one node"
    before = [decisions_on(n) for n in nodes]
    for s in subjects:
        # hash_tag: a plain key with the same {tag} lands on the node that decided the subject
        assert c.set(f"probe/{s}", b"1") is True
        assert node_holding(nodes, f"probe/{s}") is held[s]
        # and so does a policy decision on another subject with the same tag (3 per hour)
        policy = [c.get(f"{PREFIX}free/{s}/policy") for _ in range(4)]
        assert_exact(policy, 3)
    for n, (a0, d0) in zip(nodes, before):
        mine = sum(1 for h in held.values() if h is n)
        assert decisions_on(n) == (a0 + 3 * mine, d0 + mine)


def test_twemproxy_concurrent_clients_on_one_subject_get_exactly_its_limit(nodes, twemproxy):
    key = f"{PREFIX}30/1h/{{hot}}"
    threads_n, per_thread = 8, 12
    results: list[bytes] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_n, timeout=10)

    def worker():
        try:
            c = client(twemproxy)
            start.wait()
            mine = [c.get(key) for _ in range(per_thread)]
            c.close()
            with lock:
                results.extend(mine)
        except BaseException as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(e)

    workers = [threading.Thread(target=worker) for _ in range(threads_n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in workers)
    assert not errors, errors
    got = [verdict(v) for v in results]
    assert len(got) == threads_n * per_thread
    granted = sorted(r[2] for r in got if r[0] == "ALLOWED")
    assert granted == list(range(30))  # exactly 30, each remaining count handed out once
    assert all(r[:3] == ("DENIED", 30, 0) for r in got if r[0] == "DENIED")
    counts = sorted(decisions_on(n) for n in nodes)
    assert counts == [(0, 0), (0, 0), (30, threads_n * per_thread - 30)]  # all on one node


def test_twemproxy_node_down_fails_its_subjects_only(nodes, twemproxy):
    c = client(twemproxy)
    subjects = [f"{{down:{i}}}" for i in range(12)]
    for s in subjects:
        assert_exact([c.get(f"{PREFIX}2/1h/{s}") for _ in range(3)], 2)
    where = {s: holders(nodes, s, 2, "1h")[0] for s in subjects}
    victim = where[subjects[0]]
    victim.stop()
    for s in subjects:
        key = f"{PREFIX}2/1h/{s}"
        if where[s] is victim:
            # auto_eject_hosts: false -> the proxy answers an error: the client chooses
            assert allowed(c, key, fail_open=True) is True
            assert allowed(c, key, fail_open=False) is False
        else:
            assert verdict(c.get(key))[:3] == ("DENIED", 2, 0)  # the others keep their state
    # a multi-get that touches the dead node fails as a whole
    with pytest.raises(MemcacheError):
        c.get_many([f"{PREFIX}2/1h/{s}" for s in subjects])


def test_twemproxy_and_pylibmc_ketama_weighted_share_subjects(nodes, twemproxy):
    """Same continuum: twemproxy (md5, ketama, unnamed servers of weight 1) and libmemcached's
    ketama_weighted route a key alike, so services behind either decide on one state; plain
    `ketama` routes differently, and a subject's quota then counts once per route."""
    pylibmc = pytest.importorskip("pylibmc", reason="pylibmc not installed")
    servers = [f"{HOST}:{n.port}" for n in nodes]
    proxy = client(twemproxy)
    same = pylibmc.Client(servers, behaviors={"ketama_weighted": True})
    subjects = [f"mix:{i}" for i in range(12)]  # no {tag}: both hash the whole key
    for s in subjects:
        key = f"{PREFIX}5/1h/{s}"
        values = [(proxy if i % 2 else same).get(key) for i in range(7)]
        assert_exact(values, 5)
        assert len(holders(nodes, s, 5, "1h")) == 1

    other = pylibmc.Client(servers, behaviors={"ketama": True})
    doubled = 0
    for i in range(12):
        key = f"{PREFIX}5/1h/split:{i}"
        values = [proxy.get(key) for _ in range(5)] + [other.get(key) for _ in range(5)]
        granted = sum(verdict(v)[0] == "ALLOWED" for v in values)
        assert granted in (5, 10), values
        doubled += granted == 10
    assert doubled > 0, "ketama and twemproxy agreed on every key"


# -- client-side consistent hashing ----------------------------------------------------------


def test_hashclient_get_form_exact_per_subject(nodes):
    hc = HashClient(addrs(nodes), timeout=5, connect_timeout=5)
    route = RateLimitNodes(addrs(nodes))
    subjects = [f"hc:{i}" for i in range(12)]
    keys = [f"{PREFIX}5/1h/{s}" for s in subjects]
    seen = {k: [] for k in keys}
    for r in range(7):
        if r % 2:
            got = hc.get_many(keys)
            for k in keys:
                seen[k].append(got[k])
        else:
            for k in keys:
                seen[k].append(hc.get(k))
    homes = set()
    for s, k in zip(subjects, keys):
        assert_exact(seen[k], 5)
        (holder,) = holders(nodes, s, 5, "1h")
        assert route.node_for(k) == (HOST, holder.port)
        homes.add(holder.port)
    assert len(homes) >= 2, "all subjects on one node"


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_pylibmc_ketama_get_form_exact_per_subject(nodes, binary):
    pylibmc = pytest.importorskip("pylibmc", reason="pylibmc not installed")
    mc = pylibmc.Client([f"{HOST}:{n.port}" for n in nodes], binary=binary,
                        behaviors={"ketama_weighted": True})
    subjects = [f"lm:{i}" for i in range(12)]
    keys = [f"{PREFIX}4/1h/fixed/{s}" for s in subjects]
    seen = {k: [] for k in keys}
    for r in range(6):
        if r % 2:
            got = mc.get_multi(keys)
            for k in keys:
                seen[k].append(got[k])
        else:
            for k in keys:
                seen[k].append(mc.get(k))
    homes = set()
    for s, k in zip(subjects, keys):
        assert_exact(seen[k], 4)
        (holder,) = holders(nodes, s, 4, "1h", "fixed")
        homes.add(holder.port)
    assert len(homes) >= 2, "all subjects on one node"


def test_helper_sends_raw_ratelimit_to_the_get_forms_node(nodes):
    hc = HashClient(addrs(nodes), timeout=5, connect_timeout=5)
    route = RateLimitNodes(addrs(nodes), timeout=5, connect_timeout=5)
    homes = set()
    for i in range(12):
        s = f"raw:{i}"
        key = f"{PREFIX}5/1h/{s}"
        assert verdict(hc.get(key))[:4] == ("ALLOWED", 5, 4, 0)
        # cost 3 on the node holding the subject: the same bucket
        assert verdict(route.ratelimit(f"{s} 5 1h 0 3", route_key=key))[:4] == ("ALLOWED", 5, 1, 0)
        assert verdict(hc.get(key))[:4] == ("ALLOWED", 5, 0, 0)
        assert verdict(hc.get(key))[:3] == ("DENIED", 5, 0)
        homes.add(route.node_for(key))
    assert len(homes) >= 2


def test_subject_hash_routes_every_spelling_of_a_subject_to_one_node(nodes):
    assert subject_of("rl:free/api:u42") == "api:u42"
    assert subject_of("rl:100/60s/10/api:u42") == "api:u42"
    assert subject_of("rl:5/1m/fixed/ip:10.1.2.3") == "ip:10.1.2.3"
    assert subject_of("rl:100/60s/12345") == "12345"
    assert subject_of("rl:100/60s/10/5") == "5"
    assert subject_of("rl:100/60s/10/gcra/a/b") == "a/b"
    assert subject_of("rl:100/60s/fixed") == "fixed"
    assert subject_of("user:7") == "user:7"

    hc = HashClient(addrs(nodes), hasher=SubjectHash, timeout=5, connect_timeout=5)
    route = RateLimitNodes(addrs(nodes), hasher=SubjectHash, timeout=5, connect_timeout=5)
    homes = set()
    for i in range(12):
        s = f"sh:{i}"
        assert verdict(hc.get(f"{PREFIX}6/1h/{s}"))[:3] == ("ALLOWED", 6, 5)
        assert verdict(hc.get(f"{PREFIX}6/1h/6/{s}"))[:3] == ("ALLOWED", 6, 4)
        assert verdict(hc.get(f"{PREFIX}6/1h/gcra/{s}"))[:3] == ("ALLOWED", 6, 3)
        assert verdict(route.ratelimit(f"{s} 6 1h 0 3"))[:3] == ("ALLOWED", 6, 0)
        assert verdict(hc.get(f"{PREFIX}6/1h/{s}"))[:3] == ("DENIED", 6, 0)
        (holder,) = holders(nodes, s, 6, "1h")
        assert route.node_for(s) == (HOST, holder.port)
        homes.add(holder.port)
        # a policy subject: the get form and `ratelimit <subject> @free <cost>` meet too
        p = f"{s}/p"
        assert verdict(hc.get(f"{PREFIX}free/{p}"))[:3] == ("ALLOWED", 3, 2)
        assert verdict(route.ratelimit(f"{p} @free 2"))[:3] == ("ALLOWED", 3, 0)
        assert verdict(hc.get(f"{PREFIX}free/{p}"))[:3] == ("DENIED", 3, 0)
        # the policy reply's other lines were consumed: the next raw reply is its own
        assert verdict(route.ratelimit(f"{p} @free 1 peek"))[:3] == ("DENIED", 3, 0)
        assert verdict(route.ratelimit(f"{s} 6 1h peek"))[:3] == ("DENIED", 6, 0)
    assert len(homes) >= 2
    # subject_of reads the fields as the server does: the raw command finds the state there
    for key in (f"{PREFIX}6/1h/{{i}}424242", f"{PREFIX}6/1h/6/{{i}}/a/b", f"{PREFIX}6/1h/6/gcra/{{i}}77"):
        for i in range(6):
            k = key.format(i=i)
            assert verdict(hc.get(k))[:3] == ("ALLOWED", 6, 5)
            assert verdict(route.ratelimit(f"{subject_of(k)} 6 1h peek"))[:3] == ("ALLOWED", 6, 4), k


# -- nodes failing and added -------------------------------------------------------------------


def spend(hc, keys, limit):
    for k in keys:
        assert_exact([hc.get(k) for _ in range(limit + 1)], limit)


def test_node_failure_subjects_move_and_start_afresh(nodes):
    servers = addrs(nodes)
    route = RateLimitNodes(servers)
    keys = [f"{PREFIX}5/1h/nf:{i}" for i in range(30)]
    spend(HashClient(servers, timeout=5, connect_timeout=5), keys, 5)
    victim = nodes[0]
    moved = [k for k in keys if route.node_for(k) == (HOST, victim.port)]
    assert 0 < len(moved) < len(keys)
    victim.stop()

    # Clients that meet the dead node: the failed decision is the client's choice ...
    opts = dict(timeout=2, connect_timeout=2, retry_attempts=0, dead_timeout=3600)
    closed, open_ = HashClient(servers, **opts), HashClient(servers, **opts)
    assert allowed(closed, moved[0], fail_open=False) is False
    assert allowed(open_, moved[0], fail_open=True) is True
    # ... then HashClient drops the node and its keys move to the others, where their
    # subjects start afresh: one more full burst each (5 + 5 over the period, the bound),
    # while the subjects of the surviving nodes keep their state.
    for k in keys:
        if k in moved:
            assert_exact([closed.get(k) for _ in range(3)] + [open_.get(k) for _ in range(3)], 5)
        else:
            assert verdict(closed.get(k))[:3] == ("DENIED", 5, 0)
            assert verdict(open_.get(k))[:3] == ("DENIED", 5, 0)


def test_node_added_moves_some_subjects_which_start_afresh_then_return(nodes, make_server, tmp_path):
    servers = addrs(nodes)
    hc = HashClient(servers, timeout=5, connect_timeout=5)
    keys = [f"{PREFIX}5/1h/na:{i}" for i in range(40)]
    spend(hc, keys, 5)
    policies = tmp_path / "policies.toml"
    fourth = make_server(*SERVER_FLAGS, "--policies", str(policies))
    hc.add_server((HOST, fourth.port))
    route = RateLimitNodes(servers + [(HOST, fourth.port)])
    moved = {k for k in keys if route.node_for(k) == (HOST, fourth.port)}
    assert 0 < len(moved) < len(keys)  # rendezvous: only the keys the new node wins move
    for k in keys:
        v = verdict(hc.get(k))
        assert v[:3] == (("ALLOWED", 5, 4) if k in moved else ("DENIED", 5, 0)), k
    assert decisions_on(fourth) == (len(moved), 0)
    # Taking the node out again (a client configured with the three) sends its keys home, to
    # the state they had left there.
    back = HashClient(servers, timeout=5, connect_timeout=5)
    for k in keys:
        assert verdict(back.get(k))[:3] == ("DENIED", 5, 0)
