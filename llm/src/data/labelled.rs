//! Labelled texts for classification: reading them, and splitting them as the spam chapter of
//! *Build a Large Language Model (From Scratch)* does, so that accuracies compare.
//!
//! Three file shapes are read:
//! - `label<TAB>text` lines, as the SMS Spam Collection (`ham\tGo until jurong point...`);
//! - a TSV with a header naming a `label` column and a `sentence` or `text` column, as GLUE's
//!   SST-2 (`sentence\tlabel`);
//! - JSON Lines of `{"text": .., "label": ..}` (the label a string or a number).
//!
//! Blank lines are skipped; anything else that does not parse is an error naming the line.

use super::instruct::{non_empty, read_records};
use crate::data::read_text;
use crate::{Error, Result};
use std::path::Path;
use tensor::Rng;

/// A text with a class label.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Labelled {
    /// The class, as written in the file (e.g. `ham` or `spam`, `0` or `1`).
    pub label: String,
    /// The text.
    pub text: String,
}

/// A JSON Lines record, whose label may be a string or a number.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    text: String,
    label: serde_json::Value,
}

/// Reads labelled texts in any of the shapes of the module documentation.
pub fn read_labelled(path: &Path) -> Result<Vec<Labelled>> {
    let text = read_text(path)?;
    if text.trim_start().starts_with('{') {
        return read_records::<Record>(path)?
            .into_iter()
            .map(|r| {
                let label = match r.label {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    other => {
                        return Err(Error::Invalid(format!(
                            "{}: a label must be a string or a number, not {other}",
                            path.display()
                        )))
                    }
                };
                Ok(Labelled {
                    label,
                    text: r.text,
                })
            })
            .collect();
    }
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.clone().next() else {
        return non_empty(path, vec![]);
    };
    let (label_col, text_col, skip) = columns(first);
    let mut out = vec![];
    for (i, line) in lines.by_ref().skip(skip) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(label), Some(text)) = (fields.get(label_col), fields.get(text_col)) else {
            return Err(Error::parse(
                path,
                i + 1,
                "expected a label and a text separated by a tab",
            ));
        };
        out.push(Labelled {
            label: label.trim().to_string(),
            text: text.trim().to_string(),
        });
    }
    non_empty(path, out)
}

/// The label and text columns and the header lines to skip, from the first line: a header
/// naming `label` and `sentence` or `text` gives their columns; anything else is
/// `label<TAB>text` with no header.
fn columns(first: &str) -> (usize, usize, usize) {
    let names: Vec<&str> = first.split('\t').map(str::trim).collect();
    let label = names.iter().position(|&n| n == "label");
    let text = names.iter().position(|&n| n == "sentence" || n == "text");
    match (label, text) {
        (Some(l), Some(t)) => (l, t, 1),
        _ => (0, 1, 0),
    }
}

/// The labels of `examples`, sorted: class `k` is `labels[k]`. An error unless there are at
/// least two.
pub fn labels_of(examples: &[Labelled], path: &Path) -> Result<Vec<String>> {
    let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    match labels.len() {
        0 | 1 => Err(Error::Invalid(format!(
            "{} has {} class{} ({}); a classifier needs at least two",
            path.display(),
            labels.len(),
            if labels.len() == 1 { "" } else { "es" },
            labels.join(", ")
        ))),
        _ => Ok(labels),
    }
}

/// A split into training, validation and test examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The training examples.
    pub train: Vec<Labelled>,
    /// The validation examples.
    pub val: Vec<Labelled>,
    /// The test examples.
    pub test: Vec<Labelled>,
}

/// The split of the spam chapter: with `balance`, every class cut down to the size of the
/// smallest by a seeded random choice; then all examples shuffled (seeded) and cut 70% / 10% /
/// 20% into training, validation and test.
pub fn split(examples: Vec<Labelled>, balance: bool, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    let mut pool = examples;
    if balance {
        pool = balanced(pool, &mut rng);
    }
    shuffle(&mut pool, &mut rng);
    let n = pool.len();
    let (n_train, n_val) = (n * 7 / 10, n / 10);
    let test = pool.split_off(n_train + n_val);
    let val = pool.split_off(n_train);
    Split {
        train: pool,
        val,
        test,
    }
}

