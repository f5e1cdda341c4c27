//! `llm grpo` and `llm ppo` as a user runs them: on a trivial reward (every prompt's right
//! answer is 7), a model that answers digits at random learns to answer 7 within a few dozen
//! rollouts.

mod common;
use common::{llm, stdout as ok};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A model fine-tuned to answer a random digit to each of 200 prompts, in `dir/sft`, and the
/// same prompts with the answer 7, in `dir/sevens.jsonl`.
fn digit_model(dir: &Path) -> (PathBuf, PathBuf) {
    let tmp = dir;
    let words = ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op"];
    let (mut digits, mut sevens) = (String::new(), String::new());
    for i in 0..200 {
        let prompt = format!("{}{}{}=", words[i % 8], words[(i / 8) % 8], i % 3);
        let line =
            |answer: &str| format!("{{\"prompt\": \"{prompt}\", \"answer\": \"{answer}\"}}\n");
        digits += &line(&(i * 7 % 10).to_string());
        sevens += &line("7");
    }
    let (data, target) = (tmp.join("digits.jsonl"), tmp.join("sevens.jsonl"));
    std::fs::write(&data, digits).unwrap();
    std::fs::write(&target, sevens).unwrap();
    let cfg = tmp.join("small.json");
    std::fs::write(
        &cfg,
        r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16, "learning_rate": 0.01}"#,
    )
    .unwrap();
    let sft = tmp.join("sft");
    ok(&llm(&[
        "sft",
        "--data",
        data.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--max-iters",
        "150",
        "--batch-size",
        "16",
        "--out",
        sft.to_str().unwrap(),
    ]));
    (sft, target)
}

#[test]
fn grpo_on_a_trivial_reward_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (sft, target) = digit_model(tmp.path());
    let run = tmp.path().join("grpo");
    let t = target.to_str().unwrap();
    ok(&llm(&[
        "grpo",
        "--init-from",
        sft.to_str().unwrap(),
        "--prompts",
        t,
        "--val",
        t,
        "--val-n",
        "50",
        "--rollouts",
        "30",
        "--lr",
        "3e-3",
        "--max-new-tokens",
        "4",
        "--eval-interval",
        "30",
        "--out",
        run.to_str().unwrap(),
    ]));
    let log = log(&run);
    let rewards: Vec<f64> = log
        .iter()
        .filter_map(|l| l.get("reward")?.as_f64())
        .collect();
    assert_eq!(
        rewards.len(),
        60,
        "2 steps of 32 replies per rollout of 8 x 8"
    );
    assert!(rewards[0] < 0.3, "{rewards:?}");
    assert!(rewards[50..].iter().all(|&r| r > 0.9), "{rewards:?}");
    let accuracy: Vec<f64> = log
        .iter()
        .filter_map(|l| l.get("val_accuracy")?.as_f64())
        .collect();
    assert_eq!((accuracy[0], *accuracy.last().unwrap()), (0.0, 1.0));
    for name in ["clip_fraction", "approx_kl", "reply_tokens"] {
        assert!(log[1][name].is_f64(), "{name} not logged: {}", log[1]);
    }
}

/// The lines of a run's log.
fn log(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ppo_on_a_trivial_reward_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (sft, target) = digit_model(tmp.path());
    let run = tmp.path().join("ppo");
    let t = target.to_str().unwrap();
    ok(&llm(&[
        "ppo",
        "--init-from",
        sft.to_str().unwrap(),
        "--prompts",
        t,
        "--val",
        t,
        "--val-n",
        "50",
        "--rollouts",
        "60",
        "--prompts-per-rollout",
        "32",
        "--lr",
        "3e-3",
        "--max-new-tokens",
        "4",
        "--eval-interval",
        "60",
        "--out",
        run.to_str().unwrap(),
    ]));
    let log = log(&run);
    let steps: Vec<&Value> = log.iter().filter(|l| l.get("reward").is_some()).collect();
    assert_eq!(
        steps.len(),
        60,
        "one step of 32 replies per rollout of 32 x 1"
    );
    let reward = |s: &Value| s["reward"].as_f64().unwrap();
    assert!(reward(steps[0]) < 0.3, "{}", steps[0]);
    assert!(steps[50..].iter().all(|s| reward(s) > 0.9), "{}", steps[59]);
    for name in [
        "kl",
        "kl_coef",
        "value_loss",
        "entropy",
        "clip_fraction",
        "approx_kl",
    ] {
        assert!(steps[1][name].is_f64(), "{name} not logged: {}", steps[1]);
    }
    let accuracy: Vec<f64> = log
        .iter()
        .filter_map(|l| l.get("val_accuracy")?.as_f64())
        .collect();
    assert_eq!((accuracy[0], *accuracy.last().unwrap()), (0.0, 1.0));
}
