//! The CPU engine's forward pass: embedding, the layer loop, ln_final and the unembedding,
//! as a sequence of kernels over flat buffers. The last layer runs its queries, attention
//! output and MLP only at the rows asked for (the scored rows when training): nothing
//! else reaches the loss, so nothing else is computed.

use super::acts::{all_rows, gather_rows, size, BlockActs, EmbedTables, FinalActs, Shape};
use super::layout::{BlockLayout, Layout};
use crate::cpu::kernels::attention::{attention_forward, AttnDims};
use crate::cpu::kernels::embed::{embed_forward, embed_proj_forward, ProjDims};
use crate::cpu::kernels::layernorm::layernorm_forward;
use crate::cpu::kernels::matmul::{gemm, matmul_forward, Strided};
use crate::cpu::kernels::shortformer::{embed_tokens_forward, shortformer_forward};
use crate::cpu::kernels::{activation::activation_forward, add_into};
use crate::model::{ActFn, ModelConfig, Positions};
use std::ops::Range;

/// A read-only view of the model: config, layout and the flat parameters.
pub struct Model<'a> {
    pub cfg: &'a ModelConfig,
    pub lay: &'a Layout,
    /// (P,) every parameter, table order.
    pub p: &'a [f32],
    /// Frozen parameters that are exactly zero: adding them is skipped.
    pub zero: &'a [Range<usize>],
}

impl Model<'_> {
    pub fn w(&self, r: &Range<usize>) -> &[f32] {
        &self.p[r.clone()]
    }
    /// A bias, or `None` when it is a frozen zero.
    pub fn bias(&self, r: &Range<usize>) -> Option<&[f32]> {
        if self.zero.contains(r) {
            None
        } else {
            Some(&self.p[r.clone()])
        }
    }
    /// Whether W_pos joins the query and key inputs of every layer instead of the residual
    /// stream (TransformerLens's shortformer).
    pub fn shortformer(&self) -> bool {
        self.cfg.positional_embedding_type == Positions::Shortformer
    }
    /// Head `h` of a [NH, A, B] tensor, as a contiguous (A, B) slice.
    pub fn head(&self, r: &Range<usize>, h: usize) -> &[f32] {
        let n = r.len() / self.cfg.n_heads;
        &self.p[r.start + h * n..r.start + (h + 1) * n]
    }
}

/// Every activation of one forward pass.
#[derive(Default)]
pub struct Acts {
    pub blocks: Vec<BlockActs>,
    pub tables: EmbedTables,
    pub fin: FinalActs,
}

/// Runs the model on tokens (B, T): fills `acts` up to the logits (B, P, V) of the last
/// layer's rows.
pub fn forward(m: &Model, acts: &mut Acts, tokens: &[u32], s: &Shape) {
    let cfg = m.cfg;
    let (b, c) = (s.b, cfg.d_model);
    acts.blocks.resize_with(cfg.n_layers, Default::default);
    let a0 = &mut acts.blocks[0];
    size(&mut a0.inp, b * s.tk * c);
    let all: Vec<usize> = (0..s.tk).collect();
    if m.shortformer() {
        // the residual stream carries no positions
        embed_tokens_forward(&mut a0.inp, tokens, m.w(&m.lay.w_e), &all, b, s.t, c);
    } else {
        embed_forward(
            &mut a0.inp,
            tokens,
            m.w(&m.lay.w_e),
            m.w(&m.lay.w_pos),
            &all,
            b,
            s.t,
            c,
        );
    }
    for l in 0..cfg.n_layers {
        if l > 0 {
            let (below, here) = acts.blocks.split_at_mut(l);
            let prev = below[l - 1].output();
            size(&mut here[0].inp, prev.len());
            here[0].inp.copy_from_slice(prev);
        }
        block_forward(m, &mut acts.blocks[l], &mut acts.tables, tokens, s, l);
    }
    let last = &acts.blocks[cfg.n_layers - 1];
    final_forward(m, &mut acts.fin, last.output(), b * s.last_rows.len());
}

