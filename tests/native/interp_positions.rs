//! The weight-based analyses on shortformer and positions-off models (W_pos enters only the
//! query and key inputs of every layer, or nowhere), each against the activations of the
//! reference forward: weight processing keeps the logits, the QK circuit terms and the score
//! decomposition sum to `hook_attn_scores`, and DLA components and paths sum to the logits.
use crate::common;

use common::*;
use toyformer::interp::attention::{decompose_scores, Part};
use toyformer::interp::circuits::{full_ov_path, full_qk_path, Embed, Path};
use toyformer::interp::dla::direct_logit_attribution;
use toyformer::interp::mat::Mat;
use toyformer::interp::process::process_weights;
use toyformer::interp::{act_name, run_with_cache, ActivationCache};
use toyformer::model::{Positions, Weights};
use toyformer::reference::ReferenceBackend;

const B: usize = 4;

/// A random model (see common::random_model) with positions `pos`; W_pos zero when off.
fn model(kind: (usize, usize, bool, bool, bool), seed: u64, pos: Positions) -> Weights {
    let (nl, nh, ln, mlp, bias) = kind;
    let mut w = random_model(nl, nh, ln, mlp, bias, seed);
    w.cfg.positional_embedding_type = pos;
    if pos == Positions::Off {
        w.get_mut("pos_embed.W_pos").unwrap().fill(0.0);
    }
    w
}

fn cache(w: &Weights, tokens: &[u32]) -> ActivationCache {
    run_with_cache(&ReferenceBackend::for_inference(w).unwrap(), tokens, B).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
}

/// (T, T) the cached scores of head (l, h) on sequence b (−∞ above the diagonal).
fn hook_scores(c: &ActivationCache, b: usize, l: usize, h: usize) -> Vec<f32> {
    let s = c.get(&act_name("attn_scores", l)).unwrap(); // (B, NH, T, T)
    let (nh, t) = (s.shape[1], s.shape[2]);
    s.data[((b * nh + h) * t) * t..][..t * t].to_vec()
}

const KINDS: [(usize, usize, bool, bool, bool); 4] = [
    // (layers, heads, LN, MLP, biases)
    (1, 2, false, false, false),
    (2, 2, false, false, true),
    (2, 2, true, true, true),
    (2, 1, true, false, false),
];

#[test]
fn processing_a_shortformer_model_keeps_its_logits() {
    // TL's fold_ln would fold ln1 into W_Q and W_K and centre W_pos, which changes the
    // W_pos term of the queries and keys of a shortformer model.
    let tokens = small_sort().batch(2, 0, B);
    for (i, &kind) in KINDS.iter().enumerate() {
        let w = model(kind, 70 + i as u64, Positions::Shortformer);
        let (a, b) = (
            cache(&w, &tokens),
            cache(&process_weights(&w).unwrap(), &tokens),
        );
        let d = max_diff(&a.logits.data, &b.logits.data);
        assert!(d < 1e-4, "kind {i}: processed logits differ by {d}");
    }
}

#[test]
fn score_decomposition_sums_to_the_hook_scores() {
    let tokens = small_sort().batch(4, 0, B);
    for pos in [Positions::Shortformer, Positions::Off] {
        for (i, &kind) in KINDS.iter().enumerate() {
            let pw = process_weights(&model(kind, 80 + i as u64, pos)).unwrap();
            let c = cache(&pw, &tokens);
            let t = c.seq_len;
            for l in 0..kind.0 {
                for h in 0..kind.1 {
                    let d = decompose_scores(&pw, &c, 1, l, h).unwrap();
                    let total = d.total().unwrap();
                    let want = hook_scores(&c, 1, l, h);
                    for q in 0..t {
                        for k in 0..=q {
                            let (got, w) = (total.at(q, k) as f64, want[q * t + k] as f64);
                            assert!(
                                close(got, w, 1e-4),
                                "{pos:?} kind {i} L{l}H{h} ({q},{k}): {got} vs {w}"
                            );
                        }
                    }
                    let pp = d.term(Part::Pos, Part::Pos).unwrap();
                    pos_pos_by_hand(&pw, l, h, pp, pos);
                }
            }
        }
    }
}

/// The pos·pos term is (W_pos[i] W_Q)·(W_pos[j] W_K) / sqrt(d_head) in every layer for a
/// shortformer model (W_pos is added after ln1, so no scale or gain), zero when off.
fn pos_pos_by_hand(pw: &Weights, l: usize, h: usize, pp: &Mat, pos: Positions) {
    let (c, hs) = (pw.cfg.d_model, pw.cfg.d_head);
    let wp = pw.get("pos_embed.W_pos").unwrap();
    let proj = |name: &str, i: usize| -> Vec<f64> {
        let m = pw.get(&format!("blocks.{l}.attn.{name}")).unwrap();
        (0..hs)
            .map(|a| {
                (0..c)
                    .map(|r| wp[i * c + r] as f64 * m[(h * c + r) * hs + a] as f64)
                    .sum()
            })
            .collect()
    };
    for i in 0..pp.rows {
        for j in 0..=i {
            let (q, k) = (proj("W_Q", i), proj("W_K", j));
            let want = q.iter().zip(&k).map(|(a, b)| a * b).sum::<f64>() / (hs as f64).sqrt();
            assert!(close(pp.at(i, j) as f64, want, 1e-4), "pos·pos ({i},{j})");
            if pos == Positions::Off {
                assert_eq!(pp.at(i, j), 0.0);
            }
        }
    }
}

