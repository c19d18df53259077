//! Finite datasets: a fixed list of N sequences split deterministically into a training
//! part and a test part.
//!
//! The split is a keyed shuffle of 0..N: the item at shuffled rank r is
//! `KeyedPermutation::apply(r)`; ranks `0..n_train` are the training items and the rest
//! the test items, with `n_train = round(frac_train · N)` (at least 1 on each side). The
//! shuffle is a 4-round Feistel network on the smallest even power of two ≥ N, walked
//! until it lands below N ("cycle walking"), keyed by the split seed: a bijection of 0..N
//! that costs O(1) per lookup, so no list of N items is ever held.

use super::rng::mix64;

/// Mixed into the split seed so the split is unrelated to the data stream.
const SPLIT_SALT: u64 = 0x7370_6c69_7421_0001; // "split!"

/// A bijection of 0..n keyed by a seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyedPermutation {
    n: u64,
    half_bits: u32,
    key: u64,
}

impl KeyedPermutation {
    /// The permutation of 0..n (n ≥ 1) for `seed`.
    pub fn new(n: u64, seed: u64) -> Self {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        KeyedPermutation {
            n,
            half_bits: bits.div_ceil(2).max(1),
            key: mix64(seed ^ SPLIT_SALT),
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for round in 0..4u64 {
            let f = mix64(self.key ^ (r << 8) ^ round) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }

    /// The image of x < n (below n; every value below n is the image of exactly one x).
    pub fn apply(&self, x: u64) -> u64 {
        let mut y = self.feistel(x);
        while y >= self.n {
            y = self.feistel(y);
        }
        y
    }
}

/// A finite dataset's size and its train/test split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FiniteSplit {
    /// N, the number of items.
    pub n_items: u64,
    /// How many of them train.
    pub n_train: u64,
    perm: KeyedPermutation,
}

impl FiniteSplit {
    /// N items, a fraction `frac_train` (0 < f < 1) of them training, shuffled by
    /// `split_seed`. Each side keeps at least one item when N ≥ 2.
    pub fn new(n_items: u64, frac_train: f64, split_seed: u64) -> Self {
        let want = (frac_train * n_items as f64).round() as u64;
        let n_train = want.clamp(1, n_items.saturating_sub(1).max(1));
        FiniteSplit {
            n_items,
            n_train,
            perm: KeyedPermutation::new(n_items.max(1), split_seed),
        }
    }

    /// The number of test items.
    pub fn n_test(&self) -> u64 {
        self.n_items - self.n_train
    }

    /// The size of one side (`held_out` true: the test side).
    pub fn side_len(&self, held_out: bool) -> u64 {
        if held_out {
            self.n_test()
        } else {
            self.n_train
        }
    }

    /// The item index of the j-th item (j < `side_len`) of one side.
    pub fn item_of(&self, held_out: bool, j: u64) -> u64 {
        let rank = if held_out { self.n_train + j } else { j };
        self.perm.apply(rank)
    }
}

/// Checks a train fraction and names it in the message.
pub fn validate_frac(frac_train: f64) -> Result<(), String> {
    if !(frac_train > 0.0 && frac_train < 1.0) {
        return Err(format!(
            "frac_train = {frac_train} must lie strictly between 0 and 1 (the fraction of the dataset that trains; the rest is the test split)"
        ));
    }
    Ok(())
}

/// The two-operand finite tasks (`min-of-two`, `mod-add`, `mod-sub`): `[a, b, =, answer]` with a, b in
/// 0..n and `=` = n; item i of the n² pairs is (a, b) = (i / n, i mod n). What they share lives here.
pub mod operands {
    use super::super::parse_numbers;
    use super::super::task::ParamRow;
    use super::FiniteSplit;

    /// The split's parameter rows: `frac_train` (default `frac_default`) and `split_seed`.
    pub fn split_rows(frac_default: f64) -> [ParamRow; 2] {
        [
            ParamRow::float(
                "frac_train",
                0.01,
                0.99,
                frac_default,
                "fraction of the pairs that train",
            ),
            ParamRow::int(
                "split_seed",
                0,
                u32::MAX as usize,
                0,
                "seed of the train/test split",
            ),
        ]
    }

    /// The n² pairs, split by `frac_train` and `split_seed`.
    pub fn split(n: usize, frac_train: f64, split_seed: u64) -> FiniteSplit {
        let pairs = (n as u64).saturating_mul(n as u64);
        FiniteSplit::new(pairs, frac_train, split_seed)
    }

    /// Item i of the n² pairs: (i / n, i mod n).
    pub fn pair(n: usize, i: u64) -> (u32, u32) {
        let n = n as u64;
        ((i / n) as u32, (i % n) as u32)
    }

    /// Labels: the values 0..n, then `=`.
    pub fn vocab(n: usize) -> Vec<String> {
        let mut v: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        v.push("=".into());
        v
    }

    /// `"17 42"` (or `"17 42 ="`) → `[17, 42, =]`.
    pub fn parse_prompt(n: usize, text: &str) -> Result<Vec<u32>, String> {
        let text = text.trim().trim_end_matches('=');
        let mut v = parse_numbers(text, n, "value")?;
        if v.len() != 2 {
            return Err(format!(
                "expected two numbers a b (each 0..={}), got {}",
                n - 1,
                v.len()
            ));
        }
        v.push(n as u32);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_permutation_is_a_bijection() {
        for n in [1u64, 2, 3, 7, 64, 113 * 113, 40_000] {
            for seed in [0, 1, 99] {
                let p = KeyedPermutation::new(n, seed);
                let mut seen = vec![false; n as usize];
                for x in 0..n {
                    let y = p.apply(x) as usize;
                    assert!(!seen[y], "n {n} seed {seed}: {y} twice");
                    seen[y] = true;
                }
            }
        }
    }

    #[test]
    fn split_sizes_follow_the_fraction() {
        let s = FiniteSplit::new(12_769, 0.3, 0);
        assert_eq!(s.n_train, 3831); // round(0.3 · 12769) = round(3830.7)
        assert_eq!(s.n_test(), 12_769 - 3831);
        assert_eq!(FiniteSplit::new(40_000, 0.8, 5).n_train, 32_000);
        assert_eq!(FiniteSplit::new(10, 0.001, 0).n_train, 1);
        assert_eq!(FiniteSplit::new(10, 0.999, 0).n_train, 9);
    }
}
