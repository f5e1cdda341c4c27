//! llama2.c's stories260K runs here as in llama2.c: greedy generation from BOS gives the
//! reference's 200 tokens, and a file written here reads back bit for bit.

use llm::generate::{generate, Generation, Sampling};
use llm::model::config::Architecture;
use llm::model::llama2c;
use nn::Module;
use std::path::Path;

/// llama2.c's 260K-parameter TinyStories model, shipped in `data/llama2c`.
fn stories260k() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/llama2c/stories260K.bin")
}

/// llama2.c's `run stories260K.bin -z tok512.bin -t 0.0 -n 200`, as token ids after BOS
/// (llama2.c's test_all.py; the ids are in the data's REFERENCE.md).
const GREEDY_200: &str = "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415 426 13 438 310 439 419 357 336 432 313 438 310 432 278 316 439 419 298 414 267 265 282 295 433 426 436 317 286 296 418 269 279 292 416 439 413 409 416 327 263 415 294 267 400 426 338 336 432 313 442 391 267 337 335 364 420 268 388 432 398 359 280 303 439 413 272 417 264 312 426 436 13 438 310 286 296 418 269 279 292 416 439 413 409 416 327 263 415 294 267 400 426 338 336 432 313 442 439 423 262 304 420 422 432 317 426 359 279 292 416 439 413 409 416 327 263 415 294 267 400 426 436 13 438 310 279 292 416 439 413 391 267 281 421 427 311 357 432 384 358";

#[test]
fn stories260k_greedy_matches_llama2c() {
    let (model, cfg) = llama2c::read(&stories260k()).unwrap();
    assert_eq!(cfg.model, Architecture::Llama);
    assert_eq!(
        (
            cfg.n_embd,
            cfg.hidden_dim,
            cfg.n_layer,
            cfg.n_head,
            cfg.kv_heads()
        ),
        (64, 172, 5, 8, 4)
    );
    assert_eq!(
        (cfg.vocab_size, cfg.block_size, cfg.untied_head),
        (512, 512, false)
    );
    let g = Generation {
        max_new_tokens: 200,
        sampling: Sampling::GREEDY,
        stop_token: Some(1),
        seed: 0,
        vocab_limit: None,
    };
    let ids = generate(&model, &[1], &g, |_| {});
    let want: Vec<u32> = GREEDY_200.split(' ').map(|t| t.parse().unwrap()).collect();
    assert_eq!(ids, want);
}

/// Every parameter's values, by name.
fn weights(model: &llm::model::Model) -> Vec<(String, Vec<f32>)> {
    model
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value().contiguous().to_vec::<f32>()))
        .collect()
}

#[test]
fn a_written_file_reads_back_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, cfg) = llama2c::read(&stories260k()).unwrap();
    let path = tmp.path().join("copy.bin");
    llama2c::write(&model, &cfg, &path).unwrap();
    // The same bytes as llama2.c's own file up to the rotary tables at its end (512 positions
    // of 4 cosines and 4 sines, which run.c does not read), and tables within rounding.
    let (ours, theirs) = (
        std::fs::read(&path).unwrap(),
        std::fs::read(stories260k()).unwrap(),
    );
    assert_eq!(ours.len(), theirs.len());
    let tables = ours.len() - 4 * 2 * 512 * 4;
    assert!(
        ours[..tables] == theirs[..tables],
        "the header and weights differ"
    );
    let floats = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    for (a, b) in floats(&ours[tables..])
        .iter()
        .zip(floats(&theirs[tables..]))
    {
        assert!((a - b).abs() < 1e-5, "rotary table {a} vs {b}");
    }
    // An untied head (a negative vocabulary size in the header) survives the trip too.
    let untied = llm::model::config::Config {
        untied_head: true,
        ..cfg.clone()
    };
    let fresh = llm::model::Model::new(&untied, &mut tensor::Rng::new(3), &nn::SharedRng::new(0));
    llama2c::write(&fresh, &untied, &path).unwrap();
    let (back, back_cfg) = llama2c::read(&path).unwrap();
    assert!(back_cfg.untied_head);
    assert_eq!(weights(&back), weights(&fresh));
}

#[test]
fn version_1_files_read_like_version_0() {
    let (model, cfg) = llama2c::read(&stories260k()).unwrap();
    // Version 1's header and order (llama2.c's export.py), written here by hand.
    let mut bytes: Vec<u8> = vec![];
    bytes.extend(0x616b_3432u32.to_le_bytes());
    bytes.extend(1i32.to_le_bytes());
    for v in [64i32, 172, 5, 8, 4, 512, 512] {
        bytes.extend(v.to_le_bytes());
    }
    bytes.push(1);
    bytes.resize(256, 0);
    let w: std::collections::HashMap<String, Vec<f32>> = weights(&model).into_iter().collect();
    let per_layer =
        |name: &str| -> Vec<String> { (0..5).map(|l| format!("blocks.{l}.{name}")).collect() };
    let mut order = per_layer("attn_norm.weight");
    order.extend(per_layer("ffn_norm.weight"));
    order.push("norm.weight".into());
    order.push("tok_embeddings.weight".into());
    for name in [
        "attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn.w1", "ffn.w2", "ffn.w3",
    ] {
        order.extend(per_layer(&format!("{name}.weight")));
    }
    for name in &order {
        bytes.extend(w[name].iter().flat_map(|x| x.to_le_bytes()));
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v1.bin");
    std::fs::write(&path, &bytes).unwrap();
    let (v1, v1_cfg) = llama2c::read(&path).unwrap();
    assert_eq!(v1_cfg, cfg);
    assert_eq!(weights(&v1), weights(&model));
    // One float short is an error naming the file, not a panic.
    std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
    let err = llama2c::read(&path).err().unwrap().to_string();
    assert!(err.contains("v1.bin") && err.contains("bytes"), "{err}");
}

#[test]
fn bad_headers_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.bin");
    let header = |v: [i32; 7]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (fields, want) in [
        ([64, 172, 5, 8, 4, 512, 0], "seq_len is 0"),
        ([64, 172, -5, 8, 4, 512, 512], "n_layers is -5"),
        ([64, 172, 5, 8, 3, 512, 512], "not a Llama shape"),
        ([64, 172, 5, 8, 4, 512, 512], "needs"),
    ] {
        std::fs::write(&path, header(fields)).unwrap();
        let err = llama2c::read(&path).err().unwrap().to_string();
        assert!(err.contains(want), "{fields:?}: {err}");
    }
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    assert!(llama2c::read(&path).is_err());
}
