//! The Fourier analysis of modular arithmetic (interp::fourier, interp::fourier_grid)
//! against plain loops: a naive DFT (cos/sin sums written from the definition, f64), the
//! logits' projections computed triple by triple, and hand-built models whose answer is
//! known.
use crate::common;

use toyformer::backend::Backend;
use toyformer::interp::fourier::{self, FourierBasis};
use toyformer::interp::fourier_grid as fg;
use toyformer::model::{ActFn, ModelConfig, Weights};
use toyformer::tasks::rng::CounterRng;
use toyformer::tasks::TaskSpec;

const TAU: f64 = 2.0 * std::f64::consts::PI;

fn mod_task(name: &str, p: usize) -> TaskSpec {
    let mut v = serde_json::to_value(TaskSpec::default_for(name).unwrap()).unwrap();
    v["p"] = serde_json::json!(p);
    serde_json::from_value(v).unwrap()
}

/// A random 1-layer model for a modular task mod p (MLP 24 ReLU when `mlp`).
fn random_mod_model(p: usize, mlp: bool, seed: u64) -> Weights {
    let cfg = ModelConfig {
        n_layers: 1,
        n_heads: 2,
        d_model: 16,
        d_head: 8,
        d_mlp: mlp.then_some(24),
        act_fn: mlp.then_some(ActFn::Relu),
        n_ctx: 4,
        d_vocab: p + 1,
        d_vocab_out: p,
        seed,
        ..ModelConfig::sort_ref()
    };
    let mut w = Weights::init(&cfg).unwrap();
    let mut r = CounterRng::new(seed, 5, 0);
    w.data.iter_mut().for_each(|x| *x = 0.5 * r.normal() as f32);
    w
}

/// Squared norm per frequency of `m` (rows = residues 0..p, `cols` columns) by the naive
/// DFT: for k ≥ 1, (2/p) Σ_c [(Σ_x m[x,c] cos(2πkx/p))² + (Σ_x m[x,c] sin(2πkx/p))²]
/// (1/p and the cosine alone for k = 0 and the Nyquist frequency).
fn naive_freq_norms_sq(m: &[f32], p: usize, cols: usize) -> Vec<f64> {
    (0..=p / 2)
        .map(|k| {
            let edge = k == 0 || 2 * k == p;
            (0..cols)
                .map(|c| {
                    let (mut s_cos, mut s_sin) = (0.0, 0.0);
                    for x in 0..p {
                        let a = TAU * (k * x) as f64 / p as f64;
                        s_cos += m[x * cols + c] as f64 * a.cos();
                        s_sin += m[x * cols + c] as f64 * a.sin();
                    }
                    if edge {
                        s_cos * s_cos / p as f64
                    } else {
                        (s_cos * s_cos + s_sin * s_sin) * 2.0 / p as f64
                    }
                })
                .sum()
        })
        .collect()
}

/// The key-frequency rule written out again: sort k ≥ 1 by norm², take until ≥ 90%.
fn naive_key(norms_sq: &[f64]) -> Vec<usize> {
    let total: f64 = norms_sq[1..].iter().sum();
    let mut ks: Vec<usize> = (1..norms_sq.len()).collect();
    ks.sort_by(|a, b| norms_sq[*b].partial_cmp(&norms_sq[*a]).unwrap());
    let mut out = vec![];
    let mut acc = 0.0;
    for k in ks {
        if acc >= 0.9 * total {
            break;
        }
        acc += norms_sq[k];
        out.push(k);
    }
    out.sort();
    out
}

#[test]
fn basis_is_orthonormal() {
    for p in [2, 7, 8, 113] {
        let b = FourierBasis::new(p).unwrap();
        assert_eq!(b.rows.rows, p);
        for i in 0..p {
            for j in 0..p {
                let dot: f64 = (0..p)
                    .map(|x| b.rows.at(i, x) as f64 * b.rows.at(j, x) as f64)
                    .sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "p {p} rows {i},{j}: {dot}");
            }
        }
        // row 2k−1 is cos(2πkx/p) up to its scale
        let x = 3 % p;
        let want = (TAU * x as f64 / p as f64).cos() * (2.0 / p as f64).sqrt();
        if p > 2 {
            assert!((b.rows.at(1, x) as f64 - want).abs() < 1e-6);
            assert_eq!(b.labels[1], "cos 1");
        }
    }
    assert!(FourierBasis::new(1).is_err());
}

