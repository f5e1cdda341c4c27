//! `llm synth`: the files it writes, the same files for the same seed, and clean errors on bad
//! flags.

use std::path::Path;

mod common;
use common::{fails_with, llm, stdout};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// The (prompt, answer) pairs of a JSON Lines file, each line checked to be exactly
/// `{"prompt": "..", "answer": ".."}`.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (prompt, answer) = (v["prompt"].as_str().unwrap(), v["answer"].as_str().unwrap());
            assert_eq!(
                line,
                format!("{{\"prompt\": \"{prompt}\", \"answer\": \"{answer}\"}}")
            );
            (prompt.to_string(), answer.to_string())
        })
        .collect()
}

fn arithmetic(out: &Path, extra: &[&str]) -> std::process::Output {
    llm(&[&["synth", "arithmetic", "--out", path(out)][..], extra].concat())
}

#[test]
fn arithmetic_writes_train_test_and_text_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("add");
    let flags = [
        "--n", "1000", "--digits", "3", "--ops", "+,-,*", "--seed", "5",
    ];
    let summary = stdout(&arithmetic(&out, &flags));
    let train = pairs(&read(&out, "train.jsonl"));
    let test = pairs(&read(&out, "test.jsonl"));
    assert_eq!(
        summary,
        format!(
            "wrote {} training and {} test problems ({} distinct of 1000 drawn) to {}\n",
            train.len(),
            test.len(),
            train.len() + test.len(),
            out.display()
        )
    );
    assert!(train.len() + test.len() > 950 && train.len() + test.len() <= 1000);
    let split = |i: usize| matches!(i % 10, 1 | 3 | 7);
    assert_eq!(
        test.len(),
        (0..train.len() + test.len()).filter(|&i| split(i)).count()
    );
    for (prompt, answer) in train.iter().chain(&test) {
        let body = prompt.strip_suffix('=').unwrap();
        let at = body.find(['+', '-', '*']).unwrap();
        let (a, b): (i64, i64) = (body[..at].parse().unwrap(), body[at + 1..].parse().unwrap());
        let want = match &body[at..=at] {
            "+" => a + b,
            "-" => a - b,
            _ => a * b,
        };
        assert_eq!(answer, &want.to_string(), "{prompt}");
    }
    let text: String = train
        .iter()
        .map(|(p, a)| format!("{p}{a}<|endoftext|>\n"))
        .collect();
    assert_eq!(read(&out, "train.txt"), text);
    let prompts: std::collections::HashSet<&String> = train.iter().map(|(p, _)| p).collect();
    assert!(test.iter().all(|(p, _)| !prompts.contains(p)));

    // The same flags give the same files; another seed does not.
    let again = dir.path().join("again");
    stdout(&arithmetic(&again, &flags));
    for name in ["train.jsonl", "test.jsonl", "train.txt"] {
        assert_eq!(read(&out, name), read(&again, name), "{name}");
    }
    let other = dir.path().join("other");
    stdout(&arithmetic(
        &other,
        &[&flags[..6], &["--seed", "6"]].concat(),
    ));
    assert_ne!(read(&out, "train.jsonl"), read(&other, "train.jsonl"));

    // Reversed answers: the same prompts, the digits turned around after the sign.
    let reversed = dir.path().join("reversed");
    stdout(&arithmetic(
        &reversed,
        &[&flags[..], &["--reverse"]].concat(),
    ));
    for ((p, a), (q, r)) in train.iter().zip(pairs(&read(&reversed, "train.jsonl"))) {
        assert_eq!(p, &q);
        let (sign, digits) = a.split_at(usize::from(a.starts_with('-')));
        assert_eq!(
            r,
            format!("{sign}{}", digits.chars().rev().collect::<String>())
        );
    }
}

#[test]
fn defaults_and_countdown_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("default");
    stdout(&arithmetic(&out, &["--n", "300"]));
    for (prompt, _) in pairs(&read(&out, "train.jsonl")) {
        assert!(!prompt.contains('*') && prompt.len() <= 6, "{prompt}");
    }
    let cd = dir.path().join("countdown");
    let args = [
        "synth",
        "countdown",
        "--out",
        path(&cd),
        "--n",
        "200",
        "--numbers",
        "3",
    ];
    let summary = stdout(&llm(&args));
    assert!(summary.contains("of 200 drawn"), "{summary}");
    let train = pairs(&read(&cd, "train.jsonl"));
    assert!(!train.is_empty() && !read(&cd, "test.jsonl").is_empty());
    for (prompt, answer) in &train {
        let (numbers, target) = prompt
            .strip_suffix('=')
            .unwrap()
            .split_once(" -> ")
            .unwrap();
        assert_eq!(numbers.split(' ').count(), 3, "{prompt}");
        assert!(target.parse::<u64>().is_ok(), "{prompt}");
        assert!(
            answer.chars().all(|c| "0123456789+-*()".contains(c)),
            "{answer}"
        );
    }
    assert!(read(&cd, "train.txt").ends_with("<|endoftext|>\n"));
}

#[test]
fn bad_flags_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    // Flag values clap rejects: usage errors (exit 2) that name the flag.
    for (flags, why) in [
        (&["--ops", "+,/"][..], "unknown operation `/`"),
        (&["--digits", "10"][..], "limit of 9"),
        (&["--digits", "0"][..], "at least 1"),
        (&["--n", "0"][..], "at least 1"),
    ] {
        let run = arithmetic(&out, flags);
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {err}");
        assert!(
            err.contains(flags[0]) && err.contains(why),
            "{flags:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let run = llm(&["synth", "countdown", "--out", path(&out), "--numbers", "5"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("`5` is not 3 or 4"));
    assert!(!out.exists(), "nothing written on a usage error");

    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    fails_with(&arithmetic(&file, &[]), "is a file, not a directory");
    stdout(&arithmetic(&out, &["--n", "50"]));
    fails_with(&arithmetic(&out, &["--n", "50"]), "pass --overwrite");
    stdout(&arithmetic(&out, &["--n", "60", "--overwrite"]));
    assert!(stdout(&arithmetic(&out, &["--n", "60", "--overwrite"])).contains("of 60 drawn"));
}
