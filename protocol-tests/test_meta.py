"""Meta commands (mg, ms, md, ma, me, mn) as memcached 1.6.18 answers them.

The reference server decides: where its doc/protocol.txt and its behaviour
differ (or where newer memcached versions accept more, such as the E and x
flags), these tests follow what 1.6.18 does on the wire.

cas uniques differ between servers, so no test asserts one: replies with a
cas are compared with the cas another command returned on the same server,
or have it masked (the "c0" an ms answers when it stores nothing is not a
cas unique). TTLs and last-access times are matched with one second of slack.
"""

import re
import time

import pytest

from helpers import value_reply

MB = 1024 * 1024
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
INVALID_FLAG = b"CLIENT_ERROR invalid flag\r\n"
DUPLICATE_FLAG = b"CLIENT_ERROR duplicate flag\r\n"
BAD_TOKEN = b"CLIENT_ERROR bad token in command line format\r\n"
INVALID_OR_DUP = b"CLIENT_ERROR invalid or duplicate flag\r\n"
OPAQUE_TOO_LONG = b"CLIENT_ERROR opaque token too long\r\n"
DECODE_ERROR = b"CLIENT_ERROR error decoding key\r\n"
MG_TOO_LONG = b"CLIENT_ERROR options flags are too long\r\n"
TOO_LONG = b"CLIENT_ERROR options flags too long\r\n"
INVALID_MS_MODE = b"CLIENT_ERROR invalid mode for ms M token\r\n"
INVALID_MA_MODE = b"CLIENT_ERROR invalid mode for ma M token\r\n"
M_LENGTH = b"CLIENT_ERROR incorrect length for M token\r\n"
NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"

# An opaque token is at most 32 bytes, the 'O' included.
OPAQUE_MAX = b"O" + b"o" * 31
OPAQUE_LONG = b"O" + b"o" * 32


def ms(key: bytes, value: bytes, flags: bytes = b"") -> bytes:
    """An ms request line plus its data block."""
    return b"ms %s %d%s\r\n%s\r\n" % (key, len(value), (b" " + flags) if flags else b"", value)


def mask_cas(reply: bytes) -> bytes:
    """Replaces every returned cas (c flag, me's cas=) with a placeholder, and
    me's last access (la=0 or 1 depending on a clock tick)."""
    reply = re.sub(rb"(?<= c)\d+(?=[ \r])", b"<cas>", reply)
    reply = re.sub(rb"la=[01] ", b"la=<la> ", reply)
    return re.sub(rb"cas=\d+", b"cas=<cas>", reply)


def cas_of(reply: bytes) -> int:
    m = re.search(rb" c(\d+)(?=[ \r])", reply)
    assert m, reply
    return int(m.group(1))


def ttl_of(reply: bytes) -> int:
    m = re.search(rb" t(-?\d+)(?=[ \r])", reply)
    assert m, reply
    return int(m.group(1))


def assert_ttl(reply: bytes, ttl: int) -> None:
    """The t flag of `reply` is `ttl`, or one less if the clock ticked."""
    got = ttl_of(reply)
    assert got in (ttl, ttl - 1), reply


# ---------------------------------------------------------------------------
# Table: request bytes -> exact reply bytes (each on a freshly flushed server)
# ---------------------------------------------------------------------------

HI = ms(b"foo", b"hi", b"F5")  # "HD\r\n": an item with value "hi", client flags 5

