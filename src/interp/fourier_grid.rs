//! The Fourier analyses of a modular model's activations over all p² inputs `[a, b, =]`
//! (the basis and its normalisation are defined in [`super::fourier`]).
//!
//! - **Logits** L[a, b, c] at position 2 (the `=`), c ∈ 0..p. For the task's residue
//!   r = (a + b − c) mod p (`mod-add`) or (a − b − c) mod p (`mod-sub`), which is 0 exactly
//!   at the correct answer, the **key directions** of frequency k are the functions
//!   cos(w_k r) and sin(w_k r) over the p³ triples (w_k = 2πk/p); they are pairwise
//!   orthogonal, orthogonal to every function of (a, b) alone, and have squared norm p³/2
//!   (p³ for the Nyquist cosine). [`key_projection`] projects L on those of a frequency set
//!   S: the **restricted logits** (Nanda et al.'s "restricted loss" keeps only these
//!   terms) and L minus them, the **excluded logits** ("excluded loss").
//!   **Fraction of logit variance explained by S**: ‖projection‖² / ‖L − mean over c‖²
//!   (the mean over c per (a, b) changes no softmax).
//! - **Reconstruction** ([`reconstruct`]): L_S[·, ·, c] = Pₛ L[·, ·, c] Pₛ with Pₛ the
//!   projector on the basis vectors of frequencies S ∪ {0} over a and over b: the logits
//!   built from those input frequencies alone. With every frequency Pₛ = I and L_S = L.
//! - **Neurons**: the activation (`mlp.hook_post` of the last layer, position 2) of neuron
//!   n over the grid, N[a, b], in the 2-D basis N̂ = F N Fᵀ. Its variance (every
//!   component but (const, const)) splits over the pairs of frequencies (kₐ, k_b); the
//!   share of **frequency k** is that of the pairs with kₐ, k_b ∈ {0, k} (cos/sin of a, of
//!   b, and their products). A neuron is **explained by one frequency** when its best
//!   frequency's share is at least [`NEURON_THRESHOLD`]. Neurons with no variance (dead on
//!   every input) have no frequency and count as not explained.

use super::cache::{run_with_hooks, HookSet};
use super::fourier::{modular_task, FourierBasis};
use super::mat::Mat;
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::reference::ReferenceBackend;
use crate::tasks::TaskSpec;
use serde::Serialize;

/// A neuron is explained by one frequency when that frequency holds at least this share of
/// its variance over the a × b grid.
pub const NEURON_THRESHOLD: f64 = 0.85;

/// Inputs per forward pass when the grid is run (bounds memory: p² can be 4·10⁶).
const CHUNK: usize = 2048;

/// A modular model's activations on every input pair, row a·p + b.
#[derive(Clone, Debug)]
pub struct ModularGrid {
    pub p: usize,
    /// whether the task subtracts
    pub sub: bool,
    /// (p², V) logits at position 2, f64
    pub logits: Vec<f64>,
    /// V = d_vocab_out (≥ p)
    pub n_out: usize,
    /// (p², M) the last MLP layer's `hook_post` at position 2; None without MLP
    pub post: Option<Mat>,
}

impl ModularGrid {
    /// The correct answer of row a·p + b.
    pub fn answer(&self, row: usize) -> usize {
        let (a, b) = (row / self.p, row % self.p);
        if self.sub {
            (a + self.p - b) % self.p
        } else {
            (a + b) % self.p
        }
    }

    /// L[a, b, c] for c < p (the logits of the residues).
    fn logit(&self, row: usize, c: usize) -> f64 {
        self.logits[row * self.n_out + c]
    }
}

/// Runs `w` on every `[a, b, =]` of the modular `task` (raw weights; activations do not
/// depend on TL processing).
pub fn modular_grid(w: &Weights, task: &TaskSpec) -> Result<ModularGrid> {
    let (p, sub) = modular_task(task)?;
    if w.cfg.d_vocab < p + 1 || w.cfg.d_vocab_out < p || w.cfg.n_ctx < 3 {
        return Err(Error::config(
            "model",
            format!("the model does not fit the task modulo {p} (needs d_vocab ≥ p + 1, d_vocab_out ≥ p, n_ctx ≥ 3)"),
        ));
    }
    let backend = ReferenceBackend::for_inference(w)?;
    let v = w.cfg.d_vocab_out;
    let post_name = w
        .cfg
        .d_mlp
        .map(|_| super::act_name("post", w.cfg.n_layers - 1));
    let (mut logits, mut post) = (Vec::with_capacity(p * p * v), Vec::new());
    for start in (0..p * p).step_by(CHUNK) {
        let rows = (start..(start + CHUNK).min(p * p)).collect::<Vec<_>>();
        let tokens: Vec<u32> = rows
            .iter()
            .flat_map(|&i| [(i / p) as u32, (i % p) as u32, p as u32])
            .collect();
        let want = post_name.clone();
        let hooks = HookSet::recording(move |n| want.as_deref() == Some(n));
        let cache = run_with_hooks(&backend, &tokens, rows.len(), hooks)?;
        for r in 0..rows.len() {
            logits.extend(
                cache.logits.data[(r * 3 + 2) * v..][..v]
                    .iter()
                    .map(|&x| x as f64),
            );
            if let Some(name) = &post_name {
                post.extend_from_slice(cache.at(name, r, 2)?);
            }
        }
    }
    let post = match w.cfg.d_mlp {
        Some(m) => Some(Mat::new(p * p, m, post)?),
        None => None,
    };
    Ok(ModularGrid {
        p,
        sub,
        logits,
        n_out: v,
        post,
    })
}

