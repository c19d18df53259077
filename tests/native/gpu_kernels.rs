//! Each GPU kernel against its candle reference on small random shapes (odd sizes, so tile edges and
//! partial workgroups are exercised). Comparisons use gpu_common::assert_close:
//! |got − want| ≤ atol + rtol·|want|. f32 sums taken in a different order than candle's differ by a
//! few ulps of the sum's magnitude, hence atol ~1e-5 for O(1) values and rtol 1e-4.
use crate::gpu_common;

use candle_core::{Device, Tensor, Var, D};
use gpu_common::{assert_close, randn, Rig};
use toyformer::gpu::kernels::{
    self as k, AdamwArgs, AdamwIo, Map, MatmulArgs, Operand, Ops, Window,
};
use toyformer::reference::forward;

const DEV: Device = Device::Cpu;

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape, &DEV).unwrap()
}
fn flat(x: &Tensor) -> Vec<f32> {
    x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn matmul_with_bias_d_and_accumulate() {
    let Some(g) = Rig::new() else { return };
    let (m, n, kk) = (37, 23, 19);
    let (a, b, bias, d, o0) = (
        randn(m * kk, 1, 1.0),
        randn(kk * n, 2, 1.0),
        randn(n + 5, 3, 1.0),
        randn(m * n, 4, 1.0),
        randn(m * n, 5, 1.0),
    );
    let (ba, bb, bbias, bd, bo) = (
        g.f32s(&a),
        g.f32s(&b),
        g.f32s(&bias),
        g.f32s(&d),
        g.f32s(&o0),
    );
    let mut ops = Ops::default();
    k::matmul(
        &mut ops,
        &g.ctx,
        &MatmulArgs {
            out: Operand {
                buf: &bo,
                map: Map::rows(0, n),
            },
            a: Operand {
                buf: &ba,
                map: Map::rows(0, kk),
            },
            b: Operand {
                buf: &bb,
                map: Map::rows(0, n),
            },
            bias: Some((&bbias, 5)),
            d: Some((&bd, 0)),
            accumulate: true,
            m,
            n,
            k: kk,
        },
        None,
    );
    g.run(&ops);
    let want = (t(&a, &[m, kk])
        .matmul(&t(&b, &[kk, n]))
        .unwrap()
        .broadcast_add(&t(&bias[5..], &[n]))
        .unwrap()
        + t(&d, &[m, n]))
    .unwrap();
    let want = (want + t(&o0, &[m, n])).unwrap();
    assert_close(
        "matmul out = A·B + bias + D + out",
        &g.read(&bo, m * n),
        &flat(&want),
        2e-5,
        1e-4,
    );
}

#[test]
fn matmul_transposed_operands_and_split_k() {
    let Some(g) = Rig::new() else { return };
    // out (M, N) = Xᵀ (M, K) · Yᵀ (K, N) with X (K, M), Y (N, K): both operands read transposed
    let (m, n, kk) = (21, 13, 45);
    let (x, y) = (randn(kk * m, 6, 1.0), randn(n * kk, 7, 1.0));
    let (bx, by, bo) = (g.f32s(&x), g.f32s(&y), g.zeros(m * n));
    let mut ops = Ops::default();
    k::matmul(
        &mut ops,
        &g.ctx,
        &MatmulArgs {
            out: Operand {
                buf: &bo,
                map: Map::rows(0, n),
            },
            a: Operand {
                buf: &bx,
                map: Map::cols(0, m),
            },
            b: Operand {
                buf: &by,
                map: Map::cols(0, kk),
            },
            bias: None,
            d: None,
            accumulate: false,
            m,
            n,
            k: kk,
        },
        None,
    );
    g.run(&ops);
    let want = t(&x, &[kk, m])
        .t()
        .unwrap()
        .matmul(&t(&y, &[n, kk]).t().unwrap())
        .unwrap();
    assert_close(
        "matmul Xᵀ·Yᵀ",
        &g.read(&bo, m * n),
        &flat(&want),
        2e-5,
        1e-4,
    );

    // a weight-gradient shape: few output tiles, long K → split over K, summed by grad_norm
    let (m, n, kk) = (20, 30, 3000);
    assert!(
        k::matmul_splits(m, n, kk) > 1,
        "this shape must exercise the split path"
    );
    let (x, y) = (randn(kk * m, 8, 1.0), randn(kk * n, 9, 1.0));
    let (bx, by, bo) = (g.f32s(&x), g.f32s(&y), g.zeros(m * n));
    let mut sums = g.sums(k::matmul_scratch_len(m, n, kk));
    let mut ops = Ops::default();
    k::matmul(
        &mut ops,
        &g.ctx,
        &MatmulArgs {
            out: Operand {
                buf: &bo,
                map: Map::rows(0, n),
            },
            a: Operand {
                buf: &bx,
                map: Map::cols(0, m),
            },
            b: Operand {
                buf: &by,
                map: Map::rows(0, n),
            },
            bias: None,
            d: None,
            accumulate: false,
            m,
            n,
            k: kk,
        },
        Some(&mut sums),
    );
    let (norm, parts) = g.grad_norm(&mut ops, &bo, &sums, m * n);
    g.run(&ops);
    let want = t(&x, &[kk, m])
        .t()
        .unwrap()
        .matmul(&t(&y, &[kk, n]))
        .unwrap();
    // sums of 3000 products of N(0,1): magnitude ~55, so a few ulps of that
    let got = g.read(&bo, m * n);
    assert_close(
        "split-K matmul Xᵀ·Y (dW shape)",
        &got,
        &flat(&want),
        1e-4,
        1e-4,
    );
    // grad_norm's partials: the finished job's squares (the strided workgroups skip them)
    let sq: f64 = got.iter().map(|&x| x as f64 * x as f64).sum();
    let part_sum: f64 = g.read(&norm, parts).iter().map(|&x| x as f64).sum();
    assert_close(
        "grad_norm partials of a split job",
        &[part_sum as f32],
        &[sq as f32],
        0.0,
        1e-5,
    );
}

#[test]
fn matmul_blocked_maps_for_qkv_and_scored_rows() {
    let Some(g) = Rig::new() else { return };
    // qkv (N, G·HS) = x (N, C) · W [G, C, HS] (column blocks), and dx = dqkv · Wᵀ (row blocks)
    let (nrows, c, gg, hs) = (11, 7, 6, 5);
    let (x, w, dq) = (
        randn(nrows * c, 10, 1.0),
        randn(3 + gg * c * hs, 11, 1.0),
        randn(nrows * gg * hs, 12, 1.0),
    );
    let (bx, bw, bdq, bo, bdx) = (
        g.f32s(&x),
        g.f32s(&w),
        g.f32s(&dq),
        g.zeros(nrows * gg * hs),
        g.zeros(nrows * c),
    );
    let wmap = Map {
        off: 3,
        rs: hs as u32,
        cs: 1,
        rblk: 0,
        rbs: 0,
        cblk: hs as u32,
        cbs: (c * hs) as u32,
    };
    let wtmap = Map {
        off: 3,
        rs: 1,
        cs: hs as u32,
        rblk: hs as u32,
        rbs: (c * hs) as u32,
        cblk: 0,
        cbs: 0,
    };
    let mut ops = Ops::default();
    k::matmul(
        &mut ops,
        &g.ctx,
        &MatmulArgs {
            out: Operand {
                buf: &bo,
                map: Map::rows(0, gg * hs),
            },
            a: Operand {
                buf: &bx,
                map: Map::rows(0, c),
            },
            b: Operand {
                buf: &bw,
                map: wmap,
            },
            bias: None,
            d: None,
            accumulate: false,
            m: nrows,
            n: gg * hs,
            k: c,
        },
        None,
    );
    k::matmul(
        &mut ops,
        &g.ctx,
        &MatmulArgs {
            out: Operand {
                buf: &bdx,
                map: Map::rows(0, c),
            },
            a: Operand {
                buf: &bdq,
                map: Map::rows(0, gg * hs),
            },
            b: Operand {
                buf: &bw,
                map: wtmap,
            },
            bias: None,
            d: None,
            accumulate: false,
            m: nrows,
            n: c,
            k: gg * hs,
        },
        None,
    );
    g.run(&ops);
    let wt = t(&w[3..], &[gg, c, hs]);
    let w2 = wt
        .permute((1, 0, 2))
        .unwrap()
        .reshape((c, gg * hs))
        .unwrap(); // (C, G·HS)
    let want = t(&x, &[nrows, c]).matmul(&w2).unwrap();
    assert_close(
        "matmul x·W_QKV (column blocks)",
        &g.read(&bo, nrows * gg * hs),
        &flat(&want),
        2e-5,
        1e-4,
    );
    let want = t(&dq, &[nrows, gg * hs]).matmul(&w2.t().unwrap()).unwrap();
    assert_close(
        "matmul dqkv·W_QKVᵀ (row blocks)",
        &g.read(&bdx, nrows * c),
        &flat(&want),
        2e-5,
        1e-4,
    );

    // the scored rows p0..p0+P of each sequence of (B, T, C), as the unembed reads them
    let (b, tt, p0, p, v) = (3, 9, 4, 4, 5);
    let (res, wu) = (randn(b * tt * c, 13, 1.0), randn(c * v, 14, 1.0));
    let (br, bwu, bl) = (g.f32s(&res), g.f32s(&wu), g.zeros(b * p * v));
    let mut ops = Ops::default();
    k::matmul(
        &mut ops,
        &g.ctx,
        &MatmulArgs {
            out: Operand {
                buf: &bl,
                map: Map::rows(0, v),
            },
            a: Operand {
                buf: &br,
                map: Map {
                    off: (p0 * c) as u32,
                    rs: c as u32,
                    cs: 1,
                    rblk: p as u32,
                    rbs: (tt * c) as u32,
                    cblk: 0,
                    cbs: 0,
                },
            },
            b: Operand {
                buf: &bwu,
                map: Map::rows(0, v),
            },
            bias: None,
            d: None,
            accumulate: false,
            m: b * p,
            n: v,
            k: c,
        },
        None,
    );
    g.run(&ops);
    let rows = t(&res, &[b, tt, c])
        .narrow(1, p0, p)
        .unwrap()
        .reshape((b * p, c))
        .unwrap();
    assert_close(
        "matmul on scored rows",
        &g.read(&bl, b * p * v),
        &flat(&rows.matmul(&t(&wu, &[c, v])).unwrap()),
        2e-5,
        1e-4,
    );
}

#[test]
fn layernorm_forward_backward_and_params() {
    let Some(g) = Rig::new() else { return };
    let (n, c) = (13, 70); // C > 64: each invocation owns two columns
    let (x, w, dy, d0) = (
        randn(n * c, 20, 1.5),
        randn(2 * c + 2, 21, 1.0),
        randn(n * c, 22, 1.0),
        randn(n * c, 23, 1.0),
    );
    let (bx, bw, bdy, bout, bst, bdres, bgr) = (
        g.f32s(&x),
        g.f32s(&w),
        g.f32s(&dy),
        g.zeros(n * c),
        g.zeros(2 * n),
        g.f32s(&d0),
        g.zeros(2 * c + 2),
    );
    let mut ops = Ops::default();
    k::layernorm_forward(&mut ops, &g.ctx, &bout, &bst, &bx, &bw, 2, 2 + c, n, c);
    k::layernorm_backward(
        &mut ops, &g.ctx, &bdres, &bdy, &bx, &bst, &bw, 2, true, n, c,
    );
    k::layernorm_backward_params(
        &mut ops,
        &g.ctx,
        &bgr,
        2,
        2 + c,
        &mut g.sums(k::colsum_scratch_len(n, 2 * c)),
        &bdy,
        &bx,
        &bst,
        n,
        c,
    );
    g.run(&ops);
    let xv = Var::from_tensor(&t(&x, &[n, c])).unwrap();
    let wv = Var::from_tensor(&t(&w[2..2 + c], &[c])).unwrap();
    let bv = Var::from_tensor(&t(&w[2 + c..2 + 2 * c], &[c])).unwrap();
    let y = forward::layernorm_forward(
        &mut forward::NoHooks,
        "ln",
        xv.as_tensor(),
        wv.as_tensor(),
        bv.as_tensor(),
    )
    .unwrap();
    let grads = (&y * t(&dy, &[n, c]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        "layernorm_forward out",
        &g.read(&bout, n * c),
        &flat(&y),
        1e-5,
        1e-4,
    );
    let xt = t(&x, &[n, c]);
    let mean = xt.mean_keepdim(D::Minus1).unwrap();
    let st = g.read(&bst, 2 * n);
    let means: Vec<f32> = st.iter().step_by(2).copied().collect();
    assert_close("layernorm_forward mean", &means, &flat(&mean), 1e-6, 1e-5);
    let dx = (grads.get(xv.as_tensor()).unwrap() + t(&d0, &[n, c])).unwrap();
    assert_close(
        "layernorm_backward dx (+ existing dres)",
        &g.read(&bdres, n * c),
        &flat(&dx),
        1e-5,
        1e-4,
    );
    let gr = g.read(&bgr, 2 * c + 2);
    assert_close(
        "layernorm_backward_params dw",
        &gr[2..2 + c],
        &flat(grads.get(wv.as_tensor()).unwrap()),
        1e-5,
        1e-4,
    );
    assert_close(
        "layernorm_backward_params db",
        &gr[2 + c..],
        &flat(grads.get(bv.as_tensor()).unwrap()),
        1e-5,
        1e-4,
    );
}

#[test]
fn attention_forward_and_backward() {
    let Some(g) = Rig::new() else { return };
    // T = 70 > 64: each invocation handles two keys / queries of a row
    let (b, tt, nh, hs) = (2, 70, 2, 5);
    let (qkv, dz) = (
        randn(b * tt * 3 * nh * hs, 30, 1.0),
        randn(b * tt * nh * hs, 31, 1.0),
    );
    let (bq, bdz, bz, blse, bdq) = (
        g.f32s(&qkv),
        g.f32s(&dz),
        g.zeros(b * tt * nh * hs),
        g.zeros(b * nh * tt),
        g.zeros(b * tt * 3 * nh * hs),
    );
    let mut ops = Ops::default();
    k::attention_forward(&mut ops, &g.ctx, &bz, &blse, &bq, b, tt, nh, hs);
    k::attention_backward(&mut ops, &g.ctx, &bdq, &bdz, &bq, &bz, &blse, b, tt, nh, hs);
    g.run(&ops);
    // candle: (B, T, 3, NH, HS) → q, k, v (B, NH, T, HS); softmax(q kᵀ / sqrt(HS) + mask) v
    let qv = Var::from_tensor(&t(&qkv, &[b, tt, 3, nh, hs])).unwrap();
    let part = |i: usize| {
        qv.as_tensor()
            .narrow(2, i, 1)
            .unwrap()
            .squeeze(2)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let (q, kk, v) = (part(0), part(1), part(2));
    let scores = (q.matmul(&kk.t().unwrap()).unwrap() * (1.0 / (hs as f64).sqrt())).unwrap();
    let scores = scores
        .broadcast_add(&forward::causal_mask(tt, &DEV).unwrap())
        .unwrap();
    let z = forward::softmax_forward(&scores)
        .unwrap()
        .matmul(&v)
        .unwrap(); // (B, NH, T, HS)
    let z = z.transpose(1, 2).unwrap().contiguous().unwrap(); // (B, T, NH, HS)
    let grads = (&z * t(&dz, &[b, tt, nh, hs]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        "attention_forward z",
        &g.read(&bz, b * tt * nh * hs),
        &flat(&z),
        1e-5,
        1e-4,
    );
    let mx = scores.max_keepdim(D::Minus1).unwrap();
    let lse = (scores
        .broadcast_sub(&mx)
        .unwrap()
        .exp()
        .unwrap()
        .sum_keepdim(D::Minus1)
        .unwrap()
        .log()
        .unwrap()
        + mx)
        .unwrap();
    assert_close(
        "attention_forward lse",
        &g.read(&blse, b * nh * tt),
        &flat(&lse),
        1e-5,
        1e-5,
    );
    assert_close(
        "attention_backward dq, dk, dv",
        &g.read(&bdq, b * tt * 3 * nh * hs),
        &flat(grads.get(qv.as_tensor()).unwrap()),
        1e-5,
        1e-4,
    );
}

#[test]
fn activations_forward_and_backward() {
    let Some(g) = Rig::new() else { return };
    let (n, m) = (5, 77);
    let (pre, dpost) = (randn(n * m, 40, 2.0), randn(n * m, 41, 1.0));
    for (act, name) in [(0u32, "relu"), (1, "gelu"), (2, "gelu_new"), (3, "solu")] {
        let (bp, bd, bpost, bdpre) = (g.f32s(&pre), g.f32s(&dpost), g.zeros(n * m), g.zeros(n * m));
        let mut ops = Ops::default();
        k::activation_forward(&mut ops, &g.ctx, &bpost, &bp, act, n, m);
        k::activation_backward(&mut ops, &g.ctx, &bdpre, &bd, &bp, act, n, m);
        g.run(&ops);
        let x = Var::from_tensor(&t(&pre, &[n, m])).unwrap();
        let xt = x.as_tensor();
        let y = match act {
            0 => xt.relu().unwrap(),
            1 => xt.gelu_erf().unwrap(),
            2 => xt.gelu().unwrap(),
            _ => (xt * forward::softmax_forward(xt).unwrap()).unwrap(),
        };
        let grads = (&y * t(&dpost, &[n, m]))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        // the erf of gelu is a rational fit with relative error < 1.2e-7
        assert_close(
            &format!("activation_forward {name}"),
            &g.read(&bpost, n * m),
            &flat(&y),
            1e-6,
            1e-5,
        );
        assert_close(
            &format!("activation_backward {name}"),
            &g.read(&bdpre, n * m),
            &flat(grads.get(xt).unwrap()),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn bias_backward_sums_columns() {
    let Some(g) = Rig::new() else { return };
    // one pass, and (N ≥ 4096) row chunks summed by the second pass
    for (n, oc) in [(53, 37), (9000, 19)] {
        assert_eq!(k::colsum_chunks(n) > 1, n > 4000);
        let d = randn(n * oc, 50, 1.0);
        let (bd, bg) = (g.f32s(&d), g.zeros(oc + 4));
        let mut sums = g.sums(k::colsum_scratch_len(n, oc));
        let mut ops = Ops::default();
        k::bias_backward(&mut ops, &g.ctx, &bg, 4, &mut sums, &bd, n, oc);
        g.grad_norm(&mut ops, &bg, &sums, oc + 4); // finishes the row chunks
        g.run(&ops);
        let want = t(&d, &[n, oc]).sum(0).unwrap();
        let got = g.read(&bg, oc + 4);
        assert_eq!(&got[..4], &[0.0; 4], "nothing written outside the bias");
        // sums of up to 9000 N(0,1) values: magnitude ~100
        assert_close(
            &format!("bias_backward N {n}"),
            &got[4..],
            &flat(&want),
            1e-4,
            1e-4,
        );
    }
}

#[test]
fn layernorm_backward_params_in_row_chunks() {
    let Some(g) = Rig::new() else { return };
    let (n, c) = (5000, 20);
    assert!(k::colsum_chunks(n) > 1);
    let (x, dy) = (randn(n * c, 24, 1.5), randn(n * c, 25, 1.0));
    let w: Vec<f32> = (0..2 * c)
        .map(|i| {
            if i < c {
                1.0 + 0.1 * i as f32
            } else {
                0.05 * i as f32
            }
        })
        .collect();
    let (bx, bw, bdy, bout, bst, bgr) = (
        g.f32s(&x),
        g.f32s(&w),
        g.f32s(&dy),
        g.zeros(n * c),
        g.zeros(2 * n),
        g.zeros(2 * c),
    );
    let mut ops = Ops::default();
    let mut sums = g.sums(k::colsum_scratch_len(n, 2 * c));
    k::layernorm_forward(&mut ops, &g.ctx, &bout, &bst, &bx, &bw, 0, c, n, c);
    k::layernorm_backward_params(
        &mut ops, &g.ctx, &bgr, 0, c, &mut sums, &bdy, &bx, &bst, n, c,
    );
    g.grad_norm(&mut ops, &bgr, &sums, 2 * c); // finishes the row chunks
    g.run(&ops);
    let wv = Var::from_tensor(&t(&w[..c], &[c])).unwrap();
    let bv = Var::from_tensor(&t(&w[c..], &[c])).unwrap();
    let y = forward::layernorm_forward(
        &mut forward::NoHooks,
        "ln",
        &t(&x, &[n, c]),
        wv.as_tensor(),
        bv.as_tensor(),
    )
    .unwrap();
    let grads = (&y * t(&dy, &[n, c]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gr = g.read(&bgr, 2 * c);
    // sums over 5000 rows: magnitude ~70
    assert_close(
        "layernorm_backward_params dw (chunked)",
        &gr[..c],
        &flat(grads.get(wv.as_tensor()).unwrap()),
        1e-4,
        1e-4,
    );
    assert_close(
        "layernorm_backward_params db (chunked)",
        &gr[c..],
        &flat(grads.get(bv.as_tensor()).unwrap()),
        1e-4,
        1e-4,
    );
}

#[test]
fn embed_forward_and_backward() {
    let Some(g) = Rig::new() else { return };
    // small, then 40 × 9 = 360 rows of which ~300 hold token 0: its list takes two row segments
    for (b, tt, c, v, frequent) in [(4, 9, 6, 11, false), (40, 9, 40, 11, true)] {
        embed_case(&g, b, tt, c, v, frequent);
    }
}

fn embed_case(g: &Rig, b: usize, tt: usize, c: usize, v: usize, frequent: bool) {
    let mut r = toyformer::tasks::rng::CounterRng::new(1, 2, 3);
    // the last 2 ids unused
    let mut tokens: Vec<u32> = (0..b * tt).map(|_| r.below(v as u64 - 2) as u32).collect();
    if frequent {
        for (i, x) in tokens.iter_mut().enumerate() {
            if i % 6 != 0 {
                *x = 0;
            }
        }
        let zeros = tokens.iter().filter(|&&x| x == 0).count();
        assert!(
            zeros > toyformer::gpu::plan::EMBED_SEGMENT,
            "{zeros} rows of token 0"
        );
    }
    let (w, dres) = (randn(v * c + tt * c, 60, 1.0), randn(b * tt * c, 61, 1.0));
    let mut step = Vec::new();
    toyformer::gpu::plan::step_data(&tokens, v, true, &mut step);
    let (bs, bw, bres, bdres, bg) = (
        g.u32s(&step),
        g.f32s(&w),
        g.zeros(b * tt * c),
        g.f32s(&dres),
        g.zeros(v * c + tt * c),
    );
    let zero = g.f32s(&vec![1.0; b * tt * c]);
    let mut ops = Ops::default();
    let win = Window::whole(&bs, step.len());
    let n = b * tt;
    k::embed_forward(
        &mut ops,
        &g.ctx,
        &bres,
        Some(&zero),
        win,
        0,
        &bw,
        0,
        Some(v * c),
        n,
        tt,
        c,
    );
    let mut sums = g.sums(toyformer::gpu::plan::max_segments(n, v) * c);
    k::embed_backward(
        &mut ops,
        &g.ctx,
        &bg,
        &mut sums,
        &bdres,
        win,
        0,
        Some(v * c),
        b,
        tt,
        c,
        v,
    );
    // grad_norm adds each token's row segments into dW_E
    let (norm, parts) = g.grad_norm_at(&mut ops, &bg, &sums, win, v * c + tt * c);
    g.run(&ops);
    let we = Var::from_tensor(&t(&w[..v * c], &[v, c])).unwrap();
    let wp = Var::from_tensor(&t(&w[v * c..], &[tt, c])).unwrap();
    let ids = Tensor::from_slice(&tokens, b * tt, &DEV).unwrap();
    let e = we
        .as_tensor()
        .index_select(&ids, 0)
        .unwrap()
        .reshape((b, tt, c))
        .unwrap()
        .broadcast_add(&wp.as_tensor().unsqueeze(0).unwrap())
        .unwrap();
    let grads = (&e * t(&dres, &[b, tt, c]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        "embed_forward",
        &g.read(&bres, b * tt * c),
        &flat(&e),
        0.0,
        0.0,
    );
    assert!(
        g.read(&zero, b * tt * c).iter().all(|&x| x == 0.0),
        "embed_forward zeroes the backward's first target"
    );
    let got = g.read(&bg, v * c + tt * c);
    // sums of up to ~300 N(0,1) values
    let dwe = flat(grads.get(we.as_tensor()).unwrap());
    assert_close("embed_backward dW_E", &got[..v * c], &dwe, 1e-4, 1e-4);
    let dwp = flat(grads.get(wp.as_tensor()).unwrap());
    assert_close("embed_backward dW_pos", &got[v * c..], &dwp, 1e-5, 1e-4);
    let sq: f64 = got.iter().map(|&x| x as f64 * x as f64).sum();
    let part_sum: f64 = g.read(&norm, parts).iter().map(|&x| x as f64).sum();
    assert_close(
        "grad_norm partials",
        &[part_sum as f32],
        &[sq as f32],
        0.0,
        1e-5,
    );
}

#[test]
fn crossentropy_and_metrics() {
    let Some(g) = Rig::new() else { return };
    let (b, tt, p0, p, v) = (5, 8, 3, 4, 70);
    let mut r = toyformer::tasks::rng::CounterRng::new(4, 5, 6);
    let tokens: Vec<u32> = (0..b * tt).map(|_| r.below(v as u64) as u32).collect();
    let mut logits = randn(b * p * v, 70, 2.0);
    // make some rows right: put a large logit on the target
    for row in [0usize, 1, 2, 3, 9] {
        let (bb, i) = (row / p, row % p);
        logits[row * v + tokens[bb * tt + p0 + i + 1] as usize] = 9.0;
    }
    let targets: Vec<u32> = (0..b)
        .flat_map(|bb| (0..p).map(move |i| (bb, i)))
        .map(|(bb, i)| tokens[bb * tt + p0 + i + 1])
        .collect();
    // the step window: tokens, then the (B, P) targets at tokens.len()
    let step: Vec<u32> = tokens.iter().chain(&targets).copied().collect();
    let (bl, bs, brows, barg) = (
        g.f32s(&logits),
        g.u32s(&step),
        g.zeros(2 * b * p),
        g.zeros(b * p),
    );
    let mut ops = Ops::default();
    let win = Window::whole(&bs, step.len());
    k::crossentropy(
        &mut ops,
        &g.ctx,
        &bl,
        &brows,
        &barg,
        win,
        tokens.len(),
        true,
        b * p,
        v,
    );
    g.run(&ops);
    // adamw's workgroup 0 turns the rows into the step's stats
    let stats = g.stats(&brows, &[0.5; 40], b, p);
    let lv = Var::from_tensor(&t(&logits, &[b, p, v])).unwrap();
    let tg = Tensor::from_slice(&targets, (b, p), &DEV).unwrap();
    let lp = forward::log_softmax_forward(lv.as_tensor()).unwrap();
    let per_row = lp
        .gather(&tg.unsqueeze(D::Minus1).unwrap(), D::Minus1)
        .unwrap()
        .neg()
        .unwrap();
    let loss = forward::cross_entropy_forward(lv.as_tensor(), &tg).unwrap();
    let grads = loss.backward().unwrap();
    assert_close(
        "crossentropy row loss",
        &g.read(&brows, b * p),
        &flat(&per_row),
        1e-5,
        1e-5,
    );
    assert_close(
        "crossentropy dlogits",
        &g.read(&bl, b * p * v),
        &flat(grads.get(lv.as_tensor()).unwrap()),
        1e-7,
        1e-4,
    );
    let am = lv
        .as_tensor()
        .argmax(D::Minus1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    assert_eq!(g.read_u32(&barg, b * p), am, "argmax");
    assert_close(
        "stats mean loss",
        &[f32::from_bits(stats[0])],
        &[loss.to_scalar::<f32>().unwrap()],
        1e-6,
        1e-5,
    );
    let (tok, seq, _, per) = toyformer::train::accuracy(&am, &targets, p, &[]);
    let per_count: Vec<u32> = per.iter().map(|x| (x * b as f32).round() as u32).collect();
    assert_eq!(&stats[4..], &per_count[..], "correct per position");
    assert_eq!(stats[2], (seq * b as f32).round() as u32, "sequences right");
    assert_eq!(stats[3], 0, "finite loss");
    let norm = f32::from_bits(stats[1]);
    assert_close("stats grad norm", &[norm], &[10f32.sqrt()], 0.0, 1e-6);
    assert!(
        tok > 0.0 && seq > 0.0,
        "the test put right rows in (row 0..3 is a whole sequence)"
    );
}

#[test]
fn grad_norm_clip_and_adamw_match_candle() {
    let Some(g) = Rig::new() else { return };
    let total = 1000;
    let (theta, grad) = (randn(total, 80, 1.0), randn(total, 81, 0.3));
    // elements 100..200 frozen
    let mut mask = vec![u32::MAX; total.div_ceil(32)];
    for i in 100..200 {
        mask[i / 32] &= !(1 << (i % 32));
    }
    let mut gz = grad.clone();
    for x in &mut gz[100..200] {
        *x = 0.0; // frozen parameters never receive a gradient
    }
    let (bt, bgr, bmom, bmask, bsched, bstats) = (
        g.f32s(&theta),
        g.f32s(&gz),
        g.zeros(2 * total),
        g.u32s(&mask),
        g.zeros(8),
        g.zeros(5),
    );
    let rows = g.u32s(&[0.7f32.to_bits(), 1]); // B = P = 1: a finite loss
    let (lr, b1, b2, eps, wd, clip) = (1e-2f64, 0.9f64, 0.98f64, 1e-8f64, 0.01f64, 1.0f64);
    let opt = AdamwArgs {
        beta1: b1,
        beta2: b2,
        eps,
        clip,
    };
    // one plan for every step (as the runner's): grad_norm's partials, then the halt slots
    let mut ops = Ops::default();
    let (norm_buf, parts) = g.grad_norm_rows(&mut ops, &bgr, &rows, 1, total);
    let io = AdamwIo {
        sched: Window::whole(&bsched, 6),
        norm: &norm_buf,
        parts,
        rows: &rows,
        b: 1,
        p: 1,
        stats: Window::whole(&bstats, 5),
    };
    k::adamw(&mut ops, &g.ctx, &bt, &bmom, &io, &bgr, &bmask, &opt, total);
    let sched = |step: i32| {
        [
            lr as f32,
            (1.0 / (1.0 - b1.powi(step))) as f32,
            (1.0 / (1.0 - b2.powi(step))) as f32,
            (1.0 - lr * wd) as f32,
            ((step - 1) % 2) as f32,
            1.0, // scored rows: B·P = 1
        ]
    };
    for step in 1..=3 {
        let q = &g.ctx.queue;
        q.write_buffer(&bsched, 0, bytemuck::cast_slice(&sched(step)));
        g.run(&ops);
    }
    let norm = gz.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let stats = g.read_u32(&bstats, 5);
    assert_close(
        "grad_norm",
        &[f32::from_bits(stats[1])],
        &[norm as f32],
        1e-6,
        1e-5,
    );
    let coef = (clip / (norm + 1e-6)).min(1.0);
    assert!(coef < 1.0, "this gradient is clipped (norm {norm})");
    // candle-nn AdamW on the trainable part with the clipped gradient as a constant
    let mut idx: Vec<usize> = (0..100).collect();
    idx.extend(200..total);
    let th: Vec<f32> = idx.iter().map(|&i| theta[i]).collect();
    let gc: Vec<f32> = idx.iter().map(|&i| (gz[i] as f64 * coef) as f32).collect();
    let var = Var::from_tensor(&t(&th, &[th.len()])).unwrap();
    let mut opt = candle_nn::AdamW::new(
        vec![var.clone()],
        candle_nn::ParamsAdamW {
            lr,
            beta1: b1,
            beta2: b2,
            eps,
            weight_decay: wd,
        },
    )
    .unwrap();
    use candle_nn::Optimizer;
    for _ in 0..3 {
        let loss = (var.as_tensor() * t(&gc, &[gc.len()]))
            .unwrap()
            .sum_all()
            .unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let got = g.read(&bt, total);
    let got_tr: Vec<f32> = idx.iter().map(|&i| got[i]).collect();
    assert_close(
        "adamw θ after 3 steps (trainable)",
        &got_tr,
        &flat(var.as_tensor()),
        1e-6,
        1e-5,
    );
    assert_eq!(&got[100..200], &theta[100..200], "frozen entries unchanged");

    // a non-finite gradient halts: the stats flag it, adamw leaves θ alone, and the halt slot it
    // writes keeps the next step (a finite gradient, the other parity) halted too
    let mut bad = gz.clone();
    bad[7] = f32::NAN;
    let q = &g.ctx.queue;
    q.write_buffer(&bgr, 0, bytemuck::cast_slice(&bad));
    q.write_buffer(&bsched, 0, bytemuck::cast_slice(&sched(4)));
    g.run(&ops);
    assert_eq!(g.read_u32(&bstats, 5)[3] & 2, 2, "non-finite norm flagged");
    assert_eq!(g.read(&bt, total), got, "halted: θ unchanged");
    q.write_buffer(&bgr, 0, bytemuck::cast_slice(&gz));
    q.write_buffer(&bsched, 0, bytemuck::cast_slice(&sched(5)));
    g.run(&ops);
    assert_eq!(
        g.read_u32(&bstats, 5)[3],
        0,
        "this step's own figures are finite"
    );
    assert_eq!(g.read(&bt, total), got, "still halted by the earlier step");
    // a new chunk clears the slots: θ moves again
    q.write_buffer(&norm_buf, parts as u64 * 4, &[0u8; 8]);
    g.run(&ops);
    assert_ne!(g.read(&bt, total), got, "cleared halt: θ moves");
}

#[test]
fn metrics_counts_long_position_lists() {
    let Some(g) = Rig::new() else { return };
    // P > 256 (perm n = 5 scores 721 positions): the positions past 256 take the loop
    for (b, p) in [(3usize, 300usize), (70, 3), (1, 257)] {
        let mut r = toyformer::tasks::rng::CounterRng::new(b as u64, p as u64, 0);
        let ok: Vec<u32> = (0..b * p).map(|_| (r.below(10) < 8) as u32).collect();
        let loss = randn(b * p, 90, 1.0);
        let rows: Vec<u32> = loss
            .iter()
            .map(|x| x.to_bits())
            .chain(ok.iter().copied())
            .collect();
        let stats = g.stats(&g.u32s(&rows), &[0.0; 3], b, p);
        let per: Vec<u32> = (0..p)
            .map(|i| (0..b).map(|bb| ok[bb * p + i]).sum())
            .collect();
        let seq = (0..b)
            .filter(|&bb| (0..p).all(|i| ok[bb * p + i] == 1))
            .count() as u32;
        assert_eq!(&stats[4..], &per[..], "right per position, B {b} P {p}");
        assert_eq!(stats[2], seq, "whole sequences, B {b} P {p}");
        let mean = loss.iter().map(|&x| x as f64).sum::<f64>() / (b * p) as f64;
        assert_close(
            &format!("mean loss, B {b} P {p}"),
            &[f32::from_bits(stats[0])],
            &[mean as f32],
            1e-6,
            1e-5,
        );
    }
}

#[test]
fn shortformer_forward_and_backward() {
    let Some(g) = Rig::new() else { return };
    // W_pos at an offset of a longer buffer, n_ctx = T + 2 rows; B·T·C not a multiple of 256
    let (b, tt, c, wp_off) = (5, 7, 13, 9);
    let (x, w, dxqk, g0) = (
        randn(b * tt * c, 70, 1.0),
        randn(wp_off + (tt + 2) * c, 71, 1.0),
        randn(b * tt * c, 72, 1.0),
        randn(wp_off + (tt + 2) * c, 73, 1.0),
    );
    let (bx, bw, bxqk, bd) = (g.f32s(&x), g.f32s(&w), g.zeros(b * tt * c), g.f32s(&dxqk));
    let (set, add) = (g.f32s(&g0), g.f32s(&g0));
    let mut ops = Ops::default();
    k::shortformer_forward(&mut ops, &g.ctx, &bxqk, &bx, &bw, wp_off, b * tt, tt, c);
    k::shortformer_backward(&mut ops, &g.ctx, &set, &bd, wp_off, false, b, tt, c);
    k::shortformer_backward(&mut ops, &g.ctx, &add, &bd, wp_off, true, b, tt, c);
    g.run(&ops);
    let wp = Var::from_tensor(&t(&w[wp_off..wp_off + tt * c], &[tt, c])).unwrap();
    let xqk = t(&x, &[b, tt, c])
        .broadcast_add(&wp.as_tensor().unsqueeze(0).unwrap())
        .unwrap();
    assert_close(
        "shortformer_forward",
        &g.read(&bxqk, b * tt * c),
        &flat(&xqk),
        0.0,
        0.0,
    );
    let grads = (&xqk * t(&dxqk, &[b, tt, c]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dwp = flat(grads.get(wp.as_tensor()).unwrap());
    let (got_set, got_add) = (g.read(&set, g0.len()), g.read(&add, g0.len()));
    let r = wp_off..wp_off + tt * c;
    assert_close(
        "shortformer_backward dW_pos",
        &got_set[r.clone()],
        &dwp,
        1e-5,
        1e-5,
    );
    let acc: Vec<f32> = dwp.iter().zip(&g0[r.clone()]).map(|(a, b)| a + b).collect();
    assert_close(
        "shortformer_backward accumulated",
        &got_add[r.clone()],
        &acc,
        1e-5,
        1e-5,
    );
    // nothing outside dW_pos (T, C) is written
    for got in [&got_set, &got_add] {
        assert_eq!(&got[..wp_off], &g0[..wp_off]);
        assert_eq!(&got[r.end..], &g0[r.end..]);
    }
}

#[test]
fn embed_without_positions_leaves_w_pos_out() {
    let Some(g) = Rig::new() else { return };
    let (b, tt, c, v) = (3, 5, 6, 7);
    let mut r = toyformer::tasks::rng::CounterRng::new(4, 5, 6);
    let tokens: Vec<u32> = (0..b * tt).map(|_| r.below(v as u64) as u32).collect();
    let (w, dres, g0) = (
        randn(v * c + tt * c, 80, 1.0),
        randn(b * tt * c, 81, 1.0),
        randn(v * c + tt * c, 82, 1.0),
    );
    let mut step = Vec::new();
    toyformer::gpu::plan::step_data(&tokens, v, true, &mut step);
    let (bs, bw, bres, bdres, bg) = (
        g.u32s(&step),
        g.f32s(&w),
        g.zeros(b * tt * c),
        g.f32s(&dres),
        g.f32s(&g0),
    );
    let win = Window::whole(&bs, step.len());
    let mut ops = Ops::default();
    k::embed_forward(
        &mut ops,
        &g.ctx,
        &bres,
        None,
        win,
        0,
        &bw,
        0,
        None,
        b * tt,
        tt,
        c,
    );
    let mut sums = g.sums(toyformer::gpu::plan::max_segments(b * tt, v) * c);
    k::embed_backward(
        &mut ops, &g.ctx, &bg, &mut sums, &bdres, win, 0, None, b, tt, c, v,
    );
    g.run(&ops);
    let want: Vec<f32> = tokens
        .iter()
        .flat_map(|&x| w[x as usize * c..(x as usize + 1) * c].to_vec())
        .collect();
    assert_close(
        "embed_forward, no positions",
        &g.read(&bres, b * tt * c),
        &want,
        0.0,
        0.0,
    );
    let got = g.read(&bg, v * c + tt * c);
    assert_eq!(&got[v * c..], &g0[v * c..], "dW_pos is not written");
}
