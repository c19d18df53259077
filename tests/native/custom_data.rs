//! The custom task (issue 14): both data formats decode hand-written files to the expected
//! tokens, scored positions and labels; every error names its line; random and mutated
//! files never panic the decoder; the split never leaks and keeps the file's marks; the
//! task travels in its JSON; seed 000's permutation data written as a text file trains.

use toyformer::backend::BackendKind;
use toyformer::error::Error;
use toyformer::rng::CounterRng;
use toyformer::tasks::custom::{decode, Custom, Format, Mark, Options};
use toyformer::tasks::{Split, TaskSpec};
use toyformer::train::{TrainConfig, Trainer};

fn opts(format: Format, separator: char) -> Options {
    Options {
        format,
        separator,
        n_ctx: 0,
    }
}

fn task(text: &str, opt: Options) -> TaskSpec {
    TaskSpec::Custom(Custom::new(text.to_string(), "t", opt))
}

#[test]
fn jsonl_with_header_decodes_to_tokens_scored_labels_and_padding() {
    let text = "{\"vocab\": [\"a\", \"b\", \"c\", \"=\"], \"name\": \"tiny\"}\n\
                {\"tokens\": [0, 1, 3, 1, 0], \"scored\": [2, 3]}\n\
                \n\
                {\"tokens\": [2, 2, 3, 2, 2, 1], \"scored\": [3, 2], \"split\": \"test\"}\r\n\
                {\"tokens\": [1, 0, 3, 0, 1], \"scored\": [2, 3], \"split\": \"train\"}\n";
    let ds = decode::decode(text, &opts(Format::Auto, '|')).unwrap_err();
    // line 2 has no split while others do
    assert_eq!(ds.first[0].line, 2, "{ds}");
    let text = text.replace(
        "\"scored\": [2, 3]}\n\n",
        "\"scored\": [2, 3], \"split\": \"train\"}\n\n",
    );
    let ds = decode::decode(&text, &opts(Format::Auto, '|')).unwrap();
    assert_eq!(ds.name, "tiny");
    assert_eq!(ds.format, Format::Jsonl);
    assert_eq!(ds.labels, ["a", "b", "c", "="]);
    assert_eq!(ds.examples.len(), 3);
    assert_eq!(ds.examples[1].line, 4);
    assert_eq!(ds.examples[1].tokens, [2, 2, 3, 2, 2, 1]);
    assert_eq!(ds.examples[1].scored, [2, 3]);
    assert_eq!(ds.examples[1].split, Some(Mark::Test));
    assert_eq!(ds.longest, 6);
    let t = task(&text, opts(Format::Jsonl, '|'));
    t.validate().unwrap();
    assert_eq!((t.seq_len(), t.d_vocab(), t.d_vocab_out()), (6, 5, 5));
    assert_eq!(t.vocab().last().unwrap(), "<pad>");
    assert_eq!(t.pred_positions(), [2, 3]);
    // the marked split: lines 2 and 5 train, line 4 tests; short lines padded with id 4
    let fs = t.finite().unwrap();
    assert_eq!((fs.n_items, fs.n_train), (3, 2));
    let test = t.batch_split(0, 0, 1, Split::HeldOut);
    assert_eq!(test, [2, 2, 3, 2, 2, 1]);
    let mut train: Vec<Vec<u32>> = t.batch(0, 0, 2).chunks(6).map(|r| r.to_vec()).collect();
    train.sort();
    assert_eq!(train, [vec![0, 1, 3, 1, 0, 4], vec![1, 0, 3, 0, 1, 4]]);
    assert_eq!(t.format_tokens(&train[0]), "a b = b a");
    assert_eq!(t.targets(&train[0]), [1, 0]); // tokens[p + 1] at p = 2, 3
}

#[test]
fn jsonl_without_header_labels_are_the_numbers() {
    let text = "{\"tokens\": [5, 1, 7], \"scored\": [1]}\n{\"tokens\": [0, 2, 3], \"scored\": [1]}";
    let t = task(text, Options::default());
    t.validate().unwrap();
    assert_eq!(t.d_vocab(), 9);
    assert_eq!(t.vocab()[..8], ["0", "1", "2", "3", "4", "5", "6", "7"]);
    assert_eq!(t.parse_prompt("5 1").unwrap(), [5, 1]);
    assert_eq!(t.solve(&[5, 1]).unwrap(), [5, 1, 7]);
}