/// Coefficients over the rows of [W_E; W_pos] of what a path delivers at position i:
/// the direct path e_tok(i) + e_pos(i); through head (0, h) Σ_m A[i, m] (e_tok(m) + e_pos(m)).
fn coefs(c: &ActivationCache, pw: &Weights, through: Option<usize>, i: usize) -> Vec<f64> {
    let (v, t) = (pw.cfg.d_vocab, c.seq_len);
    let mut out = vec![0.0; v + pw.cfg.n_ctx];
    let tok = |m: usize| c.tokens[t + m] as usize; // sequence 1
    match through {
        None => {
            out[tok(i)] += 1.0;
            out[v + i] += 1.0;
        }
        Some(h) => {
            let a = c.pattern(1, 0, h).unwrap();
            for m in 0..=i {
                out[tok(m)] += a.at(i, m) as f64;
                out[v + m] += a.at(i, m) as f64;
            }
        }
    }
    out
}

#[test]
fn qk_circuits_through_layer_0_predict_the_layer_1_scores() {
    // 2 layers, attention-only, no LN, no biases: the layer-1 query and key inputs are the
    // direct embeddings plus what each layer-0 head moved, so the scores are the sum over
    // (query path, key path) of the full QK circuits on [W_E; W_pos], weighted by where the
    // tokens and positions are. Positions moved by a head must count zero (values carry no
    // W_pos), and W_pos itself must enter the layer-1 query and key directly.
    let tokens = small_sort().batch(6, 0, B);
    for pos in [Positions::Shortformer, Positions::Off] {
        let w = model((2, 2, false, false, false), 90, pos);
        let c = cache(&w, &tokens);
        let paths: Vec<Option<usize>> = vec![None, Some(0), Some(1)];
        let path = |p: &Option<usize>| Path {
            embed: Embed::Both,
            through: p.map(|h| vec![(0, h)]).unwrap_or_default(),
        };
        for h in 0..2 {
            let want = hook_scores(&c, 1, 1, h);
            let t = c.seq_len;
            for q in 0..t {
                for k in 0..=q {
                    let mut s = 0.0;
                    for pq in &paths {
                        for pk in &paths {
                            let m = full_qk_path(&w, 1, h, &path(pq), &path(pk)).unwrap();
                            let (cq, ck) = (coefs(&c, &w, *pq, q), coefs(&c, &w, *pk, k));
                            for (r, x) in cq.iter().enumerate().filter(|(_, x)| **x != 0.0) {
                                for (r2, y) in ck.iter().enumerate().filter(|(_, y)| **y != 0.0) {
                                    s += x * y * m.at(r, r2) as f64;
                                }
                            }
                        }
                    }
                    let wv = want[q * t + k] as f64;
                    assert!(
                        close(s, wv, 1e-4),
                        "{pos:?} L1H{h} ({q},{k}): circuits {s} vs hook {wv}"
                    );
                }
            }
        }
    }
}

#[test]
fn positions_have_no_ov_circuit_and_no_path_through_a_head() {
    for pos in [Positions::Shortformer, Positions::Off] {
        let w = model((2, 2, false, false, false), 91, pos);
        let through = Path {
            embed: Embed::Pos,
            through: vec![(0, 1)],
        };
        let ov = full_ov_path(&w, &through).unwrap();
        assert!(
            ov.data.iter().all(|&x| x == 0.0),
            "{pos:?}: W_pos OV not zero"
        );
        let direct = Path::direct(Embed::Pos);
        let qk = full_qk_path(&w, 1, 0, &through, &direct).unwrap();
        assert!(
            qk.data.iter().all(|&x| x == 0.0),
            "{pos:?}: W_pos·L0H1 QK not zero"
        );
        let pp = full_qk_path(&w, 1, 0, &direct, &direct).unwrap();
        let nonzero = pp.data.iter().any(|&x| x != 0.0);
        assert_eq!(
            nonzero,
            pos == Positions::Shortformer,
            "{pos:?}: layer-1 pos·pos"
        );
    }
}

