//! The CPU engine's backward pass, the forward's kernels in reverse. Gradients accumulate
//! into one flat buffer laid out like the parameters (zeroed by the caller). Frozen biases
//! get no gradient; every weight and LayerNorm parameter does.

use super::acts::BlockActs;
use super::acts::{all_rows, scatter_add_rows, size, zeroed, Scratch, Shape};
use super::forward::{Acts, Model};
use super::layout::{grads_mut, BlockLayout};
use crate::cpu::kernels::activation::activation_backward;
use crate::cpu::kernels::add_into;
use crate::cpu::kernels::attention::{attention_backward, AttnDims};
use crate::cpu::kernels::crossentropy::crossentropy_backward;
use crate::cpu::kernels::embed::{embed_backward, embed_proj_backward, ProjDims};
use crate::cpu::kernels::layernorm::layernorm_backward;
use crate::cpu::kernels::matmul::{bias_backward, matmul_backward};
use crate::cpu::kernels::shortformer::{embed_tokens_backward, shortformer_backward};
use crate::model::ActFn;
use std::ops::Range;

/// A weight's gradient and, when the bias trains, the bias's.
fn wb<'g>(
    grads: &'g mut [f32],
    w: &Range<usize>,
    b: &Range<usize>,
    train_b: bool,
) -> (&'g mut [f32], Option<&'g mut [f32]>) {
    if train_b {
        let [gw, gb] = grads_mut(grads, [w.clone(), b.clone()]);
        (gw, Some(gb))
    } else {
        (&mut grads[w.clone()], None)
    }
}

/// Backward from the loss (mean cross-entropy over the B·P scored rows) to every gradient.
pub fn backward(
    m: &Model,
    acts: &Acts,
    sc: &mut Scratch,
    grads: &mut [f32],
    tokens: &[u32],
    s: &Shape,
) {
    let cfg = m.cfg;
    final_backward(m, acts, sc, grads, s);
    for l in (0..cfg.n_layers).rev() {
        let (a, bl) = (&acts.blocks[l], &m.lay.blocks[l]);
        mlp_backward(m, bl, a, sc, grads, s.b * a.rows.len());
        attn_out_backward(m, bl, a, sc, grads, s);
        if l == 0 && s.factored {
            qkv_factored_backward(m, bl, a, sc, grads, tokens, s);
        } else {
            qkv_backward(m, bl, a, sc, grads, s);
        }
        if l == 0 {
            let lay = m.lay;
            let all_pos: Vec<usize> = (0..s.tk).collect();
            if m.shortformer() {
                let ge = &mut grads[lay.w_e.clone()];
                embed_tokens_backward(ge, &sc.dinp, tokens, &all_pos, s.b, s.t, cfg.d_model);
            } else {
                let [ge, gp] = grads_mut(grads, [lay.w_e.clone(), lay.w_pos.clone()]);
                embed_backward(ge, gp, &sc.dinp, tokens, &all_pos, s.b, s.t, cfg.d_model);
            }
        } else {
            std::mem::swap(&mut sc.dout, &mut sc.dinp);
        }
    }
}

