//! Weight files: the reference TransformerLens model (.pt and .safetensors), our
//! safetensors export round trip, and malformed inputs (which must give errors, never
//! panics).

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::PathBuf;
use toyformer::io::*;
use toyformer::model::config::{ActFn, ModelConfig, Norm};
use toyformer::model::params::Weights;
use toyformer::Error;

const PT: &str = "sort_fixed_len_list_model.pt";
const ST: &str = "sort_fixed_len_list_model.safetensors";

/// The shared reference files. Missing files fail loudly: CI has /work/shared.
fn reference(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "shared",
        "reference-models",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("reference model {} is required: {e}", path.display()))
}

fn tensor<'a>(ts: &'a [NamedTensor], name: &str) -> &'a NamedTensor {
    ts.iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn assert_same_weights(a: &Weights, b: &Weights) {
    assert_eq!(a.cfg, b.cfg);
    assert_eq!(a.table, b.table);
    assert_eq!(bits(&a.data), bits(&b.data));
}

/// Rebuilds a zip, passing every entry through `f(name, bytes)`.
fn rezip(
    bytes: &[u8],
    method: zip::CompressionMethod,
    f: impl Fn(&str, Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    rezip_plus(bytes, method, f, None)
}

/// [`rezip`], appending one more entry.
fn rezip_plus(
    bytes: &[u8],
    method: zip::CompressionMethod,
    f: impl Fn(&str, Vec<u8>) -> Vec<u8>,
    extra: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for i in 0..src.len() {
        let mut e = src.by_index(i).unwrap();
        let name = e.name().unwrap().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.start_file(name.as_str(), opts).unwrap();
        out.write_all(&f(&name, data)).unwrap();
    }
    if let Some((name, data)) = extra {
        out.start_file(name, opts).unwrap();
        out.write_all(data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn patch_pkl(pt: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let (from, to) = (from.to_vec(), to.to_vec());
    rezip(pt, zip::CompressionMethod::Stored, move |name, data| {
        if !name.ends_with("data.pkl") {
            return data;
        }
        let i = data
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern in data.pkl");
        [&data[..i], &to[..], &data[i + from.len()..]].concat()
    })
}

const PARAM_SHAPES: [(&str, &[usize]); 13] = [
    ("embed.W_E", &[52, 128]),
    ("pos_embed.W_pos", &[22, 128]),
    ("blocks.0.attn.W_Q", &[1, 128, 128]),
    ("blocks.0.attn.W_K", &[1, 128, 128]),
    ("blocks.0.attn.W_V", &[1, 128, 128]),
    ("blocks.0.attn.W_O", &[1, 128, 128]),
    ("blocks.0.attn.b_Q", &[1, 128]),
    ("blocks.0.attn.b_K", &[1, 128]),
    ("blocks.0.attn.b_V", &[1, 128]),
    ("blocks.0.attn.b_O", &[128]),
    ("unembed.W_U", &[128, 50]),
    ("unembed.b_U", &[50]),
    ("blocks.0.attn.IGNORE", &[]),
];

#[test]
fn reads_reference_pt_and_safetensors() {
    let pt = read_pt(&reference(PT)).unwrap();
    let (st, meta) = read_safetensors(&reference(ST)).unwrap();
    for ts in [&pt, &st] {
        for (name, shape) in PARAM_SHAPES {
            assert_eq!(tensor(ts, name).shape, shape, "{name}");
        }
        assert_eq!(tensor(ts, "blocks.0.attn.IGNORE").data, vec![-1e5]);
    }
    // The bool mask is skipped in the .pt; the safetensors holds it as float 0/1.
    assert_eq!(pt.len(), 13);
    assert!(pt.iter().all(|t| t.name != "blocks.0.attn.mask"));
    assert_eq!(tensor(&st, "blocks.0.attn.mask").shape, vec![22, 22]);
    assert_eq!(st.len(), 14);
    // Every tensor in both files is bit-identical.
    for t in &pt {
        assert_eq!(
            bits(&t.data),
            bits(&tensor(&st, &t.name).data),
            "{}",
            t.name
        );
    }
    let _ = meta;
    // Read independently with Python's struct from the zip entry data/0.
    let expected = [0xbdc58fbc_u32, 0xbe1c62f0, 0xbe28c8f2, 0xbd9e433d];
    assert_eq!(bits(&tensor(&pt, "embed.W_E").data[..4]), expected);
    assert_eq!(bits(&tensor(&st, "embed.W_E").data[..4]), expected);
}

#[test]
fn reference_weights_agree_and_config_is_inferred() {
    let (pt_bytes, st_bytes) = (reference(PT), reference(ST));
    let cfg = infer_config(&read_pt(&pt_bytes).unwrap()).unwrap();
    assert_eq!(cfg, ModelConfig::sort_ref());
    assert_eq!(
        (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head),
        (1, 1, 128, 128)
    );
    assert_eq!((cfg.n_ctx, cfg.d_vocab, cfg.d_vocab_out), (22, 52, 50));
    assert!(cfg.attn_only() && cfg.normalization_type.is_none());
    assert_eq!(
        infer_config(&read_safetensors(&st_bytes).unwrap().0).unwrap(),
        cfg
    );

    let a = load_weights(&pt_bytes, None).unwrap();
    let b = load_weights(&st_bytes, None).unwrap();
    assert_same_weights(&a, &b);
    assert_same_weights(&a, &load_weights(&pt_bytes, Some(&cfg)).unwrap());
    assert_eq!(
        a.get("embed.W_E").unwrap()[..4],
        b.get("embed.W_E").unwrap()[..4]
    );
    assert_eq!(
        a.get("unembed.W_U").unwrap()[..4],
        b.get("unembed.W_U").unwrap()[..4]
    );
    for p in &a.table.params {
        let v = a.get(&p.name).unwrap();
        if p.name.rsplit('.').next().unwrap().starts_with("b_") {
            assert!(v.iter().all(|&x| x == 0.0), "{} is not zero", p.name);
        } else {
            assert!(v.iter().any(|&x| x != 0.0), "{} is all zero", p.name);
        }
    }
    assert!(unexpected_tensors(&read_safetensors(&st_bytes).unwrap().0, &cfg).is_empty());
}

#[test]
fn round_trip_reference_is_bit_identical_with_metadata() {
    let w = load_weights(&reference(PT), None).unwrap();
    let extra = vec![
        ("task".to_string(), "sort".to_string()),
        ("step".to_string(), "42".to_string()),
    ];
    let bytes = save_safetensors(&w, &extra).unwrap();
    assert_same_weights(&w, &load_weights(&bytes, None).unwrap());
    let (ts, meta) = read_tensors(&bytes).unwrap();
    let meta = meta.expect("metadata");
    assert_eq!(meta["task"], "sort");
    assert_eq!(meta["step"], "42");
    assert_eq!(meta["format"], "pt");
    let tl: serde_json::Value = serde_json::from_str(&meta["tl_config"]).unwrap();
    assert_eq!(ModelConfig::from_tl_json(&tl).unwrap(), w.cfg);
    assert_eq!(
        serde_json::from_str::<ModelConfig>(&meta["toyformer_config"]).unwrap(),
        w.cfg
    );
    // Every table tensor, as F32, under its TL key; nothing else.
    assert_eq!(ts.len(), w.table.params.len());
    for p in &w.table.params {
        assert_eq!(tensor(&ts, &p.name).shape, p.shape);
    }
    // A reserved key cannot be overridden by extras.
    let clash = vec![("tl_config".to_string(), "{}".to_string())];
    assert!(save_safetensors(&w, &clash).is_err());
}

fn big_cfg(train_biases: bool) -> ModelConfig {
    ModelConfig {
        n_layers: 2,
        n_heads: 4,
        d_model: 32,
        d_head: 8,
        d_mlp: Some(64),
        act_fn: Some(ActFn::Gelu),
        normalization_type: Some(Norm::LN),
        n_ctx: 12,
        d_vocab: 11,
        d_vocab_out: 9,
        seed: 7,
        train_biases,
        positional_embedding_type: Default::default(),
    }
}

#[test]
fn round_trip_two_layer_ln_mlp_gelu() {
    let cfg = big_cfg(false);
    let mut w = Weights::init(&cfg).unwrap();
    // Nonzero biases and LN params must survive too.
    for (i, x) in w
        .get_mut("blocks.1.mlp.b_in")
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        *x = i as f32 * 0.01 - 0.3;
    }
    w.get_mut("ln_final.w").unwrap()[3] = 1.5;
    let bytes = save_safetensors(&w, &[]).unwrap();
    assert_same_weights(&w, &load_weights(&bytes, None).unwrap());
    let meta = read_safetensors(&bytes).unwrap().1.unwrap();
    let tl: serde_json::Value = serde_json::from_str(&meta["tl_config"]).unwrap();
    assert_eq!(ModelConfig::from_tl_json(&tl).unwrap(), cfg);

    // Shapes alone give the same model except the activation (unknown: ReLU) and seed.
    let inferred = infer_config(&read_tensors(&bytes).unwrap().0).unwrap();
    assert_eq!(
        inferred,
        ModelConfig {
            act_fn: Some(ActFn::Relu),
            seed: 0,
            ..cfg.clone()
        }
    );
}

/// A safetensors file with only the given metadata (no toyformer keys).
fn with_metadata(w: &Weights, meta: HashMap<String, String>) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = w
        .table
        .params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.shape.clone(),
                w.get(&p.name)
                    .unwrap()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            )
        })
        .collect();
    let views = bytes.iter().map(|(n, s, b)| {
        (
            n.clone(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap(),
        )
    });
    safetensors::serialize(views, Some(meta)).unwrap()
}

