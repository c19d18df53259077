//! Where the permutations model attends, and why: per head, the attention mass at every
//! prediction of a term character, split by what the key position holds; how much the
//! pattern depends on the characters at all; which score terms (pos·pos, tok·tok, ...)
//! vary across keys; whether the weight-only pos·pos circuit points at the answer.

use serde::Serialize;
use toyformer::interp::attention::{decompose_scores, Part, ScoreDecomposition};
use toyformer::interp::circuits::{full_qk, Embed};
use toyformer::interp::mat::Mat;
use toyformer::interp::{run_with_cache, ActivationCache};
use toyformer::model::Weights;
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::permutations::FIRST_CHAR;
use toyformer::tasks::TaskSpec;
use toyformer::Result;

/// What a key position j holds, relative to the prediction at query position p (whose
/// target is the character `a` of slot s of term k ≥ 2, terms counted from 1).
pub const CATS: [&str; 6] = [
    "first-term a",
    "prev-term a",
    "older-term a",
    "other char",
    "space/'>'",
    "current term",
];

/// Category of key j for query p (see [`CATS`]); `n` characters per term.
fn category(tokens: &[u32], n: usize, p: usize, j: usize) -> usize {
    let a = tokens[p + 1];
    let term_of = |q: usize| (q - 2) / (n + 1); // 0-based term of a position ≥ 2
    let k = term_of(p + 1);
    if j < 2 || tokens[j] < FIRST_CHAR {
        return 4;
    }
    let tj = term_of(j);
    if tj == k {
        return 5;
    }
    if tokens[j] != a {
        return 3;
    }
    match tj {
        0 => 0,
        _ if tj + 1 == k => 1,
        _ => 2,
    }
}