/// Loss → logits → ln_final → the last layer's output rows: fills `sc.dout` (B·P, C).
fn final_backward(m: &Model, acts: &Acts, sc: &mut Scratch, grads: &mut [f32], s: &Shape) {
    let cfg = m.cfg;
    let lay = m.lay;
    let tb = cfg.train_biases;
    let (c, v) = (cfg.d_model, cfg.d_vocab_out);
    let f = &acts.fin;
    let n = s.b * s.last_rows.len();
    // loss → logits → final residual rows
    zeroed(&mut sc.dlogits, n * v);
    // the mean over the scored pairs (every pair unless some targets are Batch::IGNORE)
    let scored = crate::backend::scored(&f.targets).max(1);
    crossentropy_backward(
        &mut sc.dlogits,
        &f.probs,
        &f.targets,
        1.0 / scored as f32,
        n,
        v,
    );
    let last = acts.blocks[cfg.n_layers - 1].output(); // (B, P, C)
    let xf: &[f32] = if lay.ln_final.is_some() { &f.lnf } else { last };
    zeroed(&mut sc.dxf, n * c);
    {
        let (gw, gb) = wb(grads, &lay.w_u, &lay.b_u, tb);
        matmul_backward(
            Some(&mut sc.dxf),
            Some(gw),
            gb,
            &sc.dlogits,
            xf,
            m.w(&lay.w_u),
            n,
            c,
            v,
        );
    }
    zeroed(&mut sc.dout, n * c);
    if let Some((w, bb)) = &lay.ln_final {
        let [gw, gb] = grads_mut(grads, [w.clone(), bb.clone()]);
        layernorm_backward(
            &mut sc.dout,
            gw,
            gb,
            &sc.dxf,
            last,
            m.w(w),
            &f.lnf_mean,
            &f.lnf_rstd,
            n,
            c,
        );
    } else {
        sc.dout.copy_from_slice(&sc.dxf);
    }
}

/// The MLP of N rows: from `sc.dout` (d resid_post) to `sc.dmid` (d resid_mid).
fn mlp_backward(
    m: &Model,
    bl: &BlockLayout,
    a: &BlockActs,
    sc: &mut Scratch,
    grads: &mut [f32],
    n: usize,
) {
    let cfg = m.cfg;
    let (tb, c) = (cfg.train_biases, cfg.d_model);
    size(&mut sc.dmid, n * c);
    sc.dmid.copy_from_slice(&sc.dout[..n * c]);
    if let Some(ml) = &bl.mlp {
        let mw = cfg.d_mlp.unwrap_or(0);
        zeroed(&mut sc.dpost, n * mw);
        {
            let (gw, gb) = wb(grads, &ml.w_out, &ml.b_out, tb);
            matmul_backward(
                Some(&mut sc.dpost),
                Some(gw),
                gb,
                &sc.dout,
                &a.post,
                m.w(&ml.w_out),
                n,
                mw,
                c,
            );
        }
        zeroed(&mut sc.dpre, n * mw);
        activation_backward(
            &mut sc.dpre,
            &sc.dpost,
            &a.pre,
            cfg.act_fn.unwrap_or(ActFn::Relu),
            n,
            mw,
        );
        let x2: &[f32] = if bl.ln2.is_some() { &a.ln2 } else { &a.mid };
        zeroed(&mut sc.dx2, n * c);
        {
            let (gw, gb) = wb(grads, &ml.w_in, &ml.b_in, tb);
            matmul_backward(
                Some(&mut sc.dx2),
                Some(gw),
                gb,
                &sc.dpre,
                x2,
                m.w(&ml.w_in),
                n,
                c,
                mw,
            );
        }
        if let Some((w, bb)) = &bl.ln2 {
            let [gw, gb] = grads_mut(grads, [w.clone(), bb.clone()]);
            layernorm_backward(
                &mut sc.dmid,
                gw,
                gb,
                &sc.dx2,
                &a.mid,
                m.w(w),
                &a.ln2_mean,
                &a.ln2_rstd,
                n,
                c,
            );
        } else {
            add_into(&mut sc.dmid, &sc.dx2);
        }
    }
}

