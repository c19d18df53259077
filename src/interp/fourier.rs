//! The Fourier basis of modular arithmetic (Nanda et al. 2023, "Progress measures for
//! grokking via mechanistic interpretability"): a model of `mod-add` / `mod-sub` modulo p
//! embeds each residue x ∈ 0..p as a few waves cos(w_k x), sin(w_k x), w_k = 2πk/p, and
//! computes the answer c from cos(w_k(a ± b − c)).
//!
//! **The basis** ([`FourierBasis`]): p orthonormal vectors over the residues x = 0..p,
//! - row 0, the constant: 1/√p,
//! - for each frequency k = 1..=⌊(p−1)/2⌋: cos(2πkx/p)·√(2/p), then sin(2πkx/p)·√(2/p),
//! - for even p also the Nyquist frequency k = p/2: (−1)^x/√p (it has no sine).
//!
//! Each row has unit norm and the rows are pairwise orthogonal, so F (p, p) is orthogonal:
//! F Fᵀ = Fᵀ F = I. "Frequency" k ∈ 0..=p/2 groups the rows (0 is the constant alone).
//! A matrix M whose rows are indexed by residues (W_E's rows 0..p, W_Uᵀ's rows) is F M in
//! the basis; the squared norm of frequency k is the sum of its rows' squared norms, and
//! these sum to ‖M‖² (Parseval).
//!
//! **Key frequencies** ([`key_frequencies`]): the frequencies k ≥ 1 sorted by the
//! embedding's squared norm, largest first; the key ones are the shortest prefix of that
//! order that holds at least [`KEY_SHARE`] of the squared norm of all frequencies k ≥ 1.
//! (The constant says nothing about the residue and is left out of the rule.)
//!
//! Progress measures over training that use these are in [`super::progress`]; the analyses
//! of the model's activations over all p² inputs are in [`super::fourier_grid`].

use super::mat::Mat;
use crate::error::{Error, Result};
use crate::model::Weights;
use serde::Serialize;

/// The share of the non-constant embedding norm (squared) that the key frequencies hold
/// at least.
pub const KEY_SHARE: f64 = 0.9;

/// The orthonormal Fourier basis over residues 0..p (see the module docs).
#[derive(Clone, Debug, Serialize)]
pub struct FourierBasis {
    pub p: usize,
    /// (p, p): row i is basis vector i over the residues x = 0..p.
    pub rows: Mat,
    /// the frequency of each row: 0 for the constant, k for cos k / sin k.
    pub freq: Vec<usize>,
    /// `const`, `cos 1`, `sin 1`, …
    pub labels: Vec<String>,
}

impl FourierBasis {
    /// The basis for modulus `p` ≥ 2.
    pub fn new(p: usize) -> Result<Self> {
        if p < 2 {
            return Err(Error::config(
                "p",
                format!("the Fourier basis needs p ≥ 2, got {p}"),
            ));
        }
        let mut data = Vec::with_capacity(p * p);
        let (mut freq, mut labels) = (vec![0], vec!["const".to_string()]);
        data.extend((0..p).map(|_| (1.0 / p as f64).sqrt() as f32));
        for k in 1..=p / 2 {
            let w = 2.0 * std::f64::consts::PI * k as f64 / p as f64;
            if 2 * k == p {
                data.extend((0..p).map(|x| ((w * x as f64).cos() / (p as f64).sqrt()) as f32));
                freq.push(k);
                labels.push(format!("cos {k}"));
                continue;
            }
            let s = (2.0 / p as f64).sqrt();
            data.extend((0..p).map(|x| ((w * x as f64).cos() * s) as f32));
            data.extend((0..p).map(|x| ((w * x as f64).sin() * s) as f32));
            freq.extend([k, k]);
            labels.extend([format!("cos {k}"), format!("sin {k}")]);
        }
        Ok(FourierBasis {
            p,
            rows: Mat::new(p, p, data)?,
            freq,
            labels,
        })
    }

    /// The number of frequencies, the constant included: p/2 + 1.
    pub fn n_freqs(&self) -> usize {
        self.p / 2 + 1
    }

    /// F M: `m` (p, C) with rows indexed by residue, in the basis (row i = component i).
    pub fn transform(&self, m: &Mat) -> Result<Mat> {
        self.rows.matmul(m)
    }

    /// Squared norm per frequency (index k = 0..=p/2) of a matrix already in the basis
    /// (rows = basis components).
    pub fn freq_norms_sq(&self, in_basis: &Mat) -> Vec<f64> {
        let mut out = vec![0.0; self.n_freqs()];
        for (i, &k) in self.freq.iter().enumerate() {
            out[k] += in_basis
                .row(i)
                .iter()
                .map(|&x| x as f64 * x as f64)
                .sum::<f64>();
        }
        out
    }

    /// Pₛ = Fₛᵀ Fₛ (p, p): the orthogonal projection onto the span of the basis vectors
    /// whose frequency is in `freqs` (the constant is kept only when 0 is listed).
    pub fn projector(&self, freqs: &[usize]) -> Result<Mat> {
        let keep: Vec<usize> = (0..self.p)
            .filter(|&i| freqs.contains(&self.freq[i]))
            .collect();
        let fs = Mat::from_fn(keep.len(), self.p, |r, c| self.rows.at(keep[r], c));
        fs.transpose().matmul(&fs)
    }
}

