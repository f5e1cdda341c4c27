//! Fuzzing of every loader of outside bytes: checkpoints and run configurations, Hugging Face
//! GPT-2 directories, saved tokenizers, GPT-2 vocabulary files, `meta.json` and token files of
//! a prepared directory, the JSON and JSONL data readers, and `--config` files.
//!
//! Each loader reads `FUZZ_CASES` inputs (default 2000; the full run sets 100000) made from a
//! valid seed file by random mutations: flipped bits, bytes set to values that often break
//! parsers, deleted, repeated or inserted runs of bytes, truncation, and numbers replaced by
//! extreme ones. A loader passes when, on every input, it returns (an error or a value) without
//! panicking, and no single allocation while it reads exceeds [`ALLOC_BOUND`]: a loader must not
//! trust a size it reads before checking it against the data it has.
//!
//! ```text
//! FUZZ_CASES=100000 cargo test --release -p llm --test fuzz_loaders -- --nocapture
//! ```
//!
//! A failing input is written to `target/fuzz-failures/` and its file name printed.

use llm::data::{Meta, Split, TokenDataset};
use llm::model::config::Config;
use llm::tokenizer::{self, Gpt2Tokenizer, Tokenizer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tensor::Rng;

/// The largest single allocation a loader may make while reading one fuzzed input: far above
/// what the seeds need (the largest, the Hugging Face model, holds 13 MB of weights), far below
/// what a size field read from a file can ask for.
const ALLOC_BOUND: usize = 64 << 20;

thread_local! {
    /// The largest allocation requested on this thread since it was last reset.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// Requests this large are not served: the process stops at once (a failed allocation would
/// abort it anyway), leaving the input that asked in its temporary directory.
const ALLOC_LIMIT: usize = 4 << 30;

/// The system allocator, noting the largest request of each thread.
struct Watched;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Watched {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watched = Watched;

fn note(size: usize) {
    if size > ALLOC_LIMIT {
        use std::io::Write;
        let _ = std::io::stderr().write_all(
            b"a loader asked for more than 4 GiB at once; the input that asked is the file \
              named on the last 'fuzzing' line above\n",
        );
        std::process::abort();
    }
    // `try_with`: the slot is gone while the thread shuts down.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

/// How many inputs each loader reads.
fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Byte values that often break parsers: NUL, high bytes, quote, brackets, sign, digits.
const SPECIAL_BYTES: &[u8] = b"\x00\xff\x7f\x80\"{}[],:-+.e09\n\\";
/// Numbers that break sizes and arithmetic.
const EXTREME_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "NaN",
    "18446744073709551615",
    "4294967296",
    "9007199254740993",
    "1125899906842624",
    "0.5",
    "2147483648",
];

/// `seed` changed by one to four random mutations.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = |rng: &mut Rng, len: usize| rng.below(len + 1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = SPECIAL_BYTES[rng.below(SPECIAL_BYTES.len())];
            }
            2 => {
                let start = at(rng, b.len());
                let end = (start + 1 + rng.below(64)).min(b.len());
                b.drain(start..end);
            }
            3 => {
                let start = at(rng, b.len());
                let end = (start + 1 + rng.below(64)).min(b.len());
                let run = b[start..end].to_vec();
                let to = at(rng, b.len());
                b.splice(to..to, run);
            }
            4 => {
                let to = at(rng, b.len());
                let run: Vec<u8> = (0..1 + rng.below(16))
                    .map(|_| rng.below(256) as u8)
                    .collect();
                b.splice(to..to, run);
            }
            5 => b.truncate(at(rng, b.len())),
            _ => replace_number(&mut b, rng),
        }
    }
    b
}

/// Replaces one run of ASCII digits in `b` (if any) with an extreme number.
fn replace_number(b: &mut Vec<u8>, rng: &mut Rng) {
    let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
    if digits.is_empty() {
        return;
    }
    let start = digits[rng.below(digits.len())];
    let end = (start..b.len())
        .find(|&i| !b[i].is_ascii_digit())
        .unwrap_or(b.len());
    let number = EXTREME_NUMBERS[rng.below(EXTREME_NUMBERS.len())];
    b.splice(start..end, number.bytes());
}

