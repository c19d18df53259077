//! [`Task`] for [`Custom`]: a finite dataset of the file's examples.

use super::*;

impl Task for Custom {
    fn description(&self) -> &'static str {
        "Your own data: a task defined by a file (JSON lines or text)."
    }
    fn params(&self) -> Vec<ParamRow> {
        vec![
            ParamRow::float(
                "frac_train",
                0.01,
                0.99,
                0.8,
                "fraction of the examples that train (unless the file marks splits)",
            ),
            ParamRow::int(
                "split_seed",
                0,
                1_000_000,
                0,
                "seed of the train/test split",
            ),
            ParamRow::int(
                "n_ctx",
                0,
                crate::model::config::MAX_N_CTX,
                0,
                "sequence length; 0 = the longest line",
            ),
        ]
    }
    fn validate(&self) -> Result<(), String> {
        let ds = self.dataset().map_err(|e| e.to_string())?;
        if !self.expect_hash.is_empty() && self.expect_hash != self.data.hash {
            return Err(format!(
                "the data's hash is {}, but the run was made with data of hash {}: give the file it was trained on",
                self.data.hash, self.expect_hash
            ));
        }
        if !self.marks_splits() {
            validate_frac(self.frac_train)?;
            if ds.examples.len() < 2 {
                return Err("the file has one example; a train/test split needs two".into());
            }
        }
        if self.seq_len() < 2 {
            return Err("the examples need at least 2 tokens".into());
        }
        Ok(())
    }
    fn seq_len(&self) -> usize {
        match self.opt.n_ctx {
            0 => self.dataset().map_or(0, |d| d.longest),
            n => n,
        }
    }
    fn d_vocab(&self) -> usize {
        self.n_labels() + 1
    }
    fn d_vocab_out(&self) -> usize {
        self.d_vocab()
    }
    fn vocab(&self) -> Vec<String> {
        let mut v = self.dataset().map_or(Vec::new(), |d| d.labels.clone());
        v.push(PAD_LABEL.into());
        v
    }
    fn pred_positions(&self) -> Vec<usize> {
        self.scored_union()
    }
    fn scored_targets(&self, tokens: &[u32]) -> Vec<u32> {
        let scored = self.row_scored(tokens);
        (self.targets(tokens).into_iter().zip(scored))
            .map(|(t, s)| if s { t } else { UNSCORED })
            .collect()
    }
    fn sample(&self, _rng: &mut CounterRng, _held_out: bool) -> Vec<u32> {
        Vec::new()
    }
    fn finite(&self) -> Option<FiniteSplit> {
        let n = self.examples().len() as u64;
        Some(
            self.data
                .split
                .unwrap_or_else(|| FiniteSplit::new(n, self.frac_train, self.split_seed)),
        )
    }
    fn item(&self, i: u64) -> Vec<u32> {
        let ex = self.examples();
        let k = self.data.table.get(i as usize).map_or(i, |&k| k as u64);
        ex.get(k as usize).map_or(Vec::new(), |e| self.padded(e))
    }
    fn loss_floor(&self) -> f64 {
        match self.finite() {
            Some(fs) if self.validate().is_ok() => {
                let union = self.pred_positions();
                let train = (0..fs.n_train).map(|j| {
                    let row = self.item(fs.item_of(false, j));
                    let s = self.row_scored(&row);
                    let scored = (union.iter().zip(s)).filter(|(_, s)| *s).map(|(&p, _)| p);
                    let scored: Vec<usize> = scored.collect();
                    (row, scored)
                });
                floor_of(train)
            }
            _ => 0.0,
        }
    }
    fn value_tokens(&self) -> std::ops::Range<usize> {
        0..self.n_labels()
    }
    fn position_names(&self) -> Vec<String> {
        (0..self.seq_len()).map(|i| format!("p{i}")).collect()
    }
    /// The line with this prompt; for a prompt the data does not have (patching's
    /// corrupted input), the prompt followed by the continuation of the line agreeing with it
    /// on the most prompt positions (the first such line): the data defines no answer there.
    fn solve(&self, prompt: &[u32]) -> Option<Vec<u32>> {
        let ex = self.examples();
        let agree = |e: &Example| e.tokens.iter().zip(prompt).filter(|(a, b)| a == b).count();
        let e = ex
            .iter()
            .find(|e| e.tokens.starts_with(prompt))
            .or_else(|| {
                ex.iter()
                    .filter(|e| e.tokens.len() > prompt.len())
                    .min_by_key(|e| (std::cmp::Reverse(agree(e)), e.line))
            })?;
        let mut out = self.padded(e);
        out[..prompt.len()].copy_from_slice(prompt);
        Some(out)
    }
    fn corrupt_prompt(&self, prompt: &[u32], shift: usize) -> Option<Vec<u32>> {
        self.corrupt_input(prompt, shift)
    }
    fn parse_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let vocab = self.vocab();
        let len = self.prompt_len();
        if self.dataset().map(|d| d.format) != Ok(Format::Text) {
            return parse_labels(&vocab[..self.n_labels()], len, text);
        }
        let text = text.trim_end_matches(self.opt.separator);
        let mut out = Vec::new();
        for c in text.chars() {
            let s = c.to_string();
            match vocab[..self.n_labels()].iter().position(|v| *v == s) {
                Some(i) => out.push(i as u32),
                None => return Err(format!("'{c}' is not a character of the data")),
            }
        }
        if out.len() != len {
            return Err(format!(
                "expected {len} characters in the prompt, got {}",
                out.len()
            ));
        }
        Ok(out)
    }
    fn prompt_text(&self, tokens: &[u32]) -> String {
        let n = self.prompt_len().min(tokens.len());
        self.format_tokens(&tokens[..n])
    }
    fn format_tokens(&self, tokens: &[u32]) -> String {
        let vocab = self.vocab();
        let pad = self.n_labels() as u32;
        let shown = tokens
            .iter()
            .filter(|&&t| t != pad)
            .map(|&t| label(&vocab, t));
        if self.dataset().map(|d| d.format) == Ok(Format::Text) {
            shown.collect()
        } else {
            shown.collect::<Vec<_>>().join(" ")
        }
    }
    fn default_model(&self) -> ModelConfig {
        attn_only(2, 2, 64, 32)
    }
}

