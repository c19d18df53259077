//! Head-type scores (interp::head_types) on hand-built heads whose type is known, and
//! against the plain-loop forward's attention patterns on random models.
use crate::common;

use toyformer::interp::head_types::{self, HeadTypeScore};
use toyformer::model::{ModelConfig, Weights};

const N: usize = 10; // half length: T = 2N
const V: usize = 200; // tokens (chance repeats within a half are rare)

/// Layer 0: a previous-token head that writes the attended token's identity into its own
/// subspace; layer 1 (when `layers` = 2): an induction head whose query is the current
/// token and whose key is that previous-token identity. Residual dims: positions 0..T
/// (one-hot W_pos), tokens T..T+V (one-hot W_E), previous token T+V..T+2V.
fn hand_built(layers: usize) -> Weights {
    let t = 2 * N;
    let c = t + 2 * V;
    let cfg = ModelConfig {
        n_layers: layers,
        n_heads: 1,
        d_model: c,
        d_head: c,
        n_ctx: t,
        d_vocab: V,
        d_vocab_out: V,
        ..ModelConfig::sort_ref()
    };
    let mut w = Weights::zeros(&cfg).unwrap();
    let s = 30.0 * (c as f32).sqrt();
    let set = |w: &mut Weights, name: &str, r: usize, col: usize, v: f32| {
        let cols = if name == "unembed.W_U" { V } else { c };
        w.get_mut(name).unwrap()[r * cols + col] = v;
    };
    for i in 0..t {
        set(&mut w, "pos_embed.W_pos", i, i, 1.0);
        set(&mut w, "blocks.0.attn.W_Q", i, i, s);
        if i + 1 < t {
            set(&mut w, "blocks.0.attn.W_K", i, i + 1, 1.0);
        }
    }
    for tok in 0..V {
        set(&mut w, "embed.W_E", tok, t + tok, 1.0);
        set(&mut w, "blocks.0.attn.W_V", t + tok, t + tok, 1.0);
        set(&mut w, "blocks.0.attn.W_O", t + tok, t + V + tok, 1.0);
        set(&mut w, "unembed.W_U", t + tok, tok, 1.0);
        if layers == 2 {
            set(&mut w, "blocks.1.attn.W_Q", t + tok, tok, s);
            set(&mut w, "blocks.1.attn.W_K", t + V + tok, tok, 1.0);
        }
    }
    w
}

fn scores(w: &Weights) -> Vec<HeadTypeScore> {
    head_types::head_type_scores(w, 0..V, None, 16, 3).unwrap()
}

#[test]
fn hand_built_previous_token_head() {
    let s = scores(&hand_built(1));
    assert_eq!(s.len(), 1);
    assert!(s[0].previous_token > 0.99, "{s:?}");
    assert!(s[0].induction < 0.05, "{s:?}");
    assert!(s[0].duplicate_token < 0.05, "{s:?}");
}

#[test]
fn hand_built_induction_pair() {
    let w = hand_built(2);
    let s = scores(&w);
    assert!(s[0].previous_token > 0.99, "{s:?}");
    // the induction head: position N also matches key 0 (which attends to itself and so
    // carries x[0] = x[N]); chance repeats of a token within a half take a little more
    assert!(s[1].induction > 0.85, "{s:?}");
    assert!(s[1].previous_token < 0.2, "{s:?}");
    assert!(s[1].duplicate_token < 0.1, "{s:?}");
    let paths = head_types::induction_paths(&w, 0..V).unwrap();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].diagonal_fraction, 1.0);
    assert!(paths[0].k_composition > 0.0);
    assert!(head_types::induction_paths(&hand_built(1), 0..V)
        .unwrap()
        .is_empty());
}

#[test]
fn repeated_tokens_repeat() {
    let t = head_types::repeated_tokens(3..9, None, 9, 5, 1).unwrap();
    assert_eq!(t.len(), 5 * 8);
    for s in t.chunks(8) {
        assert_eq!(s[..4], s[4..]);
        assert!(s.iter().all(|&x| (3..9).contains(&x)));
    }
    let t = head_types::repeated_tokens(3..9, Some(20), 9, 2, 1).unwrap();
    assert_eq!(t.len(), 2 * 9);
    assert!(t[0] == 20 && t[1..5] == t[5..9]);
    assert!(head_types::repeated_tokens(0..5, None, 3, 1, 0).is_err());
    assert!(head_types::repeated_tokens(0..0, None, 8, 1, 0).is_err());
}

#[test]
fn scores_match_plain_loop_patterns() {
    for (ln, mlp, seed, prefix) in [(false, false, 1, None), (true, true, 2, Some(7))] {
        let w = common::random_model(2, 2, ln, mlp, true, seed);
        let got = head_types::head_type_scores(&w, 0..6, prefix, 4, 9).unwrap();
        let tokens = head_types::repeated_tokens(0..6, prefix, 8, 4, 9).unwrap();
        let s = prefix.is_some() as usize;
        let n = (8 - s) / 2;
        let t = s + 2 * n;
        for g in &got {
            let (mut prev, mut dup, mut ind) = (0.0, 0.0, 0.0);
            for seq in tokens.chunks(t) {
                let a = &common::forward(&w, seq).pattern[g.layer][g.head];
                for i in s + 1..t {
                    prev += a[i][i - 1] / (t - s - 1) as f64 / 4.0;
                }
                for i in s + n..t {
                    dup += a[i][i - n] / n as f64 / 4.0;
                    ind += a[i][i - n + 1] / n as f64 / 4.0;
                }
            }
            for (x, y) in [
                (g.previous_token, prev),
                (g.duplicate_token, dup),
                (g.induction, ind),
            ] {
                assert!((x - y).abs() < 1e-4, "{g:?}: {x} vs {y}");
            }
        }
    }
}