CASES = [
    # -- mn / me basics ----------------------------------------------------
    ("mn", b"mn\r\n", b"MN\r\n"),
    ("mn-with-args", b"mn foo bar\r\n", b"MN\r\n"),
    ("mn-twice", b"mn\r\nmn\r\n", b"MN\r\nMN\r\n"),
    ("me-miss", b"me foo\r\n", b"EN\r\n"),
    ("me-no-key", b"me\r\n", BAD_FORMAT),
    ("me-bad-base64", b"me !!! b\r\n", BAD_FORMAT),
    ("me-undecodable-key-with-b", b"me foo b\r\n", BAD_FORMAT),
    ("me-other-flag-ignored", b"me foo x\r\n", b"EN\r\n"),
    ("me-key-too-long", b"me " + b"k" * 251 + b"\r\n", BAD_FORMAT),
    # -- mg misses -------------------------------------------------------
    ("mg-no-key", b"mg\r\n", b"ERROR\r\n"),
    ("mg-miss", b"mg foo\r\n", b"EN\r\n"),
    ("mg-miss-v", b"mg foo v\r\n", b"EN\r\n"),
    ("mg-miss-hit-only-flags", b"mg foo s v f t c h l u\r\n", b"EN\r\n"),
    ("mg-miss-k-O", b"mg foo k O123\r\n", b"EN kfoo O123\r\n"),
    ("mg-miss-O-k", b"mg foo O123 k\r\n", b"EN O123 kfoo\r\n"),
    ("mg-miss-k-between-others", b"mg foo v k s O1 t\r\n", b"EN kfoo O1\r\n"),
    ("mg-miss-bare-O", b"mg foo O\r\n", b"EN O\r\n"),
    ("mg-miss-q", b"mg foo q\r\n", b""),
    ("mg-miss-q-k-O", b"mg foo q k O1 v\r\n", b""),
    ("mg-miss-q-then-mn", b"mg foo q v\r\nmn\r\n", b"MN\r\n"),
    ("mg-miss-P-L-ignored", b"mg foo P L\r\n", b"EN\r\n"),
    ("mg-miss-mode-ignored", b"mg foo MX\r\n", b"EN\r\n"),
    ("mg-miss-F-ignored", b"mg foo F5\r\n", b"EN\r\n"),
    ("mg-miss-I-ignored", b"mg foo I C5 D5 J5\r\n", b"EN\r\n"),
    ("mg-key-250", b"mg " + b"k" * 250 + b" k\r\n", b"EN k" + b"k" * 250 + b"\r\n"),
    ("mg-extra-spaces", b"mg  foo   v  k \r\n", b"EN kfoo\r\n"),
    ("mg-bare-lf", b"mg foo k\n", b"EN kfoo\r\n"),
    # -- mg hits: every flag alone ------------------------------------------
    ("mg-hit", HI + b"mg foo\r\n", b"HD\r\nHD\r\n"),
    ("mg-hit-v", HI + b"mg foo v\r\n", b"HD\r\nVA 2\r\nhi\r\n"),
    ("mg-hit-s", HI + b"mg foo s\r\n", b"HD\r\nHD s2\r\n"),
    ("mg-hit-f", HI + b"mg foo f\r\n", b"HD\r\nHD f5\r\n"),
    ("mg-hit-t-no-ttl", HI + b"mg foo t\r\n", b"HD\r\nHD t-1\r\n"),
    ("mg-hit-k", HI + b"mg foo k\r\n", b"HD\r\nHD kfoo\r\n"),
    ("mg-hit-O", HI + b"mg foo Oab12\r\n", b"HD\r\nHD Oab12\r\n"),
    ("mg-hit-O-max-length", HI + b"mg foo " + OPAQUE_MAX + b"\r\n", b"HD\r\nHD " + OPAQUE_MAX + b"\r\n"),
    ("mg-hit-h-first", HI + b"mg foo h\r\n", b"HD\r\nHD h0\r\n"),
    ("mg-hit-h-twice", HI + b"mg foo h\r\nmg foo h\r\n", b"HD\r\nHD h0\r\nHD h1\r\n"),
    ("mg-hit-h-after-u", HI + b"mg foo u\r\nmg foo h\r\n", b"HD\r\nHD\r\nHD h0\r\n"),
    ("mg-hit-h-after-plain", HI + b"mg foo\r\nmg foo h\r\n", b"HD\r\nHD\r\nHD h1\r\n"),
    ("mg-hit-h-u-stays-unfetched", HI + b"mg foo h u\r\nmg foo h\r\n", b"HD\r\nHD h0\r\nHD h0\r\n"),
    ("mg-hit-q", HI + b"mg foo q\r\n", b"HD\r\nHD\r\n"),
    ("mg-hit-q-v-k", HI + b"mg foo q v k\r\n", b"HD\r\nVA 2 kfoo\r\nhi\r\n"),
    ("mg-hit-u", HI + b"mg foo u v\r\n", b"HD\r\nVA 2\r\nhi\r\n"),
    ("mg-hit-empty-value", ms(b"foo", b"") + b"mg foo v s\r\n", b"HD\r\nVA 0 s0\r\n\r\n"),
    ("mg-hit-P-L-ignored", HI + b"mg foo P L v\r\n", b"HD\r\nVA 2\r\nhi\r\n"),
    # -- mg return order ----------------------------------------------------
    ("mg-order-1", HI + b"mg foo v k s f O9 t\r\n", b"HD\r\nVA 2 kfoo s2 f5 O9 t-1\r\nhi\r\n"),
    ("mg-order-2", HI + b"mg foo t O9 f s k v\r\n", b"HD\r\nVA 2 t-1 O9 f5 s2 kfoo\r\nhi\r\n"),
    ("mg-order-3", HI + b"mg foo f s v\r\n", b"HD\r\nVA 2 f5 s2\r\nhi\r\n"),
    ("mg-order-h-k-O", HI + b"mg foo h k O1 q u\r\n", b"HD\r\nHD h0 kfoo O1\r\n"),
    # -- mg N / R / T and the W Z X markers ----------------------------------------
    ("mg-N-creates-empty-item", b"mg foo N30 s v\r\n", b"VA 0 s0 W\r\n\r\n"),
    ("mg-N-second-sees-Z", b"mg foo N30\r\nmg foo N30\r\nmg foo\r\n", b"HD W\r\nHD Z\r\nHD Z\r\n"),
    ("mg-N-q-still-answers", b"mg foo q N30\r\nmg foo q N30\r\nmn\r\n", b"HD W\r\nHD Z\r\nMN\r\n"),
    ("mg-N-k-O-order", b"mg foo k N30 O7\r\n", b"HD kfoo O7 W\r\n"),
    ("mg-N-on-hit-no-win", HI + b"mg foo N30 v\r\n", b"HD\r\nVA 2\r\nhi\r\n"),
    ("mg-N-then-ms-clears-token", b"mg foo N30\r\n" + ms(b"foo", b"new") + b"mg foo N30 v\r\n",
     b"HD W\r\nHD\r\nVA 3\r\nnew\r\n"),
    ("mg-N-created-f0", b"mg foo N30 f h\r\nmg foo h\r\n", b"HD f0 h0 W\r\nHD h1 Z\r\n"),
    ("mg-R-no-ttl-no-win", HI + b"mg foo R30\r\n", b"HD\r\nHD\r\n"),
    ("mg-R-below-ttl-wins", ms(b"foo", b"x", b"T10") + b"mg foo R30\r\nmg foo R30\r\n",
     b"HD\r\nHD W\r\nHD Z\r\n"),
    ("mg-R-above-ttl", ms(b"foo", b"x", b"T10") + b"mg foo R5\r\n", b"HD\r\nHD\r\n"),
    ("mg-R-far-below-and-above", ms(b"foo", b"x", b"T100") + b"mg foo R10\r\nmg foo R101\r\n",
     b"HD\r\nHD\r\nHD W\r\n"),
    ("mg-R-after-win-Z-only", ms(b"foo", b"x", b"T10") + b"mg foo R30\r\nmg foo R5\r\n",
     b"HD\r\nHD W\r\nHD Z\r\n"),
    ("mg-T-before-R-wins", HI + b"mg foo T20 R30\r\n", b"HD\r\nHD W\r\n"),
    ("mg-R-before-T-no-win", HI + b"mg foo R30 T20\r\nmg foo R30\r\n", b"HD\r\nHD\r\nHD W\r\n"),
    ("mg-T-negative-expires", HI + b"mg foo T-1\r\nmg foo\r\n", b"HD\r\nHD\r\nEN\r\n"),
    ("mg-T0-clears-ttl", ms(b"foo", b"x", b"T100") + b"mg foo T0\r\nmg foo t\r\n",
     b"HD\r\nHD\r\nHD t-1\r\n"),
    ("mg-T-miss", b"mg foo T30 v\r\n", b"EN\r\n"),
    ("md-I-then-mg-X-W-Z", HI + b"md foo I\r\nmg foo v\r\nmg foo v\r\n",
     b"HD\r\nHD\r\nVA 2 X W\r\nhi\r\nVA 2 Z X\r\nhi\r\n"),
    ("md-I-twice-reissues-win", HI + b"md foo I\r\nmg foo\r\nmd foo I\r\nmg foo\r\nmg foo\r\n",
     b"HD\r\nHD\r\nHD X W\r\nHD\r\nHD X W\r\nHD Z X\r\n"),
    ("md-I-then-R", ms(b"foo", b"x", b"T10") + b"mg foo R30\r\nmd foo I\r\nmg foo R30\r\nmg foo R30\r\n",
     b"HD\r\nHD W\r\nHD\r\nHD X W\r\nHD Z X\r\n"),
    ("md-I-then-ms-clears-stale", HI + b"md foo I\r\n" + ms(b"foo", b"y") + b"mg foo v\r\n",
     b"HD\r\nHD\r\nHD\r\nVA 1\r\ny\r\n"),
    ("md-I-then-md-deletes", HI + b"md foo I\r\nmd foo\r\nmg foo\r\n", b"HD\r\nHD\r\nHD\r\nEN\r\n"),
    # -- mg errors --------------------------------------------------------
    ("mg-dup-flag", b"mg foo v v\r\n", DUPLICATE_FLAG),
    ("mg-dup-O", b"mg foo O1 O2\r\n", DUPLICATE_FLAG),
    ("mg-dup-b", b"mg Zm9v b b\r\n", DUPLICATE_FLAG),
    ("mg-high-byte-flag", b"mg foo \x80\r\n", DUPLICATE_FLAG),
    ("mg-del-byte-flag", b"mg foo \x7f\r\n", DUPLICATE_FLAG),
    ("mg-invalid-flag", b"mg foo !\r\n", INVALID_FLAG),
    ("mg-E-flag-rejected", b"mg foo E5\r\n", INVALID_FLAG),
    ("mg-x-flag-rejected", b"mg foo x\r\n", INVALID_FLAG),
    ("mg-S-flag-rejected", b"mg foo S10\r\n", INVALID_FLAG),
    ("mg-digit-flag", b"mg foo 1\r\n", INVALID_FLAG),
    ("mg-T-empty", b"mg foo T\r\n", BAD_TOKEN),
    ("mg-T-alpha", b"mg foo Tabc\r\n", BAD_TOKEN),
    ("mg-N-empty", b"mg foo N\r\n", BAD_TOKEN),
    ("mg-N-alpha", b"mg foo Nx\r\n", BAD_TOKEN),
    ("mg-R-empty", b"mg foo R\r\n", BAD_TOKEN),
    ("mg-C-alpha", b"mg foo Cx\r\n", BAD_TOKEN),
    ("mg-F-alpha", b"mg foo Fx\r\n", BAD_FORMAT),
    ("mg-F-negative", b"mg foo F-1\r\n", BAD_FORMAT),
    ("mg-J-alpha", b"mg foo Jx\r\n", b"CLIENT_ERROR invalid numeric initial value\r\n"),
    ("mg-D-alpha", b"mg foo Dx\r\n", b"CLIENT_ERROR invalid numeric delta value\r\n"),
    ("mg-M-long", b"mg foo Mxy\r\n", M_LENGTH),
    ("mg-M-empty", b"mg foo M\r\n", M_LENGTH),
    ("mg-key-251", b"mg " + b"k" * 251 + b" v\r\n", BAD_FORMAT),
    ("mg-17-flags-ok", b"mg foo " + b" ".join(bytes([c]) for c in b"bcfhklqstuv") + b" O1 T1 N1 R1 P L\r\n",
     DECODE_ERROR),
    ("mg-18-flags-too-long", b"mg foo a b c d e f g h i j k l m n o p q r\r\n", MG_TOO_LONG),
    ("mg-17-flags-invalid", b"mg foo a b c d e f g h i j k l m n o p q\r\n", INVALID_FLAG),
    ("mg-opaque-too-long", b"mg foo " + OPAQUE_LONG + b"\r\n", OPAQUE_TOO_LONG),
    ("mg-opaque-too-long-q", b"mg foo q " + OPAQUE_LONG + b"\r\nmn\r\n", OPAQUE_TOO_LONG + b"MN\r\n"),
    ("mg-opaque-too-long-hit", HI + b"mg foo v k " + OPAQUE_LONG + b"\r\n", b"HD\r\n" + OPAQUE_TOO_LONG),
    ("mg-error-first-bad-then-invalid", b"mg foo Tx !\r\n", INVALID_FLAG),
    ("mg-error-invalid-stops-at-once", b"mg foo ! v v\r\n", INVALID_FLAG),
    ("mg-error-dup-after-bad", b"mg foo Tx Tx\r\n", DUPLICATE_FLAG),
    ("mg-error-last-message-wins", b"mg foo Tx Jx\r\n", b"CLIENT_ERROR invalid numeric initial value\r\n"),
    ("mg-error-last-message-wins-2", b"mg foo Jx Tx\r\n", BAD_TOKEN),
    ("mg-error-F-keeps-earlier-message", b"mg foo Tx Fx\r\n", BAD_TOKEN),
    ("mg-error-F-then-T", b"mg foo Fx Tx\r\n", BAD_TOKEN),
    ("mg-error-decode-then-bad-token", b"mg !!! b Tx\r\n", BAD_TOKEN),
    ("mg-error-bad-token-then-decode", b"mg !!! Tx b\r\n", DECODE_ERROR),
    ("mg-error-does-not-create", b"mg foo N30 Tx\r\nmg foo\r\n", BAD_TOKEN + b"EN\r\n"),
    # -- base64 keys ------------------------------------------------------------
    ("b-ms-k", ms(b"Zm9v", b"hi", b"b k"), b"HD kZm9v b\r\n"),
    ("b-ms-then-plain-mg", ms(b"Zm9v", b"hi", b"b") + b"mg foo k v\r\n", b"HD\r\nVA 2 kZm9v b\r\nhi\r\n"),
    ("b-ms-then-b-mg", ms(b"Zm9v", b"hi", b"b") + b"mg Zm9v b k v\r\n", b"HD\r\nVA 2 kZm9v b\r\nhi\r\n"),
    ("b-set-then-b-mg", b"set foo 0 0 2\r\nhi\r\nmg Zm9v b k v\r\n", b"STORED\r\nVA 2 kfoo\r\nhi\r\n"),
    ("b-mg-miss-k", b"mg Zm9v b k\r\n", b"EN kZm9v b\r\n"),
    ("b-mg-miss-k-before-b", b"mg Zm9v k b\r\n", b"EN kZm9v b\r\n"),
    ("b-mg-N-created-not-binary", b"mg Zm9v b N30 k\r\nmg Zm9v b k\r\n", b"HD kfoo W\r\nHD kfoo Z\r\n"),
    ("b-binary-bytes", ms(b"AAEC", b"hi", b"b k") + b"mg AAEC b k v\r\nmd AAEC b k\r\nmg AAEC b k\r\n",
     b"HD kAAEC b\r\nVA 2 kAAEC b\r\nhi\r\nHD kAAEC b\r\nEN kAAEC b\r\n"),
    ("b-md-k-uses-request", b"set foo 0 0 1\r\nx\r\nmd Zm9v b k O1\r\n", b"STORED\r\nHD kZm9v b O1\r\n"),
    ("b-ma-k", b"ma Zm9v b N0 k v\r\nma Zm9v b k\r\nmg foo k v\r\n",
     b"VA 1 kZm9v b\r\n0\r\nHD kZm9v b\r\nVA 1 kfoo\r\n1\r\n"),
    ("b-ma-grow-loses-binary", ms(b"Zm9v", b"9", b"b") + b"ma Zm9v b k v\r\nmg Zm9v b k v\r\n",
     b"HD\r\nVA 2 kZm9v b\r\n10\r\nVA 2 kfoo\r\n10\r\n"),
    ("b-ma-in-place-keeps-binary", ms(b"Zm9v", b"8", b"b") + b"ma Zm9v b v\r\nmg Zm9v b k v\r\n",
     b"HD\r\nVA 1\r\n9\r\nVA 1 kZm9v b\r\n9\r\n"),
    ("b-append-loses-binary", ms(b"Zm9v", b"9", b"b") + ms(b"Zm9v", b"!", b"b MA k") + b"mg Zm9v b k v\r\n",
     b"HD\r\nHD kZm9v b\r\nVA 2 kfoo\r\n9!\r\n"),
    ("b-prepend-loses-binary", ms(b"Zm9v", b"9", b"b") + ms(b"Zm9v", b"!", b"b MP") + b"mg foo k v\r\n",
     b"HD\r\nHD\r\nVA 2 kfoo\r\n!9\r\n"),
    ("b-replace-keeps-binary", ms(b"Zm9v", b"9", b"b") + ms(b"Zm9v", b"8", b"b MR k") + b"mg foo k v\r\n",
     b"HD\r\nHD kZm9v b\r\nVA 1 kZm9v b\r\n8\r\n"),
    ("b-plain-ms-over-binary", ms(b"Zm9v", b"9", b"b") + ms(b"foo", b"!", b"k") + b"mg Zm9v b k v\r\n",
     b"HD\r\nHD kfoo\r\nVA 1 kfoo\r\n!\r\n"),
    ("b-classic-incr-grow", ms(b"Zm9v", b"9", b"b") + b"incr foo 1\r\nmg Zm9v b k v\r\n",
     b"HD\r\n10\r\nVA 2 kfoo\r\n10\r\n"),
    ("b-classic-decr-in-place", ms(b"Zm9v", b"19", b"b") + b"decr foo 10\r\nmg Zm9v b k v\r\n",
     b"HD\r\n9\r\nVA 2 kZm9v b\r\n9 \r\n"),
    ("b-classic-append", ms(b"Zm9v", b"9", b"b") + b"append foo 0 0 1\r\n!\r\nmg Zm9v b k v\r\n",
     b"HD\r\nSTORED\r\nVA 2 kfoo\r\n9!\r\n"),
    ("b-ms-undecodable-swallows", ms(b"foo", b"hi", b"k O5 b") + b"mn\r\n", DECODE_ERROR + b"MN\r\n"),
    ("b-ms-q-k-O", ms(b"Zm9v", b"hi", b"k O5 b c q") + ms(b"Zm9v", b"hi", b"k O5 b") + b"mn\r\n",
     b"HD kZm9v b O5\r\nMN\r\n"),
    # -- ms ---------------------------------------------------------------
    ("ms-basic", ms(b"foo", b"hi") + b"mg foo v f t\r\n", b"HD\r\nVA 2 f0 t-1\r\nhi\r\n"),
    ("ms-q", ms(b"foo", b"hi", b"q") + b"mg foo v\r\n", b"VA 2\r\nhi\r\n"),
    ("ms-k-O", ms(b"foo", b"hi", b"k O5") + ms(b"foo", b"hi", b"O5 k"), b"HD kfoo O5\r\nHD O5 kfoo\r\n"),
    ("ms-empty-value", ms(b"foo", b"") + b"mg foo v s\r\n", b"HD\r\nVA 0 s0\r\n\r\n"),
    ("ms-value-with-crlf", ms(b"foo", b"a\r\nb") + b"mg foo v\r\n", b"HD\r\nVA 4\r\na\r\nb\r\n"),
    ("ms-F", ms(b"foo", b"hi", b"F123") + b"mg foo f\r\n", b"HD\r\nHD f123\r\n"),
    ("ms-F-max", ms(b"foo", b"hi", b"F4294967295") + b"mg foo f\r\n", b"HD\r\nHD f4294967295\r\n"),
    ("ms-F-wraps-32-bits", ms(b"foo", b"hi", b"F4294967296") + b"mg foo f\r\n", b"HD\r\nHD f0\r\n"),
    ("ms-F-negative", ms(b"foo", b"hi", b"F-1") + b"mg foo\r\n", BAD_FORMAT + b"EN\r\n"),
    ("ms-F-alpha", ms(b"foo", b"hi", b"Fabc") + b"mg foo\r\n", BAD_FORMAT + b"EN\r\n"),
    ("ms-F-empty", ms(b"foo", b"hi", b"F") + b"mg foo\r\n", BAD_FORMAT + b"EN\r\n"),
    ("ms-T-negative-expired", ms(b"foo", b"hi", b"T-1") + b"mg foo\r\n", b"HD\r\nEN\r\n"),
    ("ms-T0", ms(b"foo", b"hi", b"T0") + b"mg foo t\r\n", b"HD\r\nHD t-1\r\n"),
    ("ms-T-alpha", ms(b"foo", b"hi", b"Tx") + b"mg foo\r\n", BAD_TOKEN + b"EN\r\n"),
    ("ms-C-alpha", ms(b"foo", b"hi", b"Cx"), BAD_TOKEN),
    ("ms-C-negative", ms(b"foo", b"hi", b"C-1"), BAD_TOKEN),
    ("ms-I-alone-is-set", ms(b"foo", b"hi", b"I") + b"mg foo v\r\n", b"HD\r\nVA 2\r\nhi\r\n"),
    ("ms-ignored-flags", ms(b"foo", b"hi", b"v h l t s f u R5 D5 J5 N5 P L") + b"mg foo v\r\n",
     b"HD\r\nVA 2\r\nhi\r\n"),
    ("ms-c-on-NS-is-0", ms(b"foo", b"x") + ms(b"foo", b"y", b"ME c"), b"HD\r\nNS c0\r\n"),
    ("ms-c-on-EX-is-0", ms(b"foo", b"x") + ms(b"foo", b"y", b"C1 c"), b"HD\r\nEX c0\r\n"),
    ("ms-c-on-NF-is-0", ms(b"foo", b"y", b"C1 c"), b"NF c0\r\n"),
    ("ms-q-NS-shown", ms(b"foo", b"x") + ms(b"foo", b"y", b"q ME c k O1") + b"mn\r\n",
     b"HD\r\nNS c0 kfoo O1\r\nMN\r\n"),
    ("ms-q-EX-NF-shown", ms(b"foo", b"x") + ms(b"foo", b"y", b"q C1") + ms(b"nope", b"y", b"q C1") + b"mn\r\n",
     b"HD\r\nEX\r\nNF\r\nMN\r\n"),
    # modes
    ("ms-ME-add", ms(b"foo", b"hi", b"ME") + ms(b"foo", b"ho", b"ME") + b"mg foo v\r\n",
     b"HD\r\nNS\r\nVA 2\r\nhi\r\n"),
    ("ms-MR-replace", ms(b"foo", b"hi", b"MR") + ms(b"foo", b"hi") + ms(b"foo", b"xx", b"MR") + b"mg foo v\r\n",
     b"NS\r\nHD\r\nHD\r\nVA 2\r\nxx\r\n"),
    ("ms-MA-MP", ms(b"foo", b"xx") + ms(b"foo", b"!", b"MA") + ms(b"foo", b"<", b"MP") + b"mg foo v\r\n",
     b"HD\r\nHD\r\nHD\r\nVA 4\r\n<xx!\r\n"),
    ("ms-MA-MP-miss", ms(b"foo", b"!", b"MA") + ms(b"foo", b"!", b"MP") + b"mg foo\r\n", b"NS\r\nNS\r\nEN\r\n"),
    ("ms-MS", ms(b"foo", b"hi") + ms(b"foo", b"ss", b"MS") + b"mg foo v\r\n", b"HD\r\nHD\r\nVA 2\r\nss\r\n"),
    ("ms-MA-keeps-flags-and-ttl", ms(b"foo", b"x", b"F123") + ms(b"foo", b"y", b"MA F999 T0") + b"mg foo f t v\r\n",
     b"HD\r\nHD\r\nVA 2 f123 t-1\r\nxy\r\n"),
    ("ms-MA-empty", ms(b"foo", b"x") + ms(b"foo", b"", b"MA") + b"mg foo v\r\n", b"HD\r\nHD\r\nVA 1\r\nx\r\n"),
    ("ms-MA-C0-no-check", ms(b"foo", b"x") + ms(b"foo", b"y", b"MA C0") + b"mg foo v\r\n",
     b"HD\r\nHD\r\nVA 2\r\nxy\r\n"),
    ("ms-MA-C-mismatch", ms(b"foo", b"x") + ms(b"foo", b"y", b"MA C1") + b"mg foo v\r\n",
     b"HD\r\nEX\r\nVA 1\r\nx\r\n"),
    ("ms-MA-C-missing", ms(b"foo", b"y", b"MA C1"), b"NS\r\n"),
    ("ms-ME-C-ignored", ms(b"foo", b"x") + ms(b"foo", b"y", b"ME C1") + ms(b"bar", b"y", b"ME C1"), b"HD\r\nNS\r\nHD\r\n"),
    ("ms-MR-C-mismatch", ms(b"foo", b"x") + ms(b"foo", b"y", b"MR C1") + ms(b"bar", b"y", b"MR C1"), b"HD\r\nEX\r\nNF\r\n"),
    ("ms-C0-existing", ms(b"foo", b"x") + ms(b"foo", b"y", b"C0"), b"HD\r\nEX\r\n"),
    ("ms-C0-missing", ms(b"foo", b"y", b"C0"), b"NF\r\n"),
    ("ms-C0-I", ms(b"foo", b"x") + ms(b"foo", b"y", b"C0 I") + b"mg foo v\r\n", b"HD\r\nEX\r\nVA 1\r\nx\r\n"),
    ("ms-mode-lower-case", ms(b"foo", b"hi", b"Ms") + b"mg foo\r\n", INVALID_MS_MODE + b"EN\r\n"),
    ("ms-mode-X", ms(b"foo", b"hi", b"MX") + b"mg foo\r\n", INVALID_MS_MODE + b"EN\r\n"),
    ("ms-mode-I", ms(b"foo", b"hi", b"MI"), INVALID_MS_MODE),
    ("ms-mode-digit", ms(b"foo", b"hi", b"M1"), INVALID_MS_MODE),
    ("ms-mode-empty", ms(b"foo", b"hi", b"M"), M_LENGTH),
    ("ms-mode-long", ms(b"foo", b"hi", b"MSS"), M_LENGTH),
    ("ms-mode-q-error-shown", ms(b"foo", b"hi", b"q MX") + b"mn\r\n", INVALID_MS_MODE + b"MN\r\n"),
    # errors
    ("ms-no-length", b"ms foo\r\nhi\r\n", BAD_FORMAT + b"ERROR\r\n"),
    ("ms-no-key", b"ms\r\n", b"ERROR\r\n"),
    ("ms-length-alpha", b"ms foo abc\r\nhi\r\n", BAD_FORMAT + b"ERROR\r\n"),
    ("ms-length-negative", b"ms foo -1\r\nhi\r\n", BAD_FORMAT + b"ERROR\r\n"),
    ("ms-length-int-max-minus-1", b"ms foo 2147483646\r\n", BAD_FORMAT),
    ("ms-length-int-max", b"ms foo 2147483647\r\n", BAD_FORMAT),
    ("ms-length-trailing-space", b"ms foo 2 \r\nhi\r\n", b"HD\r\n"),
    ("ms-key-251-no-swallow", b"ms " + b"k" * 251 + b" 5\r\nhello\r\n", BAD_FORMAT + b"ERROR\r\n"),
    ("ms-invalid-flag-swallows", ms(b"foo", b"hi", b"!") + b"mg foo\r\n", INVALID_FLAG + b"EN\r\n"),
    ("ms-x-flag-rejected", ms(b"foo", b"hi", b"x"), INVALID_FLAG),
    ("ms-E-flag-rejected", ms(b"foo", b"hi", b"E5"), INVALID_FLAG),
    ("ms-S-flag-rejected", ms(b"foo", b"hi", b"S100") + b"mg foo\r\n", INVALID_FLAG + b"EN\r\n"),
    ("ms-dup-flag-swallows", ms(b"foo", b"hi", b"T1 T2"), DUPLICATE_FLAG),
    ("ms-noreply-is-invalid", ms(b"foo", b"hi", b"noreply"), INVALID_FLAG),
    ("ms-opaque-too-long", ms(b"foo", b"hi", b"k " + OPAQUE_LONG) + b"mg foo\r\n", OPAQUE_TOO_LONG + b"EN\r\n"),
    ("ms-opaque-max", ms(b"foo", b"hi", OPAQUE_MAX), b"HD " + OPAQUE_MAX + b"\r\n"),
    ("ms-mode-error-beats-opaque", ms(b"foo", b"hi", b"k MX " + OPAQUE_LONG), INVALID_MS_MODE),
    ("ms-opaque-then-mode", ms(b"foo", b"hi", OPAQUE_LONG + b" MX"), INVALID_MS_MODE),
    ("ms-flag-error-beats-mode", ms(b"foo", b"hi", b"MX Tx"), BAD_TOKEN),
    ("ms-F-error-keeps-T-message", ms(b"foo", b"hi", b"Tx Fx"), BAD_TOKEN),
    ("ms-F-error-after-T-error", ms(b"foo", b"hi", b"Fx Tx"), BAD_TOKEN),
    ("ms-17-tokens-too-long", b"ms foo 2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\nhi\r\n", TOO_LONG + b"ERROR\r\n"),
    ("ms-16-flags-ok", b"ms foo 2 b k c q O1 T0 F1 I P L s t f h l\r\nhi\r\n", DECODE_ERROR),
    ("ms-bad-chunk", b"ms foo 2\r\nhello\r\nmg foo v\r\n", BAD_CHUNK + b"ERROR\r\nEN\r\n"),
    ("ms-bad-chunk-short-tail", b"ms foo 2\r\nhiX\r\nmg foo v\r\n", BAD_CHUNK + b"ERROR\r\nEN\r\n"),
    ("ms-bad-chunk-q", b"ms foo 2 q\r\nhello\r\nmn\r\n", BAD_CHUNK + b"ERROR\r\nMN\r\n"),
    ("ms-bad-chunk-keeps-old", ms(b"foo", b"old") + b"ms foo 2\r\nhello\r\nmg foo v\r\n",
     b"HD\r\n" + BAD_CHUNK + b"ERROR\r\nVA 3\r\nold\r\n"),
    # -- md ---------------------------------------------------------------
    ("md-miss", b"md foo\r\n", b"NF\r\n"),
    ("md-hit-then-miss", HI + b"md foo\r\nmd foo\r\nmg foo\r\n", b"HD\r\nHD\r\nNF\r\nEN\r\n"),
    ("md-k-O", HI + b"md foo k O1\r\nmd foo O1 k\r\n", b"HD\r\nHD kfoo O1\r\nNF O1 kfoo\r\n"),
    ("md-q-hides-HD", HI + b"md foo q\r\nmg foo\r\nmn\r\n", b"HD\r\nEN\r\nMN\r\n"),
    ("md-q-shows-NF", b"md foo q k O1\r\nmn\r\n", b"NF kfoo O1\r\nMN\r\n"),
    ("md-C-mismatch", HI + b"md foo C1\r\nmd foo C1 q\r\nmg foo\r\n", b"HD\r\nEX\r\nEX\r\nHD\r\n"),
    ("md-C0", HI + b"md foo C0\r\n", b"HD\r\nEX\r\n"),
    ("md-C-miss", b"md foo C1\r\n", b"NF\r\n"),
    ("md-T-without-I-deletes", HI + b"md foo T30\r\nmg foo t\r\n", b"HD\r\nHD\r\nEN\r\n"),
    ("md-I-keeps-value", HI + b"md foo I\r\nmg foo v f s\r\n", b"HD\r\nHD\r\nVA 2 f5 s2 X W\r\nhi\r\n"),
    ("md-I-T-negative", HI + b"md foo I T-1\r\nmg foo\r\n", b"HD\r\nHD\r\nEN\r\n"),
    ("md-I-q", HI + b"md foo I q\r\nmg foo\r\nmn\r\n", b"HD\r\nHD X W\r\nMN\r\n"),
    ("md-I-miss", b"md foo I\r\nmd foo I q\r\nmn\r\n", b"NF\r\nNF\r\nMN\r\n"),
    ("md-ignored-flags", HI + b"md foo v s f h l t u N5 R5 F5 J5 D5 MS P L\r\nmg foo\r\n", b"HD\r\nHD\r\nEN\r\n"),
    ("md-M-any-mode", HI + b"md foo MZ\r\n", b"HD\r\nHD\r\n"),
    ("md-invalid-flag", HI + b"md foo x\r\nmg foo\r\n", b"HD\r\n" + INVALID_OR_DUP + b"HD\r\n"),
    ("md-dup-flag", b"md foo I I\r\n", INVALID_OR_DUP),
    ("md-bad-token", b"md foo Cx\r\nmd foo C\r\nmd foo Tx\r\n", INVALID_OR_DUP * 3),
    ("md-M-length", b"md foo M5 S5\r\n", INVALID_OR_DUP),
    ("md-bad-base64", b"md !!! b\r\n", INVALID_OR_DUP),
    ("md-no-key", b"md\r\n", b"ERROR\r\n"),
    ("md-key-251", b"md " + b"k" * 251 + b"\r\n", BAD_FORMAT),
    ("md-too-many-tokens", b"md foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n", TOO_LONG),
    ("md-opaque-too-long", HI + b"md foo " + OPAQUE_LONG + b"\r\nmg foo v\r\n",
     b"HD\r\n" + OPAQUE_TOO_LONG + b"VA 2\r\nhi\r\n"),
    ("md-I-opaque-too-long-no-effect", HI + b"md foo I T30 " + OPAQUE_LONG + b"\r\nmg foo t\r\n",
     b"HD\r\n" + OPAQUE_TOO_LONG + b"HD t-1\r\n"),
    # -- ma ---------------------------------------------------------------
    ("ma-miss", b"ma n\r\nma n v\r\n", b"NF\r\nNF\r\n"),
    ("ma-miss-q-shown", b"ma n q k O1\r\nmn\r\n", b"NF kn O1\r\nMN\r\n"),
    ("ma-incr", b"set n 0 0 1\r\n5\r\nma n\r\nma n v\r\nmg n v\r\n", b"STORED\r\nHD\r\nVA 1\r\n7\r\nVA 1\r\n7\r\n"),
    ("ma-D", b"set n 0 0 1\r\n5\r\nma n v D10\r\n", b"STORED\r\nVA 2\r\n15\r\n"),
    ("ma-modes", b"set n 0 0 2\r\n50\r\nma n v MD D3\r\nma n v M- D4\r\nma n v M+\r\nma n v MI D2\r\n",
     b"STORED\r\nVA 2\r\n47\r\nVA 2\r\n43\r\nVA 2\r\n44\r\nVA 2\r\n46\r\n"),
    ("ma-mode-lower-case", b"set n 0 0 1\r\n5\r\nma n Mi\r\nma n Md\r\nma n Mx\r\nmg n v\r\n",
     b"STORED\r\n" + INVALID_MA_MODE * 3 + b"VA 1\r\n5\r\n"),
    ("ma-mode-invalid-on-miss", b"ma n Mx\r\n", INVALID_MA_MODE),
    ("ma-mode-length", b"ma n MDD\r\nma n M\r\n", INVALID_OR_DUP * 2),
    ("ma-decr-floor", b"set n 0 0 1\r\n5\r\nma n v MD D100\r\n", b"STORED\r\nVA 1\r\n0\r\n"),
    ("ma-incr-wraps", b"set n 0 0 20\r\n18446744073709551615\r\nma n v\r\n", b"STORED\r\nVA 1\r\n0\r\n"),
    ("ma-max-delta", b"set n 0 0 1\r\n0\r\nma n v D18446744073709551615\r\nma n v MD D5\r\n",
     b"STORED\r\nVA 20\r\n18446744073709551615\r\nVA 20\r\n18446744073709551610\r\n"),
    ("ma-delta-overflow", b"set n 0 0 1\r\n0\r\nma n v D18446744073709551616\r\n", b"STORED\r\n" + INVALID_OR_DUP),
    ("ma-decr-shrinks-in-place", b"set n 0 0 3\r\n100\r\nma n MD v\r\nmg n v s\r\n",
     b"STORED\r\nVA 2\r\n99\r\nVA 3 s3\r\n99 \r\n"),
    ("ma-grow-after-shrink", b"set n 0 0 2\r\n10\r\nma n MD v\r\nma n v D91\r\nmg n v s\r\n",
     b"STORED\r\nVA 1\r\n9\r\nVA 3\r\n100\r\nVA 3 s3\r\n100\r\n"),
    ("ma-leading-zeros", b"set n 0 0 5\r\n00042\r\nma n v\r\nmg n v\r\n", b"STORED\r\nVA 2\r\n43\r\nVA 5\r\n43   \r\n"),
    ("ma-non-numeric", b"set n 0 0 3\r\nabc\r\nma n\r\nma n q\r\nmg n v\r\n",
     b"STORED\r\n" + NON_NUMERIC * 2 + b"VA 3\r\nabc\r\n"),
    ("ma-empty-value", b"set n 0 0 0\r\n\r\nma n v\r\n", b"STORED\r\n" + NON_NUMERIC),
    ("ma-trailing-space-value", b"set n 0 0 3\r\n12 \r\nma n v\r\n", b"STORED\r\nVA 2\r\n13\r\n"),
    ("ma-leading-space-value", b"set n 0 0 3\r\n 12\r\nma n v\r\n", b"STORED\r\nVA 2\r\n13\r\n"),
    ("ma-too-long-number", b"set n 0 0 21\r\n184467440737095516150\r\nma n v\r\n", b"STORED\r\n" + NON_NUMERIC),
    ("ma-N-autovivify", b"ma n N0 v\r\nma n N0 v\r\nmg n v\r\n", b"VA 1\r\n0\r\nVA 1\r\n1\r\nVA 1\r\n1\r\n"),
    ("ma-N-J", b"ma n N0 J42 v\r\nma n N0 J42 v D8\r\n", b"VA 2\r\n42\r\nVA 2\r\n50\r\n"),
    ("ma-N-J-decr", b"ma n N0 J42 MD v\r\n", b"VA 2\r\n42\r\n"),
    ("ma-N-J-max", b"ma n N0 J18446744073709551615 v\r\n", b"VA 20\r\n18446744073709551615\r\n"),
    ("ma-J-without-N", b"ma n J42 v\r\n", b"NF\r\n"),
    ("ma-J-overflow", b"ma n N0 J18446744073709551616 v\r\n", INVALID_OR_DUP),
    ("ma-N-q-created-shown", b"ma m N0 J42 v q\r\nma m N0 J42 v q\r\nma m q\r\nmn\r\n", b"VA 2\r\n42\r\nMN\r\n"),
    ("ma-q-hides-success", b"set n 0 0 1\r\n5\r\nma n q\r\nma n q v\r\nmg n v\r\n", b"STORED\r\nVA 1\r\n7\r\n"),
    ("ma-k-O-order", b"set n 0 0 1\r\n5\r\nma n v k O9\r\nma n O9 k\r\n", b"STORED\r\nVA 1 kn O9\r\n6\r\nHD O9 kn\r\n"),
    ("ma-t-no-ttl", b"set n 0 0 1\r\n5\r\nma n t v\r\n", b"STORED\r\nVA 1 t-1\r\n6\r\n"),
    ("ma-N-created-t-order", b"ma n t N0\r\nma m N0 t\r\n", b"HD t-1\r\nHD t-1\r\n"),
    ("ma-T-negative-expires", b"set n 0 0 1\r\n5\r\nma n T-1\r\nmg n\r\n", b"STORED\r\nHD\r\nEN\r\n"),
    ("ma-T-miss", b"ma n T30 v\r\n", b"NF\r\n"),
    ("ma-C-mismatch", b"set n 0 0 1\r\n5\r\nma n C1 v\r\nma n C1 q\r\nmg n v\r\n", b"STORED\r\nEX\r\nEX\r\nVA 1\r\n5\r\n"),
    ("ma-C0-no-check", b"set n 0 0 1\r\n5\r\nma n C0 v\r\n", b"STORED\r\nVA 1\r\n6\r\n"),
    ("ma-C-miss", b"ma n C1\r\n", b"NF\r\n"),
    ("ma-C-miss-N", b"ma n C1 N0 v\r\n", b"VA 1\r\n0\r\n"),
    ("ma-F-ignored", b"set n 0 0 1\r\n5\r\nma n F9 v\r\nmg n f\r\n", b"STORED\r\nVA 1\r\n6\r\nHD f0\r\n"),
    ("ma-keeps-client-flags", b"set n 7 0 1\r\n5\r\nma n v\r\nma n v D9\r\nmg n f\r\n", b"STORED\r\nVA 1\r\n6\r\nVA 2\r\n15\r\nHD f7\r\n"),
    ("ma-ignored-flags", b"set n 0 0 1\r\n5\r\nma n s f h l u P L I\r\n", b"STORED\r\nHD\r\n"),
    ("ma-errors-all-invalid-or-dup",
     b"ma n Dabc\r\nma n D\r\nma n D-1\r\nma n Jx\r\nma n Tx\r\nma n Cx\r\nma n Nx\r\nma n v v\r\nma n !\r\nma n x\r\nma n b\r\nma n Fx\r\n",
     INVALID_OR_DUP * 12),
    ("ma-no-key", b"ma\r\n", b"ERROR\r\n"),
    ("ma-key-251", b"ma " + b"k" * 251 + b"\r\n", BAD_FORMAT),
    ("ma-too-many-tokens", b"ma n 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n", TOO_LONG),
    ("ma-opaque-too-long-applies-delta", b"set n 0 0 1\r\n5\r\nma n " + OPAQUE_LONG + b"\r\nmg n v\r\n",
     b"STORED\r\n" + OPAQUE_TOO_LONG + b"VA 1\r\n6\r\n"),
    ("ma-opaque-too-long-miss", b"ma n " + OPAQUE_LONG + b"\r\n", OPAQUE_TOO_LONG),
    ("ma-opaque-too-long-vivifies", b"ma n N0 J7 " + OPAQUE_LONG + b"\r\nmg n v\r\n", OPAQUE_TOO_LONG + b"VA 1\r\n7\r\n"),
    ("ma-on-stale-in-place-keeps-stale", b"set n 0 0 1\r\n8\r\nmd n I\r\nma n\r\nmg n v\r\n",
     b"STORED\r\nHD\r\nHD\r\nVA 1 X W\r\n9\r\n"),
    ("ma-grow-makes-fresh-item", b"set n 0 0 1\r\n8\r\nmd n I\r\nma n D5\r\nmg n v h\r\n",
     b"STORED\r\nHD\r\nHD\r\nVA 2 h0\r\n13\r\n"),
    ("incr-grow-makes-fresh-item", b"set n 0 0 1\r\n9\r\nget n\r\nincr n 1\r\nmg n h\r\n",
     b"STORED\r\n" + value_reply(b"n", b"9") + b"END\r\n10\r\nHD h0\r\n"),
    ("incr-in-place-keeps-fetched", b"set n 0 0 1\r\n8\r\nget n\r\nincr n 1\r\nmg n h\r\n",
     b"STORED\r\n" + value_reply(b"n", b"8") + b"END\r\n9\r\nHD h1\r\n"),
    ("incr-in-place-keeps-stale", b"set n 0 0 1\r\n8\r\nmd n I\r\nincr n 1\r\nmg n v\r\nmg n v\r\n",
     b"STORED\r\nHD\r\n9\r\nVA 1 X W\r\n9\r\nVA 1 Z X\r\n9\r\n"),
    # -- unknown m-commands -------------------------------------------------------
    ("mx-unknown", b"mx foo\r\n", b"ERROR\r\n"),
    ("m-alone", b"m foo\r\n", b"ERROR\r\n"),
    ("mgg-unknown", b"mgg foo\r\n", b"ERROR\r\n"),
    ("MG-upper", b"MG foo\r\n", b"ERROR\r\n"),
    ("mgfoo", b"mgfoo\r\n", b"ERROR\r\n"),
]


