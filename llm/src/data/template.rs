//! Conversations for supervised fine-tuning, and the templates that turn them into text.
//!
//! Three kinds of record are read (JSON array or JSON Lines, see [`super::instruct`]):
//!
//! - an instruction: `{"instruction", "input" (may be empty or absent), "output"}`, the Alpaca
//!   style of `instruction-data.json`;
//! - a prompt and its response: `{"prompt", "response"}` (or `"answer"`, as `llm synth`
//!   writes);
//! - a chat: `{"messages": [{"role": "system" | "user" | "assistant", "content"}, ...]}`.
//!
//! Each becomes a [`Conversation`]: turns with a role. A [`Template`] renders one as pieces of
//! text, each marked as a target or not: the assistant's replies and the end marker that closes
//! each are targets (what the model learns to write, and how it learns to stop); everything
//! else is context.
//!
//! | template | one exchange rendered | end marker |
//! | --- | --- | --- |
//! | `plain` | `{prompt}{response}{end}` | the tokenizer's `<\|endoftext\|>`, or a newline |
//! | `alpaca` | the Alpaca prompt (preamble, `### Instruction:`, `### Input:` when there is one, `### Response:`), then `{output}{end}` | `<\|endoftext\|>` |
//! | `chat` | `<\|user\|>{content}<\|end\|><\|assistant\|>{content}<\|end\|>` (and `<\|system\|>...<\|end\|>` first, when there is a system turn) | `<\|end\|>` |
//!
//! `plain` and `alpaca` take one exchange (an optional system turn, one user turn, one reply);
//! `chat` takes any number of turns.

use super::instruct::{alpaca_prompt, read_records};
use crate::tokenizer::ENDOFTEXT;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// Who speaks a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person.
    User,
    /// The model: its turns are what fine-tuning teaches.
    Assistant,
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// Who speaks.
    pub role: Role,
    /// What is said (an instruction, for a user turn read from an instruction record).
    pub content: String,
    /// The instruction's input, for a user turn read from an instruction record; else empty.
    pub input: String,
}

impl Turn {
    /// A turn without an input.
    pub fn new(role: Role, content: impl Into<String>) -> Turn {
        Turn {
            role,
            content: content.into(),
            input: String::new(),
        }
    }

    /// The content with the input, if any, after a blank line.
    fn full_content(&self) -> String {
        match self.input.is_empty() {
            true => self.content.clone(),
            false => format!("{}\n\n{}", self.content, self.input),
        }
    }
}

/// A conversation: turns in order.
pub type Conversation = Vec<Turn>;

/// The kind of records a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"instruction", "input", "output"}`.
    Instruction,
    /// `{"prompt", "response"}`.
    PromptResponse,
    /// `{"messages": [...]}`.
    Chat,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Record {
    Chat {
        messages: Vec<Message>,
    },
    Instruction {
        instruction: String,
        #[serde(default)]
        input: String,
        output: String,
    },
    Pair {
        prompt: String,
        #[serde(alias = "answer")]
        response: String,
    },
}

#[derive(Deserialize)]
struct Message {
    role: Role,
    content: String,
}

impl Record {
    fn format(&self) -> Format {
        match self {
            Record::Chat { .. } => Format::Chat,
            Record::Instruction { .. } => Format::Instruction,
            Record::Pair { .. } => Format::PromptResponse,
        }
    }

    fn into_conversation(self) -> Conversation {
        match self {
            Record::Chat { messages } => messages
                .into_iter()
                .map(|m| Turn::new(m.role, m.content))
                .collect(),
            Record::Instruction {
                instruction,
                input,
                output,
            } => vec![
                Turn {
                    role: Role::User,
                    content: instruction,
                    input,
                },
                Turn::new(Role::Assistant, output),
            ],
            Record::Pair { prompt, response } => vec![
                Turn::new(Role::User, prompt),
                Turn::new(Role::Assistant, response),
            ],
        }
    }
}

/// The conversations of a file and its format (every record must be of one kind).
pub fn read_conversations(path: &Path) -> Result<(Vec<Conversation>, Format)> {
    let records: Vec<Record> = read_records(path)?;
    let format = records[0].format();
    if let Some(i) = records.iter().position(|r| r.format() != format) {
        return Err(Error::Invalid(format!(
            "{}: record {} is a {:?} record, but the first is a {format:?} record",
            path.display(),
            i + 1,
            records[i].format()
        )));
    }
    let conversations: Vec<Conversation> =
        records.into_iter().map(Record::into_conversation).collect();
    if let Some(i) = conversations
        .iter()
        .position(|c| !c.iter().any(|t| t.role == Role::Assistant))
    {
        return Err(Error::Invalid(format!(
            "{}: conversation {} has no assistant turn to learn",
            path.display(),
            i + 1
        )));
    }
    Ok((conversations, format))
}

