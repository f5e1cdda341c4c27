//! `llm train`, `llm sample` and `llm eval` as a user runs them: files written, what goes to
//! standard output, resuming, Ctrl-C, and one-sentence errors on bad input.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{fails_with, llm, stdout as ok};

fn tiny_config(dir: &Path) -> String {
    let path = dir.join("tiny.json");
    let cfg = r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 8,
                  "eval_interval": 10, "eval_iters": 2, "warmup_iters": 2, "lr_decay_iters": 30}"#;
    std::fs::write(&path, cfg).unwrap();
    path.to_str().unwrap().to_string()
}

fn step_lines(run: &Path) -> usize {
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap_or_default();
    log.lines().filter(|l| l.contains("\"loss\"")).count()
}

#[test]
fn train_then_resume_then_sample_and_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cfg = tiny_config(tmp.path());
    let r = run.to_str().unwrap();
    let out = llm(&[
        "train",
        "--config",
        &cfg,
        "--max-iters",
        "20",
        "--out",
        r,
        "--sample-chars",
        "40",
    ]);
    let sample = ok(&out);
    assert_eq!(
        sample.trim_end_matches('\n').chars().count(),
        40,
        "{sample:?}"
    );
    for f in [
        "config.json",
        "tokenizer.json",
        "checkpoint.safetensors",
        "log.jsonl",
        "loss.svg",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert_eq!(step_lines(&run), 20);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("val_loss") && err.contains("finished at step 20"),
        "{err}"
    );

    // Resuming continues from step 20 to 25.
    ok(&llm(&[
        "train",
        "--out",
        r,
        "--resume",
        "--max-iters",
        "25",
        "--sample-chars",
        "0",
    ]));
    assert_eq!(step_lines(&run), 25);

    // Sampling writes the prompt and its continuation, nothing else.
    let text = ok(&llm(&[
        "sample",
        "--model",
        r,
        "--prompt",
        "ROMEO:",
        "--max-new-tokens",
        "30",
        "--temperature",
        "0",
    ]));
    assert!(text.starts_with("ROMEO:"), "{text:?}");
    assert_eq!(text.chars().count(), "ROMEO:".len() + 30 + 1, "{text:?}");
    let again = ok(&llm(&[
        "sample",
        "--model",
        r,
        "--prompt",
        "ROMEO:",
        "--max-new-tokens",
        "30",
        "--temperature",
        "0",
    ]));
    assert_eq!(text, again, "greedy decoding is deterministic");

    // Evaluation reports loss, perplexity and token count as JSON.
    let text_file = tmp.path().join("eval.txt");
    std::fs::write(&text_file, &llm::TINY_SHAKESPEARE[..5000]).unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&llm(&[
        "eval",
        "--model",
        r,
        "--text",
        text_file.to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    let (loss, ppl) = (
        json["loss"].as_f64().unwrap(),
        json["perplexity"].as_f64().unwrap(),
    );
    assert_eq!(json["tokens"].as_u64(), Some(4999));
    assert!(
        loss > 0.5 && loss < 4.2 && (ppl - loss.exp()).abs() < 1e-9 * ppl,
        "{json}"
    );
}

#[test]
fn sample_and_eval_accept_a_hugging_face_directory() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tiny-gpt2");
    let text = ok(&llm(&[
        "sample",
        "--model",
        dir,
        "--prompt",
        "Hello",
        "--max-new-tokens",
        "5",
        "--temperature",
        "0",
    ]));
    assert!(
        text.starts_with("Hello") && text.len() > "Hello".len(),
        "{text:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("t.txt");
    std::fs::write(&f, "The quick brown fox jumps over the lazy dog.").unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&llm(&[
        "eval",
        "--model",
        dir,
        "--text",
        f.to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    // A random model over 50257 tokens sits near ln(50257) = 10.8.
    assert!(
        (json["loss"].as_f64().unwrap() - 10.8).abs() < 1.0,
        "{json}"
    );
}

#[test]
fn bad_flags_and_files_are_one_sentence_errors() {
    let tmp = tempfile::tempdir().unwrap();
    fails_with(
        &llm(&[
            "train",
            "--preset",
            "huge",
            "--out",
            tmp.path().to_str().unwrap(),
        ]),
        "unknown preset `huge`",
    );
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"n_layerz": 3}"#).unwrap();
    let out = tmp.path().join("run");
    fails_with(
        &llm(&[
            "train",
            "--config",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        "n_layerz",
    );
    fails_with(
        &llm(&["sample", "--model", tmp.path().to_str().unwrap()]),
        "neither a run directory",
    );
    fails_with(&llm(&["train", "--device", "tpu"]), "unknown device `tpu`");
    fails_with(
        &llm(&[
            "train",
            "--out",
            tmp.path().join("none").to_str().unwrap(),
            "--resume",
        ]),
        "holds no checkpoint to resume from",
    );
}

#[test]
fn ctrl_c_finishes_the_step_and_writes_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cfg = tiny_config(tmp.path());
    let child = Command::new(env!("CARGO_BIN_EXE_llm"))
        .args([
            "train",
            "--config",
            &cfg,
            "--max-iters",
            "100000",
            "--out",
            run.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while step_lines(&run) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "training did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("interrupted at step") && err.contains("--resume"),
        "{err}"
    );
    let steps = step_lines(&run);
    assert!((3..100000).contains(&steps));
    // The checkpoint holds exactly the steps in the log.
    let dict = nn::state_dict::load(run.join("checkpoint.safetensors")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&dict.metadata()["train_state"]).unwrap();
    assert_eq!(state["step"].as_u64(), Some(steps as u64));
}
