//! Size flags have stated bounds, so no number typed on the command line can ask for an
//! allocation that cannot exist; values out of range are usage errors naming the flag, never
//! a panic or an abort.

mod common;
use common::{fails_with, llm};

/// Asserts a usage error (exit code 2) that names `flag` and says `why`.
fn refused(args: &[&str], flag: &str, why: &str) {
    let out = llm(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(flag) && err.contains(why), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn absurd_sizes_are_refused_with_their_bound() {
    let huge = "18446744073709551615";
    let m = ["--model", "nowhere"];
    refused(
        &[&["sample"][..], &m, &["--max-new-tokens", huge]].concat(),
        "--max-new-tokens",
        "limit of 10000000",
    );
    refused(
        &[
            &["sample"][..],
            &m,
            &["--max-new-tokens", "1125899906842624"],
        ]
        .concat(),
        "--max-new-tokens",
        "limit",
    );
    refused(
        &["train", "--sample-chars", huge],
        "--sample-chars",
        "limit of 1000000",
    );
    refused(
        &["train", "--grad-accum", huge],
        "--grad-accum",
        "limit of 1048576",
    );
    refused(
        &["train", "--grad-accum", "0"],
        "--grad-accum",
        "at least 1",
    );
    refused(
        &[
            "bpe-train",
            "--input",
            "x",
            "--out",
            "y",
            "--vocab-size",
            huge,
        ],
        "--vocab-size",
        "limit of 4194304",
    );
    refused(
        &[&["eval"][..], &m, &["--text", "t", "--batch-size", "0"]].concat(),
        "--batch-size",
        "at least 1",
    );
    refused(
        &[&["sample"][..], &m, &["--top-k", "0"]].concat(),
        "--top-k",
        "at least 1",
    );
}

#[test]
fn negative_values_reach_the_check_that_explains_them() {
    fails_with(
        &llm(&["sample", "--model", "nowhere", "--temperature", "-1"]),
        "--temperature must be a finite number >= 0",
    );
    fails_with(
        &llm(&["sample", "--model", "nowhere", "--top-p", "-0.5"]),
        "--top-p must be in (0, 1]",
    );
    fails_with(
        &llm(&[
            "prepare",
            "--input",
            "x",
            "--tokenizer",
            "char",
            "--out",
            "y",
            "--val-fraction",
            "-0.1",
        ]),
        "--val-fraction -0.1 is not in [0, 1)",
    );
}