#[test]
fn dla_components_and_paths_sum_to_the_logits() {
    let task = small_sort();
    let tokens = task.batch(3, 0, B);
    for pos in [Positions::Shortformer, Positions::Off] {
        for (i, &kind) in KINDS.iter().enumerate() {
            let w = model(kind, 100 + i as u64, pos);
            let raw = cache(&w, &tokens); // the unprocessed model's logits
            let t = raw.seq_len;
            let (mut want, mut n) = (0.0, 0.0);
            for b in 0..B {
                for p in task.pred_positions() {
                    let tg = raw.tokens[b * t + p + 1] as usize;
                    want += raw.logits.data[(b * t + p) * w.cfg.d_vocab_out + tg] as f64;
                    n += 1.0;
                }
            }
            want /= n;
            let pw = process_weights(&w).unwrap();
            let r = direct_logit_attribution(&pw, &task, &cache(&pw, &tokens)).unwrap();
            let comp: f64 = r.components.iter().map(|a| a.mean).sum();
            let paths: f64 = r.paths.iter().map(|a| a.mean).sum();
            assert!(
                close(comp, want, 1e-4),
                "{pos:?} kind {i}: Σ components {comp} vs {want}"
            );
            assert!(
                close(paths, want, 1e-4),
                "{pos:?} kind {i}: Σ paths {paths} vs {want}"
            );
            assert!(
                r.get("pos_embed").is_none(),
                "{pos:?}: pos_embed is not in the residual"
            );
            assert!(r.paths.iter().all(|a| !a.label.starts_with("pos_embed")));
        }
    }
}

#[test]
fn ln_shortformer_qk_circuits_with_the_cached_scales_give_the_scores() {
    // 1 layer with LayerNorm, no biases: the query input at i is ln1(x_i) + W_pos[i] with
    // ln1(x_i) = W_E[tok_i] (centred) / s_i ⊙ gain, so the score is tok·tok / (s_i s_j) +
    // tok·pos / s_i + pos·tok / s_j + pos·pos, on the circuits of the processed weights and
    // the scales and scores cached by the unprocessed model.
    let tokens = small_sort().batch(8, 0, B);
    let w = model((1, 2, true, false, false), 95, Positions::Shortformer);
    let c = cache(&w, &tokens);
    let pw = process_weights(&w).unwrap();
    let t = c.seq_len;
    for h in 0..2 {
        let blk =
            |q: Embed, k: Embed| toyformer::interp::circuits::full_qk(&pw, 0, h, q, k).unwrap();
        let (tt, tp) = (
            blk(Embed::Token, Embed::Token),
            blk(Embed::Token, Embed::Pos),
        );
        let (pt, pp) = (blk(Embed::Pos, Embed::Token), blk(Embed::Pos, Embed::Pos));
        let want = hook_scores(&c, 1, 0, h);
        for q in 0..t {
            for k in 0..=q {
                let (a, b) = (c.tokens[t + q] as usize, c.tokens[t + k] as usize);
                let (sq, sk) = (
                    c.ln_scale("blocks.0.ln1", 1, q) as f64,
                    c.ln_scale("blocks.0.ln1", 1, k) as f64,
                );
                let s = tt.at(a, b) as f64 / (sq * sk)
                    + tp.at(a, k) as f64 / sq
                    + pt.at(q, b) as f64 / sk
                    + pp.at(q, k) as f64;
                let wv = want[q * t + k] as f64;
                assert!(
                    close(s, wv, 1e-4),
                    "H{h} ({q},{k}): circuits {s} vs hook {wv}"
                );
            }
        }
    }
}

#[test]
fn workbench_views_of_a_shortformer_array_index_model() {
    // The page's views on the array-index default (2 layers, shortformer), narrowed: the
    // score decomposition softmaxes to the attention view's pattern in both layers, the
    // positional OV map is zero, and the DLA has no pos_embed entry.
    use toyformer::interp::workbench::{Workbench, WorkbenchOptions};
    let task = toyformer::tasks::TaskSpec::default_for("array-index").unwrap();
    let mut cfg = task.default_model();
    assert_eq!(cfg.positional_embedding_type, Positions::Shortformer);
    (cfg.d_model, cfg.d_head) = (16, 16);
    let w = Weights::init(&cfg).unwrap();
    let opts = WorkbenchOptions {
        samples: 16,
        ..Default::default()
    };
    let mut wb = Workbench::new(task, cfg, opts).unwrap();
    wb.add_snapshot(0, w.data.clone(), true).unwrap();
    wb.select(None).unwrap();
    let text = "7 3 9 | 1 42";
    let a = wb.attention(text).unwrap();
    for l in 0..2 {
        let d = wb.decomposition(text, l, 0).unwrap().total().unwrap();
        let p = &a.patterns[l][0];
        for i in 0..d.rows {
            let m = (0..=i).map(|j| d.at(i, j)).fold(f32::MIN, f32::max);
            let z: f64 = (0..=i).map(|j| ((d.at(i, j) - m) as f64).exp()).sum();
            for j in 0..=i {
                let want = ((d.at(i, j) - m) as f64).exp() / z;
                assert!(close(p.at(i, j) as f64, want, 1e-4), "L{l} ({i},{j})");
            }
        }
    }
    let ov = wb.ov(&[(0, 0)]).unwrap();
    assert!(ov.pos.data.iter().all(|&x| x == 0.0));
    assert!(ov.token.data.iter().any(|&x| x != 0.0));
    let r = wb.report().unwrap();
    assert!(r.dla.get("pos_embed").is_none());
}
