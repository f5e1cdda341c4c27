//! `llm eval`: loss and perplexity of a model on a text file.

use llm::eval::evaluate;
use llm::Result;
use std::path::PathBuf;
use tensor::Device;

/// Evaluate a model on a text file
///
/// Reports the mean next-token negative log-likelihood (nats per token), the perplexity
/// exp(total NLL / total tokens) and the number of predicted tokens, over the text tokenized
/// with the model's tokenizer and read in windows of the model's context.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory written by `llm train`, or a Hugging Face GPT-2 directory.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The text file to evaluate on (UTF-8).
    #[arg(long, value_name = "FILE")]
    text: PathBuf,
    /// Print {"loss": .., "perplexity": .., "tokens": ..} as JSON.
    #[arg(long)]
    json: bool,
    /// Windows evaluated together (1 to 65,536).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = super::positive_at_most::<65_536>)]
    batch_size: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let (model, cfg, tokenizer) = llm::run::load::load_model(&self.model)?;
        nn::Module::to_device(&model, device)?;
        let text = llm::data::read_text(&self.text)?;
        let tokens = llm::tokenizer::encode_parallel(
            tokenizer.as_ref(),
            &text,
            llm::tokenizer::Special::Allow,
        )
        .map_err(|e| e.in_file(&self.text))?;
        if tokens.len() < 2 {
            return Err(llm::Error::Invalid(format!(
                "{} has fewer than two tokens to evaluate",
                self.text.display()
            )));
        }
        let r = evaluate(&model, &tokens, cfg.block_size, self.batch_size);
        if self.json {
            super::print(&format!(
                "{}\n",
                serde_json::to_string(&r).expect("results serialize")
            ))
        } else {
            super::print(&format!(
                "loss {:.4} | perplexity {:.3} | {} tokens\n",
                r.loss, r.perplexity, r.tokens
            ))
        }
    }
}
