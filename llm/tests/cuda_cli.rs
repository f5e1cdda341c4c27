//! `llm train --device cuda` as a user runs it. Where a GPU is usable (a build with
//! `--features cuda` on a machine with a driver and a device), a tiny GPT trains for two steps
//! on it, evaluates, writes its checkpoint and prints a sample. Everywhere else the command
//! fails with one sentence that names CUDA, exit code 1, no panic, and writes nothing.
//!
//! The binary is the `llm` cargo built beside this test, or `$LLM_BIN` when set (the GPU
//! bundle of `scripts/gpu-tests.sh` runs the tests away from the build tree).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn llm(args: &[&str]) -> Output {
    let bin =
        std::env::var_os("LLM_BIN").map_or_else(|| env!("CARGO_BIN_EXE_llm").into(), PathBuf::from);
    Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

/// The name of the GPU this build can use here, or why there is none.
#[cfg(feature = "cuda")]
fn gpu_name() -> Result<String, String> {
    tensor::cuda::probe().map(|info| info.name)
}

/// Why CUDA cannot be used by this build here: it has no CUDA backend.
#[cfg(not(feature = "cuda"))]
fn gpu_name() -> Result<String, String> {
    Err("this build has no CUDA support".into())
}

/// Two steps of a tiny GPT on the built-in Tiny Shakespeare, evaluated at the start and the end.
fn train_on_cuda(out: &Path) -> Output {
    let cfg = out.with_extension("json");
    let settings = r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 8,
                       "eval_interval": 10, "eval_iters": 2, "warmup_iters": 1, "lr_decay_iters": 10}"#;
    std::fs::write(&cfg, settings).unwrap();
    llm(&[
        "train",
        "--device",
        "cuda",
        "--config",
        cfg.to_str().unwrap(),
        "--max-iters",
        "2",
        "--sample-chars",
        "40",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn train_on_cuda_runs_where_a_gpu_is_and_says_why_not_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = train_on_cuda(&run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match gpu_name() {
        Ok(name) => {
            assert!(out.status.success(), "stderr: {stderr}");
            let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
            let steps = log.lines().filter(|l| l.contains("\"loss\"")).count();
            assert_eq!(steps, 2, "log: {log}");
            assert!(run.join("checkpoint.safetensors").is_file());
            assert!(!out.stdout.is_empty(), "no sample printed");
            assert!(
                stderr.contains(&format!("on cuda:0 {name} (")),
                "the log names the GPU; stderr: {stderr}"
            );
        }
        Err(reason) => {
            eprintln!("no GPU here ({reason}); checking the error");
            let message = stderr.trim_end();
            assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
            assert!(
                !message.contains('\n') && !message.contains("panicked"),
                "not one line: {stderr}"
            );
            assert!(
                message.starts_with("error: ") && message.contains("CUDA"),
                "{message}"
            );
            assert_eq!(
                message.matches(". ").count(),
                0,
                "not one sentence: {message}"
            );
            assert!(!run.exists(), "a run directory was written");
        }
    }
}
