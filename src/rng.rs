//! Counter-based random numbers: every value is a pure function of (seed, stream, index,
//! draw counter), computed with 64-bit integer mixing only. A sample of a batch therefore
//! depends on (seed, step, sample index) alone: the same on every platform, in any order,
//! at any batch size, which is what makes a shared link replay exactly.

/// SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A stream of random numbers keyed by (seed, stream, index); the n-th draw is
/// `mix64(key + n·φ)`, so no state but the counter is carried.
#[derive(Clone, Debug)]
pub struct CounterRng {
    key: u64,
    counter: u64,
}

impl CounterRng {
    /// `stream` separates uses (a training step, an init tensor); `index` is the sample.
    pub fn new(seed: u64, stream: u64, index: u64) -> Self {
        let key = mix64(
            mix64(mix64(seed ^ 0x5eed_0000_0000_0001).wrapping_add(stream)).wrapping_add(index),
        );
        CounterRng { key, counter: 0 }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.counter += 1;
        mix64(self.key.wrapping_add(self.counter.wrapping_mul(GOLDEN)))
    }

    /// Uniform in 0..n (n ≥ 1), by the multiply-high method (bias < n / 2^64).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [0, 1) with 53 bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box–Muller (one of the pair; deterministic, no cached state).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A uniformly random permutation of 0..n (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }

    /// k distinct values from 0..n, uniformly over all C(n, k) subsets, sorted ascending.
    pub fn combination(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            p.swap(i, j);
        }
        let mut c = p[..k.min(n)].to_vec();
        c.sort_unstable();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_stream() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = CounterRng::new(1, 2, 3);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = CounterRng::new(1, 2, 3);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = CounterRng::new(1, 2, 4);
                move |_| r.next_u64()
            })
            .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut r = CounterRng::new(7, 0, 0);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[r.below(10) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn normal_moments() {
        let mut r = CounterRng::new(3, 1, 0);
        let xs: Vec<f64> = (0..200_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }

    #[test]
    fn permutation_and_combination_are_valid() {
        let mut r = CounterRng::new(0, 0, 0);
        for n in 1..8 {
            let mut p = r.permutation(n);
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
            let c = r.combination(62, n);
            assert_eq!(c.len(), n);
            assert!(c.windows(2).all(|w| w[0] < w[1]));
            assert!(c.iter().all(|&x| x < 62));
        }
    }
}
