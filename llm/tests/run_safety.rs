//! What `llm train` guarantees about a run directory: a new run never overwrites an old one
//! unless told, a resumed run trains on the data it started with, one process at a time uses
//! a directory, and the trained steps are saved before anything that could fail after them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{fails_with, llm, stdout as ok};

/// A tiny model's configuration file in `dir`, with `extra` JSON keys.
fn config(dir: &Path, extra: &str) -> String {
    let path = dir.join("tiny.json");
    let cfg = format!(
        r#"{{"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, "batch_size": 4,
            "eval_interval": 0, "eval_iters": 1, "warmup_iters": 1, "lr_decay_iters": 50{extra}}}"#
    );
    std::fs::write(&path, cfg).unwrap();
    path.to_str().unwrap().to_string()
}

/// A text file of `n` characters of verse in `dir`.
fn text(dir: &Path, name: &str, n: usize) -> PathBuf {
    let path = dir.join(name);
    let verse = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. ";
    std::fs::write(&path, &verse.repeat(n / verse.len() + 1).as_bytes()[..n]).unwrap();
    path
}

fn train(args: &[&str]) -> std::process::Output {
    let mut all = vec!["train", "--sample-chars", "0"];
    all.extend_from_slice(args);
    llm(&all)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The bytes of each file of a run, to check that they did not change.
fn snapshot(run: &Path) -> Vec<(String, Vec<u8>)> {
    [
        "config.json",
        "tokenizer.json",
        "checkpoint.safetensors",
        "log.jsonl",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(run.join(f)).unwrap()))
    .collect()
}

#[test]
fn a_new_run_refuses_a_directory_that_holds_one_unless_told_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cfg) = (tmp.path().join("run"), config(tmp.path(), ""));
    let r = run.to_str().unwrap();
    ok(&train(&["--config", &cfg, "--max-iters", "2", "--out", r]));
    let before = snapshot(&run);
    let again = train(&["--config", &cfg, "--max-iters", "3", "--out", r]);
    fails_with(&again, "already holds a run");
    assert!(stderr(&again).contains("--resume") && stderr(&again).contains("--overwrite"));
    assert_eq!(snapshot(&run), before, "a refused run changed the old one");
    let over = train(&[
        "--config",
        &cfg,
        "--max-iters",
        "3",
        "--out",
        r,
        "--overwrite",
    ]);
    ok(&over);
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"loss\"")).count(), 3);
}

#[test]
fn a_resumed_run_trains_on_the_data_it_started_with_and_refuses_other_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cfg) = (tmp.path().join("run"), config(tmp.path(), ""));
    let r = run.to_str().unwrap();
    let poem = text(tmp.path(), "poem.txt", 3000);
    let p = poem.to_str().unwrap();
    ok(&train(&[
        "--config",
        &cfg,
        "--max-iters",
        "2",
        "--out",
        r,
        "--data",
        p,
    ]));
    // Without --data, the resumed run reads the run's record, not the built-in text.
    let resumed = train(&["--out", r, "--resume", "--max-iters", "3"]);
    ok(&resumed);
    assert!(
        stderr(&resumed).contains("poem.txt"),
        "{}",
        stderr(&resumed)
    );
    // Other data, another tokenizer, changed data, and flags a resumed run cannot honour.
    let other = text(tmp.path(), "other.txt", 3000);
    let refused = [
        (
            vec!["--data", other.to_str().unwrap()],
            "not the data of the run",
        ),
        (vec!["--tokenizer", "gpt2"], "not the tokenizer of the run"),
        (vec!["--seed", "3"], "--seed cannot be used with --resume"),
        (
            vec!["--config", cfg.as_str()],
            "--config cannot be used with --resume",
        ),
        (
            vec!["--preset", "gpt2"],
            "--preset cannot be used with --resume",
        ),
    ];
    for (extra, want) in refused {
        let mut args = vec!["--out", r, "--resume", "--max-iters", "4"];
        args.extend(extra);
        fails_with(&train(&args), want);
    }
    std::fs::write(
        &poem,
        "A different poem altogether, of the same length or not.",
    )
    .unwrap();
    fails_with(
        &train(&["--out", r, "--resume", "--max-iters", "4"]),
        "has changed since",
    );
}

