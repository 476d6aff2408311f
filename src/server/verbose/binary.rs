//! The verbose lines of the binary protocol, as memcached 1.6.18's `proto_bin.c` prints them:
//! at `-vv` each request header as read (`<24 Read binary protocol data:` and six rows of four
//! bytes), the command's own line (`<24 GET a`, `<24 SET a Value len is 2`, `Deleting a`,
//! `incr n 1, 5, 0`, `<24 STATS items`...), `authenticated() in cmd 0x00 is true` under `-S`,
//! and each response header written (`>24 Writing bin response:`), after
//! `>24 Writing an error: <text>` for an error; at `-v` `Invalid magic:  <x>`,
//! `Protocol error (opcode <xx>), close connection <fd>` and the SASL mechanism line.
//! ratecached's rate-limit opcodes log `<24 RATELIMIT <key>`.

use std::fmt::Write;

use super::{show, ConnLog, Reader};
use crate::protocol::binary::{opcode, status, Command, Request, StoreOp, HEADER_LEN, RES_MAGIC};

/// Six rows of four bytes: memcached's dump of a 24-byte header, each row after `row`.
fn dump(title: &str, row: &str, header: &[u8]) -> String {
    let mut s = String::from(title);
    for (i, b) in header.iter().take(HEADER_LEN).enumerate() {
        if i % 4 == 0 {
            s.push('\n');
            s.push_str(row);
        }
        let _ = write!(s, " 0x{b:02x}");
    }
    s
}

/// `-vv`: the request header at the start of `buf` (nothing before 24 bytes are there).
pub fn header(log: ConnLog, buf: &[u8]) {
    if log.level() >= 2 && buf.len() >= HEADER_LEN {
        let fd = log.fd();
        let title = format!("<{fd} Read binary protocol data:");
        let text = dump(&title, &format!("<{fd}   "), buf);
        log.line(2, format_args!("{text}"));
    }
}

/// `-v`: a first byte other than 0x80 (after its header at `-vv`); the connection closes.
pub fn invalid_magic(log: ConnLog, buf: &[u8]) {
    header(log, buf);
    if let Some(magic) = buf.first() {
        log.line(1, format_args!("Invalid magic:  {magic:x}"));
    }
}

/// `-vv` under `-S`: memcached's `authenticated()` check, made for every request whose
/// lengths agree: SASL and `version` pass, the rest only once authenticated.
pub fn auth(log: ConnLog, op: u8, authenticated: bool) {
    let rv = authenticated
        || matches!(
            op,
            opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP | opcode::VERSION
        );
    log.line(2, format_args!("authenticated() in cmd 0x{op:02x} is {rv}"));
}

/// The command's own line (`-vv`; the SASL mechanism at `-v`).
pub fn command(log: ConnLog, req: &Request<'_>) {
    let fd = log.fd();
    let h = &req.header;
    let vlen = h.value_len();
    match req.command {
        Command::Get { key, .. } => log.line(2, format_args!("<{fd} GET {}", show(key))),
        Command::Gat { key, .. } | Command::Touch { key, .. } => {
            log.line(2, format_args!("<{fd} TOUCH {}", show(key)))
        }
        Command::Store { op, key, .. } | Command::StoreRefused { op, key, .. } => {
            let name = match op {
                StoreOp::Set => "SET",
                StoreOp::Add => "ADD",
                StoreOp::Replace => "REPLACE",
                StoreOp::Append | StoreOp::Prepend => {
                    return log.line(2, format_args!("Value len is {vlen}"));
                }
            };
            log.line(
                2,
                format_args!("<{fd} {name} {} Value len is {vlen}", show(key)),
            )
        }
        Command::Delete { key } => log.line(2, format_args!("Deleting {}", show(key))),
        Command::Arith {
            key,
            delta,
            initial,
            exptime,
            ..
        } => log.line(
            2,
            format_args!(
                "incr {} {}, {initial}, {}",
                show(key),
                delta as i64,
                exptime as i32
            ),
        ),
        Command::Stat { key } => log.line(2, format_args!("<{fd} STATS {}", show(key))),
        Command::SaslAuth { mech, data, .. } => log.line(
            1,
            format_args!(
                "mech:  ``{}'' with {} bytes of data",
                show(mech),
                data.len()
            ),
        ),
        Command::RateLimit { key, .. } => {
            log.line(2, format_args!("<{fd} RATELIMIT {}", show(key)))
        }
        _ => {}
    }
}

