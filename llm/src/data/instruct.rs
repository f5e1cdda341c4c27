//! Readers for fine-tuning data: instruction examples (`instruction`, `input`, `output`),
//! preference pairs (`prompt`, `chosen`, `rejected`) and labelled texts (`label<TAB>text`).
//!
//! JSON files may be one array of records or JSON Lines (one record per line); the first
//! non-blank character tells which. Fields beyond those named are ignored. Errors name the file
//! and the line.

use super::read_text;
use super::template::{Role, Turn};
use crate::error::json_message;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One instruction-tuning example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    /// What to do.
    pub instruction: String,
    /// What to do it to; may be empty (and may be absent in the file).
    #[serde(default)]
    pub input: String,
    /// The desired response.
    pub output: String,
}

/// The Alpaca prompt: a preamble, the instruction, the input if any, and the response header.
pub(crate) fn alpaca_prompt(instruction: &str, input: &str) -> String {
    let mut prompt = format!(
        "Below is an instruction that describes a task. Write a response that appropriately \
         completes the request.\n\n### Instruction:\n{instruction}"
    );
    if !input.is_empty() {
        prompt.push_str("\n\n### Input:\n");
        prompt.push_str(input);
    }
    prompt.push_str("\n\n### Response:\n");
    prompt
}

impl Instruction {
    /// The prompt in the Alpaca format, ending with the response header, so that
    /// `prompt() + output` is the whole training text:
    ///
    /// ```text
    /// Below is an instruction that describes a task. Write a response that appropriately completes the request.
    ///
    /// ### Instruction:
    /// {instruction}
    ///
    /// ### Input:
    /// {input}
    ///
    /// ### Response:
    /// ```
    ///
    /// The input section is left out when the input is empty.
    pub fn prompt(&self) -> String {
        alpaca_prompt(&self.instruction, &self.input)
    }
}

/// One preference pair: what the user asked and two responses, the first preferred.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawPreference")]
pub struct Preference {
    /// The user's turn; a template makes it the prompt that both responses follow.
    pub user: Turn,
    /// The preferred response.
    pub chosen: String,
    /// The other response.
    pub rejected: String,
}

/// The fields a preference record may have.
#[derive(Deserialize)]
struct RawPreference {
    prompt: Option<String>,
    instruction: Option<String>,
    #[serde(default)]
    input: String,
    chosen: String,
    rejected: String,
}

/// The marker that ends a prompt in HH-RLHF transcripts.
const ASSISTANT: &str = "\n\nAssistant:";

impl TryFrom<RawPreference> for Preference {
    type Error = String;

    /// The user's turn is the `prompt` field; else `instruction` with its `input`; else, for
    /// HH-RLHF transcripts, the text that `chosen` and `rejected` share up to and including
    /// the last `"\n\nAssistant:"` in it.
    fn try_from(raw: RawPreference) -> Result<Preference, String> {
        let user = match (raw.prompt, raw.instruction) {
            (Some(prompt), _) => Turn::new(Role::User, prompt),
            (None, Some(instruction)) => Turn {
                role: Role::User,
                content: instruction,
                input: raw.input,
            },
            (None, None) => {
                let shared = shared_prefix(&raw.chosen, &raw.rejected);
                let end = shared.rfind(ASSISTANT).ok_or(
                    "a preference record needs \"prompt\" or \"instruction\", or chosen and \
                     rejected transcripts that share a prompt ending in \"\\n\\nAssistant:\"",
                )? + ASSISTANT.len();
                return Ok(Preference {
                    user: Turn::new(Role::User, &raw.chosen[..end]),
                    chosen: raw.chosen[end..].to_string(),
                    rejected: raw.rejected[end..].to_string(),
                });
            }
        };
        Ok(Preference {
            user,
            chosen: raw.chosen,
            rejected: raw.rejected,
        })
    }
}

/// The longest common prefix of `a` and `b`, ending on a character boundary.
fn shared_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let n = (0..=n).rev().find(|&i| a.is_char_boundary(i)).unwrap_or(0);
    &a[..n]
}

