//! The permutation task of the seed-000 notebook: `"> "` + all n! permutations of n
//! distinct characters, in Python `itertools.permutations` order, joined by single spaces,
//! + `"."`. For the characters abc: `"> abc acb bac bca cab cba."`.
//!
//! The vocabulary is one token per character of [`VOCAB`]: `'>'` = 0, `' '` = 1, `'.'` = 2,
//! then a-z, A-Z, 0-9 (65 tokens). A sample picks a uniformly random set of n of the 62
//! term characters, kept in vocabulary order. T = 2 + n!·n + (n! − 1) + 1 = n!·(n + 1) + 2:
//! 4 for n = 1, 122 for n = 4, 722 for n = 5; n = 6 would need 5042, more than the
//! context limit.
//!
//! ## Held-out character combinations
//!
//! A spec may hold out a fraction `holdout` of the C(62, n) combinations (seed 000's
//! assumption 5: does the model generalise to character sets it never saw?). The rule,
//! a pure function of the combination and `split_seed`, is [`is_held_out`]:
//!
//! ```text
//! mask  = Σ 2^(c − 3) over the n term characters c      (a 62-bit set; 'a' is bit 0)
//! h     = mix64(mix64(split_seed XOR 0x686f6c646f757421) + mask)   (wrapping add;
//!         mix64 is SplitMix64's finaliser, tasks::rng::mix64)
//! held out  ⇔  (h >> 11) · 2^−53 < holdout
//! ```
//!
//! so each combination is held out independently with probability `holdout`, the same on
//! every platform, and the set depends neither on the order characters are drawn in nor
//! on the data seed. Training samples ([`Split::Train`](super::Split)) are drawn uniformly
//! from the other combinations by rejection (up to [`MAX_TRIES`] draws of the sample's
//! RNG; past that — probability below 0.9^1024 — the next training combination in
//! lexicographic order of the last draw is taken); evaluation samples
//! ([`Split::HeldOut`](super::Split)) likewise from the held-out ones only. With
//! `holdout` = 0 nothing is held out and both splits draw exactly the samples of a spec
//! without a split.

use super::rng::{mix64, CounterRng};
use super::{ln_choose, shorten, MAX_N_CTX};

/// Every token's character, by id.
pub const VOCAB: &str = "> .abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Token id of `'>'`, the first token of every sequence.
pub const BEG: u32 = 0;
/// Token id of `' '`, between terms.
pub const SPACE: u32 = 1;
/// Token id of `'.'`, the last token.
pub const PERIOD: u32 = 2;
/// Id of the first term character (`'a'`); the 62 term characters are `FIRST_CHAR..65`.
pub const FIRST_CHAR: u32 = 3;
/// Number of term characters (52 letters + 10 digits).
pub const N_CHARS: usize = 62;

/// n! (saturating at usize::MAX).
fn factorial(n: usize) -> usize {
    (1..=n).fold(1usize, |a, b| a.saturating_mul(b))
}

/// T = n!·(n + 1) + 2 (saturating).
pub fn seq_len(n: usize) -> usize {
    factorial(n)
        .saturating_mul(n.saturating_add(1))
        .saturating_add(2)
}

/// Checks n: 1 ≤ n and T ≤ the context limit (so n ≤ 5).
pub fn validate(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("n = 0: a term needs at least 1 character (n must be 1..=5)".into());
    }
    let t = seq_len(n);
    if t > MAX_N_CTX {
        let need = if t == usize::MAX {
            "at least 2^64".to_string()
        } else {
            t.to_string()
        };
        return Err(format!(
            "n = {n} needs {need} tokens, more than the {MAX_N_CTX} context limit (n must be 1..=5)"
        ));
    }
    Ok(())
}

/// The index permutations of 0..n in `itertools.permutations` order (lexicographic in
/// the indices). n! entries: meant for the small n of this task.
fn index_permutations(n: usize) -> Vec<Vec<usize>> {
    let mut cur: Vec<usize> = (0..n).collect();
    let mut out = vec![cur.clone()];
    // Next lexicographic permutation: find the last ascent i, swap cur[i] with the last
    // element greater than it, reverse the tail.
    loop {
        let Some(i) = (1..n).rev().find(|&i| cur[i - 1] < cur[i]).map(|i| i - 1) else {
            return out;
        };
        let j = (i + 1..n)
            .rev()
            .find(|&j| cur[j] > cur[i])
            .expect("an ascent has a larger successor");
        cur.swap(i, j);
        cur[i + 1..].reverse();
        out.push(cur.clone());
    }
}

