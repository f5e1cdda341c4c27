//! `llm sft` as a user runs it: from scratch on synthetic problems, then scored by
//! `llm eval --task`; and its one-sentence errors.

mod common;
use common::{fails_with, llm, stdout as ok};

#[test]
fn sft_from_scratch_then_eval_on_the_held_out_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("add");
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    ok(&llm(&[
        "synth",
        "arithmetic",
        "--out",
        d,
        "--n",
        "400",
        "--digits",
        "1",
    ]));
    let cfg = tmp.path().join("tiny.json");
    std::fs::write(
        &cfg,
        r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16}"#,
    )
    .unwrap();
    let train = data.join("train.jsonl");
    let out = llm(&[
        "sft",
        "--data",
        train.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--out",
        r,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("replies alone in the loss") && err.contains("val_loss"),
        "{err}"
    );
    for f in [
        "config.json",
        "tokenizer.json",
        "checkpoint.safetensors",
        "log.jsonl",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let test = data.join("test.jsonl");
    let report: serde_json::Value = serde_json::from_str(&ok(&llm(&[
        "eval",
        "--model",
        r,
        "--task",
        test.to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    let n = std::fs::read_to_string(&test).unwrap().lines().count();
    assert_eq!(report["n"].as_u64(), Some(n as u64));

    // The run directory is not overwritten without --overwrite.
    let again = llm(&["sft", "--data", train.to_str().unwrap(), "--out", r]);
    fails_with(&again, "--overwrite");
    // An example longer than the context is cut there; one left without its answer is
    // dropped, and a file of nothing else trains nothing.
    let long = tmp.path().join("long.jsonl");
    std::fs::write(
        &long,
        "{\"prompt\": \"1+1+1+1+1+1+1+1=\", \"answer\": \"8\"}\n",
    )
    .unwrap();
    fails_with(
        &llm(&[
            "sft",
            "--data",
            long.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            tmp.path().join("x").to_str().unwrap(),
        ]),
        "none of the 1 training examples has a reply token within 16 tokens",
    );
}
