//! Data-parallel training over fixed shards (`toyformer::cpu::shard`): k workers give
//! bit-identical runs for k = 1, 2, 4, 8 over 50 steps on sort, permutations and apply-perm
//! (the code path the page's workers use: each worker's tree nodes, added by the coordinator);
//! the sharded gradient equals the whole-batch gradient of the plain engine within float
//! rounding; the tree covers and errors.

use toyformer::backend::{Backend, Batch};
use toyformer::cpu::shard::{assign, combine, cover, shards, Node, ShardedCpu};
use toyformer::cpu::CpuEngine;
use toyformer::model::{ModelConfig, Weights};
use toyformer::tasks::TaskSpec;
use toyformer::train::{TrainConfig, Trainer};

/// A task's default model, shrunk so 4 runs × 50 steps stay quick.
fn setup(name: &str) -> (TaskSpec, ModelConfig, TrainConfig) {
    let task = TaskSpec::default_for(name).unwrap();
    let mut model = task.default_model();
    model.d_model = 32;
    model.d_head = 16;
    model.d_mlp = model.d_mlp.map(|_| 64);
    let tc = TrainConfig {
        steps: 50,
        batch_size: 200, // 7 shards: not a power of two (the last tree leaf is empty), fewer than k = 8
        lr: 3e-3,
        seed: 4,
        ..Default::default()
    };
    (task, model, tc)
}

fn run(task: &TaskSpec, model: &ModelConfig, tc: &TrainConfig, k: usize) -> (Vec<u32>, Vec<u32>) {
    let w = Weights::init(model).unwrap();
    let b = ShardedCpu::new(&w, tc, task.pred_positions(), k).unwrap();
    let mut tr = Trainer::new(task.clone(), tc.clone(), Box::new(b)).unwrap();
    tr.run(|_| {}).unwrap();
    let losses = tr.history.iter().map(|m| m.loss.to_bits()).collect();
    let weights = tr.backend.weights().unwrap().data;
    (losses, weights.iter().map(|x| x.to_bits()).collect())
}

#[test]
fn k_workers_train_bit_identically_to_one() {
    // previous-token: targets that are not the next token travel to every shard
    for name in ["sort", "permutations", "apply-perm", "previous-token"] {
        let (task, model, tc) = setup(name);
        let one = run(&task, &model, &tc, 1);
        for k in [2, 4, 8] {
            let many = run(&task, &model, &tc, k);
            assert!(
                one.0 == many.0,
                "{name}: losses differ between k = 1 and k = {k}"
            );
            assert!(
                one.1 == many.1,
                "{name}: weights differ between k = 1 and k = {k}"
            );
        }
        // and it trained: the loss fell
        let (first, last) = (f32::from_bits(one.0[0]), f32::from_bits(one.0[49]));
        assert!(last < first, "{name}: loss {first} → {last} over 50 steps");
    }
}

#[test]
fn sharded_gradient_equals_whole_batch_gradient() {
    let (task, model, tc) = setup("sort");
    let w = Weights::init(&model).unwrap();
    let b = 200;
    let tokens = task.batch(tc.seed, 3, b);
    let mut plain = CpuEngine::new(&w, &tc, task.pred_positions()).unwrap();
    let (loss, named) = plain.loss_and_grads(&tokens, b).unwrap();
    let mut e = CpuEngine::new(&w, &tc, task.pred_positions()).unwrap();
    let batch = Batch::next_token(&tokens, b, &task.pred_positions()).unwrap();
    let n = shards(b).len();
    let mut nodes = Vec::new();
    for run in assign(n, 3) {
        nodes.extend(e.shard_grads(&batch, run).unwrap());
    }
    let (grads, sharded_loss, argmax) = combine(nodes, n).unwrap();
    assert!(
        (loss - sharded_loss).abs() <= 1e-5 * loss.abs(),
        "loss {loss} vs {sharded_loss}"
    );
    assert_eq!(argmax.len(), b * task.pred_positions().len());
    for p in w.table.params.iter().filter(|p| p.trainable) {
        let want = &named.iter().find(|(k, _)| k == &p.name).unwrap().1;
        let got = &grads[p.offset..p.offset + p.len];
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        for (i, (a, g)) in want.iter().zip(got).enumerate() {
            assert!((a - g).abs() <= 1e-4 * scale, "{}[{i}]: {a} vs {g}", p.name);
        }
    }
}

#[test]
fn shards_assignments_and_covers_partition_the_batch() {
    for b in [1, 7, 8, 9, 100, 256, 1000] {
        let s = shards(b);
        assert_eq!(s.first().unwrap().start, 0);
        assert_eq!(s.last().unwrap().end, b);
        assert!(s
            .windows(2)
            .all(|w| w[0].end == w[1].start && !w[1].is_empty()));
        assert!(
            s.len() <= 8 && s.iter().all(|r| r.len() >= b.min(16)),
            "b {b}: {s:?}"
        );
        for k in 1..=20 {
            let runs = assign(s.len(), k);
            assert_eq!(runs.len(), k);
            let mut covered = Vec::new();
            for r in runs {
                for node in cover(r.clone(), s.len()) {
                    let end = node.hi.min(s.len());
                    assert!(r.start <= node.lo && end <= r.end);
                    // a tree node: power-of-two size, aligned
                    assert!(
                        (node.hi - node.lo).is_power_of_two() && node.lo % (node.hi - node.lo) == 0
                    );
                    covered.extend(node.lo..end);
                }
            }
            assert_eq!(covered, (0..s.len()).collect::<Vec<_>>(), "b {b} k {k}");
        }
    }
}

#[test]
fn missing_or_bad_shards_are_errors() {
    let (task, model, tc) = setup("sort");
    let w = Weights::init(&model).unwrap();
    let tokens = task.batch(tc.seed, 0, 200);
    let mut e = CpuEngine::new(&w, &tc, task.pred_positions()).unwrap();
    let batch = Batch::next_token(&tokens, 200, &task.pred_positions()).unwrap();
    let err = e.shard_grads(&batch, 3..20).unwrap_err().to_string();
    assert!(err.contains("shards"), "{err}");
    let nodes = e.shard_grads(&batch, 0..5).unwrap();
    let err = combine(nodes, 7).unwrap_err().to_string();
    assert!(err.contains("shard 5") && err.contains("missing"), "{err}");
    // a coordinator whose outside worker sent nothing fails the step and changes nothing
    let mut c = ShardedCpu::coordinator(&w, &tc, task.pred_positions()).unwrap();
    c.set_workers(2);
    assert!(c.train_step(&tokens, 200, 1e-3, 0).is_err());
    assert_eq!(c.weights().unwrap().data, w.data);
    let _ = Node { lo: 0, hi: 1 };
}
