//! The circuit graph and the methods on it (path patching, EAP, EAP-IG, ACDC, top-k,
//! faithfulness), each against a plain-loop f64 forward written here from the definitions
//! (every receiver's input summed edge by edge), sharing no code with the crate's candle
//! graph forward. The neuron graph (every MLP neuron a sender) is checked the same way, with
//! the plain loop splitting each MLP's output into its neurons' outputs.
use crate::common;

use candle_core::DType;
use toyformer::interp::attribution::{edge_attribution, rank_correlation};
use toyformer::interp::circuit_metric::{
    default_pairs, CircuitMetric, CircuitSetup, EdgeAblation, Pairs,
};
use toyformer::interp::discovery::{
    acdc_neurons, discover, keep_neurons, neuron_ranking, rank_neurons, Method, Select,
};
use toyformer::interp::faithfulness::faithfulness;
use toyformer::interp::graph::{Circuit, Graph, GraphOptions};
use toyformer::interp::path_patch::{path_patching, PatchDirection};
use toyformer::model::Weights;
use toyformer::tasks::TaskSpec;

type Mat = Vec<Vec<f64>>; // (T, C) or (T, V)

fn get(w: &Weights, n: &str) -> Vec<f64> {
    w.get(n).unwrap().iter().map(|&x| x as f64).collect()
}

fn ln(x: &[f64], g: &[f64], b: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let s = (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n + 1e-5).sqrt();
    (0..x.len()).map(|i| (x[i] - m) / s * g[i] + b[i]).collect()
}

/// x (T, C) → x W + b for W (C, N) at `off` with row stride `stride` (columns off..off+n).
fn affine(x: &Mat, w: &[f64], stride: usize, off: usize, n: usize, b: &[f64]) -> Mat {
    x.iter()
        .map(|r| {
            (0..n)
                .map(|j| {
                    b[j] + (0..r.len())
                        .map(|k| r[k] * w[k * stride + off + j])
                        .sum::<f64>()
                })
                .collect()
        })
        .collect()
}

/// The plain edge-by-edge forward of one sequence: sender outputs [s] (T, C) and logits
/// (T, V). Edge s → r carries alt_s + m(r, s) (out_s − alt_s) (alt = 0 when None).
struct Plain<'a> {
    w: &'a Weights,
    /// every MLP neuron a sender
    neurons: bool,
    m: &'a dyn Fn(usize, usize) -> f64,
    alt: Option<&'a [Mat]>,
    outs: Vec<Mat>,
    bias: Vec<f64>,
    r: usize,
}

impl Plain<'_> {
    fn input(&mut self) -> Mat {
        let (t, c) = (self.outs[0].len(), self.bias.len());
        let mut x = vec![self.bias.clone(); t];
        for (s, o) in self.outs.iter().enumerate() {
            let m = (self.m)(self.r, s);
            for i in 0..t {
                for k in 0..c {
                    let a = self.alt.map_or(0.0, |a| a[s][i][k]);
                    x[i][k] += a + m * (o[i][k] - a);
                }
            }
        }
        self.r += 1;
        x
    }

    fn norm(&self, x: Mat, pre: &str) -> Mat {
        if self.w.cfg.normalization_type.is_none() {
            return x;
        }
        let (g, b) = (
            get(self.w, &format!("{pre}.w")),
            get(self.w, &format!("{pre}.b")),
        );
        x.iter().map(|r| ln(r, &g, &b)).collect()
    }

    fn head(&mut self, l: usize, h: usize) -> Mat {
        let (c, hs) = (self.w.cfg.d_model, self.w.cfg.d_head);
        let p = |n: &str| get(self.w, &format!("blocks.{l}.attn.{n}"));
        let mut qkv = vec![];
        for n in ["Q", "K", "V"] {
            let x = self.input();
            let x = self.norm(x, &format!("blocks.{l}.ln1"));
            let w = p(&format!("W_{n}"));
            let b = p(&format!("b_{n}"))[h * hs..(h + 1) * hs].to_vec();
            qkv.push(affine(&x, &w[h * c * hs..], hs, 0, hs, &b));
        }
        let t = qkv[0].len();
        let wo = p("W_O");
        let mut z = vec![vec![0.0; hs]; t];
        for i in 0..t {
            let sc: Vec<f64> = (0..=i)
                .map(|j| {
                    (0..hs).map(|a| qkv[0][i][a] * qkv[1][j][a]).sum::<f64>() / (hs as f64).sqrt()
                })
                .collect();
            let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let den: f64 = sc.iter().map(|s| (s - mx).exp()).sum();
            for (j, s) in sc.iter().enumerate() {
                for a in 0..hs {
                    z[i][a] += (s - mx).exp() / den * qkv[2][j][a];
                }
            }
        }
        affine(&z, &wo[h * hs * c..], c, 0, c, &vec![0.0; c])
    }

    /// The MLP's sender outputs: its output, or per neuron n a[:, n] W_out[n, :].
    fn mlp(&mut self, l: usize) -> Vec<Mat> {
        let x = self.input();
        let x = self.norm(x, &format!("blocks.{l}.ln2"));
        let p = |n: &str| get(self.w, &format!("blocks.{l}.mlp.{n}"));
        let (c, m) = (self.w.cfg.d_model, self.w.cfg.d_mlp.unwrap());
        let a = affine(&x, &p("W_in"), m, 0, m, &p("b_in"));
        let a: Mat = a
            .iter()
            .map(|r| r.iter().map(|v| v.max(0.0)).collect())
            .collect();
        if !self.neurons {
            return vec![affine(&a, &p("W_out"), c, 0, c, &vec![0.0; c])];
        }
        let wo = p("W_out");
        (0..m)
            .map(|n| {
                a.iter()
                    .map(|r| (0..c).map(|k| r[n] * wo[n * c + k]).collect())
                    .collect()
            })
            .collect()
    }
}