@pytest.mark.parametrize("request_bytes,reply", [pytest.param(r, e, id=i) for i, r, e in CASES])
def test_meta_table(conn, request_bytes, reply):
    assert conn.roundtrip(request_bytes) == reply


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------
# base64 keys: memcached's own decoder (skips foreign bytes, stops at padding)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "token,reply",
    [
        (b"Zm9v", b"EN kZm9v b\r\n"),
        (b"Zg==", b"EN kZg== b\r\n"),
        (b"Zm8=", b"EN kZm8= b\r\n"),
        (b"AA==", b"EN kAA== b\r\n"),
        (b"Zh==", b"EN kZg== b\r\n"),  # non-zero trailing bits are dropped
        (b"Zm9vYh==", b"EN kZm9vYg== b\r\n"),
        (b"Zm9vYmF=", b"EN kZm9vYmE= b\r\n"),
        (b"Zg=a", b"EN kZgA= b\r\n"),
        (b"Zg==Zm9v", b"EN kZg== b\r\n"),  # decoding stops after a padded block
        (b"Zm9v!", b"EN kZm9v b\r\n"),  # bytes outside the alphabet are skipped
        (b"Z.m.9.v", b"EN kZm9v b\r\n"),
        (b"Zm9vYg", DECODE_ERROR),
        (b"Zm9", DECODE_ERROR),
        (b"Zm9vZ", DECODE_ERROR),
        (b"Zm9v====", DECODE_ERROR),
        (b"====", DECODE_ERROR),
        (b"Z===", DECODE_ERROR),
        (b"-_-_", DECODE_ERROR),
        (b"!!!", DECODE_ERROR),
        (b"=", DECODE_ERROR),
    ],
)
def test_base64_key_decoding(conn, token, reply):
    assert conn.roundtrip(b"mg " + token + b" b k\r\n") == reply


