//! `llm sft`: supervised fine-tuning on instructions, prompt/response pairs or chats, from a
//! pretrained model or from scratch.

use llm::data::template::{self, Conversation, Format, Role, Template, END};
use llm::model::config::Config;
use llm::run::lock::RunLock;
use llm::run::{self, load};
use llm::stages::sft::{self, Sequence, Sft, SftInfo, SFT_FILE};
use llm::tasks;
use llm::tokenizer::{added, CharTokenizer, Tokenizer, ENDOFTEXT};
use llm::train::objective::Objective;
use llm::train::{driver, epoch_schedule, trainable, Trainer};
use llm::{Error, Result};
use nn::{Module, SharedRng};
use std::path::{Path, PathBuf};
use tensor::Device;

/// Fine-tune a model on instructions, prompt/response pairs or chats (supervised fine-tuning)
///
/// Data (JSON array or JSON Lines, one kind per file): instructions {"instruction", "input",
/// "output"} (the Alpaca style), pairs {"prompt", "response"} (or "answer", as `llm synth`
/// writes), or chats {"messages": [{"role": "system"|"user"|"assistant", "content"}]}.
///
/// A template renders each record: `plain` (prompt, response, then the tokenizer's
/// end-of-text token or a newline), `alpaca` (the Alpaca prompt, the response, <|endoftext|>),
/// `chat` (<|user|>...<|end|><|assistant|>...<|end|>, any number of turns). Special tokens the
/// tokenizer lacks are added to it, and the model's token embedding (the tied head too) grows
/// by one row per added token, each new row the mean of the existing ones.
///
/// By default only the replies and their end tokens are in the loss (--mask-prompt); with
/// --no-mask-prompt every token is. Splits: instruction and chat files are shuffled (seeded)
/// and cut 85% / 5% / 10% into training, validation and test (935 / 55 / 110 of the
/// 1,100-record instruction file); in a pair file every 20th record is held out for
/// validation. The split, the template and the test records (as prompt/answer pairs, for
/// `llm eval --task`) are saved in the run directory.
///
/// With --init-from the model and tokenizer are a pretrained run's (a fresh optimizer);
/// without it a new model of --preset/--config is trained from scratch over a character
/// vocabulary of the data's characters.
#[derive(clap::Args)]
pub struct Args {
    /// The records: instructions, prompt/response pairs or chats.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The run directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Start over in an --out that already holds a run (its files are deleted first).
    #[arg(long)]
    overwrite: bool,
    /// A pretrained run directory or Hugging Face GPT-2 directory to start from.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "config"])]
    init_from: Option<PathBuf>,
    /// Without --init-from: the preset of the new model [default: char-small].
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Without --init-from: a JSON file of settings (nanoGPT's key names) over the preset's.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// plain, alpaca or chat [default: alpaca for instructions, chat for chats, plain for
    /// pairs].
    #[arg(long, value_name = "NAME")]
    template: Option<String>,
    /// Only the replies (and the end token closing each) are in the loss (the default).
    #[arg(long, conflicts_with = "no_mask_prompt")]
    mask_prompt: bool,
    /// Every token is in the loss, the prompt's too.
    #[arg(long)]
    no_mask_prompt: bool,
    /// Train LoRA adapters of this rank (1 to 1,024) on the blocks' linear layers instead of
    /// every weight (with added tokens, the token embedding is trained too); needs
    /// --init-from.
    #[arg(long, value_name = "R", requires = "init_from", value_parser = super::positive_at_most::<1024>)]
    lora_rank: Option<usize>,
    /// LoRA's alpha (the update is scaled by alpha / rank) [default: the rank].
    #[arg(long, value_name = "A", requires = "lora_rank")]
    lora_alpha: Option<f64>,
    /// Passes over the training examples, 1 to 10,000.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = super::positive_at_most::<10_000>)]
    epochs: usize,
    /// Optimizer steps, 1 to 10,000,000 [default: --epochs passes over the training examples].
    #[arg(long, value_name = "N", value_parser = super::positive_at_most::<10_000_000>)]
    max_iters: Option<usize>,
    /// Longest example in tokens, 2 to the model's context [default: the context]; longer
    /// examples are cut there (those left with no reply token are dropped, with a count).
    #[arg(long, value_name = "L", value_parser = super::positive_at_most::<1_000_000>)]
    max_len: Option<usize>,
    /// Examples per step, 1 to 4,096.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = super::positive_at_most::<4096>)]
    batch_size: usize,
    /// Peak learning rate (warmup then cosine decay to a tenth of it) [default: the preset's
    /// from scratch, 1e-4 from --init-from, 1e-3 with LoRA].
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Seed of the initial weights and the batches (and of the split, unless --split-seed).
    #[arg(long, value_name = "S", default_value_t = 1337)]
    seed: u64,
    /// Seed of the split of instruction and chat files, to vary training over one split
    /// [default: --seed].
    #[arg(long, value_name = "S")]
    split_seed: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let device = Device::parse(&self.device)?;
        let (records, format) = template::read_conversations(&self.data)?;
        let template = match &self.template {
            Some(name) => Template::parse(name)?,
            None => Template::for_format(format),
        };
        let (base, tok) = match &self.init_from {
            Some(dir) => load::base_config(dir)?,
            None => {
                let cfg =
                    super::train::preset_with_file(self.preset.as_deref(), self.config.as_deref())?;
                (cfg, char_vocabulary(&records)?)
            }
        };
        let base_vocab = tok.vocab_size();
        let (tok, added) = added::with_tokens(tok, template.special_tokens())?;
        let end = end_marker(template, tok.as_ref())?;
        let mask = !self.no_mask_prompt;
        let split = sft::split(
            format == Format::PromptResponse,
            records.len(),
            self.split_seed.unwrap_or(self.seed),
        );
        let max_len = self.max_len.unwrap_or(base.block_size).min(base.block_size);
        let encode = |which: &[usize]| {
            encode_set(&records, which, template, &end, tok.as_ref(), mask, max_len)
        };
        let (train, dropped_train) = encode(&split.train)?;
        let (val, dropped_val) = encode(&split.val)?;
        if train.is_empty() && dropped_train > 0 {
            return Err(Error::Invalid(format!(
                "none of the {dropped_train} training examples has a reply token within \
                 {max_len} tokens"
            )));
        }
        if dropped_train + dropped_val > 0 {
            eprintln!(
                "warning: {} examples had no reply token within {max_len} tokens and were dropped",
                dropped_train + dropped_val
            );
        }
        let mut cfg = self.config(&base, tok.vocab_size(), train.len())?;
        let end_id = sft::marker_id(&end, tok.as_ref())?;
        let trainer = match &self.init_from {
            Some(dir) => {
                let mut model = load::init_from(dir, &cfg)?;
                if added > 0 {
                    cfg.vocab_size = model.add_token_rows(base_vocab, added)?;
                }
                if cfg.lora_rank > 0 {
                    let mut patterns = vec!["*.lora_a".to_string(), "*.lora_b".to_string()];
                    if added > 0 {
                        patterns.extend(model.token_row_names());
                    }
                    trainable::train_only(&model, &patterns)?;
                }
                Trainer::with_model(cfg.clone(), model, SharedRng::new(cfg.seed + 2), device)?
            }
            None => Trainer::new(cfg.clone(), device)?,
        };
        let mut objective = Sft::new(train, val, &cfg, end_id);
        objective.check(&cfg)?;
        llm::data::create_out_dir(&self.out)?;
        let _lock = RunLock::acquire(&self.out)?;
        super::train::claim_run_dir(&self.out, self.overwrite)?;
        run::write_run_files(&self.out, &cfg, tok.as_ref())?;
        let info = SftInfo {
            template: template.name().into(),
            end: end.clone(),
            mask_prompt: mask,
            data: self.data.display().to_string(),
            split,
        };
        write_info(&self.out, &info, &records, template)?;
        self.report(&trainer, &info, added, device);
        let mut trainer = trainer;
        driver::drive(&mut trainer, &mut objective, &self.out, false, "tok")?;
        Ok(())
    }