fn plain(
    w: &Weights,
    tokens: &[u32],
    m: &dyn Fn(usize, usize) -> f64,
    alt: Option<&[Mat]>,
    neurons: bool,
) -> (Vec<Mat>, Mat) {
    let cfg = &w.cfg;
    let (c, t) = (cfg.d_model, tokens.len());
    let (we, wp) = (get(w, "embed.W_E"), get(w, "pos_embed.W_pos"));
    let tok: Mat = tokens
        .iter()
        .map(|&x| we[x as usize * c..][..c].to_vec())
        .collect();
    let pos: Mat = (0..t).map(|i| wp[i * c..][..c].to_vec()).collect();
    let mut p = Plain {
        w,
        neurons,
        m,
        alt,
        outs: vec![tok, pos],
        bias: vec![0.0; c],
        r: 0,
    };
    for l in 0..cfg.n_layers {
        let heads: Vec<Mat> = (0..cfg.n_heads).map(|h| p.head(l, h)).collect();
        p.outs.extend(heads);
        let bo = get(w, &format!("blocks.{l}.attn.b_O"));
        p.bias.iter_mut().zip(&bo).for_each(|(a, b)| *a += b);
        if cfg.d_mlp.is_some() {
            let o = p.mlp(l);
            p.outs.extend(o);
            let bo = get(w, &format!("blocks.{l}.mlp.b_out"));
            p.bias.iter_mut().zip(&bo).for_each(|(a, b)| *a += b);
        }
    }
    let x = p.input();
    let x = p.norm(x, "ln_final");
    let v = cfg.d_vocab_out;
    let logits = affine(&x, &get(w, "unembed.W_U"), v, 0, v, &get(w, "unembed.b_U"));
    (p.outs, logits)
}

/// Mean cross-entropy at the task's scored positions of a batch of plain runs.
fn plain_loss(task: &TaskSpec, clean: &[u32], logits: &[Mat]) -> f64 {
    let t = task.seq_len();
    let (mut sum, mut n) = (0.0, 0);
    for (b, lg) in logits.iter().enumerate() {
        let tg = task.targets(&clean[b * t..(b + 1) * t]);
        for (&p, &y) in task.pred_positions().iter().zip(&tg) {
            let mx = lg[p].iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + lg[p].iter().map(|x| (x - mx).exp()).sum::<f64>().ln();
            sum += lse - lg[p][y as usize];
            n += 1;
        }
    }
    sum / n as f64
}

/// Plain runs of every row of `tokens` (B, T): per row, sender outputs and logits.
fn plain_batch(
    w: &Weights,
    tokens: &[u32],
    t: usize,
    m: &dyn Fn(usize, usize) -> f64,
    alt: Option<&[Vec<Mat>]>,
) -> (Vec<Vec<Mat>>, Vec<Mat>) {
    plain_batch_n(w, tokens, t, m, alt, false)
}

/// [`plain_batch`] on the neuron graph when `neurons`.
fn plain_batch_n(
    w: &Weights,
    tokens: &[u32],
    t: usize,
    m: &dyn Fn(usize, usize) -> f64,
    alt: Option<&[Vec<Mat>]>,
    neurons: bool,
) -> (Vec<Vec<Mat>>, Vec<Mat>) {
    tokens
        .chunks(t)
        .enumerate()
        .map(|(b, row)| plain(w, row, m, alt.map(|a| &a[b][..]), neurons))
        .unzip()
}

const ONE: &dyn Fn(usize, usize) -> f64 = &|_, _| 1.0;

fn setup(w: &Weights, metric: CircuitMetric, ablation: EdgeAblation) -> CircuitSetup {
    let task = common::small_sort();
    let pairs = default_pairs(&task, 4, 3).unwrap();
    CircuitSetup::new(w, &task, pairs, metric, ablation, DType::F64).unwrap()
}

fn models() -> Vec<Weights> {
    vec![
        common::random_model(1, 1, false, false, false, 1),
        common::random_model(2, 2, true, true, true, 2),
    ]
}

/// Mask value of the edge s → r when `e` (sender, receiver) is set to `v`, else `rest`.
fn one_edge(g: &Graph, e: usize, v: f64, rest: f64) -> impl Fn(usize, usize) -> f64 + '_ {
    move |r, s| if g.edge(s, r) == Some(e) { v } else { rest }
}

#[test]
fn graph_forward_is_the_model() {
    for w in models() {
        let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
        let task = common::small_sort();
        let (_, lg) = plain_batch(&w, &s.pairs.clean, task.seq_len(), ONE, None);
        let want = plain_loss(&task, &s.pairs.clean, &lg);
        assert!(
            common::close(s.full.loss, want, 1e-9),
            "{} vs {want}",
            s.full.loss
        );
        // and the model of the crate's own forward (plain loop of tests/native/common.rs)
        let t = task.seq_len();
        let lg2: Vec<Mat> = s
            .pairs
            .clean
            .chunks(t)
            .map(|r| common::forward(&w, r).logits)
            .collect();
        assert!(common::close(
            plain_loss(&task, &s.pairs.clean, &lg2),
            want,
            1e-9
        ));
    }
}

#[test]
fn path_patching_matches_the_frozen_loop() {
    let w = common::random_model(2, 2, true, true, true, 2);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    let (clean_outs, _) = plain_batch(&w, &s.pairs.clean, t, ONE, None);
    let (corr_outs, _) = plain_batch(&w, &s.pairs.corrupted, t, ONE, None);
    let edges: Vec<usize> = (0..g.edges.len()).step_by(3).collect();
    for (dir, base, alt) in [
        (PatchDirection::Denoising, &s.pairs.corrupted, &clean_outs),
        (PatchDirection::Noising, &s.pairs.clean, &corr_outs),
    ] {
        let got = path_patching(&s, &edges, dir).unwrap();
        let (_, lg) = plain_batch(&w, base, t, ONE, Some(alt));
        let b0 = plain_loss(&task, &s.pairs.clean, &lg);
        assert!(
            common::close(got.base, b0, 1e-9),
            "{dir:?} base {} vs {b0}",
            got.base
        );
        for (i, &e) in edges.iter().enumerate() {
            let (_, lg) = plain_batch(&w, base, t, &one_edge(g, e, 0.0, 1.0), Some(alt));
            let want = plain_loss(&task, &s.pairs.clean, &lg) - b0;
            let d = got.effects[i];
            assert!(
                (d - want).abs() < 1e-9,
                "{dir:?} {}: {d} vs {want}",
                g.edges[e].name
            );
        }
    }
}