def test_long_base64_key(conn):
    token = b"QUJD" * 61 + b"QUI="  # 248 chars: "ABC" * 61 + "AB"
    key = b"ABC" * 61 + b"AB"
    assert conn.roundtrip(ms(token, b"v", b"b") + b"mg " + key + b" v k\r\n") == (
        b"HD\r\nVA 1 k" + token + b" b\r\nv\r\n"
    )


# ---------------------------------------------------------------------------
# Side effects of errors found while answering
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "flags,after",
    [
        (b"T100 " + OPAQUE_LONG, b"HD t100\r\n"),  # T before the bad opaque applies
        (OPAQUE_LONG + b" T100", b"HD t-1\r\n"),  # ...after it does not
        (OPAQUE_LONG, b"HD t-1\r\n"),
    ],
    ids=["T-first", "O-first", "O-only"],
)
def test_mg_opaque_error_keeps_earlier_effects(conn, flags, after):
    assert conn.roundtrip(ms(b"foo", b"hi")) == b"HD\r\n"
    assert conn.roundtrip(b"mg foo " + flags + b"\r\n") == OPAQUE_TOO_LONG
    reply = conn.roundtrip(b"mg foo t\r\n")
    if after == b"HD t-1\r\n":
        assert reply == after
    else:
        assert_ttl(reply, 100)