/// One layer: Q/K/V, attention and W_O into the residual, then the MLP.
fn block_forward(
    m: &Model,
    a: &mut BlockActs,
    tab: &mut EmbedTables,
    tokens: &[u32],
    s: &Shape,
    l: usize,
) {
    let cfg = m.cfg;
    let bl: &BlockLayout = &m.lay.blocks[l];
    let (b, tk, nh, hs) = (s.b, s.tk, cfg.n_heads, cfg.d_head);
    a.rows = s.rows(l, cfg.n_layers);
    let tq = a.rows.len();
    size(&mut a.q, nh * b * tq * hs);
    size(&mut a.k, nh * b * tk * hs);
    size(&mut a.v, nh * b * tk * hs);
    if l == 0 && s.factored {
        qkv_factored_forward(m, bl, a, tab, tokens, s);
    } else {
        qkv_forward(m, bl, a, s);
    }
    attn_out_forward(m, bl, a, s);
    mlp_forward(m, bl, a, b * tq);
}

/// Layer 0's Q/K/V without LayerNorm: gathered from (W_E W, W_pos W) tables, one per head
/// (shortformer: the same for Q and K, whose input is W_E + W_pos; V's position table is zero).
fn qkv_factored_forward(
    m: &Model,
    bl: &BlockLayout,
    a: &mut BlockActs,
    tab: &mut EmbedTables,
    tokens: &[u32],
    s: &Shape,
) {
    let cfg = m.cfg;
    let (b, tk, c, nh, hs) = (s.b, s.tk, cfg.d_model, cfg.n_heads, cfg.d_head);
    let d = ProjDims {
        b,
        t: s.t,
        nh,
        hs,
        v: cfg.d_vocab,
        tp: tk,
    };
    let all_pos: Vec<usize> = (0..tk).collect();
    let built = tables_built(m, bl, tab, tk * c);
    for (i, out) in [&mut a.q, &mut a.k, &mut a.v].into_iter().enumerate() {
        if !built {
            tables_forward(m, bl, tab, i, d);
        }
        let rows = if i == 0 { &a.rows } else { &all_pos };
        embed_proj_forward(
            out,
            tokens,
            &tab.e[i],
            &tab.p[i],
            m.bias(&bl.b_qkv[i]),
            rows,
            d,
        );
    }
}

/// The inputs of layer 0's gather tables, in the order of [`EmbedTables::key`].
fn tables_inputs<'m>(m: &'m Model, bl: &BlockLayout, pos_len: usize) -> [&'m [f32]; 5] {
    [
        m.w(&m.lay.w_e),
        &m.w(&m.lay.w_pos)[..pos_len],
        m.w(&bl.w_qkv[0]),
        m.w(&bl.w_qkv[1]),
        m.w(&bl.w_qkv[2]),
    ]
}

/// Whether `tab` holds the tables of exactly these inputs (bit for bit, so reusing them
/// gives the same result as rebuilding); if not, records the inputs' bits as the new key
/// (the caller rebuilds). Comparing ~(V + TK + 3·C)·C values is far cheaper than the
/// 3·(V + TK)·C·NH·HS multiply-adds of a rebuild.
fn tables_built(m: &Model, bl: &BlockLayout, tab: &mut EmbedTables, pos_len: usize) -> bool {
    let inputs = tables_inputs(m, bl, pos_len);
    let cfg = m.cfg;
    let dims = [
        cfg.d_model,
        cfg.n_heads,
        cfg.d_head,
        usize::from(m.shortformer()),
    ];
    let flag = dims.map(|x| x as u32);
    let len = inputs.iter().map(|x| x.len()).sum::<usize>() + flag.len();
    if tab.key.len() == len && tab.key[len - flag.len()..] == flag {
        let mut at = 0;
        let same = inputs.iter().all(|x| {
            at += x.len();
            same_bits(&tab.key[at - x.len()..at], x)
        });
        if same {
            return true;
        }
    }
    tab.key.clear();
    for x in inputs {
        tab.key.extend(x.iter().map(|v| v.to_bits()));
    }
    tab.key.extend(flag);
    false
}

/// Whether `x`'s bits are `key` (an OR of XORs: a loop without branches, which vectorises).
fn same_bits(key: &[u32], x: &[f32]) -> bool {
    key.len() == x.len() && key.iter().zip(x).fold(0, |d, (k, v)| d | (k ^ v.to_bits())) == 0
}

