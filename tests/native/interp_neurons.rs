//! Neuron analyses (interp::neurons): direct effects against a plain loop, neuron ablation
//! through hooks against the same ablation done by editing the weights, the a × b grid and
//! the importance ranking against per-prompt runs and loops.
use crate::common;

use toyformer::backend::Backend;
use toyformer::interp::intervene::Ablation;
use toyformer::interp::neurons;
use toyformer::reference::ReferenceBackend;
use toyformer::tasks::TaskSpec;

#[test]
fn direct_effects_match_a_loop() {
    let w = common::random_model(2, 2, false, true, true, 4);
    let (c, m, v) = (w.cfg.d_model, 12, w.cfg.d_vocab_out);
    for layer in 0..2 {
        let de = neurons::direct_effects(&w, layer).unwrap();
        let wo = w.get(&format!("blocks.{layer}.mlp.W_out")).unwrap();
        let wu = w.get("unembed.W_U").unwrap();
        for i in 0..m {
            for j in 0..v {
                let want: f64 = (0..c)
                    .map(|k| wo[i * c + k] as f64 * wu[k * v + j] as f64)
                    .sum();
                assert!(
                    (de.at(i, j) as f64 - want).abs() < 1e-4,
                    "L{layer} n{i} → {j}"
                );
            }
        }
    }
    let attn_only = common::random_model(1, 1, false, false, false, 1);
    assert!(neurons::direct_effects(&attn_only, 0).is_err());
    assert!(neurons::direct_effects(&w, 2).is_err());
}

#[test]
fn neuron_ablation_matches_edited_weights() {
    let w = common::random_model(2, 2, true, true, true, 6);
    let task = common::small_sort();
    let tokens = task.batch(1, 0, 5);
    let backend = ReferenceBackend::for_inference(&w).unwrap();
    let (layer, chosen) = (1, [1usize, 5, 11]);
    let (c, m) = (w.cfg.d_model, 12);
    // zero: the same as W_out rows set to 0
    let got =
        neurons::run_neurons_ablated(&backend, &tokens, 5, layer, &chosen, Ablation::Zero).unwrap();
    let mut edited = w.clone();
    let name = format!("blocks.{layer}.mlp.W_out");
    for &i in &chosen {
        edited.get_mut(&name).unwrap()[i * c..(i + 1) * c].fill(0.0);
    }
    let want = ReferenceBackend::for_inference(&edited)
        .unwrap()
        .logits(&tokens, 5)
        .unwrap();
    toyformer::compare::assert_close(
        "zero",
        &got.logits.data,
        &want.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        1e-4,
        1e-4,
    );
    // mean: W_out rows to 0 and b_out += Σ mean activation · old row
    let cache = toyformer::interp::run_with_cache(&backend, &tokens, 5).unwrap();
    let post = cache
        .get(&toyformer::interp::act_name("post", layer))
        .unwrap();
    let rows = post.data.len() / m;
    let got =
        neurons::run_neurons_ablated(&backend, &tokens, 5, layer, &chosen, Ablation::Mean).unwrap();
    let mut edited = w.clone();
    for &i in &chosen {
        let mean: f64 = (0..rows).map(|r| post.data[r * m + i] as f64).sum::<f64>() / rows as f64;
        let row: Vec<f32> = w.get(&name).unwrap()[i * c..(i + 1) * c].to_vec();
        let b = edited
            .get_mut(&format!("blocks.{layer}.mlp.b_out"))
            .unwrap();
        for k in 0..c {
            b[k] += (mean * row[k] as f64) as f32;
        }
        edited.get_mut(&name).unwrap()[i * c..(i + 1) * c].fill(0.0);
    }
    let want = ReferenceBackend::for_inference(&edited)
        .unwrap()
        .logits(&tokens, 5)
        .unwrap();
    toyformer::compare::assert_close(
        "mean",
        &got.logits.data,
        &want.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        1e-4,
        1e-4,
    );
    assert!(
        neurons::run_neurons_ablated(&backend, &tokens, 5, layer, &[12], Ablation::Zero).is_err()
    );
}

#[test]
fn grid_and_ranking_match_per_prompt_runs() {
    let p = 7;
    let mut v = serde_json::to_value(TaskSpec::default_for("mod-add").unwrap()).unwrap();
    v["p"] = serde_json::json!(p);
    let task: TaskSpec = serde_json::from_value(v).unwrap();
    let mut cfg = task.default_model();
    cfg.d_model = 16;
    cfg.d_head = 8;
    cfg.d_mlp = Some(10);
    let w = toyformer::model::Weights::init(&cfg).unwrap();
    let grid = neurons::neuron_grid(&w, &task, 0).unwrap();
    assert_eq!((grid.acts.rows, grid.acts.cols), (p * p, 10));
    let backend = ReferenceBackend::for_inference(&w).unwrap();
    for (a, b) in [(0, 0), (3, 5), (6, 2)] {
        let cache = toyformer::interp::run_with_cache(&backend, &[a, b, p as u32], 1).unwrap();
        let row = cache.at("blocks.0.mlp.hook_post", 0, 2).unwrap();
        let r = a as usize * p + b as usize;
        for (x, y) in grid.acts.row(r).iter().zip(row) {
            assert!((x - y).abs() < 1e-5, "({a}, {b}): {x} vs {y}");
        }
        assert_eq!(grid.answers[r], (a + b) % p as u32);
    }
    let de = neurons::direct_effects(&w, 0).unwrap();
    let ranked = neurons::rank_neurons(&grid, &de, 3).unwrap();
    assert_eq!(ranked.len(), 10);
    for s in &ranked {
        let i = s.neuron;
        let mean_de: f64 = (0..p).map(|c| de.at(i, c) as f64).sum::<f64>() / p as f64;
        let mut imp = 0.0;
        let mut best = f32::NEG_INFINITY;
        for a in 0..p {
            for b in 0..p {
                let x = grid.acts.at(a * p + b, i);
                imp += x as f64 * (de.at(i, (a + b) % p) as f64 - mean_de);
                best = best.max(x);
            }
        }
        assert!((s.importance - imp / (p * p) as f64).abs() < 1e-5);
        assert_eq!(s.top_inputs[0].2, best);
        let (a, b, x) = s.top_inputs[0];
        assert_eq!(grid.acts.at(a * p + b, i), x);
    }
    assert!(ranked
        .windows(2)
        .all(|w| w[0].importance >= w[1].importance));
    assert!(neurons::neuron_grid(&w, &common::small_sort(), 0).is_err());
}
