//! The seed-000 study: how a small transformer writes out all permutations, measured.
//! Every number in docs/FINDINGS.md comes from one of these commands.
//!
//! cargo run --release --example study_perm -- --what floor
//!     the loss floor per n, and the exact entropy of each first-term slot
//! cargo run --release --example study_perm -- --what attention --n 4 [--n-layers 1] [--steps 1500]
//!     [--batch 32] [--lr 1e-3] [--holdout 0.2] [--samples 64] [--complete 50] [--json]
//!     trains (deterministically) and reports: held-out loss vs floor, per-slot first-term
//!     loss vs its entropy, greedy completions, OV copying, DLA, and per head where the
//!     copy steps attend (first term / previous term / older terms), how positional that
//!     is, and which score terms do the selecting; head ablations
//! cargo run --release --example study_perm -- --what spikes --n 4 --batch 4 --steps 3100
//!     --schedule plateau --patience 100 --beta2 0.99 [--probe-every 1] [--csv FILE]
//!     trains with every step recorded and reports loss spikes against gradient norm, the
//!     learning rate and a fixed probe set
//!
//! cargo run --release --example study_perm -- --what formation --n 4 --steps 300 [--every 10] [--samples 32] [--json]
//!     trains step by step and, every `--every` steps, measures on fixed held-out sequences the
//!     algorithm loss and accuracy and per head the OV copying scores, the attention on the
//!     answer positions and what the pos·pos term alone gives: when the copy circuit forms
//!
//! Training options (all modes that train): the task/model options of `train`
//! (`--n`, `--holdout`, `--split-seed`, `--n-layers`, `--n-heads`, `--d-model`, `--d-head`,
//! `--d-mlp`, `--act-fn`, `--norm`), and `--steps --batch --lr --weight-decay --clip --beta2
//! --seed --schedule (constant|plateau|cosine) --patience --factor --warmup`.
//! `--model FILE` analyses a saved model instead of training; `--save FILE` keeps it.
//! `--what link` prints the page link of the experiment the options describe, without
//! training (the other modes print it too, on stderr).
#[path = "study/attention.rs"]
mod attention;
mod common;
#[path = "study/floor.rs"]
mod floor;
#[path = "study/formation.rs"]
mod formation;
#[path = "study/spikes.rs"]
mod spikes;

use common::*;
use serde_json::json;
use toyformer::backend::{Backend, BackendKind};
use toyformer::backends::make_backend;
use toyformer::interp::intervene::ablation_table;
use toyformer::interp::process::process_weights;
use toyformer::interp::report::{model_report, ModelReport};
use toyformer::interp::ANALYSIS_STEP;
use toyformer::model::{ModelConfig, Weights};
use toyformer::tasks::permutations::{self, N_CHARS};
use toyformer::tasks::{ln_choose, Split, TaskSpec};
use toyformer::train::eval::{argmax, complete, log_prob, EVAL_STEP_OFFSET};
use toyformer::train::{Schedule, TrainConfig};
use toyformer::{Error, Result};

fn main() {
    main_with(run)
}

const OWN: &[&str] = &[
    "what",
    "steps",
    "batch",
    "lr",
    "weight-decay",
    "clip",
    "beta2",
    "seed",
    "schedule",
    "patience",
    "factor",
    "warmup",
    "samples",
    "complete",
    "model",
    "save",
    "every",
    "probe-every",
    "probe-samples",
    "csv",
    "window",
    "rel",
    "min-step",
    "inspect",
];

fn run() -> Result<()> {
    let a = Args::parse(&["json"])?;
    a.check_known(&[TASK_KEYS, MODEL_KEYS, OWN].concat())?;
    match a.str("what").unwrap_or("attention") {
        "floor" => floor_table(&a),
        "attention" => attention(&a),
        "spikes" => spikes(&a),
        "formation" => formation_cmd(&a),
        "link" => {
            let task = task_of(&a)?;
            println!(
                "{}",
                link(&task, &model_from(&a, &task)?, &train_config(&a)?)
            );
            Ok(())
        }
        x => Err(Error::config(
            "what",
            format!("{x:?} is not floor, attention, spikes, formation or link"),
        )),
    }
}

