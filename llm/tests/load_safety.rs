//! `llm sample`, `llm eval` and `llm train --config` on configurations that lie: every key is
//! validated, and a stored model's configuration is checked against its weights before the
//! model is built, so a bad file is one clear sentence, never a panic or a huge allocation.

use std::path::Path;

mod common;
use common::{fails_with, llm, stdout as ok};

/// A tiny run trained for two steps in `dir/run`.
fn tiny_run(dir: &Path) -> std::path::PathBuf {
    common::tiny_run(dir, "run", 16)
}

/// The run's `config.json` with `key` set to the JSON `value`.
fn set_key(run: &Path, key: &str, value: &str) {
    let path = run.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg[key] = serde_json::from_str(value).unwrap();
    std::fs::write(&path, cfg.to_string()).unwrap();
}

fn sample(run: &Path) -> std::process::Output {
    llm(&[
        "sample",
        "--model",
        run.to_str().unwrap(),
        "--max-new-tokens",
        "5",
    ])
}

#[test]
fn a_run_config_that_does_not_match_its_checkpoint_is_refused_before_building_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path());
    let original = std::fs::read(run.join("config.json")).unwrap();
    let cases = [
        (
            "n_head",
            "3",
            "n_embd (16) must be a multiple of n_head (3)",
        ),
        ("vocab_size", "0", "vocab_size must be at least 1"),
        ("n_layer", "0", "n_layer must be at least 1"),
        (
            "n_layer",
            "3",
            "holds 2 blocks, but the configuration gives n_layer 3",
        ),
        (
            "n_layer",
            "1",
            "holds 2 blocks, but the configuration gives n_layer 1",
        ),
        // 40000 x 60000 floats would be 9.6 GB: refused from the checkpoint's header.
        ("vocab_size", "40000", "`model.wte.weight` has shape"),
        (
            "n_embd",
            "60000",
            "has shape [65, 16], but the configuration gives [65, 60000]",
        ),
        (
            "block_size",
            "1048577",
            "block_size 1048577 is larger than the limit",
        ),
    ];
    for (key, value, want) in cases {
        std::fs::write(run.join("config.json"), &original).unwrap();
        set_key(&run, key, value);
        fails_with(&sample(&run), want);
        let text = tmp.path().join("t.txt");
        std::fs::write(&text, "some text to evaluate on\n").unwrap();
        fails_with(
            &llm(&[
                "eval",
                "--model",
                run.to_str().unwrap(),
                "--text",
                text.to_str().unwrap(),
            ]),
            want,
        );
    }
    std::fs::write(run.join("config.json"), &original).unwrap();
    ok(&sample(&run));
}

#[test]
fn keys_given_twice_and_other_model_families_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let twice = tmp.path().join("twice.json");
    std::fs::write(&twice, r#"{"n_layer": 2, "n_layer": 3}"#).unwrap();
    fails_with(
        &llm(&["train", "--config", twice.to_str().unwrap()]),
        "\"n_layer\" appears twice",
    );
    let llama = tmp.path().join("llama.json");
    std::fs::write(
        &llama,
        r#"{"dim": 288, "n_layers": 6, "n_heads": 6, "vocab_size": 32000}"#,
    )
    .unwrap();
    let out = tmp.path().join("run");
    fails_with(
        &llm(&[
            "train",
            "--config",
            llama.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        "add \"model\": \"llama\"",
    );
    // A Hugging Face directory of another family.
    let hf = tmp.path().join("hf");
    std::fs::create_dir(&hf).unwrap();
    std::fs::write(
        hf.join("config.json"),
        r#"{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2}"#,
    )
    .unwrap();
    std::fs::write(hf.join("model.safetensors"), b"").unwrap();
    fails_with(&sample(&hf), "this is a llama configuration");
}

#[test]
fn a_hugging_face_config_is_checked_against_its_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gpt2");
    let hf = tmp.path().join("hf");
    std::fs::create_dir(&hf).unwrap();
    std::fs::copy(
        fixture.join("model.safetensors"),
        hf.join("model.safetensors"),
    )
    .unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("config.json")).unwrap())
            .unwrap();
    for (key, value, want) in [
        (
            "n_embd",
            1 << 15,
            "has shape [50257, 64], but the configuration gives [50257, 32768]",
        ),
        ("n_positions", 1 << 19, "wpe.weight` has shape [64, 64]"),
        ("n_layer", 5, "holds 2 blocks"),
        ("n_head", 5, "multiple of n_head"),
    ] {
        let mut c = config.clone();
        c[key] = value.into();
        std::fs::write(hf.join("config.json"), c.to_string()).unwrap();
        fails_with(&sample(&hf), want);
    }
}

#[test]
fn a_damaged_or_nan_checkpoint_is_refused_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path());
    let ckpt = run.join("checkpoint.safetensors");
    let original = std::fs::read(&ckpt).unwrap();
    // One flipped bit in the data: the checksum saved with the tensor no longer matches.
    let mut damaged = original.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x10;
    std::fs::write(&ckpt, &damaged).unwrap();
    fails_with(
        &sample(&run),
        "does not match its checksum (the file is damaged)",
    );
    // NaN weights saved as such (valid checksums): refused by name, not sampled.
    std::fs::write(&ckpt, &original).unwrap();
    let dict = nn::state_dict::load(&ckpt).unwrap();
    let tensors: Vec<(String, tensor::Tensor)> = dict
        .names()
        .into_iter()
        .map(|name| {
            let t = dict.tensor(&name).unwrap();
            let t = match name.as_str() {
                "model.ln_f.weight" => t.mul_scalar(f64::NAN),
                _ => t,
            };
            (name, t)
        })
        .collect();
    let metadata = dict.metadata();
    drop(dict);
    nn::state_dict::save_with_metadata(&ckpt, &tensors, tensor::DType::F32, &metadata).unwrap();
    fails_with(&sample(&run), "`model.ln_f.weight` holds NaN at element 0");
}

#[test]
fn a_padded_vocabulary_never_samples_an_undecodable_id_and_a_larger_tokenizer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("padded.json");
    // The built-in text has 65 characters; 35 more outputs that no character decodes to.
    std::fs::write(
        &cfg,
        r#"{"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, "batch_size": 4,
            "eval_interval": 0, "warmup_iters": 1, "lr_decay_iters": 10, "vocab_size": 100}"#,
    )
    .unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    ok(&llm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--max-iters",
        "1",
        "--out",
        r,
    ]));
    let text = ok(&llm(&[
        "sample",
        "--model",
        r,
        "--max-new-tokens",
        "300",
        "--temperature",
        "3",
    ]));
    assert!(text.chars().count() > 300, "{text:?}");
    // A tokenizer of 66 characters for a model of 100 outputs still fits; one of 150 does not.
    let wide: String = (0..150u32)
        .filter_map(|c| char::from_u32(0x100 + c))
        .collect();
    let tok = llm::tokenizer::resolve("char", || Ok(wide)).unwrap();
    tok.save(&run.join("tokenizer.json")).unwrap();
    fails_with(
        &sample(&run),
        "has 150 ids, more than the model's vocabulary of 100",
    );
}
