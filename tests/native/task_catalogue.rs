//! The task catalogue: hand-written layouts of every new task, the answer each sample
//! carries checked by a plain loop, determinism, serde forms, and the registry's names.
//! (The finite datasets' splits are in `holdout_split.rs`; convergence in
//! `task_convergence.rs`.)

use toyformer::tasks::{TaskSpec, TASK_NAMES};

fn spec(json: &str) -> TaskSpec {
    serde_json::from_str(json).unwrap()
}

fn catalogue() -> Vec<TaskSpec> {
    TASK_NAMES
        .iter()
        .map(|n| TaskSpec::default_for(n).unwrap())
        .collect()
}

#[test]
fn every_registered_task_has_a_consistent_form() {
    assert_eq!(TASK_NAMES.len(), 14);
    for t in catalogue() {
        t.validate().unwrap();
        let name = t.name();
        assert!(TASK_NAMES.contains(&name));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["task"], name);
        assert_eq!(serde_json::from_value::<TaskSpec>(json).unwrap(), t);
        let bare = spec(&format!("{{\"task\":\"{name}\"}}"));
        assert_eq!(bare, t, "{name}: defaults differ from the bare JSON");
        assert_eq!(t.vocab().len(), t.d_vocab(), "{name}");
        assert_eq!(t.position_names().len(), t.seq_len(), "{name}");
        assert!(t.d_vocab_out() <= t.d_vocab(), "{name}");
        assert!(!t.description().is_empty());
        let model = t.default_model();
        model.validate().unwrap();
        assert_eq!(model.n_ctx, t.seq_len());
        for row in t.params() {
            let json = serde_json::to_value(&t).unwrap();
            // permutations leaves holdout and split_seed out of its JSON when they are 0
            let v = json.get(row.name).map_or(Some(row.default), |x| x.as_f64());
            assert_eq!(v, Some(row.default), "{name}.{}", row.name);
            assert!(row.min <= row.default && row.default <= row.max);
        }
        for i in 0..50 {
            let s = t.sample(3, 1, i);
            assert_eq!(s.len(), t.seq_len(), "{name}");
            assert!(s.iter().all(|&x| (x as usize) < t.d_vocab()), "{name}");
            let targets = t.targets(&s);
            assert_eq!(targets.len(), t.pred_positions().len());
            assert!(targets.iter().all(|&x| (x as usize) < t.d_vocab_out()));
            // The completion box: the sample's prompt, typed back, solves to the sample.
            let text = t.prompt_text(&s);
            let prompt = t
                .parse_prompt(&text)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(prompt[..], s[..t.prompt_len()], "{name}: {text}");
            assert_eq!(t.solve(&prompt).unwrap(), s, "{name}");
            for &p in &t.pred_positions() {
                assert!(t.answer_sources(&s, p).iter().all(|&q| q <= p), "{name}");
            }
        }
    }
}

