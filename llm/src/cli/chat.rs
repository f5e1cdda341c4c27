//! `llm chat`: talk with a fine-tuned model, one line per message.

use super::sample::{stream, DrawFlags, Style};
use llm::data::template::{Role, Template, Turn};
use llm::generate::Generation;
use llm::model::Model;
use llm::tokenizer::Tokenizer;
use llm::{Error, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// Talk with a model, one line per message
///
/// Reads messages from standard input, one per line, and writes each reply to standard output
/// as it is generated, followed by a newline (a pipe works as well as a terminal). The
/// conversation is kept in the fine-tuning run's template (`llm sft`): with `chat`, every
/// earlier turn is in the prompt, and when they no longer fit in the context beside room for
/// the reply, the oldest exchanges are dropped; `alpaca` and `plain` see one message at a
/// time. `/reset` starts a new conversation; `/quit` or the end of the input ends it.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (one written by `llm sft` knows its template and end token).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// plain, alpaca or chat [default: the fine-tuning run's template].
    #[arg(long, value_name = "NAME")]
    template: Option<String>,
    /// A system message that opens every conversation.
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Most tokens per reply (1 to 100,000).
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = super::positive_at_most::<100_000>)]
    max_new_tokens: usize,
    #[command(flatten)]
    draw: DrawFlags,
}

/// One conversation: the turns so far, and how they are shown to the model.
struct Conversation<'a> {
    model: &'a Model,
    tok: &'a dyn Tokenizer,
    style: Style,
    system: Option<Turn>,
    turns: Vec<Turn>,
    /// Prompt tokens allowed, leaving room for a reply in the context.
    budget: usize,
}

impl Conversation<'_> {
    /// The turns the model sees for the next reply: the system turn, then as many of the
    /// latest exchanges as fit in the budget (only the last message, for a one-exchange
    /// template); the token ids of their prompt.
    fn prompt(&mut self) -> Result<Vec<u32>> {
        if self.style.template != Template::Chat {
            let keep = self.turns.len() - 1;
            self.turns.drain(..keep);
        }
        loop {
            let context: Vec<Turn> = self.system.iter().chain(&self.turns).cloned().collect();
            let ids = self.tok.encode(&self.style.template.prompt(&context)?)?;
            if ids.len() <= self.budget || self.turns.len() < 3 {
                return Ok(ids);
            }
            // Drop the oldest exchange: a user turn and the reply to it.
            self.turns.drain(..2);
            eprintln!("(the oldest exchange no longer fits in the context and was dropped)");
        }
    }

    /// Answers `message`, streaming the reply; returns nothing, keeps the reply.
    fn reply(&mut self, message: &str, g: &Generation) -> Result<()> {
        self.turns.push(Turn::new(Role::User, message));
        let prompt = self.prompt()?;
        let new = stream(self.model, self.tok, &prompt, g)?.tokens;
        super::print("\n")?;
        let _ = std::io::stdout().flush();
        let text = self.tok.decode(&new).unwrap_or_else(|_| {
            String::from_utf8_lossy(&self.tok.decode_bytes(&new).unwrap_or_default()).into_owned()
        });
        self.turns.push(Turn::new(Role::Assistant, text));
        Ok(())
    }
}

impl Args {
    pub fn run(self) -> Result<()> {
        let sampling = self.draw.sampling()?;
        let device = self.draw.device()?;
        let (model, _, tok) = llm::run::load::load_model(&self.model)?;
        nn::Module::to_device(&model, device)?;
        let style = Style::of(&self.model, self.template.as_deref(), tok.as_ref())?;
        if style.end.is_none() {
            return Err(Error::Invalid(
                "the model has no token that ends a reply (no end-of-text token, no one-token \
                 newline, and no fine-tuning run's marker)"
                    .into(),
            ));
        }
        let context = model.context();
        let mut talk = Conversation {
            model: &model,
            tok: tok.as_ref(),
            budget: context - self.max_new_tokens.min(context / 2),
            style,
            system: self
                .system
                .as_ref()
                .map(|s| Turn::new(Role::System, s.as_str())),
            turns: vec![],
        };
        let interactive = std::io::stdin().is_terminal();
        let stdin = std::io::stdin().lock();
        let mut lines = stdin.lines();
        for i in 0u64.. {
            if interactive {
                eprint!("> ");
            }
            let Some(line) = lines.next() else { break };
            let line =
                line.map_err(|e| Error::io("read", std::path::Path::new("standard input"), e))?;
            match line.trim() {
                "/quit" => break,
                "/reset" => {
                    talk.turns.clear();
                    eprintln!("(a new conversation)");
                }
                "" => {}
                message => {
                    let g = Generation {
                        max_new_tokens: self.max_new_tokens,
                        sampling,
                        stop_token: talk.style.end,
                        seed: self.draw.seed.wrapping_add(i),
                        vocab_limit: Some(tok.vocab_size()),
                    };
                    talk.reply(message, &g)?;
                }
            }
        }
        Ok(())
    }
}
