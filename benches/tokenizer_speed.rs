//! Tokenizer speed beside the references: GPT-2 encoding throughput (MB/s, one thread and all
//! threads) against tiktoken and Hugging Face `tokenizers`, and the time to train a 4,096-token
//! BPE on Tiny Shakespeare against `tokenizers`' trainer.
//!
//! ```text
//! PYTHON=path/to/python cargo bench --bench tokenizer_speed -- [FILE...]
//! ```
//!
//! Tiny Shakespeare is always measured; each FILE is measured too. The Python side is
//! `benches/compare/tokenizer_speed.py`, run with `$PYTHON` (default `python3`), which needs the
//! `tiktoken` and `tokenizers` packages; without them only our side is printed. Figures are
//! medians of several runs.

use llm::tokenizer::{encode_parallel, BpeTokenizer, Gpt2Tokenizer, Pattern, Special, Tokenizer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const REPEATS: usize = 5;

/// The median wall time of `REPEATS` runs of `f`, in seconds.
fn median_seconds(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[REPEATS / 2]
}

/// Runs the Python reference on `files`; `None` (with a note) if it cannot run.
fn reference(files: &[PathBuf]) -> Option<Value> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/compare/tokenizer_speed.py");
    let out = Command::new(&python).arg(script).args(files).output();
    match out {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout).ok(),
        Ok(out) => {
            eprintln!(
                "reference skipped: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("reference skipped: cannot run {python}: {e}");
            None
        }
    }
}

fn main() {
    let files: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let threads = rayon::current_num_threads();
    let gpt2 = Gpt2Tokenizer::new();
    let mut texts = vec![(
        "tinyshakespeare.txt".to_string(),
        llm::TINY_SHAKESPEARE.to_string(),
    )];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        texts.push((f.file_name().unwrap().to_string_lossy().into_owned(), text));
    }
    let reference = reference(&files);
    let field = |i: usize, key: &str| {
        reference
            .as_ref()
            .and_then(|r| r["encode"][i][key].as_f64())
    };

    println!("GPT-2 encoding, MB/s; \"all\" uses {threads} threads; ratio = ours / tiktoken");
    println!(
        "{:<32} {:>8} {:>8} {:>6} {:>8} {:>8} {:>6} {:>7} {:>7}",
        "file", "ours 1", "tiktok 1", "ratio", "ours all", "tiktok all", "ratio", "hf 1", "hf all"
    );
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let ratio = |ours: f64, theirs: Option<f64>| {
        theirs.map_or("-".to_string(), |t| format!("{:.2}x", ours / t))
    };
    for (i, (name, text)) in texts.iter().enumerate() {
        let mb = text.len() as f64 / 1e6;
        let one = mb / median_seconds(|| drop(gpt2.encode_with(text, Special::AsText).unwrap()));
        let all =
            mb / median_seconds(|| drop(encode_parallel(&gpt2, text, Special::AsText).unwrap()));
        let (t1, tall) = (field(i, "tiktoken_1"), field(i, "tiktoken_all"));
        println!(
            "{name:<32} {one:>8.2} {:>8} {:>6} {all:>8.2} {:>8} {:>6} {:>7} {:>7}",
            show(t1),
            ratio(one, t1),
            show(tall),
            ratio(all, tall),
            show(field(i, "hf_1")),
            show(field(i, "hf_all"))
        );
    }

    let special = ["<|endoftext|>".to_string()];
    let mut merges = 0;
    let ours = median_seconds(|| {
        let tok =
            BpeTokenizer::train(llm::TINY_SHAKESPEARE, 4096, Pattern::Gpt2, &special).unwrap();
        merges = tok.merges().len();
    });
    let theirs = reference
        .as_ref()
        .and_then(|r| r["train"]["hf_seconds"].as_f64());
    println!("\nBPE training on Tiny Shakespeare to 4,096 tokens ({merges} merges, GPT-2 split), seconds");
    match theirs {
        Some(t) => println!(
            "ours {ours:.3}   tokenizers {t:.3}   ratio (theirs / ours) {:.2}x",
            t / ours
        ),
        None => println!("ours {ours:.3}"),
    }
}
