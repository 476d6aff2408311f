"""Hostile clients: each attack of `attacks.py` against a fresh server of each target, with a
memory cap, asserting that the server is alive, a sentinel key set before the attack reads
back, and the peak RSS (VmHWM) stays under a stated bound. The figures of a full run, for
both servers, are in docs/reliability.md.

Each bound gives its reason. The process itself takes about 5 MB before any request.
"""

import pytest

import attacks

MB = 1024 * 1024

# A connection that does not read holds at most its output high-water mark (1 MiB) plus one
# reply (a 1 MB value) beside the stored value: with the process's own ~5 MB, 32 MB leaves
# ample room for allocator slack and is two orders of magnitude below the 4 GB an unbounded
# server tries to allocate for these attacks.
UNREAD_REPLIES_MB = 32


def check(o: attacks.Outcome, bound_mb: float) -> None:
    assert o.alive, "the server died"
    assert o.sentinel_intact, "the sentinel key was lost"
    assert o.peak_rss_mb <= bound_mb, f"peak RSS {o.peak_rss_mb} MB over {bound_mb} MB ({o.notes})"


@pytest.mark.parametrize(
    "attack", ["multiget_not_read", "pipelined_gets_not_read", "binary_gets_not_read"]
)
def test_replies_a_client_does_not_read_are_bounded(target, binary, attack):
    check(attacks.ATTACKS[attack](target, binary), UNREAD_REPLIES_MB)


def test_values_in_transit_are_bounded(target, binary):
    # 1,000 clients half-way through a 900 KB set with -m 64. memcached reserves each item
    # against -m when its header arrives; ratecached draws partial values from a transit
    # budget of max(16 MiB, -m/8) beside -m. Either way RSS stays near -m: 64 MB plus 40 MB for
    # the transit budget, 1,000 connections and slack (an unbounded server reaches 450 MB).
    o = attacks.partial_sets(target, binary)
    check(o, 64 + 40)


@pytest.mark.parametrize("mode", ["ascii", "sasl"])
def test_nothing_big_is_buffered_before_authentication(target, binary, mode):
    # An unauthenticated client announces a 300 MB body and streams 64 MB of it: the server
    # buffers at most what the handshake needs (memcached: its 16 KiB read buffer for -Y; a
    # slab item for SASL data, swallowed when over the item size).
    o = attacks.unauthenticated_body(target, binary, mode)
    assert o.alive
    assert o.peak_rss_mb <= UNREAD_REPLIES_MB, o
    if target == "ratecached":
        # ratecached closes the connection instead of reading the body (SASL data past 4 KiB
        # before authentication, an -Y token past 16 KiB); what the client got to send is what
        # the socket buffers took.
        assert o.notes["closed_after_mb"] is not None and o.notes["closed_after_mb"] < 16, o


def test_idle_connections_hold_no_buffers(target, binary):
    # 5,000 connections that ran one get each and then sit idle. An idle connection holds its
    # task, socket registration and registry entry (about 1.5 KB here; memcached 0.6 KB), but
    # no read or write buffer: 3 KiB each bounds that with room for allocator slack (it was
    # 9 KB while buffers were kept).
    o = attacks.idle_connections(target, binary)
    assert o.alive and o.sentinel_intact
    assert o.notes["bytes_per_idle_conn"] <= 3 * 1024, o.notes


def test_repeated_connection_bursts_end_where_they_started(target, binary):
    # Bursts of 2,000 connections that each run a get and close: memory freed by one burst is
    # reused by the next, so RSS after the last round is within 4 MB of the first (it climbed
    # by 16 MB a round while idle connections kept buffers).
    o = attacks.connection_bursts(target, binary, rounds=5, count=2000)
    assert o.alive and o.sentinel_intact
    rounds = o.notes["rss_mb_after_each_round"]
    assert max(rounds) - rounds[0] <= 4, rounds


def test_idle_timeout_closes_a_trickling_client(target, binary):
    # -o idle_timeout=2 counts from the last completed request, not the last byte: a client
    # trickling one byte a second of a line that never ends is closed after 2-4 s (memcached's
    # idle thread checks about once a second, with whole-second times).
    o = attacks.trickle(target, binary)
    assert o.alive and o.sentinel_intact
    closed = o.notes["closed_after_s"]
    assert closed is not None and 1.5 <= closed <= 5, o.notes


def test_udp_replies_are_bounded(target, binary):
    # One datagram asking 100 times for a 1 MB value. memcached streams one message per
    # value; ratecached stops a datagram's reply at 1 MiB (plus one value) and ends it with
    # memcached's SERVER_ERROR line. The datagram count never wraps either way.
    o = attacks.udp_amplification(target, binary)
    check(o, UNREAD_REPLIES_MB)
    assert o.notes["datagrams"] > 0
    if target == "ratecached":
        assert o.notes["counts"] and o.notes["counts"][0] < 65536