/// The whole sequence for the given first term (token ids, in the order given; the
/// permutations are taken in itertools order of that order):
/// `[BEG, SPACE, term_1, SPACE, term_2, .., term_{n!}, PERIOD]`.
pub fn permutation_tokens(comb: &[u32]) -> Vec<u32> {
    let mut out = vec![BEG, SPACE]; // (T,)
    for (i, perm) in index_permutations(comb.len()).iter().enumerate() {
        if i > 0 {
            out.push(SPACE);
        }
        out.extend(perm.iter().map(|&j| comb[j]));
    }
    out.push(PERIOD);
    out
}

/// The sequence as text for the given characters, e.g. `['a', 'b']` → `"> ab ba."`.
/// Same order as [`permutation_tokens`]; any characters are accepted.
pub fn render(chars: &[char]) -> String {
    let terms: Vec<String> = index_permutations(chars.len())
        .iter()
        .map(|p| p.iter().map(|&j| chars[j]).collect())
        .collect();
    format!("> {}.", terms.join(" "))
}

/// One sample: `rng.combination(62, n)` (sorted, so in vocabulary order), then the layout.
pub fn sample(n: usize, rng: &mut CounterRng) -> Vec<u32> {
    sample_split(n, 0.0, 0, false, rng)
}

/// Largest `holdout` fraction accepted.
pub const MAX_HOLDOUT: f64 = 0.9;
/// Rejection draws before a sample falls back to the lexicographic walk.
pub const MAX_TRIES: usize = 1024;
/// Mixed into the split seed so the split hash is unrelated to the data stream's.
const SPLIT_SALT: u64 = 0x686f_6c64_6f75_7421; // "holdout!"

/// The 62-bit set of a combination's characters: bit `c − FIRST_CHAR` for every token
/// id c (ids outside the term characters are ignored).
pub fn comb_mask(chars: &[u32]) -> u64 {
    chars
        .iter()
        .filter(|&&c| (FIRST_CHAR..FIRST_CHAR + N_CHARS as u32).contains(&c))
        .fold(0, |m, &c| m | 1 << (c - FIRST_CHAR))
}