@pytest.mark.parametrize(
    "flags,fetched",
    [(b"", b"h1"), (b"k v", b"h1"), (b"u", b"h0"), (b"T0", b"h0"), (b"h", b"h0"), (b"l", b"h0"), (b"R5", b"h0")],
    ids=["plain", "k-v", "u", "T", "h", "l", "R"],
)
def test_mg_opaque_error_and_fetched_flag(conn, flags, fetched):
    """Without N/T/R/h/l the item was already bumped when the error shows."""
    assert conn.roundtrip(ms(b"foo", b"hi")) == b"HD\r\n"
    assert conn.roundtrip(b"mg foo %s %s\r\n" % (flags, OPAQUE_LONG)) == OPAQUE_TOO_LONG
    assert conn.roundtrip(b"mg foo h\r\n") == b"HD " + fetched + b"\r\n"


def test_mg_opaque_error_after_vivify_keeps_the_item(conn):
    assert conn.roundtrip(b"mg foo N30 " + OPAQUE_LONG + b"\r\n") == OPAQUE_TOO_LONG
    reply = conn.roundtrip(b"mg foo t v\r\n")
    assert re.fullmatch(rb"VA 0 t(29|30)\r\n\r\n", reply), reply  # no W, no Z: no token went out


def test_mg_opaque_error_before_vivify_ttl(conn):
    assert conn.roundtrip(b"mg foo " + OPAQUE_LONG + b" N30\r\n") == OPAQUE_TOO_LONG
    assert conn.roundtrip(b"mg foo t v\r\nmg foo\r\n") == b"VA 0 t-1\r\n\r\nHD\r\n"