fn task_of(a: &Args) -> Result<TaskSpec> {
    if a.str("task").is_some_and(|t| t != "permutations") {
        return Err(Error::config(
            "task",
            "the study is of the permutations task",
        ));
    }
    let mut t = TaskSpec::permutations(4);
    if let TaskSpec::Permutations {
        n,
        holdout,
        split_seed,
    } = &mut t
    {
        *n = a.get_or("n", *n)?;
        *holdout = a.get_or("holdout", *holdout)?;
        *split_seed = a.get_or("split-seed", *split_seed)?;
    }
    t.validate()?;
    Ok(t)
}

fn train_config(a: &Args) -> Result<TrainConfig> {
    let mut tc = TrainConfig {
        steps: a.get_or("steps", 1500)?,
        batch_size: a.get_or("batch", 32)?,
        seed: a.get_or("seed", 0)?,
        ..Default::default()
    };
    tc.lr = a.get_or("lr", tc.lr)?;
    tc.weight_decay = a.get_or("weight-decay", tc.weight_decay)?;
    tc.grad_clip = a.get_or("clip", tc.grad_clip)?;
    tc.beta2 = a.get_or("beta2", tc.beta2)?;
    tc.schedule = match a.str("schedule").unwrap_or("constant") {
        "constant" => Schedule::Constant,
        "plateau" => Schedule::ReduceOnPlateau {
            factor: a.get_or("factor", 0.1)?,
            patience: a.get_or("patience", 10)?,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
        },
        "cosine" => Schedule::WarmupCosine {
            warmup_steps: a.get_or("warmup", 100)?,
            min_lr_frac: 0.1,
        },
        x => {
            return Err(Error::config(
                "schedule",
                format!("{x:?} is not constant, plateau or cosine"),
            ))
        }
    };
    tc.validate()?;
    Ok(tc)
}

/// The page link (URL fragment) of a trained experiment.
fn link(task: &TaskSpec, model: &toyformer::model::ModelConfig, tc: &TrainConfig) -> String {
    let spec = toyformer::sweep::RunSpec {
        index: 0,
        config_index: 0,
        seed: tc.seed,
        label: Default::default(),
        task: task.clone(),
        model: model.clone(),
        train: tc.clone(),
    };
    toyformer::sweep::page_fragment(&spec)
}

fn save(a: &Args, w: &Weights, task: &TaskSpec, tc: &TrainConfig) -> Result<()> {
    if let Some(out) = a.str("save") {
        let meta = vec![
            ("task".to_string(), serde_json::to_string(task)?),
            ("train_config".to_string(), serde_json::to_string(tc)?),
        ];
        if let Some(dir) = std::path::Path::new(out).parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(out, toyformer::io::save_safetensors(w, &meta)?)?;
        eprintln!("saved {out}");
    }
    Ok(())
}

/// The model to study: trained here (deterministic from the options) or loaded.
fn model_for(a: &Args, task: &TaskSpec) -> Result<(Weights, Option<TrainConfig>)> {
    if let Some(path) = a.str("model") {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
        let w = toyformer::io::load_weights(&bytes, None)?;
        toyformer::train::check_compatible(task, &w.cfg)?;
        return Ok((w, None));
    }
    let model = model_from(a, task)?;
    let tc = train_config(a)?;
    let (recs, tr, stopped) = spikes::train_recorded(task, &model, &tc, 0, 1)?;
    if let Some(e) = stopped {
        eprintln!("training stopped early: {e}");
    }
    let last = recs.len().saturating_sub((recs.len() / 20).max(1));
    let tail: f64 =
        recs[last..].iter().map(|r| r.loss).sum::<f64>() / (recs.len() - last).max(1) as f64;
    eprintln!(
        "trained {} steps, mean loss of the last 5%: {tail:.4}",
        recs.len()
    );
    let w = tr.backend.weights()?;
    save(a, &w, task, &tc)?;
    eprintln!("page link: {}", link(task, &model, &tc));
    Ok((w, Some(tc)))
}

// ------------------------------------------------------------------------------- floor

