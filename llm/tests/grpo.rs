//! `llm grpo` as a user runs it: on a trivial reward (every prompt's right answer is 7), a
//! model that answers digits at random learns to answer 7 within a few dozen rollouts.

mod common;
use common::{llm, stdout as ok};

#[test]
fn grpo_on_a_trivial_reward_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let words = ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op"];
    let (mut digits, mut sevens) = (String::new(), String::new());
    for i in 0..200 {
        let prompt = format!("{}{}{}=", words[i % 8], words[(i / 8) % 8], i % 3);
        let line =
            |answer: &str| format!("{{\"prompt\": \"{prompt}\", \"answer\": \"{answer}\"}}\n");
        digits += &line(&(i * 7 % 10).to_string());
        sevens += &line("7");
    }
    let (data, target) = (
        tmp.path().join("digits.jsonl"),
        tmp.path().join("sevens.jsonl"),
    );
    std::fs::write(&data, digits).unwrap();
    std::fs::write(&target, sevens).unwrap();
    let cfg = tmp.path().join("small.json");
    std::fs::write(
        &cfg,
        r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16, "learning_rate": 0.01}"#,
    )
    .unwrap();
    let sft = tmp.path().join("sft");
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
    let log: Vec<serde_json::Value> = std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
