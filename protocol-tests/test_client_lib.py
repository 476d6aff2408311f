"""A stock client library (pymemcache) works unchanged."""

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError, MemcacheServerError


@pytest.fixture
def client(server):
    c = Client(("127.0.0.1", server.port), connect_timeout=5, timeout=5, default_noreply=False)
    yield c
    c.close()


def test_set_get(client):
    assert client.set("a", b"hello") is True
    assert client.get("a") == b"hello"
    assert client.get("missing") is None
    assert client.get("missing", default=b"d") == b"d"


def test_add_replace(client):
    assert client.add("a", b"1") is True
    assert client.add("a", b"2") is False
    assert client.replace("a", b"3") is True
    assert client.replace("nope", b"3") is False
    assert client.get("a") == b"3"


def test_append_prepend(client):
    client.set("a", b"mid")
    assert client.append("a", b">") is True
    assert client.prepend("a", b"<") is True
    assert client.get("a") == b"<mid>"
    assert client.append("nope", b"x") is False


def test_gets_cas(client):
    client.set("a", b"v1")
    value, cas = client.gets("a")
    assert value == b"v1" and cas
    assert client.cas("a", b"v2", cas) is True
    assert client.cas("a", b"v3", cas) is False
    assert client.cas("nope", b"v3", cas) is None
    assert client.get("a") == b"v2"


def test_incr_decr(client):
    client.set("n", b"10")
    assert client.incr("n", 5) == 15
    assert client.decr("n", 20) == 0
    assert client.incr("nope", 1) is None
    assert client.decr("nope", 1) is None
    client.set("n", b"%d" % (2**64 - 1))
    assert client.incr("n", 1) == 0


def test_touch(client):
    client.set("a", b"x")
    assert client.touch("a", 100) is True
    assert client.touch("nope", 100) is False


def test_delete(client):
    client.set("a", b"x")
    assert client.delete("a") is True
    assert client.delete("a") is False
    assert client.get("a") is None


def test_get_many_set_many_delete_many(client):
    assert client.set_many({"a": b"1", "b": b"2", "c": b"3"}) == []
    assert client.get_many(["a", "b", "c", "nope"]) == {"a": b"1", "b": b"2", "c": b"3"}
    assert client.gets_many(["a", "nope"]).keys() == {"a"}
    assert client.delete_many(["a", "b"]) is True
    assert client.get_many(["a", "b", "c"]) == {"c": b"3"}


def test_get_many_hundred_keys(client):
    data = {f"key{i}": b"v%d" % i for i in range(100)}
    assert client.set_many(data) == []
    assert client.get_many(list(data)) == data


def test_large_value(client):
    value = bytes(range(256)) * 2000
    client.set("big", value)
    assert client.get("big") == value


def test_noreply_client(server):
    c = Client(("127.0.0.1", server.port), connect_timeout=5, timeout=5, default_noreply=True)
    try:
        assert c.set("a", b"x") is True
        assert c.get("a") == b"x"
        c.delete("a")
        assert c.get("a") is None
    finally:
        c.close()


def test_flush_all_and_version(client):
    client.set("a", b"x")
    assert client.flush_all() is True
    assert client.get("a") is None
    assert client.version()


def test_stats(client):
    client.set("a", b"x")
    client.get("a")
    stats = client.stats()
    assert stats[b"curr_items"] >= 1
    assert stats[b"get_hits"] >= 1
    assert stats[b"threads"] == 2
    settings = client.stats("settings")
    assert settings[b"maxconns"] == 1024


def test_server_errors_surface_as_exceptions(client):
    client.set("a", b"x")
    with pytest.raises(MemcacheClientError):
        client.incr("a", 1)
    with pytest.raises(MemcacheServerError, match="object too large for cache"):
        client.set("big", b"v" * (2 * 1024 * 1024))
    assert client.get("a") == b"x"
