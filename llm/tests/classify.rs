//! Fine-tuning a classifier: `--init-from` starts from the base model's exact weights, LoRA
//! merged into the weights gives the adapted model's logits, and `llm classify` trains, scores
//! and predicts, with one-sentence errors on bad label files.

use llm::model::config::Config;
use llm::run::load;
use nn::Module;
use std::path::{Path, PathBuf};
use tensor::{DType, Rng, Tensor};

mod common;
use common::{fails_with, llm, stdout as ok};

/// A base model trained for two steps in `dir/base`.
fn base(dir: &Path) -> PathBuf {
    common::tiny_run(dir, "base", 32)
}

#[test]
fn init_from_copies_the_base_weights_exactly_and_adds_a_fresh_head() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = base(tmp.path());
    let (base_model, base_cfg, _) = load::load_model(&dir).unwrap();
    let cfg = Config {
        n_classes: 3,
        lora_rank: 4,
        lora_alpha: 8.0,
        ..base_cfg
    };
    let model = load::init_from(&dir, &cfg).unwrap();
    let tuned: std::collections::HashMap<String, Vec<f32>> = model
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value().to_vec::<f32>()))
        .collect();
    for (name, p) in base_model.named_params() {
        assert_eq!(tuned[&name], p.value().to_vec::<f32>(), "{name}");
    }
    assert_eq!(tuned["classifier.weight"].len(), 3 * 16);
    assert!(tuned.keys().any(|n| n.ends_with(".lora_a")));
    assert_eq!(model.classifier.as_ref().unwrap().0.n_classes(), 3);
}

#[test]
fn lora_merged_into_the_weights_gives_the_adapted_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = base(tmp.path());
    let (_, base_cfg, _) = load::load_model(&dir).unwrap();
    let cfg = Config {
        n_classes: 2,
        lora_rank: 4,
        lora_alpha: 8.0,
        ..base_cfg
    };
    let mut model = load::init_from(&dir, &cfg).unwrap();
    // Trained-looking adapters: B is zero at the start, which would make the test vacuous.
    let mut rng = Rng::new(5);
    for (name, p) in model.named_params() {
        if name.ends_with(".lora_b") {
            p.set_value(Tensor::randn(&p.shape(), 0.0, 0.3, DType::F32, &mut rng));
        }
    }
    let ids = Tensor::from_vec(vec![1u32, 5, 9, 2, 7, 3, 3, 0], &[2, 4]);
    let lengths = [4, 2];
    let adapted = model
        .classify(&ids, &lengths)
        .unwrap()
        .value()
        .to_vec::<f32>();
    nn::lora::merge(&mut model);
    let merged = model
        .classify(&ids, &lengths)
        .unwrap()
        .value()
        .to_vec::<f32>();
    for (a, m) in adapted.iter().zip(&merged) {
        assert!((a - m).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {m}");
    }
}

/// A labelled file of `n` short texts whose label follows from a word in them.
fn labelled(dir: &Path, name: &str, n: usize) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::new();
    for i in 0..n {
        let (label, word) = if i % 2 == 0 {
            ("good", "sunny")
        } else {
            ("bad", "rainy")
        };
        // Letters only: the base model's characters are Tiny Shakespeare's, without digits.
        let tag: String = (0..3)
            .map(|k| char::from(b'a' + ((i / 5usize.pow(k)) % 5) as u8))
            .collect();
        text += &format!("{label}\tthe day was {word} and long {tag}\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn classify_trains_scores_and_predicts_and_names_bad_label_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = base(tmp.path());
    let data = labelled(tmp.path(), "days.tsv", 60);
    let run = tmp.path().join("clf");
    let r = run.to_str().unwrap();
    let trained = llm(&[
        "classify",
        "train",
        "--init-from",
        dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        r,
        "--epochs",
        "2",
        "--train",
        "all",
        "--lr",
        "1e-3",
    ]);
    let err = String::from_utf8_lossy(&trained.stderr);
    assert!(trained.status.success(), "{err}");
    assert!(
        err.contains("test accuracy") && err.contains("val_accuracy"),
        "{err}"
    );
    for f in [
        "labels.json",
        "train.tsv",
        "val.tsv",
        "test.tsv",
        "checkpoint.safetensors",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // 60 examples, balanced 30/30: 42 / 6 / 12.
    let json = ok(&llm(&[
        "classify", "eval", "--model", r, "--split", "test", "--json",
    ]));
    let scores: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(scores["n"], 12);
    // `llm eval --labelled` scores a classifier the same way.
    let test_split = run.join("test.tsv");
    let labelled = ok(&llm(&[
        "eval",
        "--model",
        r,
        "--labelled",
        test_split.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(labelled, json);
    let confusion = scores["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 12);
    let acc = scores["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    let predicted = ok(&llm(&[
        "classify",
        "predict",
        "--model",
        r,
        "--text",
        "the day was sunny",
    ]));
    let (label, p) = predicted.trim_end().split_once('\t').unwrap();
    assert!(["bad", "good"].contains(&label), "{predicted}");
    assert!(
        (0.5..=1.0).contains(&p.parse::<f64>().unwrap()),
        "{predicted}"
    );

    // Bad label files.
    let one = tmp.path().join("one.tsv");
    std::fs::write(&one, "good\ta\ngood\tb\n").unwrap();
    let train_on = |file: &Path| {
        llm(&[
            "classify",
            "train",
            "--init-from",
            dir.to_str().unwrap(),
            "--data",
            file.to_str().unwrap(),
            "--out",
            tmp.path().join("x").to_str().unwrap(),
        ])
    };
    fails_with(
        &train_on(&one),
        "has 1 class (good); a classifier needs at least two",
    );
    let empty = tmp.path().join("empty.tsv");
    std::fs::write(&empty, "").unwrap();
    fails_with(&train_on(&empty), "holds no records");
    let unknown = tmp.path().join("unknown.tsv");
    std::fs::write(&unknown, "good\tsunny\nugly\tfoggy\n").unwrap();
    fails_with(
        &llm(&[
            "classify",
            "eval",
            "--model",
            r,
            "--data",
            unknown.to_str().unwrap(),
        ]),
        "has the label \"ugly\", which is not one of the model's (bad, good)",
    );
}