#[test]
fn eap_matches_finite_differences() {
    let w = common::random_model(2, 2, true, true, true, 4);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    let (corr_outs, _) = plain_batch(&w, &s.pairs.corrupted, t, ONE, None);
    // EAP at m = 1 and EAP-IG with k = 1 (its one point is m = 1/2)
    for (k, at) in [(0, 1.0), (1, 0.5)] {
        let a = edge_attribution(&s, k).unwrap();
        let h = 1e-5;
        for e in (0..g.edges.len()).step_by(4) {
            let f = |v: f64| {
                let (_, lg) = plain_batch(
                    &w,
                    &s.pairs.clean,
                    t,
                    &one_edge(g, e, v, at),
                    Some(&corr_outs),
                );
                plain_loss(&task, &s.pairs.clean, &lg)
            };
            let fd = (f(at + h) - f(at - h)) / (2.0 * h);
            let got = -a.edges[e];
            assert!(
                (got - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "k {k} {}: {got} vs {fd}",
                g.edges[e].name
            );
        }
    }
}

#[test]
fn eap_ig_approaches_the_integrated_gradient() {
    // GELU, not ReLU: a ReLU switching along the path makes the integrand jump, and the
    // midpoint rule then converges only as 1/k
    let mut w = common::random_model(2, 2, true, true, true, 5);
    w.cfg.act_fn = Some(toyformer::model::ActFn::Gelu);
    for metric in [
        CircuitMetric::Loss,
        CircuitMetric::Kl,
        CircuitMetric::LogitDiff,
    ] {
        let s = setup(&w, metric, EdgeAblation::Corrupted);
        let empty = s
            .metric_at(&s.model.mask(&Circuit::empty(&s.model.graph)).unwrap())
            .unwrap();
        let full = s.full.get(metric);
        let err = |k: usize| {
            let a = edge_attribution(&s, k).unwrap();
            (a.edges.iter().sum::<f64>() - (empty - full)).abs()
        };
        let (e8, e64) = (err(8), err(64));
        eprintln!(
            "{metric:?}: completeness error k=8 {e8:.2e}, k=64 {e64:.2e} (total {:.3})",
            empty - full
        );
        assert!(
            e64 < 2e-3 * (1.0 + (empty - full).abs()),
            "{metric:?} k = 64: {e64}"
        );
        assert!(
            e64 <= e8 + 1e-12,
            "more steps should not be worse: {e8} → {e64}"
        );
    }
}

#[test]
fn patching_every_edge_gives_the_other_run() {
    let task = common::small_sort();
    let t = task.seq_len();
    for w in models() {
        let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
        let g = &s.model.graph;
        let (_, lg) = plain_batch(&w, &s.pairs.corrupted, t, ONE, None);
        let corrupted = plain_loss(&task, &s.pairs.clean, &lg);
        // every edge ablated (noising all) is the corrupted run ...
        let none = s
            .metric_at(&s.model.mask(&Circuit::empty(g)).unwrap())
            .unwrap();
        assert!(
            common::close(none, corrupted, 1e-9),
            "{none} vs {corrupted}"
        );
        // ... and every edge patched from clean into the corrupted run is the clean run
        let zero = s.model.uniform_mask(0.0).unwrap();
        let run = s
            .model
            .run(&s.pairs.corrupted, 4, &zero, Some(&s.clean_outs))
            .unwrap();
        let v = s.value(&run.logits).unwrap().to_scalar::<f64>().unwrap();
        assert!(
            common::close(v, s.full.loss, 1e-9),
            "{v} vs {}",
            s.full.loss
        );
    }
}

#[test]
fn the_whole_graph_is_faithful_and_its_complement_is_not() {
    let w = common::random_model(2, 2, true, true, true, 6);
    for ab in [
        EdgeAblation::Corrupted,
        EdgeAblation::Mean,
        EdgeAblation::Resample,
    ] {
        let s = setup(&w, CircuitMetric::LogitDiff, ab);
        let f = faithfulness(&s, &Circuit::full(&s.model.graph)).unwrap();
        assert!((f.loss_recovered - 1.0).abs() < 1e-9, "{ab:?} {f:?}");
        assert!((f.logit_diff_recovered - 1.0).abs() < 1e-9);
        assert!(f.complement_loss_recovered.abs() < 1e-9);
        assert_eq!(f.circuit.acc, f.full.acc);
        assert_eq!(
            (f.edges, f.total_edges),
            (s.model.graph.edges.len(), s.model.graph.edges.len())
        );
    }
}

#[test]
fn mean_and_resample_ablation_carry_the_plain_values() {
    let w = common::random_model(2, 2, true, true, true, 7);
    let task = common::small_sort();
    let t = task.seq_len();
    let (clean_outs, _) = {
        let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Mean);
        plain_batch(&w, &s.pairs.clean, t, ONE, None)
    };
    let bsz = clean_outs.len();
    let mean: Vec<Mat> = (0..clean_outs[0].len())
        .map(|s| {
            (0..t)
                .map(|i| {
                    (0..w.cfg.d_model)
                        .map(|k| clean_outs.iter().map(|o| o[s][i][k]).sum::<f64>() / bsz as f64)
                        .collect()
                })
                .collect()
        })
        .collect();
    let mean_alt = vec![mean; bsz];
    let resample: Vec<Vec<Mat>> = (0..bsz)
        .map(|b| clean_outs[(b + 1) % bsz].clone())
        .collect();
    for (ab, alt) in [
        (EdgeAblation::Mean, mean_alt),
        (EdgeAblation::Resample, resample),
    ] {
        let s = setup(&w, CircuitMetric::Loss, ab);
        let g = &s.model.graph;
        let mut c = Circuit::full(g);
        for e in (0..g.edges.len()).step_by(2) {
            c.edges[e] = false;
        }
        let got = s.metric_at(&s.model.mask(&c).unwrap()).unwrap();
        let m = |r: usize, sd: usize| g.edge(sd, r).map_or(1.0, |e| c.edges[e] as u8 as f64);
        let (_, lg) = plain_batch(&w, &s.pairs.clean, t, &m, Some(&alt));
        let want = plain_loss(&task, &s.pairs.clean, &lg);
        assert!(common::close(got, want, 1e-9), "{ab:?}: {got} vs {want}");
    }
}

