//! `circuits --discover acdc|eap|eap-ig`: find a circuit and check its faithfulness.
//!
//! cargo run --release --example circuits -- --model FILE --task T --discover acdc \
//!     [--threshold X | --top-k K] [--metric kl|loss|logit-diff] \
//!     [--ablation corrupted|mean|resample] [--ig-steps K] [--samples N] [--seed S] \
//!     [--compare] [--json] [--neurons [--neuron-top K] [--neuron-acdc X]]
//!
//! --neurons: every MLP neuron is a node (see neurons.rs).

mod neurons;

use crate::common::Args;
use toyformer::interp::circuit_metric::{CircuitMetric, EdgeAblation};
use toyformer::interp::circuit_report::{circuit_report, CircuitOptions, CircuitReport};
use toyformer::interp::discovery::{Method, Select};
use toyformer::interp::graph::GraphOptions;
use toyformer::model::Weights;
use toyformer::tasks::TaskSpec;

/// The flags this adds to the example.
pub const KEYS: &[&str] = &[
    "discover",
    "threshold",
    "top-k",
    "metric",
    "ablation",
    "ig-steps",
    "compare",
    "neurons",
    "neuron-top",
    "neuron-acdc",
];

/// The options from the flags.
fn options(a: &Args) -> toyformer::Result<CircuitOptions> {
    let d = CircuitOptions::default();
    let method = Method::parse(a.str("discover").unwrap_or("acdc"))?;
    let select = match (a.get::<f64>("threshold")?, a.get::<usize>("top-k")?) {
        (Some(_), Some(_)) => {
            return Err(toyformer::Error::config(
                "top-k",
                "give --threshold or --top-k, not both",
            ))
        }
        (_, Some(k)) => Select::TopK(k),
        (Some(x), None) => Select::Threshold(x),
        (None, None) if method == Method::Acdc => Select::Threshold(0.01),
        (None, None) => Select::TopK(10),
    };
    Ok(CircuitOptions {
        method,
        select,
        metric: CircuitMetric::parse(a.str("metric").unwrap_or("kl"))?,
        ablation: EdgeAblation::parse(a.str("ablation").unwrap_or("corrupted"))?,
        ig_steps: a.get_or("ig-steps", d.ig_steps)?,
        samples: a.get_or("samples", d.samples)?,
        seed: a.get_or("seed", d.seed)?,
        compare: a.flag("compare"),
        graph: GraphOptions {
            neurons: a.flag("neurons"),
        },
    })
}

/// Runs the discovery and prints it (or its JSON).
pub fn run(a: &Args, w: &Weights, task: &TaskSpec, path: &str) -> toyformer::Result<()> {
    let o = options(a)?;
    if !o.graph.neurons && (a.str("neuron-top").is_some() || a.str("neuron-acdc").is_some()) {
        return Err(toyformer::Error::config(
            "neurons",
            "--neuron-top and --neuron-acdc need --neurons",
        ));
    }
    let rep = circuit_report(w, task, &o)?;
    let views = if o.graph.neurons {
        neurons::views(a, w, task, &rep)?
    } else {
        Vec::new()
    };
    if a.flag("json") {
        let mut v = serde_json::to_value(&rep)?;
        v["model_file"] = serde_json::json!(path);
        v["neurons"] = serde_json::to_value(&views)?;
        println!("{v}");
    } else {
        print(&rep, path, task);
        neurons::print_views(&views, a.get_or("neuron-top", 10)?);
    }
    Ok(())
}

fn print(rep: &CircuitReport, path: &str, task: &TaskSpec) {
    let o = &rep.options;
    let d = &rep.discovery;
    println!(
        "model {path} · task {} · {:?} {:?} · metric {:?} · ablation {:?} · {} pairs · {} runs",
        task.name(),
        o.method,
        o.select,
        o.metric,
        o.ablation,
        o.samples,
        d.runs
    );
    let f = &rep.faithfulness;
    println!("circuit: {} of {} edges", f.edges, f.total_edges);
    neurons::print_circuit(rep);
    let pct = |x: f64| 100.0 * x;
    println!(
        "faithfulness: loss recovered {:.1}% · logit diff recovered {:.1}% · {:?} recovered {:.1}% · accuracy {:.3} (full {:.3}, all ablated {:.3})",
        pct(f.loss_recovered), pct(f.logit_diff_recovered), f.metric, pct(f.metric_recovered),
        f.circuit.acc, f.full.acc, f.empty.acc
    );
    println!(
        "  loss: circuit {:.4} · full {:.4} · all ablated {:.4}",
        f.circuit.loss, f.full.loss, f.empty.loss
    );
    println!(
        "complement: loss recovered {:.1}% · logit diff recovered {:.1}% · accuracy {:.3}",
        pct(f.complement_loss_recovered),
        pct(f.complement_logit_diff_recovered),
        f.complement.acc
    );
    if let Some(g) = &rep.agreement {
        let eap = g
            .eap
            .map_or("— (zero gradient for KL)".into(), |x| format!("{x:.3}"));
        println!(
            "attribution vs path patching (Spearman, all edges): EAP {eap} · EAP-IG (k = {}) {:.3}",
            o.ig_steps, g.eap_ig
        );
    }
}