/// The modulus of a modular task (`mod-add`, `mod-sub`) and whether it subtracts; an error
/// naming the task otherwise.
pub fn modular_task(task: &crate::tasks::TaskSpec) -> Result<(usize, bool)> {
    match task {
        crate::tasks::TaskSpec::ModAdd(m) => Ok((m.p, false)),
        crate::tasks::TaskSpec::ModSub(m) => Ok((m.p, true)),
        _ => Err(Error::task(
            task.name(),
            "the Fourier analysis is for the modular tasks (mod-add, mod-sub)",
        )),
    }
}

/// W_E's rows of the residues 0..p in the basis: F W_E[0..p] (p, C).
pub fn embed_in_basis(w: &Weights, basis: &FourierBasis) -> Result<Mat> {
    let e = super::circuits::embed(w, super::circuits::Embed::Token)?;
    check_vocab(w, basis.p)?;
    basis.transform(&e.sub(0..basis.p, 0..e.cols))
}

/// W_U's columns of the residues 0..p in the basis: F W_U[:, 0..p]ᵀ (p, C); row i is the
/// residual direction that raises the logits along basis vector i.
pub fn unembed_in_basis(w: &Weights, basis: &FourierBasis) -> Result<Mat> {
    let u = super::circuits::unembed(w)?;
    check_vocab(w, basis.p)?;
    basis.transform(&u.sub(0..u.rows, 0..basis.p).transpose())
}

fn check_vocab(w: &Weights, p: usize) -> Result<()> {
    if w.cfg.d_vocab < p || w.cfg.d_vocab_out < p {
        return Err(Error::config(
            "p",
            format!(
                "p = {p} does not fit the model's vocabularies (d_vocab {}, d_vocab_out {})",
                w.cfg.d_vocab, w.cfg.d_vocab_out
            ),
        ));
    }
    Ok(())
}

/// Key frequencies from the squared norm per frequency (index 0 = constant): the shortest
/// prefix of the frequencies k ≥ 1, sorted by squared norm (largest first, ties by k),
/// holding ≥ [`KEY_SHARE`] of Σ_{k≥1}; returned in ascending k. Empty when every k ≥ 1 is 0.
pub fn key_frequencies(norms_sq: &[f64]) -> Vec<usize> {
    let total: f64 = norms_sq.iter().skip(1).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (1..norms_sq.len()).collect();
    order.sort_by(|&a, &b| norms_sq[b].total_cmp(&norms_sq[a]).then(a.cmp(&b)));
    let (mut acc, mut out) = (0.0, Vec::new());
    for k in order {
        if acc >= KEY_SHARE * total {
            break;
        }
        acc += norms_sq[k];
        out.push(k);
    }
    out.sort_unstable();
    out
}

/// Σ over `freqs` of `norms_sq` / Σ over all of it (the constant included): the fraction of
/// the squared norm those frequencies hold. 0 for an all-zero matrix.
pub fn fraction_of(norms_sq: &[f64], freqs: &[usize]) -> f64 {
    let total: f64 = norms_sq.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    freqs.iter().map(|&k| norms_sq[k]).sum::<f64>() / total
}

/// The Gini coefficient of non-negative values x (n of them), Σᵢ (2i − n − 1) x₍ᵢ₎ / (n Σ x)
/// over x sorted ascending (i = 1..n): 0 when all are equal, (n − 1)/n when one holds
/// everything. 0 for an empty or all-zero input.
pub fn gini(x: &[f64]) -> f64 {
    let n = x.len();
    let total: f64 = x.iter().sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    let num: f64 = s
        .iter()
        .enumerate()
        .map(|(i, &v)| (2.0 * (i + 1) as f64 - n as f64 - 1.0) * v)
        .sum();
    num / (n as f64 * total)
}

/// The Fourier analysis of a modular model (what `examples/circuits` prints for mod-add
/// and mod-sub, and the page's Fourier cell shows).
#[derive(Clone, Debug, Serialize)]
pub struct FourierReport {
    pub p: usize,
    /// whether the task subtracts
    pub sub: bool,
    /// basis row labels (`const`, `cos 1`, `sin 1`, …)
    pub labels: Vec<String>,
    /// ‖F W_E‖ per frequency k = 0..=p/2 (index 0: the constant)
    pub embed_norms: Vec<f64>,
    /// ‖F W_Uᵀ‖ per frequency
    pub unembed_norms: Vec<f64>,
    /// by [`key_frequencies`] on the embedding's squared norms
    pub key_freqs: Vec<usize>,
    /// [`fraction_of`] the embedding's squared norm (constant included) the key
    /// frequencies hold
    pub embed_fraction: f64,
    /// the same for the unembedding
    pub unembed_fraction: f64,
    /// fraction of the logits' variance over c the key directions explain
    /// ([`super::fourier_grid`])
    pub logit_fraction: f64,
    /// Gini coefficient of the embedding's norms over the frequencies k ≥ 1
    pub gini: f64,
    /// mean cross-entropy over all p² pairs: the model's logits, then the restricted ones
    pub loss: f64,
    pub restricted_loss: f64,
    /// mean cross-entropy of the excluded logits on the training split
    pub excluded_loss: f64,
    /// per neuron of the last MLP layer (empty without MLP)
    pub neurons: Vec<super::fourier_grid::NeuronFrequency>,
    /// fraction of those explained by one frequency (share ≥ NEURON_THRESHOLD)
    pub neuron_single_fraction: f64,
    /// (k, how many neurons have best frequency k and are explained by it), k ascending
    pub neuron_clusters: Vec<(usize, usize)>,
}

