//! A limiter [`State`] in the words of an entry: two words (narrow) for a gcra arrival time
//! below 2^64 ns and for a fixed window, three (wide) for a sliding window and for a gcra
//! arrival time beyond 2^64 ns (only reached with periods of years and huge costs).
//!
//! | state | class | words |
//! | --- | --- | --- |
//! | gcra | narrow | `tat_ns`, `frac << 32 \| den` |
//! | gcra, `tat_ns >= 2^64` | wide | `tat_ns` low, `tat_ns` high, `frac << 32 \| den` |
//! | fixed | narrow | `last_ns`, `count` |
//! | sliding | wide | `curr_last_ns`, `prev_last_ns`, `curr << 32 \| prev` |
//!
//! Sliding counters fit 32 bits: a counter only grows while `count + cost <= limit`, and a
//! limit is at most 2^32 - 1 (a larger one, from a forged state, would saturate, which only
//! denies more).

use crate::ratelimit::{Algorithm, State, Tat};

/// A state's words in the class it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packed {
    /// Two words.
    Narrow([u64; 2]),
    /// Three words.
    Wide([u64; 3]),
}

/// The 2-bit code of an algorithm in an index slot.
pub fn alg_code(a: Algorithm) -> u8 {
    match a {
        Algorithm::Gcra => 0,
        Algorithm::Fixed => 1,
        Algorithm::Sliding => 2,
    }
}

/// The algorithm of a 2-bit code.
pub fn alg_of(code: u8) -> Algorithm {
    match code {
        1 => Algorithm::Fixed,
        2 => Algorithm::Sliding,
        _ => Algorithm::Gcra,
    }
}

fn fraction(t: &Tat) -> u64 {
    u64::from(t.frac()) << 32 | u64::from(t.den())
}

fn tat(ns: u128, frac_den: u64) -> State {
    let (frac, den) = ((frac_den >> 32) as u32, frac_den as u32);
    State::Gcra(Tat::new(ns, frac, den).unwrap_or(Tat::from_ns(ns + 1)))
}

/// The words of `s`.
pub fn pack(s: &State) -> Packed {
    match *s {
        State::Gcra(t) => match u64::try_from(t.ns()) {
            Ok(ns) => Packed::Narrow([ns, fraction(&t)]),
            Err(_) => Packed::Wide([t.ns() as u64, (t.ns() >> 64) as u64, fraction(&t)]),
        },
        State::Fixed { last_ns, count } => Packed::Narrow([last_ns, count]),
        State::Sliding {
            curr_last_ns,
            curr,
            prev_last_ns,
            prev,
        } => {
            let c = curr.min(u64::from(u32::MAX));
            let p = prev.min(u64::from(u32::MAX));
            Packed::Wide([curr_last_ns, prev_last_ns, c << 32 | p])
        }
    }
}

/// The state of algorithm `alg` in narrow words.
pub fn unpack_narrow(alg: Algorithm, w: [u64; 2]) -> State {
    match alg {
        Algorithm::Fixed => State::Fixed {
            last_ns: w[0],
            count: w[1],
        },
        _ => tat(u128::from(w[0]), w[1]),
    }
}

/// The state of algorithm `alg` in wide words.
pub fn unpack_wide(alg: Algorithm, w: [u64; 3]) -> State {
    match alg {
        Algorithm::Sliding => State::Sliding {
            curr_last_ns: w[0],
            curr: w[2] >> 32,
            prev_last_ns: w[1],
            prev: w[2] & u64::from(u32::MAX),
        },
        _ => tat(u128::from(w[1]) << 64 | u128::from(w[0]), w[2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: State) -> State {
        match pack(&s) {
            Packed::Narrow(w) => unpack_narrow(s.algorithm(), w),
            Packed::Wide(w) => unpack_wide(s.algorithm(), w),
        }
    }

    #[test]
    fn states_round_trip() {
        let states = [
            State::Gcra(Tat::from_ns(0)),
            State::Gcra(Tat::new(123_456_789, 7, 10).unwrap()),
            State::Gcra(Tat::new(u128::from(u64::MAX), u32::MAX - 1, u32::MAX).unwrap()),
            State::Gcra(Tat::new(1 << 87, 3, 4).unwrap()),
            State::Fixed {
                last_ns: 5,
                count: u64::from(u32::MAX) + 9,
            },
            State::Sliding {
                curr_last_ns: 10,
                curr: u64::from(u32::MAX),
                prev_last_ns: 3,
                prev: 17,
            },
        ];
        for s in states {
            assert_eq!(round_trip(s), s, "{s:?}");
        }
        assert!(
            matches!(pack(&states[3]), Packed::Wide(_)),
            "past 2^64 ns is wide"
        );
        assert!(matches!(pack(&states[2]), Packed::Narrow(_)));
        for a in [Algorithm::Gcra, Algorithm::Fixed, Algorithm::Sliding] {
            assert_eq!(alg_of(alg_code(a)), a);
        }
    }

    #[test]
    fn oversized_sliding_counters_saturate_toward_denial() {
        let s = State::Sliding {
            curr_last_ns: 1,
            curr: u64::MAX,
            prev_last_ns: 0,
            prev: 0,
        };
        let State::Sliding { curr, .. } = round_trip(s) else {
            panic!()
        };
        assert_eq!(curr, u64::from(u32::MAX));
    }
}