def test_mg_opaque_error_on_stale_item_sends_no_token(conn):
    assert conn.roundtrip(ms(b"foo", b"hi") + b"md foo I\r\n") == b"HD\r\nHD\r\n"
    assert conn.roundtrip(b"mg foo " + OPAQUE_LONG + b"\r\n") == OPAQUE_TOO_LONG
    assert conn.roundtrip(b"mg foo\r\nmg foo\r\n") == b"HD X W\r\nHD Z X\r\n"


# ---------------------------------------------------------------------------
# TTLs (t, T, N, me exp=) with one second of slack
# ---------------------------------------------------------------------------

def test_ms_T_then_mg_t(conn):
    assert conn.roundtrip(ms(b"foo", b"hi", b"T100")) == b"HD\r\n"
    reply = conn.roundtrip(b"mg foo t v\r\n")
    assert re.fullmatch(rb"VA 2 t\d+\r\nhi\r\n", reply), reply
    assert_ttl(reply, 100)


def test_mg_t_before_and_after_T(conn):
    assert conn.roundtrip(ms(b"foo", b"hi")) == b"HD\r\n"
    reply = conn.roundtrip(b"mg foo t T100\r\n")
    assert reply == b"HD t-1\r\n"
    assert_ttl(conn.roundtrip(b"mg foo t\r\n"), 100)
    reply = conn.roundtrip(b"mg foo T50 t\r\n")
    assert re.fullmatch(rb"HD t\d+\r\n", reply)
    assert_ttl(reply, 50)


def test_mg_T_to_a_past_absolute_time_shows_memcached_clock(make_server):
    # Found by scripts/wire-fuzz.py: an absolute exptime already past is stored as relative
    # second 1, and t shows 1 - current_time, which starts at 62 (memcached sets its
    # process_started 62 seconds back), wrapped to 32 bits.
    conn = make_server().connect()
    assert conn.roundtrip(ms(b"foo", b"hi")) == b"HD\r\n"
    reply = conn.roundtrip(b"mg foo T2592001 t\r\n")
    m = re.fullmatch(rb"HD t(\d+)\r\n", reply)
    assert m, reply
    # A fresh server: a few seconds of uptime at most.
    assert 2**32 - 61 - 5 <= int(m.group(1)) <= 2**32 - 61, reply
    assert conn.roundtrip(b"mg foo t\r\n") == b"EN\r\n"


def test_mg_T_counts_as_touch_and_keeps_value(conn):
    assert conn.roundtrip(ms(b"foo", b"hi", b"T5")) == b"HD\r\n"
    reply = conn.roundtrip(b"mg foo T200 v t\r\n")
    assert re.fullmatch(rb"VA 2 t\d+\r\nhi\r\n", reply), reply
    assert_ttl(reply, 200)


def test_mg_N_sets_ttl_of_created_item_only(conn):
    reply = conn.roundtrip(b"mg foo N30 t\r\n")
    assert re.fullmatch(rb"HD t\d+ W\r\n", reply), reply
    assert_ttl(reply, 30)
    reply = conn.roundtrip(b"mg foo N500 t\r\n")
    assert re.fullmatch(rb"HD t\d+ Z\r\n", reply), reply
    assert_ttl(reply, 30)


def test_mg_t_before_N_shows_no_ttl(conn):
    assert conn.roundtrip(b"mg foo t N30\r\n") == b"HD t-1 W\r\n"
    assert_ttl(conn.roundtrip(b"mg foo t\r\n"), 30)


def test_mg_N_negative_ttl_wraps_like_an_unsigned(conn):
    """An already expired vivified item shows its (negative) ttl as a u32."""
    reply = conn.roundtrip(b"mg foo N-1 t\r\n")
    m = re.fullmatch(rb"HD t(\d+) W\r\n", reply)
    assert m, reply
    assert 2**31 <= int(m.group(1)) < 2**32
    assert conn.roundtrip(b"mg foo\r\n") == b"EN\r\n"


def test_ms_append_keeps_ttl(conn):
    assert conn.roundtrip(ms(b"foo", b"x", b"T100") + ms(b"foo", b"y", b"MA T0")) == b"HD\r\nHD\r\n"
    reply = conn.roundtrip(b"mg foo t v\r\n")
    assert_ttl(reply, 100)
    assert reply.endswith(b"\r\nxy\r\n")


def test_ms_add_refused_keeps_ttl(conn):
    assert conn.roundtrip(ms(b"foo", b"x", b"T100") + ms(b"foo", b"z", b"ME T5")) == b"HD\r\nNS\r\n"
    assert_ttl(conn.roundtrip(b"mg foo t\r\n"), 100)


def test_ms_replace_takes_new_ttl(conn):
    assert conn.roundtrip(ms(b"foo", b"x", b"T100") + ms(b"foo", b"y", b"MR")) == b"HD\r\nHD\r\n"
    assert conn.roundtrip(b"mg foo t v\r\n") == b"VA 1 t-1\r\ny\r\n"


def test_md_I_T_sets_ttl(conn):
    assert conn.roundtrip(ms(b"foo", b"x") + b"md foo I T30\r\n") == b"HD\r\nHD\r\n"
    reply = conn.roundtrip(b"mg foo t v\r\n")
    assert re.fullmatch(rb"VA 1 t\d+ X W\r\nx\r\n", reply), reply
    assert_ttl(reply, 30)


def test_ma_T_and_t_order(conn):
    assert conn.roundtrip(b"set n 0 0 1\r\n5\r\n") == b"STORED\r\n"
    assert conn.roundtrip(b"ma n t T30 v\r\n") == b"VA 1 t-1\r\n6\r\n"
    reply = conn.roundtrip(b"ma n T60 t v\r\n")
    assert re.fullmatch(rb"VA 1 t\d+\r\n7\r\n", reply), reply
    assert_ttl(reply, 60)


def test_ma_N_ttl_only_for_created_item(conn):
    reply = conn.roundtrip(b"ma n N30 t v\r\n")
    assert re.fullmatch(rb"VA 1 t\d+\r\n0\r\n", reply), reply
    assert_ttl(reply, 30)
    reply = conn.roundtrip(b"ma n N500 t v\r\n")
    assert_ttl(reply, 30)
    assert reply.endswith(b"\r\n1\r\n")


def test_me_hit_fields(conn):
    assert conn.roundtrip(ms(b"foo", b"hi", b"F3")) == b"HD\r\n"
    reply = conn.roundtrip(b"me foo\r\n")
    assert re.fullmatch(rb"ME foo exp=-1 la=[01] cas=\d+ fetch=no cls=1 size=\d+\r\n", reply), reply
    assert conn.roundtrip(b"mg foo h\r\n") == b"HD h0\r\n"  # me does not count as a fetch
    reply = conn.roundtrip(b"me foo\r\n")
    assert b" fetch=yes " in reply


def test_me_cas_and_size_match_other_commands(conn):
    assert conn.roundtrip(ms(b"foo", b"hello")) == b"HD\r\n"
    reply = conn.roundtrip(b"me foo\r\n")
    # A classic set of the same value gives the same item size and class.
    assert conn.roundtrip(b"set bar 0 0 5\r\nhello\r\n") == b"STORED\r\n"
    assert mask_cas(conn.roundtrip(b"me bar\r\n")) == mask_cas(reply).replace(b"foo", b"bar")
    cas = cas_of(conn.roundtrip(b"mg foo c\r\n"))
    assert b" cas=%d " % cas in reply


def test_me_exp_counts_down(conn):
    assert conn.roundtrip(ms(b"foo", b"hi", b"T100")) == b"HD\r\n"
    reply = conn.roundtrip(b"me foo\r\n")
    m = re.search(rb" exp=(-?\d+) ", reply)
    assert m and int(m.group(1)) in (-100, -99), reply


def test_me_binary_keys(conn):
    assert conn.roundtrip(ms(b"Zm9v", b"hi", b"b")) == b"HD\r\n"
    assert mask_cas(conn.roundtrip(b"me foo\r\nme Zm9v b\r\n")) == (
        b"ME Zm9v exp=-1 la=<la> cas=<cas> fetch=no cls=1 size=64\r\n" * 2
    )
    assert conn.roundtrip(b"set foo 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert mask_cas(conn.roundtrip(b"me Zm9v b\r\n")) == b"ME foo exp=-1 la=<la> cas=<cas> fetch=no cls=1 size=63\r\n"


# ---------------------------------------------------------------------------
# cas: compared between commands, never asserted
# ---------------------------------------------------------------------------

def test_ms_c_matches_mg_c_and_gets(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"hi", b"c")))
    assert conn.roundtrip(b"mg foo c\r\n") == b"HD c%d\r\n" % cas
    assert conn.gets_cas(b"foo") == cas


def test_each_store_gets_a_new_cas(conn):
    a = cas_of(conn.roundtrip(ms(b"foo", b"hi", b"c")))
    b = cas_of(conn.roundtrip(ms(b"foo", b"hi", b"c")))
    c = cas_of(conn.roundtrip(ms(b"foo", b"!", b"MA c")))
    assert a < b < c


def test_ms_C_matching_cas_stores(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"hi", b"c")))
    reply = conn.roundtrip(ms(b"foo", b"new", b"C%d c" % cas))
    assert reply.startswith(b"HD c") and cas_of(reply) > cas
    assert conn.roundtrip(ms(b"foo", b"again", b"C%d" % cas)) == b"EX\r\n"
    assert conn.roundtrip(b"mg foo v\r\n") == b"VA 3\r\nnew\r\n"


def test_ms_C_from_classic_gets(conn):
    conn.set(b"foo", b"hi")
    cas = conn.gets_cas(b"foo")
    assert conn.roundtrip(ms(b"foo", b"mc", b"C%d" % cas)) == b"HD\r\n"
    assert conn.roundtrip(b"cas foo 0 0 1 %d\r\nx\r\n" % cas) == b"EXISTS\r\n"


def test_ms_MR_C_matching(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"hi", b"c")))
    assert conn.roundtrip(ms(b"foo", b"rr", b"MR C%d" % cas) + b"mg foo v\r\n") == b"HD\r\nVA 2\r\nrr\r\n"


def test_ms_MA_MP_C_matching(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"hi", b"c")))
    reply = conn.roundtrip(ms(b"foo", b"!", b"MA c C%d" % cas))
    cas2 = cas_of(reply)
    assert reply == b"HD c%d\r\n" % cas2 and cas2 > cas
    assert conn.roundtrip(ms(b"foo", b"<", b"MP C%d" % cas)) == b"EX\r\n"
    assert conn.roundtrip(ms(b"foo", b"<", b"MP C%d" % cas2) + b"mg foo v\r\n") == b"HD\r\nVA 4\r\n<hi!\r\n"


