//! What `llm prepare` and the token files guarantee: a failed `prepare` leaves the earlier
//! outputs whole and no temporary files, an empty training split is an error, and token ids
//! outside the vocabulary are found before training, naming the file and the byte.

use std::path::Path;

mod common;
use common::{fails_with, llm, stdout as ok};

/// `llm prepare` with GPT-2's tokenizer (so a bad byte fails while encoding, after the output
/// files were started, not while a character vocabulary is collected).
fn prepare(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "prepare",
        "--input",
        input.to_str().unwrap(),
        "--tokenizer",
        "gpt2",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    llm(&args)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    all.sort();
    all
}

#[test]
fn a_failed_prepare_leaves_the_earlier_outputs_whole_and_no_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (good, out) = (tmp.path().join("good.txt"), tmp.path().join("data"));
    std::fs::write(
        &good,
        "It was the best of times, it was the worst of times.\n".repeat(50),
    )
    .unwrap();
    ok(&prepare(&good, &out, &[]));
    let before = files(&out);
    // Invalid UTF-8 near the end: the training file is half written when encoding fails.
    let bad = tmp.path().join("bad.txt");
    let mut bytes = "a different text of another alphabet: xyz\n"
        .repeat(50)
        .into_bytes();
    bytes.extend_from_slice(b"\xff tail");
    std::fs::write(&bad, bytes).unwrap();
    fails_with(&prepare(&bad, &out, &[]), "not valid UTF-8");
    assert_eq!(files(&out), before, "the earlier outputs changed");
}

#[test]
fn an_empty_training_split_and_a_file_in_place_of_the_directory_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("one.txt");
    std::fs::write(&input, "a").unwrap();
    let out = tmp.path().join("data");
    fails_with(
        &prepare(&input, &out, &["--val-fraction", "0.5"]),
        "the training split is empty",
    );
    assert!(!out.join("meta.json").exists());
    let file = tmp.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    fails_with(&prepare(&input, &file, &[]), "is a file, not a directory");
}

#[test]
fn token_ids_outside_the_vocabulary_are_named_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let (text, data) = (tmp.path().join("t.txt"), tmp.path().join("data"));
    std::fs::write(
        &text,
        "the quick brown fox jumps over the lazy dog\n".repeat(400),
    )
    .unwrap();
    ok(&prepare(&text, &data, &[]));
    let train = data.join("train.bin");
    let mut ids = std::fs::read(&train).unwrap();
    ids[10..12].copy_from_slice(&60000u16.to_le_bytes());
    std::fs::write(&train, ids).unwrap();
    let run = tmp.path().join("run");
    let out = llm(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--max-iters",
        "2",
    ]);
    fails_with(
        &out,
        "train.bin: token id 60000 at byte 10 is not below the vocabulary size",
    );
    // A damaged validation file is an error, not a run without validation.
    let val = data.join("val.bin");
    let mut ids = std::fs::read(&val).unwrap();
    ids.push(0);
    std::fs::write(&val, &ids).unwrap();
    let out = llm(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    fails_with(&out, "val.bin has");
    ids.pop();
    std::fs::write(&val, &ids).unwrap();
    // A directory where a token file should be is named as such, not mapped.
    std::fs::remove_file(&train).unwrap();
    std::fs::create_dir(&train).unwrap();
    let out = llm(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    fails_with(&out, "is not a regular file");
}