#[test]
fn text_format_decodes_characters_with_a_settable_separator() {
    let text = "> ab| ba.\n> ba| ab.\n";
    let ds = decode::decode(text, &Options::default()).unwrap();
    assert_eq!(ds.format, Format::Text);
    assert_eq!(ds.labels, [" ", ".", ">", "a", "b"]); // sorted by code point
    assert_eq!(ds.examples[0].tokens, [2, 0, 3, 4, 0, 4, 3, 1]);
    // the separator ends the prompt (4 tokens): positions 3..=6 predict " ba."
    assert_eq!(ds.examples[0].scored, [3, 4, 5, 6]);
    let t = task("ab#ba\nba#ab\n", opts(Format::Text, '#'));
    t.validate().unwrap();
    assert_eq!(t.seq_len(), 4);
    assert_eq!(t.pred_positions(), [1, 2]);
    assert_eq!(t.parse_prompt("ab").unwrap(), [0, 1]);
    assert_eq!(t.solve(&[1, 0]).unwrap(), [1, 0, 0, 1]);
    // a prompt the data lacks ("aa" agrees with both lines on one position): the first line's continuation
    assert_eq!(t.solve(&[0, 0]).unwrap(), [0, 0, 1, 0]);
    assert_eq!(t.format_tokens(&[1, 0, 0, 1]), "baab");
    // n_ctx set: padded to 6 with the pad token (id 2)
    let o = Options {
        n_ctx: 6,
        ..opts(Format::Text, '#')
    };
    assert_eq!(
        task("ab#ba\nba#ab\n", o)
            .batch_split(0, 0, 1, Split::HeldOut)
            .len(),
        6
    );
    let t = task("ab#ba\nba#ab\n", o);
    assert!(t.finite().is_some());
    let item = t.batch(0, 0, 1);
    assert_eq!(item[4..], [2, 2]);
}

/// (file, options, the line of the first error, a piece of its message)
fn error_cases() -> Vec<(String, Options, usize, &'static str)> {
    let j = opts(Format::Jsonl, '|');
    let t = opts(Format::Text, '|');
    let good = "{\"tokens\": [1, 2, 3], \"scored\": [0, 1]}\n";
    let long = format!("{{\"tokens\": {:?}, \"scored\": [0]}}", vec![1; 1025]);
    vec![
        (format!("{good}{{\"tokens\": [1, 2\n"), j, 2, "not JSON"),
        (format!("{good}[1, 2]\n"), j, 2, "not a JSON object"),
        (
            format!("{good}{good}{{\"tokens\": [1, 2.5], \"scored\": [0]}}"),
            j,
            3,
            "not a whole number",
        ),
        (
            format!("{good}{{\"tokens\": [1, -2], \"scored\": [0]}}"),
            j,
            2,
            "not a whole number",
        ),
        (
            format!("{{\"vocab\": [\"a\", \"b\"]}}\n{good}"),
            j,
            2,
            "out of range",
        ),
        (
            format!("{good}{{\"tokens\": [1, 2], \"scored\": [5]}}"),
            j,
            2,
            "outside the sequence",
        ),
        (
            format!("{good}{{\"tokens\": [1, 2], \"scored\": [1]}}"),
            j,
            2,
            "points at padding",
        ),
        (
            format!("{good}{{\"tokens\": [1, 2], \"scored\": [0, 0]}}"),
            j,
            2,
            "listed twice",
        ),
        (
            format!("{good}{{\"tokens\": [1, 2]}}"),
            j,
            2,
            "\"scored\" is missing",
        ),
        (
            format!("{good}{{\"tokens\": [1, 2], \"scored\": [0], \"x\": 1}}"),
            j,
            2,
            "unknown field \"x\"",
        ),
        (
            format!("{good}{{\"tokens\": [1, 2], \"scored\": [0], \"split\": \"dev\"}}"),
            j,
            2,
            "\"train\" or \"test\"",
        ),
        (
            format!("{{\"vocab\": [\"a\", \"a\"]}}\n{good}"),
            j,
            1,
            "repeats the label",
        ),
        (format!("{good}{long}\n"), j, 2, "the limit n_ctx"),
        (String::new(), j, 0, "empty"),
        ("\n\r\n\n".into(), t, 0, "empty"),
        ("ab|c\nabc\n".into(), t, 2, "no separator"),
        ("ab|c\n|abc\n".into(), t, 2, "nothing before the separator"),
        ("ab|c\nab|\n".into(), t, 2, "nothing after the separator"),
        ("ab|c\na\u{7}b|c\n".into(), t, 2, "control character"),
        (
            format!("ab|c\na|{}\n", "x".repeat(1024)),
            t,
            2,
            "more than the limit of 1024",
        ),
        ("x".repeat(16 << 20 | 1), t, 0, "bytes"),
        ("a|b\n".repeat(200_001), t, 200_001, "limit on lines"),
        (
            format!("{}|b\n", "a".repeat(999)).repeat(4100),
            t,
            4001,
            "limit on tokens",
        ),
    ]
}