/// Whether the combination with this [`comb_mask`] is held out of training (the rule in
/// the module doc). Never for `holdout` ≤ 0.
pub fn is_held_out(mask: u64, holdout: f64, split_seed: u64) -> bool {
    if holdout.is_nan() || holdout <= 0.0 {
        return false;
    }
    let h = mix64(mix64(split_seed ^ SPLIT_SALT).wrapping_add(mask));
    ((h >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < holdout
}

fn mask_of(idx: &[usize]) -> u64 {
    idx.iter().fold(0, |m, &i| m | 1 << i)
}

/// Steps a sorted k-subset of 0..m to the next in lexicographic order; from the last one
/// it wraps to the first (0, 1, .., k−1).
fn next_combination(c: &mut [usize], m: usize) {
    let k = c.len();
    for i in (0..k).rev() {
        if c[i] < m - k + i {
            c[i] += 1;
            for j in i + 1..k {
                c[j] = c[j - 1] + 1;
            }
            return;
        }
    }
    for (j, x) in c.iter_mut().enumerate() {
        *x = j;
    }
}

/// A combination (sorted indices 0..62) from the wanted side of the split.
fn draw(
    n: usize,
    holdout: f64,
    split_seed: u64,
    held_out: bool,
    rng: &mut CounterRng,
    tries: usize,
) -> Vec<usize> {
    let mut c = rng.combination(N_CHARS, n);
    if holdout.is_nan() || holdout <= 0.0 {
        return c;
    }
    let ok = |c: &[usize]| is_held_out(mask_of(c), holdout, split_seed) == held_out;
    for _ in 1..tries {
        if ok(&c) {
            return c;
        }
        c = rng.combination(N_CHARS, n);
    }
    // Bounded walk: a valid spec has a combination on each side, so one is found.
    for _ in 0..n_combinations(n) {
        if ok(&c) {
            break;
        }
        next_combination(&mut c, N_CHARS);
    }
    c
}

/// One sample from one side of the split: the training combinations (`held_out` false)
/// or the held-out ones (true). See the module doc for the rule.
pub fn sample_split(
    n: usize,
    holdout: f64,
    split_seed: u64,
    held_out: bool,
    rng: &mut CounterRng,
) -> Vec<u32> {
    let comb: Vec<u32> = draw(n, holdout, split_seed, held_out, rng, MAX_TRIES)
        .into_iter()
        .map(|c| c as u32 + FIRST_CHAR)
        .collect();
    permutation_tokens(&comb)
}

/// C(62, n), the number of combinations (first terms).
pub fn n_combinations(n: usize) -> u64 {
    let c = (0..n.min(N_CHARS) as u128).fold(1u128, |c, i| c * (N_CHARS as u128 - i) / (i + 1));
    u64::try_from(c).unwrap_or(u64::MAX)
}

/// Visits every combination of n of the 62 characters (sorted indices) in lexicographic
/// order until `f` returns false.
pub fn for_each_combination(n: usize, mut f: impl FnMut(&[usize]) -> bool) {
    if n == 0 || n > N_CHARS {
        return;
    }
    let mut c: Vec<usize> = (0..n).collect();
    loop {
        if !f(&c) {
            return;
        }
        next_combination(&mut c, N_CHARS);
        if c[n - 1] == n - 1 {
            return; // wrapped to the first
        }
    }
}

/// (training, held-out) combination counts for this split, by enumerating all C(62, n).
pub fn split_sizes(n: usize, holdout: f64, split_seed: u64) -> (u64, u64) {
    let (mut train, mut held) = (0u64, 0u64);
    for_each_combination(n, |c| {
        if is_held_out(mask_of(c), holdout, split_seed) {
            held += 1;
        } else {
            train += 1;
        }
        true
    });
    (train, held)
}

/// Checks the split: `holdout` in [0, MAX_HOLDOUT] and, when it is positive, at least one
/// combination on each side (found by a walk that stops at the first of each).
pub fn validate_split(n: usize, holdout: f64, split_seed: u64) -> Result<(), String> {
    if !(holdout.is_finite() && (0.0..=MAX_HOLDOUT).contains(&holdout)) {
        return Err(format!("holdout {holdout} is not in [0, {MAX_HOLDOUT}] (the fraction of character combinations held out)"));
    }
    if holdout == 0.0 {
        return Ok(());
    }
    let (mut train, mut held) = (false, false);
    for_each_combination(n, |c| {
        if is_held_out(mask_of(c), holdout, split_seed) {
            held = true;
        } else {
            train = true;
        }
        !(train && held)
    });
    match (train, held) {
        (true, true) => Ok(()),
        (_, false) => Err(format!(
            "holdout {holdout} with split_seed {split_seed} holds out none of the C(62, {n}) combinations; raise holdout or change split_seed"
        )),
        (false, _) => Err(format!(
            "holdout {holdout} with split_seed {split_seed} leaves no training combination of the C(62, {n}); lower holdout or change split_seed"
        )),
    }
}

/// The exact loss floor, `ln C(62, n) / (T − 1)` nats per predicted token.
///
/// Derivation. Every next token is scored, so there are T − 1 predicted positions, and
/// by the chain rule the sum over them of the conditional entropies H(x_{p+1} | x_{≤p})
/// is the entropy of the whole sequence given its first token `'>'`. That sequence is a
/// deterministic, invertible function of the first term, and the first term is a
/// uniformly random n-subset of the 62 characters written in sorted (vocabulary) order,
/// so its entropy is exactly ln C(62, n); all of it is spent on the n first-term targets.
/// Every other target — the space after `'>'`, the spaces between terms, every later
/// permutation (itertools order of the first term), the period — is a function of the
/// prefix and contributes 0. A perfect model predicts the true conditional distributions,
/// so its expected cross-entropy summed over a sequence equals that total entropy, and
/// its mean per predicted token is ln C(62, n) / (T − 1). For n = 4: ln 557 845 / 121 =
/// 13.231836… / 121 ≈ 0.109354.
///
/// With a held-out split the training first term is uniform over the training
/// combinations instead, so the floor of the training distribution is
/// ln(#training combinations) / (T − 1) ([`loss_floor_split`]).
pub fn loss_floor(n: usize) -> f64 {
    ln_choose(N_CHARS as u64, n as u64) / (seq_len(n) - 1) as f64
}

/// The floor of the training distribution of a split (see [`loss_floor`]); the same as
/// `loss_floor(n)` for `holdout` = 0. Counts the training combinations exactly (all
/// C(62, n) of them are visited: 6.5 M for n = 5).
pub fn loss_floor_split(n: usize, holdout: f64, split_seed: u64) -> f64 {
    if holdout.is_nan() || holdout <= 0.0 {
        return loss_floor(n);
    }
    let (train, _) = split_sizes(n, holdout, split_seed);
    (train as f64).ln() / (seq_len(n) - 1) as f64
}

/// Where the character `tokens[p + 1]` can be copied from: its position in the first term
/// (2..2+n, the characters in itertools' reference order) and its position in the previous
/// term (from which the next permutation is derived), both ≤ p (visible); one position
/// when the previous term is the first. Empty for a space or period target and inside the
/// first term. The caller has checked that p is a prediction position and tokens is long
/// enough.
pub fn answer_sources(n: usize, tokens: &[u32], p: usize) -> Vec<usize> {
    let target = tokens[p + 1];
    if target < FIRST_CHAR || p + 1 < 2 + n {
        return Vec::new();
    }
    let find = |start: usize| {
        (start..start + n)
            .filter(|&q| q <= p && tokens.get(q) == Some(&target))
            .collect::<Vec<_>>()
    };
    let term = (p + 1 - 2) / (n + 1); // 0-based term of the target
    let mut out = find(2);
    if term >= 2 {
        out.extend(find(2 + (term - 1) * (n + 1)));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `"abcd"` or `"> abcd"` → `"> abcd"` as tokens: n distinct characters from a-z, A-Z,
/// 0-9, kept in the typed order.
pub fn parse_prompt(n: usize, text: &str) -> Result<Vec<u32>, String> {
    let mut term = text.trim();
    if let Some(rest) = term.strip_prefix('>') {
        term = rest.trim_start();
    }
    let mut out = vec![BEG, SPACE];
    for c in term.chars() {
        let id = match VOCAB.find(c) {
            Some(i) if c.is_ascii_alphanumeric() => i as u32,
            _ => {
                let shown = if c == ' ' {
                    "' ' (a space)".to_string()
                } else {
                    format!("'{}'", shorten(&c.to_string()))
                };
                return Err(format!(
                    "{shown} is not allowed in the term (use n = {n} distinct characters from a-z, A-Z, 0-9)"
                ));
            }
        };
        if out[2..].contains(&id) {
            return Err(format!(
                "'{c}' appears twice (the {n} characters must be distinct)"
            ));
        }
        out.push(id);
    }
    let got = out.len() - 2;
    if got != n {
        return Err(format!(
            "expected {n} characters from a-z, A-Z, 0-9, got {got} in '{}'",
            shorten(term)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_combination_walks_all_in_order_and_wraps() {
        let mut c = vec![0, 1];
        let mut seen = vec![c.clone()];
        for _ in 1..6 {
            next_combination(&mut c, 4);
            seen.push(c.clone());
        }
        assert_eq!(
            seen,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        next_combination(&mut c, 4);
        assert_eq!(c, vec![0, 1]);
        let mut count = 0;
        for_each_combination(3, |_| {
            count += 1;
            true
        });
        assert_eq!(count, 37_820);
    }

    /// With no rejection draws the fallback walk must still land on the wanted side.
    #[test]
    fn fallback_walk_lands_on_the_wanted_side() {
        for n in 1..=3 {
            for i in 0..200 {
                for held in [false, true] {
                    let mut rng = CounterRng::new(5, 9, i);
                    let c = draw(n, 0.5, 7, held, &mut rng, 0);
                    assert_eq!(c.len(), n);
                    assert!(c.windows(2).all(|w| w[0] < w[1]));
                    assert_eq!(
                        is_held_out(mask_of(&c), 0.5, 7),
                        held,
                        "n {n} sample {i}: {c:?}"
                    );
                }
            }
        }
    }
}

/// The permutations task's parameters (the fields of `TaskSpec::Permutations`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Permutations {
    pub n: usize,
    pub holdout: f64,
    pub split_seed: u64,
}

impl super::Task for Permutations {
    fn analysis_notes(&self) -> super::task::AnalysisNotes {
        super::task::AnalysisNotes {
            attention: "After the first term every character is determined: look for heads that attend to the same slot of the previous term(s) and to the first term's characters, which say which characters are in play.",
            qk: "Position panels matter here: a head that reads the previous term attends n + 1 positions back (one term and its space).",
            ov: "Heads that move characters copy them (a diagonal over the character tokens); a head reading the term's structure writes position or separator information instead.",
            scores: "The first term is random (its loss cannot fall below ln of the choices); algorithm accuracy counts only the positions after it.",
            interventions: "Patch a changed character of the first term: the positions that must change with it show which heads carry the character sets forward.",
            timeline: "The first term's loss stays high forever; watch the algorithm accuracy, which rises term by term.",
        }
    }
    fn description(&self) -> &'static str {
        "Write out every permutation of n distinct characters (the seed-000 model's format)."
    }
    fn params(&self) -> Vec<super::ParamRow> {
        vec![
            super::ParamRow::int("n", 1, 5, 4, "characters per term"),
            super::ParamRow::float(
                "holdout",
                0.0,
                MAX_HOLDOUT,
                0.0,
                "fraction of character combinations held out of training",
            ),
            super::ParamRow::int(
                "split_seed",
                0,
                u32::MAX as usize,
                0,
                "seed of the held-out split",
            ),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        validate(self.n).and_then(|()| validate_split(self.n, self.holdout, self.split_seed))
    }
    fn seq_len(&self) -> usize {
        seq_len(self.n)
    }
    fn d_vocab(&self) -> usize {
        VOCAB.len()
    }
    fn d_vocab_out(&self) -> usize {
        VOCAB.len()
    }
    fn vocab(&self) -> Vec<String> {
        VOCAB.chars().map(String::from).collect()
    }
    // every next token
    fn pred_positions(&self) -> Vec<usize> {
        (0..seq_len(self.n).saturating_sub(1)).collect()
    }
    /// The targets after the first term (p + 1 ≥ 2 + n): the first term is random and
    /// cannot be predicted; everything after it can.
    fn algo_positions(&self) -> Vec<usize> {
        let n = self.n;
        self.pred_positions()
            .into_iter()
            .filter(|&p| p > n)
            .collect()
    }
    fn sample(&self, rng: &mut CounterRng, held_out: bool) -> Vec<u32> {
        sample_split(self.n, self.holdout, self.split_seed, held_out, rng)
    }
    fn has_split(&self) -> bool {
        self.holdout > 0.0
    }
    fn loss_floor(&self) -> f64 {
        loss_floor_split(self.n, self.holdout, self.split_seed)
    }
    fn answer_sources(&self, tokens: &[u32], p: usize) -> Vec<usize> {
        answer_sources(self.n, tokens, p)
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        FIRST_CHAR as usize..VOCAB.len()
    }
    fn position_names(&self) -> Vec<String> {
        let (n, t) = (self.n, seq_len(self.n));
        (0..t)
            .map(|q| match q {
                0 => ">".to_string(),
                1 => "␣".to_string(),
                _ if q == t - 1 => ".".to_string(),
                _ => {
                    let (term, slot) = ((q - 2) / (n + 1), (q - 2) % (n + 1));
                    if slot == n {
                        "␣".to_string()
                    } else {
                        format!("t{}.{}", term + 1, slot + 1)
                    }
                }
            })
            .collect()
    }
    fn prompt_len(&self) -> usize {
        self.n.saturating_add(2)
    }
    fn corrupt_span(&self) -> (usize, usize) {
        (2, self.n)
    }
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        Some(permutation_tokens(prompt.get(2..)?))
    }
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        parse_prompt(self.n, text)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        super::task::join_labels(&self.vocab(), tokens, 2, self.n + 2, "")
    }
    fn format_tokens(&self, tokens: &[u32]) -> String {
        let v = self.vocab();
        tokens.iter().map(|&t| super::task::label(&v, t)).collect()
    }
    fn default_model(&self) -> crate::model::ModelConfig {
        let mut cfg = super::task::attn_only(1, 1, 128, 64);
        cfg.normalization_type = Some(crate::model::Norm::LN);
        cfg
    }
}
