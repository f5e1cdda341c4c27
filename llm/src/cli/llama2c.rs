//! `llm llama2c`: bring a llama2.c model into a run directory, or write a run's Llama as a
//! llama2.c model file.

use llm::model::llama2c;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::tokenizer::llama2c::Llama2cTokenizer;
use llm::train::Trainer;
use llm::Result;
use nn::SharedRng;
use std::path::PathBuf;
use tensor::Device;

/// Import a llama2.c model (.bin and tokenizer.bin) into a run directory, or export a Llama
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Import(ImportArgs),
    Export(ExportArgs),
}

impl Args {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Import(a) => a.run(),
            Command::Export(a) => a.run(),
        }
    }
}

/// Make a run directory from a llama2.c model file and its tokenizer
///
/// The model file is llama2.c's version 0 (what run.c reads) or version 1 (export.py --version
/// 1, float32); the tokenizer is llama2.c's tokenizer.bin format, of the model's vocabulary
/// size. The run directory then works wherever a run does: `llm sample` (prompts start with
/// BOS, as in run.c), `llm eval`, `--init-from`.
#[derive(clap::Args)]
struct ImportArgs {
    /// The llama2.c model file.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Its tokenizer (llama2.c's tokenizer.bin format).
    #[arg(long, value_name = "FILE")]
    tokenizer: PathBuf,
    /// The run directory to write.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace a run that --out already holds.
    #[arg(long)]
    overwrite: bool,
}

impl ImportArgs {
    fn run(self) -> Result<()> {
        let (model, cfg) = llama2c::read(&self.model)?;
        let tok = Llama2cTokenizer::from_file(&self.tokenizer, cfg.vocab_size)?;
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, &tok)?;
        Trainer::with_model(
            cfg.clone(),
            model,
            SharedRng::new(cfg.seed + 2),
            Device::Cpu,
        )?
        .save(&self.out)?;
        eprintln!(
            "imported {} (a Llama of {} layers, width {}, {} heads, {} key/value heads, \
             vocabulary {}, context {}) into {}",
            self.model.display(),
            cfg.n_layer,
            cfg.n_embd,
            cfg.n_head,
            cfg.kv_heads(),
            cfg.vocab_size,
            cfg.block_size,
            self.out.display()
        );
        Ok(())
    }
}

/// Write a run's Llama as a llama2.c model file (version 0, what run.c reads)
///
/// run.c also needs the tokenizer in its format: a run whose tokenizer came from a llama2.c
/// tokenizer.bin (`llm llama2c import`) runs there with that file.
#[derive(clap::Args)]
struct ExportArgs {
    /// A run directory holding a Llama.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The llama2.c model file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

impl ExportArgs {
    fn run(self) -> Result<()> {
        let (model, cfg, _) = load::load_model(&self.model)?;
        llama2c::write(&model, &cfg, &self.out)?;
        eprintln!("wrote {}", self.out.display());
        Ok(())
    }
}
