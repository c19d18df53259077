//! Where each parameter lives in the flat buffer, resolved once from the [`ParamTable`]
//! (the one table that lays out weights, gradients and both Adam moments).

use crate::model::{ModelConfig, ParamTable};
use std::ops::Range;

/// One block's parameters (ranges into the flat buffer).
#[derive(Clone, Debug)]
pub struct BlockLayout {
    /// ln1.w, ln1.b (C) when the model has LayerNorm.
    pub ln1: Option<(Range<usize>, Range<usize>)>,
    /// W_Q, W_K, W_V [NH, C, HS].
    pub w_qkv: [Range<usize>; 3],
    /// b_Q, b_K, b_V [NH, HS].
    pub b_qkv: [Range<usize>; 3],
    /// W_O [NH, HS, C].
    pub w_o: Range<usize>,
    /// b_O (C).
    pub b_o: Range<usize>,
    pub ln2: Option<(Range<usize>, Range<usize>)>,
    /// W_in (C, M), b_in (M), W_out (M, C), b_out (C) when the model has an MLP.
    pub mlp: Option<MlpLayout>,
}

#[derive(Clone, Debug)]
pub struct MlpLayout {
    pub w_in: Range<usize>,
    pub b_in: Range<usize>,
    pub w_out: Range<usize>,
    pub b_out: Range<usize>,
}

/// Every parameter of the model.
#[derive(Clone, Debug)]
pub struct Layout {
    /// W_E (d_vocab, C).
    pub w_e: Range<usize>,
    /// W_pos (n_ctx, C).
    pub w_pos: Range<usize>,
    pub blocks: Vec<BlockLayout>,
    pub ln_final: Option<(Range<usize>, Range<usize>)>,
    /// W_U (C, d_vocab_out), b_U (d_vocab_out).
    pub w_u: Range<usize>,
    pub b_u: Range<usize>,
}

impl Layout {
    pub fn new(cfg: &ModelConfig, table: &ParamTable) -> Self {
        // The table is built from the same config, so every name below is in it.
        let r = |name: &str| {
            let p = table
                .get(name)
                .unwrap_or_else(|| unreachable!("parameter {name} missing from its own table"));
            p.offset..p.offset + p.len
        };
        let ln = cfg.normalization_type.is_some();
        let pair = |pre: &str| ln.then(|| (r(&format!("{pre}.w")), r(&format!("{pre}.b"))));
        let blocks = (0..cfg.n_layers)
            .map(|l| {
                let a = |n: &str| r(&format!("blocks.{l}.attn.{n}"));
                BlockLayout {
                    ln1: pair(&format!("blocks.{l}.ln1")),
                    w_qkv: [a("W_Q"), a("W_K"), a("W_V")],
                    b_qkv: [a("b_Q"), a("b_K"), a("b_V")],
                    w_o: a("W_O"),
                    b_o: a("b_O"),
                    ln2: if cfg.d_mlp.is_some() {
                        pair(&format!("blocks.{l}.ln2"))
                    } else {
                        None
                    },
                    mlp: cfg.d_mlp.map(|_| {
                        let m = |n: &str| r(&format!("blocks.{l}.mlp.{n}"));
                        MlpLayout {
                            w_in: m("W_in"),
                            b_in: m("b_in"),
                            w_out: m("W_out"),
                            b_out: m("b_out"),
                        }
                    }),
                }
            })
            .collect();
        Layout {
            w_e: r("embed.W_E"),
            w_pos: r("pos_embed.W_pos"),
            blocks,
            ln_final: pair("ln_final"),
            w_u: r("unembed.W_U"),
            b_u: r("unembed.b_U"),
        }
    }
}

/// Disjoint mutable views of several parameters' gradients at once.
pub fn grads_mut<const N: usize>(grads: &mut [f32], ranges: [Range<usize>; N]) -> [&mut [f32]; N] {
    // Distinct parameters never overlap in the table.
    grads
        .get_disjoint_mut(ranges)
        .unwrap_or_else(|e| unreachable!("overlapping parameter ranges: {e}"))
}
