//! Per-key limiter state and its compact, versioned byte encoding.
//!
//! Every encoded state starts with a two-byte tag: [`MAGIC`] (0x00) and a format byte whose high
//! nibble is the encoding version ([`VERSION`]) and low nibble the algorithm (1 gcra, 2 fixed,
//! 3 sliding). The length is exact per form, so [`State::decode`] tells a limiter's own state
//! from anything a client stored with `set`. A client can still `set` bytes that decode (values
//! are arbitrary bytes); that grants nothing a `delete` of the same key would not, but the store
//! should mark limiter items out of band as well if it wants a hard guarantee.
//!
//! | form | bytes | layout after the tag (big-endian) |
//! | --- | --- | --- |
//! | gcra, whole ns | 10 | `tat_ns: u64` |
//! | gcra, exact fraction | 18 | `tat_ns: u64, frac: u32, den: u32` |
//! | gcra, beyond 2^64 ns | 26 | `tat_ns: u128, frac: u32, den: u32` |
//! | fixed | 18 | `last_ns: u64, count: u64` |
//! | sliding | 34 | `curr_last_ns: u64, curr: u64, prev_last_ns: u64, prev: u64` |

use super::Algorithm;

/// First byte of every encoded state: a NUL, which text clients practically never store first.
pub const MAGIC: u8 = 0x00;
/// Version of the encoding, stored in the high nibble of the second byte.
pub const VERSION: u8 = 1;
/// The longest encoding [`State::encode`] produces, in bytes.
pub const MAX_ENCODED_LEN: usize = 34;

const ID_GCRA: u8 = 1;
const ID_FIXED: u8 = 2;
const ID_SLIDING: u8 = 3;

/// An exact GCRA theoretical arrival time: `ns + frac / den` nanoseconds on the server clock.
///
/// `T = period / limit` is in general a fraction of a nanosecond, so the TAT is kept exactly
/// on the `1/limit` ns grid (`den` is the limit in force when it was written, or 1 for a whole
/// number of ns). Invariant: `den >= 1`, `frac < den`, and `frac == 0` implies `den == 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tat {
    ns: u128,
    frac: u32,
    den: u32,
}

impl Tat {
    /// A TAT at a whole number of nanoseconds.
    pub fn from_ns(ns: u128) -> Tat {
        Tat {
            ns,
            frac: 0,
            den: 1,
        }
    }

    /// `ns + frac / den` nanoseconds; `None` unless `den >= 1` and `frac < den`.
    pub fn new(ns: u128, frac: u32, den: u32) -> Option<Tat> {
        if den == 0 || frac >= den {
            return None;
        }
        Some(if frac == 0 {
            Tat::from_ns(ns)
        } else {
            Tat { ns, frac, den }
        })
    }

    /// Whole nanoseconds (the TAT rounded down).
    pub fn ns(&self) -> u128 {
        self.ns
    }

    /// Numerator of the fractional nanosecond.
    pub fn frac(&self) -> u32 {
        self.frac
    }

    /// Denominator of the fractional nanosecond.
    pub fn den(&self) -> u32 {
        self.den
    }

    /// The TAT in units of `1/limit` ns. A fraction written under another limit is rounded UP
    /// onto the new grid (a later TAT: never over-admits). Saturates instead of overflowing.
    /// Exact for every TAT a decision writes (below `2^64 + (2^32-1) * 365 days` < 2^88 ns,
    /// so below 2^120 units); only a forged state could saturate.
    pub(crate) fn scaled(&self, limit: u32) -> u128 {
        // frac < den <= u32::MAX, so frac * limit fits in 64 bits.
        let frac = (u64::from(self.frac) * u64::from(limit)).div_ceil(u64::from(self.den));
        self.ns
            .saturating_mul(u128::from(limit))
            .saturating_add(u128::from(frac))
    }

    /// The TAT `scaled / limit` ns (`limit >= 1`).
    pub(crate) fn from_scaled(scaled: u128, limit: u32) -> Tat {
        let l = limit.max(1);
        let ns = super::wide::div_floor(scaled, u64::from(l));
        let frac = super::wide::rem(scaled, u64::from(l)) as u32; // < limit <= u32::MAX
        Tat::new(ns, frac, l).unwrap_or(Tat::from_ns(ns))
    }
}

