//! The hand-written f32 graph forward and mask backward (`interp::graph_fast`) against the
//! candle graph forward in f64 (forward outputs, logits, and autograd for the mask
//! gradient) and against a plain-loop f64 forward written here from the definitions (every
//! receiver's input summed edge by edge); every edge set to 0 and to 1 alone; EAP, EAP-IG
//! and faithfulness through `CircuitSetup` in f32 (fast path) against f64 (candle).
use crate::common;

use candle_core::{DType, Device, Tensor};
use toyformer::interp::attribution::edge_attribution;
use toyformer::interp::circuit_metric::{default_pairs, CircuitMetric, CircuitSetup, EdgeAblation};
use toyformer::interp::faithfulness::faithfulness;
use toyformer::interp::graph::Circuit;
use toyformer::interp::graph_fast::FastModel;
use toyformer::interp::graph_forward::GraphModel;
use toyformer::model::{ActFn, Positions, Weights};
use toyformer::rng::CounterRng;

/// |a − b| ≤ atol + rtol·max|b| everywhere, else the first bad index and both values.
fn check(what: &str, a: &[f64], b: &[f64], atol: f64, rtol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs()));
    if let Some(i) =
        (0..a.len()).find(|&i| (a[i] - b[i]).abs() > atol + rtol * scale || a[i].is_nan())
    {
        panic!(
            "{what}: first bad index {i}: fast {} vs reference {} (scale {scale})",
            a[i], b[i]
        );
    }
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Models covering the supported configs: attention-only without LN; LN + MLP + biases
/// with relu, gelu, solu; shortformer.
fn models() -> Vec<(&'static str, Weights)> {
    let base = || common::random_model(2, 2, true, true, true, 2);
    let with = |f: &dyn Fn(&mut Weights)| {
        let mut w = base();
        f(&mut w);
        w
    };
    vec![
        (
            "1L 1H attn-only",
            common::random_model(1, 1, false, false, false, 1),
        ),
        ("2L 2H LN MLP relu", base()),
        ("gelu", with(&|w| w.cfg.act_fn = Some(ActFn::Gelu))),
        ("solu", with(&|w| w.cfg.act_fn = Some(ActFn::Solu))),
        (
            "shortformer",
            with(&|w| w.cfg.positional_embedding_type = Positions::Shortformer),
        ),
    ]
}

/// Masks (R·S): all 1, all 0, random in [0, 1], then each edge alone at 0 (rest 1) and
/// alone at 1 (rest 0).
fn masks(gm: &GraphModel) -> Vec<(String, Vec<f64>)> {
    let g = &gm.graph;
    let (rn, sn) = (g.receivers.len(), g.senders.len());
    let mut rng = CounterRng::new(7, 1, 0);
    let mut out = vec![
        ("ones".to_string(), vec![1.0; rn * sn]),
        ("zeros".to_string(), vec![0.0; rn * sn]),
        (
            "random".to_string(),
            (0..rn * sn).map(|_| rng.uniform()).collect(),
        ),
    ];
    for (e, edge) in g.edges.iter().enumerate() {
        for v in [0.0, 1.0] {
            let mut m = vec![1.0 - v; rn * sn];
            m[edge.receiver * sn + edge.sender] = v;
            out.push((format!("edge {e} ({}) alone at {v}", edge.name), m));
        }
    }
    out
}

struct Case {
    w: Weights,
    gm: GraphModel,
    fm: FastModel,
    clean: Vec<u32>,
    b: usize,
    /// corrupted run's sender outputs, f64 tensors and f32 vectors
    alt: Vec<Tensor>,
    alt32: Vec<Vec<f32>>,
}

fn case(w: Weights) -> Case {
    let task = common::small_sort();
    let pairs = default_pairs(&task, 4, 3).unwrap();
    let preds = task.pred_positions();
    let gm = GraphModel::new(&w, &preds, DType::F64).unwrap();
    let fm = FastModel::new(&w, &preds, &gm.graph).expect("a node-level graph is supported");
    let ones = gm.uniform_mask(1.0).unwrap();
    let alt = gm.run(&pairs.corrupted, 4, &ones, None).unwrap().outs;
    let alt32 = alt
        .iter()
        .map(|a| f64s(a).iter().map(|&x| x as f32).collect())
        .collect();
    Case {
        w,
        gm,
        fm,
        clean: pairs.clean,
        b: pairs.batch,
        alt,
        alt32,
    }
}

