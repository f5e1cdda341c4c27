//! `llm sft` as a user runs it: from scratch on synthetic problems, then scored by
//! `llm eval --task`; and its one-sentence errors.

mod common;
use common::{fails_with, llm, stdout as ok};
use std::path::Path;

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
    let train = data.join("train.jsonl");
    let settings = r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16}"#;
    let err = sft_from_scratch(&train, settings, &run, &["--epochs", "2"]);
    let cfg = run.with_extension("json");
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

/// Runs `llm sft` from scratch on `data` into `run`, the model's settings (JSON) written beside
/// the run as `run.json`, batches of 16, with `extra` flags; returns its standard error once it
/// has succeeded.
fn sft_from_scratch(data: &Path, settings: &str, run: &Path, extra: &[&str]) -> String {
    let cfg = run.with_extension("json");
    std::fs::write(&cfg, settings).unwrap();
    let (data, cfg, out) = (
        data.to_str().unwrap(),
        cfg.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    let mut args = vec![
        "sft",
        "--data",
        data,
        "--config",
        cfg,
        "--batch-size",
        "16",
        "--out",
        out,
    ];
    args.extend(extra);
    let done = llm(&args);
    let err = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "{err}");
    err
}

/// Chats where the assistant reverses the user's word.
fn reversal_chats(path: &Path) {
    let words = [
        "ab", "ba", "abc", "cab", "bca", "cc", "acb", "bb", "ca", "abb",
    ];
    let lines: Vec<String> = (0..60)
        .map(|i| {
            let w = words[i % words.len()];
            let r: String = w.chars().rev().collect();
            format!(
                r#"{{"messages": [{{"role": "user", "content": "{w}"}}, {{"role": "assistant", "content": "{r}"}}]}}"#
            )
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_chat_model_learns_its_end_token_and_talks_through_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("chats.jsonl");
    reversal_chats(&data);
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let settings =
        r#"{"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "learning_rate": 0.01}"#;
    let err = sft_from_scratch(&data, settings, &run, &["--max-iters", "300"]);
    assert!(
        err.contains("added 4 special tokens for the chat template"),
        "{err}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("sft.json")).unwrap()).unwrap();
    assert_eq!(info["template"], "chat");
    assert_eq!(info["split"]["test"].as_array().unwrap().len(), 6);

    // The reply stops at the end token, long before the limit.
    let reply = ok(&llm(&[
        "sample",
        "--model",
        r,
        "--instruct",
        "abc",
        "--temperature",
        "0",
        "--max-new-tokens",
        "20",
    ]));
    assert_eq!(reply, "cba\n");

    // From a pipe: one line out per message, /reset and /quit understood, nothing after.
    let out = chat(r, b"ab\n/reset\ncab\n/quit\nbca\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ba\nbac\n");
    // Without /reset the conversation grows past the 16 tokens left beside a reply's 16 in
    // the context of 32: the oldest exchanges go, and every message is still answered.
    let out = chat(r, b"ab\nbca\ncab\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("oldest exchange"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

/// `llm chat` on the run `model`, greedy, fed `input` on standard input.
fn chat(model: &str, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm"))
        .args([
            "chat",
            "--model",
            model,
            "--temperature",
            "0",
            "--max-new-tokens",
            "20",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