/// The chat template's special tokens.
pub const SYSTEM: &str = "<|system|>";
/// Opens a user turn.
pub const USER: &str = "<|user|>";
/// Opens an assistant turn.
pub const ASSISTANT: &str = "<|assistant|>";
/// Closes every turn.
pub const END: &str = "<|end|>";

/// A piece of rendered text and whether its tokens are targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The text.
    pub text: String,
    /// True for a reply and the end marker that closes it.
    pub target: bool,
}

impl Piece {
    /// A piece of `text`, a target or not.
    pub fn new(text: impl Into<String>, target: bool) -> Piece {
        Piece {
            text: text.into(),
            target,
        }
    }
}

/// How conversations become text (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// The prompt and the response as they are.
    Plain,
    /// The Alpaca prompt of LLMs-from-scratch chapter 7.
    Alpaca,
    /// Role markers as special tokens, any number of turns.
    Chat,
}

impl Template {
    /// The template a name stands for: `plain`, `alpaca` or `chat`.
    pub fn parse(name: &str) -> Result<Template> {
        match name {
            "plain" => Ok(Template::Plain),
            "alpaca" => Ok(Template::Alpaca),
            "chat" => Ok(Template::Chat),
            _ => Err(Error::Invalid(format!(
                "unknown template {name:?}; expected plain, alpaca or chat"
            ))),
        }
    }

    /// The template's name.
    pub fn name(&self) -> &'static str {
        match self {
            Template::Plain => "plain",
            Template::Alpaca => "alpaca",
            Template::Chat => "chat",
        }
    }

    /// The template for a format when none is asked for: `alpaca` for instruction records,
    /// `chat` for chats, `plain` for prompt/response pairs.
    pub fn for_format(format: Format) -> Template {
        match format {
            Format::Instruction => Template::Alpaca,
            Format::Chat => Template::Chat,
            Format::PromptResponse => Template::Plain,
        }
    }

    /// The special tokens the template writes, which a tokenizer must have (they are added to
    /// one that lacks them).
    pub fn special_tokens(&self) -> &'static [&'static str] {
        match self {
            Template::Plain => &[],
            Template::Alpaca => &[ENDOFTEXT],
            Template::Chat => &[SYSTEM, USER, ASSISTANT, END],
        }
    }

    /// `conversation` as pieces, ending with the last reply and its end marker `end` (the
    /// `plain` template's marker depends on the tokenizer, so the caller gives it). Markers
    /// are pieces of their own, so that encoding pieces one by one never merges a marker
    /// with the text beside it.
    pub fn render(&self, conversation: &[Turn], end: &str) -> Result<Vec<Piece>> {
        match self {
            Template::Chat => Ok(conversation
                .iter()
                .flat_map(|t| {
                    let reply = t.role == Role::Assistant;
                    [
                        Piece::new(marker(t.role), false),
                        Piece::new(t.full_content(), reply),
                        Piece::new(END, reply),
                    ]
                })
                .collect()),
            Template::Plain | Template::Alpaca => {
                let (context, reply) = self.one_exchange(conversation)?;
                Ok(vec![
                    Piece::new(self.prompt(context)?, false),
                    Piece::new(reply.content.clone(), true),
                    Piece::new(end, true),
                ])
            }
        }
    }

    /// The text that asks for the next reply after `context`, which ends with a user turn:
    /// everything the model reads before it writes.
    pub fn prompt(&self, context: &[Turn]) -> Result<String> {
        if context.last().map(|t| t.role) != Some(Role::User) {
            return Err(Error::Invalid(
                "a prompt for a reply must end with a user turn".into(),
            ));
        }
        if *self != Template::Chat && context.len() > 2 {
            return Err(self.single_exchange_error());
        }
        let user = context.last().expect("checked above");
        let system = context.iter().find(|t| t.role == Role::System);
        Ok(match self {
            Template::Chat => {
                let mut text: String = context
                    .iter()
                    .map(|t| format!("{}{}{END}", marker(t.role), t.full_content()))
                    .collect();
                text.push_str(ASSISTANT);
                text
            }
            Template::Alpaca => {
                let instruction = match system {
                    Some(s) => format!("{}\n\n{}", s.content, user.content),
                    None => user.content.clone(),
                };
                alpaca_prompt(&instruction, &user.input)
            }
            Template::Plain => {
                let framing = system.map_or(String::new(), |s| format!("{}\n", s.content));
                framing + &user.full_content()
            }
        })
    }

    /// The turns before the reply, and the reply, of a one-exchange conversation.
    fn one_exchange<'a>(&self, conversation: &'a [Turn]) -> Result<(&'a [Turn], &'a Turn)> {
        let roles: Vec<Role> = conversation.iter().map(|t| t.role).collect();
        let fits = matches!(
            roles.as_slice(),
            [Role::User, Role::Assistant] | [Role::System, Role::User, Role::Assistant]
        );
        match fits {
            true => Ok(conversation.split_at(conversation.len() - 1)).map(|(c, r)| (c, &r[0])),
            false => Err(self.single_exchange_error()),
        }
    }

    fn single_exchange_error(&self) -> Error {
        Error::Invalid(format!(
            "the {} template takes one exchange (an optional system turn, a user turn and the \
             reply); use --template chat for conversations of more turns",
            self.name()
        ))
    }
}

