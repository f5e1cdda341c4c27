//! Generation throughput of the project's GPT against PyTorch on the same CPU, in one command.
//!
//! ```text
//! cargo bench --bench generate -- --shape shakespeare-char   # 6 layers, width 384, vocabulary 65
//! cargo bench --bench generate -- --shape gpt2               # GPT-2 124M
//! cargo bench --bench generate -- --batch 64                 # 64 prompts decoded together
//! cargo bench --bench generate -- --shape stories-small --batch 32 --new-tokens 24 --sample
//!                                                            # a rollout of `llm ppo`
//! ```
//!
//! Both sides decode greedily, batch 1 (or `--batch N` prompts at once), with a key/value cache, from a randomly initialised
//! model of the shape (ours: `llm::generate::generate`, the loop behind `llm sample`), starting
//! from the same 16-token prompt and producing `--new-tokens` tokens (default 200); a run's
//! time includes the prompt's forward pass. Rates are medians over `--reps` runs (default 3)
//! after one untimed run. The reference is `benches/generate.py`, run by `$PYTHON` (default
//! `python3`) on as many threads as rayon has: a plain PyTorch loop with a cache and, when the
//! package is installed, `transformers`' `generate`. `--no-reference` times our side only.
//! With `--batch N`, N different random prompts of the same length are decoded together (ours:
//! `llm::generate::generate_batch`; PyTorch's plain loop with a `(N, ...)` cache) and the rate
//! counts the tokens of all of them. With `--sample`, both sides draw each token from the full
//! distribution at temperature 1 (no top-k or top-p) instead of taking the most likely one,
//! as the rollouts of `llm ppo` do (PyTorch: `torch.multinomial` of the softmax; `transformers`
//! with `do_sample=True, top_k=0`). Shapes: `shakespeare-char` (6 layers, width 384,
//! vocabulary 65), `gpt2` (GPT-2 124M), `stories-small` (4 layers, width 128, vocabulary 2,048).
//! The last lines printed are the ratios and the rows for `benches/RESULTS.md`.

/// The `llm` binary's allocator, so the timed work runs as `llm train` and `llm sample` run it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use llm::generate::{generate, generate_batch, Generation, Sampling};
use llm::model::config::Config;
use llm::model::Model;
use nn::{Module, SharedRng};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use tensor::Rng;

const USAGE: &str = "usage: generate [--shape shakespeare-char|gpt2|stories-small] \
                     [--new-tokens N] [--reps N] [--batch N] [--sample] [--no-reference]";
const PROMPT_LEN: usize = 16;

