//! The snapshot store (bounded, evenly thinned) and the timeline scores.
use crate::common;

use toyformer::interp::report::model_report;
use toyformer::interp::timeline::{capacity_for, snapshot_plan, timeline_point, SnapshotStore};

#[test]
fn store_keeps_an_even_grid_within_capacity() {
    let mut s = SnapshotStore::<u64>::new(8, 10).unwrap();
    let mut offered = 0;
    for step in 0..=1000u64 {
        if s.wants(step) {
            assert!(s.push(step, step * 2, false));
            offered += 1;
        } else if step % 10 == 0 {
            assert!(
                !s.push(step, 0, false) || s.steps().last() == Some(&step),
                "off-grid steps are refused"
            );
        }
        assert!(s.len() <= 8);
        // always evenly spaced from 0, except for the newest, which may be a tail
        let steps = s.steps();
        let grid: Vec<u64> = steps
            .iter()
            .copied()
            .filter(|x| x % s.every() == 0)
            .collect();
        assert!(steps.len() - grid.len() <= 1);
        assert_eq!(
            grid,
            (0..grid.len() as u64)
                .map(|i| i * s.every())
                .collect::<Vec<_>>(),
            "step {step}: {steps:?}"
        );
        assert_eq!(
            s.get(s.len() - 1).unwrap().data,
            s.steps().last().unwrap() * 2,
            "payload travels with its step"
        );
    }
    assert_eq!(s.every(), 160, "10 → 20 → 40 → 80 → 160 as the run grew");
    assert_eq!(s.steps(), vec![0, 160, 320, 480, 640, 800, 960]);
    assert!(offered > 8);
    // the final weights join off the grid, and a later snapshot replaces them
    assert!(s.push(1003, 0, true));
    assert_eq!(*s.steps().last().unwrap(), 1003);
    assert!(s.get(s.len() - 1).unwrap().tail);
    assert!(!s.push(1005, 0, false), "off grid and not a tail");
    assert!(s.push(1120, 0, false));
    assert_eq!(s.steps(), vec![0, 160, 320, 480, 640, 800, 960, 1120]);
    assert!(!s.push(1120, 0, false), "steps must increase");
    assert_eq!(s.at_or_before(500).unwrap().step, 480);
    assert!(SnapshotStore::<()>::new(1, 10).is_err() && SnapshotStore::<()>::new(4, 0).is_err());
    assert_eq!(capacity_for(1000, 10_000, 64), 10);
    assert_eq!(capacity_for(1000, 1_000_000, 64), 64);
    assert_eq!(capacity_for(1 << 30, 1000, 64), 2);
    assert_eq!(snapshot_plan(81_000, 3000), (64, 32), "3000 / 64 = 46 → 32");
    assert_eq!(snapshot_plan(81_000, 10), (64, 1));
    assert_eq!(
        snapshot_plan(4_000_000, 1000),
        (4, 128),
        "16 MB each: 4 fit in 64 MiB"
    );
}

#[test]
fn thinning_keeps_the_newest_snapshot() {
    let mut s = SnapshotStore::<()>::new(3, 1).unwrap();
    for step in 0..4 {
        assert!(s.push(step, (), false));
    }
    // 0 1 2 3 → every 2 → 0 2, and 3 stays as the tail
    assert_eq!(s.steps(), vec![0, 2, 3]);
    assert!(s.wants(4) && !s.wants(5));
    assert!(!s.push(5, (), false), "refused");
    assert_eq!(
        s.steps(),
        vec![0, 2, 3],
        "a refused snapshot does not drop the tail"
    );
    let mut s2 = s.clone();
    assert!(s2.push(4, (), false));
    assert_eq!(s2.steps(), vec![0, 2, 4]);
}

#[test]
fn timeline_point_agrees_with_the_report() {
    let w = common::seed003();
    let task = toyformer::tasks::TaskSpec::default_for("sort").unwrap();
    let p = timeline_point(&w, 123, &task, 64, 0).unwrap();
    let r = model_report(&w, &task, 64, 0).unwrap();
    assert_eq!(p.step, 123);
    let (h, rh) = (&p.heads[0], &r.heads[0]);
    assert_eq!(h.ov_diagonal, rh.ov_diagonal_fraction);
    assert_eq!(h.ov_eigen, rh.ov_eigen_copying);
    assert!((h.answer_mass - rh.attention_to_answer).abs() < 1e-9);
    // a random model of the same shape does not copy
    let mut cfg = w.cfg.clone();
    cfg.seed = 3;
    let fresh = toyformer::model::Weights::init(&cfg).unwrap();
    let q = timeline_point(&fresh, 0, &task, 64, 0).unwrap();
    assert!(
        q.heads[0].ov_diagonal < 0.3 && q.heads[0].ov_eigen.abs() < 0.5,
        "{:?}",
        q.heads[0]
    );
}