/// The chat marker that opens a turn of `role`.
fn marker(role: Role) -> &'static str {
    match role {
        Role::System => SYSTEM,
        Role::User => USER,
        Role::Assistant => ASSISTANT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::write;

    #[test]
    fn the_three_record_kinds_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let inst = write(
            dir.path(),
            "i.json",
            r#"[{"instruction": "Add", "input": "1 2", "output": "3"}]"#,
        );
        let (c, f) = read_conversations(&inst).unwrap();
        assert_eq!(f, Format::Instruction);
        assert_eq!(
            (c[0][0].content.as_str(), c[0][0].input.as_str()),
            ("Add", "1 2")
        );
        let pairs = write(
            dir.path(),
            "p.jsonl",
            "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n",
        );
        let (c, f) = read_conversations(&pairs).unwrap();
        assert_eq!((f, c[0][1].content.as_str()), (Format::PromptResponse, "2"));
        let chat = write(
            dir.path(),
            "c.jsonl",
            r#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#,
        );
        let (c, f) = read_conversations(&chat).unwrap();
        assert_eq!((f, c[0].len()), (Format::Chat, 2));
        let mixed = write(
            dir.path(),
            "m.jsonl",
            "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"instruction\": \"a\", \"output\": \"b\"}\n",
        );
        let err = read_conversations(&mixed).unwrap_err().to_string();
        assert!(err.contains("record 2"), "{err}");
        let mute = write(
            dir.path(),
            "n.jsonl",
            r#"{"messages": [{"role": "user", "content": "Hi"}]}"#,
        );
        assert!(read_conversations(&mute).is_err());
    }

    fn exchange() -> Conversation {
        vec![
            Turn {
                role: Role::User,
                content: "Add".into(),
                input: "1 2".into(),
            },
            Turn::new(Role::Assistant, "3"),
        ]
    }

    #[test]
    fn each_template_marks_the_reply_and_its_end_as_targets() {
        let plain = Template::Plain.render(&exchange(), "\n").unwrap();
        assert_eq!(
            plain,
            [
                Piece::new("Add\n\n1 2", false),
                Piece::new("3", true),
                Piece::new("\n", true)
            ]
        );
        let alpaca = Template::Alpaca.render(&exchange(), ENDOFTEXT).unwrap();
        assert_eq!(alpaca.len(), 3);
        assert!(alpaca[0]
            .text
            .ends_with("### Input:\n1 2\n\n### Response:\n"));
        assert_eq!(
            alpaca[1..],
            [Piece::new("3", true), Piece::new(ENDOFTEXT, true)]
        );
        let chat = Template::Chat.render(&exchange(), END).unwrap();
        assert_eq!(
            chat,
            [
                Piece::new(USER, false),
                Piece::new("Add\n\n1 2", false),
                Piece::new(END, false),
                Piece::new(ASSISTANT, false),
                Piece::new("3", true),
                Piece::new(END, true),
            ]
        );
    }

    #[test]
    fn chat_takes_many_turns_and_the_others_one_exchange() {
        let mut talk = vec![Turn::new(Role::System, "Be brief.")];
        talk.extend(exchange());
        talk.push(Turn::new(Role::User, "Again"));
        talk.push(Turn::new(Role::Assistant, "3"));
        let chat = Template::Chat.render(&talk, END).unwrap();
        let targets: Vec<&str> = chat
            .iter()
            .filter(|p| p.target)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(targets, ["3", END, "3", END]);
        assert!(Template::Alpaca.render(&talk, ENDOFTEXT).is_err());
        let prompt = Template::Chat.prompt(&talk[..4]).unwrap();
        assert_eq!(
            prompt,
            "<|system|>Be brief.<|end|><|user|>Add\n\n1 2<|end|><|assistant|>3<|end|>\
             <|user|>Again<|end|><|assistant|>"
        );
        let alpaca = Template::Alpaca.prompt(&talk[..2]).unwrap();
        assert!(alpaca.contains("### Instruction:\nBe brief.\n\nAdd\n\n### Input:\n1 2"));
        assert!(
            Template::Plain.prompt(&talk[..1]).is_err(),
            "no user turn last"
        );
    }
}
