//! The analysis state behind the page's interpretability cells (and any other
//! interactive front end): a task, a model config, the snapshot store of a run, the
//! selected snapshot and what has been computed for it. Every analysis of this module's
//! siblings is one method here returning a serialisable value; results that depend only
//! on the snapshot (the fresh-sample cache, mean activations, the report, the ablation
//! table, timeline points) are computed once and kept.

use super::attention::{decompose_scores, patterns, ScoreDecomposition};
use super::cache::{run_with_cache, ActivationCache, CachedTensor};
use super::circuits::{
    diagonal_fraction, eigen_copying_score, full_ov_path, full_qk_path, token_block, Embed, Path,
};
use super::intervene::{
    ablation_table_on, activation_patching, mean_z, outcome, run_ablated, Ablation, AblationTable,
    Outcome, PatchReport,
};
use super::mat::Mat;
use super::process::process_weights;
use super::report::{model_report_from, ModelReport};
use super::scores::{argmax_offsets, OffsetSummary};
use super::timeline::{timeline_point, timeline_point_from, SnapshotStore, TimelinePoint};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, Weights};
use crate::reference::ReferenceBackend;
use crate::tasks::TaskSpec;
use crate::train::check_compatible;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of a workbench.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkbenchOptions {
    /// fresh samples the data-based analyses average over
    pub samples: usize,
    /// data-stream seed of those samples
    pub seed: u64,
    /// most snapshots kept
    pub capacity: usize,
    /// first snapshot spacing in steps (doubles as the store thins)
    pub every: u64,
}

impl Default for WorkbenchOptions {
    fn default() -> Self {
        WorkbenchOptions {
            samples: 32,
            seed: 0,
            capacity: 64,
            every: 1,
        }
    }
}

/// What the selected snapshot has computed so far.
struct Current {
    step: u64,
    pw: Weights,
    backend: ReferenceBackend,
    /// full cache of the fresh-sample batch
    cache: ActivationCache,
    means: Option<Vec<CachedTensor>>,
    report: Option<ModelReport>,
    table: Option<AblationTable>,
}

/// The attention view of one input.
#[derive(Clone, Debug, Serialize)]
pub struct AttentionView {
    pub step: u64,
    /// typed form of the input (what the input box shows)
    pub text: String,
    /// token labels (T)
    pub tokens: Vec<String>,
    /// position names (T)
    pub positions: Vec<String>,
    pub pred_positions: Vec<usize>,
    /// for each position p: the answer positions of the prediction made at p (empty
    /// where p predicts nothing)
    pub answer_sources: Vec<Vec<usize>>,
    /// `[layer][head]` (T, T)
    pub patterns: Vec<Vec<Mat>>,
    /// the model's greedy guess at each predicted position's target (label) and whether
    /// it is right, by position p + 1
    pub guesses: Vec<Option<(String, bool)>>,
}

/// The four panels of a head's full QK circuit (with optional paths through earlier heads).
#[derive(Clone, Debug, Serialize)]
pub struct QkView {
    pub step: u64,
    pub layer: usize,
    pub head: usize,
    pub q_path: String,
    pub k_path: String,
    /// 1 / sqrt(d_head), already applied to every panel
    pub scale: f64,
    pub tok_tok: Mat,
    pub tok_pos: Mat,
    pub pos_tok: Mat,
    pub pos_pos: Mat,
    pub token_labels: Vec<String>,
    pub position_names: Vec<String>,
    /// argmax key − query summary of tok·tok over the task's value tokens
    pub argmax: OffsetSummary,
    /// prompt length: positions ≥ this hold the answer so far (for sort: after MID)
    pub prompt_len: usize,
    /// pos·pos: mean over predicted query positions p of (mean score of prompt keys −
    /// mean score of answer keys ≤ p); positive when the head prefers the prompt by
    /// position alone. None when no predicted position sees an answer key.
    pub prompt_preference: Option<f64>,
    pub value_tokens: (usize, usize),
}