/// Layer 0's tables for Q (i = 0), K or V: (W_E W, W_pos W), one per head.
fn tables_forward(m: &Model, bl: &BlockLayout, tab: &mut EmbedTables, i: usize, d: ProjDims) {
    let (c, nh, hs, tk) = (m.cfg.d_model, d.nh, d.hs, d.tp);
    size(&mut tab.e[i], nh * d.v * hs);
    size(&mut tab.p[i], nh * tk * hs);
    for h in 0..nh {
        let w = m.head(&bl.w_qkv[i], h); // (C, HS)
        matmul_forward(
            &mut tab.e[i][h * d.v * hs..],
            m.w(&m.lay.w_e),
            w,
            None,
            d.v,
            c,
            hs,
        );
        matmul_forward(
            &mut tab.p[i][h * tk * hs..],
            &m.w(&m.lay.w_pos)[..tk * c],
            w,
            None,
            tk,
            c,
            hs,
        );
    }
    if i == 2 && m.shortformer() {
        tab.p[i].fill(0.0); // shortformer: positions never reach the values
    }
}

/// ln1 of the block input (B·TK rows), when the model has LayerNorm.
fn ln1_forward(m: &Model, bl: &BlockLayout, a: &mut BlockActs, n: usize, c: usize) {
    if let Some((w, bb)) = &bl.ln1 {
        size(&mut a.ln1, n * c);
        size(&mut a.ln1_mean, n);
        size(&mut a.ln1_rstd, n);
        layernorm_forward(
            &mut a.ln1,
            &mut a.ln1_mean,
            &mut a.ln1_rstd,
            &a.inp,
            m.w(w),
            m.w(bb),
            n,
            c,
        );
    }
}

/// Q (B, TQ) at the layer's rows, K and V (B, TK) at every position, from ln1 of the input;
/// with shortformer positions Q and K read ln1 + W_pos (`a.xqk`), V reads ln1.
fn qkv_forward(m: &Model, bl: &BlockLayout, a: &mut BlockActs, s: &Shape) {
    let cfg = m.cfg;
    let (b, tk, c, nh, hs) = (s.b, s.tk, cfg.d_model, cfg.n_heads, cfg.d_head);
    let tq = a.rows.len();
    let all = all_rows(&a.rows, tk);
    ln1_forward(m, bl, a, b * tk, c);
    let x1: &[f32] = if bl.ln1.is_some() { &a.ln1 } else { &a.inp }; // (B, TK, C)
    if m.shortformer() {
        size(&mut a.xqk, b * tk * c);
        shortformer_forward(&mut a.xqk, x1, &m.w(&m.lay.w_pos)[..tk * c], b, tk, c);
    }
    let xqk: &[f32] = if m.shortformer() { &a.xqk } else { x1 }; // (B, TK, C)
    if !all {
        size(&mut a.xq, b * tq * c);
        gather_rows(&mut a.xq, xqk, &a.rows, b, tk, c);
    }
    let xq: &[f32] = if all { xqk } else { &a.xq }; // (B, TQ, C)
    for h in 0..nh {
        let bias = |i: usize| m.bias(&bl.b_qkv[i]).map(|x| &x[h * hs..(h + 1) * hs]);
        matmul_forward(
            &mut a.q[h * b * tq * hs..],
            xq,
            m.head(&bl.w_qkv[0], h),
            bias(0),
            b * tq,
            c,
            hs,
        );
        matmul_forward(
            &mut a.k[h * b * tk * hs..],
            xqk,
            m.head(&bl.w_qkv[1], h),
            bias(1),
            b * tk,
            c,
            hs,
        );
        matmul_forward(
            &mut a.v[h * b * tk * hs..],
            x1,
            m.head(&bl.w_qkv[2], h),
            bias(2),
            b * tk,
            c,
            hs,
        );
    }
}

