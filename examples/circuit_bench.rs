//! Times the circuit methods on a 2-layer, 4-head model with MLPs (random weights: the
//! cost does not depend on what the weights are): preparing the clean/corrupted runs,
//! EAP and EAP-IG over every edge, the faithfulness of a circuit, and ACDC over every edge.
//! A benchmark, not a test: nothing is asserted.
//!
//! cargo run --release --example circuit_bench -- [--task sort] [--samples 32] [--repeats 5] [--threshold 0.01]
//!     [--save FILE.safetensors]   (the benchmarked model, for the page's benchmark)
//!     [--candle]   (EAP and faithfulness on the candle graph forward instead of the
//!                   hand-written f32 one, `interp::graph_fast`; prepare stays fast)
mod common;

use candle_core::DType;
use common::*;
use std::time::Instant;
use toyformer::interp::attribution::edge_attribution;
use toyformer::interp::circuit_metric::{default_pairs, CircuitMetric, CircuitSetup, EdgeAblation};
use toyformer::interp::discovery::{acdc, select_edges, Select};
use toyformer::interp::faithfulness::faithfulness;
use toyformer::model::{ActFn, Weights};

fn main() {
    main_with(run)
}

/// Median wall time (ms) of `f` over `n` runs.
fn median_ms(n: usize, mut f: impl FnMut() -> toyformer::Result<()>) -> toyformer::Result<f64> {
    let mut t = Vec::new();
    for _ in 0..n.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

fn run() -> toyformer::Result<()> {
    let a = Args::parse(&["candle"])?;
    a.check_known(
        &[
            TASK_KEYS,
            &["samples", "repeats", "threshold", "save", "candle"],
        ]
        .concat(),
    )?;
    let task = task_from(&a)?;
    let (samples, n) = (a.get_or("samples", 32usize)?, a.get_or("repeats", 5usize)?);
    let mut cfg = task.default_model();
    (cfg.n_layers, cfg.n_heads, cfg.d_mlp, cfg.act_fn) =
        (2, 4, Some(4 * cfg.d_model), Some(ActFn::Gelu));
    cfg.d_head = cfg.d_model / 4;
    let w = Weights::init(&cfg)?;
    if let Some(path) = a.str("save") {
        let bytes = toyformer::io::save_safetensors(&w, &[])?;
        std::fs::write(path, bytes).map_err(|e| toyformer::Error::Io(format!("{path}: {e}")))?;
    }
    let pairs = default_pairs(&task, samples, 0)?;
    let mk = || {
        CircuitSetup::new(
            &w,
            &task,
            pairs.clone(),
            CircuitMetric::Kl,
            EdgeAblation::Corrupted,
            DType::F32,
        )
    };
    let mut s = mk()?;
    let candle = a.flag("candle");
    if candle {
        s.fast = None;
    }
    let g = &s.model.graph;
    println!(
        "task {} · model 2L 4H d_model {} d_mlp {} · {} edges · {} pairs · median of {n} · {}",
        task.name(),
        cfg.d_model,
        cfg.d_mlp.unwrap_or(0),
        g.edges.len(),
        samples,
        if candle {
            "candle graph forward"
        } else {
            "fast f32 path where supported"
        }
    );
    let setup = median_ms(n, || mk().map(|_| ()))?;
    let eap = median_ms(n, || edge_attribution(&s, 0).map(|_| ()))?;
    let ig = median_ms(n, || edge_attribution(&s, 8).map(|_| ()))?;
    let scores = edge_attribution(&s, 0)?.edges;
    let c = select_edges(g, &scores, Select::TopK(g.edges.len() / 10));
    let faith = median_ms(n, || faithfulness(&s, &c).map(|_| ()))?;
    let th = a.get_or("threshold", 0.01f64)?;
    let mut runs = 0;
    let acdc_ms = median_ms(1, || {
        runs = acdc(&s, th)?.2;
        Ok(())
    })?;
    println!("prepare (clean + corrupted runs)   {setup:8.1} ms");
    println!("EAP, all edges                     {eap:8.1} ms");
    println!("EAP-IG k = 8, all edges            {ig:8.1} ms");
    println!("faithfulness of a circuit          {faith:8.1} ms");
    println!("ACDC over all edges (once)         {acdc_ms:8.1} ms  (threshold {th}, {runs} forward runs)");
    Ok(())
}