/// The training items of a modular task: the grid rows a·p + b of its training split.
pub fn train_rows(task: &crate::tasks::TaskSpec) -> Vec<usize> {
    match task.finite() {
        Some(s) => (0..s.side_len(false))
            .map(|j| s.item_of(false, j) as usize)
            .collect(),
        None => Vec::new(),
    }
}

/// [`FourierReport`] of `w` (raw weights) on the modular `task`.
pub fn fourier_report(w: &Weights, task: &crate::tasks::TaskSpec) -> Result<FourierReport> {
    use super::fourier_grid as fg;
    let (p, sub) = modular_task(task)?;
    let basis = FourierBasis::new(p)?;
    let e = basis.freq_norms_sq(&embed_in_basis(w, &basis)?);
    let u = basis.freq_norms_sq(&unembed_in_basis(w, &basis)?);
    let key = key_frequencies(&e);
    let grid = fg::modular_grid(w, task)?;
    let proj = fg::key_projection(&grid);
    let all: Vec<usize> = (0..p * p).collect();
    let neurons = match &grid.post {
        Some(post) => fg::neuron_frequencies(&basis, post)?,
        None => Vec::new(),
    };
    let mut clusters = vec![0usize; basis.n_freqs()];
    for n in &neurons {
        if let (Some(k), true) = (n.freq, n.share >= fg::NEURON_THRESHOLD) {
            clusters[k] += 1;
        }
    }
    Ok(FourierReport {
        p,
        sub,
        labels: basis.labels.clone(),
        embed_norms: e.iter().map(|x| x.sqrt()).collect(),
        unembed_norms: u.iter().map(|x| x.sqrt()).collect(),
        embed_fraction: fraction_of(&e, &key),
        unembed_fraction: fraction_of(&u, &key),
        logit_fraction: proj.fraction(&key),
        gini: gini(&e[1..].iter().map(|x| x.sqrt()).collect::<Vec<_>>()),
        loss: fg::mean_loss(&grid, &fg::residue_logits(&grid), &all),
        restricted_loss: fg::mean_loss(&grid, &proj.restricted(&grid, &key), &all),
        excluded_loss: fg::mean_loss(&grid, &proj.excluded(&grid, &key), &train_rows(task)),
        neuron_single_fraction: fg::single_frequency_fraction(&neurons),
        neuron_clusters: (1..clusters.len())
            .filter(|&k| clusters[k] > 0)
            .map(|k| (k, clusters[k]))
            .collect(),
        neurons,
        key_freqs: key,
    })
}

/// The report as the lines `examples/circuits` prints.
pub fn report_lines(r: &FourierReport) -> Vec<String> {
    let mut top: Vec<usize> = (1..r.embed_norms.len()).collect();
    top.sort_by(|&a, &b| r.embed_norms[b].total_cmp(&r.embed_norms[a]));
    let spectrum: Vec<String> = top
        .iter()
        .take(10)
        .map(|&k| format!("{k}:{:.2}", r.embed_norms[k]))
        .collect();
    let clusters: Vec<String> = r
        .neuron_clusters
        .iter()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    vec![
        format!("Fourier basis mod {} (orthonormal: const 1/√p, cos/sin(2πkx/p)·√(2/p))", r.p),
        format!("embedding norm per frequency (top 10, k:norm; const {:.2}): {}", r.embed_norms[0], spectrum.join(" ")),
        format!("key frequencies (shortest set holding ≥ {:.0}% of the non-constant embedding norm²): {:?}", KEY_SHARE * 100.0, r.key_freqs),
        format!("fraction explained by them: embedding norm² {:.4} · unembedding norm² {:.4} · logit variance {:.4}", r.embed_fraction, r.unembed_fraction, r.logit_fraction),
        format!("Gini of the embedding's frequency norms: {:.4}", r.gini),
        format!("loss over all p² pairs {:.3e} · restricted to key frequencies {:.3e} · excluded loss (train split) {:.3e}", r.loss, r.restricted_loss, r.excluded_loss),
        format!("neurons explained by one frequency (share ≥ {}): {:.4} of {} · per frequency (k:count) {}", super::fourier_grid::NEURON_THRESHOLD, r.neuron_single_fraction, r.neurons.len(), clusters.join(" ")),
    ]
}
