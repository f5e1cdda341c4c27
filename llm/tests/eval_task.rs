//! `llm eval --task`: the scoring of generated answers, checked against answers known in
//! advance (what the model itself generates), and the command's JSON report.

use llm::eval::task::{evaluate_task, TaskOptions};
use llm::generate::{generate, Generation, Sampling};
use llm::model::config::Config;
use llm::model::Model;
use llm::tasks::{answer_text, Problem, Task};
use llm::tokenizer::{CharTokenizer, Tokenizer};
use nn::{Module, SharedRng};
use tensor::{DType, Rng};

mod common;
use common::{llm, stdout as ok};

const CHARS: &str = "0123456789+-=\n";

/// A small random GPT over [`CHARS`] whose greedy continuations vary with the prompt.
fn model() -> Model {
    let cfg = Config {
        vocab_size: CHARS.len(),
        block_size: 32,
        n_layer: 1,
        n_head: 2,
        n_embd: 16,
        ..Config::char_small()
    };
    let model = Model::new(&cfg, &mut Rng::new(5), &SharedRng::new(0));
    let mut rng = Rng::new(6);
    for p in model.params() {
        p.set_value(tensor::Tensor::randn(
            &p.shape(),
            0.0,
            0.5,
            DType::F32,
            &mut rng,
        ));
    }
    model
}

#[test]
fn answers_are_scored_as_the_model_wrote_them() {
    let model = model();
    let tok = CharTokenizer::from_corpus(CHARS).unwrap();
    let prompts = ["12+7=", "3-45=", "60+61=", "9-9=", "5+5="];
    let options = TaskOptions {
        max_new_tokens: 6,
        samples: 0,
        temperature: 1.0,
        batch: 2,
        seed: 0,
        reply_end: None,
    };
    // The model's own greedy answers, one prompt at a time.
    let g = Generation {
        max_new_tokens: 6,
        sampling: Sampling::GREEDY,
        stop_token: None,
        seed: 0,
        vocab_limit: Some(CHARS.len()),
    };
    let own: Vec<String> = prompts
        .iter()
        .map(|p| {
            let ids = generate(&model, &tok.encode(p).unwrap(), &g, |_| {});
            answer_text(&tok.decode(&ids).unwrap()).to_string()
        })
        .collect();
    assert!(
        own.iter().any(|a| !a.is_empty()),
        "degenerate test: {own:?}"
    );
    // Right answers for the first three problems, wrong ones for the other two.
    let problems: Vec<Problem> = prompts
        .iter()
        .zip(&own)
        .enumerate()
        .map(|(i, (p, a))| Problem::new(*p, if i < 3 { a.clone() } else { format!("{a}7") }))
        .collect();
    let r = evaluate_task(&model, &tok, &problems, &Task::Arithmetic, "t", &options).unwrap();
    assert_eq!(r.n, 5);
    assert!((r.accuracy - 0.6).abs() < 1e-12, "{r:?}");
    let loss = r.answer_loss.expect("the answers fit the context");
    assert!(loss.is_finite() && loss > 0.0, "{loss}");
    assert!((r.mean_score - 0.6).abs() < 1e-12);
    assert!((r.text.exact_match - 0.6).abs() < 1e-12);
    assert!(r.ci95[0] < 0.6 && r.ci95[1] > 0.6);
    assert!(r.pass_at_k.is_empty());
    // Arithmetic prompts are grouped by operation and the longer operand's digits.
    let groups: Vec<(&str, usize)> = r.groups.iter().map(|(g, a)| (g.as_str(), a.n)).collect();
    assert_eq!(
        groups,
        [
            ("+ 1 digits", 1),
            ("+ 2 digits", 2),
            ("- 1 digits", 1),
            ("- 2 digits", 1)
        ]
    );
    assert_eq!(r.groups["+ 2 digits"].accuracy, 1.0);
    assert_eq!(r.groups["- 1 digits"].accuracy, 0.0);

    // Draws: pass@k rises with k, and greedy accuracy does not depend on the batch size.
    let sampled = evaluate_task(
        &model,
        &tok,
        &problems,
        &Task::Arithmetic,
        "t",
        &TaskOptions {
            samples: 4,
            batch: 3,
            ..options
        },
    )
    .unwrap();
    assert_eq!(sampled.accuracy, r.accuracy);
    let pass: Vec<f64> = ["1", "2", "4"]
        .iter()
        .map(|k| sampled.pass_at_k[*k])
        .collect();
    assert!(pass[0] <= pass[1] && pass[1] <= pass[2], "{pass:?}");
}

#[test]
fn eval_task_prints_the_report_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("add");
    let run = tmp.path().join("run");
    let d = data.to_str().unwrap();
    ok(&llm(&[
        "synth",
        "arithmetic",
        "--out",
        d,
        "--n",
        "300",
        "--digits",
        "1",
    ]));
    let cfg = tmp.path().join("tiny.json");
    std::fs::write(
        &cfg,
        r#"{"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 8,
            "eval_interval": 10, "eval_iters": 2, "warmup_iters": 2, "lr_decay_iters": 20}"#,
    )
    .unwrap();
    let train = data.join("train.txt");
    ok(&llm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
        "--max-iters",
        "20",
        "--out",
        run.to_str().unwrap(),
        "--sample-chars",
        "0",
    ]));
    let test = data.join("test.jsonl");
    let out = ok(&llm(&[
        "eval",
        "--model",
        run.to_str().unwrap(),
        "--task",
        test.to_str().unwrap(),
        "--samples",
        "2",
        "--max-new-tokens",
        "4",
        "--json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = std::fs::read_to_string(&test).unwrap().lines().count() as u64;
    assert_eq!(json["task"], "test.jsonl");
    assert_eq!(json["n"].as_u64(), Some(n));
    let acc = json["accuracy"].as_f64().unwrap();
    let ci = json["ci95"].as_array().unwrap();
    assert!(
        ci[0].as_f64().unwrap() <= acc && acc <= ci[1].as_f64().unwrap(),
        "{json}"
    );
    assert!(
        json["pass_at_k"]["1"].is_f64() && json["pass_at_k"]["2"].is_f64(),
        "{json}"
    );
    let grouped: u64 = json["groups"]
        .as_object()
        .unwrap()
        .values()
        .map(|g| g["n"].as_u64().unwrap())
        .sum();
    assert_eq!(grouped, n, "every arithmetic problem is in a group");
    for key in ["exact_match", "f1", "rouge_l", "bleu"] {
        assert!(json["text"][key].is_f64(), "{key}: {json}");
    }
}