#[test]
fn config_priority() {
    let cfg = big_cfg(true);
    let w = Weights::init(&cfg).unwrap();
    // toyformer_config (keeps train_biases and seed) beats tl_config (which has no train_biases).
    let bytes = save_safetensors(&w, &[]).unwrap();
    assert_eq!(load_weights(&bytes, None).unwrap().cfg, cfg);
    // tl_config alone: exact except train_biases.
    let tl = HashMap::from([("tl_config".to_string(), cfg.to_tl_json().to_string())]);
    assert_eq!(
        load_weights(&with_metadata(&w, tl), None).unwrap().cfg,
        ModelConfig {
            train_biases: false,
            positional_embedding_type: Default::default(),
            ..cfg.clone()
        }
    );
    // Neither: inferred.
    let none = load_weights(&with_metadata(&w, HashMap::new()), None).unwrap();
    assert_eq!(none.cfg.act_fn, Some(ActFn::Relu));
    assert_eq!(bits(&none.data), bits(&w.data));
    // An explicit config wins over the metadata.
    let gelu_new = ModelConfig {
        act_fn: Some(ActFn::GeluNew),
        ..cfg.clone()
    };
    assert_eq!(load_weights(&bytes, Some(&gelu_new)).unwrap().cfg, gelu_new);
    // A broken metadata config is an error, not a silent fallback.
    let broken = HashMap::from([(
        "toyformer_config".to_string(),
        "{\"n_layers\": 2".to_string(),
    )]);
    assert!(load_weights(&with_metadata(&w, broken), None).is_err());
}