#[test]
fn every_error_names_its_line_and_what_is_wrong() {
    for (text, opt, line, what) in error_cases() {
        let errs = decode::decode(&text, &opt).unwrap_err();
        let first = &errs.first[0];
        let shown: String = text.chars().take(60).collect();
        assert_eq!(first.line, line, "{shown:?}: {errs}");
        assert!(first.msg.contains(what), "{shown:?}: {errs} lacks {what}");
        // through the one error enum, with the line in the message
        let e = TaskSpec::Custom(Custom::new(text, "bad", opt))
            .validate()
            .unwrap_err();
        assert!(matches!(e, Error::Task { .. }), "{e}");
        if line > 0 {
            assert!(e.to_string().contains(&format!("line {line}:")), "{e}");
        }
    }
}

#[test]
fn errors_count_the_lines_affected_and_keep_the_first() {
    let mut text = String::from("ab|c\n");
    for _ in 0..30 {
        text.push_str("abc\n");
    }
    let errs = decode::decode(&text, &Options::default()).unwrap_err();
    assert_eq!(errs.lines_affected, 30);
    assert_eq!(errs.first.len(), 20);
    assert_eq!((errs.first[0].line, errs.first[19].line), (2, 21));
    let e = Error::Data(errs).to_string();
    assert!(
        e.contains("line 2:") && e.contains("(30 lines affected)"),
        "{e}"
    );
}

#[test]
fn lines_scoring_different_positions_score_the_union_with_holes() {
    // vocabulary a b c d q x y z = 0..8, pad 8; T = 4
    let t = task("ab|cd\nab|c\nxyz|q\n", Options::default());
    t.validate().unwrap();
    assert_eq!(t.pred_positions(), vec![1, 2]);
    let i = toyformer::tasks::UNSCORED;
    assert_eq!(t.scored_targets(&[0, 1, 2, 3]), vec![2, 3]);
    assert_eq!(t.scored_targets(&[0, 1, 2, 8]), vec![2, i]);
    assert_eq!(t.scored_targets(&[5, 6, 7, 4]), vec![i, 4]);
    // the analyses' targets stay classes of the output vocabulary
    assert_eq!(t.targets(&[5, 6, 7, 4]), vec![7, 4]);
    // training batches carry the holes
    let b = toyformer::backend::Batch::of_task(&t, 0, 0, 2, Split::Train);
    for (row, tg) in b.tokens.chunks(4).zip(b.targets.chunks(2)) {
        assert_eq!(tg, t.scored_targets(row).as_slice());
    }
    // the floor counts each line's own positions: every continuation is determined
    assert_eq!(t.loss_floor(), 0.0);
}

/// Sorting the distinct letters of every 2- to 4-letter arrangement of `abcdef`, as text
/// lines `cab=|abc`: the prompt and the answer lengths vary, so the lines score different
/// positions.
fn sort_lines() -> String {
    let cs: Vec<char> = "abcdef".chars().collect();
    let mut out = String::new();
    for n in 2..=4usize {
        for code in 0..6usize.pow(n as u32) {
            let w: Vec<char> = (0..n)
                .map(|k| cs[code / 6usize.pow(k as u32) % 6])
                .collect();
            let mut d = w.clone();
            d.sort_unstable();
            d.dedup();
            if d.len() != n {
                continue;
            }
            let w: String = w.into_iter().collect();
            let d: String = d.into_iter().collect();
            out.push_str(&format!("{w}=|{d}\n"));
        }
    }
    out
}