/// resid_mid = resid_pre[rows] + Σ_h z_h W_O[h] + b_O, then attention: from `sc.dmid` to
/// `sc.dinp` (the residual part of d resid_pre) and `sc.dq`, `sc.dk`, `sc.dv`.
fn attn_out_backward(
    m: &Model,
    bl: &BlockLayout,
    a: &BlockActs,
    sc: &mut Scratch,
    grads: &mut [f32],
    s: &Shape,
) {
    let cfg = m.cfg;
    let tb = cfg.train_biases;
    let (b, tk, c, nh, hs) = (s.b, s.tk, cfg.d_model, cfg.n_heads, cfg.d_head);
    let tq = a.rows.len();
    let all = all_rows(&a.rows, tk);
    let n = b * tq;
    zeroed(&mut sc.dz, nh * n * hs);
    for h in 0..nh {
        let gw = &mut grads[bl.w_o.clone()][h * hs * c..(h + 1) * hs * c];
        let zh = &a.z[h * n * hs..(h + 1) * n * hs];
        matmul_backward(
            Some(&mut sc.dz[h * n * hs..(h + 1) * n * hs]),
            Some(gw),
            None,
            &sc.dmid,
            zh,
            m.head(&bl.w_o, h),
            n,
            hs,
            c,
        );
    }
    if tb {
        bias_backward(&mut grads[bl.b_o.clone()], &sc.dmid, n, c);
    }
    if all {
        size(&mut sc.dinp, b * tk * c);
        sc.dinp.copy_from_slice(&sc.dmid);
    } else {
        zeroed(&mut sc.dinp, b * tk * c);
        scatter_add_rows(&mut sc.dinp, &sc.dmid, &a.rows, b, tk, c);
    }

    size(&mut sc.dq, nh * n * hs); // written by attention_backward
    size(&mut sc.dk, nh * b * tk * hs);
    size(&mut sc.dv, nh * b * tk * hs);
    let d = AttnDims {
        b,
        nh,
        t: tk,
        tq,
        hs,
    };
    attention_backward(
        &mut sc.dq, &mut sc.dk, &mut sc.dv, &sc.dz, &a.q, &a.k, &a.v, &a.lse, &a.rows, d,
    );
}

/// Layer 0's factored Q/K/V (see `qkv_factored_forward`): into W_E, W_pos, W_Q/K/V, b_Q/K/V.
fn qkv_factored_backward(
    m: &Model,
    bl: &BlockLayout,
    a: &BlockActs,
    sc: &mut Scratch,
    grads: &mut [f32],
    tokens: &[u32],
    s: &Shape,
) {
    let (cfg, lay) = (m.cfg, m.lay);
    let tb = cfg.train_biases;
    let (b, tk, c, nh, hs) = (s.b, s.tk, cfg.d_model, cfg.n_heads, cfg.d_head);
    let all_pos: Vec<usize> = (0..tk).collect();
    let d = ProjDims {
        b,
        t: s.t,
        nh,
        hs,
        v: cfg.d_vocab,
        tp: tk,
    };
    for (i, dx) in [&sc.dq, &sc.dk, &sc.dv].into_iter().enumerate() {
        zeroed(&mut sc.de, nh * d.v * hs);
        zeroed(&mut sc.dp, nh * tk * hs);
        let rows = if i == 0 { &a.rows } else { &all_pos };
        let db = if tb {
            Some(&mut grads[bl.b_qkv[i].clone()])
        } else {
            None
        };
        embed_proj_backward(&mut sc.de, &mut sc.dp, db, dx, tokens, rows, d);
        for h in 0..nh {
            let w = m.head(&bl.w_qkv[i], h);
            let [ge, gp, gw] = grads_mut(
                grads,
                [lay.w_e.clone(), lay.w_pos.clone(), bl.w_qkv[i].clone()],
            );
            let gw = &mut gw[h * c * hs..(h + 1) * c * hs];
            let de = &sc.de[h * d.v * hs..(h + 1) * d.v * hs];
            matmul_backward(
                Some(ge),
                Some(&mut *gw),
                None,
                de,
                m.w(&lay.w_e),
                w,
                d.v,
                c,
                hs,
            );
            if i == 2 && m.shortformer() {
                continue; // V's position table is a zero constant
            }
            let dp = &sc.dp[h * tk * hs..(h + 1) * tk * hs];
            matmul_backward(
                Some(&mut gp[..tk * c]),
                Some(gw),
                None,
                dp,
                &m.w(&lay.w_pos)[..tk * c],
                w,
                tk,
                c,
                hs,
            );
        }
    }
}