    fn report(&self, trainer: &Trainer, info: &SftInfo, added: usize, device: Device) {
        if added > 0 {
            eprintln!(
                "added {added} special tokens for the {} template",
                info.template
            );
        }
        let trained = trainer
            .model
            .named_params()
            .iter()
            .filter(|(_, p)| p.requires_grad())
            .map(|(_, p)| p.numel())
            .sum::<usize>();
        eprintln!(
            "fine-tuning {} ({:.2}M parameters, {:.2}M trained) with the {} template on {} records ({} train, {} validation, {} test), {} for {} steps on {}; run directory {}",
            self.init_from
                .as_ref()
                .map_or("a new model".to_string(), |d| d.display().to_string()),
            trainer.model.num_params() as f64 / 1e6,
            trained as f64 / 1e6,
            info.template,
            info.split.train.len() + info.split.val.len() + info.split.test.len(),
            info.split.train.len(),
            info.split.val.len(),
            info.split.test.len(),
            if info.mask_prompt { "replies alone in the loss" } else { "every token in the loss" },
            trainer.cfg.max_iters,
            device.describe(),
            self.out.display()
        );
    }

    /// The training configuration: the base's model with this command's schedule, batch and
    /// adapters.
    fn config(&self, base: &Config, vocab_size: usize, n_train: usize) -> Result<Config> {
        let rank = self.lora_rank.unwrap_or(0);
        let lr = self.lr.unwrap_or(match (&self.init_from, rank) {
            (Some(_), 0) => 1e-4,
            (Some(_), _) => 1e-3,
            (None, _) => base.learning_rate,
        });
        let per_epoch = n_train.div_ceil(self.batch_size);
        let steps = self.max_iters.unwrap_or(per_epoch * self.epochs);
        let vocab_size = match self.init_from {
            Some(_) => base.vocab_size,
            None => vocab_size,
        };
        let cfg = Config {
            vocab_size,
            lora_rank: rank,
            lora_alpha: if rank > 0 {
                self.lora_alpha.unwrap_or(rank as f64)
            } else {
                0.0
            },
            ..epoch_schedule(base, lr, self.batch_size, steps, per_epoch, self.seed)
        };
        cfg.validate_resolved().map_err(|e| Error::Config(e.0))?;
        Ok(cfg)
    }
}

