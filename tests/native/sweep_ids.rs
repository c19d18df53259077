//! What lets another engine drive the sweep runner one run at a time: run ids, `--run-one`'s
//! lookup and `--shard k/N`, over random grids (every run listed once over N shards, ids unique
//! and stable, each id finding its own run), and reading results files back.

use serde_json::{json, Value};
use toyformer::sweep::{find_run, read_results, run_id, Grid, RunSpec, Shard};

/// splitmix64: the test's own random numbers (independent of the crate's generators).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
    /// 1..=max values drawn from `pool` (repeats allowed: a grid may list a value twice).
    fn list(&mut self, pool: &[Value], max: u64) -> Value {
        let len = 1 + self.below(max);
        Value::Array(
            (0..len)
                .map(|_| pool[self.below(pool.len() as u64)].clone())
                .collect(),
        )
    }
}

/// A random sort grid over a random subset of axes, 1 to a few hundred runs.
fn random_grid(rng: &mut Rng) -> Grid {
    let mut g = serde_json::Map::new();
    let axes: [(&str, Vec<Value>); 7] = [
        ("n_layers", vec![json!(1), json!(2)]),
        ("act_fn", vec![json!(null), json!("relu"), json!("gelu")]),
        ("lr", vec![json!(1e-3), json!(3e-3), json!(0.01)]),
        ("weight_decay", vec![json!(0.0), json!(0.1)]),
        ("batch_size", vec![json!(8), json!(16)]),
        ("steps", vec![json!(5), json!(10), json!(20)]),
        ("seed", (0..10).map(|s| json!(s)).collect()),
    ];
    for (k, pool) in axes {
        if rng.below(3) > 0 {
            let max = if k == "seed" { 6 } else { 3 };
            g.insert(k.into(), rng.list(&pool, max));
        }
    }
    Grid::from_value(&Value::Object(g)).unwrap()
}

fn looks_like_an_id(id: &str, index: usize) -> bool {
    let Some((i, h)) = id.split_once('-') else {
        return false;
    };
    i == index.to_string() && h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn shards_cover_every_run_once_and_ids_find_their_run() {
    let mut rng = Rng(20);
    for case in 0..60 {
        let grid = random_grid(&mut rng);
        let runs = grid.expand().unwrap();
        let ids: Vec<String> = runs.iter().map(run_id).collect();
        // ids: unique, index-prefixed, the same on a second expansion
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), runs.len(), "case {case}: ids repeat");
        let again: Vec<String> = grid.expand().unwrap().iter().map(run_id).collect();
        assert_eq!(ids, again, "case {case}: ids changed between expansions");
        for (r, id) in runs.iter().zip(&ids) {
            assert!(looks_like_an_id(id, r.index), "case {case}: id {id:?}");
            let found = find_run(&runs, id).unwrap();
            assert_eq!(found, r, "case {case}: {id} found another run");
        }
        // shards: every run in exactly one shard, for several N (more shards than runs too)
        for n in 1..=(runs.len() + 2).min(9) {
            let mut seen = vec![0usize; runs.len()];
            for k in 0..n {
                let shard = Shard::parse(&format!("{k}/{n}")).unwrap();
                assert_eq!(shard, Shard { k, n });
                let mine: Vec<&RunSpec> = runs.iter().filter(|r| shard.contains(r.index)).collect();
                for r in &mine {
                    seen[r.index] += 1;
                    assert_eq!(r.index % n, k);
                }
                // shard sizes differ by at most one
                let expect = runs.len() / n + usize::from(k < runs.len() % n);
                assert_eq!(mine.len(), expect, "case {case}: shard {k}/{n}");
            }
            assert!(seen.iter().all(|&c| c == 1), "case {case}, N={n}: {seen:?}");
        }
    }
}