def test_ms_I_with_older_cas_stores_stale(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"x", b"c T100")))
    reply = conn.roundtrip(ms(b"foo", b"y", b"C%d I c T0" % (cas - 1)))
    new = cas_of(reply)
    assert reply == b"HD c%d\r\n" % new and new > cas
    reply = conn.roundtrip(b"mg foo v c t\r\n")
    assert re.fullmatch(rb"VA 1 c%d t\d+ X W\r\ny\r\n" % new, reply), reply
    assert_ttl(reply, 100)  # a stale store keeps the old ttl
    assert mask_cas(conn.roundtrip(b"mg foo v c\r\n")) == b"VA 1 c<cas> Z X\r\ny\r\n"


def test_ms_I_stale_store_keeps_token_sent(conn):
    assert conn.roundtrip(ms(b"foo", b"x") + b"md foo I\r\nmg foo\r\n") == b"HD\r\nHD\r\nHD X W\r\n"
    assert conn.roundtrip(ms(b"foo", b"y", b"C1 I MR")) == b"HD\r\n"
    assert conn.roundtrip(b"mg foo v\r\n") == b"VA 1 Z X\r\ny\r\n"


def test_ms_I_with_newer_cas_is_exists(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"x", b"c")))
    assert conn.roundtrip(ms(b"foo", b"y", b"C%d I c" % (cas + 1000))) == b"EX c0\r\n"
    assert conn.roundtrip(ms(b"foo", b"y", b"C%d I" % cas) + b"mg foo v\r\n") == b"HD\r\nVA 1\r\ny\r\n"


def test_ms_I_append_with_older_cas_is_exists(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"x", b"c")))
    assert conn.roundtrip(ms(b"foo", b"y", b"MA I C%d" % (cas - 1))) == b"EX\r\n"
    assert conn.roundtrip(ms(b"foo", b"y", b"ME I C%d" % (cas - 1))) == b"NS\r\n"


def test_ms_I_on_missing_item(conn):
    assert conn.roundtrip(ms(b"foo", b"x", b"C5 I")) == b"NF\r\n"


def test_md_C_matching(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"x", b"c")))
    assert conn.roundtrip(b"md foo C%d\r\n" % (cas + 1)) == b"EX\r\n"
    assert conn.roundtrip(b"md foo C%d q\r\nmg foo\r\n" % cas) == b"EN\r\n"


def test_md_I_bumps_cas(conn):
    cas = cas_of(conn.roundtrip(ms(b"foo", b"x", b"c")))
    assert conn.roundtrip(b"md foo I C%d\r\n" % cas) == b"HD\r\n"
    reply = conn.roundtrip(b"mg foo c\r\n")
    new = cas_of(reply)
    assert reply == b"HD c%d X W\r\n" % new and new > cas
    assert conn.roundtrip(b"md foo I C%d\r\n" % cas) == b"EX\r\n"
    # a client that saw the old cas can still write back a stale value
    assert conn.roundtrip(ms(b"foo", b"y", b"I C%d" % cas) + b"mg foo v\r\n") == b"HD\r\nVA 1 Z X\r\ny\r\n"


def test_ma_c_returns_new_cas(conn):
    cas = cas_of(conn.roundtrip(ms(b"n", b"5", b"c")))
    reply = conn.roundtrip(b"ma n c v\r\n")
    new = cas_of(reply)
    assert reply == b"VA 1 c%d\r\n6\r\n" % new and new > cas
    assert conn.roundtrip(b"mg n c\r\n") == b"HD c%d\r\n" % new
    assert conn.roundtrip(b"ma n C%d v\r\n" % cas) == b"EX\r\n"
    reply = conn.roundtrip(b"ma n C%d v c\r\n" % new)
    assert reply == b"VA 1 c%d\r\n7\r\n" % cas_of(reply)


def test_ma_grow_c_matches_mg(conn):
    assert conn.roundtrip(ms(b"n", b"9")) == b"HD\r\n"
    reply = conn.roundtrip(b"ma n c v\r\n")
    assert reply == b"VA 2 c%d\r\n10\r\n" % cas_of(reply)
    assert conn.roundtrip(b"mg n c\r\n") == b"HD c%d\r\n" % cas_of(reply)


def test_ma_vivified_c(conn):
    reply = conn.roundtrip(b"ma n N0 J3 c v t k\r\n")
    cas = cas_of(reply)
    assert reply == b"VA 1 c%d t-1 kn\r\n3\r\n" % cas
    assert conn.roundtrip(b"mg n c v\r\n") == b"VA 1 c%d\r\n3\r\n" % cas


def test_mg_N_created_cas_matches_ms_C(conn):
    reply = conn.roundtrip(b"mg foo N30 c\r\n")
    cas = cas_of(reply)
    assert reply == b"HD c%d W\r\n" % cas
    assert conn.roundtrip(ms(b"foo", b"filled", b"C%d" % cas) + b"mg foo v\r\n") == b"HD\r\nVA 6\r\nfilled\r\n"


def test_incr_and_ma_share_cas(conn):
    conn.set(b"n", b"1")
    assert conn.roundtrip(b"incr n 1\r\n") == b"2\r\n"
    cas = conn.gets_cas(b"n")
    assert conn.roundtrip(b"mg n c\r\n") == b"HD c%d\r\n" % cas
    assert conn.roundtrip(b"ma n C%d v\r\n" % cas) == b"VA 1\r\n3\r\n"


def test_meta_with_cas_disabled(make_server):
    """With -C every cas is 0: c returns c0, C0 is still no match for ms but
    matches for md, and ma treats C0 as no cas."""
    conn = make_server("-C").connect()
    req = (
        ms(b"foo", b"hi", b"c")
        + b"mg foo c v\r\n"
        + ms(b"foo", b"hi", b"C0")
        + b"md foo I\r\nmg foo c\r\n"
        + ms(b"foo", b"x", b"C0 I")
        + ms(b"foo", b"x", b"C1 I")
        + b"mg foo v\r\n"
        + b"ma n N0 c v\r\nma n C0 v\r\nma n C5 v\r\n"
        + b"md foo C1\r\nmd foo C0\r\n"
        + ms(b"foo", b"x", b"MA C0")
    )
    assert conn.roundtrip(req) == (
        b"HD c0\r\nVA 2 c0\r\nhi\r\nEX\r\nHD\r\nHD c0 X W\r\nEX\r\nEX\r\nVA 2 Z X\r\nhi\r\n"
        b"VA 1 c0\r\n0\r\nVA 1\r\n1\r\nEX\r\nEX\r\nHD\r\nNS\r\n"
    )
    conn.close()


# ---------------------------------------------------------------------------
# Too large values
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [b"", b"ME", b"MA", b"MR", b"MP", b"q", b"C1", b"k O5 c", b"b"])
def test_ms_too_large_is_swallowed_and_drops_old_value(conn, flags):
    key = b"Zm9v" if flags == b"b" else b"foo"
    assert conn.roundtrip(ms(key, b"old", b"b" if flags == b"b" else b"")) == b"HD\r\n"
    size = MB + 10
    req = b"ms %s %d%s\r\n" % (key, size, (b" " + flags) if flags else b"") + b"v" * size + b"\r\n"
    assert conn.roundtrip(req + b"mg foo v\r\n") == TOO_LARGE + b"EN\r\n"


def test_ms_too_large_bad_tail_leaves_a_line(conn):
    size = MB + 10
    req = b"ms foo %d\r\n" % size + b"v" * size + b"XX\r\n"
    assert conn.roundtrip(req) == TOO_LARGE + b"ERROR\r\n"


def test_ms_too_large_with_bad_mode_is_a_mode_error(conn):
    size = MB + 10
    req = b"ms foo %d MX\r\n" % size + b"v" * size + b"\r\n"
    assert conn.roundtrip(req + b"mg foo\r\n") == INVALID_MS_MODE + b"EN\r\n"


def test_ms_too_large_arriving_slowly(conn):
    size = MB + 100
    data = b"v" * size + b"\r\n"
    conn.send(b"ms foo %d T0 q\r\n" % size)
    for i in range(0, len(data), 100_000):
        conn.send(data[i:i + 100_000])
        time.sleep(0.001)
    assert conn.roundtrip(b"mn\r\n") == TOO_LARGE + b"MN\r\n"


def test_ms_large_value_below_limit(conn):
    value = bytes(range(256)) * 1000
    assert conn.roundtrip(ms(b"big", value, b"q")) == b""
    assert conn.roundtrip(b"mg big v s\r\n") == b"VA %d s%d\r\n" % (len(value), len(value)) + value + b"\r\n"


def test_ms_append_over_limit_not_stored(conn):
    value = b"v" * 600_000
    assert conn.roundtrip(ms(b"foo", value) + ms(b"foo", value, b"MA")) == b"HD\r\nNS\r\n"
    assert conn.roundtrip(b"mg foo s\r\n") == b"HD s600000\r\n"


# ---------------------------------------------------------------------------
# Quiet mode pipelines ended by mn
# ---------------------------------------------------------------------------

def test_quiet_pipeline_only_exceptions_come_back(conn):
    req = (
        ms(b"a", b"1", b"q")                       # HD: hidden
        + ms(b"b", b"2", b"q O2")                  # HD: hidden
        + ms(b"a", b"x", b"q ME O3")               # NS: shown
        + b"mg a q v O4\r\n"                       # hit: shown
        + b"mg zz q v O5\r\n"                      # miss: hidden
        + b"md b q O6\r\n"                         # HD: hidden
        + b"md b q O7\r\n"                         # NF: shown
        + b"ma a q O8\r\n"                         # HD: hidden
        + b"ma zz q O9\r\n"                        # NF: shown
        + b"ma c q N0 J5 O10\r\n"                  # created: shown
        + b"mg a q k s\r\n"                        # hit: shown
        + b"mg a q Tx\r\n"                         # error: shown
        + b"mn\r\n"
    )
    assert conn.roundtrip(req) == (
        b"NS O3\r\n"
        b"VA 1 O4\r\n1\r\n"
        b"NF O7\r\n"
        b"NF O9\r\n"
        b"HD O10\r\n"
        b"HD ka s1\r\n"
        + BAD_TOKEN
        + b"MN\r\n"
    )


def test_quiet_multiget_of_many_keys(conn):
    keys = [b"k%d" % i for i in range(50)]
    assert conn.roundtrip(b"".join(ms(k, k, b"q") for k in keys[::2])) == b""
    req = b"".join(b"mg %s q v k\r\n" % k for k in keys) + b"mn\r\n"
    expected = b"".join(b"VA %d k%s\r\n%s\r\n" % (len(k), k, k) for k in keys[::2]) + b"MN\r\n"
    assert conn.roundtrip(req) == expected