fn floor_table(a: &Args) -> Result<()> {
    let mut rows = Vec::new();
    for n in 1..=5usize {
        let t = TaskSpec::permutations(n);
        let h = floor::slot_entropies(n);
        rows.push(json!({
            "n": n, "T": t.seq_len(), "predicted": t.seq_len() - 1, "combinations": permutations::n_combinations(n),
            "ln_C": ln_choose(N_CHARS as u64, n as u64), "floor": t.loss_floor(), "slot_entropies": h,
            "slot_entropy_sum": h.iter().sum::<f64>(), "algo_positions": t.algo_positions().len(),
            "max_token_acc": max_token_acc(n),
        }));
    }
    if a.flag("json") {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("| n | T | scored | C(62,n) | ln C(62,n) | floor = ln C / (T−1) | first-term slot entropies H_i (nats) | best token acc |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let h: Vec<String> = r["slot_entropies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| format!("{:.3}", x.as_f64().unwrap()))
            .collect();
        println!(
            "| {} | {} | {} | {} | {:.4} | {:.5} | {} (Σ {:.4}) | {:.4} |",
            r["n"],
            r["T"],
            r["predicted"],
            r["combinations"],
            r["ln_C"].as_f64().unwrap(),
            r["floor"].as_f64().unwrap(),
            h.join(", "),
            r["slot_entropy_sum"].as_f64().unwrap(),
            r["max_token_acc"].as_f64().unwrap()
        );
    }
    Ok(())
}

/// The best expected token accuracy: every target right except the first-term slots, where
/// the best guess is the most likely character (P_max of each slot, computed exactly).
fn max_token_acc(n: usize) -> f64 {
    let t = TaskSpec::permutations(n);
    let m = N_CHARS as i64;
    let c = |a: i64, b: i64| -> f64 {
        if b < 0 || a < b {
            0.0
        } else {
            (0..b).fold(1.0, |x, i| x * (a - i) as f64 / (i + 1) as f64)
        }
    };
    // slot i's most likely value given y is y + 1 (the smallest allowed), with probability
    // C(62 − y − 2, n − i) / C(62 − y − 1, n − i + 1) = (n − i + 1) / (61 − y); average over y
    let mut dist = vec![0.0f64; (m + 1) as usize];
    dist[0] = 1.0;
    let mut hits = 0.0;
    for i in 1..=n as i64 {
        let mut next = vec![0.0f64; (m + 1) as usize];
        for y in -1..m {
            let py = dist[(y + 1) as usize];
            if py == 0.0 {
                continue;
            }
            let denom = c(m - 1 - y, n as i64 - i + 1);
            hits += py * c(m - 2 - y, n as i64 - i) / denom;
            for x in y + 1..m {
                next[(x + 1) as usize] += py * c(m - 1 - x, n as i64 - i) / denom;
            }
        }
        dist = next;
    }
    let scored = (t.seq_len() - 1) as f64;
    (scored - n as f64 + hits) / scored
}

// --------------------------------------------------------------------------- attention

