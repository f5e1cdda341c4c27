//! The `llm` binary: each subcommand on good input, and on bad input a one-sentence error on
//! standard error and a non-zero exit, never a panic.

use std::path::Path;

mod common;
use common::{fails_with, llm, stdout};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tokenize_prints_ids_and_decodes_them() {
    let out = llm(&[
        "tokenize",
        "--tokenizer",
        "gpt2",
        "--text",
        "Hello world<|endoftext|>",
    ]);
    assert_eq!(stdout(&out), "15496 995 50256\n");
    let out = llm(&[
        "tokenize",
        "--tokenizer",
        "gpt2",
        "--text",
        "Hi<|endoftext|>",
        "--special",
        "text",
        "--json",
    ]);
    assert_eq!(stdout(&out), "[17250,27,91,437,1659,5239,91,29]\n");
    let out = llm(&["tokenize", "--tokenizer", "char", "--text", "First"]);
    assert_eq!(stdout(&out), "18 47 56 57 58\n");
    let out = llm(&[
        "tokenize",
        "--tokenizer",
        "gpt2",
        "--decode",
        "--text",
        "[15496, 995]",
    ]);
    assert_eq!(stdout(&out), "Hello world\n");
}

#[test]
fn bpe_train_then_tokenize_with_the_saved_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, &llm::TINY_SHAKESPEARE[..30_000]).unwrap();
    let saved = dir.path().join("tok.json");
    let args = [
        "bpe-train",
        "--input",
        path(&input),
        "--vocab-size",
        "300",
        "--pattern",
        "gpt4",
    ];
    let out = llm(&[
        &args[..],
        &["--special", "<|endoftext|>", "--out", path(&saved)],
    ]
    .concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("trained 43 merges in"), "{err}");
    let ids = stdout(&llm(&[
        "tokenize",
        "--tokenizer",
        path(&saved),
        "--text",
        "the king<|endoftext|>",
        "--json",
    ]));
    let ids: Vec<u32> = serde_json::from_str(&ids).unwrap();
    assert_eq!(ids.last(), Some(&299));
    let text = stdout(&llm(&[
        "tokenize",
        "--tokenizer",
        path(&saved),
        "--decode",
        "--text",
        &format!("{ids:?}"),
    ]));
    assert_eq!(text, "the king<|endoftext|>\n");
}

#[test]
fn prepare_writes_the_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "To be, or not to be, that is the question.\n").unwrap();
    let out_dir = dir.path().join("data");
    let out = llm(&[
        "prepare",
        "--input",
        path(&input),
        "--tokenizer",
        "char",
        "--out",
        path(&out_dir),
        "--val-fraction",
        "0.25",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["dtype"], "u16");
    assert_eq!(
        (meta["train_tokens"].as_u64(), meta["val_tokens"].as_u64()),
        (Some(32), Some(11))
    );
    assert_eq!(meta["tokenizer"]["kind"], "char");
    assert_eq!(
        std::fs::metadata(out_dir.join("val.bin")).unwrap().len(),
        22
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"abc \xff def").unwrap();
    fails_with(
        &llm(&["tokenize", "--tokenizer", "gpt2", "--file", path(&bad)]),
        "bad.txt is not valid UTF-8 at byte 4",
    );
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let out_dir = dir.path().join("out");
    fails_with(
        &llm(&[
            "prepare",
            "--input",
            path(&empty),
            "--tokenizer",
            "gpt2",
            "--out",
            path(&out_dir),
        ]),
        "empty.txt is empty",
    );
    fails_with(
        &llm(&[
            "bpe-train",
            "--input",
            path(&empty),
            "--vocab-size",
            "300",
            "--out",
            path(&out_dir),
        ]),
        "empty.txt is empty",
    );
    fails_with(
        &llm(&[
            "tokenize",
            "--tokenizer",
            "gpt2",
            "--decode",
            "--text",
            "1 50257",
        ]),
        "token id 50257 at position 1 is out of range for a vocabulary of 50257",
    );
    fails_with(
        &llm(&[
            "tokenize",
            "--tokenizer",
            "gpt2",
            "--decode",
            "--text",
            "1 x",
        ]),
        "--decode: \"x\" is not a token id",
    );
    fails_with(
        &llm(&["tokenize", "--tokenizer", "char", "--text", "naïve"]),
        "character 'ï' (U+00EF) at byte 2 is not in the vocabulary",
    );
    fails_with(
        &llm(&[
            "tokenize",
            "--tokenizer",
            "gpt2",
            "--special",
            "reject",
            "--text",
            "a<|endoftext|>",
        ]),
        "special token \"<|endoftext|>\" at byte 1",
    );

    let gpt2_dir = dir.path().join("gpt2");
    std::fs::create_dir(&gpt2_dir).unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/gpt2");
    std::fs::copy(assets.join("encoder.json"), gpt2_dir.join("encoder.json")).unwrap();
    std::fs::write(gpt2_dir.join("vocab.bpe"), "#version: 0.2\nĠ t\nĠ\n").unwrap();
    fails_with(
        &llm(&["tokenize", "--tokenizer", path(&gpt2_dir), "--text", "x"]),
        "vocab.bpe, line 3: the merge \"Ġ\" is not two tokens separated by one space",
    );
    let bad_tok = dir.path().join("tok.json");
    std::fs::write(
        &bad_tok,
        "{\"version\": 1, \"kind\": \"char\", \"chars\": \"ba\"}",
    )
    .unwrap();
    fails_with(
        &llm(&["tokenize", "--tokenizer", path(&bad_tok), "--text", "x"]),
        "tok.json: a char tokenizer's \"chars\" must be sorted and distinct",
    );
}