#[test]
fn fast_forward_is_the_candle_graph_forward() {
    for (name, w) in models() {
        let k = case(w);
        let (rn, sn) = (k.gm.graph.receivers.len(), k.gm.graph.senders.len());
        for (what, m) in masks(&k.gm) {
            let mt = Tensor::from_slice(&m, (rn, sn), &Device::Cpu).unwrap();
            let want = k.gm.run(&k.clean, k.b, &mt, Some(&k.alt)).unwrap();
            let m32: Vec<f32> = m.iter().map(|&x| x as f32).collect();
            for full in [true, false] {
                let got =
                    k.fm.run(&k.clean, k.b, &m32, Some(&k.alt32), full, false)
                        .unwrap();
                let lg: Vec<f64> = got.logits.iter().map(|&x| x as f64).collect();
                check(
                    &format!("{name}, {what}, full {full}: logits"),
                    &lg,
                    &f64s(&want.logits),
                    1e-4,
                    1e-4,
                );
                if !full {
                    continue;
                }
                for (s, (o, r)) in got.outs.iter().zip(&want.outs).enumerate() {
                    if o.is_empty() {
                        // not computed: every edge out of it is off
                        assert!(
                            (0..rn).all(|r| s >= k.gm.graph.avail[r] || m[r * sn + s] == 0.0),
                            "{name}, {what}: sender {s} skipped"
                        );
                        continue;
                    }
                    let o: Vec<f64> = o.iter().map(|&x| x as f64).collect();
                    check(
                        &format!("{name}, {what}: sender {s} output"),
                        &o,
                        &f64s(r),
                        1e-4,
                        1e-4,
                    );
                }
            }
        }
    }
}

/// ∂metric/∂m of the candle graph forward in f64 by autograd, at mask `m`, per (r, s).
fn candle_mask_grad(k: &Case, s64: &CircuitSetup, m: &[f64]) -> Vec<f64> {
    let (rn, sn) = (k.gm.graph.receivers.len(), k.gm.graph.senders.len());
    let var = candle_core::Var::from_slice(m, (rn, sn), &Device::Cpu).unwrap();
    let lg =
        k.gm.run(&k.clean, k.b, var.as_tensor(), Some(&s64.alt))
            .unwrap()
            .logits;
    let grads = s64.value(&lg).unwrap().backward().unwrap();
    f64s(grads.get(var.as_tensor()).unwrap())
}

#[test]
fn fast_mask_gradient_is_candle_autograd() {
    let task = common::small_sort();
    for (name, w) in models() {
        let k = case(w.clone());
        let (rn, sn) = (k.gm.graph.receivers.len(), k.gm.graph.senders.len());
        for metric in [
            CircuitMetric::Kl,
            CircuitMetric::Loss,
            CircuitMetric::LogitDiff,
        ] {
            let pairs = default_pairs(&task, 4, 3).unwrap();
            let s64 = CircuitSetup::new(
                &w,
                &task,
                pairs,
                metric,
                EdgeAblation::Corrupted,
                DType::F64,
            )
            .unwrap();
            // uniform masks (EAP, EAP-IG) and a random one (the general path)
            let random: Vec<f64> = masks(&k.gm).swap_remove(2).1;
            for (alpha, m) in [
                ("1", vec![1.0; rn * sn]),
                ("0.3", vec![0.3; rn * sn]),
                ("random", random),
            ] {
                let want = candle_mask_grad(&k, &s64, &m);
                let m32: Vec<f32> = m.iter().map(|&x| x as f32).collect();
                let run =
                    k.fm.run(&k.clean, k.b, &m32, Some(&k.alt32), false, true)
                        .unwrap();
                let lg = Tensor::from_slice(
                    &run.logits,
                    (k.b, task.pred_positions().len(), w.cfg.d_vocab_out),
                    &Device::Cpu,
                );
                let var = candle_core::Var::from_tensor(&lg.unwrap().to_dtype(DType::F64).unwrap())
                    .unwrap();
                let grads = s64.value(var.as_tensor()).unwrap().backward().unwrap();
                let dl: Vec<f32> = f64s(grads.get(var.as_tensor()).unwrap())
                    .iter()
                    .map(|&x| x as f32)
                    .collect();
                let got = k.fm.mask_grad(&run, &m32, Some(&k.alt32), &dl).unwrap();
                let got: Vec<f64> = got.iter().map(|&x| x as f64).collect();
                check(
                    &format!("{name}, {metric:?}, alpha {alpha}: dmetric/dmask"),
                    &got,
                    &want,
                    1e-5,
                    2e-3,
                );
            }
        }
    }
}

