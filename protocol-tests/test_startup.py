"""Command-line flags the server must refuse, or honour, like memcached."""

import subprocess

import pytest

from helpers import base_args, free_port, value_reply


@pytest.mark.parametrize(
    "args,message",
    [
        (["-I", "2k"], "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 2048)"),
        (["-I", "1k"], "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 1024)"),
        (["-I", "600k"], "-I (item_size_max: 614400) must be evenly divisible by slab_chunk_max (bytes: 524288)"),
        (["-I", "0"], "Item max size cannot be less than 1024 bytes."),
        (["-I", "2000m"], "Cannot set item size limit higher than 1/2 of memory max."),
    ],
    ids=["I-2k", "I-1k", "I-600k", "I-0", "I-2000m"],
)
def test_refuses_bad_item_size(binary, args, message):
    proc = subprocess.run(
        [binary] + base_args(free_port()) + args,
        stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
    )
    assert proc.returncode == 64
    assert message in (proc.stdout + proc.stderr).decode(errors="replace")


@pytest.mark.fresh
def test_small_item_size_with_slab_chunk_max(make_server):
    """-I 2k needs a smaller slab_chunk_max; then the limit is 2048 bytes
    of item (header, key and data), so ~1.9 KB of value fits."""
    srv = make_server("-I", "2k", "-o", "slab_chunk_max=1024")
    with srv.connect() as c:
        assert c.stats(b"settings")["item_size_max"] == "2048"
        c.set(b"k", b"old")
        assert c.roundtrip(b"set a 0 0 1900\r\n" + b"v" * 1900 + b"\r\n") == b"STORED\r\n"
        assert c.roundtrip(b"set k 0 0 2100\r\n" + b"v" * 2100 + b"\r\n") == (
            b"SERVER_ERROR object too large for cache\r\n"
        )
        assert c.roundtrip(b"get k\r\n") == b"END\r\n"
        assert c.roundtrip(b"get a\r\n") == value_reply(b"a", b"v" * 1900) + b"END\r\n"
