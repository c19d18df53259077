//! The permutation task of the seed-000 notebook: `"> "` + all n! permutations of n
//! distinct characters, in Python `itertools.permutations` order, joined by single spaces,
//! + `"."`. For the characters abc: `"> abc acb bac bca cab cba."`.
//!
//! The vocabulary is one token per character of [`VOCAB`]: `'>'` = 0, `' '` = 1, `'.'` = 2,
//! then a-z, A-Z, 0-9 (65 tokens). A sample picks a uniformly random set of n of the 62
//! term characters, kept in vocabulary order. T = 2 + n!·n + (n! − 1) + 1 = n!·(n + 1) + 2:
//! 4 for n = 1, 122 for n = 4, 722 for n = 5; n = 6 would need 5042, more than the
//! context limit.

use super::rng::CounterRng;
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
    factorial(n).saturating_mul(n.saturating_add(1)).saturating_add(2)
}

/// Checks n: 1 ≤ n and T ≤ the context limit (so n ≤ 5).
pub fn validate(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("n = 0: a term needs at least 1 character (n must be 1..=5)".into());
    }
    let t = seq_len(n);
    if t > MAX_N_CTX {
        let need = if t == usize::MAX { "at least 2^64".to_string() } else { t.to_string() };
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
        let j = (i + 1..n).rev().find(|&j| cur[j] > cur[i]).expect("an ascent has a larger successor");
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
    let terms: Vec<String> =
        index_permutations(chars.len()).iter().map(|p| p.iter().map(|&j| chars[j]).collect()).collect();
    format!("> {}.", terms.join(" "))
}

/// One sample: `rng.combination(62, n)` (sorted, so in vocabulary order), then the layout.
pub fn sample(n: usize, rng: &mut CounterRng) -> Vec<u32> {
    let comb: Vec<u32> = rng.combination(N_CHARS, n).into_iter().map(|c| c as u32 + FIRST_CHAR).collect();
    permutation_tokens(&comb)
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
pub fn loss_floor(n: usize) -> f64 {
    ln_choose(N_CHARS as u64, n as u64) / (seq_len(n) - 1) as f64
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
    let find = |start: usize| (start..start + n).filter(|&q| q <= p && tokens.get(q) == Some(&target)).collect::<Vec<_>>();
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
                let shown = if c == ' ' { "' ' (a space)".to_string() } else { format!("'{}'", shorten(&c.to_string())) };
                return Err(format!(
                    "{shown} is not allowed in the term (use n = {n} distinct characters from a-z, A-Z, 0-9)"
                ));
            }
        };
        if out[2..].contains(&id) {
            return Err(format!("'{c}' appears twice (the {n} characters must be distinct)"));
        }
        out.push(id);
    }
    let got = out.len() - 2;
    if got != n {
        return Err(format!("expected {n} characters from a-z, A-Z, 0-9, got {got} in '{}'", shorten(term)));
    }
    Ok(out)
}