#[test]
fn wrong_shape_and_missing_tensors_are_named() {
    // n_ctx 20 instead of 22: pos_embed.W_pos is [20, 128].
    let other = ModelConfig {
        n_ctx: 20,
        ..ModelConfig::sort_ref()
    };
    let bytes = save_safetensors(&Weights::init(&other).unwrap(), &[]).unwrap();
    let err = load_weights(&bytes, Some(&ModelConfig::sort_ref())).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("pos_embed.W_pos") && msg.contains("[22, 128]") && msg.contains("[20, 128]"),
        "{msg}"
    );

    let all = read_pt(&reference(PT)).unwrap();
    let cfg = ModelConfig::sort_ref();
    let without = |name: &str| {
        all.iter()
            .filter(|t| t.name != name)
            .cloned()
            .collect::<Vec<_>>()
    };
    let err = weights_from_tensors(&without("blocks.0.attn.W_K"), &cfg).unwrap_err();
    assert!(matches!(err, Error::MissingTensor { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("blocks.0.attn.W_K") && msg.contains("[1, 128, 128]"),
        "{msg}"
    );
    // A missing bias is zeros.
    let w = weights_from_tensors(&without("unembed.b_U"), &cfg).unwrap();
    assert!(w.get("unembed.b_U").unwrap().iter().all(|&x| x == 0.0));
    // Missing LN parameters are errors.
    let ln = ModelConfig {
        normalization_type: Some(Norm::LN),
        ..cfg.clone()
    };
    let msg = weights_from_tensors(&all, &ln).unwrap_err().to_string();
    assert!(msg.contains("blocks.0.ln1.w"), "{msg}");

    // Non-finite values name the tensor; a duplicate is an error.
    let mut nan = all.clone();
    nan.iter_mut()
        .find(|t| t.name == "unembed.W_U")
        .unwrap()
        .data[7] = f32::NAN;
    let msg = weights_from_tensors(&nan, &cfg).unwrap_err().to_string();
    assert!(msg.contains("unembed.W_U"), "{msg}");
    let mut dup = all.clone();
    dup.push(tensor(&all, "embed.W_E").clone());
    assert!(weights_from_tensors(&dup, &cfg)
        .unwrap_err()
        .to_string()
        .contains("embed.W_E"));
    // Extra layers are ignored by weights_from_tensors but reported.
    let mut extra = all.clone();
    extra.push(NamedTensor {
        name: "blocks.1.attn.W_Q".into(),
        ..tensor(&all, "blocks.0.attn.W_Q").clone()
    });
    assert!(weights_from_tensors(&extra, &cfg).is_ok());
    assert_eq!(
        unexpected_tensors(&extra, &cfg),
        vec!["blocks.1.attn.W_Q".to_string()]
    );
    // Non-finite weights are refused at save time too.
    let mut w = Weights::zeros(&cfg).unwrap();
    w.get_mut("blocks.0.attn.W_V").unwrap()[0] = f32::INFINITY;
    assert!(save_safetensors(&w, &[])
        .unwrap_err()
        .to_string()
        .contains("blocks.0.attn.W_V"));
}

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn truncated_and_random_inputs_are_errors() {
    for name in [PT, ST] {
        let bytes = reference(name);
        let n = bytes.len();
        let mut cuts = vec![0, 1, 10, 100, n / 2, n - 1];
        cuts.extend((0..n).step_by(4099));
        for cut in cuts {
            assert!(read_tensors(&bytes[..cut]).is_err(), "{name} cut at {cut}");
            assert!(
                load_weights(&bytes[..cut], None).is_err(),
                "{name} cut at {cut}"
            );
        }
    }
    let msg = read_tensors(&[]).unwrap_err().to_string();
    assert!(msg.contains(".pt") && msg.contains("safetensors"), "{msg}");
    let msg = read_tensors(b"hello, world").unwrap_err().to_string();
    assert!(msg.contains(".pt") && msg.contains("safetensors"), "{msg}");

    let mut seed = 1;
    for len in [1, 7, 8, 9, 64, 1000, 100_000] {
        let random: Vec<u8> = (0..len).map(|_| lcg(&mut seed) as u8).collect();
        for prefix in [
            &b""[..],
            b"PK\x03\x04",
            b"PK\x05\x06",
            &[0x80, 2],
            &[16, 0, 0, 0, 0, 0, 0, 0, b'{'],
        ] {
            let input = [prefix, &random[..]].concat();
            assert!(
                read_tensors(&input).is_err(),
                "random {len} with prefix {prefix:?}"
            );
        }
    }
}

#[test]
fn zips_that_are_not_torch_files_are_errors() {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    z.start_file("notes/hello.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"hello").unwrap();
    let bytes = z.finish().unwrap().into_inner();
    let msg = read_tensors(&bytes).unwrap_err().to_string();
    assert!(msg.contains("data.pkl"), "{msg}");
    let empty = zip::ZipWriter::new(Cursor::new(Vec::new()))
        .finish()
        .unwrap()
        .into_inner();
    assert!(read_tensors(&empty).is_err());
    // data.pkl that is not a pickle, or a pickle of something else
    for pkl in [&b"garbage"[..], b"", b"K\x05.", b"]q\x00."] {
        let bytes = rezip(
            &reference(PT),
            zip::CompressionMethod::Stored,
            |name, data| {
                if name.ends_with("data.pkl") {
                    pkl.to_vec()
                } else {
                    data
                }
            },
        );
        assert!(read_pt(&bytes).is_err(), "{pkl:?}");
    }
    // A storage entry shorter than its tensor
    let bytes = rezip(
        &reference(PT),
        zip::CompressionMethod::Stored,
        |name, mut data| {
            if name.ends_with("data/2") {
                data.truncate(100);
            }
            data
        },
    );
    assert!(read_pt(&bytes)
        .unwrap_err()
        .to_string()
        .contains("blocks.0.attn.W_Q"));
}

#[test]
fn mutated_pickles_never_panic() {
    let pt = reference(PT);
    let mut seed = 99;
    for _ in 0..300 {
        let (a, b, c) = (lcg(&mut seed), lcg(&mut seed), lcg(&mut seed));
        let bytes = rezip(&pt, zip::CompressionMethod::Stored, |name, mut data| {
            if name.ends_with("data.pkl") {
                let i = a as usize % data.len();
                match c % 3 {
                    0 => data[i] = b as u8,
                    1 => data.truncate(i),
                    _ => data.insert(i, b as u8),
                }
            }
            data
        });
        let _ = read_tensors(&bytes); // Ok or Err, but no panic
    }
}

#[test]
fn lying_safetensors_headers_are_errors() {
    let header = |h: &str, data: usize| {
        let mut v = (h.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(h.as_bytes());
        v.extend(std::iter::repeat_n(0u8, data));
        v
    };
    let ok = r#"{"embed.W_E":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    assert_eq!(
        read_safetensors(&header(ok, 16)).unwrap().0[0].data,
        vec![0.0; 4]
    );
    for (h, data) in [
        (
            r#"{"embed.W_E":{"dtype":"F32","shape":[2,2],"data_offsets":[0,999999]}}"#,
            16,
        ),
        (
            r#"{"embed.W_E":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
            8,
        ),
        (
            r#"{"embed.W_E":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#,
            16,
        ),
        (
            r#"{"embed.W_E":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#,
            16,
        ),
        (
            r#"{"embed.W_E":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#,
            16,
        ),
        (
            r#"{"embed.W_E":{"dtype":"F32","shape":[2,2],"data_offsets":[16,0]}}"#,
            16,
        ),
        (r#"{"embed.W_E":"#, 0),
    ] {
        assert!(read_tensors(&header(h, data)).is_err(), "{h}");
    }
    // A header length far past the end
    let mut v = u64::MAX.to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    assert!(read_tensors(&v).is_err());
    let mut v = 1000u64.to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    assert!(read_tensors(&v).is_err());
}

#[test]
fn pt_dtypes_offsets_strides_and_compression() {
    let pt = reference(PT);
    let orig = read_pt(&pt).unwrap();
    let w_e = &tensor(&orig, "embed.W_E").data;

    // float64 storages (the bool mask, entry 10, stays as it is)
    let f64_pt = rezip(
        &patch_pkl(&pt, b"torch\nFloatStorage\n", b"torch\nDoubleStorage\n"),
        zip::CompressionMethod::Stored,
        |name, data| {
            if !name.contains("/data/") || name.ends_with("/data/10") {
                return data;
            }
            data.chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes())
                .collect()
        },
    );
    let f64_t = read_pt(&f64_pt).unwrap();
    for t in &orig {
        assert_eq!(
            bits(&tensor(&f64_t, &t.name).data),
            bits(&t.data),
            "{}",
            t.name
        );
    }
    // bfloat16: the top halves of the f32s
    let bf16_pt = rezip(
        &patch_pkl(&pt, b"torch\nFloatStorage\n", b"torch\nBFloat16Storage\n"),
        zip::CompressionMethod::Stored,
        |name, data| {
            if !name.contains("/data/") || name.ends_with("/data/10") {
                return data;
            }
            data.chunks_exact(4).flat_map(|c| [c[2], c[3]]).collect()
        },
    );
    let got = tensor(&read_pt(&bf16_pt).unwrap(), "embed.W_E")
        .data
        .clone();
    assert_eq!(
        bits(&got),
        w_e.iter()
            .map(|x| x.to_bits() & 0xffff_0000)
            .collect::<Vec<_>>()
    );
    // an int tensor under a parameter name is an error
    let int_pt = patch_pkl(&pt, b"torch\nFloatStorage\n", b"torch\nLongStorage\n");
    assert!(read_pt(&int_pt)
        .unwrap_err()
        .to_string()
        .contains("LongStorage"));

    // storage offset 128, shape [51, 128]: rows 1.. of W_E
    let off = patch_pkl(
        &pt,
        &[b'Q', b'K', 0, b'K', 52, b'K', 128, 0x86],
        &[b'Q', b'K', 128, b'K', 51, b'K', 128, 0x86],
    );
    let t = tensor(&read_pt(&off).unwrap(), "embed.W_E").clone();
    assert_eq!(t.shape, vec![51, 128]);
    assert_eq!(bits(&t.data), bits(&w_e[128..]));
    let err = load_weights(&off, Some(&ModelConfig::sort_ref()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("embed.W_E") && err.contains("[51, 128]"),
        "{err}"
    );
    // an offset past the storage
    let past = patch_pkl(
        &pt,
        &[b'Q', b'K', 0, b'K', 52],
        &[b'Q', b'K', 200, b'K', 52],
    );
    assert!(read_pt(&past)
        .unwrap_err()
        .to_string()
        .contains("embed.W_E"));
    // strides (1, 52): column-major, not contiguous
    let strided = patch_pkl(&pt, &[b'K', 128, b'K', 1, 0x86], &[b'K', 1, b'K', 52, 0x86]);
    let err = read_pt(&strided).unwrap_err().to_string();
    assert!(
        err.contains("embed.W_E") && err.contains("contiguous"),
        "{err}"
    );

    // deflate-compressed archive, and a big-endian marker
    let deflated = rezip(&pt, zip::CompressionMethod::Deflated, |_, d| d);
    assert_eq!(read_pt(&deflated).unwrap(), orig);
    // torch >= 2.1 writes `<dir>/byteorder`; "little" is fine, "big" is refused
    let marked = |order: &[u8]| {
        rezip_plus(
            &pt,
            zip::CompressionMethod::Stored,
            |_, d| d,
            Some(("sort_fixed_len_list_model/byteorder", order)),
        )
    };
    assert_eq!(read_pt(&marked(b"little")).unwrap(), orig);
    let msg = read_pt(&marked(b"big")).unwrap_err().to_string();
    assert!(msg.contains("little-endian"), "{msg}");
}

#[test]
fn python_snippet() {
    let s = tl_python_snippet("model.safetensors", "model_config.json");
    assert!(s.contains("from safetensors.torch import load_file"));
    // TransformerLens 4 removed HookedTransformer: the snippet says which version it needs
    assert!(
        s.starts_with("# TransformerLens 3.x (pip install \"transformer_lens<4\")"),
        "{s}"
    );
    assert!(s.contains("from transformer_lens import HookedTransformer, HookedTransformerConfig"));
    assert!(s.contains(
        "HookedTransformer(HookedTransformerConfig(**json.load(open(\"model_config.json\"))))"
    ));
    assert!(s.contains("model.load_state_dict(load_file(\"model.safetensors\"), strict=False)"));
    assert!(tl_python_snippet("a\"b.safetensors", "c.json").contains(r#""a\"b.safetensors""#));
}