#[test]
fn hand_built_embedding_gives_its_frequencies() {
    let p = 23;
    let mut w = random_mod_model(p, true, 3);
    let d = w.cfg.d_model;
    let e = w.get_mut("embed.W_E").unwrap();
    e.fill(0.0);
    // frequencies 4 (amplitude 2) and 9 (amplitude 1) in columns 0..4, nothing else
    for x in 0..p {
        for (col, k, amp) in [(0, 4, 2.0), (2, 9, 1.0)] {
            let a = TAU * (k * x) as f64 / p as f64;
            e[x * d + col] = (amp * a.cos()) as f32;
            e[x * d + col + 1] = (amp * a.sin()) as f32;
        }
    }
    e[p * d + 5] = 7.0; // the `=` row is not a residue and stays out of the analysis
    let task = mod_task("mod-add", p);
    let r = fourier::fourier_report(&w, &task).unwrap();
    assert_eq!(r.key_freqs, vec![4, 9]);
    assert!(
        (r.embed_fraction - 1.0).abs() < 1e-5,
        "{}",
        r.embed_fraction
    );
    let naive = naive_freq_norms_sq(&w.get("embed.W_E").unwrap()[..p * d], p, d);
    for (got, want) in r.embed_norms.iter().zip(&naive) {
        assert!((got.powi(2) - want).abs() < 1e-3 * (1.0 + want));
    }
    assert_eq!(r.embed_norms.len(), naive.len());
    // amplitude A over p residues in two columns: norm² = A² p (cos² + sin² = 1 per x)
    assert!((naive[4] - 4.0 * p as f64).abs() < 1e-3);
    assert!(naive[1] < 1e-8);
}

#[test]
fn key_frequency_rule_and_gini() {
    // 5, 30, 50, 15 (k = 1..4) of 100: 90% needs 50 + 30 + 15
    assert_eq!(
        fourier::key_frequencies(&[9.0, 5.0, 30.0, 50.0, 15.0]),
        vec![2, 3, 4]
    );
    assert_eq!(
        fourier::key_frequencies(&[1.0, 0.0, 0.0]),
        Vec::<usize>::new()
    );
    assert!((fourier::gini(&[0.0, 0.0, 0.0, 4.0]) - 0.75).abs() < 1e-12);
    assert!(fourier::gini(&[2.0, 2.0, 2.0]).abs() < 1e-12);
}

