//! Invariants the fuzz targets assert about ratecache's decoders (see `docs/fuzzing.md`).
//!
//! Each decoder is a pure function from a connection's buffered bytes to [`Decode`]; the
//! properties here hold for any bytes, and a violation panics (which libFuzzer reports as a
//! crash). [`check_framing`] is shared by the text and binary targets; [`limit`] holds the
//! spec's rate-limit ranges and a reference parser for periods.

pub mod binary;
pub mod limit;
pub mod text;

use std::fmt::Debug;

use ratecache::protocol::{Decode, DecodeLimits, Frame};

/// The decoder limits an input runs under, chosen by one byte: bits 0-1 pick the item size
/// limit (1 KiB, the default 1 MiB, 8 MiB, 1 GiB: `-I`'s range), bit 2 turns cas off (`-C`),
/// bit 3 turns SASL on (`-S`).
pub fn limits_from(byte: u8) -> DecodeLimits {
    DecodeLimits {
        item_size_max: [1 << 10, 1 << 20, 8 << 20, 1 << 30][usize::from(byte & 3)],
        use_cas: byte & 4 == 0,
        sasl: byte & 8 != 0,
    }
}

/// A deterministic pseudo-random number from the input (FNV-1a), so that a crash reproduces.
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// True if `part` is a subslice of `buf` (a decoder's borrowed output points into its input).
pub fn within(buf: &[u8], part: &[u8]) -> bool {
    let (b, p) = (buf.as_ptr() as usize, part.as_ptr() as usize);
    p >= b && p + part.len() <= b + buf.len()
}

/// A framing decoder under test, with the checks specific to its requests.
pub trait Framing {
    /// The request type, borrowing from the buffer.
    type Req<'a>: PartialEq + Debug;

    /// Runs the decoder.
    fn decode<'a>(buf: &'a [u8], limits: &DecodeLimits) -> Decode<Self::Req<'a>>;

    /// The largest `need` the decoder may ask for with `buf_len` bytes buffered: what bounds
    /// the memory one connection can make the server buffer.
    fn max_need(buf_len: usize, limits: &DecodeLimits) -> usize;

    /// Checks a complete frame decoded from `buf` (request fields against the bytes).
    fn check_frame(buf: &[u8], frame: &Frame<Self::Req<'_>>, limits: &DecodeLimits);

    /// Checks the fallback of an `Incomplete` (the request run when the bytes cannot be
    /// buffered).
    fn check_fallback(frame: &Frame<Self::Req<'_>>);
}

/// Checks one decode result on its own: frames lie within the buffer and are not empty, an
/// `Incomplete` asks for more than the buffer holds and for no more than
/// [`Framing::max_need`], and its fallback covers exactly the bytes it waited for.
pub fn check_result<F: Framing>(buf: &[u8], limits: &DecodeLimits, d: &Decode<F::Req<'_>>) {
    match d {
        Decode::Frame(f) => {
            assert!(f.len > 0, "empty frame: {f:?}");
            assert!(f.len <= buf.len(), "frame past the buffer: {f:?}");
            F::check_frame(buf, f, limits);
        }
        Decode::Incomplete { need, fallback } => {
            assert!(*need > buf.len(), "need {need} with {} buffered", buf.len());
            let bound = F::max_need(buf.len(), limits);
            assert!(*need <= bound, "need {need} over the bound {bound}");
            if let Some(f) = fallback {
                assert!(f.len > 0 && f.len <= buf.len(), "fallback {f:?}");
                assert_eq!(
                    f.len as u64 + f.skip,
                    *need as u64,
                    "fallback must consume what was awaited: {f:?}"
                );
                F::check_fallback(f);
            }
        }
        Decode::Close => {}
    }
}

/// All framing properties for `buf`:
/// - [`check_result`] on `buf` and on the prefixes decoded below;
/// - split anywhere: with `L` the frame length of `buf` (or `buf.len()` when it holds no
///   frame), a prefix shorter than `L` never decodes to a frame, and a prefix holding `L`
///   bytes decodes to the same frame. Checked at `L - 1`, `L` and one pseudo-random cut;
/// - an `Incomplete { need }` is stable: any longer buffer still shorter than `need` decodes
///   to the same result.
pub fn check_framing<F: Framing>(buf: &[u8], limits: &DecodeLimits) {
    let whole = F::decode(buf, limits);
    check_result::<F>(buf, limits, &whole);
    let frame_len = match &whole {
        Decode::Frame(f) => Some(f.len),
        _ => None,
    };
    let end = frame_len.unwrap_or(buf.len());
    let random = (hash(buf) % (buf.len() as u64 + 1)) as usize;
    for cut in [end.saturating_sub(1), end, random] {
        let prefix = &buf[..cut];
        let part = F::decode(prefix, limits);
        check_result::<F>(prefix, limits, &part);
        match (&part, frame_len) {
            (Decode::Frame(_), Some(len)) if cut >= len => {
                assert_eq!(part, whole, "cut {cut}: another frame")
            }
            (Decode::Frame(p), _) if cut < end => {
                panic!("cut {cut} < {end}: a frame from a prefix: {p:?} (whole: {whole:?})")
            }
            (Decode::Frame(_), _) => {}
            (_, Some(len)) if cut >= len => {
                panic!("cut {cut} holds the frame of {len} bytes but gives {part:?}")
            }
            (Decode::Incomplete { need, .. }, _) if buf.len() < *need => {
                assert_eq!(
                    part, whole,
                    "cut {cut}: Incomplete needing {need} is unstable"
                )
            }
            _ => {}
        }
    }
}
