//! Helpers shared by the tests that run the `llm` binary.

#![allow(dead_code)] // each test file uses its own subset

pub mod llama2c;

use std::process::{Command, Output};

/// Runs `llm` with `args` and collects its output.
pub fn llm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm"))
        .args(args)
        .output()
        .unwrap()
}

/// The standard output of a run that must have succeeded (its standard error otherwise).
pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts a clean failure: exit code 1 and a one-line `error: ...` message containing `want`,
/// never a panic.
pub fn fails_with(out: &Output, want: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: ") && err.ends_with('\n'), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(want), "{err:?} lacks {want:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A tiny GPT (2 layers, width 16, context `block_size`) trained for two steps on the built-in
/// text into `dir/name`; returns the run directory.
pub fn tiny_run(dir: &std::path::Path, name: &str, block_size: usize) -> std::path::PathBuf {
    let cfg = dir.join(format!("{name}.json"));
    let settings = format!(
        r#"{{"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": {block_size}, "batch_size": 4,
            "eval_interval": 0, "warmup_iters": 1, "lr_decay_iters": 10}}"#
    );
    std::fs::write(&cfg, settings).unwrap();
    let run = dir.join(name);
    stdout(&llm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--max-iters",
        "2",
        "--sample-chars",
        "0",
        "--out",
        run.to_str().unwrap(),
    ]));
    run
}