fn setups(
    w: &Weights,
    metric: CircuitMetric,
    ablation: EdgeAblation,
) -> (CircuitSetup, CircuitSetup) {
    let task = common::small_sort();
    let mk = |dt| {
        CircuitSetup::new(
            w,
            &task,
            default_pairs(&task, 4, 3).unwrap(),
            metric,
            ablation,
            dt,
        )
        .unwrap()
    };
    let (s32, s64) = (mk(DType::F32), mk(DType::F64));
    assert!(
        s32.fast.is_some() && s64.fast.is_none(),
        "f32 takes the fast path, f64 candle"
    );
    (s32, s64)
}

#[test]
fn eap_eap_ig_and_faithfulness_on_the_fast_path_are_the_candle_ones() {
    let mut rng = CounterRng::new(11, 2, 0);
    for (name, w) in models() {
        for (metric, ablation) in [
            (CircuitMetric::Kl, EdgeAblation::Corrupted),
            (CircuitMetric::Loss, EdgeAblation::Mean),
            (CircuitMetric::LogitDiff, EdgeAblation::Resample),
        ] {
            let (s32, s64) = setups(&w, metric, ablation);
            let what = format!("{name}, {metric:?}, {ablation:?}");
            for k in [0, 3] {
                let (a, b) = (
                    edge_attribution(&s32, k).unwrap(),
                    edge_attribution(&s64, k).unwrap(),
                );
                check(
                    &format!("{what}: attribution k {k}"),
                    &a.edges,
                    &b.edges,
                    1e-5,
                    2e-3,
                );
            }
            let g = &s64.model.graph;
            let c = Circuit {
                edges: (0..g.edges.len()).map(|_| rng.uniform() < 0.4).collect(),
            };
            let (f, r) = (
                faithfulness(&s32, &c).unwrap(),
                faithfulness(&s64, &c).unwrap(),
            );
            for (x, y) in [
                (f.circuit, r.circuit),
                (f.complement, r.complement),
                (f.empty, r.empty),
                (f.full, r.full),
            ] {
                let (x, y) = ([x.loss, x.kl, x.logit_diff], [y.loss, y.kl, y.logit_diff]);
                check(&format!("{what}: faithfulness evals"), &x, &y, 1e-4, 1e-4);
            }
        }
    }
}

