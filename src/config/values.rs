//! Value checks shared by the options: numbers, ports, sizes, slab size lists.

use std::str::FromStr;

use super::{err, ConfigError};

/// `-o slab_sizes=A-B-C`: memcached's `_parse_slab_sizes` checks.
pub(super) fn check_slab_sizes(list: &str, min: usize, max: usize) -> Result<(), ConfigError> {
    if list.is_empty() {
        // memcached exits without a message.
        return Err(err("Missing slab_sizes argument"));
    }
    let mut last = 0;
    for (count, token) in list.split('-').filter(|t| !t.is_empty()).enumerate() {
        let size = token
            .parse::<u32>()
            .ok()
            .map(|s| s as usize)
            .filter(|s| (min..=max).contains(s))
            .ok_or_else(|| err(format!("slab size {token} is out of valid range")))?;
        if last >= size {
            return Err(err(format!(
                "slab size {size} cannot be lower than or equal to a previous class size"
            )));
        }
        if size <= last + 8 {
            return Err(err(format!(
                "slab size {size} must be at least 8 bytes larger than previous class"
            )));
        }
        if count + 1 >= 63 {
            return Err(err("too many slab classes specified"));
        }
        last = size;
    }
    Ok(())
}

// Values

pub(super) fn bad_number(flag: char, v: &str) -> ConfigError {
    err(format!("Invalid numeric argument for -{flag}: \"{v}\""))
}

pub(super) fn number<T: FromStr>(flag: char, v: &str) -> Result<T, ConfigError> {
    v.parse().map_err(|_| bad_number(flag, v))
}

/// A count that memcached requires to be above zero, with memcached's message when it is not.
pub(super) fn positive<T: TryFrom<i64>>(
    flag: char,
    v: &str,
    message: &str,
) -> Result<T, ConfigError> {
    let n: i64 = number(flag, v)?;
    if n <= 0 {
        return Err(err(message));
    }
    T::try_from(n).map_err(|_| bad_number(flag, v))
}

pub(super) fn port(flag: char, v: &str) -> Result<u16, ConfigError> {
    let n: i64 = number(flag, v)?;
    u16::try_from(n).map_err(|_| err(format!("ERROR: Invalid port number {n}.")))
}

/// `-I`: bytes, or a number with a `k`/`K` or `m`/`M` suffix.
pub(super) fn item_size(v: &str) -> Result<u64, ConfigError> {
    let (digits, unit) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| bad_number('I', v))
}

pub(super) fn need(value: Option<&str>, missing: impl Into<String>) -> Result<&str, ConfigError> {
    value.ok_or_else(|| err(missing))
}

pub(super) fn sub_number<T: FromStr>(name: &str, v: &str) -> Result<T, ConfigError> {
    v.parse()
        .map_err(|_| err(format!("could not parse argument to {name}")))
}

/// `--metrics`: `IP:PORT` (`127.0.0.1:9150`, `[::1]:9150`), or a bare port on 127.0.0.1.
pub(super) fn metrics_addr(v: &str) -> Result<std::net::SocketAddr, ConfigError> {
    let addr = match v.parse::<u16>() {
        Ok(port) => std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
        Err(_) => v.parse().map_err(|_| {
            err(format!(
                "Invalid --metrics address \"{v}\": use IP:PORT (127.0.0.1:9150, [::1]:9150) or a port"
            ))
        })?,
    };
    if addr.port() == 0 {
        return Err(err(format!(
            "Invalid --metrics address \"{v}\": the port must not be 0"
        )));
    }
    Ok(addr)
}