struct Options {
    shape: String,
    new_tokens: usize,
    reps: usize,
    /// Prompts decoded together.
    batch: usize,
    /// Draw tokens at temperature 1 instead of decoding greedily.
    sample: bool,
    reference: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        shape: "shakespeare-char".into(),
        new_tokens: 200,
        reps: 3,
        batch: 1,
        sample: false,
        reference: true,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let count = |v: String| {
            v.parse::<usize>().ok().filter(|&n| n >= 1).ok_or(format!(
                "{flag} takes a whole number of at least 1, not `{v}`"
            ))
        };
        match flag.as_str() {
            "--bench" => {}
            "--shape" => o.shape = value()?,
            "--new-tokens" => o.new_tokens = count(value()?)?,
            "--reps" => o.reps = count(value()?)?,
            "--batch" => o.batch = count(value()?)?,
            "--sample" => o.sample = true,
            "--no-reference" => o.reference = false,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    config(&o.shape)?;
    Ok(o)
}

/// The model shape: the `shakespeare-char` preset with a 65-character vocabulary, `gpt2`, or
/// the `stories-small` preset with a 2,048-token vocabulary.
fn config(shape: &str) -> Result<Config, String> {
    match shape {
        "stories-small" => Ok(Config {
            vocab_size: 2048,
            dropout: 0.0,
            ..Config::preset("stories-small").expect("a built-in preset")
        }),
        "shakespeare-char" => Ok(Config {
            vocab_size: 65,
            dropout: 0.0,
            ..Config::preset("shakespeare-char").expect("a built-in preset")
        }),
        "gpt2" => Ok(Config::preset("gpt2").expect("a built-in preset")),
        other => Err(format!("unknown shape `{other}`")),
    }
}

/// The median of `rates`.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Our tokens/s: median over `reps` timed runs after one untimed one.
fn ours(cfg: &Config, prompts: &[Vec<u32>], o: &Options) -> f64 {
    let mut model = Model::new(cfg, &mut Rng::new(1337), &SharedRng::new(0));
    model.eval();
    let g = Generation {
        max_new_tokens: o.new_tokens,
        sampling: Sampling {
            temperature: if o.sample { 1.0 } else { 0.0 },
            top_k: None,
            top_p: None,
        },
        stop_token: None,
        seed: 0,
        vocab_limit: None,
    };
    let rates = (0..=o.reps)
        .map(|_| {
            let start = Instant::now();
            let out = match prompts {
                [prompt] => vec![generate(&model, prompt, &g, |_| {})],
                _ => generate_batch(&model, prompts, &g),
            };
            assert!(out.iter().all(|seq| seq.len() == o.new_tokens));
            (prompts.len() * o.new_tokens) as f64 / start.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    median(rates)
}

/// PyTorch's figures (the script's JSON line), or `None` with a note when it cannot run.
fn reference(cfg: &Config, prompts: &[Vec<u32>], o: &Options) -> Option<Value> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/generate.py");
    let shape = json!({
        "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd,
        "block_size": cfg.block_size, "vocab_size": cfg.vocab_size, "bias": cfg.bias,
    });
    let out = Command::new(&python)
        .arg(&script)
        .args(["--config", &shape.to_string()])
        .args(["--prompts", &json!(prompts).to_string()])
        .args(["--new-tokens", &o.new_tokens.to_string()])
        .args(["--reps", &o.reps.to_string()])
        .args(["--threads", &rayon::current_num_threads().to_string()])
        .args(o.sample.then_some("--sample"))
        .stderr(std::process::Stdio::inherit())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let last = stdout.lines().last().unwrap_or("");
            serde_json::from_str(last)
                .map_err(|_| eprintln!("reference skipped: its last line is not JSON: {stdout}"))
                .ok()
        }
        Ok(out) => {
            eprintln!(
                "reference skipped: {python} {} failed ({})",
                script.display(),
                out.status
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
    llm::alloc::keep_freed_pages();
    let o = parse(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2)
    });
    let cfg = config(&o.shape).expect("checked when parsed");
    let mut rng = Rng::new(7);
    let prompts: Vec<Vec<u32>> = (0..o.batch)
        .map(|_| {
            (0..PROMPT_LEN)
                .map(|_| rng.below(cfg.vocab_size) as u32)
                .collect()
        })
        .collect();
    let label = format!(
        "generate {} tokens, batch {}, KV cache, {}, {} shape",
        o.new_tokens,
        o.batch,
        if o.sample { "sampled" } else { "greedy" },
        o.shape
    );
    let threads = rayon::current_num_threads();
    let ours = ours(&cfg, &prompts, &o);
    println!("{label}, {threads} threads");
    println!("{:<28} {:>10}", "", "tokens/s");
    println!("{:<28} {ours:>10.1}", "llm-stack");
    if !o.reference {
        return;
    }
    let Some(theirs) = reference(&cfg, &prompts, &o) else {
        return;
    };
    let torch = theirs["torch"].as_str().unwrap_or("?");
    for (key, who) in [
        ("plain", "plain PyTorch loop"),
        ("transformers", "transformers generate"),
    ] {
        let Some(rate) = theirs[key].as_f64() else {
            continue;
        };
        println!("{who:<28} {rate:>10.1}");
        println!("ratio, llm-stack / {who}: {:.2}", ours / rate);
        println!(
            "| {label} | {ours:.0} | {rate:.0} ({who}, PyTorch {torch}) | {:.2} |",
            ours / rate
        );
    }
}
