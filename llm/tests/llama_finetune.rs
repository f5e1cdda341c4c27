//! A Llama goes through the fine-tuning stages as the GPT does: supervised fine-tuning with LoRA
//! in the chat template (whose markers grow the embedding and the untied head), and a
//! classifier trained on its last block.

mod common;
use common::{llm, stdout as ok};
use serde_json::Value;
use std::path::Path;

/// The configuration of a run, as JSON.
fn config(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap()
}

#[test]
fn a_llama_fine_tunes_with_lora_and_classifies() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("llama.json");
    std::fs::write(
        &cfg,
        r#"{"model": "llama", "dim": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2,
            "hidden_dim": 64, "max_seq_len": 128, "untied_head": true, "max_iters": 20,
            "batch_size": 4, "eval_interval": 0, "checkpoint_interval": 0}"#,
    )
    .unwrap();
    let base = tmp.path().join("base");
    ok(&llm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--tokenizer",
        "bpe:300",
        "--data",
        "../data/finetune/SMSSpamCollection.tsv",
        "--sample-chars",
        "0",
        "--out",
        base.to_str().unwrap(),
    ]));
    let vocab = config(&base)["vocab_size"].as_u64().unwrap();

    let sft = tmp.path().join("sft");
    ok(&llm(&[
        "sft",
        "--init-from",
        base.to_str().unwrap(),
        "--data",
        "../data/finetune/instruction-data.json",
        "--template",
        "chat",
        "--lora-rank",
        "4",
        "--max-iters",
        "3",
        "--out",
        sft.to_str().unwrap(),
    ]));
    let tuned = config(&sft);
    assert_eq!(tuned["lora_rank"], 4);
    assert!(
        tuned["vocab_size"].as_u64().unwrap() > vocab,
        "the chat markers are new rows of the embedding and of the untied head"
    );
    let reply = ok(&llm(&[
        "sample",
        "--model",
        sft.to_str().unwrap(),
        "--instruct",
        "Name a color.",
        "--max-new-tokens",
        "5",
    ]));
    assert!(!reply.is_empty());

    // The last block and the final norm alone (their names are the Llama's), then every
    // parameter, which must learn the task.
    let classify = |train: &str| {
        let out = tmp.path().join(train);
        ok(&llm(&[
            "classify",
            "train",
            "--init-from",
            base.to_str().unwrap(),
            "--data",
            "../data/finetune/SMSSpamCollection.tsv",
            "--train",
            train,
            "--epochs",
            "3",
            "--max-len",
            "32",
            "--out",
            out.to_str().unwrap(),
        ]));
        let eval = ok(&llm(&[
            "classify",
            "eval",
            "--model",
            out.to_str().unwrap(),
            "--split",
            "test",
            "--json",
        ]));
        serde_json::from_str::<Value>(&eval).unwrap()["accuracy"]
            .as_f64()
            .unwrap()
    };
    classify("last-block");
    let accuracy = classify("all");
    assert!(
        accuracy > 0.75,
        "balanced spam and ham (chance 0.5): {accuracy}"
    );
}
