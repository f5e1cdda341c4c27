//! Saving and loading state dicts: exact round trips, dtypes on disk, strict loading, and
//! errors (never panics) on truncated and corrupted files.

mod common;

use autograd::Var;
use common::Scratch;
use nn::state_dict::{self, Error, FormatProblem};
use nn::{BatchNorm1d, Block, BlockConfig, Linear, Module, SharedRng};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tensor::{DType, Rng, Tensor};

fn sample_tensors() -> Vec<(String, Tensor)> {
    let mut rng = Rng::new(7);
    let mut special = Tensor::randn(&[5], 0.0, 1.0, DType::F32, &mut rng).to_vec::<f32>();
    special.extend([f32::NAN, f32::INFINITY, -0.0, f32::MIN_POSITIVE / 4.0]);
    vec![
        (
            "a.weight".into(),
            Tensor::randn(&[3, 4], 0.0, 1.0, DType::F32, &mut rng),
        ),
        ("a.special".into(), Tensor::from_vec(special, &[9])),
        (
            "b.ids".into(),
            Tensor::from_vec(vec![0u32, 7, u32::MAX], &[3]),
        ),
        ("b.big".into(), Tensor::from_vec(vec![-1i64, 1 << 60], &[2])),
        (
            "b.mask".into(),
            Tensor::from_vec(vec![1u8, 0, 1, 1], &[2, 2]),
        ),
        ("c.scalar".into(), Tensor::scalar(2.5f32)),
    ]
}

fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::F64 => t.to_vec::<f64>().iter().map(|v| v.to_bits()).collect(),
        _ => t.to_vec_f64().iter().map(|v| v.to_bits()).collect(),
    }
}

#[test]
fn save_then_load_is_bit_identical() {
    let dir = Scratch::new("roundtrip");
    let path = dir.join("t.safetensors");
    let tensors = sample_tensors();
    state_dict::save(&path, &tensors, DType::F32).unwrap();
    let dict = state_dict::load(&path).unwrap();
    let mut names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(dict.names(), names);
    for (name, t) in &tensors {
        let back = dict.tensor(name).unwrap();
        assert_eq!(
            back.dtype(),
            t.dtype(),
            "{name}: integer tensors keep their dtype"
        );
        assert_eq!(back.shape(), t.shape(), "{name}");
        assert_eq!(bits(&back), bits(t), "{name}");
    }
    assert!(dict.get("missing").is_none());
}

#[test]
fn half_precision_on_disk_reads_back_as_rounded_f32() {
    let dir = Scratch::new("half");
    let x = Tensor::randn(&[4, 5], 0.0, 3.0, DType::F32, &mut Rng::new(1));
    let tensors = vec![("x".to_string(), x.clone())];
    for dtype in [DType::F16, DType::BF16, DType::F64] {
        let path = dir.join(&format!("{dtype}.safetensors"));
        state_dict::save(&path, &tensors, dtype).unwrap();
        let dict = state_dict::load(&path).unwrap();
        assert_eq!(dict.dtype("x"), Some(dtype));
        let got = dict.get("x").unwrap();
        assert_eq!(got.dtype(), DType::F32);
        assert_eq!(
            bits(&got),
            bits(&x.to_dtype(dtype).to_dtype(DType::F32)),
            "{dtype}"
        );
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(len >= 20 * dtype.size_in_bytes() && len < 20 * dtype.size_in_bytes() + 200);
    }
}

#[test]
fn a_damaged_tensor_fails_its_checksum_and_nan_is_found_on_request() {
    let dir = Scratch::new("checksum");
    let path = dir.join("c.safetensors");
    let tensors = sample_tensors();
    state_dict::save(&path, &tensors, DType::F32).unwrap();
    let dict = state_dict::load(&path).unwrap();
    assert!(
        dict.metadata().is_empty(),
        "the checksums are not user metadata"
    );
    assert_eq!(dict.first_non_finite("a.weight"), None);
    let (index, value) = dict.first_non_finite("a.special").unwrap();
    assert!(index == 5 && value.is_nan());
    assert_eq!(dict.first_non_finite("b.ids"), None);
    drop(dict);
    // Flip one bit of the last byte of data (the data section ends the file).
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = state_dict::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("does not match its checksum (the file is damaged)"),
        "{err}"
    );
}

#[test]
fn metadata_round_trips() {
    let dir = Scratch::new("metadata");
    let path = dir.join("m.safetensors");
    let meta = BTreeMap::from([("step".to_string(), "42".to_string())]);
    state_dict::save_with_metadata(&path, &sample_tensors(), DType::F32, &meta).unwrap();
    assert_eq!(state_dict::load(&path).unwrap().metadata(), meta);
}