#[test]
fn rank_correlation_is_spearman() {
    assert!(
        (rank_correlation(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 35.0, 100.0]) - 1.0).abs() < 1e-12
    );
    assert!((rank_correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    // ties take the mean rank: ranks (1.5, 1.5, 3) vs (1, 2, 3) → 0.866…
    let r = rank_correlation(&[5.0, 5.0, 7.0], &[1.0, 2.0, 3.0]);
    assert!((r - 0.75f64.sqrt()).abs() < 1e-12, "{r}");
}

#[test]
fn graph_of_a_two_layer_mlp_model() {
    let g = Graph::new(2, 4, true, false);
    // senders: embed, pos, 4 heads + MLP per layer = 12; receivers 3·4 + 1 per layer + logits
    assert_eq!((g.senders.len(), g.receivers.len()), (12, 27));
    // q/k/v of layer 0 read 2, MLP0 6, layer 1 7, MLP1 11, logits 12
    assert_eq!(g.edges.len(), 12 * 2 + 6 + 12 * 7 + 11 + 12);
    let e = g.edge_named("L0H2 -> L1H3.k").unwrap();
    assert_eq!(g.edges[e].name, "L0H2 → L1H3.k");
    assert!(g.edge_named("L1H0 → L0H1.q").is_none());
    // pruning: an edge into a node with no way out goes
    let mut c = Circuit::empty(&g);
    c.edges[g.edge_named("embed → L0H0.v").unwrap()] = true;
    g.prune_dangling(&mut c);
    assert!(c.is_empty());
}

#[test]
fn bad_inputs_are_errors() {
    let w = common::random_model(1, 1, false, false, false, 1);
    let task = common::small_sort();
    let pairs = Pairs {
        clean: vec![0; 5],
        corrupted: vec![0; 5],
        batch: 1,
    };
    assert!(CircuitSetup::new(
        &w,
        &task,
        pairs,
        CircuitMetric::Loss,
        EdgeAblation::Corrupted,
        DType::F32
    )
    .is_err());
    let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    assert!(s
        .model
        .mask(&Circuit {
            edges: vec![true; 3]
        })
        .is_err());
    assert!(path_patching(&s, &[10_000], PatchDirection::Noising).is_err());
    assert!(discover(&s, Method::Acdc, Select::TopK(3), 1).is_err());
    assert!(discover(&s, Method::Acdc, Select::Threshold(f64::NAN), 1).is_err());
    assert!(CircuitMetric::parse("bogus").is_err() && Method::parse("x").is_err());
}

/// The edges of a circuit by name.
fn names(g: &Graph, c: &Circuit) -> Vec<String> {
    (0..g.edges.len())
        .filter(|&e| c.edges[e])
        .map(|e| g.edges[e].name.clone())
        .collect()
}

#[test]
fn seed003_circuit_is_embed_l0h0_logits() {
    let w = common::seed003();
    let task = TaskSpec::default_for("sort").unwrap();
    let setup = |metric| {
        let pairs = default_pairs(&task, 64, 0).unwrap();
        CircuitSetup::new(
            &w,
            &task,
            pairs,
            metric,
            EdgeAblation::Corrupted,
            DType::F32,
        )
        .unwrap()
    };
    let (kl, loss) = (setup(CircuitMetric::Kl), setup(CircuitMetric::Loss));
    // KL is at its minimum with every edge on: plain EAP on it has nothing to rank by
    let err = discover(&kl, Method::Eap, Select::TopK(4), 8).unwrap_err();
    assert!(err.to_string().contains("EAP-IG"), "{err}");
    for (s, method, select) in [
        (&kl, Method::Acdc, Select::Threshold(0.01)),
        (&loss, Method::Eap, Select::TopK(4)),
        (&kl, Method::EapIg, Select::TopK(4)),
    ] {
        let d = discover(s, method, select, 8).unwrap();
        let n = names(&s.model.graph, &d.circuit);
        let f = faithfulness(s, &d.circuit).unwrap();
        eprintln!(
            "seed-003 {method:?}: {n:?}; loss recovered {:.4}",
            f.loss_recovered
        );
        assert!(n.contains(&"L0H0 → logits".to_string()), "{n:?}");
        assert!(n.contains(&"embed → L0H0.v".to_string()), "{n:?}");
        for e in &n {
            assert!(
                e.starts_with("embed → L0H0")
                    || e.starts_with("pos_embed → L0H0")
                    || e == "L0H0 → logits",
                "{e}"
            );
        }
        assert!(f.loss_recovered >= 0.95, "{method:?} {f:?}");
        assert!(f.complement_loss_recovered < 0.5, "{f:?}");
    }
}

/// A 2-layer attention-only model trained on apply-perm (k 3, values below 8).
fn apply_perm_model(steps: u64) -> (Weights, TaskSpec) {
    use toyformer::backend::BackendKind;
    use toyformer::train::{TrainConfig, Trainer};
    let task = TaskSpec::ApplyPerm { k: 3, max_int: 8 };
    let mut cfg = task.default_model();
    (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head) = (2, 1, 32, 32);
    let tc = TrainConfig {
        steps,
        batch_size: 64,
        lr: 3e-3,
        seed: 1,
        ..Default::default()
    };
    let mut tr = Trainer::from_scratch(task.clone(), &cfg, tc, BackendKind::Cpu).unwrap();
    tr.run(|_| {}).unwrap();
    (tr.backend.weights().unwrap(), task)
}

#[test]
fn apply_perm_circuit_composes_layer_0_into_layer_1() {
    let (w, task) = apply_perm_model(1500);
    let pairs = default_pairs(&task, 128, 0).unwrap();
    let s = CircuitSetup::new(
        &w,
        &task,
        pairs,
        CircuitMetric::Kl,
        EdgeAblation::Corrupted,
        DType::F32,
    )
    .unwrap();
    eprintln!("apply-perm full model: {:?}", s.full);
    assert!(
        s.full.acc >= 0.95,
        "the model did not learn apply-perm: {:?}",
        s.full
    );
    for (method, select) in [
        (Method::Acdc, Select::Threshold(0.02)),
        (Method::EapIg, Select::TopK(8)),
    ] {
        let d = discover(&s, method, select, 8).unwrap();
        let n = names(&s.model.graph, &d.circuit);
        let f = faithfulness(&s, &d.circuit).unwrap();
        eprintln!(
            "apply-perm {method:?}: {n:?}; loss recovered {:.4}, KL recovered {:.4}, acc {:.3}",
            f.loss_recovered, f.metric_recovered, f.circuit.acc
        );
        // measured (ACDC): embed → L0H0.v, embed → L1H0.k, L0H0 → L1H0.v, L1H0 → logits
        assert!(
            n.iter().any(|e| e.starts_with("L0H0 → L1H0.")),
            "no layer-0 → layer-1 edge: {n:?}"
        );
        assert!(n.contains(&"L1H0 → logits".to_string()), "{n:?}");
        assert!(
            f.loss_recovered >= 0.9 && f.metric_recovered >= 0.9,
            "{method:?} {f:?}"
        );
        assert!(d.circuit.len() < s.model.graph.edges.len() / 2, "{n:?}");
    }
}

#[test]
fn rerun_from_a_receiver_is_the_plain_loop_with_the_new_mask() {
    // ACDC reruns only from the changed receiver's layer on, reusing the senders before it
    let w = common::random_model(2, 2, true, true, true, 2);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    let (corr_outs, _) = plain_batch(&w, &s.pairs.corrupted, t, ONE, None);
    let mut c1 = Circuit::full(g);
    (0..g.edges.len())
        .step_by(3)
        .for_each(|e| c1.edges[e] = false);
    let prev = s.run(&s.model.mask(&c1).unwrap()).unwrap();
    for r in 0..g.receivers.len() {
        let mut c2 = c1.clone();
        for (e, edge) in g.edges.iter().enumerate() {
            if edge.receiver >= r && e % 2 == 0 {
                c2.edges[e] = !c2.edges[e];
            }
        }
        let run = s.rerun_from(&prev, r, &s.model.mask(&c2).unwrap()).unwrap();
        let got = s.metric_of(&run.logits).unwrap();
        let m = |rr: usize, sd: usize| f64::from(u8::from(c2.edges[g.edge(sd, rr).unwrap()]));
        let (_, lg) = plain_batch(&w, &s.pairs.clean, t, &m, Some(&corr_outs));
        let want = plain_loss(&task, &s.pairs.clean, &lg);
        assert!(
            common::close(got, want, 1e-9),
            "receiver {r}: {got} vs {want}"
        );
    }
}

#[test]
fn the_all_ablated_eval_is_the_plain_loop_with_every_edge_ablated() {
    // CircuitSetup::empty takes the corrupted run for corrupted-run ablation, a run otherwise
    let w = common::random_model(2, 2, true, true, true, 2);
    let task = common::small_sort();
    let t = task.seq_len();
    for ab in [EdgeAblation::Corrupted, EdgeAblation::Resample] {
        let s = setup(&w, CircuitMetric::Loss, ab);
        let alt: Vec<Vec<Mat>> = match ab {
            EdgeAblation::Corrupted => plain_batch(&w, &s.pairs.corrupted, t, ONE, None).0,
            _ => {
                let (clean, _) = plain_batch(&w, &s.pairs.clean, t, ONE, None);
                let b = clean.len();
                (0..b).map(|i| clean[(i + 1) % b].clone()).collect()
            }
        };
        let zero = |_: usize, _: usize| 0.0;
        let (_, lg) = plain_batch(&w, &s.pairs.clean, t, &zero, Some(&alt));
        let want = plain_loss(&task, &s.pairs.clean, &lg);
        let got = s.empty().unwrap().loss;
        assert!(common::close(got, want, 1e-9), "{ab:?}: {got} vs {want}");
    }
}

// ---- the neuron graph: every MLP neuron a sender ----

fn neuron_setup(w: &Weights, metric: CircuitMetric, ablation: EdgeAblation) -> CircuitSetup {
    let task = common::small_sort();
    let pairs = default_pairs(&task, 4, 3).unwrap();
    let opts = GraphOptions { neurons: true };
    CircuitSetup::with_graph(w, &task, pairs, metric, ablation, DType::F64, opts).unwrap()
}

/// A 2-layer, 2-head MLP model with LN and biases (d_mlp 12).
fn mlp_model(seed: u64) -> Weights {
    common::random_model(2, 2, true, true, true, seed)
}

#[test]
fn neuron_graph_shape() {
    let g = Graph::with_neurons(2, 4, 3, false);
    // senders: embed, pos, per layer 4 heads + 3 neurons; receivers as without neurons
    assert_eq!((g.senders.len(), g.receivers.len()), (16, 27));
    // q/k/v of layer 0 read 2, MLP0 6, layer 1 9, MLP1 13, logits 16
    assert_eq!(g.edges.len(), 12 * 2 + 6 + 12 * 9 + 13 + 16);
    assert!(g.has_neurons() && !Graph::new(2, 4, true, false).has_neurons());
    let e = g.edge_named("L0N2 -> L1H3.k").unwrap();
    assert_eq!(g.edges[e].name, "L0N2 → L1H3.k");
    assert!(g.edge_named("MLP0 → logits").is_none());
    assert_eq!(
        g.receivers[g.edges[g.edge_named("L0H1 → MLP1").unwrap()].receiver].name,
        "MLP1"
    );
    // a neuron with an edge out keeps its MLP's input edges
    let mut c = Circuit::empty(&g);
    c.edges[g.edge_named("embed → MLP0").unwrap()] = true;
    c.edges[g.edge_named("L0N1 → logits").unwrap()] = true;
    g.prune_dangling(&mut c);
    assert_eq!(c.len(), 2);
    c.edges[g.edge_named("L0N1 → logits").unwrap()] = false;
    g.prune_dangling(&mut c);
    assert!(c.is_empty());
}

#[test]
fn neuron_graph_with_every_edge_is_the_model() {
    let task = common::small_sort();
    let t = task.seq_len();
    for w in [
        mlp_model(2),
        common::random_model(1, 1, false, true, false, 3),
    ] {
        let s = neuron_setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
        let (outs, lg) = plain_batch_n(&w, &s.pairs.clean, t, ONE, None, true);
        assert_eq!(outs[0].len(), s.model.graph.senders.len());
        let want = plain_loss(&task, &s.pairs.clean, &lg);
        // the plain neuron loop is the plain model, and the graph forward is both
        let (_, lg0) = plain_batch(&w, &s.pairs.clean, t, ONE, None);
        assert!(common::close(
            plain_loss(&task, &s.pairs.clean, &lg0),
            want,
            1e-9
        ));
        assert!(
            common::close(s.full.loss, want, 1e-9),
            "{} vs {want}",
            s.full.loss
        );
        // ... and neuron outputs are the plain loop's
        let got: Vec<f64> = s.clean_outs[5].flatten_all().unwrap().to_vec1().unwrap();
        let want5: Vec<f64> = outs.iter().flat_map(|o| o[5].concat()).collect();
        assert!(got.iter().zip(&want5).all(|(a, b)| (a - b).abs() < 1e-9));
    }
}

#[test]
fn neuron_path_patching_matches_the_frozen_loop() {
    let w = mlp_model(2);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = neuron_setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    let (clean_outs, _) = plain_batch_n(&w, &s.pairs.clean, t, ONE, None, true);
    let (corr_outs, _) = plain_batch_n(&w, &s.pairs.corrupted, t, ONE, None, true);
    // every edge out of a neuron, and some others
    let edges: Vec<usize> = (0..g.edges.len())
        .filter(|&e| e % 5 == 0 || g.edges[e].name.starts_with("L0N"))
        .step_by(2)
        .collect();
    for (dir, base, alt) in [
        (PatchDirection::Denoising, &s.pairs.corrupted, &clean_outs),
        (PatchDirection::Noising, &s.pairs.clean, &corr_outs),
    ] {
        let got = path_patching(&s, &edges, dir).unwrap();
        let (_, lg) = plain_batch_n(&w, base, t, ONE, Some(alt), true);
        let b0 = plain_loss(&task, &s.pairs.clean, &lg);
        assert!(common::close(got.base, b0, 1e-9), "{dir:?}");
        for (i, &e) in edges.iter().enumerate() {
            let m = one_edge(g, e, 0.0, 1.0);
            let (_, lg) = plain_batch_n(&w, base, t, &m, Some(alt), true);
            let want = plain_loss(&task, &s.pairs.clean, &lg) - b0;
            let d = got.effects[i];
            assert!(
                (d - want).abs() < 1e-9,
                "{dir:?} {}: {d} vs {want}",
                g.edges[e].name
            );
        }
    }
}

/// The edges from MLP `l`'s neurons (neuron graph `gn`) into the receiver named `into`, and
/// the MLP's edge into it in the graph `g` without neurons.
fn group(gn: &Graph, g: &Graph, l: usize, into: &str) -> (Vec<usize>, usize) {
    let r = gn.receivers.iter().position(|x| x.name == into).unwrap();
    let es = gn
        .neuron_senders(l)
        .iter()
        .map(|&sd| gn.edge(sd, r).unwrap())
        .collect();
    (es, g.edge_named(&format!("MLP{l} → {into}")).unwrap())
}

#[test]
fn a_neuron_group_is_its_mlp_edge() {
    // patching every neuron edge of an MLP into a receiver = patching the MLP's edge, and EAP
    // (and EAP-IG, whose uniform masks run the same model) of the neuron edges sums to the
    // MLP edge's, by linearity of the receiver's input in the edges
    let w = mlp_model(8);
    let sn = neuron_setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let s = setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let (gn, g) = (&sn.model.graph, &s.model.graph);
    let eap = [0, 2].map(|k| {
        (
            edge_attribution(&sn, k).unwrap(),
            edge_attribution(&s, k).unwrap(),
        )
    });
    for (l, into) in [
        (0, "L1H0.q"),
        (0, "L1H1.v"),
        (0, "MLP1"),
        (0, "logits"),
        (1, "logits"),
    ] {
        let (es, e) = group(gn, g, l, into);
        let mut cn = Circuit::full(gn);
        es.iter().for_each(|&x| cn.edges[x] = false);
        let mut c = Circuit::full(g);
        c.edges[e] = false;
        let a = sn.metric_at(&sn.model.mask(&cn).unwrap()).unwrap();
        let b = s.metric_at(&s.model.mask(&c).unwrap()).unwrap();
        assert!(common::close(a, b, 1e-9), "MLP{l} → {into}: {a} vs {b}");
        let p = path_patching(&s, &[e], PatchDirection::Noising).unwrap();
        assert!(common::close(a - s.full.loss, p.effects[0], 1e-9));
        for (an, a) in &eap {
            let sum: f64 = es.iter().map(|&x| an.edges[x]).sum();
            assert!(
                (sum - a.edges[e]).abs() < 1e-9 * (1.0 + sum.abs()),
                "k {} MLP{l} → {into}: {sum} vs {}",
                a.ig_steps,
                a.edges[e]
            );
        }
    }
}

#[test]
fn neuron_eap_matches_finite_differences() {
    let w = mlp_model(4);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = neuron_setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    let (corr_outs, _) = plain_batch_n(&w, &s.pairs.corrupted, t, ONE, None, true);
    for (k, at) in [(0, 1.0), (1, 0.5)] {
        let a = edge_attribution(&s, k).unwrap();
        let h = 1e-5;
        for e in (0..g.edges.len()).step_by(7) {
            let f = |v: f64| {
                let m = one_edge(g, e, v, at);
                let (_, lg) = plain_batch_n(&w, &s.pairs.clean, t, &m, Some(&corr_outs), true);
                plain_loss(&task, &s.pairs.clean, &lg)
            };
            let fd = (f(at + h) - f(at - h)) / (2.0 * h);
            let got = -a.edges[e];
            assert!(
                (got - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "k {k} {}: {got} vs {fd}",
                g.edges[e].name
            );
        }
    }
}

#[test]
fn neuron_graph_invariants() {
    let w = mlp_model(6);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = neuron_setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    // every edge ablated is the corrupted run, every edge patched into it the clean run
    let (_, lg) = plain_batch(&w, &s.pairs.corrupted, t, ONE, None);
    let corrupted = plain_loss(&task, &s.pairs.clean, &lg);
    let none = s
        .metric_at(&s.model.mask(&Circuit::empty(g)).unwrap())
        .unwrap();
    assert!(
        common::close(none, corrupted, 1e-9),
        "{none} vs {corrupted}"
    );
    let zero = s.model.uniform_mask(0.0).unwrap();
    let run = s
        .model
        .run(&s.pairs.corrupted, 4, &zero, Some(&s.clean_outs))
        .unwrap();
    let v = s.value(&run.logits).unwrap().to_scalar::<f64>().unwrap();
    assert!(common::close(v, s.full.loss, 1e-9));
    // the whole neuron graph is faithful; keeping every neuron is the whole graph
    for c in [
        Circuit::full(g),
        keep_neurons(g, 1, &(0..12).collect::<Vec<_>>()).unwrap(),
    ] {
        let f = faithfulness(&s, &c).unwrap();
        assert!((f.loss_recovered - 1.0).abs() < 1e-9 && f.complement_loss_recovered.abs() < 1e-9);
    }
}

#[test]
fn keeping_neurons_is_the_plain_loop_without_the_others() {
    let w = mlp_model(9);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = neuron_setup(&w, CircuitMetric::Kl, EdgeAblation::Mean);
    let g = &s.model.graph;
    let c = keep_neurons(g, 0, &[1, 4, 7]).unwrap();
    let ns = g.neuron_senders(0);
    let dropped = |sd: usize| ns.contains(&sd) && ![1, 4, 7].contains(&(sd - ns[0]));
    for (e, edge) in g.edges.iter().enumerate() {
        assert_eq!(c.edges[e], !dropped(edge.sender), "{}", edge.name);
    }
    // against the plain loop with mean ablation of the dropped neurons
    let s_loss = neuron_setup(&w, CircuitMetric::Loss, EdgeAblation::Mean);
    let (clean, _) = plain_batch_n(&w, &s.pairs.clean, t, ONE, None, true);
    let bsz = clean.len();
    let mean: Vec<Mat> = (0..clean[0].len())
        .map(|sd| {
            (0..t)
                .map(|i| {
                    (0..w.cfg.d_model)
                        .map(|k| clean.iter().map(|o| o[sd][i][k]).sum::<f64>() / bsz as f64)
                        .collect()
                })
                .collect()
        })
        .collect();
    let m = |r: usize, sd: usize| f64::from(u8::from(c.edges[g.edge(sd, r).unwrap()]));
    let (_, lg) = plain_batch_n(&w, &s.pairs.clean, t, &m, Some(&vec![mean; bsz]), true);
    let want = plain_loss(&task, &s.pairs.clean, &lg);
    let got = s_loss.metric_at(&s_loss.model.mask(&c).unwrap()).unwrap();
    assert!(common::close(got, want, 1e-9), "{got} vs {want}");
    // errors: a neuron outside the MLP, a graph without neurons
    assert!(keep_neurons(g, 0, &[12]).is_err());
    let plain_g = Graph::new(2, 2, true, false);
    assert!(keep_neurons(&plain_g, 0, &[0]).is_err());
    assert!(neuron_ranking(&plain_g, 0, &vec![0.0; plain_g.edges.len()]).is_err());
    assert!(neuron_ranking(g, 0, &[0.0]).is_err());
}

#[test]
fn neuron_ranking_and_neuron_acdc() {
    let w = mlp_model(10);
    let task = common::small_sort();
    let t = task.seq_len();
    let s = neuron_setup(&w, CircuitMetric::Loss, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    // a neuron's score is the sum of its edges' EAP estimates; the order sorts |score|
    let a = edge_attribution(&s, 0).unwrap();
    let r = rank_neurons(&s, 1, 0).unwrap();
    for (n, &sd) in g.neuron_senders(1).iter().enumerate() {
        assert!((r.scores[n] - a.nodes[sd]).abs() < 1e-12);
    }
    assert!(r
        .order
        .windows(2)
        .all(|p| r.scores[p[0]].abs() >= r.scores[p[1]].abs()));
    // ACDC over neurons: the first neuron tried (the last of MLP1) scores the plain loop's
    // loss change when all its edges go; a huge threshold drops every neuron
    let (c, scores, runs) = acdc_neurons(&s, &Circuit::full(g), 1e9).unwrap();
    assert_eq!(runs, 1 + 24);
    let last = *g.neuron_senders(1).last().unwrap();
    let (corr, _) = plain_batch_n(&w, &s.pairs.corrupted, t, ONE, None, true);
    let m = |_: usize, sd: usize| if sd == last { 0.0 } else { 1.0 };
    let (_, lg) = plain_batch_n(&w, &s.pairs.clean, t, &m, Some(&corr), true);
    let want = plain_loss(&task, &s.pairs.clean, &lg) - s.full.loss;
    assert!(
        common::close(scores[last], want, 1e-9),
        "{} vs {want}",
        scores[last]
    );
    let mut none = keep_neurons(g, 0, &[]).unwrap();
    let c1 = keep_neurons(g, 1, &[]).unwrap();
    none.edges
        .iter_mut()
        .zip(&c1.edges)
        .for_each(|(x, y)| *x &= y);
    g.prune_dangling(&mut none);
    assert_eq!(c, none);
    assert!(
        names(g, &c).iter().all(|e| !e.contains("MLP")),
        "{:?}",
        names(g, &c)
    );
    // threshold 0 drops every neuron whose removal did not make the loss worse
    let (c0, sc0, _) = acdc_neurons(&s, &Circuit::full(g), 0.0).unwrap();
    let all: Vec<usize> = g
        .neuron_senders(0)
        .into_iter()
        .chain(g.neuron_senders(1))
        .collect();
    let kept: Vec<bool> = all
        .iter()
        .map(|&sd| g.edges_from(sd).iter().any(|&e| c0.edges[e]))
        .collect();
    for (&sd, &k) in all.iter().zip(&kept) {
        assert!(!k || sc0[sd] >= 0.0, "{}", g.nodes[g.senders[sd]].name);
    }
    assert!(
        kept.iter().any(|&k| k) && kept.iter().any(|&k| !k),
        "{kept:?}"
    );
}

#[test]
fn edge_acdc_on_the_neuron_graph_tries_an_mlp_input_while_a_neuron_sends() {
    // an MLP node sends through its neurons: its input edges are tried (scored by a run),
    // not dropped as dead, as long as one of its neurons keeps an edge out
    let w = mlp_model(11);
    let s = neuron_setup(&w, CircuitMetric::Kl, EdgeAblation::Corrupted);
    let g = &s.model.graph;
    let d = discover(&s, Method::Acdc, Select::Threshold(0.0), 1).unwrap();
    for l in 0..2 {
        let sends = g
            .neuron_senders(l)
            .iter()
            .any(|&sd| g.edges_from(sd).iter().any(|&e| d.circuit.edges[e]));
        let into: Vec<usize> = (0..g.edges.len())
            .filter(|&e| g.receivers[g.edges[e].receiver].name == format!("MLP{l}"))
            .collect();
        if sends {
            assert!(into.iter().any(|&e| d.scores[e] != 0.0), "MLP{l}");
        } else {
            assert!(into.iter().all(|&e| !d.circuit.edges[e]), "MLP{l}");
        }
    }
    let f = faithfulness(&s, &d.circuit).unwrap();
    assert!(f.metric_recovered > 0.5, "{f:?}");
}

#[test]
fn mod_sub_answer_is_spread_over_many_mlp0_neurons() {
    // the shared grokked modular-subtraction model (1L 2H, d_mlp 512): ranking MLP0's
    // neurons by EAP-IG, a few carry little alone and many are redundant; the top 200
    // carry (nearly) all of it. The kept-neuron model's loss is checked against the plain loop
    let task = TaskSpec::default_for("mod-sub").unwrap();
    let w =
        toyformer::io::load_weights(&common::shared("modular_subtraction_model.pt"), None).unwrap();
    let w = task.fit_context(w).unwrap();
    let pairs = default_pairs(&task, 16, 0).unwrap();
    let (m, ab, opts) = (
        CircuitMetric::Loss,
        EdgeAblation::Corrupted,
        GraphOptions { neurons: true },
    );
    let s = CircuitSetup::with_graph(&w, &task, pairs, m, ab, DType::F32, opts).unwrap();
    let g = &s.model.graph;
    assert_eq!((g.senders.len(), g.edges.len()), (516, 532));
    let r = rank_neurons(&s, 0, 2).unwrap();
    let rec = |keep: &[usize]| {
        let c = keep_neurons(g, 0, keep).unwrap();
        faithfulness(&s, &c).unwrap().loss_recovered
    };
    let (top10, top200, without10) = (
        rec(&r.order[..10]),
        rec(&r.order[..200]),
        rec(&r.order[10..]),
    );
    eprintln!(
        "mod-sub MLP0: top 10 {top10:.3}, top 200 {top200:.3}, all but the top 10 {without10:.3}"
    );
    assert!(top10 < 0.5, "{top10}");
    assert!(top200 >= 0.95, "{top200}");
    assert!(without10 >= 0.9, "{without10}");
    // the top-20 model against the plain loop with the other neurons' edges carrying the
    // corrupted run's outputs
    let keep = keep_neurons(g, 0, &r.order[..20]).unwrap();
    let t = task.seq_len();
    let (corr, _) = plain_batch_n(&w, &s.pairs.corrupted, t, ONE, None, true);
    let mk = |rr: usize, sd: usize| f64::from(u8::from(keep.edges[g.edge(sd, rr).unwrap()]));
    let (_, lg) = plain_batch_n(&w, &s.pairs.clean, t, &mk, Some(&corr), true);
    let want = plain_loss(&task, &s.pairs.clean, &lg);
    let got = s.metric_at(&s.model.mask(&keep).unwrap()).unwrap();
    assert!(common::close(got, want, 1e-3), "{got} vs {want}");
}
