//! `circuits --discover ... --neurons`: the circuit on the neuron graph (every MLP neuron a
//! node), printed with neuron edges grouped, then per MLP the neurons ranked by EAP-IG and
//! the faithfulness of the model keeping only the top k of them (and, with
//! `--neuron-acdc X`, ACDC over neurons as nodes).

use crate::common::Args;
use toyformer::interp::circuit_report::{setup, CircuitReport};
use toyformer::interp::discovery::{
    acdc_neurons, keep_neurons, neuron_ranking, rank_neurons, Method, NeuronRanking,
};
use toyformer::interp::faithfulness::{faithfulness, recovered, Faithfulness};
use toyformer::interp::fourier;
use toyformer::interp::graph::{Circuit, Graph, NodeKind};
use toyformer::model::Weights;
use toyformer::tasks::TaskSpec;

/// One MLP's neuron view: the ranking, faithfulness of its top k for several k, and the
/// neuron-level ACDC circuit when asked for.
#[derive(serde::Serialize)]
pub struct NeuronView {
    pub ranking: NeuronRanking,
    /// (k, faithfulness of the model keeping only the top k neurons of this MLP, loss
    /// recovered by the model with only those k ablated)
    pub top_k: Vec<(usize, Faithfulness, f64)>,
    /// (kept neuron indices, faithfulness, runs) of ACDC over this MLP's neurons
    pub acdc: Option<(Vec<usize>, Faithfulness, usize)>,
    /// modular tasks, last MLP: each neuron's best Fourier frequency (None: no variance)
    pub freqs: Vec<Option<usize>>,
}

/// Each neuron's best frequency of the last MLP on a modular task (else empty).
fn frequencies(w: &Weights, task: &TaskSpec, layer: usize) -> Vec<Option<usize>> {
    if layer + 1 != w.cfg.n_layers || fourier::modular_task(task).is_err() {
        return Vec::new();
    }
    fourier::fourier_report(w, task)
        .map(|r| r.neurons.iter().map(|n| n.freq).collect())
        .unwrap_or_default()
}