fn block(seed: u64) -> Block {
    let cfg = BlockConfig {
        dim: 8,
        n_head: 2,
        bias: true,
        dropout: 0.0,
        proj_std: 0.02,
        norm: nn::NormKind::Layer,
    };
    Block::new(cfg, &mut Rng::new(seed), &SharedRng::new(0))
}

#[test]
fn a_module_loads_into_another_exactly() {
    let dir = Scratch::new("module");
    let path = dir.join("block.safetensors");
    let (src, dst) = (block(1), block(2));
    state_dict::save_module(&src, &path, DType::F32).unwrap();
    let report = state_dict::load_file_into(&dst, &path, true).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    for ((n, a), (_, b)) in src.named_params().iter().zip(dst.named_params()) {
        assert_eq!(bits(&a.value()), bits(&b.value()), "{n}");
    }
    let x = Var::constant(Tensor::randn(
        &[2, 3, 8],
        0.0,
        1.0,
        DType::F32,
        &mut Rng::new(3),
    ));
    assert_eq!(
        src.forward(&x).value().to_vec::<f32>(),
        dst.forward(&x).value().to_vec::<f32>()
    );
}

#[test]
fn buffers_are_saved_and_loaded() {
    let dir = Scratch::new("buffers");
    let path = dir.join("bn.safetensors");
    let src = BatchNorm1d::new(3);
    let x = Tensor::randn(&[8, 3], 1.0, 2.0, DType::F32, &mut Rng::new(4));
    src.forward(&Var::constant(x));
    state_dict::save_module(&src, &path, DType::F32).unwrap();
    let dst = BatchNorm1d::new(3);
    state_dict::load_file_into(&dst, &path, true).unwrap();
    assert_eq!(
        dst.running_var.value().to_vec::<f32>(),
        src.running_var.value().to_vec::<f32>()
    );
    assert_ne!(dst.running_mean.value().to_vec::<f32>(), vec![0.0; 3]);
}