#[test]
fn an_id_names_its_spec_not_only_its_position() {
    let g = |lr: f64| Grid::from_value(&json!({"lr": lr, "seed": [0, 1], "steps": 5})).unwrap();
    let a = g(1e-3).expand().unwrap();
    let b = g(2e-3).expand().unwrap();
    assert_ne!(run_id(&a[1]), run_id(&b[1]), "an edited grid keeps its ids");
    let e = find_run(&b, &run_id(&a[1])).unwrap_err().to_string();
    assert!(
        e.contains("run-one") && e.contains("not a run of this grid"),
        "{e}"
    );
    for bad in ["", "7", "2-00000000", "x-1", "1-zz"] {
        let e = find_run(&a, bad).unwrap_err().to_string();
        assert!(
            e.contains("run-one") && e.contains(&format!("{bad:?}")),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn bad_shards_are_errors_naming_the_option() {
    for bad in [
        "", "3", "3/3", "4/3", "1/0", "a/2", "1/b", "-1/3", "1/2/3", "0.5/2",
    ] {
        match Shard::parse(bad) {
            Ok(s) => panic!("{bad:?} was accepted as {s:?}"),
            Err(e) => assert!(e.to_string().contains("`shard`"), "{bad:?}: {e}"),
        }
    }
    assert_eq!(Shard::parse(" 2 / 5").unwrap(), Shard { k: 2, n: 5 });
}

/// A results line for run `spec` (the figures are not looked at by the reader).
fn line(spec: &RunSpec) -> String {
    let mut v = json!({
        "n_params": 1, "floor": 0.5, "steps_done": 5, "final_loss": 1.0, "excess": 0.5,
        "max_grad_norm": 2.0, "max_grad_norm_step": 3, "eval": null, "eval_train_split": null,
        "steps_to_target": null, "curve": [], "error": null
    });
    v["spec"] = serde_json::to_value(spec).unwrap();
    v.to_string()
}

#[test]
fn results_files_read_back_against_the_grid() {
    let runs = Grid::from_value(&json!({"seed": [0, 1, 2], "steps": 5}))
        .unwrap()
        .expand()
        .unwrap();
    let other = Grid::from_value(&json!({"seed": [0, 1, 2], "steps": 6}))
        .unwrap()
        .expand()
        .unwrap();
    // any order, a repeat, a foreign run, blank lines, and a last line cut short
    let full = line(&runs[1]);
    let text = format!(
        "{}\n\n{}\n{}\n{}\n{}",
        line(&runs[2]),
        line(&other[0]),
        line(&runs[2]),
        line(&runs[0]),
        &full[..full.len() / 2]
    );
    let back = read_results(&text, &runs).unwrap();
    assert_eq!(back.done.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(back.foreign, vec![3]);
    assert_eq!(back.repeated, 1);
    assert!(back.cut_short);
    // the same cut line in the middle of the file is an error naming its line
    let text = format!("{}\n{}\n", &full[..full.len() / 2], line(&runs[0]));
    let e = read_results(&text, &runs).unwrap_err().to_string();
    assert!(e.contains("results line 1"), "{e}");
    // complete file: nothing cut, nothing foreign
    let text = runs.iter().map(line).collect::<Vec<_>>().join("\n") + "\n";
    let back = read_results(&text, &runs).unwrap();
    assert_eq!(
        (back.done.len(), back.foreign.len(), back.cut_short),
        (3, 0, false)
    );
}

#[test]
fn result_numbers_read_back_exactly() {
    // Any finite f64 written to a results file reads back as the same bits (serde_json's
    // float_roundtrip; without it the last digit of some values moved on --resume / --aggregate).
    let runs = Grid::from_value(&json!({"steps": 5}))
        .unwrap()
        .expand()
        .unwrap();
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let x = loop {
            let x = f64::from_bits(rng.next());
            if x.is_finite() {
                break x;
            }
        };
        let mut v: Value = serde_json::from_str(&line(&runs[0])).unwrap();
        v["final_loss"] = json!(x);
        let back = read_results(&v.to_string(), &runs).unwrap();
        let got = back.done[&0].final_loss;
        assert_eq!(got.to_bits(), x.to_bits(), "{x:e} read back as {got:e}");
    }
}