/// The plain edge-by-edge forward of one sequence (standard positions, relu MLPs): logits
/// (T, V) at every position. Edge s → r carries alt_s + m[r, s] (out_s − alt_s).
fn plain(w: &Weights, tokens: &[u32], m: &[f64], alt: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let cfg = &w.cfg;
    let (c, t, nh, hs) = (cfg.d_model, tokens.len(), cfg.n_heads, cfg.d_head);
    let get = |n: &str| -> Vec<f64> { w.get(n).unwrap().iter().map(|&x| x as f64).collect() };
    let norm = |x: &[f64], pre: &str| -> Vec<f64> {
        if cfg.normalization_type.is_none() {
            return x.to_vec();
        }
        let (g, b) = (get(&format!("{pre}.w")), get(&format!("{pre}.b")));
        let mu = x.iter().sum::<f64>() / c as f64;
        let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
        (0..c)
            .map(|i| (x[i] - mu) / (var + 1e-5).sqrt() * g[i] + b[i])
            .collect()
    };
    // x (C) · W (C, N) at column offset `off` of row stride `rs`, + bias
    let aff = |x: &[f64], w: &[f64], rs: usize, off: usize, n: usize| -> Vec<f64> {
        (0..n)
            .map(|j| (0..x.len()).map(|k| x[k] * w[k * rs + off + j]).sum())
            .collect()
    };
    let (we, wp) = (get("embed.W_E"), get("pos_embed.W_pos"));
    // outs[s][i]: sender s's output at position i (C)
    let mut outs: Vec<Vec<Vec<f64>>> = vec![
        tokens
            .iter()
            .map(|&x| we[x as usize * c..][..c].to_vec())
            .collect(),
        (0..t).map(|i| wp[i * c..][..c].to_vec()).collect(),
    ];
    let sn = m.len() / (cfg.n_layers * (3 * nh + usize::from(cfg.d_mlp.is_some())) + 1);
    let mut bias = vec![0.0; c];
    let mut r = 0;
    let input = |outs: &Vec<Vec<Vec<f64>>>, bias: &Vec<f64>, i: usize, r: usize| -> Vec<f64> {
        let mut x = bias.clone();
        for (s, o) in outs.iter().enumerate() {
            for k in 0..c {
                let a = alt[s][i * c + k];
                x[k] += a + m[r * sn + s] * (o[i][k] - a);
            }
        }
        x
    };
    for l in 0..cfg.n_layers {
        let p = |n: &str| get(&format!("blocks.{l}.attn.{n}"));
        let mut heads = Vec::new();
        for h in 0..nh {
            let qkv: Vec<Vec<Vec<f64>>> = ["Q", "K", "V"]
                .iter()
                .enumerate()
                .map(|(j, n)| {
                    let (wm, b) = (p(&format!("W_{n}")), p(&format!("b_{n}")));
                    (0..t)
                        .map(|i| {
                            let x = norm(
                                &input(&outs, &bias, i, r + 3 * h + j),
                                &format!("blocks.{l}.ln1"),
                            );
                            let y = aff(&x, &wm[h * c * hs..], hs, 0, hs);
                            y.iter().zip(&b[h * hs..]).map(|(y, b)| y + b).collect()
                        })
                        .collect()
                })
                .collect();
            let wo = p("W_O");
            let out: Vec<Vec<f64>> = (0..t)
                .map(|i| {
                    let sc: Vec<f64> = (0..=i)
                        .map(|j| {
                            (0..hs).map(|a| qkv[0][i][a] * qkv[1][j][a]).sum::<f64>()
                                / (hs as f64).sqrt()
                        })
                        .collect();
                    let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let den: f64 = sc.iter().map(|s| (s - mx).exp()).sum();
                    let z: Vec<f64> = (0..hs)
                        .map(|a| {
                            (0..=i)
                                .map(|j| (sc[j] - mx).exp() / den * qkv[2][j][a])
                                .sum()
                        })
                        .collect();
                    aff(&z, &wo[h * hs * c..], c, 0, c)
                })
                .collect();
            heads.push(out);
        }
        r += 3 * nh;
        outs.extend(heads);
        bias.iter_mut().zip(p("b_O")).for_each(|(a, b)| *a += b);
        if let Some(dm) = cfg.d_mlp {
            let q = |n: &str| get(&format!("blocks.{l}.mlp.{n}"));
            let out = (0..t)
                .map(|i| {
                    let x = norm(&input(&outs, &bias, i, r), &format!("blocks.{l}.ln2"));
                    let a: Vec<f64> = aff(&x, &q("W_in"), dm, 0, dm)
                        .iter()
                        .zip(q("b_in"))
                        .map(|(a, b)| (a + b).max(0.0))
                        .collect();
                    aff(&a, &q("W_out"), c, 0, c)
                })
                .collect();
            outs.push(out);
            r += 1;
            bias.iter_mut().zip(q("b_out")).for_each(|(a, b)| *a += b);
        }
    }
    let v = cfg.d_vocab_out;
    (0..t)
        .map(|i| {
            let x = norm(&input(&outs, &bias, i, r), "ln_final");
            aff(&x, &get("unembed.W_U"), v, 0, v)
                .iter()
                .zip(get("unembed.b_U"))
                .map(|(a, b)| a + b)
                .collect()
        })
        .collect()
}

#[test]
fn fast_forward_is_the_plain_loop() {
    let task = common::small_sort();
    let preds = task.pred_positions();
    for (name, w) in models().into_iter().take(2) {
        let k = case(w);
        let t = k.clean.len() / k.b;
        let c = k.w.cfg.d_model;
        for (what, m) in masks(&k.gm).into_iter().step_by(5) {
            let m32: Vec<f32> = m.iter().map(|&x| x as f32).collect();
            let got =
                k.fm.run(&k.clean, k.b, &m32, Some(&k.alt32), false, false)
                    .unwrap();
            let got: Vec<f64> = got.logits.iter().map(|&x| x as f64).collect();
            let mut want = Vec::new();
            for bi in 0..k.b {
                let alt: Vec<Vec<f64>> = k
                    .alt32
                    .iter()
                    .map(|a| {
                        a[bi * t * c..(bi + 1) * t * c]
                            .iter()
                            .map(|&x| x as f64)
                            .collect()
                    })
                    .collect();
                let lg = plain(&k.w, &k.clean[bi * t..(bi + 1) * t], &m, &alt);
                want.extend(preds.iter().flat_map(|&p| lg[p].clone()));
            }
            check(
                &format!("{name}, {what}: logits vs the plain loop"),
                &got,
                &want,
                1e-4,
                1e-4,
            );
        }
    }
}