/// Fuzzes one loader: writes `cases()` mutations of the seed file `target` (inside `dir`) in
/// its place and runs `load(dir)` on each; panics after the run naming every failing input.
fn fuzz(name: &str, dir: &Path, target: &Path, seed_index: u64, load: impl Fn(&Path)) {
    let seed = std::fs::read(target).unwrap();
    let mut rng = Rng::new(seed_index);
    eprintln!("fuzzing {name}: {}", target.display());
    let started = Instant::now();
    let n = cases();
    let mut failures = vec![];
    for case in 0..n {
        let input = mutate(&seed, &mut rng);
        std::fs::write(target, &input).unwrap();
        LARGEST.with(|l| l.set(0));
        let result = catch_unwind(AssertUnwindSafe(|| load(dir)));
        let largest = LARGEST.with(Cell::get);
        let why = match result {
            Err(_) => Some("panicked".to_string()),
            Ok(()) if largest > ALLOC_BOUND => Some(format!("allocated {largest} bytes at once")),
            Ok(()) => None,
        };
        if let Some(why) = why {
            failures.push(format!(
                "{} ({why})",
                keep_failure(name, case, &input).display()
            ));
        }
    }
    std::fs::write(target, &seed).unwrap();
    eprintln!(
        "{name}: {n} inputs in {:.1} s, {} failures",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{name}: failing inputs: {failures:#?}");
}

/// Saves a failing input for reproduction and returns where.
fn keep_failure(name: &str, case: usize, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{case}"));
    std::fs::write(&path, input).unwrap();
    path
}

/// Silences the default panic message while fuzzing (panics are counted, not printed).
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// A run directory of a tiny model, written by the library as `llm train` writes one.
fn tiny_run(dir: &Path) {
    let cfg = Config {
        n_layer: 1,
        n_head: 2,
        n_embd: 8,
        block_size: 8,
        batch_size: 2,
        ..Config::char_small()
    };
    let tok = tokenizer::resolve("char", || Ok("hello fuzzing world\n".to_string())).unwrap();
    let cfg = Config {
        vocab_size: tok.vocab_size(),
        ..cfg
    };
    let trainer = llm::train::Trainer::new(cfg.clone(), tensor::Device::Cpu).unwrap();
    llm::run::write_run_files(dir, &cfg, tok.as_ref()).unwrap();
    trainer.save(dir).unwrap();
}

/// Loads a model directory and, when it loads, runs it on one token.
fn load_model(dir: &Path) {
    if let Ok((model, _, tok)) = llm::run::load::load_model(dir) {
        let ids = tensor::Tensor::from_vec(vec![0u32], &[1, 1]);
        let _ = model.logits(&ids);
        let _ = tok.decode_bytes(&[0]);
    }
}

#[test]
fn run_directories() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    tiny_run(tmp.path());
    let ckpt = tmp.path().join(llm::run::CHECKPOINT);
    fuzz("checkpoint", tmp.path(), &ckpt, 1, load_model);
    fuzz(
        "run-config",
        tmp.path(),
        &tmp.path().join("config.json"),
        2,
        load_model,
    );
    fuzz(
        "run-tokenizer",
        tmp.path(),
        &tmp.path().join("tokenizer.json"),
        3,
        load_model,
    );
}

#[test]
fn hugging_face_config() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gpt2");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), tmp.path().join(f)).unwrap();
    }
    fuzz(
        "hf-config",
        tmp.path(),
        &tmp.path().join("config.json"),
        4,
        |dir| {
            let _ = llm::run::load::load_model(dir);
        },
    );
}

/// A tokenizer trained on a small text and saved, as `llm bpe-train` saves one.
fn saved_bpe(path: &Path) {
    let text = "the cat sat on the mat; the bat ate the rat. ".repeat(20);
    let tok = llm::tokenizer::BpeTokenizer::train(
        &text,
        300,
        llm::tokenizer::Pattern::Gpt2,
        &["<|endoftext|>".to_string()],
    )
    .unwrap();
    tok.save(path).unwrap();
}

#[test]
fn saved_tokenizers() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    let bpe = tmp.path().join("bpe.json");
    saved_bpe(&bpe);
    let use_tokenizer = |path: &Path| {
        if let Ok(tok) = tokenizer::load(path) {
            if let Ok(ids) = tok.encode("the cat, the rat!") {
                let _ = tok.decode_bytes(&ids);
            }
        }
    };
    fuzz("bpe-tokenizer", &bpe, &bpe, 5, use_tokenizer);
    let chars = tmp.path().join("char.json");
    tokenizer::resolve("char", || Ok("abc xyz\n".into()))
        .unwrap()
        .save(&chars)
        .unwrap();
    fuzz("char-tokenizer", &chars, &chars, 6, use_tokenizer);
}

