//! `-l` listen addresses: memcached's `[notls:][proto[NAME]:][tag[NAME]:]HOST[:PORT]` items.

use std::net::{IpAddr, ToSocketAddrs};

use super::{err, ConfigError};

/// Splits a [`Config::listen`](super::Config::listen) entry into host (brackets removed) and explicit port:
/// `"10.0.0.1:11311"` gives `("10.0.0.1", Some(11311))`, `"[::1]"` gives `("::1", None)`,
/// `"*"` gives `("*", None)`.
pub fn split_listen_addr(entry: &str) -> (&str, Option<u16>) {
    if let Some((host, tail)) = entry.strip_prefix('[').and_then(|r| r.split_once(']')) {
        return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.split_once(':') {
        Some((host, port)) => (host, port.parse().ok()),
        None => (entry, None),
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
) -> Result<String, ConfigError> {
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
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}