/// The mean cross-entropy (nats per scored token) of the best predictor of `rows` (each
/// with the positions it scores, ascending), each drawn equally often: at every scored
/// position p the empirical distribution of
/// `tokens[p + 1]` among the rows sharing `tokens[..=p]`. Prefixes are numbered through a
/// trie, so the cost is linear in the tokens.
pub(crate) fn floor_of(rows: impl Iterator<Item = (Vec<u32>, Vec<usize>)>) -> f64 {
    use std::collections::HashMap;
    let mut trie: HashMap<(u32, u32), u32> = HashMap::new(); // (prefix, token) → prefix
    let mut next: HashMap<(u32, u32), u64> = HashMap::new(); // (prefix, target) → count
    let mut seen: HashMap<u32, u64> = HashMap::new(); // prefix → count
    let mut n = 0u64;
    for (row, scored) in rows {
        let mut id = 0u32; // the empty prefix
        for (p, &t) in row.iter().enumerate() {
            let fresh = trie.len() as u32 + 1;
            id = *trie.entry((id, t)).or_insert(fresh);
            if let (true, Some(&y)) = (scored.binary_search(&p).is_ok(), row.get(p + 1)) {
                *next.entry((id, y)).or_default() += 1;
                *seen.entry(id).or_default() += 1;
                n += 1;
            }
        }
    }
    let h: f64 = next
        .iter()
        .map(|(&(id, _), &c)| {
            let c = c as f64;
            -c * (c / seen[&id] as f64).ln()
        })
        .sum();
    if n == 0 {
        0.0
    } else {
        h / n as f64
    }
}