/// A head's full OV circuits (or a virtual one through earlier heads).
#[derive(Clone, Debug, Serialize)]
pub struct OvView {
    pub step: u64,
    pub path: String,
    /// W_E … W_U (d_vocab, d_vocab_out)
    pub token: Mat,
    /// W_pos … W_U (n_ctx, d_vocab_out)
    pub pos: Mat,
    pub token_labels: Vec<String>,
    pub output_labels: Vec<String>,
    pub position_names: Vec<String>,
    pub diagonal_fraction: f64,
    pub eigen_copying: f64,
    pub value_tokens: (usize, usize),
}

/// Ablating a set of heads on the fresh samples.
#[derive(Clone, Debug, Serialize)]
pub struct AblationView {
    pub step: u64,
    pub samples: usize,
    pub baseline: Outcome,
    pub ablated: Outcome,
    pub heads: Vec<(usize, usize)>,
    pub kind: Ablation,
}

/// The default clean / corrupted inputs for patching.
#[derive(Clone, Debug, Serialize)]
pub struct PatchInputs {
    pub clean: String,
    pub corrupted: String,
}

pub struct Workbench {
    pub task: TaskSpec,
    pub cfg: ModelConfig,
    pub opts: WorkbenchOptions,
    store: SnapshotStore<Vec<f32>>,
    points: BTreeMap<u64, TimelinePoint>,
    current: Option<Current>,
}

impl Workbench {
    pub fn new(task: TaskSpec, cfg: ModelConfig, opts: WorkbenchOptions) -> Result<Self> {
        check_compatible(&task, &cfg)?;
        if opts.samples == 0 || opts.samples > 4096 {
            return Err(Error::config(
                "samples",
                format!("{} is not in 1..=4096", opts.samples),
            ));
        }
        let store = SnapshotStore::new(opts.capacity, opts.every)?;
        Ok(Workbench {
            task,
            cfg,
            opts,
            store,
            points: BTreeMap::new(),
            current: None,
        })
    }

    /// A workbench holding one model read from a `.safetensors` or TL `.pt` file (its
    /// config from the file's metadata or inferred from the shapes) as snapshot `step`.
    pub fn from_file(
        task: TaskSpec,
        bytes: &[u8],
        step: u64,
        opts: WorkbenchOptions,
    ) -> Result<Self> {
        // a collection model one position short of the task's T gets a zero W_pos row
        let w = task.fit_context(crate::io::load_weights(bytes, None)?)?;
        let mut wb = Self::new(task, w.cfg.clone(), opts)?;
        wb.store = SnapshotStore::new(wb.opts.capacity, 1)?;
        wb.add_snapshot(step, w.data, true)?;
        Ok(wb)
    }