/// A character vocabulary of everything the records say, and the newline that closes a
/// `plain` reply.
fn char_vocabulary(records: &[Conversation]) -> Result<Box<dyn Tokenizer>> {
    let mut corpus: String = records
        .iter()
        .flatten()
        .flat_map(|t| [t.content.as_str(), t.input.as_str()])
        .collect();
    corpus.push('\n');
    Ok(Box::new(CharTokenizer::from_corpus(&corpus)?))
}

/// The text of the token that closes a reply under `template` in `tok`.
fn end_marker(template: Template, tok: &dyn Tokenizer) -> Result<String> {
    match template {
        Template::Alpaca => Ok(ENDOFTEXT.into()),
        Template::Chat => Ok(END.into()),
        Template::Plain => {
            let id = tasks::end_token(tok).ok_or_else(|| {
                Error::Invalid(
                    "the tokenizer has no end-of-text token and no one-token newline to close \
                     replies; use --template alpaca or chat, which add one"
                        .into(),
                )
            })?;
            tok.decode(&[id])
        }
    }
}

/// The training sequences of the records at `which`, cut to `max_len` tokens, and how many
/// were dropped for having no reply token left.
fn encode_set(
    records: &[Conversation],
    which: &[usize],
    template: Template,
    end: &str,
    tok: &dyn Tokenizer,
    mask: bool,
    max_len: usize,
) -> Result<(Vec<Sequence>, usize)> {
    let mut kept = vec![];
    for &i in which {
        let pieces = template.render(&records[i], end)?;
        if let Some(s) = sft::encode_pieces(&pieces, tok, mask)?.truncated(max_len) {
            kept.push(s);
        }
    }
    let dropped = which.len() - kept.len();
    Ok((kept, dropped))
}

/// Writes `sft.json` and, when there is a test split, `test.jsonl`: each test record's prompt
/// (rendered up to the last reply) and that reply, for `llm eval --task`.
fn write_info(
    out: &Path,
    info: &SftInfo,
    records: &[Conversation],
    template: Template,
) -> Result<()> {
    let json = serde_json::to_string_pretty(info).expect("the run's record serializes");
    run::write_atomically(&out.join(SFT_FILE), json.as_bytes())?;
    if info.split.test.is_empty() {
        return Ok(());
    }
    let mut lines = String::new();
    for &i in &info.split.test {
        let turns = &records[i];
        let last = turns
            .iter()
            .rposition(|t| t.role == Role::Assistant)
            .expect("every record has a reply");
        let prompt = template.prompt(&turns[..last])?;
        let problem = tasks::Problem::new(prompt, turns[last].content.clone());
        lines += &serde_json::to_string(&problem).expect("a problem serializes");
        lines.push('\n');
    }
    run::write_atomically(&out.join(sft::TEST_FILE), lines.as_bytes())
}