#[test]
fn reconstruction_with_every_frequency_is_the_logits() {
    for (name, p) in [("mod-add", 11), ("mod-sub", 12)] {
        let w = random_mod_model(p, true, 7);
        let task = mod_task(name, p);
        let g = fg::modular_grid(&w, &task).unwrap();
        // the grid's logits against the backend's logits of the full sequences
        let mut b = toyformer::reference::ReferenceBackend::for_inference(&w).unwrap();
        let tokens: Vec<u32> = (0..p * p)
            .flat_map(|i| [(i / p) as u32, (i % p) as u32, p as u32, 0])
            .collect();
        let all = b.logits(&tokens, p * p).unwrap(); // (p², 4, p)
        let basis = FourierBasis::new(p).unwrap();
        let every: Vec<usize> = (0..=p / 2).collect();
        let rec = fg::reconstruct(&basis, &g, &every).unwrap();
        for row in 0..p * p {
            for c in 0..p {
                let want = all[(row * 4 + 2) * p + c] as f64;
                assert!(
                    (rec[row * p + c] - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "{name} row {row} c {c}"
                );
            }
        }
        // no frequency but the constant: a function of nothing but c
        let flat = fg::reconstruct(&basis, &g, &[]).unwrap();
        assert!((flat[5 * p + 1] - flat[(p * p - 1) * p + 1]).abs() < 1e-4);
        // restricted + excluded = the logits, and the key directions' variance fractions
        // over all frequencies add up to at most 1
        let proj = fg::key_projection(&g);
        let key = [1, 3];
        let (r, x) = (proj.restricted(&g, &key), proj.excluded(&g, &key));
        for i in 0..p * p * p {
            let want = all[((i / p) * 4 + 2) * p + i % p] as f64;
            assert!((r[i] + x[i] - want).abs() < 1e-4 * (1.0 + want.abs()));
        }
        let f = proj.fraction(&every[1..]);
        assert!(f > 0.0 && f <= 1.0 + 1e-9, "{f}");
    }
}

/// Basis function i of the naive DFT at residue x (row order const, cos 1, sin 1, …).
fn naive_basis(i: usize, x: usize, p: usize) -> f64 {
    if i == 0 {
        return 1.0 / (p as f64).sqrt();
    }
    let k = i.div_ceil(2);
    let a = TAU * (k * x) as f64 / p as f64;
    if 2 * k == p {
        a.cos() / (p as f64).sqrt()
    } else if i % 2 == 1 {
        a.cos() * (2.0 / p as f64).sqrt()
    } else {
        a.sin() * (2.0 / p as f64).sqrt()
    }
}

/// The fraction of neurons (columns of post (p², M)) whose best frequency holds ≥ 0.85 of
/// their variance, by a naive separable 2-D DFT in f64.
fn naive_single_frequency_fraction(post: &[f32], p: usize, m: usize) -> f64 {
    let table: Vec<f64> = (0..p * p)
        .map(|ix| naive_basis(ix / p, ix % p, p))
        .collect();
    let freq = |i: usize| i.div_ceil(2);
    let mut explained = 0;
    for n in 0..m {
        let mut over_a = vec![0.0; p * p]; // [i][b]
        for i in 0..p {
            for a in 0..p {
                let f = table[i * p + a];
                for b in 0..p {
                    over_a[i * p + b] += f * post[(a * p + b) * m + n] as f64;
                }
            }
        }
        let nf = p / 2 + 1;
        let mut e = vec![0.0; nf * nf];
        for i in 0..p {
            for j in 0..p {
                let z: f64 = (0..p).map(|b| table[j * p + b] * over_a[i * p + b]).sum();
                if i + j > 0 {
                    e[freq(i) * nf + freq(j)] += z * z;
                }
            }
        }
        let total: f64 = e.iter().sum();
        let best = (1..nf)
            .map(|k| (e[k] + e[k * nf] + e[k * nf + k]) / total)
            .fold(0.0, f64::max);
        if total > 1e-20 && best >= 0.85 {
            explained += 1;
        }
    }
    explained as f64 / m as f64
}

/// On the shared modular-subtraction model: the key frequencies, the fractions they
/// explain and the neuron single-frequency fraction that `examples/circuits` prints, against
/// a naive DFT of W_E, the logits' projections summed triple by triple and a naive 2-D DFT
/// of every neuron.
#[test]
fn shared_modular_subtraction_model() {
    let task = TaskSpec::default_for("mod-sub").unwrap();
    let w =
        toyformer::io::load_weights(&common::shared("modular_subtraction_model.pt"), None).unwrap();
    let w = task.fit_context(w).unwrap();
    let r = fourier::fourier_report(&w, &task).unwrap();
    let lines = fourier::report_lines(&r);
    for l in &lines {
        println!("{l}");
    }
    let (p, d) = (113, w.cfg.d_model);
    let norms = naive_freq_norms_sq(&w.get("embed.W_E").unwrap()[..p * d], p, d);
    let key = naive_key(&norms);
    assert_eq!(r.key_freqs, key);
    let frac = key.iter().map(|&k| norms[k]).sum::<f64>() / norms.iter().sum::<f64>();
    assert!(
        (r.embed_fraction - frac).abs() < 1e-4,
        "{} {frac}",
        r.embed_fraction
    );
    // the logits of every full sequence, projected on cos/sin(2πk(a − b − c)/p)
    let mut b = toyformer::reference::ReferenceBackend::for_inference(&w).unwrap();
    let tokens: Vec<u32> = (0..p * p)
        .flat_map(|i| [(i / p) as u32, (i % p) as u32, p as u32, 0])
        .collect();
    let all = b.logits(&tokens, p * p).unwrap(); // (p², 4, p)
    let l = |a: usize, bb: usize, c: usize| all[((a * p + bb) * 4 + 2) * p + c] as f64;
    let (mut total, mut energy) = (0.0, 0.0);
    let mut inner = vec![(0.0, 0.0); key.len()];
    for a in 0..p {
        for bb in 0..p {
            let mean = (0..p).map(|c| l(a, bb, c)).sum::<f64>() / p as f64;
            for c in 0..p {
                let v = l(a, bb, c);
                total += (v - mean) * (v - mean);
                let r = (a as i64 - bb as i64 - c as i64).rem_euclid(p as i64) as f64;
                for (s, &k) in inner.iter_mut().zip(&key) {
                    s.0 += v * (TAU * k as f64 * r / p as f64).cos();
                    s.1 += v * (TAU * k as f64 * r / p as f64).sin();
                }
            }
        }
    }
    for (c, s) in inner {
        energy += (c * c + s * s) / ((p * p * p) as f64 / 2.0);
    }
    assert!(
        (r.logit_fraction - energy / total).abs() < 1e-4,
        "{} {}",
        r.logit_fraction,
        energy / total
    );
    // neurons, from the cache of the full sequences
    let name = toyformer::interp::act_name("post", 0);
    let hooks = toyformer::interp::HookSet::recording(|n| n == name);
    let cache = toyformer::interp::run_with_hooks(&b, &tokens, p * p, hooks).unwrap();
    let m = 512;
    let post: Vec<f32> = (0..p * p)
        .flat_map(|i| cache.at(&name, i, 2).unwrap().to_vec())
        .collect();
    let naive = naive_single_frequency_fraction(&post, p, m);
    assert!(
        (r.neuron_single_fraction - naive).abs() < 1.5 / m as f64,
        "{} {naive}",
        r.neuron_single_fraction
    );
    // what the CLI prints holds these numbers
    let text = lines.join("\n");
    assert!(text.contains(&format!("{key:?}")), "{text}");
    assert!(text.contains(&format!("{frac:.4}")) || (r.embed_fraction - frac).abs() < 1e-4);
    assert!(text.contains(&format!("{:.4}", r.neuron_single_fraction)));
    // the model solves the task: full loss small, restricted loss small
    assert!(r.loss < 0.1, "{}", r.loss);
}