#[test]
fn the_hint_after_ctrl_c_is_a_command_that_resumes_on_the_same_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cfg) = (tmp.path().join("run"), config(tmp.path(), ""));
    let poem = text(tmp.path(), "poem.txt", 3000);
    let child = Command::new(env!("CARGO_BIN_EXE_llm"))
        .args([
            "train",
            "--config",
            &cfg,
            "--max-iters",
            "100000",
            "--sample-chars",
            "0",
        ])
        .args([
            "--out",
            run.to_str().unwrap(),
            "--data",
            poem.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_steps(&run, 2);
    interrupt(child.id());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    let hint = err
        .lines()
        .find_map(|l| l.strip_prefix("continue with: llm "))
        .unwrap_or_else(|| panic!("no hint in {err}"));
    let mut args: Vec<&str> = hint.split(' ').collect();
    args.extend(["--max-iters", "100001", "--sample-chars", "0"]);
    let resumed = Command::new(env!("CARGO_BIN_EXE_llm"))
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stepped = std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .count();
    wait_for_steps(&run, stepped + 1);
    interrupt(resumed.id());
    let err = stderr(&resumed.wait_with_output().unwrap());
    assert!(
        err.contains("resuming") && err.contains("poem.txt"),
        "{err}"
    );
}

fn wait_for_steps(run: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(run.join("log.jsonl")).map_or(0, |l| l.lines().count()) < n {
        assert!(
            Instant::now() < deadline,
            "training did not reach {n} steps"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interrupt(pid: u32) {
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
}

#[test]
fn a_second_process_on_one_directory_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cfg) = (tmp.path().join("run"), config(tmp.path(), ""));
    let child = Command::new(env!("CARGO_BIN_EXE_llm"))
        .args([
            "train",
            "--config",
            &cfg,
            "--max-iters",
            "100000",
            "--sample-chars",
            "0",
        ])
        .args(["--out", run.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_steps(&run, 1);
    let log_before = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    let second = train(&[
        "--config",
        &cfg,
        "--out",
        run.to_str().unwrap(),
        "--overwrite",
    ]);
    interrupt(child.id());
    let first = child.wait_with_output().unwrap();
    fails_with(
        &second,
        &format!(
            "in use by another `llm train` (pid {})",
            first_pid(&first, &run)
        ),
    );
    let log_after = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    assert!(
        log_after.starts_with(&log_before),
        "the refused run touched the log"
    );
}

/// The pid the first run wrote into the lock file (it is still there after the run).
fn first_pid(out: &std::process::Output, run: &Path) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    std::fs::read_to_string(run.join("lock")).unwrap()
}

#[test]
fn a_validation_split_too_short_for_a_window_is_skipped_and_the_steps_are_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cfg) = (tmp.path().join("run"), config(tmp.path(), ""));
    // 10% of 150 characters is 15, fewer than block_size + 1 = 17.
    let short = text(tmp.path(), "short.txt", 150);
    let out = train(
        &[
            "--config",
            &cfg,
            "--max-iters",
            "3",
            "--out",
            run.to_str().unwrap(),
        ]
        .iter()
        .copied()
        .chain(["--data", short.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("warning: the validation split") && err.contains("short.txt"),
        "{err}"
    );
    assert!(run.join("checkpoint.safetensors").is_file());
}

#[test]
fn a_loss_that_blows_up_says_what_is_left_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, cfg) = (
        tmp.path().join("run"),
        config(tmp.path(), r#", "learning_rate": 1e30, "grad_clip": 0"#),
    );
    let out = train(&[
        "--config",
        &cfg,
        "--max-iters",
        "50",
        "--out",
        run.to_str().unwrap(),
    ]);
    // Training had started, so the error follows the progress lines.
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        last.starts_with("error: the training loss became")
            && last.contains("no checkpoint was written to"),
        "{err}"
    );
    assert!(
        !err.contains("untouched") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn a_file_in_place_of_the_run_directory_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    fails_with(
        &train(&["--max-iters", "1", "--out", file.to_str().unwrap()]),
        "is a file, not a directory",
    );
}