/// Positions p whose target is a character of term 2 or later (the copy steps).
pub fn copy_positions(task: &TaskSpec, tokens: &[u32]) -> Vec<usize> {
    let n = match *task {
        TaskSpec::Permutations { n, .. } => n,
        _ => return Vec::new(),
    };
    task.algo_positions()
        .into_iter()
        .filter(|&p| p >= 2 + n && tokens[p + 1] >= FIRST_CHAR)
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct TermSpread {
    pub query: &'static str,
    pub key: &'static str,
    /// mean over copy positions of the standard deviation over visible keys of the term
    pub std_over_keys: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct HeadAttention {
    pub layer: usize,
    pub head: usize,
    /// mean attention mass per key category ([`CATS`] order) at copy positions
    pub mass: [f64; 6],
    /// fraction of copy positions whose most-attended key is in each category
    pub argmax: [f64; 6],
    /// mean over copy positions and sample pairs (b, b+1) of the total-variation distance
    /// between the two samples' attention rows: 0 when attention depends on position only
    pub tv_between_samples: f64,
    /// spread of each score term over the keys (the softmax only sees differences)
    pub term_spread: Vec<TermSpread>,
    /// fraction of copy positions where the argmax key of the pos·pos term alone (over
    /// visible keys) is the argmax key of the full scores
    pub pos_pos_argmax_agrees: f64,
    /// min over (sample, copy step) of the attention on keys holding the answer character
    pub answer_mass_min: f64,
    /// attention on keys holding the answer if the head's scores were only the pos·pos
    /// term (plus bias terms), and if they were everything but pos·pos (mean)
    pub pos_only_answer_mass: f64,
    /// attention on keys holding the answer by term distance d = k − j (index d − 1; key
    /// in term j, target in term k), mean over copy steps
    pub answer_mass_by_term_distance: Vec<f64>,
    /// share of the answer mass on keys in the same slot (character index within the
    /// term) as the target
    pub answer_mass_same_slot: f64,
    /// mean attention on keys j < p whose next token (j + 1 ≤ p) is the answer: where an
    /// earlier layer has already written the answer as its prediction for j
    pub next_is_answer_mass: f64,
    /// the same for uniform attention over the visible keys (the chance level)
    pub uniform_answer_mass: f64,
    pub without_pos_pos_answer_mass: f64,
    /// weights only, W_E W_QK W_Eᵀ / sqrt(d_head) over the 62 characters: mean over query
    /// characters of (diagonal − row mean) / row std. Negative: a query avoids keys that
    /// hold its own character
    pub tok_tok_self_z: f64,
    /// weights only: fraction of copy positions where W_pos W_QK W_posᵀ / sqrt(d_head)
    /// (TL-processed weights, LN scale ignored), restricted to the n first-term keys,
    /// peaks at the first-term position of the answer (meaningful for layer 0)
    pub weight_pos_pos_first_term_hit: f64,
}

fn part_name(p: Part) -> &'static str {
    p.name()
}

/// The analysis on `samples` sequences `tokens` (B, T) for the processed weights `pw`.
pub fn attention_study(
    pw: &Weights,
    task: &TaskSpec,
    tokens: &[u32],
    samples: usize,
) -> Result<Vec<HeadAttention>> {
    let n = match *task {
        TaskSpec::Permutations { n, .. } => n,
        _ => {
            return Err(toyformer::Error::task(
                task.name(),
                "the attention study is for the permutations task",
            ))
        }
    };
    let t = task.seq_len();
    let backend = ReferenceBackend::for_inference(pw)?;
    let cfg = pw.cfg.clone();
    let mut out = Vec::new();
    // Chunks of 8 sequences keep the (B, NH, T, T) caches small for n = 5.
    let chunk = 8;
    let caches: Vec<ActivationCache> = tokens
        .chunks(chunk * t)
        .map(|c| run_with_cache(&backend, c, c.len() / t))
        .collect::<Result<_>>()?;
    let copy = copy_positions(task, &tokens[..t]); // the same positions for every sequence
    for l in 0..cfg.n_layers {
        for h in 0..cfg.n_heads {
            let mut acc = HeadAcc::new(n, t);
            let mut prev_rows: Option<Vec<Vec<f32>>> = None;
            let mut seen = 0usize;
            for cache in &caches {
                for b in 0..cache.batch {
                    if seen >= samples {
                        break;
                    }
                    seen += 1;
                    let rows = acc.add_sample(pw, cache, b, (l, h), &copy)?;
                    if let Some(prev) = &prev_rows {
                        acc.add_tv(prev, &rows);
                    }
                    prev_rows = Some(rows);
                }
            }
            let (hits, self_z) = weight_circuits(pw, (l, h), &copy, &tokens[..t], n)?;
            out.push(acc.finish((l, h), hits, self_z));
        }
    }
    Ok(out)
}

/// One head's sums over (sample, copy position), turned into a [`HeadAttention`] by `finish`.
struct HeadAcc {
    n: usize,
    t: usize,
    mass: [f64; 6],
    arg: [f64; 6],
    count: usize,
    tv: (f64, usize),
    spread: Vec<(Part, Part, f64)>,
    agree: (usize, usize),
    ans_min: f64,
    pos_only: f64,
    no_pp: f64,
    uniform: f64,
    by_dist: Vec<f64>,
    same_slot: f64,
    next_ans: f64,
}

impl HeadAcc {
    fn new(n: usize, t: usize) -> Self {
        HeadAcc {
            n,
            t,
            mass: [0.0; 6],
            arg: [0.0; 6],
            count: 0,
            tv: (0.0, 0),
            spread: Vec::new(),
            agree: (0, 0),
            ans_min: f64::INFINITY,
            pos_only: 0.0,
            no_pp: 0.0,
            uniform: 0.0,
            by_dist: vec![0.0; t / (n + 1) + 1],
            same_slot: 0.0,
            next_ans: 0.0,
        }
    }

    /// Sample `b` of `cache` at every copy position; returns its attention rows (for `add_tv`).
    fn add_sample(
        &mut self,
        pw: &Weights,
        cache: &ActivationCache,
        b: usize,
        (l, h): (usize, usize),
        copy: &[usize],
    ) -> Result<Vec<Vec<f32>>> {
        let t = self.t;
        let tok = &cache.tokens[b * t..(b + 1) * t];
        let pat = cache.pattern(b, l, h)?;
        let dec = decompose_scores(pw, cache, b, l, h)?;
        let total = dec.total()?;
        let mut rows = Vec::with_capacity(copy.len());
        for &p in copy {
            let row = &pat.row(p)[..=p];
            self.add_answer_mass(tok, p, row);
            self.add_partial_softmax(tok, p, &dec);
            self.count += 1;
            rows.push(row.to_vec());
            self.add_terms(p, &dec, &total);
        }
        Ok(rows)
    }

    /// Attention mass by key category and on the answer at copy position `p` (`row` = its
    /// visible keys).
    fn add_answer_mass(&mut self, tok: &[u32], p: usize, row: &[f32]) {
        let n = self.n;
        let mut best = 0;
        for (j, &x) in row.iter().enumerate() {
            self.mass[category(tok, n, p, j)] += x as f64;
            if x > row[best] {
                best = j;
            }
        }
        self.arg[category(tok, n, p, best)] += 1.0;
        let holds = |j: usize| category(tok, n, p, j) <= 2;
        let ans: f64 = (0..=p).filter(|&j| holds(j)).map(|j| row[j] as f64).sum();
        self.ans_min = self.ans_min.min(ans);
        self.uniform += (0..=p).filter(|&j| holds(j)).count() as f64 / (p + 1) as f64;
        self.next_ans += (0..p)
            .filter(|&j| tok[j + 1] == tok[p + 1])
            .map(|j| row[j] as f64)
            .sum::<f64>();
        let (k, s) = ((p + 1 - 2) / (n + 1), (p + 1 - 2) % (n + 1));
        for j in (2..=p).filter(|&j| holds(j)) {
            let (tj, sj) = ((j - 2) / (n + 1), (j - 2) % (n + 1));
            self.by_dist[k - tj - 1] += row[j] as f64;
            if sj == s {
                self.same_slot += row[j] as f64;
            }
        }
    }

    /// The answer mass if the scores were only some of their terms: pos·pos (with biases),
    /// and everything but pos·pos.
    fn add_partial_softmax(&mut self, tok: &[u32], p: usize, dec: &ScoreDecomposition) {
        let n = self.n;
        let holds = |j: usize| category(tok, n, p, j) <= 2;
        // softmax over visible keys of a partial sum of terms
        let partial = |keep: &dyn Fn(Part, Part) -> bool| -> f64 {
            let mut z = vec![0.0f64; p + 1];
            for term in dec.terms.iter().filter(|x| keep(x.query, x.key)) {
                for (zj, &x) in z.iter_mut().zip(&term.scores.row(p)[..=p]) {
                    *zj += x as f64;
                }
            }
            let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|x| (x - mx).exp()).collect();
            let tot: f64 = e.iter().sum();
            (0..=p).filter(|&j| holds(j)).map(|j| e[j]).sum::<f64>() / tot
        };
        let posish = |x: Part| x == Part::Pos || x == Part::Bias;
        self.pos_only += partial(&|q, k| posish(q) && posish(k));
        self.no_pp += partial(&|q, k| !(q == Part::Pos && k == Part::Pos));
    }

    /// Each term's spread over the keys, and whether pos·pos alone picks the same key.
    fn add_terms(&mut self, p: usize, dec: &ScoreDecomposition, total: &Mat) {
        for term in &dec.terms {
            let vals = &term.scores.row(p)[..=p];
            let m = vals.iter().map(|&x| x as f64).sum::<f64>() / vals.len() as f64;
            let sd = (vals.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>()
                / vals.len() as f64)
                .sqrt();
            match self
                .spread
                .iter_mut()
                .find(|(q, k, _)| *q == term.query && *k == term.key)
            {
                Some(e) => e.2 += sd,
                None => self.spread.push((term.query, term.key, sd)),
            }
        }
        if let Some(pp) = dec.term(Part::Pos, Part::Pos) {
            let am = |r: &[f32]| {
                r.iter()
                    .enumerate()
                    .fold(0, |bi, (j, &x)| if x > r[bi] { j } else { bi })
            };
            self.agree.0 += (am(&pp.row(p)[..=p]) == am(&total.row(p)[..=p])) as usize;
            self.agree.1 += 1;
        }
    }

    /// Total-variation distance between two samples' attention rows.
    fn add_tv(&mut self, prev: &[Vec<f32>], rows: &[Vec<f32>]) {
        for (r0, r1) in prev.iter().zip(rows) {
            self.tv.0 += 0.5
                * r0.iter()
                    .zip(r1)
                    .map(|(a, b)| (a - b).abs() as f64)
                    .sum::<f64>();
            self.tv.1 += 1;
        }
    }

    fn finish(mut self, (l, h): (usize, usize), hits: f64, self_z: f64) -> HeadAttention {
        let c = self.count.max(1) as f64;
        let mass = self.mass;
        HeadAttention {
            layer: l,
            head: h,
            mass: mass.map(|x| x / c),
            argmax: self.arg.map(|x| x / c),
            tv_between_samples: self.tv.0 / self.tv.1.max(1) as f64,
            term_spread: self
                .spread
                .into_iter()
                .map(|(q, k, s)| TermSpread {
                    query: part_name(q),
                    key: part_name(k),
                    std_over_keys: s / c,
                })
                .collect(),
            pos_pos_argmax_agrees: self.agree.0 as f64 / self.agree.1.max(1) as f64,
            answer_mass_min: self.ans_min,
            pos_only_answer_mass: self.pos_only / c,
            uniform_answer_mass: self.uniform / c,
            next_is_answer_mass: self.next_ans / c,
            answer_mass_same_slot: self.same_slot / (mass[0] + mass[1] + mass[2]).max(1e-12),
            answer_mass_by_term_distance: {
                while self.by_dist.last() == Some(&0.0) {
                    self.by_dist.pop();
                }
                self.by_dist.iter().map(|x| x / c).collect()
            },
            without_pos_pos_answer_mass: self.no_pp / c,
            tok_tok_self_z: self_z,
            weight_pos_pos_first_term_hit: hits,
        }
    }
}

