//! `llm reward` as a user runs it: a reward model learns which of two replies is preferred,
//! `eval` measures it on a split and `score` rates one reply; and its one-sentence errors.

mod common;
use common::{fails_with, llm, stdout as ok};

#[test]
fn a_reward_model_learns_the_preferred_reply_and_scores_it() {
    let tmp = tempfile::tempdir().unwrap();
    let base = common::tiny_run(tmp.path(), "base", 16);
    let words = [
        "the", "king", "love", "night", "sweet", "lord", "fair", "death",
    ];
    let lines: Vec<String> = (0..80)
        .map(|i| {
            let prompt = format!("{} {}", words[i % 8], words[(i / 8) % 8]);
            format!(r#"{{"prompt": "{prompt}", "chosen": "good", "rejected": "bad"}}"#)
        })
        .collect();
    let pairs = tmp.path().join("pairs.jsonl");
    std::fs::write(&pairs, lines.join("\n") + "\n").unwrap();
    let (b, p) = (base.to_str().unwrap(), pairs.to_str().unwrap());
    let run = tmp.path().join("rm");
    let r = run.to_str().unwrap();
    let done = llm(&[
        "reward",
        "train",
        "--init-from",
        b,
        "--data",
        p,
        "--out",
        r,
        "--epochs",
        "8",
        "--lr",
        "1e-2",
        "--batch-size",
        "8",
    ]);
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        done.status.success() && err.contains("test accuracy 1.0000"),
        "{err}"
    );
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    let step: serde_json::Value = serde_json::from_str(log.lines().nth(1).unwrap()).unwrap();
    assert!(
        step["accuracy"].is_f64() && step["margin"].is_f64(),
        "{step}"
    );

    let report: serde_json::Value = serde_json::from_str(&ok(&llm(&[
        "reward", "eval", "--model", r, "--data", p, "--split", "test", "--json",
    ])))
    .unwrap();
    assert_eq!(report["n"], 8);
    assert_eq!(report["accuracy"], 1.0);
    assert!(report["mean_margin"].as_f64().unwrap() > 1.0, "{report}");
    let score = |reply: &str| -> f64 {
        ok(&llm(&[
            "reward",
            "score",
            "--model",
            r,
            "--prompt",
            "fair night",
            "--response",
            reply,
        ]))
        .trim()
        .parse()
        .unwrap()
    };
    assert!(score("good") > score("bad") + 1.0);

    fails_with(
        &llm(&[
            "reward",
            "score",
            "--model",
            b,
            "--prompt",
            "a",
            "--response",
            "b",
        ]),
        "holds no reward model",
    );
}