/// Held-out evaluation with the per-slot first-term losses and greedy completions.
fn evaluate_detail(
    backend: &mut dyn Backend,
    task: &TaskSpec,
    seed: u64,
    samples: usize,
    completions: usize,
) -> Result<serde_json::Value> {
    let n = match *task {
        TaskSpec::Permutations { n, .. } => n,
        _ => 0,
    };
    let t = task.seq_len();
    let algo = task.algo_positions();
    let mut slot = vec![0.0f64; n];
    let (mut loss, mut cnt, mut al, mut na, mut aok) = (0.0, 0usize, 0.0, 0usize, 0usize);
    let mut wrong_by_slot = vec![0usize; n + 1]; // algorithm errors by target slot (n = space/period)
    let chunk = 16;
    let mut done = 0;
    let mut c = 0;
    while done < samples {
        let b = chunk.min(samples - done);
        let tokens = task.batch_split(seed, EVAL_STEP_OFFSET + c, b, Split::HeldOut);
        let logits = backend.logits(&tokens, b)?;
        let v = logits.len() / (b * t);
        for i in 0..b {
            for p in task.pred_positions() {
                let row = &logits[(i * t + p) * v..(i * t + p + 1) * v];
                let tg = tokens[i * t + p + 1];
                let lp = -log_prob(row, tg);
                loss += lp;
                cnt += 1;
                if (1..=n).contains(&p) {
                    slot[p - 1] += lp;
                } else if algo.contains(&p) {
                    al += lp;
                    na += 1;
                    if argmax(row) == tg {
                        aok += 1;
                    } else {
                        let s = (p + 1 - 2) % (n + 1);
                        wrong_by_slot[s.min(n)] += 1;
                    }
                }
            }
        }
        done += b;
        c += 1;
    }
    let mut full_ok = 0;
    for i in 0..completions {
        let seq = task.sample_split(seed, EVAL_STEP_OFFSET + 1_000_000, i as u64, Split::HeldOut);
        let got = complete(backend, task, &seq[..task.prompt_len()])?;
        full_ok += (got == seq) as usize;
    }
    let ent = floor::slot_entropies(n);
    Ok(json!({
        "samples": samples, "split": if task.has_holdout() { "held_out" } else { "fresh" },
        "loss": loss / cnt as f64, "floor": task.loss_floor(), "floor_full_distribution": permutations::loss_floor(n),
        "algo_loss": al / na.max(1) as f64, "algo_acc": aok as f64 / na.max(1) as f64,
        "algo_errors_by_target_slot": wrong_by_slot,
        "first_term_slot_loss": slot.iter().map(|x| x / samples as f64).collect::<Vec<_>>(),
        "first_term_slot_entropy": ent,
        "greedy_completions": completions, "greedy_completions_all_correct": full_ok,
    }))
}

