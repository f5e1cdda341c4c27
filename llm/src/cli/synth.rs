//! `llm synth`: generate synthetic tasks whose answers a program checks (see [`llm::tasks`]).

use llm::tasks::arithmetic::{self, ArithmeticSpec, Op, MAX_DIGITS};
use llm::tasks::countdown::{self, CountdownSpec};
use llm::tasks::{split, write_jsonl, Problem};
use llm::tokenizer::ENDOFTEXT;
use llm::{Error, Result};
use std::path::PathBuf;

/// Generate synthetic problems (arithmetic, countdown) with checkable answers
///
/// Each writes into --out: train.jsonl and test.jsonl, one {"prompt": .., "answer": ..} line
/// per problem, and train.txt for pretraining: each training problem as one line, its prompt,
/// answer and <|endoftext|> run together (`37+45=82<|endoftext|>`; with the char tokenizer,
/// <|endoftext|> is ordinary text).
/// Problem i (in generation order, repeated prompts dropped) is a test problem when i % 10 is
/// 1, 3 or 7, so no test prompt appears in training.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Arithmetic(ArithmeticArgs),
    Countdown(CountdownArgs),
}

impl Args {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Arithmetic(a) => a.run(),
            Command::Countdown(a) => a.run(),
        }
    }
}

/// Where the files go.
#[derive(clap::Args)]
struct Output {
    /// The output directory (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace the files of an --out that already holds a train.jsonl.
    #[arg(long)]
    overwrite: bool,
    /// Problems to draw, 1 to 10,000,000 (fewer are written when prompts repeat).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = super::positive_at_most::<10_000_000>)]
    n: usize,
    /// The generator's seed: the same flags and seed give the same files.
    #[arg(long, value_name = "S", default_value_t = 1337)]
    seed: u64,
}

/// Integer arithmetic: `37+45=` then `82`
///
/// Each operand draws its length uniformly from 1 to --digits digits, then its value uniformly
/// among the numbers of that length (1 digit: 0 to 9), so a 4-digit set also holds shorter
/// problems. Subtraction may give a negative answer (`3-11=` then `-8`).
#[derive(clap::Args)]
struct ArithmeticArgs {
    #[command(flatten)]
    output: Output,
    /// The longest operand, 1 to 9 digits.
    #[arg(long, value_name = "D", default_value_t = 2, value_parser = super::positive_at_most::<MAX_DIGITS>)]
    digits: usize,
    /// The operations, comma-separated, drawn uniformly: any of +, - and *.
    #[arg(long, value_name = "OPS", default_value = "+,-", allow_hyphen_values = true, value_parser = ops)]
    ops: Ops,
    /// Write answers least significant digit first, the sign still leading (`120` as `021`,
    /// `-123` as `-321`): easier for a small model that writes left to right.
    #[arg(long)]
    reverse: bool,
}

/// The parsed --ops.
#[derive(Clone)]
struct Ops(Vec<Op>);

fn ops(list: &str) -> std::result::Result<Ops, String> {
    arithmetic::parse_ops(list)
        .map(Ops)
        .map_err(|e| e.to_string())
}

impl ArithmeticArgs {
    fn run(self) -> Result<()> {
        let problems = arithmetic::generate(&ArithmeticSpec {
            n: self.output.n,
            digits: self.digits,
            ops: self.ops.0,
            seed: self.output.seed,
            reverse: self.reverse,
        })?;
        self.output.write(&problems)
    }
}

/// Countdown: reach a target from 3 or 4 numbers with +, - and *: `3 7 25 -> 46=` then
/// `25+3*7`
///
/// The numbers are drawn from 1 to 25 and listed in increasing order; the target is the value
/// of a random expression over some of them (each used at most once, every intermediate result
/// positive), and that expression is the stored answer. Any expression reaching the target
/// scores 1.
#[derive(clap::Args)]
struct CountdownArgs {
    #[command(flatten)]
    output: Output,
    /// Numbers in each problem: 3 or 4.
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = three_or_four)]
    numbers: usize,
}

fn three_or_four(arg: &str) -> std::result::Result<usize, String> {
    match arg.parse() {
        Ok(k @ (3 | 4)) => Ok(k),
        _ => Err(format!("`{arg}` is not 3 or 4")),
    }
}

impl CountdownArgs {
    fn run(self) -> Result<()> {
        let problems = countdown::generate(&CountdownSpec {
            n: self.output.n,
            numbers: self.numbers,
            seed: self.output.seed,
        })?;
        self.output.write(&problems)
    }
}

/// The pretraining text of `problems`: one `prompt` `answer` `<|endoftext|>` line each.
fn to_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}{}{ENDOFTEXT}\n", p.prompt, p.answer))
        .collect()
}

impl Output {
    /// Splits `problems`, writes the three files and prints a summary.
    fn write(&self, problems: &[Problem]) -> Result<()> {
        let dir = &self.out;
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "--out {} is a file, not a directory",
                dir.display()
            )));
        }
        let train_jsonl = dir.join("train.jsonl");
        if train_jsonl.exists() && !self.overwrite {
            return Err(Error::Invalid(format!(
                "{} already exists; pass --overwrite to replace it",
                train_jsonl.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let (train, test) = split(problems);
        // train.jsonl last: it marks a finished directory.
        llm::run::write_atomically(&dir.join("train.txt"), to_text(&train).as_bytes())?;
        write_jsonl(&dir.join("test.jsonl"), &test)?;
        write_jsonl(&train_jsonl, &train)?;
        super::print(&format!(
            "wrote {} training and {} test problems ({} distinct of {} drawn) to {}\n",
            train.len(),
            test.len(),
            problems.len(),
            self.n,
            dir.display()
        ))
    }
}
