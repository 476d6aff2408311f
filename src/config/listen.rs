//! `-l` listen addresses: memcached's `[notls:][proto[NAME]:][tag[NAME]:]HOST[:PORT]` items.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use super::{err, ConfigError};

/// One interface to listen on: a host and, optionally, a port of its own (replacing `-p`/`-U`
/// for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// Where.
    pub host: ListenHost,
    /// Its own port, if the item named one.
    pub port: Option<u16>,
    /// The host as the item wrote it (IPv6 in brackets), for reports.
    text: String,
}

/// The host of a [`ListenAddr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenHost {
    /// `*`: every IPv4 interface.
    Any,
    /// An address literal.
    Ip(IpAddr),
    /// A name, resolved when the server binds.
    Name(String),
}

impl ListenAddr {
    /// An address literal with no port of its own.
    pub fn ip(ip: impl Into<IpAddr>) -> ListenAddr {
        let ip = ip.into();
        let text = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        ListenAddr {
            host: ListenHost::Ip(ip),
            port: None,
            text,
        }
    }

    /// The host as a name or literal to bind (`*` is `0.0.0.0`, IPv6 without brackets).
    pub fn bind_host(&self) -> String {
        match &self.host {
            ListenHost::Any => Ipv4Addr::UNSPECIFIED.to_string(),
            ListenHost::Ip(ip) => ip.to_string(),
            ListenHost::Name(name) => name.clone(),
        }
    }
}

/// The item as memcached's `stats settings` shows it: `*`, `10.0.0.1`, `[::1]:11311`,
/// `localhost:0`.
impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// Compares with the item's text (what tests and reports show).
impl PartialEq<&str> for ListenAddr {
    fn eq(&self, other: &&str) -> bool {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        other.strip_prefix(self.text.as_str()) == Some(port.as_str())
    }
}

/// Validates and normalizes one `-l` item: `[notls:][proto[NAME]:][tag[NAME]:]HOST[:PORT]`,
/// HOST being `*`, a name, an IPv4 literal, or an IPv6 literal (bracketed when a port follows).
///
/// memcached reports these errors, and unknown host names, only when it binds (and adds a
/// second line, `failed to listen on one of interface(s) ...: Success`); here they are
/// reported while parsing, with the same first line.
pub(super) fn listen_entry(
    spec: &str,
    resolve: bool,
    notes: &mut Vec<String>,
) -> Result<ListenAddr, ConfigError> {
    let mut p = spec;
    if p.starts_with("notls:") {
        // TLS is never on here (-Z is refused).
        return Err(err("'notls' option is valid only when SSL is enabled"));
    }
    if let Some(rest) = p.strip_prefix("proto[") {
        let Some((name, rest)) = rest.split_once("]:") else {
            return Err(err(format!("Invalid protocol spec: \"[{rest}\"")));
        };
        if name == "proxy" {
            return Err(err(format!(
                "Server not built with proxy: \"proto[{name}\""
            )));
        }
        notes.push(format!("-l {spec}: protocol \"{name}\": ignored"));
        p = rest;
    }
    if let Some(rest) = p.strip_prefix("tag[") {
        let Some((tag, rest)) = rest.split_once("]:") else {
            return Err(err(format!("Invalid tag in socket config: \"[{rest}\"")));
        };
        if tag.is_empty() || tag.len() > 8 {
            return Err(err(format!(
                "Listener tags must be between 1 and 8 characters: \"{tag}\""
            )));
        }
        notes.push(format!("-l {spec}: tag \"{tag}\": ignored"));
        p = rest;
    }
    let (host, port) = if let Some(rest) = p.strip_prefix('[') {
        let bad = || err(format!("Invalid IPV6 address: \"{p}\""));
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        match tail {
            "" => (host, None),
            _ => (host, Some(tail.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match p.split_once(':') {
            // More than one colon: an IPv6 address without a port.
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (p, None),
        }
    };
    let port = port
        .map(|s| {
            s.parse::<u16>()
                .map_err(|_| err(format!("Invalid port number: \"{s}\"")))
        })
        .transpose()?;
    if resolve && host != "*" && host.parse::<IpAddr>().is_err() {
        let failed = |why: String| {
            err(format!(
                "failed to listen on one of interface(s) {spec}: getaddrinfo(): {why}"
            ))
        };
        match (host, 0).to_socket_addrs() {
            Ok(mut addrs) => {
                if addrs.next().is_none() {
                    return Err(failed("no address".to_string()));
                }
            }
            Err(e) => {
                let why = e.to_string();
                let why = why.strip_prefix("failed to lookup address information: ");
                return Err(failed(why.unwrap_or(&e.to_string()).to_string()));
            }
        }
    }
    let text = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let host = match host {
        "*" => ListenHost::Any,
        _ => match host.parse::<IpAddr>() {
            Ok(ip) => ListenHost::Ip(ip),
            Err(_) => ListenHost::Name(host.to_string()),
        },
    };
    Ok(ListenAddr { host, port, text })
}
