//! Synthetic tasks whose answers a program checks: problems to train a small model on, and
//! verifiers that score what a model writes.
//!
//! Two tasks are here: [`arithmetic`] (`37+45=` → `82`) and [`countdown`] (reach a target
//! from given numbers: `3 7 25 -> 46=` → `25+3*7`).
//!
//! # Files
//!
//! Problems are stored as JSON Lines, one problem per line, in this shape:
//!
//! ```text
//! {"prompt": "37+45=", "answer": "82"}
//! ```
//!
//! Both fields are strings and both are required; other fields are errors, and so is an empty
//! prompt. Blank lines are skipped. [`read_jsonl`] names the file and line of any fault;
//! [`write_jsonl`] writes atomically (a temporary file renamed into place).
//!
//! # Train and test
//!
//! A generator returns its problems in generation order with repeated prompts dropped (the
//! first occurrence kept), so no prompt appears twice. Problem `i` of that list, counting from
//! 0, is a test problem when `i % 10` is 1, 3 or 7 ([`is_test`]), and a training problem
//! otherwise: 70% train, 30% test, and since every prompt is listed once, no test prompt is
//! also a training prompt. The rule depends on the index alone, so a larger set drawn with the
//! same seed extends the smaller one's splits without moving any problem between them.
//!
//! # Scoring
//!
//! A [`Verifier`] scores a model's raw output, the text it wrote after the prompt: only the
//! part before the first newline or `<|endoftext|>` counts, trimmed ([`answer_text`]). A score
//! is in `[0, 1]`, and 1 means fully right.

pub mod arithmetic;
pub mod countdown;

use crate::data::read_text;
use crate::error::json_message;
use crate::tokenizer::ENDOFTEXT;
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// One problem: the text a model is given and the reference answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// What the model is given, e.g. `37+45=`.
    pub prompt: String,
    /// The reference answer, e.g. `82`; what follows the prompt in training text.
    pub answer: String,
}

impl Problem {
    /// A problem from its prompt and answer.
    pub fn new(prompt: impl Into<String>, answer: impl Into<String>) -> Problem {
        Problem {
            prompt: prompt.into(),
            answer: answer.into(),
        }
    }
}

/// Whether problem `i` is held out for testing: `i` is the problem's index, from 0, in
/// generation order (the order a generator returns, repeats removed). True when `i % 10` is 1,
/// 3 or 7: 30% of the problems.
pub fn is_test(i: usize) -> bool {
    matches!(i % 10, 1 | 3 | 7)
}

/// The training and test problems of `problems` (given in generation order), by [`is_test`].
pub fn split(problems: &[Problem]) -> (Vec<Problem>, Vec<Problem>) {
    let (mut train, mut test) = (vec![], vec![]);
    for (i, p) in problems.iter().enumerate() {
        match is_test(i) {
            true => test.push(p.clone()),
            false => train.push(p.clone()),
        }
    }
    (train, test)
}

/// `problems` without the later repeats of a prompt: each prompt's first problem is kept, in
/// order.
pub fn dedupe(problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = HashSet::new();
    problems
        .into_iter()
        .filter(|p| seen.insert(p.prompt.clone()))
        .collect()
}

/// Reads problems from a JSON Lines file (see the module documentation). An error names the
/// file and line of bad JSON, a missing or unknown field, or an empty prompt; a file with no
/// problems is an error too.
pub fn read_jsonl(path: &Path) -> Result<Vec<Problem>> {
    read_lines(path, |p: &Problem| p.prompt.as_str())
}

/// Reads prompts for a scorer that needs no answer: the lines of [`read_jsonl`], in which the
/// answer may be left out (it is then empty).
pub fn read_prompts(path: &Path) -> Result<Vec<Problem>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Prompt {
        prompt: String,
        #[serde(default)]
        answer: String,
    }
    let lines = read_lines(path, |p: &Prompt| p.prompt.as_str())?;
    Ok(lines
        .into_iter()
        .map(|p| Problem::new(p.prompt, p.answer))
        .collect())
}