/// The state a limiter keeps per key: O(1) and independent of the parameters, which travel
/// with every request (a change of parameters reinterprets it, see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// GCRA: the theoretical arrival time, i.e. the instant the bucket is full again.
    Gcra(Tat),
    /// Fixed window: `count` tokens spent, the last of them at `last_ns`. The counter belongs
    /// to the window (of the period in force at read time) that contains `last_ns`.
    Fixed {
        /// When the last token counted here was spent (ns on the server clock).
        last_ns: u64,
        /// Tokens spent in that window.
        count: u64,
    },
    /// Sliding window: two counters, each with the time of the last token it counts; each is
    /// assigned at read time to the current or previous window of the period then in force.
    Sliding {
        /// When the last token of `curr` was spent.
        curr_last_ns: u64,
        /// Tokens spent in the current window (as of the last write).
        curr: u64,
        /// When the last token of `prev` was spent.
        prev_last_ns: u64,
        /// Tokens spent in the previous window (as of the last write).
        prev: u64,
    },
}

impl State {
    /// The algorithm this state belongs to.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            State::Gcra(_) => Algorithm::Gcra,
            State::Fixed { .. } => Algorithm::Fixed,
            State::Sliding { .. } => Algorithm::Sliding,
        }
    }

    /// Appends the encoding of this state to `out` (at most [`MAX_ENCODED_LEN`] bytes).
    pub fn encode(&self, out: &mut impl Extend<u8>) {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let n = self.encode_into(&mut buf);
        out.extend(buf[..n].iter().copied());
    }

    /// Writes the encoding of this state to the front of `buf` and returns its length.
    pub fn encode_into(&self, buf: &mut [u8; MAX_ENCODED_LEN]) -> usize {
        let id = match self {
            State::Gcra(_) => ID_GCRA,
            State::Fixed { .. } => ID_FIXED,
            State::Sliding { .. } => ID_SLIDING,
        };
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            buf[n..n + bytes.len()].copy_from_slice(bytes);
            n += bytes.len();
        };
        put(&[MAGIC, (VERSION << 4) | id]);
        match *self {
            State::Gcra(t) => match u64::try_from(t.ns) {
                Ok(ns) if t.frac == 0 => put(&ns.to_be_bytes()),
                Ok(ns) => {
                    put(&ns.to_be_bytes());
                    put(&t.frac.to_be_bytes());
                    put(&t.den.to_be_bytes());
                }
                Err(_) => {
                    put(&t.ns.to_be_bytes());
                    put(&t.frac.to_be_bytes());
                    put(&t.den.to_be_bytes());
                }
            },
            State::Fixed { last_ns, count } => {
                put(&last_ns.to_be_bytes());
                put(&count.to_be_bytes());
            }
            State::Sliding {
                curr_last_ns,
                curr,
                prev_last_ns,
                prev,
            } => {
                for v in [curr_last_ns, curr, prev_last_ns, prev] {
                    put(&v.to_be_bytes());
                }
            }
        }
        n
    }

    /// The encoding as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(MAX_ENCODED_LEN);
        self.encode(&mut v);
        v
    }

    /// Decodes a whole value. `None` means "not a limiter state of this version": a client's
    /// value, a truncated or padded encoding, or an invalid GCRA fraction.
    pub fn decode(bytes: &[u8]) -> Option<State> {
        let (&[magic, format], body) = bytes.split_first_chunk::<2>()?;
        if magic != MAGIC || format >> 4 != VERSION {
            return None;
        }
        let u64_at = |i: usize| -> u64 { u64::from_be_bytes(body[i..i + 8].try_into().unwrap()) };
        let u32_at = |i: usize| -> u32 { u32::from_be_bytes(body[i..i + 4].try_into().unwrap()) };
        match (format & 0x0f, body.len()) {
            (ID_GCRA, 8) => Some(State::Gcra(Tat::from_ns(u128::from(u64_at(0))))),
            (ID_GCRA, 16) => {
                Tat::new(u128::from(u64_at(0)), u32_at(8), u32_at(12)).map(State::Gcra)
            }
            (ID_GCRA, 24) => {
                let ns = u128::from_be_bytes(body[..16].try_into().unwrap());
                Tat::new(ns, u32_at(16), u32_at(20)).map(State::Gcra)
            }
            (ID_FIXED, 16) => Some(State::Fixed {
                last_ns: u64_at(0),
                count: u64_at(8),
            }),
            (ID_SLIDING, 32) => Some(State::Sliding {
                curr_last_ns: u64_at(0),
                curr: u64_at(8),
                prev_last_ns: u64_at(16),
                prev: u64_at(24),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: State) -> usize {
        let bytes = s.to_bytes();
        assert_eq!(State::decode(&bytes), Some(s), "{bytes:02x?}");
        assert!(bytes.len() <= MAX_ENCODED_LEN);
        bytes.len()
    }

    #[test]
    fn forms_and_sizes() {
        assert_eq!(round_trip(State::Gcra(Tat::from_ns(123))), 10);
        assert_eq!(round_trip(State::Gcra(Tat::new(7, 3, 7).unwrap())), 18);
        assert_eq!(
            round_trip(State::Gcra(Tat::from_ns(u128::from(u64::MAX)))),
            10
        );
        assert_eq!(round_trip(State::Gcra(Tat::from_ns(1 << 80))), 26);
        assert_eq!(
            round_trip(State::Gcra(Tat::new(1 << 70, 1, 2).unwrap())),
            26
        );
        let fixed = State::Fixed {
            last_ns: 5,
            count: 9,
        };
        assert_eq!(round_trip(fixed), 18);
        let sliding = State::Sliding {
            curr_last_ns: 1,
            curr: 2,
            prev_last_ns: 3,
            prev: u64::MAX,
        };
        assert_eq!(round_trip(sliding), 34);
        assert_eq!(
            State::Gcra(Tat::from_ns(0x0102)).to_bytes(),
            [0, 0x11, 0, 0, 0, 0, 0, 0, 1, 2]
        );
    }

    #[test]
    fn rejects_foreign_values() {
        for v in [
            &b""[..],
            b"\x00",
            b"hello",
            b"\x00\x11\x00",                             // truncated
            b"\x00\x21\x00\x00\x00\x00\x00\x00\x00\x00", // version 2
            b"\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00", // unknown algorithm
            b"\x01\x11\x00\x00\x00\x00\x00\x00\x00\x00", // wrong magic
            b"\x00\x12\x00\x00\x00\x00\x00\x00\x00\x00", // fixed with a gcra length
        ] {
            assert_eq!(State::decode(v), None, "{v:02x?}");
        }
        let mut padded = State::Gcra(Tat::from_ns(1)).to_bytes();
        padded.push(0);
        assert_eq!(State::decode(&padded), None);
        // An exact-fraction form with frac >= den or den == 0 is not ours.
        let mut bad = vec![0, 0x11];
        bad.extend_from_slice(&1u64.to_be_bytes());
        bad.extend_from_slice(&5u32.to_be_bytes());
        bad.extend_from_slice(&5u32.to_be_bytes());
        assert_eq!(State::decode(&bad), None);
        bad.truncate(14);
        bad.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(State::decode(&bad), None);
    }

    #[test]
    fn algorithm_of_state() {
        assert_eq!(State::Gcra(Tat::from_ns(0)).algorithm(), Algorithm::Gcra);
        let f = State::Fixed {
            last_ns: 0,
            count: 0,
        };
        assert_eq!(f.algorithm(), Algorithm::Fixed);
    }

    #[test]
    fn tat_grid_conversion_rounds_up() {
        let t = Tat::from_scaled(10, 3); // 3 + 1/3 ns
        assert_eq!((t.ns(), t.frac(), t.den()), (3, 1, 3));
        assert_eq!(t.scaled(3), 10);
        assert_eq!(t.scaled(2), 7); // 3.5 ns >= 3.33 ns
        assert_eq!(t.scaled(6), 20);
        assert_eq!(Tat::from_scaled(9, 3), Tat::from_ns(3));
        assert_eq!(Tat::from_ns(u128::MAX).scaled(2), u128::MAX);
    }
}