#[test]
fn strict_loading_reports_every_mismatch_at_once_and_changes_nothing() {
    let dir = Scratch::new("strict");
    let path = dir.join("bad.safetensors");
    let mut rng = Rng::new(5);
    let module = Linear::new(4, 3, true, 0.5, &mut rng);
    let before = module.weight.value().to_vec::<f32>();
    // `weight` is missing, `extra` is unexpected, `bias` has the wrong shape.
    let tensors = vec![
        ("bias".to_string(), Tensor::zeros(&[4], DType::F32)),
        ("extra".to_string(), Tensor::zeros(&[2], DType::F32)),
    ];
    state_dict::save(&path, &tensors, DType::F32).unwrap();
    let err = state_dict::load_file_into(&module, &path, true).unwrap_err();
    let Error::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(mismatch.missing, ["weight"]);
    assert_eq!(mismatch.unexpected, ["extra"]);
    assert_eq!(mismatch.shapes.len(), 1);
    assert_eq!(
        (
            mismatch.shapes[0].module.clone(),
            mismatch.shapes[0].file.clone()
        ),
        (vec![3], vec![4])
    );
    let msg = err.to_string();
    for part in [
        "bad.safetensors",
        "missing: weight",
        "unexpected: extra",
        "bias (module [3], file [4])",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    assert_eq!(module.weight.value().to_vec::<f32>(), before);
    // Not strict: names may differ, shapes still may not.
    assert!(state_dict::load_file_into(&module, &path, false).is_err());
    let fine = vec![
        ("bias".to_string(), Tensor::ones(&[3], DType::F32)),
        ("extra".to_string(), Tensor::zeros(&[2], DType::F32)),
    ];
    state_dict::save(&path, &fine, DType::F32).unwrap();
    let report = state_dict::load_file_into(&module, &path, false).unwrap();
    assert_eq!(
        (report.missing, report.unexpected),
        (vec!["weight".to_string()], vec!["extra".to_string()])
    );
    assert_eq!(
        module.bias.as_ref().unwrap().value().to_vec::<f32>(),
        vec![1.0; 3]
    );
}

#[test]
fn saving_rejects_duplicate_names_and_integer_disk_dtypes() {
    let dir = Scratch::new("bad-save");
    let path = dir.join("x.safetensors");
    let t = Tensor::zeros(&[2], DType::F32);
    let dup = vec![("a".to_string(), t.clone()), ("a".to_string(), t.clone())];
    let err = state_dict::save(&path, &dup, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x.safetensors") && err.contains("`a` appears twice"),
        "{err}"
    );
    let err = state_dict::save(&path, &dup[..1], DType::U8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("float dtype"), "{err}");
}

/// Writes a valid file and returns its bytes.
fn valid_file(path: &PathBuf) -> Vec<u8> {
    state_dict::save(path, &sample_tensors(), DType::F32).unwrap();
    std::fs::read(path).unwrap()
}

/// Loads `bytes` written to `path`, expecting a format error.
fn format_error(path: &PathBuf, bytes: &[u8]) -> (FormatProblem, String) {
    std::fs::write(path, bytes).unwrap();
    match state_dict::load(path) {
        Err(e @ Error::Format { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
            let Error::Format { problem, .. } = e else {
                unreachable!()
            };
            (problem, msg)
        }
        Err(e) => panic!("expected a format error, got {e}"),
        Ok(_) => panic!("a bad file loaded"),
    }
}

#[test]
fn a_truncated_file_is_a_documented_error() {
    let dir = Scratch::new("truncated");
    let good = dir.join("good.safetensors");
    let bytes = valid_file(&good);
    let bad = dir.join("cut.safetensors");
    let (problem, msg) = format_error(&bad, &bytes[..bytes.len() - 10]);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let data = bytes.len() as u64 - 8 - header_len;
    assert_eq!(
        problem,
        FormatProblem::DataLength {
            described: data,
            actual: data - 10
        }
    );
    assert!(msg.contains("truncated"), "{msg}");
    // Cut inside the header, and before the header length is complete.
    let (problem, _) = format_error(&bad, &bytes[..20]);
    assert_eq!(
        problem,
        FormatProblem::HeaderBeyondFile {
            header_len,
            available: 12
        }
    );
    let (problem, _) = format_error(&bad, &bytes[..3]);
    assert_eq!(problem, FormatProblem::TooShort { len: 3 });
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let dir = Scratch::new("every-cut");
    let bytes = valid_file(&dir.join("good.safetensors"));
    let bad = dir.join("cut.safetensors");
    for len in 0..bytes.len() {
        std::fs::write(&bad, &bytes[..len]).unwrap();
        assert!(
            state_dict::load(&bad).is_err(),
            "a file cut to {len} bytes loaded"
        );
    }
}

#[test]
fn corrupted_headers_are_documented_errors() {
    let dir = Scratch::new("corrupt");
    let bytes = valid_file(&dir.join("good.safetensors"));
    let bad = dir.join("bad.safetensors");

    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let (problem, _) = format_error(&bad, &huge);
    assert_eq!(
        problem,
        FormatProblem::HeaderTooLarge {
            header_len: u64::MAX
        }
    );

    let mut not_json = bytes.clone();
    not_json[8] = b'x';
    let (problem, msg) = format_error(&bad, &not_json);
    assert!(matches!(problem, FormatProblem::InvalidHeader(_)), "{msg}");
    assert!(msg.contains("JSON"), "{msg}");

    let handmade = |header: &str, data: usize| {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend(header.as_bytes());
        b.extend(vec![0u8; data]);
        b
    };
    let out_of_range = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,64]}}"#;
    let (problem, msg) = format_error(&bad, &handmade(out_of_range, 64));
    assert!(matches!(problem, FormatProblem::BadOffsets(_)), "{msg}");
    let gap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let (problem, msg) = format_error(&bad, &handmade(gap, 12));
    assert!(matches!(problem, FormatProblem::BadOffsets(_)), "{msg}");
    assert!(msg.contains("`a`"), "{msg}");
    let int32 = r#"{"n":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#;
    let (problem, msg) = format_error(&bad, &handmade(int32, 8));
    assert_eq!(
        problem,
        FormatProblem::UnsupportedDType {
            name: "n".into(),
            dtype: "I32".into()
        }
    );
    assert!(msg.contains("not supported"), "{msg}");
}

#[test]
fn random_corruption_never_panics() {
    let dir = Scratch::new("fuzz");
    let bytes = valid_file(&dir.join("good.safetensors"));
    let bad = dir.join("bad.safetensors");
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut rng = Rng::new(11);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(header_end);
            b[at] = rng.next_u64() as u8;
        }
        std::fs::write(&bad, &b).unwrap();
        if let Ok(dict) = state_dict::load(&bad) {
            // A corruption that still parses must still read every tensor.
            for name in dict.names() {
                dict.get(&name).unwrap();
            }
        }
    }
}

#[test]
fn a_missing_file_names_the_path() {
    let dir = Scratch::new("missing");
    let path = dir.join("nope.safetensors");
    let err = state_dict::load(&path).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().contains("nope.safetensors"), "{err}");
}