/// Every class cut to the size of the smallest, by a random choice within each class; the
/// result keeps the classes in order of their first example.
fn balanced(examples: Vec<Labelled>, rng: &mut Rng) -> Vec<Labelled> {
    let mut classes: Vec<(String, Vec<Labelled>)> = vec![];
    for e in examples {
        match classes.iter_mut().find(|(l, _)| *l == e.label) {
            Some((_, members)) => members.push(e),
            None => classes.push((e.label.clone(), vec![e])),
        }
    }
    let smallest = classes.iter().map(|(_, m)| m.len()).min().unwrap_or(0);
    let mut out = vec![];
    for (_, mut members) in classes {
        shuffle(&mut members, rng);
        members.truncate(smallest);
        out.extend(members);
    }
    out
}

/// A Fisher-Yates shuffle drawn from `rng`.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// Writes labelled examples as `label<TAB>text` lines (tabs and newlines inside a text become
/// spaces), the first shape [`read_labelled`] reads.
pub fn to_tsv(examples: &[Labelled]) -> String {
    examples
        .iter()
        .map(|e| {
            let clean: String = e
                .text
                .chars()
                .map(|c| {
                    if c == '\t' || c == '\n' || c == '\r' {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            format!("{}\t{clean}\n", e.label)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::write;

    fn example(label: &str, text: &str) -> Labelled {
        Labelled {
            label: label.into(),
            text: text.into(),
        }
    }

    #[test]
    fn every_shape_reads_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let spam = write(dir.path(), "s.tsv", "ham\tsee you\n\nspam\tWIN now\n");
        assert_eq!(
            read_labelled(&spam).unwrap(),
            [example("ham", "see you"), example("spam", "WIN now")]
        );
        let sst = write(
            dir.path(),
            "d.tsv",
            "sentence\tlabel\nit 's great \t1\nawful \t0\n",
        );
        assert_eq!(
            read_labelled(&sst).unwrap(),
            [example("1", "it 's great"), example("0", "awful")]
        );
        let jsonl = write(
            dir.path(),
            "j.jsonl",
            "{\"text\": \"fine\", \"label\": 1}\n{\"text\": \"bad\", \"label\": \"neg\"}\n",
        );
        assert_eq!(
            read_labelled(&jsonl).unwrap(),
            [example("1", "fine"), example("neg", "bad")]
        );
        let bad = write(dir.path(), "bad.tsv", "ham\tok\nno tab here\n");
        let err = read_labelled(&bad).unwrap_err().to_string();
        assert!(
            err.ends_with("bad.tsv, line 2: expected a label and a text separated by a tab"),
            "{err}"
        );
        let empty = write(dir.path(), "empty.tsv", "\n\n");
        assert!(read_labelled(&empty)
            .unwrap_err()
            .to_string()
            .ends_with("holds no records"));
        let one = [example("ham", "a"), example("ham", "b")];
        let err = labels_of(&one, &bad).unwrap_err().to_string();
        assert!(err.contains("has 1 class (ham)"), "{err}");
        let tsv = to_tsv(&[example("ham", "two\tcells\nand lines")]);
        assert_eq!(tsv, "ham\ttwo cells and lines\n");
    }

    #[test]
    fn the_split_balances_shuffles_and_cuts_70_10_20_the_same_for_a_seed() {
        let mut examples = vec![];
        for i in 0..100 {
            examples.push(example("ham", &format!("h{i}")));
        }
        for i in 0..30 {
            examples.push(example("spam", &format!("s{i}")));
        }
        let s = split(examples.clone(), true, 123);
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (42, 6, 12));
        let all: Vec<&Labelled> = s.train.iter().chain(&s.val).chain(&s.test).collect();
        assert_eq!(all.iter().filter(|e| e.label == "spam").count(), 30);
        let mut texts: Vec<&str> = all.iter().map(|e| e.text.as_str()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), 60, "no example twice");
        assert_eq!(split(examples.clone(), true, 123), s);
        assert_ne!(split(examples.clone(), true, 124), s);
        let unbalanced = split(examples, false, 1);
        assert_eq!(
            unbalanced.train.len() + unbalanced.val.len() + unbalanced.test.len(),
            130
        );
    }
}
