//! Weights in a link (`w=`): f16 + byte planes + zlib + base64url. Round trips equal an
//! independent f16 rounding; every decode error names what is wrong; and a fuzz loop over
//! random and mutated strings never panics and never yields non-finite weights.
//!
//! The fuzz loop runs `TOYFORMER_FUZZ_ITERS` executions (default 1,000,000) and prints the count.

use toyformer::model::config::{ActFn, ModelConfig, Norm};
use toyformer::model::params::Weights;
use toyformer::share::{
    base64url, decode_weights_link, encode_weights_link, fits_link, MAX_LINK_WEIGHTS_CHARS,
};
use toyformer::tasks::rng::CounterRng;
use toyformer::tasks::TaskSpec;

/// f32 → nearest f16 → f32, computed in f64 without the `half` crate: the f16 grid near x
/// has spacing 2^(e − 10) with e = max(floor(log2 |x|), −14); ties go to the even multiple.
fn f16_round_reference(x: f32) -> f32 {
    let x = x as f64;
    if x == 0.0 {
        return x as f32;
    }
    let e = x.abs().log2().floor().max(-14.0);
    let ulp = 2f64.powf(e - 10.0);
    let q = x / ulp;
    let r = q.round();
    let r = if (q - q.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - q.signum()
    } else {
        r
    };
    let y = r * ulp;
    assert!(y.abs() <= 65504.0, "{x} is outside the f16 range");
    y as f32
}

fn cfg(
    n_layers: usize,
    n_heads: usize,
    d_model: usize,
    d_head: usize,
    mlp: bool,
    ln: bool,
    task: &TaskSpec,
) -> ModelConfig {
    let mut c = task.default_model();
    c.n_layers = n_layers;
    c.n_heads = n_heads;
    c.d_model = d_model;
    c.d_head = d_head;
    c.d_mlp = mlp.then_some(4 * d_model);
    c.act_fn = mlp.then_some(ActFn::Gelu);
    c.normalization_type = ln.then_some(Norm::LN);
    c
}

/// Weights from `Weights::init`, then every value replaced by a draw that covers the f16
/// range: normals at several scales, subnormals, signed zeros, ties, and the extremes.
fn varied_weights(c: &ModelConfig, seed: u64) -> Weights {
    let mut w = Weights::init(c).unwrap();
    let mut rng = CounterRng::new(seed, 7, 0);
    for x in w.data.iter_mut() {
        *x = match rng.below(10) {
            0 => 0.0,
            1 => -0.0,
            2 => (rng.normal() * 1e-6) as f32,   // f16 subnormals
            3 => (rng.normal() * 1000.0) as f32, // large
            4 => 1.0 + 2f32.powi(-11) * (1 + 2 * rng.below(8)) as f32, // exact ties of the f16 grid
            5 => 65504.0 * if rng.below(2) == 0 { 1.0 } else { -1.0 },
            _ => (rng.normal() * 0.1) as f32,
        };
    }
    w
}

#[test]
fn round_trip_equals_an_independent_f16_rounding() {
    let sort = TaskSpec::Sort { n: 5, max_num: 10 };
    let perm = TaskSpec::permutations(3);
    let configs = [
        cfg(1, 1, 32, 32, false, false, &sort),
        cfg(2, 2, 16, 8, true, true, &sort),
        cfg(1, 4, 12, 3, false, true, &perm),
    ];
    for (i, c) in configs.iter().enumerate() {
        let w = varied_weights(c, i as u64);
        let text = encode_weights_link(&w, 1234 + i as u64).unwrap();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "base64url only"
        );
        let (back, step) = decode_weights_link(&text, c).unwrap();
        assert_eq!(step, 1234 + i as u64);
        assert_eq!(back.cfg, *c);
        let mut exact = 0;
        for (j, (&a, &b)) in w.data.iter().zip(&back.data).enumerate() {
            let want = f16_round_reference(a);
            assert_eq!(
                b.to_bits(),
                want.to_bits(),
                "value {j}: {a} came back as {b}, f16 rounding gives {want}"
            );
            exact += (a == b) as usize;
        }
        // zeros, ±65504 and the ties' even neighbours are exact; the normals are not
        assert!(
            exact > w.data.len() / 10 && exact < w.data.len(),
            "{exact} of {} exact",
            w.data.len()
        );
    }
}