/// Weights only: the fraction of copy positions where the pos·pos circuit over the first
/// term's n keys peaks at the answer's position, and the tok·tok self z-score (see
/// [`HeadAttention`]).
fn weight_circuits(
    pw: &Weights,
    (l, h): (usize, usize),
    copy: &[usize],
    tok0: &[u32],
    n: usize,
) -> Result<(f64, f64)> {
    let qk = full_qk(pw, l, h, Embed::Pos, Embed::Pos)?;
    let hits = copy
        .iter()
        .filter(|&&p| {
            let r = qk.row(p);
            let best = (2..2 + n).fold(2, |bi, j| if r[j] > r[bi] { j } else { bi });
            tok0[best] == tok0[p + 1]
        })
        .count();
    let tt = full_qk(pw, l, h, Embed::Token, Embed::Token)?;
    let ids = FIRST_CHAR as usize..FIRST_CHAR as usize + 62;
    let self_z = ids
        .clone()
        .map(|i| {
            let r: Vec<f64> = ids.clone().map(|j| tt.at(i, j) as f64).collect();
            let m = r.iter().sum::<f64>() / r.len() as f64;
            let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / r.len() as f64).sqrt();
            (tt.at(i, i) as f64 - m) / sd.max(1e-12)
        })
        .sum::<f64>()
        / 62.0;
    Ok((hits as f64 / copy.len().max(1) as f64, self_z))
}