    /// Offers a snapshot (flat weights in table order); returns whether it was kept.
    pub fn add_snapshot(&mut self, step: u64, data: Vec<f32>, tail: bool) -> Result<bool> {
        let want = crate::model::ParamTable::new(&self.cfg).total_len();
        if data.len() != want {
            return Err(Error::Weights(format!(
                "a snapshot of this model holds {want} values, got {}",
                data.len()
            )));
        }
        if let Some(bad) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::Weights(format!(
                "snapshot at step {step}: value {bad} is not finite"
            )));
        }
        let kept = self.store.push(step, data, tail);
        let steps = self.store.steps();
        self.points.retain(|s, _| steps.contains(s));
        Ok(kept)
    }

    /// The kept snapshot steps, ascending.
    pub fn steps(&self) -> Vec<u64> {
        self.store.steps()
    }

    /// The newest snapshot at or before `step` (the oldest one when all are later).
    pub(crate) fn weights_at(&self, step: u64) -> Result<(u64, Weights)> {
        let s = self
            .store
            .at_or_before(step)
            .or_else(|| self.store.get(0))
            .ok_or_else(|| {
                Error::config("step", "no snapshot yet (train first, or load a model)")
            })?;
        let mut w = Weights::zeros(&self.cfg)?;
        w.data.clone_from(&s.data);
        Ok((s.step, w))
    }

    /// Selects the newest snapshot at or before `step` (the newest of all for None; the
    /// oldest when every snapshot is later); returns its step. Reselecting the same snapshot keeps what was computed.
    pub fn select(&mut self, step: Option<u64>) -> Result<u64> {
        let (s, w) = self.weights_at(step.unwrap_or(u64::MAX))?;
        if self.current.as_ref().is_some_and(|c| c.step == s) {
            return Ok(s);
        }
        let pw = process_weights(&w)?;
        let backend = ReferenceBackend::for_inference(&pw)?;
        let n = self.opts.samples;
        let tokens = self.task.batch(self.opts.seed, super::ANALYSIS_STEP, n);
        let cache = run_with_cache(&backend, &tokens, n)?;
        self.current = Some(Current {
            step: s,
            pw,
            backend,
            cache,
            means: None,
            report: None,
            table: None,
        });
        Ok(s)
    }

    /// The selected snapshot's weights (TL-processed, as every analysis here uses them).
    pub fn weights(&self) -> Result<&Weights> {
        Ok(&self.cur()?.pw)
    }

    fn cur(&self) -> Result<&Current> {
        self.current.as_ref().ok_or_else(|| {
            Error::config(
                "step",
                "no snapshot selected yet (train first, or load a model)",
            )
        })
    }

    /// The step of the selected snapshot.
    pub fn selected(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.step)
    }

    /// A whole sequence for typed text (the task's prompt format, answered correctly);
    /// the first fresh sample for empty text.
    pub fn sequence(&self, text: &str) -> Result<Vec<u32>> {
        if text.trim().is_empty() {
            return Ok(self.task.sample(self.opts.seed, super::ANALYSIS_STEP, 0));
        }
        self.task.solve(&self.task.parse_prompt(text)?)
    }

    /// Default patching inputs: the first fresh sample, and the same with one value in the
    /// middle of the prompt replaced by a value that is not in it.
    pub fn patch_inputs(&self) -> Result<PatchInputs> {
        let clean = self.sequence("")?;
        let pl = self.task.prompt_len();
        if let Some(p) = self.task.corrupt_prompt(&clean[..pl.min(clean.len())], 1) {
            let corrupted = self.task.solve(&p)?; // the task's own corruption (custom data)
            return Ok(PatchInputs {
                clean: self.task.prompt_text(&clean),
                corrupted: self.task.prompt_text(&corrupted),
            });
        }
        let ids = self.task.value_tokens();
        let (start, len) = self.task.corrupt_span();
        let mut prompt = clean[..self.task.prompt_len()].to_vec();
        let at = start + len / 2;
        let old = prompt[at] as usize;
        let span = ids.len();
        // the value half-way round the range from the old one, skipping values present
        let new = (1..span)
            .map(|d| ids.start + (old - ids.start + span / 2 + d - 1) % span)
            .find(|&v| !prompt[start..start + len].contains(&(v as u32)))
            .unwrap_or(old);
        prompt[at] = new as u32;
        let corrupted = self.task.solve(&prompt)?;
        Ok(PatchInputs {
            clean: self.task.prompt_text(&clean),
            corrupted: self.task.prompt_text(&corrupted),
        })
    }

    /// Attention patterns of every head on the input `text` (see [`Self::sequence`]).
    pub fn attention(&self, text: &str) -> Result<AttentionView> {
        let cur = self.cur()?;
        let seq = self.sequence(text)?;
        let cache = run_with_cache(&cur.backend, &seq, 1)?;
        let vocab = self.task.vocab();
        let out_vocab = self.task.output_vocab();
        let preds = self.task.pred_positions();
        let t = seq.len();
        let mut guesses = vec![None; t];
        let v = self.cfg.d_vocab_out;
        for (&p, tg) in preds.iter().zip(self.task.targets(&seq)) {
            let g = crate::train::eval::argmax(&cache.logits.data[p * v..(p + 1) * v]);
            guesses[self.task.shown_at(p)] = Some((
                out_vocab.get(g as usize).cloned().unwrap_or_default(),
                g == tg,
            ));
        }
        Ok(AttentionView {
            step: cur.step,
            text: self.task.prompt_text(&seq),
            tokens: seq.iter().map(|&x| vocab[x as usize].clone()).collect(),
            positions: self.task.position_names(),
            answer_sources: (0..t).map(|p| self.task.answer_sources(&seq, p)).collect(),
            pred_positions: preds,
            patterns: patterns(&cache, 0)?,
            guesses,
        })
    }

    /// The score decomposition of head (layer, head) on `text`.
    pub fn decomposition(
        &self,
        text: &str,
        layer: usize,
        head: usize,
    ) -> Result<ScoreDecomposition> {
        let cur = self.cur()?;
        let seq = self.sequence(text)?;
        let cache = run_with_cache(&cur.backend, &seq, 1)?;
        decompose_scores(&cur.pw, &cache, 0, layer, head)
    }

    /// The four QK panels of head (layer, head), with the query side read through the heads
    /// `q_through` and the key side through `k_through` (empty: the direct circuits).
    pub fn qk(
        &self,
        layer: usize,
        head: usize,
        q_through: &[(usize, usize)],
        k_through: &[(usize, usize)],
    ) -> Result<QkView> {
        let cur = self.cur()?;
        let path = |e: Embed, through: &[(usize, usize)]| Path {
            embed: e,
            through: through.to_vec(),
        };
        let panel = |q: Embed, k: Embed| {
            full_qk_path(
                &cur.pw,
                layer,
                head,
                &path(q, q_through),
                &path(k, k_through),
            )
        };
        let tok_tok = panel(Embed::Token, Embed::Token)?;
        let pos_pos = panel(Embed::Pos, Embed::Pos)?;
        let ids = self.task.value_tokens();
        let prompt_len = self.task.prompt_len();
        let gaps: Vec<f64> = self
            .task
            .pred_positions()
            .into_iter()
            .filter(|&p| p >= prompt_len)
            .map(|p| {
                let mean = |ks: std::ops::Range<usize>| {
                    ks.clone().map(|k| pos_pos.at(p, k) as f64).sum::<f64>() / ks.len() as f64
                };
                mean(0..prompt_len) - mean(prompt_len..p + 1)
            })
            .collect();
        Ok(QkView {
            prompt_len,
            prompt_preference: (!gaps.is_empty())
                .then(|| gaps.iter().sum::<f64>() / gaps.len() as f64),
            step: cur.step,
            layer,
            head,
            q_path: path(Embed::Token, q_through).label(),
            k_path: path(Embed::Token, k_through).label(),
            scale: 1.0 / (self.cfg.d_head as f64).sqrt(),
            argmax: argmax_offsets(&tok_tok, ids.clone())?,
            tok_tok,
            tok_pos: panel(Embed::Token, Embed::Pos)?,
            pos_tok: panel(Embed::Pos, Embed::Token)?,
            pos_pos,
            token_labels: self.task.vocab(),
            position_names: self.task.position_names(),
            value_tokens: (ids.start, ids.end),
        })
    }

    /// The OV circuits through `through` (the head itself last; two heads in layers 0 and 1
    /// give the virtual OV circuit).
    pub fn ov(&self, through: &[(usize, usize)]) -> Result<OvView> {
        let cur = self.cur()?;
        let token = full_ov_path(
            &cur.pw,
            &Path {
                embed: Embed::Token,
                through: through.to_vec(),
            },
        )?;
        let pos = full_ov_path(
            &cur.pw,
            &Path {
                embed: Embed::Pos,
                through: through.to_vec(),
            },
        )?;
        let ids = self.task.copy_tokens();
        if ids.is_empty() {
            return Err(Error::config(
                "task",
                format!(
                    "{}'s outputs are labels, not tokens: its OV circuit has no token-to-token block",
                    self.task.name()
                ),
            ));
        }
        let block = token_block(&token, ids.clone())?;
        let vocab = self.task.vocab();
        Ok(OvView {
            step: cur.step,
            path: Path {
                embed: Embed::Token,
                through: through.to_vec(),
            }
            .label(),
            diagonal_fraction: diagonal_fraction(&block),
            eigen_copying: eigen_copying_score(&block)?,
            output_labels: vocab[..self.cfg.d_vocab_out.min(vocab.len())].to_vec(),
            token_labels: vocab,
            position_names: self.task.position_names(),
            token,
            pos,
            value_tokens: (ids.start, ids.end),
        })
    }

    /// Every per-head score and the DLA (kept per snapshot).
    pub fn report(&mut self) -> Result<&ModelReport> {
        let task = self.task.clone();
        let cur = self
            .current
            .as_mut()
            .ok_or_else(|| Error::config("step", "no snapshot selected yet"))?;
        if cur.report.is_none() {
            cur.report = Some(model_report_from(&cur.pw, &task, &cur.cache)?);
        }
        Ok(cur.report.as_ref().expect("just computed"))
    }

    /// The mean hook_z over the fresh samples of the selected snapshot (computed once).
    fn ensure_means(&mut self) -> Result<()> {
        let cur = self
            .current
            .as_mut()
            .ok_or_else(|| Error::config("step", "no snapshot selected yet"))?;
        if cur.means.is_none() {
            cur.means = Some(mean_z(&cur.cache)?);
        }
        Ok(())
    }

    /// Zero- or mean-ablates the heads together on the fresh samples.
    pub fn ablate(&mut self, heads: &[(usize, usize)], kind: Ablation) -> Result<AblationView> {
        if kind == Ablation::Mean {
            self.ensure_means()?;
        }
        let cur = self.cur()?;
        let baseline = outcome(&self.task, &cur.cache);
        let ablated = if heads.is_empty() {
            baseline
        } else {
            let c = run_ablated(
                &cur.backend,
                &cur.cache.tokens,
                cur.cache.batch,
                heads,
                kind,
                cur.means.as_deref(),
            )?;
            outcome(&self.task, &c)
        };
        Ok(AblationView {
            step: cur.step,
            samples: cur.cache.batch,
            baseline,
            ablated,
            heads: heads.to_vec(),
            kind,
        })
    }

    /// Every head ablated alone, zero and mean (kept per snapshot).
    pub fn ablation_table(&mut self) -> Result<&AblationTable> {
        self.ensure_means()?;
        let task = &self.task;
        let cur = self
            .current
            .as_mut()
            .ok_or_else(|| Error::config("step", "no snapshot selected yet"))?;
        if cur.table.is_none() {
            let means = cur.means.as_deref().unwrap_or(&[]);
            cur.table = Some(ablation_table_on(&cur.backend, task, &cur.cache, means)?);
        }
        Ok(cur.table.as_ref().expect("just computed"))
    }

    /// Activation patching from `clean` into `corrupted` (typed inputs).
    pub fn patching(&self, clean: &str, corrupted: &str) -> Result<PatchReport> {
        let cur = self.cur()?;
        let (c, k) = (self.sequence(clean)?, self.sequence(corrupted)?);
        activation_patching(&cur.backend, &self.task, &c, &k)
    }

    /// The timeline points of every kept snapshot (computing the missing ones).
    pub fn timeline(&mut self) -> Result<Vec<TimelinePoint>> {
        while self.timeline_fill(usize::MAX)? > 0 {}
        Ok(self.timeline_points())
    }

    /// Computes at most `max` missing timeline points (newest first, so the curve's end
    /// is current); returns how many are still missing. Lets a front end spread the work.
    pub fn timeline_fill(&mut self, max: usize) -> Result<usize> {
        let missing: Vec<u64> = self
            .store
            .steps()
            .into_iter()
            .rev()
            .filter(|s| !self.points.contains_key(s))
            .collect();
        for &step in missing.iter().take(max) {
            let p = match &self.current {
                // the selected snapshot has its weights processed and its samples run
                Some(c) if c.step == step => {
                    timeline_point_from(&c.pw, &c.cache, step, &self.task)?
                }
                _ => timeline_point(
                    &self.weights_at(step)?.1,
                    step,
                    &self.task,
                    self.opts.samples,
                    self.opts.seed,
                )?,
            };
            self.points.insert(step, p);
        }
        Ok(missing.len().saturating_sub(max))
    }

    /// The timeline points computed so far, by step.
    pub fn timeline_points(&self) -> Vec<TimelinePoint> {
        self.points.values().cloned().collect()
    }
}
