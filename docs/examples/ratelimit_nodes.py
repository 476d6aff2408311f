"""Rate limiting over several ratecached nodes from pymemcache (docs/scaling.md).

Copy what you need; nothing here touches a private attribute of pymemcache.

- `RateLimitNodes(servers)`: sends the raw `ratelimit` command (cost, peek, refund, burst: what
  the `get` form cannot say) to the node that `HashClient(servers)` sends a key to, so a raw
  decision and the `get` form share one subject's state.
- `SubjectHash`: a hasher for `HashClient(servers, hasher=SubjectHash)` that routes a decision
  key (`rl:100/60s/10/api:u42`, `rl:free/api:u42`) by its subject alone, as twemproxy's
  `hash_tag` does: every spelling of a subject, and a raw `ratelimit api:u42 ...`, reach one node.
- `allowed(client, key, fail_open)`: one decision through `get`, failing open or closed when the
  node cannot answer.

    servers = [("10.0.0.1", 11211), ("10.0.0.2", 11211), ("10.0.0.3", 11211)]
    cache = HashClient(servers, timeout=0.2, connect_timeout=0.2)
    nodes = RateLimitNodes(servers, timeout=0.2, connect_timeout=0.2)
    cache.get("rl:100/60s/10/api:u42")                      # b'ALLOWED 10 9 0 600'
    nodes.ratelimit("api:u42 100 60s 10 5", route_key="rl:100/60s/10/api:u42")  # cost 5
"""

from pymemcache.client.base import Client
from pymemcache.client.rendezvous import RendezvousHash
from pymemcache.exceptions import MemcacheClientError, MemcacheError

PREFIX = "rl:"  # the server's --ratelimit-prefix
ALGORITHMS = ("gcra", "fixed", "sliding")


def subject_of(key, prefix=PREFIX):
    """The subject a decision key decides on (`rl:100/60s/10/api:u42` -> `api:u42`);
    any other key unchanged. Follows the server's grammar: after the period, a field is burst
    (all digits) then algorithm only when at least one more field follows it."""
    if not key.startswith(prefix):
        return key
    fields = key[len(prefix):].split("/")
    if len(fields) < 2:
        return key  # not a valid decision key: the server answers an error anyway
    if not fields[0][:1].isdigit():
        return "/".join(fields[1:])  # <policy>/<subject>
    i = 2  # <limit>/<period>/...
    if len(fields) > i + 1 and fields[i].isdigit():
        i += 1
    if len(fields) > i + 1 and fields[i] in ALGORITHMS:
        i += 1
    return "/".join(fields[i:])


class SubjectHash(RendezvousHash):
    """HashClient's default hasher (rendezvous, murmur3), fed the subject of a decision key
    instead of the whole key. Set `prefix` in a subclass for another --ratelimit-prefix."""

    prefix = PREFIX

    def get_node(self, key):
        return super().get_node(subject_of(key, self.prefix))


class RateLimitNodes:
    """Raw `ratelimit` lines to the node `HashClient(servers, hasher=hasher)` would pick.

    HashClient names a (host, port) node "host:port" and asks its hasher for the node of a key;
    this class builds the same hasher over the same names and keeps one Client per node.
    """

    def __init__(self, servers, hasher=RendezvousHash, **client_kwargs):
        self._hasher = hasher()
        self._clients = {}
        for host, port in servers:
            name = "%s:%s" % (host, port)
            self._hasher.add_node(name)
            self._clients[name] = Client((host, port), **client_kwargs)

    def node_for(self, key):
        """(host, port) of the node that holds `key`."""
        return self._clients[self._hasher.get_node(key)].server

    def ratelimit(self, args, route_key=None):
        """Send `ratelimit <args>` ("api:u42 100 60s 10 5", "api:u42 @free 5"; not noreply)
        and return the verdict line, as the `get` form's value (for a policy: the overall line;
        the per-limit lines and END that follow it are read and dropped).

        route_key: the key the `get` form uses for this subject (with the default hasher the
        whole decision key is hashed); defaults to the subject, right for SubjectHash."""
        key = route_key if route_key is not None else args.split()[0]
        client = self._clients[self._hasher.get_node(key)]
        policy = any(token.startswith("@") for token in args.split()[1:])
        reply = client.raw_command(b"ratelimit " + args.encode(),
                                   end_tokens=b"END\r\n" if policy else b"\r\n")
        return reply.split(b"\r\n", 1)[0]

    def close(self):
        for client in self._clients.values():
            client.close()


def allowed(client, key, fail_open=True):
    """One decision through `get`: True when allowed, False when denied.

    A node that cannot be reached (or times out) answers `fail_open`; so does a miss, which a
    decision key never is on a ratecached started with --ratelimit-prefix (a miss means a node
    without the flag, or a client with ignore_exc that swallowed the error). A bad decision key
    raises (MemcacheClientError): a typo must not pass for "no limit".
    """
    try:
        value = client.get(key)
    except MemcacheClientError:
        raise
    except (MemcacheError, OSError):
        return fail_open
    if value is None:
        return fail_open
    return value.startswith(b"ALLOWED ")
