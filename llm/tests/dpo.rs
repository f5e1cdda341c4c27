//! `llm dpo-pairs` and `llm dpo` as a user runs them: a model fine-tuned briefly on sums
//! builds pairs from its own right and wrong answers, and DPO on them separates the held-out
//! pairs, with a live reference and with a precomputed one; and their one-sentence errors.

mod common;
use common::{fails_with, llm, stdout as ok};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `llm dpo` on `pairs` from `sft` into `out` with `extra` flags; returns the log's lines.
fn dpo(sft: &Path, pairs: &Path, out: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "dpo",
        "--init-from",
        sft.to_str().unwrap(),
        "--data",
        pairs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max-iters",
        "60",
        "--eval-interval",
        "30",
        "--lr",
        "3e-3",
        "--batch-size",
        "8",
    ];
    args.extend(extra);
    let done = llm(&args);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    lines(&out.join("log.jsonl"))
}

#[test]
fn pairs_from_a_models_own_answers_then_dpo_separates_the_held_out_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("add");
    ok(&llm(&[
        "synth",
        "arithmetic",
        "--out",
        data.to_str().unwrap(),
        "--n",
        "1000",
        "--digits",
        "1",
        "--ops",
        "+,-,*",
    ]));
    let cfg = tmp.path().join("small.json");
    std::fs::write(
        &cfg,
        r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16, "learning_rate": 0.01}"#,
    )
    .unwrap();
    let sft = tmp.path().join("sft");
    let train = data.join("train.jsonl");
    ok(&llm(&[
        "sft",
        "--data",
        train.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--max-iters",
        "500",
        "--batch-size",
        "16",
        "--out",
        sft.to_str().unwrap(),
    ]));

    let pairs = tmp.path().join("pairs.jsonl");
    let made = llm(&[
        "dpo-pairs",
        "--model",
        sft.to_str().unwrap(),
        "--task",
        train.to_str().unwrap(),
        "--out",
        pairs.to_str().unwrap(),
        "--samples",
        "6",
    ]);
    let err = String::from_utf8_lossy(&made.stderr);
    assert!(
        made.status.success() && err.contains("never right) written to"),
        "{err}"
    );
    let answers: HashMap<String, String> = lines(&train)
        .iter()
        .map(|p| {
            (
                p["prompt"].as_str().unwrap().into(),
                p["answer"].as_str().unwrap().into(),
            )
        })
        .collect();
    let made = lines(&pairs);
    assert!(made.len() >= 60, "only {} pairs", made.len());
    for p in &made {
        let right = &answers[p["prompt"].as_str().unwrap()];
        assert_eq!(p["chosen"].as_str().unwrap(), right);
        assert_ne!(p["rejected"].as_str().unwrap(), right);
    }

    let live = dpo(&sft, &pairs, &tmp.path().join("live"), &[]);
    let steps: Vec<&Value> = live.iter().filter(|l| l.get("loss").is_some()).collect();
    assert_eq!(steps.len(), 60);
    assert!(steps
        .iter()
        .all(|s| s["rewards_margin"].is_f64() && s["rewards_accuracy"].is_f64()));
    let evals: Vec<&Value> = live
        .iter()
        .filter(|l| l.get("val_loss").is_some())
        .collect();
    let (first, last) = (evals[0], evals[evals.len() - 1]);
    assert!((first["val_loss"].as_f64().unwrap() - std::f64::consts::LN_2).abs() < 1e-5);
    assert_eq!(first["val_rewards_margin"].as_f64(), Some(0.0));
    // The training pairs separate (the held-out ones are too few to test on).
    assert!(last["train_loss"].as_f64().unwrap() < 0.64, "{last}");
    assert!(last["val_rewards_margin"].is_f64() && last["val_chosen_logratio"].is_f64());

    // The same run with the reference's log-probabilities computed once gives the same curve.
    let stored_dir = tmp.path().join("stored");
    let stored = dpo(&sft, &pairs, &stored_dir, &["--precompute-reference"]);
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(stored_dir.join("reference_logps.json")).unwrap(),
    )
    .unwrap();
    assert!(saved["train"].as_array().unwrap().len() > saved["val"].as_array().unwrap().len());
    let evals_of = |log: &[Value]| -> Vec<f64> {
        log.iter()
            .filter_map(|l| l.get("val_loss")?.as_f64())
            .collect()
    };
    for (a, b) in evals_of(&live).iter().zip(evals_of(&stored)) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // The held-out test records, for `llm eval --task`, answered with the chosen replies.
    let report: Value = serde_json::from_str(&ok(&llm(&[
        "eval",
        "--model",
        stored_dir.to_str().unwrap(),
        "--task",
        stored_dir.join("test.jsonl").to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    assert!(report["n"].as_u64().unwrap() > 0);
}

#[test]
fn bad_flags_and_files_get_one_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(tmp.path(), "tiny", 16);
    let r = run.to_str().unwrap();
    let pairs = tmp.path().join("p.jsonl");
    std::fs::write(&pairs, "{\"prompt\": \"a\", \"chosen\": \"b\"}\n").unwrap();
    let p = pairs.to_str().unwrap();
    let out = tmp.path().join("o");
    let o = out.to_str().unwrap();
    fails_with(
        &llm(&["dpo", "--init-from", r, "--data", p, "--out", o]),
        "missing field `rejected`",
    );
    let args = ["dpo", "--init-from", r, "--data", p, "--out", o, "--beta"];
    let err = String::from_utf8_lossy(&llm(&[&args[..], &["0"]].concat()).stderr).into_owned();
    assert!(err.contains("expected a number above 0"), "{err}");
    let task = tmp.path().join("t.jsonl");
    std::fs::write(&task, "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n").unwrap();
    let t = task.to_str().unwrap();
    let err = llm(&[
        "dpo-pairs",
        "--model",
        r,
        "--task",
        t,
        "--out",
        o,
        "--samples",
        "1",
    ]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("at least 2 draws"));
}