/// Projections of the logits on the key directions of each frequency.
#[derive(Clone, Debug, Serialize)]
pub struct KeyProjection {
    /// (p/2 + 1) entries, index k: (⟨L, cos(w_k r)⟩, ⟨L, sin(w_k r)⟩) over the p³ triples
    /// (index 0 unused: (0, 0))
    pub inner: Vec<(f64, f64)>,
    /// squared norm of L's projection on frequency k's two directions
    pub energy: Vec<f64>,
    /// ‖L − mean over c‖², the variance the energies are fractions of (times p³)
    pub total: f64,
}

/// [`KeyProjection`] of the grid's logits (residues c < p only).
pub fn key_projection(g: &ModularGrid) -> KeyProjection {
    let p = g.p;
    // G[r] = Σ over (a, b, c) with residue r of L[a, b, c]
    let mut by_residue = vec![0.0; p];
    let mut total = 0.0;
    for row in 0..p * p {
        let (a, b) = (row / p, row % p);
        let ab = if g.sub { (a + p - b) % p } else { (a + b) % p };
        let mean = (0..p).map(|c| g.logit(row, c)).sum::<f64>() / p as f64;
        for c in 0..p {
            let l = g.logit(row, c);
            by_residue[(ab + p - c) % p] += l;
            total += (l - mean) * (l - mean);
        }
    }
    let n3 = (p * p * p) as f64;
    let mut inner = vec![(0.0, 0.0)];
    let mut energy = vec![0.0];
    for k in 1..=p / 2 {
        let w = 2.0 * std::f64::consts::PI * k as f64 / p as f64;
        let (c, s) = by_residue
            .iter()
            .enumerate()
            .fold((0.0, 0.0), |(c, s), (r, &x)| {
                (c + x * (w * r as f64).cos(), s + x * (w * r as f64).sin())
            });
        inner.push((c, s));
        let nyquist = 2 * k == p;
        energy.push(if nyquist {
            c * c / n3
        } else {
            (c * c + s * s) / (n3 / 2.0)
        });
    }
    KeyProjection {
        inner,
        energy,
        total,
    }
}

impl KeyProjection {
    /// Σ_{k∈S} energy / total: the fraction of the logits' variance over c that the key
    /// directions of S explain.
    pub fn fraction(&self, freqs: &[usize]) -> f64 {
        if self.total <= 0.0 {
            return 0.0;
        }
        freqs.iter().map(|&k| self.energy[k]).sum::<f64>() / self.total
    }

    /// The projection of L on the key directions of `freqs`, (p², p) row a·p + b.
    pub fn restricted(&self, g: &ModularGrid, freqs: &[usize]) -> Vec<f64> {
        let p = g.p;
        let n3 = (p * p * p) as f64;
        // the projection is a function of the residue r alone
        let profile: Vec<f64> = (0..p)
            .map(|r| {
                freqs
                    .iter()
                    .map(|&k| {
                        let w = 2.0 * std::f64::consts::PI * k as f64 / p as f64;
                        let (c, s) = self.inner[k];
                        let norm = if 2 * k == p { n3 } else { n3 / 2.0 };
                        (c * (w * r as f64).cos() + s * (w * r as f64).sin()) / norm
                    })
                    .sum()
            })
            .collect();
        let mut out = Vec::with_capacity(p * p * p);
        for row in 0..p * p {
            let (a, b) = (row / p, row % p);
            let ab = if g.sub { (a + p - b) % p } else { (a + b) % p };
            out.extend((0..p).map(|c| profile[(ab + p - c) % p]));
        }
        out
    }

    /// L minus its projection on the key directions of `freqs`, (p², p).
    pub fn excluded(&self, g: &ModularGrid, freqs: &[usize]) -> Vec<f64> {
        let r = self.restricted(g, freqs);
        let p = g.p;
        (0..p * p * p)
            .map(|i| g.logit(i / p, i % p) - r[i])
            .collect()
    }
}

/// Mean cross-entropy of `logits` (p², p) on `rows` against the grid's answers.
pub fn mean_loss(g: &ModularGrid, logits: &[f64], rows: &[usize]) -> f64 {
    let p = g.p;
    let sum: f64 = rows
        .iter()
        .map(|&row| {
            let l = &logits[row * p..(row + 1) * p];
            let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + l.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            lse - l[g.answer(row)]
        })
        .sum();
    sum / rows.len().max(1) as f64
}

