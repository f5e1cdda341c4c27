//! `llm ppo` with PPO and with GRPO as a user runs them: on a trivial reward (every prompt's right
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
        "ppo",
        "--algo",
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
    let svg = std::fs::read_to_string(run.join("reward.svg")).unwrap();
    assert_eq!(
        svg.matches("<polyline").count(),
        2,
        "the rollouts' and the held-out rewards"
    );
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

/// The prompts of `digit_model` without answers, in `dir/prompts.jsonl`, as a scorer that is a
/// model reads them.
fn bare_prompts(dir: &Path, sevens: &Path) -> PathBuf {
    let text: String = std::fs::read_to_string(sevens)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!("{}\n", serde_json::json!({"prompt": v["prompt"]}))
        })
        .collect();
    let path = dir.join("prompts.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// The mean rewards of the first and of the last `n` steps of a run.
fn first_and_last(run: &Path, n: usize) -> (f64, f64) {
    let rewards: Vec<f64> = log(run)
        .iter()
        .filter_map(|l| l.get("reward")?.as_f64())
        .collect();
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    (mean(&rewards[..n]), mean(&rewards[rewards.len() - n..]))
}

#[test]
fn ppo_raises_a_classifiers_probability_of_a_class() {
    let tmp = tempfile::tempdir().unwrap();
    let (sft, sevens) = digit_model(tmp.path());
    let prompts = bare_prompts(tmp.path(), &sevens);
    // A classifier of whole texts: "seven" when the answer after `=` is 7.
    let mut labelled = String::new();
    for i in 0..300 {
        let digit = i % 10;
        let label = if digit == 7 { "seven" } else { "other" };
        labelled += &format!(
            "{label}\tab{}{}={digit}\n",
            ["cd", "ef", "gh"][i % 3],
            i % 3
        );
    }
    let data = tmp.path().join("sevens.tsv");
    std::fs::write(&data, labelled).unwrap();
    let classifier = tmp.path().join("classifier");
    ok(&llm(&[
        "classify",
        "train",
        "--init-from",
        sft.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--train",
        "all",
        "--no-balance",
        "--epochs",
        "4",
        "--lr",
        "3e-3",
        "--out",
        classifier.to_str().unwrap(),
    ]));
    let run = tmp.path().join("ppo");
    let reward = format!("{}:seven", classifier.display());
    let p = prompts.to_str().unwrap();
    ok(&llm(&[
        "ppo",
        "--init-from",
        sft.to_str().unwrap(),
        "--reward",
        &reward,
        "--prompts",
        p,
        "--val",
        p,
        "--val-n",
        "32",
        "--rollouts",
        "40",
        "--prompts-per-rollout",
        "32",
        "--lr",
        "3e-3",
        "--max-new-tokens",
        "4",
        "--eval-interval",
        "40",
        "--out",
        run.to_str().unwrap(),
    ]));
    let (start, end) = first_and_last(&run, 5);
    assert!(start < 0.4 && end > 0.8, "mean reward {start} -> {end}");
    let val: Vec<f64> = log(&run)
        .iter()
        .filter_map(|l| l.get("val_mean_reward")?.as_f64())
        .collect();
    assert!(val.len() == 2 && val[1] > val[0] + 0.3, "{val:?}");
}

#[test]
fn grpo_raises_a_reward_models_score() {
    let tmp = tempfile::tempdir().unwrap();
    let (sft, sevens) = digit_model(tmp.path());
    let prompts = bare_prompts(tmp.path(), &sevens);
    // Pairs that prefer the answer 7 to any other digit.
    let mut pairs = String::new();
    for (i, line) in std::fs::read_to_string(&prompts)
        .unwrap()
        .lines()
        .enumerate()
    {
        let v: Value = serde_json::from_str(line).unwrap();
        let other = ["1", "2", "3", "4", "5", "6", "8", "9", "0"][i % 9];
        let pair = serde_json::json!({"prompt": v["prompt"], "chosen": "7", "rejected": other});
        pairs += &format!("{pair}\n");
    }
    let data = tmp.path().join("pairs.jsonl");
    std::fs::write(&data, pairs).unwrap();
    let rm = tmp.path().join("rm");
    ok(&llm(&[
        "reward",
        "train",
        "--init-from",
        sft.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "4",
        "--lr",
        "3e-3",
        "--out",
        rm.to_str().unwrap(),
    ]));
    let run = tmp.path().join("grpo");
    ok(&llm(&[
        "ppo",
        "--algo",
        "grpo",
        "--init-from",
        sft.to_str().unwrap(),
        "--reward",
        rm.to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
        "--rollouts",
        "30",
        "--lr",
        "3e-3",
        "--max-new-tokens",
        "4",
        "--out",
        run.to_str().unwrap(),
    ]));
    // The share of sevens among a run's greedy answers.
    let sevens_of = |model: &Path| {
        let out = ok(&llm(&[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--task",
            sevens.to_str().unwrap(),
            "--json",
        ]));
        serde_json::from_str::<Value>(&out).unwrap()["accuracy"]
            .as_f64()
            .unwrap()
    };
    let (start, end) = first_and_last(&run, 6);
    assert!(end > start + 1.0, "mean reward {start} -> {end}");
    assert!(sevens_of(&run) > 0.9, "the policy learnt to answer 7");
    assert!(sevens_of(&sft) < 0.3);
}

#[test]
fn flags_of_one_algorithm_are_refused_by_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.jsonl");
    std::fs::write(&p, "{\"prompt\": \"1=\", \"answer\": \"1\"}\n").unwrap();
    let common = [
        "--init-from",
        "nowhere",
        "--prompts",
        p.to_str().unwrap(),
        "--out",
    ];
    let out = tmp.path().join("o");
    let run = |extra: &[&str]| {
        let mut args = vec!["ppo"];
        args.extend(common);
        args.push(out.to_str().unwrap());
        args.extend(extra);
        String::from_utf8(llm(&args).stderr).unwrap()
    };
    let err = run(&["--algo", "grpo", "--value-lr", "1e-3"]);
    assert!(err.contains("--value-lr is a PPO flag"), "{err}");
    let err = run(&["--no-std-scale"]);
    assert!(err.contains("--no-std-scale is a GRPO flag"), "{err}");
    let err = run(&["--algo", "grpo", "--group", "1"]);
    assert!(err.contains("--group must be at least 2"), "{err}");
    let err = run(&["--reward", "no/such/dir"]);
    assert!(err.contains("is neither a task"), "{err}");
}