fn attention(a: &Args) -> Result<()> {
    let task = task_of(a)?;
    let (w, tc) = model_for(a, &task)?;
    let seed = tc.as_ref().map_or(0, |t| t.seed);
    let samples: usize = a.get_or("samples", 64)?;
    let mut backend = make_backend(BackendKind::Cpu, &w, &TrainConfig::default(), &task)?;
    let ev = evaluate_detail(
        backend.as_mut(),
        &task,
        seed,
        512.max(samples),
        a.get_or("complete", 50)?,
    )?;
    let rep = model_report(&w, &task, samples.min(64), seed)?;
    let pw = process_weights(&w)?;
    let tokens = task.batch_split(seed, ANALYSIS_STEP, samples, Split::HeldOut);
    let heads = attention::attention_study(&pw, &task, &tokens, samples)?;
    let abl = if w.cfg.n_layers * w.cfg.n_heads > 1 {
        Some(ablation_table(
            &toyformer::reference::ReferenceBackend::for_inference(&pw)?,
            &task,
            samples.min(64),
            seed,
        )?)
    } else {
        None
    };
    let out = json!({
        "task": task, "model": w.cfg, "train": tc, "n_params": w.cfg.n_params(), "eval": ev,
        "heads": heads, "ov": rep.heads.iter().map(|h| json!({"layer": h.layer, "head": h.head,
            "ov_diagonal_fraction": h.ov_diagonal_fraction, "ov_eigen_copying": h.ov_eigen_copying, "dla": h.dla})).collect::<Vec<_>>(),
        "dla_paths": rep.dla.paths.iter().map(|p| json!({"path": p.label, "mean": p.mean})).collect::<Vec<_>>(),
        "composition": rep.composition, "ablation": abl,
    });
    if a.flag("json") {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_summary(&task, &w.cfg, &ev);
    for h in &rep.heads {
        println!("L{}H{}: OV (W_E W_OV W_U over the 62 characters) diagonal fraction {:.3}, eigenvalue copying score {:.3}, DLA {:+.2}", h.layer, h.head, h.ov_diagonal_fraction, h.ov_eigen_copying, h.dla);
    }
    print_head_attention(&heads, samples);
    print_ablation_and_paths(&out, &rep);
    Ok(())
}

/// The model, the eval figures, first-term slot loss and where the algorithm errs.
fn print_summary(task: &TaskSpec, c: &ModelConfig, ev: &serde_json::Value) {
    println!(
        "permutations n = {} | {}L {}H d_model {} d_head {}{}{} | {} params",
        match *task {
            TaskSpec::Permutations { n, .. } => n,
            _ => 0,
        },
        c.n_layers,
        c.n_heads,
        c.d_model,
        c.d_head,
        if c.normalization_type.is_some() {
            " LN"
        } else {
            ""
        },
        c.act_fn.map_or(String::new(), |f| format!(
            " MLP {} {}",
            c.d_mlp.unwrap_or(0),
            f.as_str()
        )),
        c.n_params()
    );
    println!(
        "eval ({} {} samples): loss {:.5} (floor {:.5}), algo loss {:.5}, algo acc {:.5}; greedy completions from the first term all correct: {}/{}",
        ev["split"].as_str().unwrap(), ev["samples"], ev["loss"].as_f64().unwrap(), ev["floor"].as_f64().unwrap(),
        ev["algo_loss"].as_f64().unwrap(), ev["algo_acc"].as_f64().unwrap(), ev["greedy_completions_all_correct"], ev["greedy_completions"]
    );
    let fmt = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| format!("{:.3}", x.as_f64().unwrap()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "first-term slot loss {} | exact slot entropy {}",
        fmt(&ev["first_term_slot_loss"]),
        fmt(&ev["first_term_slot_entropy"])
    );
    println!(
        "algorithm errors by target slot (last = space/period): {}",
        ev["algo_errors_by_target_slot"]
    );
}

/// Per head: attention mass by key category at the copy steps, and what drives it.
fn print_head_attention(heads: &[attention::HeadAttention], samples: usize) {
    println!(
        "\nattention at the copy steps (targets in term 2 onward), {} held-out samples:",
        samples
    );
    println!("head  | {} | tv between samples | pos·pos argmax = full argmax | weight pos·pos → first-term answer", attention::CATS.join(" | "));
    for h in heads {
        let m: Vec<String> = h
            .mass
            .iter()
            .zip(&h.argmax)
            .map(|(m, a)| format!("{m:.3} ({a:.2})"))
            .collect();
        println!(
            "L{}H{} | {} | {:.4} | {:.3} | {:.3}",
            h.layer,
            h.head,
            m.join(" | "),
            h.tv_between_samples,
            h.pos_pos_argmax_agrees,
            h.weight_pos_pos_first_term_hit
        );
        println!(
            "       attention on keys holding the answer: mean {:.3}, min {:.3}; with pos·pos (+bias) terms only {:.3}; without pos·pos {:.3}; uniform {:.3}; tok·tok self score z {:+.2}",
            h.mass[0] + h.mass[1] + h.mass[2], h.answer_mass_min, h.pos_only_answer_mass, h.without_pos_pos_answer_mass, h.uniform_answer_mass, h.tok_tok_self_z
        );
        let mut d: Vec<(usize, f64)> = h
            .answer_mass_by_term_distance
            .iter()
            .copied()
            .enumerate()
            .map(|(i, m)| (i + 1, m))
            .collect();
        d.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = d
            .iter()
            .take(8)
            .map(|(d, m)| format!("{d}: {m:.3}"))
            .collect();
        println!("       answer mass by term distance (top 8, distance: mass): {}; share in the target's own slot {:.3}", top.join(", "), h.answer_mass_same_slot);
        println!("       attention on keys whose next token is the answer (an earlier layer's prediction there is the answer): {:.3}", h.next_is_answer_mass);
        let sp: Vec<String> = h
            .term_spread
            .iter()
            .filter(|s| s.std_over_keys > 0.005)
            .map(|s| format!("{}·{} {:.2}", s.query, s.key, s.std_over_keys))
            .collect();
        println!(
            "       score-term spread over keys (std): {}",
            sp.join(", ")
        );
    }
    println!("       (mass = mean attention; in brackets the fraction of copy steps whose top key is in that category)");
}

/// Head ablations (2+ heads) and DLA per path.
fn print_ablation_and_paths(out: &serde_json::Value, rep: &ModelReport) {
    if let Some(abl) = out.get("ablation").filter(|x| !x.is_null()) {
        println!(
            "\nhead ablations (loss / acc over all scored positions; baseline {:.4} / {:.4}):",
            abl["baseline"]["loss"].as_f64().unwrap(),
            abl["baseline"]["acc"].as_f64().unwrap()
        );
        for h in abl["heads"].as_array().unwrap() {
            println!(
                "  L{}H{}: zero {:.4} / {:.4}, mean {:.4} / {:.4}",
                h["layer"],
                h["head"],
                h["zero"]["loss"].as_f64().unwrap(),
                h["zero"]["acc"].as_f64().unwrap(),
                h["mean"]["loss"].as_f64().unwrap(),
                h["mean"]["acc"].as_f64().unwrap()
            );
        }
    }
    println!("\ndirect logit attribution to the correct logit, per path:");
    for p in &rep.dla.paths {
        println!("  {:32} {:+.3}", p.label, p.mean);
    }
}

// ------------------------------------------------------------------------------ spikes

/// Phases of a run for the summary table: 0-50, 50-100, 100-200, 200-400, 400-800,
/// 800-1600, 1600-end (those that exist).
fn segments(len: usize) -> Vec<(usize, usize)> {
    let b = [0, 50, 100, 200, 400, 800, 1600, usize::MAX];
    b.windows(2)
        .map(|w| (w[0], w[1].min(len)))
        .filter(|(lo, hi)| lo < hi)
        .collect()
}

fn spikes(a: &Args) -> Result<()> {
    let task = task_of(a)?;
    let model = model_from(a, &task)?;
    let tc = train_config(a)?;
    let inspect_steps = inspect_steps(a)?;
    let (recs, tr, stopped, inspected) = spikes::train_inspected(
        &task,
        &model,
        &tc,
        a.get_or("probe-every", 1)?,
        a.get_or("probe-samples", 32)?,
        &inspect_steps,
    )?;
    save(a, &tr.backend.weights()?, &task, &tc)?;
    eprintln!("page link: {}", link(&task, &model, &tc));
    if let Some(path) = a.str("csv") {
        write_csv(path, &recs)?;
    }
    let rep = spikes::find_spikes(
        &recs,
        a.get_or("window", 50)?,
        a.get_or("rel", 0.5)?,
        a.get_or("min-step", 200)?,
    );
    let tail = |f: fn(&spikes::StepRec) -> f64| {
        let k = (recs.len() / 10).max(1);
        let v: Vec<f64> = recs[recs.len().saturating_sub(k)..]
            .iter()
            .map(f)
            .filter(|x| x.is_finite())
            .collect();
        (
            v.iter().sum::<f64>() / v.len().max(1) as f64,
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (lm, lmin, lmax) = tail(|r| r.loss);
    let (pa, _, pamax) = tail(|r| r.probe_algo_loss);
    let (pf, _, _) = tail(|r| r.probe_first_term_loss);
    // the seed notebook printed the batch loss at step 0 of each epoch: 31 batches per epoch
    let seed_steps: Vec<usize> = (0..20).map(|e| 31 * e).collect();
    let out = json!({
        "task": task, "train": tc, "steps": recs.len(), "stopped": stopped, "floor": task.loss_floor(),
        "last_10pct": {"loss_mean": lm, "loss_min": lmin, "loss_max": lmax, "probe_algo_loss_mean": pa, "probe_algo_loss_max": pamax, "probe_first_term_loss_mean": pf},
        "final_lr": recs.last().map(|r| r.lr), "report": rep, "inspected": inspected,
        "seed_print_steps": seed_steps.iter().map(|&s| recs.get(s).map(|r| r.loss)).collect::<Vec<_>>(),
    });
    if a.flag("json") {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let tails = [(lm, lmin, lmax), (pa, 0.0, pamax), (pf, 0.0, 0.0)];
    print_spike_report(&recs, &tc, &task, stopped.as_deref(), &rep, tails);
    print_phases(&recs);
    print_inspected(&recs, &inspected, &seed_steps);
    Ok(())
}

/// `--inspect 100,200`: steps whose batch is looked at in detail.
fn inspect_steps(a: &Args) -> Result<Vec<u64>> {
    Ok(match a.str("inspect") {
        None => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .map_err(|_| Error::config("inspect", format!("{x:?} is not a step number")))
            })
            .collect::<Result<_>>()?,
    })
}

/// `--csv FILE`: one line per step.
fn write_csv(path: &str, recs: &[spikes::StepRec]) -> Result<()> {
    let mut s = String::from("step,loss,grad_norm,lr,probe_first_term_loss,probe_algo_loss\n");
    for r in recs {
        s += &format!(
            "{},{},{},{},{},{}\n",
            r.step, r.loss, r.grad_norm, r.lr, r.probe_first_term_loss, r.probe_algo_loss
        );
    }
    std::fs::write(path, s)?;
    eprintln!("wrote {path}");
    Ok(())
}

/// The run, the last 10% of its steps (`tails`: batch loss mean/min/max, probe algo loss
/// mean/-/max, probe first-term loss mean), the LR cuts and the loss spikes.
fn print_spike_report(
    recs: &[spikes::StepRec],
    tc: &TrainConfig,
    task: &TaskSpec,
    stopped: Option<&str>,
    rep: &spikes::SpikeReport,
    tails: [(f64, f64, f64); 3],
) {
    let [(lm, lmin, lmax), (pa, _, pamax), (pf, _, _)] = tails;
    let r = rep;
    println!(
        "{} steps, batch {}, lr {} ({:?}), floor {:.5}{}",
        recs.len(),
        tc.batch_size,
        tc.lr,
        tc.schedule,
        task.loss_floor(),
        stopped.map_or(String::new(), |e| format!(" — {e}"))
    );
    println!("last 10% of steps: batch loss mean {lm:.4} [min {lmin:.4}, max {lmax:.4}]; probe algo loss mean {pa:.5} (max {pamax:.5}); probe first-term loss {pf:.4} per first-term slot");
    println!("learning-rate cuts (step → lr): {:?}", r.lr_cuts);
    println!(
        "spikes (loss > {:.1}× the median of the previous {} steps, from step {}): {} of {} steps; corr(ln loss/baseline, ln gnorm/baseline) = {:.3}; gnorm > 2× baseline at {:.0}% of spikes vs {:.1}% of all steps",
        1.0 + r.rel, r.window, r.min_step, r.spikes.len(), r.steps_checked, r.corr_loss_grad, 100.0 * r.spikes_grad_over_2, 100.0 * r.all_grad_over_2
    );
    println!("probe (fixed held-out data) algo-loss spikes: {} at steps {:?}; training spikes within 2 steps of one: {}", r.probe_algo_spikes.len(), &r.probe_algo_spikes[..r.probe_algo_spikes.len().min(20)], r.train_spikes_with_probe_spike);
    for s in r.spikes.iter().take(15) {
        println!("  step {:5}: loss {:.4} (baseline {:.4}), gnorm {:.3} ({:.1}× baseline), lr {:.1e}, steps since lr cut {:?}", s.step, s.loss, s.baseline, s.grad_norm, s.grad_ratio, s.lr, s.since_lr_cut);
    }
    println!("by phase: steps | batch loss mean [min, max] sd | grad norm median, max | probe algo loss mean, max | probe first-term loss");
}

/// Batch loss, grad norm and probe losses by phase of the run.
fn print_phases(recs: &[spikes::StepRec]) {
    for (lo, hi) in segments(recs.len()) {
        let seg = &recs[lo..hi];
        let st = |f: fn(&spikes::StepRec) -> f64| {
            let v: Vec<f64> = seg.iter().map(f).filter(|x| x.is_finite()).collect();
            let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let sd =
                (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
            let mut sorted = v.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            let med = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
            (
                m,
                sorted.first().copied().unwrap_or(f64::NAN),
                sorted.last().copied().unwrap_or(f64::NAN),
                sd,
                med,
            )
        };
        let (lm, lmin, lmax, lsd, _) = st(|r| r.loss);
        let (_, _, gmax, _, gmed) = st(|r| r.grad_norm);
        let (pm, _, pmax, _, _) = st(|r| r.probe_algo_loss);
        let (fm, _, _, _, _) = st(|r| r.probe_first_term_loss);
        println!("  {lo:>4}-{hi:<4} | {lm:.4} [{lmin:.4}, {lmax:.4}] sd {lsd:.4} | {gmed:.3}, {gmax:.2} | {pm:.5}, {pmax:.4} | {fm:.3}");
    }
}

/// The batch loss where the seed notebook printed it, and every `--inspect`ed step.
fn print_inspected(
    recs: &[spikes::StepRec],
    inspected: &[spikes::Inspected],
    seed_steps: &[usize],
) {
    let at: Vec<String> = seed_steps
        .iter()
        .filter_map(|&s| recs.get(s).map(|r| format!("{:.4}", r.loss)))
        .collect();
    println!(
        "batch loss at steps 0, 31, 62, .. 589 (where the seed notebook printed, epochs 1-20): {}",
        at.join(" ")
    );
    let probe_at = |s: usize| recs.get(s).map_or(f64::NAN, |r| r.probe_algo_loss);
    for x in inspected {
        let s = x.step as usize;
        println!(
            "inspect step {}: batch loss {:.4}; probe algo loss at steps {}..{}: {:.5} {:.5} {:.5} {:.5}; each sequence's share of the batch loss {:?}",
            x.step, x.batch_loss, s.saturating_sub(2), s + 1, probe_at(s.saturating_sub(2)), probe_at(s.saturating_sub(1)), probe_at(s), probe_at(s + 1),
            x.per_sequence_share.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>()
        );
        let before: Vec<String> = (s.saturating_sub(17)..s)
            .map(|t| format!("{:.5}", probe_at(t)))
            .collect();
        println!(
            "    probe algo loss at steps {}..{}: {}",
            s.saturating_sub(17),
            s.saturating_sub(1),
            before.join(" ")
        );
        for (i, p, tg, am, l, first) in &x.worst {
            println!("    sequence {i} (first term {first}) position {p}: target {tg:?}, predicted {am:?}, loss {l:.3}");
        }
    }
}

// --------------------------------------------------------------------------- formation

fn formation_cmd(a: &Args) -> Result<()> {
    let task = task_of(a)?;
    let model = model_from(a, &task)?;
    let tc = train_config(a)?;
    let points = formation::formation(
        &task,
        &model,
        &tc,
        a.get_or("every", 10)?,
        a.get_or("samples", 32)?,
    )?;
    eprintln!("page link: {}", link(&task, &model, &tc));
    let h0 = |p: &formation::FormationPoint| p.heads.first().cloned();
    let at = |x: f64, f: &dyn Fn(&formation::FormationPoint) -> f64| {
        formation::first_step(&points, x, f)
    };
    let milestones = json!({
        "algo_acc_0.5": at(0.5, &|p| p.algo_acc), "algo_acc_0.99": at(0.99, &|p| p.algo_acc),
        "L0H0_answer_mass_0.5": at(0.5, &|p| h0(p).map_or(0.0, |h| h.answer_mass)),
        "L0H0_answer_mass_0.9": at(0.9, &|p| h0(p).map_or(0.0, |h| h.answer_mass)),
        "L0H0_pos_only_answer_mass_0.5": at(0.5, &|p| h0(p).map_or(0.0, |h| h.pos_only_answer_mass)),
        "L0H0_ov_diagonal_0.5": at(0.5, &|p| h0(p).map_or(0.0, |h| h.ov_diagonal)),
        "L0H0_ov_diagonal_0.9": at(0.9, &|p| h0(p).map_or(0.0, |h| h.ov_diagonal)),
    });
    if a.flag("json") {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"task": task, "model": model, "train": tc, "milestones": milestones, "points": points})
            )?
        );
        return Ok(());
    }
    println!("step  train loss  algo loss  algo acc | per head (L·H): OV diag  OV eig  answer mass  pos·pos only  first term");
    for p in &points {
        let heads: Vec<String> = p
            .heads
            .iter()
            .map(|h| {
                format!(
                    "L{}H{} {:.3} {:.3} {:.3} {:.3} {:.3}",
                    h.layer,
                    h.head,
                    h.ov_diagonal,
                    h.ov_eigen,
                    h.answer_mass,
                    h.pos_only_answer_mass,
                    h.first_term_mass
                )
            })
            .collect();
        println!(
            "{:>5}  {:>10.4}  {:>9.4}  {:>8.4} | {}",
            p.step,
            p.train_loss,
            p.algo_loss,
            p.algo_acc,
            heads.join(" | ")
        );
    }
    println!("first measured step reaching: {milestones}");
    Ok(())
}