#[test]
fn gpt2_vocabulary_files() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    // A 260-token GPT-2-format vocabulary: the 256 byte tokens and four merges.
    let gpt2 = Gpt2Tokenizer::new();
    let mut encoder = serde_json::Map::new();
    for id in 0..256u32 {
        let piece = String::from_utf8(gpt2.decode_bytes(&[id]).unwrap()).unwrap_or_default();
        encoder.insert(piece, id.into());
    }
    let merges = ["t h", "th e", "a t", "c at"];
    for (i, m) in merges.iter().enumerate() {
        encoder.insert(m.replace(' ', ""), (256 + i as u32).into());
    }
    let enc = tmp.path().join("encoder.json");
    let vocab = tmp.path().join("vocab.bpe");
    std::fs::write(&enc, serde_json::to_string(&encoder).unwrap()).unwrap();
    std::fs::write(&vocab, format!("#version: 0.2\n{}\n", merges.join("\n"))).unwrap();
    let load = |dir: &Path| {
        if let Ok(tok) = Gpt2Tokenizer::from_dir(dir) {
            let _ = tok.encode("the cat");
        }
    };
    fuzz("gpt2-encoder", tmp.path(), &enc, 7, load);
    fuzz("gpt2-merges", tmp.path(), &vocab, 8, load);
}

#[test]
fn prepared_directories() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("text.txt");
    std::fs::write(
        &text,
        "to be or not to be, that is the question\n".repeat(8),
    )
    .unwrap();
    let out = tmp.path().join("prepared");
    llm::data::prepare::prepare(&llm::data::prepare::PrepareOptions {
        inputs: vec![text],
        tokenizer: "char".into(),
        out: out.clone(),
        val_fraction: 0.1,
        special: llm::tokenizer::Special::Allow,
    })
    .unwrap();
    fuzz("meta", &out, &out.join("meta.json"), 9, |dir| {
        if let Ok(meta) = Meta::read(dir) {
            let _ = meta.tokenizer();
        }
    });
    fuzz(
        "train-bin",
        &out,
        &out.join(Split::Train.file_name()),
        10,
        |dir| {
            let (Ok(meta), Ok(data)) =
                (Meta::read(dir), TokenDataset::open_split(dir, Split::Train))
            else {
                return;
            };
            if data.check_ids(meta.vocab_size).is_ok() {
                let _ = data.sample_batch(2, 4, &mut Rng::new(0));
            }
        },
    );
}

#[test]
fn data_readers() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    let instructions = tmp.path().join("instructions.json");
    std::fs::write(
        &instructions,
        r#"[{"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
            {"instruction": "Say hi.", "input": "", "output": "Hi!"}]"#,
    )
    .unwrap();
    fuzz("instructions", &instructions, &instructions, 11, |p| {
        let _ = llm::data::instruct::read_instructions(p);
    });
    let preferences = tmp.path().join("preferences.jsonl");
    std::fs::write(
        &preferences,
        "{\"prompt\": \"2+2=\", \"chosen\": \"4\", \"rejected\": \"5\"}\n\
         {\"prompt\": \"Hi\", \"chosen\": \"Hello!\", \"rejected\": \"Go away.\"}\n",
    )
    .unwrap();
    fuzz("preferences", &preferences, &preferences, 12, |p| {
        let _ = llm::data::instruct::read_preferences(p);
    });
    let labelled = tmp.path().join("labelled.tsv");
    std::fs::write(
        &labelled,
        "ham\tSee you at noon.\nspam\tWIN a prize now!!!\n",
    )
    .unwrap();
    fuzz("labelled", &labelled, &labelled, 13, |p| {
        let _ = llm::data::labelled::read_labelled(p);
    });
}

#[test]
fn config_files() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.json");
    std::fs::write(
        &path,
        r#"{"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64, "batch_size": 8,
            "dropout": 0.1, "bias": true, "learning_rate": 0.001, "min_lr": 0.0001,
            "warmup_iters": 10, "lr_decay_iters": 100, "max_iters": 100,
            "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.99, "grad_clip": 1.0,
            "gradient_accumulation_steps": 1, "eval_interval": 50, "eval_iters": 5}"#,
    )
    .unwrap();
    fuzz("config", &path, &path, 14, |p| {
        let Ok(text) = std::fs::read_to_string(p) else {
            return;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        if let Ok(cfg) = Config::char_small().with_overrides(&json, "config.json") {
            let _ = cfg.validate();
        }
    });
}