#[test]
fn unknown_names_list_every_task() {
    let e = TaskSpec::default_for("reverso").unwrap_err().to_string();
    for name in TASK_NAMES {
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn previous_token_layout() {
    let t = TaskSpec::default_for("previous-token").unwrap();
    assert_eq!(t.seq_len(), 10);
    assert_eq!((t.d_vocab(), t.d_vocab_out()), (101, 101));
    assert_eq!(t.pred_positions(), (1..=9).collect::<Vec<_>>());
    let m = t.default_model();
    assert_eq!(
        (m.n_layers, m.n_heads, m.d_model, m.d_head),
        (2, 1, 128, 128)
    );
    assert_eq!(m.d_mlp, None);
    assert_eq!(
        m.positional_embedding_type,
        toyformer::model::Positions::Off
    );
    // position 1 predicts BOS, position p the token at p − 1 (100 is BOS's id and a value)
    let prompt = t.parse_prompt("7 0 100 42 5 5 99 1 3").unwrap();
    let seq = vec![100, 7, 0, 100, 42, 5, 5, 99, 1, 3];
    assert_eq!(prompt, seq);
    assert_eq!(t.solve(&prompt).unwrap(), seq);
    assert_eq!(t.targets(&seq), vec![100, 7, 0, 100, 42, 5, 5, 99, 1]);
    assert_eq!(t.answer_sources(&seq, 4), vec![3]);
    assert_eq!((t.shown_at(1), t.shown_at(9)), (0, 8));
    assert!(t.parse_prompt("7 0 101 42 5 5 99 1 3").is_err()); // past BOS's id
    assert!(t.parse_prompt("7 0").is_err());
    let mut seen = [0u32; 101];
    for i in 0..5000 {
        let s = t.sample(2, 3, i);
        assert_eq!(s[0], 100);
        let tg = t.targets(&s);
        for p in 1..10 {
            assert_eq!(tg[p - 1], s[p - 1]);
            seen[s[p] as usize] += 1;
        }
    }
    // uniform over 0..=100, BOS's id included: 45,000 draws, ≈ 446 each
    assert!(seen.iter().all(|&c| (300..600).contains(&c)), "{seen:?}");
    assert_eq!(t.sample(2, 3, 4), t.sample(2, 3, 4));
    assert_ne!(t.sample(2, 3, 4), t.sample(2, 3, 5));
}

#[test]
fn arena_palindromes_layout() {
    let t = TaskSpec::default_for("arena-palindromes").unwrap();
    // the published problem: START = 31, END = 32, 20 values in 0..=30, classified at END
    assert_eq!(t.seq_len(), 22);
    assert_eq!((t.d_vocab(), t.d_vocab_out()), (33, 2));
    assert_eq!(t.pred_positions(), vec![21]);
    assert_eq!(t.output_vocab(), vec!["no", "yes"]);
    let small: TaskSpec =
        serde_json::from_str(r#"{"task":"arena-palindromes","half_length":3,"max_value":9}"#)
            .unwrap();
    assert_eq!(
        small.parse_prompt("3 1 4 4 1 3").unwrap(),
        vec![10, 3, 1, 4, 4, 1, 3, 11]
    );
    assert_eq!(small.targets(&[10, 3, 1, 4, 4, 1, 3, 11]), vec![1]);
    assert_eq!(small.targets(&[10, 3, 1, 4, 4, 1, 2, 11]), vec![0]);
    assert_eq!(small.targets(&[10, 0, 0, 0, 0, 0, 0, 11]), vec![1]);
    assert_eq!(small.shown_at(7), 7);
    assert!(small.parse_prompt("3 1 10 4 1 3").is_err()); // 10 is START
                                                          // the two kinds in equal parts; a mutated sequence is labelled by what it is
    let (mut pal, n) = (0, 4000);
    for i in 0..n {
        let s = t.sample(5, 1, i);
        assert_eq!((s[0], s[21]), (31, 32));
        assert!(s[1..21].iter().all(|&x| x <= 30));
        let plain = (1..=20).all(|j| s[j] == s[21 - j]);
        assert_eq!(t.targets(&s), vec![plain as u32]);
        pal += plain as usize;
    }
    // P(palindrome) = 1/2 + 1/2 · P(all 10 coin-chosen values mirror) ≈ 0.5 + 0.5·(1/2 + 1/62)^10
    assert!((1900..2200).contains(&pal), "{pal} palindromes of {n}");
}

#[test]
fn array_index_layout() {
    let t = TaskSpec::default_for("array-index").unwrap();
    assert_eq!(t.seq_len(), 11);
    assert_eq!((t.d_vocab(), t.d_vocab_out()), (52, 50));
    assert_eq!(t.pred_positions(), vec![7, 8, 9]);
    let prompt = t.parse_prompt("7 3 9 | 1 42").unwrap();
    assert_eq!(prompt, vec![50, 7, 3, 9, 51, 1, 42, 51]);
    let seq = t.solve(&prompt).unwrap();
    assert_eq!(seq, vec![50, 7, 3, 9, 51, 1, 42, 51, 7, 42, 9]);
    assert_eq!(t.targets(&seq), vec![7, 42, 9]);
    assert_eq!(t.answer_sources(&seq, 7), vec![1]);
    assert_eq!(t.answer_sources(&seq, 8), vec![6]);
    assert!(t.parse_prompt("7 3 9 | 3 42").is_err()); // index out of range
    for i in 0..200 {
        let s = t.sample(1, 2, i);
        let (a, idx, elt, b) = (&s[1..4], s[5] as usize, s[6], &s[8..11]);
        assert!(idx < 3 && elt < 50 && s[4] == 51 && s[7] == 51 && s[0] == 50);
        for j in 0..3 {
            assert_eq!(b[j], if j == idx { elt } else { a[j] });
        }
    }
}

#[test]
fn majority_layout() {
    let t = TaskSpec::default_for("majority").unwrap();
    assert_eq!((t.d_vocab(), t.d_vocab_out()), (52, 52));
    assert_eq!(t.pred_positions(), vec![11]);
    assert_eq!(t.prompt_len(), 12);
    let prompt = t.parse_prompt("3 7 3 3 1 3 3 9 3 2").unwrap();
    assert_eq!(prompt, vec![51, 3, 7, 3, 3, 1, 3, 3, 9, 3, 2, 50]);
    assert_eq!(*t.solve(&prompt).unwrap().last().unwrap(), 3);
    assert!(t.parse_prompt("1 2 3 4 5 6 7 8 9 0").is_err());
    let mut m_counts = [0u32; 50];
    for i in 0..2000 {
        let s = t.sample(4, 0, i);
        assert_eq!((s[0], s[11]), (51, 50));
        let m = s[12];
        let count = s[1..11].iter().filter(|&&x| x == m).count();
        assert!(count >= 6, "{s:?}");
        for v in 0..50 {
            if v != m {
                assert!(s[1..11].iter().filter(|&&x| x == v).count() <= 4);
            }
        }
        m_counts[m as usize] += 1;
    }
    // m is uniform over 0..50: 40 per value expected.
    assert!(
        m_counts.iter().all(|&c| (15..75).contains(&c)),
        "{m_counts:?}"
    );
}

#[test]
fn min_of_two_and_modular_layouts() {
    let t = TaskSpec::default_for("min-of-two").unwrap();
    assert_eq!((t.d_vocab(), t.d_vocab_out()), (201, 200));
    assert_eq!(t.pred_positions(), vec![2]);
    let fs = t.finite().unwrap();
    assert_eq!((fs.n_items, fs.n_train), (40_000, 32_000));
    assert_eq!(t.parse_prompt("17 42").unwrap(), vec![17, 42, 200]);
    assert_eq!(t.solve(&[17, 42, 200]).unwrap(), vec![17, 42, 200, 17]);
    assert_eq!(t.solve(&[99, 5, 200]).unwrap(), vec![99, 5, 200, 5]);

    let add = TaskSpec::default_for("mod-add").unwrap();
    let sub = TaskSpec::default_for("mod-sub").unwrap();
    for m in [&add, &sub] {
        assert_eq!((m.d_vocab(), m.d_vocab_out()), (114, 113));
        let fs = m.finite().unwrap();
        assert_eq!((fs.n_items, fs.n_train), (12_769, 3_831));
        let model = m.default_model();
        assert_eq!((model.n_heads, model.d_model, model.d_head), (2, 128, 64));
        assert_eq!(model.d_mlp, Some(512));
    }
    assert_eq!(add.solve(&[100, 50, 113]).unwrap()[3], 37); // 150 - 113
    assert_eq!(sub.solve(&[5, 50, 113]).unwrap()[3], 68); // 5 - 50 + 113
    for i in 0..300 {
        for (m, f) in [(&add, 0), (&sub, 1)] {
            let s = m.sample(8, 3, i);
            let (a, b) = (s[0] as i64, s[1] as i64);
            let want = if f == 0 { a + b } else { a - b }.rem_euclid(113);
            assert_eq!((s[2], s[3] as i64), (113, want));
        }
        let s = t.sample(8, 3, i);
        assert_eq!(s[3], s[0].min(s[1]));
    }
    let small = spec(r#"{"task":"mod-sub","p":7,"frac_train":0.5,"split_seed":3}"#);
    assert_eq!(small.d_vocab(), 8);
    assert_eq!(small.finite().unwrap().n_train, 25); // round(24.5) = 25 (half away from 0)
    let e = spec(r#"{"task":"mod-add","frac_train":1.0}"#)
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("frac_train"), "{e}");
}

#[test]
fn induction_reverse_and_arena_sum_layouts() {
    let ind = spec(r#"{"task":"induction","k":4,"n_tokens":10}"#);
    assert_eq!(ind.seq_len(), 9);
    assert_eq!(ind.pred_positions(), vec![5, 6, 7]);
    let p = ind.parse_prompt("4 7 1 9").unwrap();
    assert_eq!(p, vec![10, 4, 7, 1, 9, 4]);
    let s = ind.solve(&p).unwrap();
    assert_eq!(s, vec![10, 4, 7, 1, 9, 4, 7, 1, 9]);
    assert_eq!(ind.targets(&s), vec![7, 1, 9]);
    assert_eq!(ind.answer_sources(&s, 5), vec![2]);
    assert!(ind.parse_prompt("4 7 4 9").is_err()); // not distinct
    for i in 0..200 {
        let s = ind.sample(2, 2, i);
        assert_eq!(s[1..5], s[5..9]);
        let mut r = s[1..5].to_vec();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), 4);
    }

    let rev = spec(r#"{"task":"reverse","n":3,"max_num":10}"#);
    let s = rev.solve(&rev.parse_prompt("3 1 4").unwrap()).unwrap();
    assert_eq!(s, vec![10, 3, 1, 4, 11, 4, 1, 3]);
    assert_eq!(rev.pred_positions(), vec![4, 5, 6]);
    assert_eq!(rev.answer_sources(&s, 4), vec![3]);
    assert_eq!(rev.answer_sources(&s, 6), vec![1]);

    let sum = TaskSpec::default_for("arena-sum").unwrap();
    assert_eq!(sum.seq_len(), 14);
    assert_eq!((sum.d_vocab(), sum.d_vocab_out()), (12, 10));
    let p = sum.parse_prompt("1234 + 4321").unwrap();
    assert_eq!(p, vec![1, 2, 3, 4, 10, 4, 3, 2, 1, 11]);
    let s = sum.solve(&p).unwrap();
    assert_eq!(&s[10..], &[5, 5, 5, 5]);
    let s = sum
        .solve(&sum.parse_prompt("4999 + 4999").unwrap())
        .unwrap();
    assert_eq!(&s[10..], &[9, 9, 9, 8]);
    assert!(sum.parse_prompt("5000 + 1").is_err());
    assert_eq!(sum.pred_positions(), vec![9, 10, 11, 12]);
    for i in 0..300 {
        let s = sum.sample(0, 5, i);
        let num = |d: &[u32]| d.iter().fold(0u64, |v, &x| v * 10 + x as u64);
        assert!(s[0] < 5 && s[5] < 5 && s[4] == 10 && s[9] == 11);
        assert_eq!(num(&s[0..4]) + num(&s[5..9]), num(&s[10..14]));
    }
}

#[test]
fn catalogue_batches_are_deterministic_and_use_seed_and_step() {
    for t in catalogue() {
        let b = t.batch(5, 11, 16);
        assert_eq!(b, t.batch(5, 11, 16));
        if t.finite().is_none() {
            assert_ne!(b, t.batch(6, 11, 16), "{}: seed ignored", t.name());
            assert_ne!(b, t.batch(5, 12, 16), "{}: step ignored", t.name());
        }
    }
}

#[test]
fn parse_prompt_never_panics_on_catalogue_tasks() {
    let inputs = [
        "",
        " ",
        "|",
        "||",
        "+",
        "=",
        "a b",
        "1 2 3 4 5 6 7 8 9 10 11 12 13",
        "99999999999999999999",
        "-1 2",
        "1,2,,3",
        "1 | 2 | 3",
        "1234+",
        "+1234",
        "0 0 | 0 0",
        "🙂",
        "BOS 1 2",
    ];
    for t in catalogue() {
        for s in inputs {
            if let Ok(p) = t.parse_prompt(s) {
                assert_eq!(p.len(), t.prompt_len(), "{}: {s:?}", t.name());
            }
        }
    }
}

#[test]
fn page_keys_keep_the_old_links_and_are_unique() {
    use toyformer::tasks::page_key;
    assert_eq!(page_key("sort", "n"), "sort_n");
    assert_eq!(page_key("sort", "max_num"), "max_num");
    assert_eq!(page_key("permutations", "n"), "perm_n");
    assert_eq!(page_key("apply-perm", "max_int"), "max_int");
    assert_eq!(page_key("mod-add", "frac_train"), "mod_add_frac_train");
    let mut keys: Vec<String> = catalogue()
        .iter()
        .filter(|t| !["sort", "permutations", "apply-perm"].contains(&t.name()))
        .flat_map(|t| {
            t.params()
                .into_iter()
                .map(|r| page_key(t.name(), r.name))
                .collect::<Vec<_>>()
        })
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

/// The page's task rows (`www/js/task-rows.js`, written by `make wasm` from this text): every
/// catalogue task with each of its parameters, and notes for every task, as valid JSON.
#[test]
fn page_task_rows_hold_every_task_and_parameter() {
    let text = toyformer::tasks::page_rows_js();
    let json_after = |marker: &str| -> serde_json::Value {
        let start = text.find(marker).unwrap() + marker.len();
        let end = start + text[start..].find(";\n").unwrap();
        serde_json::from_str(&text[start..end]).unwrap()
    };
    let rows = json_after("export const CATALOGUE = ");
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TASK_NAMES[3..].to_vec());
    for r in rows.as_array().unwrap() {
        let t = TaskSpec::default_for(r["name"].as_str().unwrap()).unwrap();
        let params: Vec<&str> = r["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["param"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = t.params().iter().map(|p| p.name).collect();
        assert_eq!(params, want, "{}", t.name());
    }
    let notes = json_after("export const NOTES = ");
    for n in TASK_NAMES {
        assert!(
            notes[n]["attention"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{n}"
        );
    }
}