#[test]
fn a_small_trained_size_model_fits_and_the_reference_size_does_not() {
    // The browser test's sort model (n 5, max_num 10, d_model 32): 5,322 values.
    let small = cfg(
        1,
        1,
        32,
        32,
        false,
        false,
        &TaskSpec::Sort { n: 5, max_num: 10 },
    );
    let w = Weights::init(&small).unwrap();
    let text = encode_weights_link(&w, 300).unwrap();
    assert!(fits_link(&text), "{} chars", text.len());
    // Normal weights in f16 are close to incompressible, but the byte planes still save
    // something: the text is under 4/3 · 2 bytes a value (plain f16 in base64).
    let plain = w.data.len() * 2 * 4 / 3;
    println!(
        "d_model 32 sort model: {} values → {} link characters (plain f16 base64: {plain})",
        w.data.len(),
        text.len()
    );
    assert!(text.len() < plain);
    // The seed-003 configuration (d_model 128): 82,026 values, well over 64 KiB.
    let big = Weights::init(&ModelConfig::sort_ref()).unwrap();
    let text = encode_weights_link(&big, 0).unwrap();
    println!(
        "sort-ref: {} values → {} link characters (limit {MAX_LINK_WEIGHTS_CHARS})",
        big.data.len(),
        text.len()
    );
    assert!(!fits_link(&text));
    assert!(decode_weights_link(&text, &ModelConfig::sort_ref())
        .unwrap_err()
        .to_string()
        .contains("more than the limit of 65536"));
}

#[test]
fn errors_name_the_problem() {
    let c = cfg(
        1,
        1,
        8,
        8,
        false,
        false,
        &TaskSpec::Sort { n: 3, max_num: 5 },
    );
    let mut w = Weights::init(&c).unwrap();
    let text = encode_weights_link(&w, 5).unwrap();

    // another config: the value counts differ, and both are given
    let mut other = c.clone();
    other.d_model = 12;
    other.d_head = 12;
    let e = decode_weights_link(&text, &other).unwrap_err().to_string();
    let n = w.data.len();
    let m = Weights::zeros(&other).unwrap().data.len();
    assert!(
        e.contains(&format!("holds {n} values"))
            && e.contains(&format!("has {m}"))
            && e.contains("d_model 12"),
        "{e}"
    );

    // a value f16 cannot hold names its tensor and index
    let p = w.table.get("blocks.0.attn.W_V").unwrap().clone();
    w.data[p.offset + 3] = 1e6;
    let e = encode_weights_link(&w, 0).unwrap_err().to_string();
    assert!(
        e.contains("`blocks.0.attn.W_V`") && e.contains("flat index 3") && e.contains("1000000"),
        "{e}"
    );

    let bytes = base64url::decode(&text, "t").unwrap();
    let reencode = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        decode_weights_link(&base64url::encode(&b), &c)
            .unwrap_err()
            .to_string()
    };
    assert!(reencode(&|b| b[0] = b'x').contains("`tf` marker"));
    assert!(reencode(&|b| b[2] = 9).contains("format version 9"));
    assert!(reencode(&|b| b.truncate(10)).contains("too short"));
    let cut = reencode(&|b| b.truncate(b.len() - 5));
    assert!(cut.contains("damaged") || cut.contains("fewer"), "{cut}");
    assert!(reencode(&|b| b.push(0)).contains("bytes follow the end"));
    let last = bytes.len() - 1;
    assert!(
        reencode(&|b| b[last] ^= 1).contains("damaged"),
        "the zlib checksum catches a flipped bit"
    );
    assert!(decode_weights_link("tf!!", &c)
        .unwrap_err()
        .to_string()
        .contains("not base64url"));
    assert!(
        decode_weights_link(&"A".repeat(MAX_LINK_WEIGHTS_CHARS + 4), &c)
            .unwrap_err()
            .to_string()
            .contains("limit")
    );
}

