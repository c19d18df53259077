//! Activation and scratch buffers of the CPU engine, kept between steps and resized when
//! the batch or the row sets change. The forward fills every buffer it later reads; the
//! backward zeroes what it accumulates into.

/// What one forward pass computes: B sequences of T tokens, keys at positions 0..TK, and
/// the last layer's query rows (every other layer uses all TK rows).
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub b: usize,
    /// Tokens per sequence in the input (B, T).
    pub t: usize,
    /// Positions processed: 0..TK, with TK = last row + 1 ≤ T.
    pub tk: usize,
    /// The last layer's query rows (ascending); the scored rows when training.
    pub last_rows: Vec<usize>,
    /// Whether layer 0 gathers its Q/K/V from (W_E W, W_pos W) tables (no LayerNorm).
    pub factored: bool,
}

impl Shape {
    /// The rows of layer `l` of `n_layers`.
    pub fn rows(&self, l: usize, n_layers: usize) -> Vec<usize> {
        if l + 1 == n_layers {
            self.last_rows.clone()
        } else {
            (0..self.tk).collect()
        }
    }
}

/// One block's activations. Letters: TQ = this layer's query rows.
#[derive(Default)]
pub struct BlockActs {
    /// (TQ) absolute positions of the query rows.
    pub rows: Vec<usize>,
    /// (B, TK, C) the residual stream entering the block (hook_resid_pre).
    pub inp: Vec<f32>,
    /// (B, TK, C) ln1 output, and its mean / rstd (B, TK); empty without LN.
    pub ln1: Vec<f32>,
    pub ln1_mean: Vec<f32>,
    pub ln1_rstd: Vec<f32>,
    /// (B, TK, C) shortformer's query and key input, ln1 output + W_pos; empty otherwise.
    pub xqk: Vec<f32>,
    /// (B, TQ, C) the query input at the query rows, when they are not all rows.
    pub xq: Vec<f32>,
    /// (NH, B, TQ, HS) queries; (NH, B, TK, HS) keys and values.
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// (NH, B, TQ) log-sum-exp of each query row's scores.
    pub lse: Vec<f32>,
    /// (NH, B, TQ, HS) hook_z, head-major.
    pub z: Vec<f32>,
    /// (B, TQ, C) resid after attention (hook_resid_mid, or hook_resid_post without MLP).
    pub mid: Vec<f32>,
    /// (B, TQ, C) ln2 output, mean / rstd (B, TQ); empty without LN or MLP.
    pub ln2: Vec<f32>,
    pub ln2_mean: Vec<f32>,
    pub ln2_rstd: Vec<f32>,
    /// (B, TQ, M) MLP pre- and post-activation.
    pub pre: Vec<f32>,
    pub post: Vec<f32>,
    /// (B, TQ, C) resid after the MLP (hook_resid_post); empty without MLP (mid is it).
    pub out: Vec<f32>,
}

impl BlockActs {
    /// The block's output rows (B, TQ, C).
    pub fn output(&self) -> &[f32] {
        if self.out.is_empty() {
            &self.mid
        } else {
            &self.out
        }
    }
}

/// Layer-0 gather tables (factored path): for Q, K, V, (NH, V, HS) and (NH, TK, HS).
#[derive(Default)]
pub struct EmbedTables {
    pub e: [Vec<f32>; 3],
    pub p: [Vec<f32>; 3],
    /// The bits of the inputs the tables were built from (W_E, W_pos's rows, W_Q, W_K, W_V,
    /// C, NH, HS, the shortformer flag): a forward with the same inputs reuses them (the batch's shards
    /// in one step all run on the same weights). Empty: not built.
    pub key: Vec<u32>,
}

/// The unembedding and loss.
#[derive(Default)]
pub struct FinalActs {
    /// (B, P, C) ln_final output and its mean / rstd (B, P); empty without LN.
    pub lnf: Vec<f32>,
    pub lnf_mean: Vec<f32>,
    pub lnf_rstd: Vec<f32>,
    /// (B, P, V) logits, then their softmax.
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    /// (B, P) per-row loss, argmax, target.
    pub losses: Vec<f32>,
    pub argmax: Vec<u32>,
    pub targets: Vec<u32>,
}

/// Backward scratch, reused from layer to layer.
#[derive(Default)]
pub struct Scratch {
    /// (B, TQ, C) gradient of the block output, then of resid_mid.
    pub dout: Vec<f32>,
    pub dmid: Vec<f32>,
    /// (B, TQ, C), (B, TQ, M), (B, TQ, M): MLP gradients.
    pub dx2: Vec<f32>,
    pub dpre: Vec<f32>,
    pub dpost: Vec<f32>,
    /// (NH, B, TQ, HS), (NH, B, TK, HS) ×2: attention gradients.
    pub dz: Vec<f32>,
    pub dq: Vec<f32>,
    pub dk: Vec<f32>,
    pub dv: Vec<f32>,
    /// (B, TQ, C) gradient at the gathered query rows.
    pub dxq: Vec<f32>,
    /// (B, TK, C) gradient of the attention input (ln1 output or resid_pre).
    pub dx1: Vec<f32>,
    /// (B, TK, C) shortformer: gradient of the query and key input (ln1 output + W_pos).
    pub dxqk: Vec<f32>,
    /// (B, TK, C) gradient of the block input: the next `dout` down.
    pub dinp: Vec<f32>,
    /// (NH, V, HS), (NH, TK, HS): gradients of the layer-0 gather tables.
    pub de: Vec<f32>,
    pub dp: Vec<f32>,
    /// (B·P, V) dlogits; (B, P, C) gradient of the final residual rows.
    pub dlogits: Vec<f32>,
    pub dxf: Vec<f32>,
}

/// Sets `buf` to `n` elements (contents unspecified: the caller overwrites them).
pub fn size(buf: &mut Vec<f32>, n: usize) {
    buf.resize(n, 0.0);
}

/// Sets `buf` to `n` zeros.
pub fn zeroed(buf: &mut Vec<f32>, n: usize) {
    buf.clear();
    buf.resize(n, 0.0);
}

/// out (B, TR, C) = inp (B, T, C) at `rows`.
pub fn gather_rows(out: &mut [f32], inp: &[f32], rows: &[usize], b: usize, t: usize, c: usize) {
    let tr = rows.len();
    for bi in 0..b {
        for (i, &p) in rows.iter().enumerate() {
            out[(bi * tr + i) * c..(bi * tr + i + 1) * c]
                .copy_from_slice(&inp[(bi * t + p) * c..(bi * t + p + 1) * c]);
        }
    }
}

/// out (B, T, C) at `rows` += inp (B, TR, C).
pub fn scatter_add_rows(
    out: &mut [f32],
    inp: &[f32],
    rows: &[usize],
    b: usize,
    t: usize,
    c: usize,
) {
    let tr = rows.len();
    for bi in 0..b {
        for (i, &p) in rows.iter().enumerate() {
            crate::cpu::kernels::add_into(
                &mut out[(bi * t + p) * c..(bi * t + p + 1) * c],
                &inp[(bi * tr + i) * c..(bi * tr + i + 1) * c],
            );
        }
    }
}

/// Whether `rows` is exactly 0..tk.
pub fn all_rows(rows: &[usize], tk: usize) -> bool {
    rows.len() == tk && rows.iter().enumerate().all(|(i, &p)| i == p)
}