/// The grid's logits of the residues, (p², p) (drops any extra output tokens).
pub fn residue_logits(g: &ModularGrid) -> Vec<f64> {
    let p = g.p;
    (0..p * p * p).map(|i| g.logit(i / p, i % p)).collect()
}

/// L_S = Pₛ L Pₛ over a and b for every c (see the module docs), (p², p) row a·p + b.
pub fn reconstruct(basis: &FourierBasis, g: &ModularGrid, freqs: &[usize]) -> Result<Vec<f64>> {
    let p = g.p;
    let mut keep = vec![0];
    keep.extend(freqs.iter().copied().filter(|&k| k != 0));
    let proj = basis.projector(&keep)?; // (p, p) symmetric
    let l = residue_logits(g); // [a][b][c]
    let mut over_a = vec![0.0; p * p * p]; // [a'][b][c] = Σ_a P[a', a] L[a, b, c]
    for a2 in 0..p {
        for a in 0..p {
            let w = proj.at(a2, a) as f64;
            if w == 0.0 {
                continue;
            }
            let (dst, src) = (a2 * p * p, a * p * p);
            for i in 0..p * p {
                over_a[dst + i] += w * l[src + i];
            }
        }
    }
    let mut out = vec![0.0; p * p * p]; // [a'][b'][c] = Σ_b P[b', b] over_a[a', b, c]
    for a2 in 0..p {
        for b2 in 0..p {
            for b in 0..p {
                let w = proj.at(b2, b) as f64;
                let (dst, src) = ((a2 * p + b2) * p, (a2 * p + b) * p);
                for c in 0..p {
                    out[dst + c] += w * over_a[src + c];
                }
            }
        }
    }
    Ok(out)
}

/// One neuron in the 2-D Fourier basis.
#[derive(Clone, Debug, Serialize)]
pub struct NeuronFrequency {
    /// the frequency k ≥ 1 with the largest share of the neuron's variance; None when the
    /// neuron has no variance over the grid
    pub freq: Option<usize>,
    /// that share (0 without variance)
    pub share: f64,
    /// the neuron's variance over the grid (Σ of squared components but (const, const),
    /// divided by p²)
    pub variance: f64,
}

/// [`NeuronFrequency`] of every neuron of the grid's `post` (p², M).
pub fn neuron_frequencies(basis: &FourierBasis, post: &Mat) -> Result<Vec<NeuronFrequency>> {
    let p = basis.p;
    let m = post.cols;
    if post.rows != p * p {
        return Err(Error::config(
            "post",
            format!("{} rows, expected p² = {}", post.rows, p * p),
        ));
    }
    // over a: (p, p·M) → F @ that = [i][b][n]
    let t1 = basis.rows.matmul(&Mat::new(p, p * m, post.data.clone())?)?;
    let nf = basis.n_freqs();
    // energy[n][ka][kb]
    let mut energy = vec![0.0f64; m * nf * nf];
    for i in 0..p {
        let block = Mat::new(p, m, t1.row(i).to_vec())?; // [b][n]
        let t2 = basis.rows.matmul(&block)?; // [j][n]
        for j in 0..p {
            if i == 0 && j == 0 {
                continue;
            }
            let (ka, kb) = (basis.freq[i], basis.freq[j]);
            for (n, &x) in t2.row(j).iter().enumerate() {
                energy[(n * nf + ka) * nf + kb] += x as f64 * x as f64;
            }
        }
    }
    Ok((0..m)
        .map(|n| neuron_share(&energy[n * nf * nf..(n + 1) * nf * nf], nf, p))
        .collect())
}

/// The best single frequency of one neuron from its energy [ka][kb] (nf × nf).
fn neuron_share(e: &[f64], nf: usize, p: usize) -> NeuronFrequency {
    let total: f64 = e.iter().sum();
    let variance = total / (p * p) as f64;
    if total <= 1e-20 {
        return NeuronFrequency {
            freq: None,
            share: 0.0,
            variance,
        };
    }
    let share = |k: usize| (e[k] + e[k * nf] + e[k * nf + k]) / total; // (0,k) (k,0) (k,k)
    let best = (1..nf)
        .max_by(|&a, &b| share(a).total_cmp(&share(b)).then(b.cmp(&a)))
        .unwrap_or(1);
    NeuronFrequency {
        freq: Some(best),
        share: share(best),
        variance,
    }
}

/// The fraction of `neurons` explained by one frequency (share ≥ [`NEURON_THRESHOLD`]).
pub fn single_frequency_fraction(neurons: &[NeuronFrequency]) -> f64 {
    let n = neurons
        .iter()
        .filter(|x| x.freq.is_some() && x.share >= NEURON_THRESHOLD)
        .count();
    n as f64 / neurons.len().max(1) as f64
}