def test_quiet_does_not_hide_errors_or_other_connections_replies(conn, connect):
    other = connect()
    assert conn.roundtrip(ms(b"a", b"1", b"q") + b"mg a q v Ox\r\nmg a q !\r\nmn\r\n") == (
        b"VA 1 Ox\r\n1\r\n" + INVALID_FLAG + b"MN\r\n"
    )
    assert other.roundtrip(b"mg a v\r\n") == b"VA 1\r\n1\r\n"


def test_quiet_then_classic_noreply_mix(conn):
    req = (
        ms(b"a", b"1", b"q")
        + b"set b 0 0 1 noreply\r\n2\r\n"
        + b"mg a q\r\n"
        + b"delete b noreply\r\n"
        + b"md b q\r\n"
        + b"mn\r\n"
    )
    assert conn.roundtrip(req) == b"HD\r\nNF\r\nMN\r\n"


# ---------------------------------------------------------------------------
# Classic and meta commands on one connection
# ---------------------------------------------------------------------------

def test_classic_and_meta_share_items(conn):
    req = (
        b"set a 3 0 2\r\nhi\r\n"
        b"mg a v f s\r\n"
        + ms(b"b", b"meta", b"F9")
        + b"get a b\r\n"
        b"append b 0 0 1\r\n!\r\n"
        b"mg b v\r\n"
        b"incr n 1\r\n"
        b"ma n N0 J10 v\r\n"
        b"incr n 5\r\n"
        b"ma n MD D1 v\r\n"
        b"decr n 1\r\n"
        b"md a\r\n"
        b"get a\r\n"
        b"delete b\r\n"
        b"mg b\r\n"
        b"touch n 100\r\n"
        b"mn\r\n"
    )
    assert conn.roundtrip(req) == (
        b"STORED\r\n"
        b"VA 2 f3 s2\r\nhi\r\n"
        b"HD\r\n"
        + value_reply(b"a", b"hi", 3)
        + value_reply(b"b", b"meta", 9)
        + b"END\r\n"
        b"STORED\r\n"
        b"VA 5\r\nmeta!\r\n"
        b"NOT_FOUND\r\n"
        b"VA 2\r\n10\r\n"
        b"15\r\n"
        b"VA 2\r\n14\r\n"
        b"13\r\n"
        b"HD\r\n"
        b"END\r\n"
        b"DELETED\r\n"
        b"EN\r\n"
        b"TOUCHED\r\n"
        b"MN\r\n"
    )
    assert_ttl(conn.roundtrip(b"mg n t\r\n"), 100)


def test_gat_and_mg_T_agree(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"gat 100 a\r\n") == value_reply(b"a", b"x") + b"END\r\n"
    assert_ttl(conn.roundtrip(b"mg a t\r\n"), 100)
    assert conn.roundtrip(b"mg a T0\r\n") == b"HD\r\n"
    assert conn.roundtrip(b"mg a t\r\n") == b"HD t-1\r\n"


def test_classic_get_marks_fetched_for_mg_h(conn):
    conn.set(b"a", b"x")
    assert conn.roundtrip(b"mg a h\r\n") == b"HD h0\r\n"
    conn.set(b"b", b"x")
    assert conn.get(b"b") == b"x"
    assert conn.roundtrip(b"mg b h\r\n") == b"HD h1\r\n"


def test_flush_all_hides_meta_items(conn):
    assert conn.roundtrip(ms(b"a", b"x") + b"mg v N30\r\nflush_all\r\nmg a\r\nmg v\r\nma n\r\nmd a\r\n") == (
        b"HD\r\nHD W\r\nOK\r\nEN\r\nEN\r\nNF\r\nNF\r\n"
    )


# ---------------------------------------------------------------------------
# Pipelines split anywhere, malformed lines
# ---------------------------------------------------------------------------

BATCH = (
    ms(b"a", b"hi", b"q T0")
    + ms(b"n", b"10", b"q")
    + b"md gone q\r\n"
    + b"mg a v k O1 f s\r\n"
    + b"mg gone q v\r\n"
    + b"ma n v D5\r\n"
    + b"ma n q MD\r\n"
    + b"get n\r\n"
    + ms(b"a", b"!!", b"MA q")
    + b"mg a v\r\n"
    + b"md a q\r\n"
    + b"mg a v N0 q\r\n"
    + b"mg a\r\n"
    + b"mx\r\n"
    + b"mg foo !\r\n"
    + ms(b"b", b"hi", b"MX")
    + b"ms c 2\r\nhello\r\n"
    + b"mn\r\n"
)
BATCH_REPLY = (
    b"NF\r\n"
    b"VA 2 ka O1 f0 s2\r\nhi\r\n"
    b"VA 2\r\n15\r\n"
    + value_reply(b"n", b"14")
    + b"END\r\n"
    b"VA 4\r\nhi!!\r\n"
    b"VA 0 W\r\n\r\n"
    b"HD Z\r\n"
    b"ERROR\r\n"
    + INVALID_FLAG
    + INVALID_MS_MODE
    + BAD_CHUNK
    + b"ERROR\r\n"
    b"MN\r\n"
)


def test_meta_batch_in_one_send(conn):
    assert conn.roundtrip(BATCH) == BATCH_REPLY


def test_meta_batch_repeated(conn):
    assert conn.roundtrip(BATCH * 10) == BATCH_REPLY * 10


def test_meta_batch_one_byte_at_a_time(conn):
    for i in range(len(BATCH)):
        conn.send(BATCH[i:i + 1])
    assert conn.roundtrip(b"") == BATCH_REPLY


def test_meta_batch_split_at_every_byte_boundary(conn):
    for cut in range(1, len(BATCH)):
        conn.send(BATCH[:cut])
        time.sleep(0.002)
        reply = conn.roundtrip(BATCH[cut:])
        assert reply == BATCH_REPLY, f"split at byte {cut}: {BATCH[:cut][-20:]!r} | {BATCH[cut:][:20]!r}"


@pytest.mark.parametrize(
    "line",
    [
        b"mg", b"mg ", b"ms", b"ms foo", b"md", b"ma", b"me", b"mn x y z",
        b"mg foo \x00", b"mg foo O\x01", b"mg \x01\x02 v", b"mg foo " + b"v " * 30,
        b"ms foo 1 " + b"T1 " * 30, b"ms foo x y", b"ma foo D" + b"9" * 40,
        b"mg foo T" + b"9" * 40, b"mg " + b"=" * 250 + b" b", b"md foo C" + b"1" * 30,
        b"mg foo N-99999999999", b"mg\tfoo",
    ],
)
def test_malformed_meta_line_keeps_connection(conn, line):
    reply = conn.roundtrip(line + b"\r\n")
    assert reply.endswith(b"\r\n"), reply
    assert conn.roundtrip(ms(b"alive", b"1") + b"mg alive v\r\n") == b"HD\r\nVA 1\r\n1\r\n"


# ---------------------------------------------------------------------------
# Stats
# ---------------------------------------------------------------------------

COUNTERS = (
    "cmd_get", "get_hits", "get_misses", "get_flushed", "cmd_touch", "touch_hits", "touch_misses",
    "cmd_set", "cas_hits", "cas_misses", "cas_badval", "delete_hits", "delete_misses",
    "incr_hits", "incr_misses", "decr_hits", "decr_misses", "cmd_meta",
)


def _deltas(conn, req: bytes) -> dict:
    before = conn.stats()
    conn.roundtrip(req)
    after = conn.stats()
    return {k: int(after[k]) - int(before[k]) for k in COUNTERS if int(after[k]) != int(before[k])}


# Stats cases use keys no other test uses: a lookup that finds an item an
# earlier flush_all hid counts in get_flushed, whatever the command.
_STATS_KEYS = iter(range(10**6))


def _fresh(req: bytes) -> bytes:
    tag = b"st%d-%d-" % (time.monotonic_ns(), next(_STATS_KEYS))
    for key in (b"foo", b"bar", b"baz"):
        req = req.replace(b" %s " % key, b" " + tag + key + b" ").replace(b" %s\r" % key, b" " + tag + key + b"\r")
    return req


@pytest.mark.parametrize(
    "req,expected",
    [
        (ms(b"foo", b"hi") + b"mg foo v\r\nmg bar v\r\nmg baz N10\r\n",
         {"cmd_set": 1, "cmd_get": 3, "get_hits": 2, "get_misses": 1}),
        (ms(b"foo", b"hi") + b"mg foo T10\r\nmg bar T10\r\n",
         {"cmd_set": 1, "cmd_touch": 1, "touch_hits": 1, "cmd_get": 1, "get_misses": 1}),
        (ms(b"foo", b"hi") + b"md foo\r\nmd foo\r\nmd bar I\r\n", {"cmd_set": 1, "delete_hits": 1, "delete_misses": 2}),
        (ms(b"foo", b"hi") + b"md foo C1\r\nmd foo I\r\n", {"cmd_set": 1, "delete_misses": 1}),
        (b"ma foo\r\nma foo N0\r\nma foo MD\r\nma foo\r\nma bar MD\r\n",
         {"incr_misses": 1, "decr_misses": 1, "decr_hits": 1, "incr_hits": 1}),
        (ms(b"foo", b"hi", b"C5") + ms(b"foo", b"hi") + ms(b"foo", b"x", b"C5") + ms(b"foo", b"x", b"ME"),
         {"cmd_set": 4, "cas_misses": 1, "cas_badval": 1}),
        (b"me foo\r\nmn\r\n" + ms(b"foo", b"hi") + b"me foo\r\n", {"cmd_set": 1, "cmd_meta": 2}),
        (ms(b"foo", b"hi") + b"flush_all\r\nmg foo T5\r\n" + ms(b"bar", b"hi") + b"flush_all\r\nmg bar\r\n",
         {"cmd_set": 2, "cmd_get": 2, "get_misses": 2, "get_flushed": 2}),
        (ms(b"foo", b"hi") + b"flush_all\r\nmd foo\r\n" + ms(b"bar", b"hi") + b"flush_all\r\nma bar\r\n"
         + ms(b"baz", b"hi") + b"flush_all\r\nme baz\r\n",
         {"cmd_set": 3, "get_flushed": 3, "delete_misses": 1, "incr_misses": 1, "cmd_meta": 1}),
        (ms(b"foo", b"hi") + b"mg foo " + OPAQUE_LONG + b"\r\nmg bar " + OPAQUE_LONG + b"\r\nmg foo !\r\n",
         {"cmd_set": 1, "cmd_get": 1, "get_misses": 1}),
    ],
    ids=["mg", "mg-T", "md", "md-C-I", "ma", "ms-cas", "me-mn", "mg-flushed", "flushed-others", "errors"],
)
def test_meta_stats(conn, req, expected):
    assert _deltas(conn, _fresh(req)) == expected
