//! Key names, key popularity and a small deterministic PRNG.

use std::sync::Arc;

/// A small, fast, seedable PRNG (splitmix64): deterministic per seed, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in [0, n) (n > 0), without modulo bias worth mentioning for n << 2^64.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// How keys are picked.
#[derive(Debug, Clone)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// Zipf popularity: key `i` (0-based) has weight `1/(i+1)^s`; the cumulative
    /// distribution is precomputed once and shared by all connections.
    Zipf(Arc<[f64]>),
}

impl KeyDist {
    /// A zipf distribution over `n` keys with exponent `s`.
    pub fn zipf(n: u64, s: f64) -> KeyDist {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut sum = 0.0;
        for i in 0..n {
            sum += 1.0 / ((i + 1) as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        KeyDist::Zipf(cdf.into())
    }

    /// The next key index in [0, n).
    pub fn pick(&self, rng: &mut Rng, n: u64) -> u64 {
        match self {
            KeyDist::Uniform => rng.below(n),
            KeyDist::Zipf(cdf) => {
                let u = rng.next_f64();
                (cdf.partition_point(|&c| c < u) as u64).min(n - 1)
            }
        }
    }
}

/// Appends the name of key `idx`: `prefix` then the decimal index, zero-padded so the whole
/// key is `size` bytes long (longer when the index needs more digits).
pub fn write_key(out: &mut Vec<u8>, prefix: &[u8], idx: u64, size: usize) {
    let mut num = itoa::Buffer::new();
    let digits = num.format(idx).as_bytes();
    out.extend_from_slice(prefix);
    let pad = size.saturating_sub(prefix.len() + digits.len());
    out.extend(std::iter::repeat_n(b'0', pad));
    out.extend_from_slice(digits);
}

/// The value stored under key `idx`: `size` decimal digits 1-9 derived from the index, so a
/// `get` can check the exact bytes it receives (and the value is a valid counter for incr when
/// at most 19 bytes long).
pub fn value_byte(idx: u64, i: usize) -> u8 {
    b'1' + ((idx.wrapping_add(i as u64)) % 9) as u8
}

/// Appends the value of key `idx`.
pub fn write_value(out: &mut Vec<u8>, idx: u64, size: usize) {
    out.extend((0..size).map(|i| value_byte(idx, i)));
}

/// True if `data` is exactly the value of key `idx` of length `size`.
pub fn is_value(data: &[u8], idx: u64, size: usize) -> bool {
    data.len() == size
        && data
            .iter()
            .enumerate()
            .all(|(i, &b)| b == value_byte(idx, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded_to_size() {
        let mut k = Vec::new();
        write_key(&mut k, b"key:", 42, 20);
        assert_eq!(k, b"key:0000000000000042");
        k.clear();
        write_key(&mut k, b"k", 12345, 3);
        assert_eq!(k, b"k12345");
    }

    #[test]
    fn values_check_themselves() {
        let mut v = Vec::new();
        write_value(&mut v, 7, 32);
        assert!(is_value(&v, 7, 32));
        assert!(!is_value(&v, 8, 32));
        assert!(!is_value(&v[..31], 7, 32));
        assert!(v.iter().all(u8::is_ascii_digit) && v[0] != b'0');
    }

    #[test]
    fn zipf_prefers_low_indices_and_stays_in_range() {
        let d = KeyDist::zipf(1000, 0.99);
        let mut rng = Rng::new(1);
        let mut low = 0;
        for _ in 0..10_000 {
            let k = d.pick(&mut rng, 1000);
            assert!(k < 1000);
            if k < 10 {
                low += 1;
            }
        }
        // With s = 0.99 over 1000 keys the first 10 carry about 39% of the mass.
        assert!(low > 3000 && low < 5000, "{low}");
        let u = KeyDist::Uniform;
        assert!((0..1000).all(|_| u.pick(&mut rng, 5) < 5));
    }

    #[test]
    fn rng_is_deterministic() {
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }
}
