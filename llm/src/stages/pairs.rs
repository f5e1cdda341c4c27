//! Preference pairs as the preference stages (DPO, the reward model) read them: each record's
//! user turn put in the fine-tuning run's template (`plain` for a model that was not
//! fine-tuned with `llm sft`), followed by each reply and the run's end token, and the records
//! split as `llm sft` splits the same file for the same seed. A pair longer than the model's
//! context loses the beginning of its prompt first (a long HH-RLHF conversation keeps its
//! last turns and both replies), and a reply longer than the context its end.

use crate::data::read_preferences;
use crate::data::template::Piece;
use crate::model::config::Config;
use crate::stages::sft::{self, encode_pieces, Sequence, SftInfo, SplitIndices};
use crate::tasks;
use crate::tokenizer::Tokenizer;
use crate::train::objective::check_examples;
use crate::{Error, Result};
use std::path::Path;

/// Checks the pairs of a preference stage before training (see [`check_examples`]).
pub fn check_pairs(train: &[PairSeqs], val: &[PairSeqs], cfg: &Config) -> Result<()> {
    if train.is_empty() {
        return Err(Error::Invalid("there are no training pairs".into()));
    }
    for (which, set) in [("training", train), ("validation", val)] {
        let seqs = set
            .iter()
            .flat_map(|p| [p.chosen.ids.as_slice(), p.rejected.ids.as_slice()]);
        check_examples(which, seqs, cfg)?;
    }
    Ok(())
}

/// A preference pair, encoded: prompt and reply tokens, the reply's (and end token's) scored.
#[derive(Clone, Debug, PartialEq)]
pub struct PairSeqs {
    /// The prompt with the preferred reply.
    pub chosen: Sequence,
    /// The prompt with the other reply.
    pub rejected: Sequence,
}

impl PairSeqs {
    /// Both sequences fitted into `context` tokens, the prompt losing its beginning first
    /// ([`Sequence::fitted`]); `None` when either reply loses every token.
    pub fn fitted(self, context: usize) -> Option<PairSeqs> {
        Some(PairSeqs {
            chosen: self.chosen.fitted(context)?,
            rejected: self.rejected.fitted(context)?,
        })
    }
}

/// `prompt` followed by each reply and the end marker `end`; the replies and the marker are
/// scored. Each part is encoded on its own, so no token straddles prompt and reply.
pub fn encode_pair(
    prompt: &str,
    chosen: &str,
    rejected: &str,
    end: &str,
    tok: &dyn Tokenizer,
) -> Result<PairSeqs> {
    let encode = |reply: &str| {
        let pieces = [
            Piece::new(prompt, false),
            Piece::new(reply, true),
            Piece::new(end, true),
        ];
        encode_pieces(&pieces, tok, true)
    };
    Ok(PairSeqs {
        chosen: encode(chosen)?,
        rejected: encode(rejected)?,
    })
}

/// The pairs of a file, encoded and split.
pub struct PairData {
    /// Training pairs.
    pub train: Vec<PairSeqs>,
    /// Validation pairs.
    pub val: Vec<PairSeqs>,
    /// Test pairs.
    pub test: Vec<PairSeqs>,
    /// The test records as prompt/answer lines for `llm eval --task`: the prompt in the
    /// template, the chosen reply as the answer.
    pub test_jsonl: String,
    /// The record indices of each split.
    pub split: SplitIndices,
    /// The token that ends every reply.
    pub end_id: u32,
}

impl PairData {
    /// Reads the preference records of `path` and encodes each pair for a model of `base` with
    /// tokenizer `tok` and fine-tuning record `info`, split by `split_seed`; pairs with a reply
    /// that does not fit the context are left out, with a warning.
    pub fn read(
        path: &Path,
        split_seed: u64,
        base: &Config,
        tok: &dyn Tokenizer,
        info: Option<&SftInfo>,
    ) -> Result<PairData> {
        let records = read_preferences(path)?;
        let (template, end_id, end) = sft::reply_format(info, tok)?;
        let split = sft::split(false, records.len(), split_seed);
        let prompts = records
            .iter()
            .map(|r| template.prompt(std::slice::from_ref(&r.user)))
            .collect::<Result<Vec<_>>>()?;
        let encode = |which: &[usize]| -> Result<Vec<PairSeqs>> {
            let mut pairs = vec![];
            for &i in which {
                let r = &records[i];
                let pair = encode_pair(&prompts[i], &r.chosen, &r.rejected, &end, tok)?;
                pairs.extend(pair.fitted(base.block_size));
            }
            Ok(pairs)
        };
        let (train, val, test) = (
            encode(&split.train)?,
            encode(&split.val)?,
            encode(&split.test)?,
        );
        let dropped = records.len() - train.len() - val.len() - test.len();
        if dropped > 0 {
            eprintln!(
                "warning: {dropped} pairs were left out: a reply did not fit the context of {} \
                 with one prompt token before it",
                base.block_size
            );
        }
        let test_jsonl = split
            .test
            .iter()
            .map(|&i| {
                let problem = tasks::Problem::new(prompts[i].clone(), records[i].chosen.clone());
                serde_json::to_string(&problem).expect("a problem serializes") + "\n"
            })
            .collect();
        Ok(PairData {
            train,
            val,
            test,
            test_jsonl,
            split,
            end_id,
        })
    }
}
