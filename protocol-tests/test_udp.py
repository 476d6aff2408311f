"""memcached's UDP transport (-U): the 8-byte frame header and get/set traffic."""
import socket
import struct

import pytest

from helpers import free_port


def udp_request(port: int, payload: bytes, req_id: int = 1, total: int = 1, quiet: float = 0.1) -> list[bytes]:
    """Send one framed request; collect every datagram that answers it (until the server is
    quiet for `quiet` seconds after the first)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    try:
        s.sendto(struct.pack(">HHHH", req_id, 0, total, 0) + payload, ("127.0.0.1", port))
        datagrams = [s.recvfrom(65536)[0]]
        s.settimeout(quiet)
        while True:
            try:
                datagrams.append(s.recvfrom(65536)[0])
            except socket.timeout:
                return datagrams
    finally:
        s.close()


def reassemble(datagrams: list[bytes], req_id: int) -> bytes:
    """The reply bytes. A reply is one or more messages (memcached sends one per response
    object, ratecached one per request); each is `count` datagrams numbered 0..count-1, all
    carrying the request id, at most 1400 bytes each."""
    out = b""
    i = 0
    while i < len(datagrams):
        rid, seq, count, reserved = struct.unpack(">HHHH", datagrams[i][:8])
        assert (rid, seq, reserved) == (req_id, 0, 0)
        for j in range(count):
            d = datagrams[i + j]
            assert struct.unpack(">HHHH", d[:8]) == (req_id, j, count, 0)
            assert len(d) <= 1400
            out += d[8:]
        i += count
    return out


@pytest.fixture
def udp_server(make_server):
    port = free_port()
    srv = make_server("-U", str(port))
    return srv, port


def test_udp_set_get_delete(udp_server):
    _, port = udp_server
    assert reassemble(udp_request(port, b"set u 5 0 3\r\nabc\r\n", 7), 7) == b"STORED\r\n"
    assert reassemble(udp_request(port, b"get u\r\n", 8), 8) == b"VALUE u 5 3\r\nabc\r\nEND\r\n"
    assert reassemble(udp_request(port, b"delete u\r\n", 9), 9) == b"DELETED\r\n"
    assert reassemble(udp_request(port, b"get u\r\n", 10), 10) == b"END\r\n"


def test_udp_large_reply_is_split_into_datagrams(udp_server):
    srv, port = udp_server
    value = b"v" * 5000
    with srv.connect() as c:
        c.set(b"big", value)
    reply = reassemble(udp_request(port, b"get big\r\n", 42), 42)
    assert reply == b"VALUE big 0 5000\r\n" + value + b"\r\nEND\r\n"


def test_udp_multi_get_and_errors(udp_server):
    _, port = udp_server
    udp_request(port, b"set a 0 0 1\r\n1\r\n", 1)
    assert reassemble(udp_request(port, b"get a b a\r\n", 3), 3) == b"VALUE a 0 1\r\n1\r\nVALUE a 0 1\r\n1\r\nEND\r\n"
    assert reassemble(udp_request(port, b"bogus\r\n", 4), 4) == b"ERROR\r\n"
    assert reassemble(udp_request(port, b"incr a 5\r\n", 65535), 65535) == b"6\r\n"


def test_udp_state_is_shared_with_tcp(udp_server):
    srv, port = udp_server
    udp_request(port, b"set shared 0 0 2\r\nhi\r\n", 5)
    with srv.connect() as c:
        assert c.get(b"shared") == b"hi"


def test_udp_multi_datagram_request_is_refused(udp_server):
    _, port = udp_server
    # memcached 1.6.18 drops a request announced as several datagrams, without a reply.
    with pytest.raises(TimeoutError):
        udp_request(port, b"get a\r\n", 11, total=2)
    assert reassemble(udp_request(port, b"get a\r\n", 12), 12) == b"END\r\n"