#[test]
fn a_compression_bomb_is_cut_at_the_size_the_config_needs() {
    // 16 MB of zeros compress to ~16 KB; the header claims the right N, so only the
    // decompressed length gives it away. Decoding reads at most 2N + 1 bytes.
    use std::io::Write;
    let c = cfg(
        1,
        1,
        8,
        8,
        false,
        false,
        &TaskSpec::Sort { n: 3, max_num: 5 },
    );
    let n = Weights::zeros(&c).unwrap().data.len() as u32;
    let mut head = b"tf\x01\x00".to_vec();
    head.extend_from_slice(&n.to_le_bytes());
    head.extend_from_slice(&0u64.to_le_bytes());
    let mut z = flate2::write::ZlibEncoder::new(head, flate2::Compression::best());
    z.write_all(&vec![0u8; 16 << 20]).unwrap();
    let text = base64url::encode(&z.finish().unwrap());
    assert!(fits_link(&text), "{} chars", text.len());
    let e = decode_weights_link(&text, &c).unwrap_err().to_string();
    assert!(e.contains("more bytes than"), "{e}");
}

/// One mutation of `s`: replace, insert, delete a character, cut, duplicate a piece, or
/// splice in characters from outside the alphabet.
fn mutate(s: &[u8], rng: &mut CounterRng) -> Vec<u8> {
    let mut v = s.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let len = v.len() as u64;
        let at = if len == 0 { 0 } else { rng.below(len) as usize };
        match rng.below(7) {
            0 if len > 0 => v[at] = b"ABCxyz09-_"[rng.below(10) as usize],
            1 => v.insert(at, b"AZaz09-_"[rng.below(8) as usize]),
            2 if len > 0 => {
                v.remove(at);
            }
            3 => v.truncate(at),
            4 if len > 0 => {
                let end = (at + 1 + rng.below(16) as usize).min(v.len());
                let piece = v[at..end].to_vec();
                v.splice(at..at, piece);
            }
            5 => v.splice(at..at, "=+/ %é\u{0}#&".bytes()).for_each(drop),
            _ if len > 0 => v[at] ^= 1 << rng.below(8),
            _ => {}
        }
    }
    v
}

#[test]
fn fuzz_decode_never_panics() {
    let iters: u64 = std::env::var("TOYFORMER_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    // a tiny model keeps each execution cheap; a second config exercises the count check
    let c = cfg(
        1,
        1,
        4,
        2,
        false,
        false,
        &TaskSpec::Sort { n: 1, max_num: 2 },
    );
    let c2 = cfg(
        1,
        1,
        4,
        2,
        false,
        true,
        &TaskSpec::Sort { n: 1, max_num: 2 },
    );
    let w = varied_weights(&c, 3);
    let valid = encode_weights_link(&w, 77).unwrap();
    let valid_bytes = base64url::decode(&valid, "t").unwrap();
    let mut rng = CounterRng::new(2024, 0, 0);
    let (mut ok, mut err) = (0u64, 0u64);
    for i in 0..iters {
        let text: String = match i % 5 {
            // random base64url text of random length
            0 => (0..rng.below(120))
                .map(|_| {
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        [rng.below(64) as usize] as char
                })
                .collect(),
            // random Unicode
            1 => (0..rng.below(40))
                .filter_map(|_| char::from_u32(rng.below(0x11_0000) as u32))
                .collect(),
            // character mutations of a valid link
            2 | 3 => String::from_utf8_lossy(&mutate(valid.as_bytes(), &mut rng)).into_owned(),
            // byte mutations of the decoded blob, re-encoded: reach the header and zlib checks
            _ => base64url::encode(&mutate(&valid_bytes, &mut rng)),
        };
        let target = if i % 11 == 0 { &c2 } else { &c };
        match decode_weights_link(&text, target) {
            Ok((got, _)) => {
                assert_eq!(got.data.len(), got.table.total_len());
                assert!(got.all_finite(), "decoded non-finite weights from {text:?}");
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().starts_with("weights: "), "{e}");
                err += 1;
            }
        }
    }
    println!("fuzz_decode_never_panics: {iters} executions, {ok} decoded, {err} refused");
    assert_eq!(ok + err, iters);
    assert!(
        ok > 0,
        "some mutations (of the step bytes, say) still decode"
    );
}
