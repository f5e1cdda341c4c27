//! `kill -9` at any moment leaves a run that samples and resumes: the training process is
//! killed 20 times at random points while it checkpoints every step, and after each kill the
//! run directory must give a sample and continue training from its checkpoint.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{llm, stdout as ok};

const KILLS: u64 = 20;

/// A model large enough that writing its checkpoint (weights and AdamW moments, flushed to
/// disk) takes a good part of each step, so that kills often land inside a checkpoint.
fn config(dir: &Path) -> String {
    let path = dir.join("kill.json");
    std::fs::write(
        &path,
        r#"{"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 32, "batch_size": 2,
            "eval_interval": 0, "warmup_iters": 1, "lr_decay_iters": 1000,
            "checkpoint_interval": 1}"#,
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// Lines in the run's log (each a step).
fn logged(run: &Path) -> usize {
    std::fs::read_to_string(run.join("log.jsonl")).map_or(0, |l| l.lines().count())
}

#[test]
fn a_run_killed_at_random_points_always_samples_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let cfg = config(tmp.path());
    let mut rng = tensor::Rng::new(2024);
    let mut inside = 0;
    for kill in 0..KILLS {
        let mut args = vec![
            "train",
            "--out",
            r,
            "--max-iters",
            "1000000",
            "--sample-chars",
            "0",
        ];
        match kill {
            0 => args.extend(["--config", cfg.as_str()]),
            _ => args.push("--resume"),
        }
        let spawned = std::time::SystemTime::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_llm"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Past the first checkpoint of this process, then a random moment within a few steps.
        let start = logged(&run);
        let deadline = Instant::now() + Duration::from_secs(120);
        while logged(&run) < start + 1 {
            assert!(
                child.try_wait().unwrap().is_none(),
                "training stopped early"
            );
            assert!(Instant::now() < deadline, "training made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_micros(rng.below(40_000) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        // A temporary checkpoint written by this process and left behind (a finished one is
        // renamed away): this kill landed while a checkpoint was being written. The file stays,
        // as it would after a real crash, for the next run to write over.
        let tmp_file = run.join("checkpoint.safetensors.tmp");
        let modified = std::fs::metadata(&tmp_file).and_then(|m| m.modified());
        if modified.is_ok_and(|t| t >= spawned) {
            inside += 1;
        }
        ok(&llm(&["sample", "--model", r, "--max-new-tokens", "20"]));
    }
    eprintln!("{inside} of {KILLS} kills landed while a checkpoint was being written");
    // The run goes on from its last checkpoint after the last kill, and finishes cleanly.
    let until = (logged(&run) + 2).to_string();
    let resumed = llm(&[
        "train",
        "--out",
        r,
        "--resume",
        "--max-iters",
        &until,
        "--sample-chars",
        "0",
    ]);
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("resuming"), "{err}");
}