/// The records of a JSON Lines file, blank lines skipped; bad JSON or an empty prompt (as
/// `prompt` reads it) is an error naming the line, and so is a file with none.
fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    prompt: impl Fn(&T) -> &str,
) -> Result<Vec<T>> {
    let text = read_text(path)?;
    let mut records = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: T =
            serde_json::from_str(line).map_err(|e| Error::parse(path, i + 1, json_message(&e)))?;
        if prompt(&record).is_empty() {
            return Err(Error::parse(path, i + 1, "the prompt is empty"));
        }
        records.push(record);
    }
    match records.is_empty() {
        true => Err(Error::Invalid(format!(
            "{} holds no problems",
            path.display()
        ))),
        false => Ok(records),
    }
}

/// The JSON Lines text of `problems`, one `{"prompt": .., "answer": ..}` line each.
pub fn to_jsonl(problems: &[Problem]) -> String {
    let mut out = String::new();
    for p in problems {
        let prompt = serde_json::to_string(&p.prompt).expect("a string serializes");
        let answer = serde_json::to_string(&p.answer).expect("a string serializes");
        out.push_str(&format!("{{\"prompt\": {prompt}, \"answer\": {answer}}}\n"));
    }
    out
}

/// Writes `problems` to `path` as JSON Lines, atomically (the directory must exist).
pub fn write_jsonl(path: &Path, problems: &[Problem]) -> Result<()> {
    crate::run::write_atomically(path, to_jsonl(problems).as_bytes())
}

/// The answer in a model's raw output: the text before the first newline or `<|endoftext|>`,
/// trimmed.
pub fn answer_text(output: &str) -> &str {
    let end = [output.find('\n'), output.find(ENDOFTEXT)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(output.len());
    output[..end].trim()
}

/// The token that closes an answer: the tokenizer's end-of-text token, or else a newline when
/// it is one token (a character vocabulary that holds it); `None` otherwise.
pub fn end_token(tok: &dyn crate::tokenizer::Tokenizer) -> Option<u32> {
    tok.eot_token()
        .or_else(|| match tok.encode("\n").ok()?.as_slice() {
            [id] => Some(*id),
            _ => None,
        })
}

/// Scores a model's output for a problem.
pub trait Verifier {
    /// The score in `[0, 1]` of `output`, the raw text a model wrote after `problem.prompt`
    /// (see [`answer_text`]); 1 for a fully right answer.
    fn score(&self, problem: &Problem, output: &str) -> f64;
}

/// A task, as a verifier for its problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// [`arithmetic`]: exact match of the answer.
    Arithmetic,
    /// [`countdown`]: any expression that reaches the target, with partial credit.
    Countdown,
}

impl Task {
    /// The task's name: `arithmetic` or `countdown`.
    pub fn name(self) -> &'static str {
        match self {
            Task::Arithmetic => "arithmetic",
            Task::Countdown => "countdown",
        }
    }
}

impl std::str::FromStr for Task {
    type Err = Error;

    fn from_str(s: &str) -> Result<Task> {
        match s {
            "arithmetic" => Ok(Task::Arithmetic),
            "countdown" => Ok(Task::Countdown),
            _ => Err(Error::Invalid(format!(
                "unknown task `{s}`: expected arithmetic or countdown"
            ))),
        }
    }
}

impl Verifier for Task {
    fn score(&self, problem: &Problem, output: &str) -> f64 {
        match self {
            Task::Arithmetic => arithmetic::score(problem, output),
            Task::Countdown => countdown::score(problem, output),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::write;

    #[test]
    fn the_split_rule_holds_out_1_3_and_7_of_every_10() {
        let test: Vec<usize> = (0..20).filter(|&i| is_test(i)).collect();
        assert_eq!(test, [1, 3, 7, 11, 13, 17]);
        let problems: Vec<Problem> = (0..25).map(|i| Problem::new(format!("{i}="), "")).collect();
        let (train, test) = split(&problems);
        assert_eq!((train.len(), test.len()), (17, 8));
        assert_eq!(test[0].prompt, "1=");
        assert_eq!(train[1].prompt, "2=");
    }

    #[test]
    fn dedupe_keeps_the_first_of_each_prompt() {
        let problems = vec![
            Problem::new("a", "1"),
            Problem::new("b", "2"),
            Problem::new("a", "3"),
            Problem::new("c", "4"),
        ];
        assert_eq!(
            dedupe(problems),
            [
                Problem::new("a", "1"),
                Problem::new("b", "2"),
                Problem::new("c", "4")
            ]
        );
    }

    #[test]
    fn jsonl_round_trips_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let problems = vec![
            Problem::new("37+45=", "82"),
            Problem::new("say \"hi\"\t", "ok"),
        ];
        let path = dir.path().join("p.jsonl");
        write_jsonl(&path, &problems).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\"prompt\": \"37+45=\", \"answer\": \"82\"}\n"),
            "{text}"
        );
        assert_eq!(read_jsonl(&path).unwrap(), problems);