#[test]
fn lines_of_different_lengths_train_to_high_accuracy() {
    let t = task(&sort_lines(), Options::default());
    t.validate().unwrap();
    assert_eq!(t.pred_positions(), (2..8).collect::<Vec<_>>());
    let mut model = t.default_model();
    model.normalization_type = Some(toyformer::model::config::Norm::LN);
    let tc = TrainConfig {
        steps: 1000,
        batch_size: 64,
        lr: 3e-3,
        seed: 1,
        ..Default::default()
    };
    let mut tr = Trainer::from_scratch(t.clone(), &model, tc, BackendKind::Cpu).unwrap();
    tr.run(|_| {}).unwrap();
    // a plain loop over every test line, at the positions that line scores: p is scored
    // when p + 1 holds an answer letter (after the '=' and before the padding)
    let fs = t.finite().unwrap();
    let (len, v) = (t.seq_len(), t.d_vocab());
    let eq = t.vocab().iter().position(|l| l == "=").unwrap() as u32;
    let pad = (v - 1) as u32;
    let rows = t.batch_split(0, 0, fs.n_test() as usize, Split::HeldOut);
    let (mut right, mut total) = (0usize, 0usize);
    for row in rows.chunks(len) {
        let logits = tr.backend.logits(row, 1).unwrap(); // (1, T, V)
        let start = row.iter().position(|&x| x == eq).unwrap();
        for p in start..len - 1 {
            if row[p + 1] == pad {
                break;
            }
            let l = &logits[p * v..(p + 1) * v];
            let best = (0..v).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap();
            right += (best as u32 == row[p + 1]) as usize;
            total += 1;
        }
    }
    let acc = right as f64 / total as f64;
    eprintln!(
        "sort lines: {} test lines, {total} scored, accuracy {acc}",
        fs.n_test()
    );
    assert!(acc >= 0.95, "test accuracy {acc}");
    // the run's own figures agree: they count only the scored pairs
    let last = tr.history.last().unwrap();
    assert!(
        last.token_acc > 0.9,
        "training token accuracy {}",
        last.token_acc
    );
}

/// A random file: JSON-ish or text-ish lines from a small alphabet of fragments.
fn random_file(rng: &mut CounterRng) -> String {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"tokens\"",
        "\"scored\"",
        "\"split\"",
        "\"vocab\"",
        "\"name\"",
        "\"train\"",
        "\"test\"",
        "0",
        "1",
        "7",
        "-1",
        "2.5",
        "1e3",
        "99999999999",
        "null",
        "\n",
        "\r\n",
        "|",
        "a",
        "é",
        "\u{0}",
        " ",
        "\"x\"",
        "true",
    ];
    let n = rng.below(60) as usize;
    (0..n)
        .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
        .collect()
}

