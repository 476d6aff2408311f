//! Stats groups: the policy and key-prefix rows (`stats ratelimit`) a state counts under,
//! kept in spare bits of its entry's identity word, and the live states per row a shard
//! counts as states are created and freed.

/// First bit of an identity word's stats group (policy byte, then prefix byte). Low bits, so
/// the index's home slot (taken from the high bits) is not affected.
const GROUP_SHIFT: u32 = 3;
/// The bits of an identity word that hold the stats group.
pub(super) const GROUP_BITS: u64 = 0xffff << GROUP_SHIFT;

/// The stats rows a subject's state is counted under while it lives (see
/// [`super::Limiter::live_by_group`]): a policy row and a key-prefix row, 0 for none. Set when
/// the state is created and kept until it is freed; not part of the subject's identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Group {
    /// Row of the policy whose request created the state (0: none).
    pub policy: u8,
    /// Row of the subject's key prefix (0: none).
    pub prefix: u8,
}

impl Group {
    /// No rows.
    pub const NONE: Group = Group {
        policy: 0,
        prefix: 0,
    };

    /// The group's bits in an identity word.
    pub(super) fn bits(self) -> u64 {
        (u64::from(self.policy) | u64::from(self.prefix) << 8) << GROUP_SHIFT
    }

    /// The group of an identity word.
    pub(super) fn of_word(word: u64) -> Group {
        let g = (word & GROUP_BITS) >> GROUP_SHIFT;
        Group {
            policy: g as u8,
            prefix: (g >> 8) as u8,
        }
    }
}

/// Live states per group row (row 0 counts states of no group).
#[derive(Clone)]
pub struct GroupLive {
    /// Live states by policy row.
    pub policy: [u64; 256],
    /// Live states by prefix row.
    pub prefix: [u64; 256],
}

impl Default for GroupLive {
    fn default() -> Self {
        GroupLive {
            policy: [0; 256],
            prefix: [0; 256],
        }
    }
}

impl GroupLive {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &GroupLive) {
        for (a, b) in self.policy.iter_mut().zip(&other.policy) {
            *a += b;
        }
        for (a, b) in self.prefix.iter_mut().zip(&other.prefix) {
            *a += b;
        }
    }

    /// Counts (`add`) or uncounts a state whose identity word is `word`.
    pub(super) fn tally(&mut self, word: u64, add: bool) {
        let g = Group::of_word(word);
        let (p, x) = (
            &mut self.policy[usize::from(g.policy)],
            &mut self.prefix[usize::from(g.prefix)],
        );
        if add {
            *p += 1;
            *x += 1;
        } else {
            *p -= 1;
            *x -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_round_trips_through_its_bits() {
        for g in [
            Group::NONE,
            Group {
                policy: 255,
                prefix: 1,
            },
            Group {
                policy: 7,
                prefix: 255,
            },
        ] {
            let word = 0xdead_0000_0000_0001 | 0b110 | g.bits();
            assert_eq!(Group::of_word(word), g);
            assert_eq!(g.bits() & !GROUP_BITS, 0);
        }
    }
}
