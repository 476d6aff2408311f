//! Division of u128 quantities with a u64 fast path. A u128-by-u128 division is a library
//! call of some dozens of instructions, while a common decision's quantities fit in 64 bits;
//! the extremes of the parameter range (a TAT or a debt beyond 2^64) take the exact slow path.

/// `floor(a / b)`. `b` must not be 0.
#[inline]
pub(super) fn div_floor(a: u128, b: u64) -> u128 {
    match u64::try_from(a) {
        Ok(a) => u128::from(a / b),
        Err(_) => a / u128::from(b),
    }
}

/// `ceil(a / b)`. `b` must not be 0.
#[inline]
pub(super) fn div_ceil(a: u128, b: u64) -> u128 {
    match u64::try_from(a) {
        Ok(a) => u128::from(a.div_ceil(b)),
        Err(_) => a.div_ceil(u128::from(b)),
    }
}

/// `a % b` as a u64 (it is below `b`). `b` must not be 0.
#[inline]
pub(super) fn rem(a: u128, b: u64) -> u64 {
    match u64::try_from(a) {
        Ok(a) => a % b,
        // The remainder is below b, a u64.
        Err(_) => (a % u128::from(b)) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        assert_eq!(div_floor(u128::MAX, 1), u128::MAX);
        assert_eq!(div_ceil(u128::MAX, 1), u128::MAX);
        assert_eq!(div_ceil(u128::MAX, 2), 1 << 127);
        assert_eq!(div_floor(u128::from(u64::MAX) + 1, u64::MAX), 1);
        assert_eq!(div_ceil(u128::from(u64::MAX) + 1, u64::MAX), 2);
        assert_eq!(rem(u128::from(u64::MAX) + 1, u64::MAX), 1);
        assert_eq!((div_floor(0, 7), div_ceil(0, 7), rem(0, 7)), (0, 0, 0));
        assert_eq!((div_floor(7, 7), div_ceil(8, 7), rem(13, 7)), (1, 2, 6));
    }

    proptest! {
        #[test]
        fn agrees_with_u128(a in prop_oneof![any::<u128>(), any::<u64>().prop_map(u128::from)], b in 1..=u64::MAX) {
            let w = u128::from(b);
            prop_assert_eq!(div_floor(a, b), a / w);
            prop_assert_eq!(div_ceil(a, b), a.div_ceil(w));
            prop_assert_eq!(u128::from(rem(a, b)), a % w);
        }
    }
}