/// Reads instruction examples from a JSON array or JSON Lines file.
pub fn read_instructions(path: &Path) -> Result<Vec<Instruction>> {
    read_records(path)
}

/// Reads preference pairs from a JSON array or JSON Lines file.
pub fn read_preferences(path: &Path) -> Result<Vec<Preference>> {
    read_records(path)
}

/// Records from a JSON array or a JSON Lines file.
pub(crate) fn read_records<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = read_text(path)?;
    let records = match text.trim_start().starts_with('[') {
        true => serde_json::from_str(&text).map_err(|e| Error::json(path, &e))?,
        false => text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| Error::parse(path, i + 1, json_message(&e)))
            })
            .collect::<Result<Vec<T>>>()?,
    };
    non_empty(path, records)
}

pub(crate) fn non_empty<T>(path: &Path, records: Vec<T>) -> Result<Vec<T>> {
    match records.is_empty() {
        true => Err(Error::Invalid(format!(
            "{} holds no records",
            path.display()
        ))),
        false => Ok(records),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::write;

    #[test]
    fn json_array_and_jsonl_read_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let array = write(
            dir.path(),
            "a.json",
            r#"[{"instruction": "Add", "input": "1 2", "output": "3", "extra": 1},
                {"instruction": "Greet", "output": "Hi"}]"#,
        );
        let lines = write(
            dir.path(),
            "a.jsonl",
            "{\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"}\n\n{\"instruction\": \"Greet\", \"input\": \"\", \"output\": \"Hi\"}\n",
        );
        let a = read_instructions(&array).unwrap();
        assert_eq!(a, read_instructions(&lines).unwrap());
        assert_eq!(a[1].input, "");
        assert_eq!(
            a[0].prompt() + &a[0].output,
            "Below is an instruction that describes a task. Write a response that appropriately \
             completes the request.\n\n### Instruction:\nAdd\n\n### Input:\n1 2\n\n### Response:\n3"
        );
        assert!(!a[1].prompt().contains("### Input:"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bad.jsonl",
            "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\"}\n",
        );
        let err = read_instructions(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("bad.jsonl, line 2: missing field `output` (column 20)"),
            "{err}"
        );
        let path = write(
            dir.path(),
            "bad.json",
            "[\n{\"prompt\": \"p\", \"chosen\": \"c\"}\n]",
        );
        let err = read_preferences(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.json, line 2: missing field `rejected`"),
            "{err}"
        );
        let path = write(dir.path(), "empty.json", "[]");
        assert!(read_instructions(&path)
            .unwrap_err()
            .to_string()
            .ends_with("holds no records"));
    }

    #[test]
    fn preference_prompts_from_each_record_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "p.jsonl",
            concat!(
                "{\"prompt\": \"Q\", \"chosen\": \"good\", \"rejected\": \"bad\"}\n",
                "{\"instruction\": \"Be nice\", \"input\": \"\", \"output\": \"x\", \"chosen\": \"Sure!\", \"rejected\": \"No.\"}\n",
                "{\"chosen\": \"\\n\\nHuman: hi\\n\\nAssistant: hello\", \"rejected\": \"\\n\\nHuman: hi\\n\\nAssistant: go away\"}\n",
            ),
        );
        let p = read_preferences(&path).unwrap();
        assert_eq!(
            (&p[0].user, p[0].chosen.as_str()),
            (&Turn::new(Role::User, "Q"), "good")
        );
        assert_eq!(
            (p[1].user.content.as_str(), p[1].user.input.as_str()),
            ("Be nice", "")
        );
        assert_eq!(p[1].chosen, "Sure!");
        assert_eq!(p[2].user.content, "\n\nHuman: hi\n\nAssistant:");
        assert_eq!(
            (p[2].chosen.as_str(), p[2].rejected.as_str()),
            (" hello", " go away")
        );
        let path = write(
            dir.path(),
            "q.jsonl",
            "{\"chosen\": \"a\", \"rejected\": \"b\"}\n",
        );
        let err = read_preferences(&path).unwrap_err().to_string();
        assert!(
            err.contains("q.jsonl, line 1: a preference record needs"),
            "{err}"
        );
    }
}