        let cases = [
            (
                "json.jsonl",
                "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n\n{oops\n",
                3,
                "",
            ),
            (
                "missing.jsonl",
                "{\"prompt\": \"1+1=\"}\n",
                1,
                "missing field `answer`",
            ),
            (
                "unknown.jsonl",
                "{\"prompt\": \"1=\", \"answer\": \"1\", \"x\": 1}\n",
                1,
                "unknown field `x`",
            ),
            (
                "empty.jsonl",
                "{\"prompt\": \"\", \"answer\": \"2\"}\n",
                1,
                "the prompt is empty",
            ),
        ];
        for (name, text, line, want) in cases {
            let path = write(dir.path(), name, text);
            let err = read_jsonl(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("{name}, line {line}: ")), "{err}");
            assert!(err.contains(want), "{err}");
        }
        let blank = write(dir.path(), "blank.jsonl", "\n \n");
        let err = read_jsonl(&blank).unwrap_err().to_string();
        assert!(err.ends_with("blank.jsonl holds no problems"), "{err}");
        let err = read_jsonl(&dir.path().join("absent.jsonl")).unwrap_err();
        assert!(err.to_string().contains("absent.jsonl"), "{err}");
    }

    #[test]
    fn prompts_for_a_model_scorer_need_no_answer() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"prompt\": \"She was\"}\n{\"prompt\": \"1=\", \"answer\": \"1\"}\n";
        let path = write(dir.path(), "p.jsonl", text);
        let prompts = read_prompts(&path).unwrap();
        assert_eq!(
            prompts,
            [Problem::new("She was", ""), Problem::new("1=", "1")]
        );
        assert!(read_jsonl(&path).is_err(), "a task needs its answers");
        let path = write(dir.path(), "e.jsonl", "{\"prompt\": \"\"}\n");
        let err = read_prompts(&path).unwrap_err().to_string();
        assert!(
            err.contains("e.jsonl, line 1: the prompt is empty"),
            "{err}"
        );
        let path = write(dir.path(), "u.jsonl", "{\"prompt\": \"a\", \"x\": 1}\n");
        let err = read_prompts(&path).unwrap_err().to_string();
        assert!(err.contains("unknown field `x`"), "{err}");
    }

    #[test]
    fn the_answer_ends_at_a_newline_or_end_of_text() {
        assert_eq!(answer_text(" 82 \n37+1=38"), "82");
        assert_eq!(answer_text("82<|endoftext|>\n1"), "82");
        assert_eq!(answer_text("8<|endoftext|>2\n"), "8");
        assert_eq!(answer_text("82"), "82");
        assert_eq!(answer_text("\n82"), "");
    }

    #[test]
    fn tasks_parse_and_score() {
        let task: Task = "arithmetic".parse().unwrap();
        assert_eq!(task, Task::Arithmetic);
        assert_eq!(task.score(&Problem::new("37+45=", "82"), "82\n"), 1.0);
        assert_eq!(task.score(&Problem::new("37+45=", "82"), "83\n"), 0.0);
        let task: Task = "countdown".parse().unwrap();
        assert_eq!(task.name(), "countdown");
        let p = Problem::new("3 7 25 -> 46=", "25+3*7");
        assert_eq!(task.score(&p, "7*3+25"), 1.0);
        let err = "chess".parse::<Task>().unwrap_err().to_string();
        assert!(err.contains("unknown task `chess`"), "{err}");
    }
}