/// Attention, then resid_mid (B, TQ, C) = resid_pre at the rows + Σ_h z_h W_O[h] + b_O.
fn attn_out_forward(m: &Model, bl: &BlockLayout, a: &mut BlockActs, s: &Shape) {
    let cfg = m.cfg;
    let (b, tk, c, nh, hs) = (s.b, s.tk, cfg.d_model, cfg.n_heads, cfg.d_head);
    let tq = a.rows.len();
    let all = all_rows(&a.rows, tk);
    size(&mut a.z, nh * b * tq * hs);
    size(&mut a.lse, nh * b * tq);
    let d = AttnDims {
        b,
        nh,
        t: tk,
        tq,
        hs,
    };
    attention_forward(&mut a.z, &mut a.lse, &a.q, &a.k, &a.v, &a.rows, d);

    size(&mut a.mid, b * tq * c);
    for h in 0..nh {
        let zh = &a.z[h * b * tq * hs..(h + 1) * b * tq * hs];
        gemm(
            &mut a.mid,
            c,
            h > 0,
            Strided::rows(zh, hs),
            Strided::rows(m.head(&bl.w_o, h), c),
            b * tq,
            c,
            hs,
        );
    }
    if let Some(bo) = m.bias(&bl.b_o) {
        a.mid.chunks_exact_mut(c).for_each(|r| add_into(r, bo));
    }
    if all {
        add_into(&mut a.mid, &a.inp);
    } else {
        for bi in 0..b {
            for (i, &p) in a.rows.iter().enumerate() {
                add_into(
                    &mut a.mid[(bi * tq + i) * c..(bi * tq + i + 1) * c],
                    &a.inp[(bi * tk + p) * c..(bi * tk + p + 1) * c],
                );
            }
        }
    }
}

/// The MLP on the N = B·TQ rows of resid_mid: resid_post = resid_mid + W_out·act(W_in·ln2(x)).
fn mlp_forward(m: &Model, bl: &BlockLayout, a: &mut BlockActs, n: usize) {
    let cfg = m.cfg;
    let c = cfg.d_model;
    let Some(ml) = &bl.mlp else {
        a.out.clear();
        return;
    };
    let mw = cfg.d_mlp.unwrap_or(0);
    if let Some((w, bb)) = &bl.ln2 {
        size(&mut a.ln2, n * c);
        size(&mut a.ln2_mean, n);
        size(&mut a.ln2_rstd, n);
        layernorm_forward(
            &mut a.ln2,
            &mut a.ln2_mean,
            &mut a.ln2_rstd,
            &a.mid,
            m.w(w),
            m.w(bb),
            n,
            c,
        );
    }
    let x2: &[f32] = if bl.ln2.is_some() { &a.ln2 } else { &a.mid };
    size(&mut a.pre, n * mw);
    size(&mut a.post, n * mw);
    matmul_forward(&mut a.pre, x2, m.w(&ml.w_in), m.bias(&ml.b_in), n, c, mw);
    activation_forward(
        &mut a.post,
        &a.pre,
        cfg.act_fn.unwrap_or(ActFn::Relu),
        n,
        mw,
    );
    size(&mut a.out, n * c);
    matmul_forward(
        &mut a.out,
        &a.post,
        m.w(&ml.w_out),
        m.bias(&ml.b_out),
        n,
        mw,
        c,
    );
    add_into(&mut a.out, &a.mid);
}

/// ln_final (when the model has LN) and the unembedding of the N = B·P final rows.
fn final_forward(m: &Model, f: &mut FinalActs, x: &[f32], n: usize) {
    let (c, v) = (m.cfg.d_model, m.cfg.d_vocab_out);
    if let Some((w, b)) = &m.lay.ln_final {
        size(&mut f.lnf, n * c);
        size(&mut f.lnf_mean, n);
        size(&mut f.lnf_rstd, n);
        layernorm_forward(
            &mut f.lnf,
            &mut f.lnf_mean,
            &mut f.lnf_rstd,
            x,
            m.w(w),
            m.w(b),
            n,
            c,
        );
    }
    let xf: &[f32] = if m.lay.ln_final.is_some() { &f.lnf } else { x };
    size(&mut f.logits, n * v);
    matmul_forward(
        &mut f.logits,
        xf,
        m.w(&m.lay.w_u),
        m.bias(&m.lay.b_u),
        n,
        c,
        v,
    );
}
