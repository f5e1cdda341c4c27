//! The `llm` command line. Each subcommand lives in its own file under `cli/`, as an argument
//! struct with a `run` method; adding one is a new file plus one arm in [`Command`] and in
//! [`Command::run`].

mod cli;

/// The allocator that keeps freed pages for the next step (see [`llm::alloc`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Tokenizers, data preparation and language models, written from nothing.
#[derive(Parser)]
#[command(name = "llm", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Train(cli::train::Args),
    Sample(cli::sample::Args),
    Eval(cli::eval::Args),
    Tokenize(cli::tokenize::Args),
    BpeTrain(cli::bpe_train::Args),
    Prepare(cli::prepare::Args),
    Classify(cli::classify::Args),
    Sft(cli::sft::Args),
    Chat(cli::chat::Args),
    Dpo(cli::dpo::Args),
    DpoPairs(cli::dpo_pairs::Args),
    Reward(cli::reward::Args),
    Ppo(cli::ppo::Args),
    Llama2c(cli::llama2c::Args),
    Synth(cli::synth::Args),
}

impl Command {
    fn run(self) -> llm::Result<()> {
        match self {
            Command::Train(args) => args.run(),
            Command::Sample(args) => args.run(),
            Command::Eval(args) => args.run(),
            Command::Tokenize(args) => args.run(),
            Command::BpeTrain(args) => args.run(),
            Command::Prepare(args) => args.run(),
            Command::Classify(args) => args.run(),
            Command::Sft(args) => args.run(),
            Command::Chat(args) => args.run(),
            Command::Dpo(args) => args.run(),
            Command::DpoPairs(args) => args.run(),
            Command::Reward(args) => args.run(),
            Command::Ppo(args) => args.run(),
            Command::Llama2c(args) => args.run(),
            Command::Synth(args) => args.run(),
        }
    }
}

fn main() -> ExitCode {
    llm::alloc::keep_freed_pages();
    match Cli::parse().command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