/// "freq k: n neurons" for the neurons `ns`, most common first.
fn by_freq(freqs: &[Option<usize>], ns: &[usize]) -> String {
    let mut count = std::collections::BTreeMap::new();
    for &n in ns {
        *count.entry(freqs[n]).or_insert(0usize) += 1;
    }
    let mut v: Vec<_> = count.into_iter().collect();
    v.sort_by_key(|x| std::cmp::Reverse(x.1));
    v.iter()
        .map(|(f, c)| match f {
            Some(f) => format!("k {f}: {c}"),
            None => format!("none: {c}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The k values to check: 1, 2, 5, 10, 20, 50, … up to every neuron, and `top`.
fn ks(m: usize, top: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [1, 2, 5, 10, 20, 50, 100, 200, 500]
        .into_iter()
        .filter(|&k| k < m)
        .chain([top.min(m), m])
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The neuron views of every MLP of `w` on the options' setup.
pub fn views(
    a: &Args,
    w: &Weights,
    task: &TaskSpec,
    rep: &CircuitReport,
) -> toyformer::Result<Vec<NeuronView>> {
    let o = &rep.options;
    let s = setup(w, task, o)?;
    let g = &s.model.graph;
    let top: usize = a.get_or("neuron-top", 10)?;
    let acdc_t: Option<f64> = a.get("neuron-acdc")?;
    let mut out = Vec::new();
    for layer in 0..w.cfg.n_layers {
        if g.neuron_senders(layer).is_empty() {
            continue;
        }
        // EAP-IG's scores: the discovery's own when it used them
        let ranking = if o.method == Method::EapIg {
            neuron_ranking(g, layer, &rep.discovery.scores)?
        } else {
            rank_neurons(&s, layer, o.ig_steps.max(1))?
        };
        let mut top_k = Vec::new();
        for k in ks(ranking.scores.len(), top) {
            let c = keep_neurons(g, layer, &ranking.order[..k])?;
            let without = keep_neurons(g, layer, &ranking.order[k..])?;
            let lost = s.eval(&s.logits(&s.model.mask(&without)?)?)?;
            let rec = recovered(lost.loss, s.full.loss, s.empty()?.loss);
            top_k.push((k, faithfulness(&s, &c)?, rec));
        }
        let acdc = match acdc_t {
            Some(t) => {
                let (c, _, runs) = acdc_neurons(&s, &Circuit::full(g), t)?;
                let kept = kept_neurons(g, &c, layer);
                let c = keep_neurons(g, layer, &kept)?;
                Some((kept, faithfulness(&s, &c)?, runs))
            }
            None => None,
        };
        out.push(NeuronView {
            ranking,
            top_k,
            acdc,
            freqs: frequencies(w, task, layer),
        });
    }
    Ok(out)
}

/// The neurons of MLP `layer` with an outgoing edge in `c`.
fn kept_neurons(g: &Graph, c: &Circuit, layer: usize) -> Vec<usize> {
    g.neuron_senders(layer)
        .iter()
        .enumerate()
        .filter(|(_, &sd)| g.edges_from(sd).iter().any(|&e| c.edges[e]))
        .map(|(n, _)| n)
        .collect()
}

/// The neuron of sender s, if it is one: (layer, neuron).
fn neuron(g: &Graph, s: usize) -> Option<(usize, usize)> {
    match g.nodes[g.senders[s]].kind {
        NodeKind::Neuron { layer, neuron } => Some((layer, neuron)),
        _ => None,
    }
}

/// The circuit's edges: others one per line, neuron edges one line per (MLP, receiver)
/// with how many neurons and the strongest 8 by |score|.
pub fn print_circuit(rep: &CircuitReport) {
    let (g, d) = (&rep.graph, &rep.discovery);
    for (e, edge) in g.edges.iter().enumerate() {
        if d.circuit.edges[e] && neuron(g, edge.sender).is_none() {
            println!("  {:28} score {:+.4}", edge.name, d.scores[e]);
        }
    }
    let n_mlps = g
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Mlp { .. }))
        .count();
    for r in 0..g.receivers.len() {
        for layer in 0..n_mlps {
            let mut es: Vec<(usize, usize)> = (0..g.avail[r])
                .filter_map(|sd| {
                    let e = g.edge(sd, r)?;
                    let (l, n) = neuron(g, sd)?;
                    (l == layer && d.circuit.edges[e]).then_some((n, e))
                })
                .collect();
            if es.is_empty() {
                continue;
            }
            es.sort_by(|a, b| d.scores[b.1].abs().total_cmp(&d.scores[a.1].abs()));
            let list: Vec<String> = es
                .iter()
                .take(8)
                .map(|&(n, e)| format!("N{n} {:+.4}", d.scores[e]))
                .collect();
            let name = &g.receivers[r].name;
            let more = if es.len() > 8 { ", …" } else { "" };
            println!(
                "  L{layer}N* → {name:18} {} neurons: {}{more}",
                es.len(),
                list.join(", ")
            );
        }
    }
}

fn line(f: &Faithfulness) -> String {
    format!(
        "loss recovered {:6.1}% · logit diff {:6.1}% · {:?} {:6.1}% · acc {:.3}",
        100.0 * f.loss_recovered,
        100.0 * f.logit_diff_recovered,
        f.metric,
        100.0 * f.metric_recovered,
        f.circuit.acc,
    )
}

/// Prints the neuron views.
pub fn print_views(views: &[NeuronView], top: usize) {
    for v in views {
        let r = &v.ranking;
        let l = r.layer;
        println!(
            "MLP{l} neurons by EAP-IG attribution (est. metric change when ablated), top {top} of {}:",
            r.scores.len()
        );
        let best: Vec<String> = r
            .order
            .iter()
            .take(top)
            .map(|&n| format!("N{n} {:+.4}", r.scores[n]))
            .collect();
        println!("  {}", best.join(", "));
        println!("MLP{l} keeping only its top k neurons (every other edge kept):");
        for (k, f, without) in &v.top_k {
            println!(
                "  k {k:4}: {} · only these {k} ablated: loss recovered {:.1}%",
                line(f),
                100.0 * without
            );
        }
        if !v.freqs.is_empty() {
            for k in [top, 100] {
                let k = k.min(r.order.len());
                println!(
                    "  best Fourier frequency of the top {k}: {}",
                    by_freq(&v.freqs, &r.order[..k])
                );
            }
        }
        if let Some((kept, f, runs)) = &v.acdc {
            let ns: Vec<String> = kept.iter().map(|n| format!("N{n}")).collect();
            println!(
                "MLP{l} ACDC over neurons ({runs} runs): {} neurons kept: {}",
                kept.len(),
                ns.join(" ")
            );
            println!("  {}", line(f));
            if !v.freqs.is_empty() {
                println!("  best Fourier frequency: {}", by_freq(&v.freqs, kept));
            }
        }
    }
}