/// `-v`: how a SASL auth or step ended, in the words of memcached and of the Cyrus SASL
/// library Debian's memcached uses (result codes `SASL_OK` 0, `SASL_CONTINUE` 1,
/// `SASL_NOMECH` -4, `SASL_BADPROT` -5, `SASL_NOUSER` -20). `started`: a PLAIN exchange was
/// waiting for its step; `st`: the status answered.
pub fn sasl_result(log: ConnLog, req: &Request<'_>, started: bool, st: u16) {
    let Command::SaslAuth { mech, step, data } = req.command else {
        return;
    };
    if log.level() < 1 {
        return;
    }
    let code = match st {
        status::SUCCESS => 0,
        status::AUTH_CONTINUE => 1,
        _ if step && !started => {
            let fd = log.fd();
            log.line(
                1,
                format_args!(
                    "{fd}: SASL_STEP called but sasl_server_start not called for this connection!"
                ),
            );
            -1
        }
        _ => {
            let (code, why) = if mech != b"PLAIN" {
                (-4, format!("Couldn't find mech {}", show(mech)))
            } else {
                match data.iter().filter(|&&b| b == 0).count() {
                    0 => (-5, "Can only find author (no password)".to_string()),
                    1 => (-5, "Can only find author/en (no password)".to_string()),
                    _ => (-20, "Password verification failed".to_string()),
                }
            };
            log.line(1, format_args!("SASL (severity 2): {why}"));
            code
        }
    };
    log.line(1, format_args!("sasl result code:  {code}"));
    if code < 0 {
        log.line(1, format_args!("Unknown sasl response:  {code}"));
    }
}

/// The status of the first response in `written` (`None` when nothing was written).
pub fn first_status(written: Vec<&[u8]>) -> Option<u16> {
    let h = Reader::new(written).take(HEADER_LEN)?;
    Some(u16::from_be_bytes([h[6], h[7]]))
}

/// `-v`: a known opcode with bad lengths or a key over 250 bytes, answered and closed.
pub fn protocol_error(log: ConnLog, op: u8) {
    let fd = log.fd();
    log.line(
        1,
        format_args!("Protocol error (opcode {op:02x}), close connection {fd}"),
    );
}

/// `-vv`: the response headers a request wrote (`written`), each after its error text when
/// it is an error. `req` is the request (`None` when refused before decoding): the stats
/// packets are not logged, and a hit's cas shows as 0, as memcached logs the header before it
/// sets the cas.
pub fn replies(log: ConnLog, req: Option<&Request<'_>>, written: Vec<&[u8]>) {
    if log.level() < 2 {
        return;
    }
    let fd = log.fd();
    let command = req.map(|r| r.command);
    let mut r = Reader::new(written);
    while let Some(mut h) = r.take(HEADER_LEN) {
        if h[0] != RES_MAGIC {
            break;
        }
        let keylen = u16::from_be_bytes([h[2], h[3]]);
        let extlen = h[4];
        let st = u16::from_be_bytes([h[6], h[7]]);
        let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        if st == status::SUCCESS && matches!(command, Some(Command::Stat { .. })) {
            r.skip(body);
            continue;
        }
        if st != status::SUCCESS && st != status::AUTH_CONTINUE && keylen == 0 && extlen == 0 {
            let text = r.take(body).unwrap_or_default();
            log.line(2, format_args!(">{fd} Writing an error: {}", show(&text)));
        } else {
            r.skip(body);
        }
        let hit = matches!(
            command,
            Some(Command::Get { .. } | Command::Gat { .. } | Command::Touch { .. })
        );
        if hit && st == status::SUCCESS {
            h[16..24].fill(0);
        }
        let text = dump(
            &format!(">{fd} Writing bin response:"),
            &format!(">{fd}  "),
            &h,
        );
        log.line(2, format_args!("{text}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_dump_in_rows_of_four() {
        let mut h = [0u8; 24];
        h[0] = 0x80;
        h[11] = 0x0b;
        assert_eq!(
            dump("<24 Read binary protocol data:", "<24   ", &h),
            "<24 Read binary protocol data:\n\
             <24    0x80 0x00 0x00 0x00\n\
             <24    0x00 0x00 0x00 0x00\n\
             <24    0x00 0x00 0x00 0x0b\n\
             <24    0x00 0x00 0x00 0x00\n\
             <24    0x00 0x00 0x00 0x00\n\
             <24    0x00 0x00 0x00 0x00"
        );
    }
}
