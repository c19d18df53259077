//! The parameter table: every tensor of the TransformerLens state dict, in one fixed
//! order, with its shape and its offset in one flat f32 buffer. Weights, gradients and
//! Adam moments of every backend use this layout, so a snapshot, an export or an
//! optimiser step is one loop over one table.

use crate::error::{Error, Result};
use crate::model::config::ModelConfig;

/// What kind of tensor a parameter is; decides its initialisation and whether it trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A weight matrix (W_*): N(0, initializer_range²), always trains.
    Weight,
    /// A bias (b_*): zeros, trains only when `train_biases`.
    Bias,
    /// A LayerNorm gain (`ln*.w`): ones, always trains.
    LnWeight,
    /// A LayerNorm bias (`ln*.b`): zeros, always trains.
    LnBias,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// TransformerLens state-dict key, e.g. `blocks.0.attn.W_Q`.
    pub name: String,
    pub shape: Vec<usize>,
    /// Offset (in f32 elements) in the flat buffer.
    pub offset: usize,
    pub len: usize,
    pub kind: ParamKind,
    pub trainable: bool,
}

/// The table for one config. Order: embed, pos_embed, then per block ln1, attn, ln2, mlp,
/// then ln_final, unembed.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamTable {
    pub params: Vec<ParamInfo>,
}

impl ParamTable {
    pub fn new(cfg: &ModelConfig) -> Self {
        let (c, nh, hs, v, vo, t) = (
            cfg.d_model,
            cfg.n_heads,
            cfg.d_head,
            cfg.d_vocab,
            cfg.d_vocab_out,
            cfg.n_ctx,
        );
        let mut list: Vec<(String, Vec<usize>, ParamKind)> = Vec::new();
        use ParamKind::*;
        list.push(("embed.W_E".into(), vec![v, c], Weight));
        list.push(("pos_embed.W_pos".into(), vec![t, c], Weight));
        let ln = cfg.normalization_type.is_some();
        for l in 0..cfg.n_layers {
            let b = format!("blocks.{l}");
            if ln {
                list.push((format!("{b}.ln1.w"), vec![c], LnWeight));
                list.push((format!("{b}.ln1.b"), vec![c], LnBias));
            }
            for w in ["W_Q", "W_K", "W_V"] {
                list.push((format!("{b}.attn.{w}"), vec![nh, c, hs], Weight));
            }
            list.push((format!("{b}.attn.W_O"), vec![nh, hs, c], Weight));
            for bb in ["b_Q", "b_K", "b_V"] {
                list.push((format!("{b}.attn.{bb}"), vec![nh, hs], Bias));
            }
            list.push((format!("{b}.attn.b_O"), vec![c], Bias));
            if let Some(m) = cfg.d_mlp {
                if ln {
                    list.push((format!("{b}.ln2.w"), vec![c], LnWeight));
                    list.push((format!("{b}.ln2.b"), vec![c], LnBias));
                }
                list.push((format!("{b}.mlp.W_in"), vec![c, m], Weight));
                list.push((format!("{b}.mlp.b_in"), vec![m], Bias));
                list.push((format!("{b}.mlp.W_out"), vec![m, c], Weight));
                list.push((format!("{b}.mlp.b_out"), vec![c], Bias));
            }
        }
        if ln {
            list.push(("ln_final.w".into(), vec![c], LnWeight));
            list.push(("ln_final.b".into(), vec![c], LnBias));
        }
        list.push(("unembed.W_U".into(), vec![c, vo], Weight));
        list.push(("unembed.b_U".into(), vec![vo], Bias));

        let mut offset = 0;
        let params = list
            .into_iter()
            .map(|(name, shape, kind)| {
                let len = shape.iter().product();
                // positions off: W_pos is frozen (at zero)
                let frozen_pos = name == "pos_embed.W_pos"
                    && cfg.positional_embedding_type == super::Positions::Off;
                let p = ParamInfo {
                    name,
                    shape,
                    offset,
                    len,
                    kind,
                    trainable: (kind != Bias || cfg.train_biases) && !frozen_pos,
                };
                offset += len;
                p
            })
            .collect();
        ParamTable { params }
    }

    pub fn total_len(&self) -> usize {
        self.params.last().map(|p| p.offset + p.len).unwrap_or(0)
    }

    pub fn get(&self, name: &str) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Backend-neutral model weights: the config plus one flat f32 buffer in table order.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub cfg: ModelConfig,
    pub table: ParamTable,
    /// (total_len,) every parameter, table order.
    pub data: Vec<f32>,
}

impl Weights {
    /// All zeros (LN gains included); use [`Weights::init`] for a trainable start.
    pub fn zeros(cfg: &ModelConfig) -> Result<Self> {
        cfg.validate()?;
        let table = ParamTable::new(cfg);
        let data = vec![0.0; table.total_len()];
        Ok(Weights {
            cfg: cfg.clone(),
            table,
            data,
        })
    }

    /// TransformerLens "gpt2" init from `cfg.seed`: W_* ~ N(0, (0.8/sqrt(d_model))²),
    /// biases 0, LN gains 1, LN biases 0. Normals come from the crate's counter-based RNG
    /// (Box–Muller), so the same seed gives the same weights on every platform.
    pub fn init(cfg: &ModelConfig) -> Result<Self> {
        let mut w = Self::zeros(cfg)?;
        let std = cfg.initializer_range() as f32;
        for (pi, p) in w.table.params.iter().enumerate() {
            let dst = &mut w.data[p.offset..p.offset + p.len];
            match p.kind {
                // positions off: W_pos stays zero (and frozen)
                ParamKind::Weight if !p.trainable => {}
                ParamKind::Weight => {
                    let mut rng = crate::rng::CounterRng::new(cfg.seed, 0x1417_0000 + pi as u64, 0);
                    for x in dst.iter_mut() {
                        *x = rng.normal() as f32 * std;
                    }
                }
                ParamKind::LnWeight => dst.fill(1.0),
                ParamKind::Bias | ParamKind::LnBias => {}
            }
        }
        Ok(w)
    }

    /// The slice of one parameter by its TL key.
    pub fn get(&self, name: &str) -> Result<&[f32]> {
        let p = self
            .table
            .get(name)
            .ok_or_else(|| Error::Weights(format!("no parameter named `{name}`")))?;
        Ok(&self.data[p.offset..p.offset + p.len])
    }

    pub fn get_mut(&mut self, name: &str) -> Result<&mut [f32]> {
        let p = self
            .table
            .get(name)
            .ok_or_else(|| Error::Weights(format!("no parameter named `{name}`")))?
            .clone();
        Ok(&mut self.data[p.offset..p.offset + p.len])
    }

    /// Sets one parameter from a named tensor, checking its shape.
    pub fn set(&mut self, name: &str, shape: &[usize], values: &[f32]) -> Result<()> {
        let p = self
            .table
            .get(name)
            .ok_or_else(|| Error::Weights(format!("no parameter named `{name}`")))?
            .clone();
        if p.shape != shape {
            return Err(Error::ShapeMismatch {
                name: name.into(),
                expected: p.shape.clone(),
                actual: shape.to_vec(),
            });
        }
        if values.len() != p.len {
            return Err(Error::Weights(format!(
                "tensor `{name}` holds {} values, expected {}",
                values.len(),
                p.len
            )));
        }
        self.data[p.offset..p.offset + p.len].copy_from_slice(values);
        Ok(())
    }

    /// True when every value is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }
}
