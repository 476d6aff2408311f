//! Encoders of the text protocol's replies: status lines, `VALUE` blocks, numbers, `STAT` lines.

use std::fmt::Display;
use std::io::Write as _;

use bytes::{BufMut, BytesMut};

use crate::protocol::Reply;

/// Appends a reply line.
pub fn write_reply(out: &mut BytesMut, r: Reply) {
    match r {
        Reply::Stored => out.put_slice(b"STORED\r\n"),
        Reply::NotStored => out.put_slice(b"NOT_STORED\r\n"),
        Reply::Exists => out.put_slice(b"EXISTS\r\n"),
        Reply::NotFound => out.put_slice(b"NOT_FOUND\r\n"),
        Reply::Deleted => out.put_slice(b"DELETED\r\n"),
        Reply::Touched => out.put_slice(b"TOUCHED\r\n"),
        Reply::Ok => out.put_slice(b"OK\r\n"),
        Reply::Reset => out.put_slice(b"RESET\r\n"),
        Reply::End => out.put_slice(b"END\r\n"),
        Reply::Error => out.put_slice(b"ERROR\r\n"),
        Reply::ClientError(m) => {
            out.put_slice(b"CLIENT_ERROR ");
            out.put_slice(m.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::ServerError(m) => {
            out.put_slice(b"SERVER_ERROR ");
            out.put_slice(m.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::Line(l) => {
            out.put_slice(l.as_bytes());
            out.put_slice(b"\r\n");
        }
    }
}

/// Appends `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`.
pub fn write_value(out: &mut BytesMut, key: &[u8], flags: u32, value: &[u8], cas: Option<u64>) {
    out.reserve(key.len() + value.len() + 48);
    write_value_header(out, key, flags, value.len(), cas);
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Appends `VALUE <key> <flags> <bytes> [<cas>]\r\n`: the line before a value's data.
pub fn write_value_header(
    out: &mut BytesMut,
    key: &[u8],
    flags: u32,
    len: usize,
    cas: Option<u64>,
) {
    let mut num = itoa::Buffer::new();
    out.put_slice(b"VALUE ");
    out.put_slice(key);
    out.put_u8(b' ');
    out.put_slice(num.format(flags).as_bytes());
    out.put_u8(b' ');
    out.put_slice(num.format(len).as_bytes());
    if let Some(cas) = cas {
        out.put_u8(b' ');
        out.put_slice(num.format(cas).as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Appends a decimal number line (incr/decr reply).
pub fn write_number(out: &mut BytesMut, n: u64) {
    let mut num = itoa::Buffer::new();
    out.put_slice(num.format(n).as_bytes());
    out.put_slice(b"\r\n");
}

/// Appends `STAT <name> <value>\r\n`.
pub fn write_stat(out: &mut BytesMut, name: impl Display, value: impl Display) {
    let mut w = out.writer();
    let _ = write!(w, "STAT {name} {value}\r\n");
}

/// Appends one `lru_crawler metadump` line (memcached's format, `\n`-terminated): the key
/// URI-encoded, `exp=-1` for no expiry, times in Unix seconds.
pub fn write_metadump_line(out: &mut BytesMut, m: &crate::store::ItemMeta<'_>) {
    out.put_slice(b"key=");
    for &b in m.key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.put_u8(b);
        } else {
            let _ = write!(out.writer(), "%{b:02X}");
        }
    }
    let exp = m.exptime.map_or(-1, |e| e as i64);
    let fetch = if m.fetched { "yes" } else { "no" };
    let _ = writeln!(
        out.writer(),
        " exp={exp} la={} cas={} fetch={fetch} cls={} size={}",
        m.last_access,
        m.cas,
        m.class,
        m.size
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_values() {
        let mut b = BytesMut::new();
        write_value(&mut b, b"k", 3, b"abc", Some(7));
        write_value(&mut b, b"k", 0, b"", None);
        write_reply(&mut b, Reply::End);
        assert_eq!(
            &b[..],
            b"VALUE k 3 3 7\r\nabc\r\nVALUE k 0 0\r\n\r\nEND\r\n"
        );
    }
}