/// A valid file with one byte-level mutation (delete, duplicate, replace, swap lines).
fn mutated_file(rng: &mut CounterRng) -> String {
    let base = if rng.below(2) == 0 {
        "{\"vocab\": [\"a\", \"b\", \"c\"], \"name\": \"n\"}\n{\"tokens\": [0, 1, 2], \"scored\": [0, 1], \"split\": \"train\"}\n{\"tokens\": [2, 1, 0], \"scored\": [0, 1], \"split\": \"test\"}\n".to_string()
    } else {
        "> ab| ba.\n> ba| ab.\n> ca| ac.\n".to_string()
    };
    let mut b = base.into_bytes();
    for _ in 0..=rng.below(3) {
        let i = rng.below(b.len() as u64) as usize;
        match rng.below(3) {
            0 => {
                b.remove(i);
            }
            1 => b.insert(i, b[i]),
            _ => b[i] = rng.below(128) as u8,
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Never panics; a file that decodes gives a consistent task. Iterations: the
/// `CUSTOM_FUZZ_N` environment variable (default 20,000; the closing note's release run uses
/// 1e6).
#[test]
fn random_and_mutated_files_never_panic() {
    let n: u64 = std::env::var("CUSTOM_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let mut decoded = 0;
    for i in 0..n {
        let mut rng = CounterRng::new(14, 0, i);
        let text = if i % 2 == 0 {
            random_file(&mut rng)
        } else {
            mutated_file(&mut rng)
        };
        let format = [Format::Auto, Format::Jsonl, Format::Text][(i % 3) as usize];
        let t = TaskSpec::Custom(Custom::new(text, "f", opts(format, '|')));
        if t.validate().is_err() {
            continue;
        }
        decoded += 1;
        let fs = t.finite().unwrap();
        for j in 0..fs.n_items {
            let s = t.batch_split(i, j, 1, Split::Train);
            assert_eq!(s.len(), t.seq_len());
            assert!(s.iter().all(|&x| (x as usize) < t.d_vocab()));
            // a scored position's target is never the pad token; each line scores one at least
            let pad = t.d_vocab() as u32 - 1;
            let tg = t.scored_targets(&s);
            assert!(tg.iter().all(|&x| x != pad), "{t:?}");
            assert!(tg.iter().any(|&x| x != toyformer::tasks::UNSCORED), "{t:?}");
            assert!(t
                .targets(&s)
                .iter()
                .all(|&x| (x as usize) < t.d_vocab_out()));
        }
        // patching's corruption of a row: one prompt token changed, answered without a panic
        let row = t.batch_split(i, 0, 1, Split::Train);
        let pl = t.prompt_len();
        if let Some(p) = t.corrupt_prompt(&row[..pl], i as usize) {
            assert_eq!((0..pl).filter(|&k| p[k] != row[k]).count(), 1, "{t:?}");
            assert!(t.solve(&p).is_ok(), "{t:?}");
        }
    }
    eprintln!("{decoded} of {n} files decoded");
    assert!(decoded > 0 && decoded < n);
}

#[test]
fn the_split_never_leaks_and_covers_every_line() {
    let mut text = String::new();
    for i in 0..97u32 {
        text.push_str(&format!("{:03}|{}\n", i, i % 7));
    }
    for seed in [0u64, 5] {
        let mut c = Custom::new(text.clone(), "n", Options::default());
        c.frac_train = 0.7;
        c.split_seed = seed;
        let t = TaskSpec::Custom(c);
        t.validate().unwrap();
        let fs = t.finite().unwrap();
        assert_eq!((fs.n_items, fs.n_train), (97, 68));
        let rows = |split, n| -> Vec<String> {
            t.batch_split(0, 0, n, split)
                .chunks(t.seq_len())
                .map(|r| t.format_tokens(&r[..3]))
                .collect()
        };
        let (train, test) = (rows(Split::Train, 68), rows(Split::HeldOut, 29));
        let mut all: Vec<&String> = train.iter().chain(&test).collect();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            97,
            "seed {seed}: a line is on both sides or missing"
        );
        // sampled batches (not the whole side) stay on their side
        for step in 0..20 {
            for r in t
                .batch_split(1, step, 16, Split::HeldOut)
                .chunks(t.seq_len())
            {
                assert!(test.contains(&t.format_tokens(&r[..3])));
            }
        }
    }
}

#[test]
fn the_task_travels_in_its_json_with_its_hash() {
    let t = task("ab|ba\nba|ab\naa|aa\n", Options::default());
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["task"], "custom");
    assert_eq!(json["data"], "ab|ba\nba|ab\naa|aa\n");
    let back: TaskSpec = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, t);
    assert_eq!(back.batch(3, 4, 2), t.batch(3, 4, 2));
    // different data under the recorded hash is refused, naming both hashes
    let mut other = json.clone();
    other["data"] = "ab|bb\nba|ab\naa|aa\n".into();
    let e = serde_json::from_value::<TaskSpec>(other)
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(
        e.to_string().contains(json["hash"].as_str().unwrap()),
        "{e}"
    );
    let mut bad = json;
    bad["separator"] = "ab".into();
    assert!(serde_json::from_value::<TaskSpec>(bad).is_err());
}

/// Seed 000's data generator (`"> " + the itertools permutations of a combination joined
/// by spaces + "."`), written with the separator after the first term, so the scored part
/// is every term after the first.
fn seed000_text(n: usize, chars: &str, every: usize) -> String {
    let cs: Vec<char> = chars.chars().collect();
    let mut out = String::new();
    let mut k = 0;
    let m = cs.len();
    for a in 0..m {
        for b in a + 1..m {
            for c in b + 1..m {
                k += 1;
                if n != 3 || k % every != 0 {
                    continue;
                }
                let e = [cs[a], cs[b], cs[c]];
                let terms: Vec<String> = [
                    [0, 1, 2],
                    [0, 2, 1],
                    [1, 0, 2],
                    [1, 2, 0],
                    [2, 0, 1],
                    [2, 1, 0],
                ]
                .iter()
                .map(|p| p.iter().map(|&i| e[i]).collect())
                .collect();
                out.push_str(&format!("> {}| {}.\n", terms[0], terms[1..].join(" ")));
            }
        }
    }
    out
}

#[test]
fn seed000_permutation_data_as_a_text_file_trains() {
    let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let text = seed000_text(3, letters, 10);
    let t = task(&text, Options::default());
    t.validate().unwrap();
    let mut model = t.default_model();
    model.n_layers = 1;
    model.normalization_type = Some(toyformer::model::config::Norm::LN);
    let tc = TrainConfig {
        steps: 600,
        batch_size: 64,
        lr: 3e-3,
        seed: 1,
        ..Default::default()
    };
    let mut tr = Trainer::from_scratch(t.clone(), &model, tc, BackendKind::Cpu).unwrap();
    tr.run(|_| {}).unwrap();
    // test accuracy by a plain loop over every test line: argmax at p against tokens[p + 1]
    let fs = t.finite().unwrap();
    let (len, v) = (t.seq_len(), t.d_vocab());
    let (mut right, mut total) = (0usize, 0usize);
    for j in 0..fs.n_test() {
        let row = t.batch_split(0, 0, fs.n_test() as usize, Split::HeldOut)
            [j as usize * len..(j as usize + 1) * len]
            .to_vec();
        let logits = tr.backend.logits(&row, 1).unwrap(); // (1, T, V)
        for p in t.pred_positions() {
            let l = &logits[p * v..(p + 1) * v];
            let best = (0..v).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap();
            right += (best as u32 == row[p + 1]) as usize;
            total += 1;
        }
    }
    let acc = right as f64 / total as f64;
    eprintln!("seed 000 data: {} test lines, accuracy {acc}", fs.n_test());
    assert!(acc >= 0.99, "test accuracy {acc}");
}

#[test]
fn data_packed_for_a_link_comes_back_exactly_and_bad_text_is_named() {
    use toyformer::share::link_data::{decode_data_link, encode_data_link, fits_data_link};
    let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let text = seed000_text(3, letters, 40); // 945 lines, 26 KB
    let packed = encode_data_link(&text).unwrap();
    assert!(fits_data_link(&packed), "{} chars", packed.len());
    assert_eq!(decode_data_link(&packed).unwrap(), text);
    assert_eq!(
        decode_data_link(&encode_data_link("é|x\n").unwrap()).unwrap(),
        "é|x\n"
    );
    for (bad, what) in [
        ("", "header"),
        ("AAAA", "header"),
        ("dGQB!A", "not base64url"),
        (&"A".repeat(30_000)[..], "more than"),
    ] {
        let e = decode_data_link(bad).unwrap_err().to_string();
        assert!(e.contains(what), "{bad:.20}: {e}");
    }
    let mut broken = packed.clone();
    broken.truncate(packed.len() / 2);
    assert!(decode_data_link(&broken).is_err());
    // mutations never panic
    let mut rng = CounterRng::new(14, 1, 0);
    for _ in 0..2000 {
        let mut b = packed.clone().into_bytes();
        let i = rng.below(b.len() as u64) as usize;
        b[i] = b"AZaz09-_"[rng.below(8) as usize];
        let _ = decode_data_link(std::str::from_utf8(&b).unwrap());
    }
}

/// The loss floor of a file with ambiguous continuations, against a count by hand: on the
/// training side (marked) the prompt "a b" continues with "c" twice and "d" once, "b a"
/// with "e".
#[test]
fn the_loss_floor_counts_ambiguous_continuations() {
    let line = |t: [u32; 3], split: &str| {
        format!("{{\"tokens\": {t:?}, \"scored\": [1], \"split\": \"{split}\"}}\n")
    };
    let text = [
        "{\"vocab\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}\n".to_string(),
        line([0, 1, 2], "train"),
        line([0, 1, 3], "train"),
        line([1, 0, 4], "train"),
        line([0, 1, 2], "train"),
        line([0, 1, 3], "test"),
    ]
    .concat();
    let t = task(&text, Options::default());
    t.validate().unwrap();
    let h = -(2.0 * (2.0f64 / 3.0).ln() + (1.0f64 / 3.0).ln()); // "a b": c, c, d; "b a": e only
    let want = h / 4.0;
    assert!(
        (t.loss_floor() - want).abs() < 1e-12,
        "{} vs {want}",
        t.loss_floor()
    );
    assert_eq!(task("ab|c\nba|d\n", Options::default()).loss_floor(), 0.0);
}

/// A custom grid's runs on a data file (the CLI's `sweep --data` and the page's Sweep cell):
/// every run gets the file (its hash, labels, separator), keeps its own split parameters,
/// and its model is sized from the file; a grid of another task or a bad patch is named.
#[test]
fn a_custom_sweep_runs_on_the_data_file_with_its_own_split() {
    use toyformer::sweep::{runs_on_data, Grid};
    let grid = Grid::from_json(
        r#"{"task": "custom", "frac_train": [0.5, 0.75], "split_seed": 3, "n_layers": 1,
            "d_model": 32, "d_head": 16, "steps": 5, "seed": [0, 1]}"#,
    )
    .unwrap();
    let mut runs = grid.expand().unwrap();
    assert_eq!(runs.len(), 4);
    let example = runs[0].task.clone();
    // 3 distinct letters of `efghij` and their reversal, separated by a space: 6 labels + pad, T = 6.
    let mut text = String::new();
    for a in "efghij".chars() {
        for b in "efghij".chars().filter(|&b| b != a) {
            for c in "efghij".chars().filter(|&c| c != a && c != b) {
                text.push_str(&format!("{a}{b}{c} {c}{b}{a}\n"));
            }
        }
    }
    let patch = serde_json::json!({"data": text, "name": "rev.txt", "separator": " "});
    runs_on_data(&mut runs, patch.as_object().unwrap()).unwrap();
    let hash = toyformer::tasks::custom::data_hash(text.as_bytes());
    for (r, frac) in runs.iter().zip([0.5, 0.5, 0.75, 0.75]) {
        let TaskSpec::Custom(c) = &r.task else {
            panic!("not custom: {:?}", r.task)
        };
        assert_eq!(
            (c.hash(), c.name.as_str(), c.text()),
            (hash.as_str(), "rev.txt", text.as_str())
        );
        assert_eq!(c.options().separator, ' ');
        assert_eq!(
            (c.frac_train, c.split_seed),
            (frac, 3),
            "the grid's split is kept"
        );
        assert_eq!(c.dataset().unwrap().examples.len(), 120);
        assert_eq!(
            (r.model.d_vocab, r.model.d_vocab_out, r.model.n_ctx),
            (7, 7, 6)
        );
        assert_eq!(
            (r.model.n_layers, r.model.d_model),
            (1, 32),
            "the grid's model is kept"
        );
        assert_ne!(r.task, example);
    }
    // a grid of another task, a patch without data or with an unknown key, bad data: named
    let mut sort = Grid::from_json(r#"{"task": "sort", "n": 3}"#)
        .unwrap()
        .expand()
        .unwrap();
    let e = runs_on_data(&mut sort, patch.as_object().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("task is custom; run 1 is \"sort\""), "{e}");
    let mut fresh = grid.expand().unwrap();
    for (p, want) in [
        (serde_json::json!({"name": "x"}), "the data's text"),
        (
            serde_json::json!({"data": "a|b\n", "steps": 3}),
            "\"steps\" is not one of",
        ),
        (serde_json::json!({"data": "ab\n"}), "line 1: no separator"),
        (
            serde_json::json!({"data": "a|b\n", "separator": "ab"}),
            "must be one character",
        ),
    ] {
        let e = runs_on_data(&mut fresh, p.as_object().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{p}: {e}");
    }
}

/// Patching's corruption of custom data changes one unscored input token (a prompt position:
/// no scored position predicts it) to another token seen at that position in the file, a
/// prompt of the file when one exists; checked by a plain comparison with the clean rows.
#[test]
fn patching_corrupts_one_unscored_input_to_a_token_seen_there() {
    use toyformer::interp::circuit_metric::{corrupt, default_pairs};
    let text = seed000_text(3, "abcdefgh", 1); // 56 lines `> abc| acb bac bca cab cba.`
    let t = task(&text, opts(Format::Text, '|'));
    let pl = t.prompt_len();
    assert_eq!(pl, 5, "the prompt `> abc`");
    let first_scored = t.pred_positions()[0];
    let TaskSpec::Custom(c) = &t else {
        unreachable!()
    };
    let rows: Vec<Vec<u32>> = (c.dataset().unwrap().examples.iter())
        .map(|e| e.tokens.clone())
        .collect();
    assert_eq!((rows.len(), rows[0].len(), t.seq_len()), (56, 26, 26));
    let seen_at =
        |p: usize| -> std::collections::BTreeSet<u32> { rows.iter().map(|r| r[p]).collect() };
    let prompts: std::collections::BTreeSet<&[u32]> = rows.iter().map(|r| &r[..pl]).collect();
    // what the corruption must pick, by a plain search: the first position (the middle one, then
    // the others) with a replacement seen there giving a prompt of the file; the replacements
    let expect = |clean: &[u32]| -> (usize, std::collections::BTreeSet<u32>) {
        let order = std::iter::once(pl / 2).chain((0..pl).filter(|&i| i != pl / 2));
        for at in order {
            let ok: std::collections::BTreeSet<u32> = (seen_at(at).into_iter())
                .filter(|&x| x != clean[at])
                .filter(|&x| {
                    let mut p = clean[..pl].to_vec();
                    p[at] = x;
                    prompts.contains(&p[..])
                })
                .collect();
            if !ok.is_empty() {
                return (at, ok);
            }
        }
        panic!("no replacement in {clean:?}")
    };
    let pairs = default_pairs(&t, 64, 7).unwrap();
    let n = pairs.clean.len() / pairs.batch;
    let mut positions = std::collections::BTreeSet::new();
    for b in 0..pairs.batch {
        let clean = &pairs.clean[b * n..(b + 1) * n];
        let bad = &pairs.corrupted[b * n..(b + 1) * n];
        let diff: Vec<usize> = (0..pl).filter(|&i| clean[i] != bad[i]).collect();
        assert_eq!(
            diff.len(),
            1,
            "one prompt token changes: {clean:?} → {bad:?}"
        );
        let at = diff[0];
        assert!(
            at == 0 || at - 1 < first_scored,
            "position {at} is an input (no scored position predicts it)"
        );
        let (want_at, want) = expect(clean);
        assert_eq!(at, want_at, "{clean:?}");
        assert!(
            want.contains(&bad[at]),
            "{clean:?} → {bad:?}: a token seen at {at} giving a prompt of the file"
        );
        assert!(
            rows.iter().any(|r| bad.starts_with(r)),
            "{bad:?} is answered as its line of the file"
        );
        positions.insert(at);
    }
    assert!(
        positions.contains(&2),
        "the middle input first where it can: {positions:?}"
    );
    // `> abc`: nothing replaces a or b to give a prompt of the file, c becomes d..h; shifts walk them
    let clean = &rows[0];
    let got: std::collections::BTreeSet<(usize, u32)> = (0..10)
        .map(|s| {
            let bad = corrupt(&t, clean, s).unwrap();
            let at = (0..pl).find(|&i| bad[i] != clean[i]).unwrap();
            (at, bad[at])
        })
        .collect();
    let (at, want) = expect(clean);
    assert_eq!(at, 4);
    assert_eq!(got, want.into_iter().map(|x| (4, x)).collect());
}
