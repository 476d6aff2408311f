//! The binary decoder's framing ([`ratecache::protocol::binary::decode`]) as a [`Framing`],
//! with the request-level checks of a frame.

use ratecache::protocol::binary::{self, is_quiet, status, Command, Header, Request, HEADER_LEN};
use ratecache::protocol::{Decode, DecodeLimits, Frame, Refusal, KEY_MAX_LENGTH, SMALL_FRAME};

use crate::limit::check_params;
use crate::Framing;

/// The binary protocol decoder.
pub struct Binary;

/// Most bytes before a binary request is decided: header, 255 bytes of extras, a 250-byte key.
const MAX_PREFIX: usize = HEADER_LEN + 255 + KEY_MAX_LENGTH;

/// Checks the prefetch hint of a batch: at most [`binary::PREFETCH_FRAMES`] non-empty keys,
/// each taken from `buf`.
pub fn check_batch_keys(buf: &[u8]) {
    let keys = binary::batch_keys(buf);
    assert!(keys.len() <= binary::PREFETCH_FRAMES);
    for k in keys {
        assert!(!k.is_empty(), "empty prefetch key");
        assert!(crate::within(buf, k), "prefetch key outside the buffer");
    }
}

impl Framing for Binary {
    type Req<'a> = Request<'a>;

    fn decode<'a>(buf: &'a [u8], limits: &DecodeLimits) -> Decode<Request<'a>> {
        binary::decode(buf, limits)
    }

    /// A body is awaited only for a value that fits the item size limit or SASL data within
    /// [`SMALL_FRAME`]; a longer key (or lengths that disagree) is decided from the header.
    fn max_need(_buf_len: usize, limits: &DecodeLimits) -> usize {
        MAX_PREFIX + limits.item_size_max.max(SMALL_FRAME)
    }

    fn check_frame(buf: &[u8], f: &Frame<Request<'_>>, limits: &DecodeLimits) {
        let h = Header::parse(buf[..HEADER_LEN].try_into().unwrap());
        assert_eq!(f.req.header, h, "header");
        assert_eq!(f.req.quiet, is_quiet(h.opcode), "quiet");
        let (extlen, keylen) = (usize::from(h.extlen), usize::from(h.keylen));
        let prefix = h.prefix_len();
        let value_len = h.value_len();
        match f.req.command {
            Command::BadLengths => {
                assert!(extlen + keylen > h.bodylen as usize, "lengths agree");
                assert_eq!((f.len, f.skip), (HEADER_LEN, 0));
                return;
            }
            Command::Invalid if keylen > KEY_MAX_LENGTH => {
                assert_eq!((f.len, f.skip), (HEADER_LEN, 0));
                return;
            }
            _ => {}
        }
        assert!(
            extlen + keylen <= h.bodylen as usize,
            "lengths disagree: {f:?}"
        );
        assert!(keylen <= KEY_MAX_LENGTH, "key over 250 decoded: {f:?}");
        let key = &buf[HEADER_LEN + extlen..prefix];
        match f.req.command {
            Command::Store {
                key: k,
                value,
                flags,
                ..
            } => {
                assert_eq!(k, key, "store key");
                assert!(!k.is_empty(), "empty store key");
                assert_eq!(value.len(), value_len, "value length");
                assert_eq!(value, &buf[prefix..prefix + value_len], "value bytes");
                assert_eq!((f.len, f.skip), (prefix + value_len, 0));
                assert!(
                    limits.fits(k.len(), value_len, flags),
                    "stored value over -I"
                );
            }
            Command::StoreRefused { key: k, why, .. } => {
                assert_eq!(k, key, "refused key");
                assert_eq!(why, Refusal::TooLarge, "only too-large values are refused");
                assert_eq!((f.len, f.skip), (prefix, value_len as u64));
            }
            Command::SaslAuth { mech, data, .. } => {
                assert!(limits.sasl, "SASL decoded without -S");
                assert_eq!(mech, key);
                assert!(
                    data.len() <= SMALL_FRAME,
                    "SASL data buffered past the bound"
                );
                assert_eq!((f.len, f.skip), (prefix + value_len, 0));
            }
            Command::RateLimit { key: k, args } => {
                assert_eq!(k, key);
                assert_eq!((f.len, f.skip), (prefix, value_len as u64));
                if let Some(a) = args {
                    assert!(!k.is_empty() && extlen == 24 && value_len == 0, "{f:?}");
                    check_params(&a.params, a.algorithm);
                }
            }
            Command::Unknown => {
                assert_eq!(f.len, prefix);
                assert!(f.skip == u64::from(h.bodylen) || f.skip == value_len as u64);
            }
            Command::Error(st) => {
                assert!(
                    matches!(st, status::EINVAL | status::ENOMEM),
                    "status {st:#x}"
                );
                assert_eq!((f.len, f.skip), (prefix, value_len as u64));
            }
            Command::Get { key: k, .. }
            | Command::Gat { key: k, .. }
            | Command::Touch { key: k, .. }
            | Command::Delete { key: k }
            | Command::Arith { key: k, .. } => {
                assert_eq!(k, key);
                assert!(!k.is_empty());
                assert_eq!((f.len, f.skip), (prefix, 0));
            }
            _ => assert_eq!((f.len, f.skip), (prefix, 0), "{f:?}"),
        }
    }

    fn check_fallback(f: &Frame<Request<'_>>) {
        assert!(
            matches!(
                f.req.command,
                Command::StoreRefused {
                    why: Refusal::NoMemory,
                    ..
                } | Command::Error(status::ENOMEM)
            ),
            "fallback {f:?}"
        );
    }
}