/// Q/K/V from ln1 of the input: into W_Q/K/V, b_Q/K/V, ln1 and `sc.dinp` (d resid_pre);
/// with shortformer positions Q and K read ln1 + W_pos, so W_pos gets Σ_b of their input gradient.
fn qkv_backward(
    m: &Model,
    bl: &BlockLayout,
    a: &BlockActs,
    sc: &mut Scratch,
    grads: &mut [f32],
    s: &Shape,
) {
    let cfg = m.cfg;
    let (b, tk, c) = (s.b, s.tk, cfg.d_model);
    let all = all_rows(&a.rows, tk);
    zeroed(&mut sc.dx1, b * tk * c);
    if m.shortformer() {
        zeroed(&mut sc.dxqk, b * tk * c);
    }
    if !all {
        zeroed(&mut sc.dxq, b * a.rows.len() * c);
    }
    qkv_weights_backward(m, bl, a, sc, grads, s);
    if m.shortformer() {
        if !all {
            scatter_add_rows(&mut sc.dxqk, &sc.dxq, &a.rows, b, tk, c);
        }
        shortformer_backward(&mut grads[m.lay.w_pos.clone()], &sc.dxqk, b, tk, c);
        add_into(&mut sc.dx1, &sc.dxqk);
    } else if !all {
        scatter_add_rows(&mut sc.dx1, &sc.dxq, &a.rows, b, tk, c);
    }
    if let Some((w, bb)) = &bl.ln1 {
        let [gw, gb] = grads_mut(grads, [w.clone(), bb.clone()]);
        layernorm_backward(
            &mut sc.dinp,
            gw,
            gb,
            &sc.dx1,
            &a.inp,
            m.w(w),
            &a.ln1_mean,
            &a.ln1_rstd,
            b * tk,
            c,
        );
    } else {
        add_into(&mut sc.dinp, &sc.dx1);
    }
}

/// dW_Q/K/V, db_Q/K/V and the gradients of their inputs: Q's into `sc.dxq` (B, TQ, C) when
/// the layer's rows are not all rows, V's into `sc.dx1` (B, TK, C), K's (and Q's at all rows)
/// into `sc.dxqk` with shortformer positions, else into `sc.dx1`.
fn qkv_weights_backward(
    m: &Model,
    bl: &BlockLayout,
    a: &BlockActs,
    sc: &mut Scratch,
    grads: &mut [f32],
    s: &Shape,
) {
    let cfg = m.cfg;
    let tb = cfg.train_biases;
    let (b, tk, c, nh, hs) = (s.b, s.tk, cfg.d_model, cfg.n_heads, cfg.d_head);
    let all = all_rows(&a.rows, tk);
    let n = b * a.rows.len();
    let x1: &[f32] = if bl.ln1.is_some() { &a.ln1 } else { &a.inp };
    let xqk: &[f32] = if m.shortformer() { &a.xqk } else { x1 };
    for (i, dx) in [&sc.dq, &sc.dk, &sc.dv].into_iter().enumerate() {
        let q = i == 0 && !all;
        let (rows, inp) = match i {
            _ if q => (n, &a.xq[..]),
            2 => (b * tk, x1),
            _ => (b * tk, xqk),
        };
        for h in 0..nh {
            let gw_all = if tb {
                let [gw, gb] = grads_mut(grads, [bl.w_qkv[i].clone(), bl.b_qkv[i].clone()]);
                (gw, Some(gb))
            } else {
                (&mut grads[bl.w_qkv[i].clone()], None)
            };
            let gw = &mut gw_all.0[h * c * hs..(h + 1) * c * hs];
            let gb = gw_all.1.map(|g| &mut g[h * hs..(h + 1) * hs]);
            let dxh = &dx[h * rows * hs..(h + 1) * rows * hs];
            let dst = match i {
                _ if q => &mut sc.dxq,
                0 | 1 if m.shortformer() => &mut sc.dxqk,
                _ => &mut sc.dx1,
            };
            matmul_backward(
                Some(dst),
                Some(gw),
                gb,
                dxh,
                inp,
                m.head(&bl.w_qkv[i], h),
                rows,
                c,
                hs,
            );
        }
    }
}
