//! The reward model: a score `r(x, y)` of a reply `y` to a prompt `x`, read by a head with one
//! output from the hidden state of the sequence's last token (the end token after the reply),
//! trained on preference pairs with the Bradley-Terry model, in which the preferred reply `y_w`
//! wins over `y_l` with probability `sigmoid(r_w - r_l)`:
//!
//! ```text
//! L = -log sigmoid(r_w - r_l - m) + c (r_w + r_l)^2
//! ```
//!
//! averaged over pairs. The margin `m` asks the preferred reply to win by at least that much
//! (0: plain Bradley-Terry); the centering term with coefficient `c` keeps the rewards near 0,
//! which the Bradley-Terry loss alone leaves free to drift (Eisenstein et al., 2023, "Helping
//! or Herding?"), so a policy optimised against them sees rewards on one scale. Reported:
//! accuracy (the share of pairs with `r_w > r_l`; chance is 0.5) and the mean margin
//! `r_w - r_l`.

use crate::data::batch::Batch;
use crate::data::template::{Piece, Role, Template, Turn};
use crate::model::config::Config;
use crate::model::Model;
use crate::run::load;
use crate::stages::dpo::softplus;
use crate::stages::pairs::PairSeqs;
use crate::stages::sft::{self, SftInfo};
use crate::tokenizer::Tokenizer;
use crate::train::objective::{Loss, Metrics, Objective};
use crate::{Error, Result};
use autograd::{no_grad, Var};
use nn::Module;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tensor::{Device, Rng};

/// The rewards `(B)` of token sequences `seqs` (each at least one token), right-padded with
/// `pad` into one batch.
pub fn rewards(model: &Model, seqs: &[&[u32]], pad: u32, device: Device) -> Result<Var> {
    let batch = Batch::padded(seqs, pad);
    let scores = model.classify(&batch.ids.to_device(device), &batch.lengths)?;
    if scores.dim(1) != 1 {
        return Err(Error::Invalid(format!(
            "a reward model has a head of one output, not {}",
            scores.dim(1)
        )));
    }
    Ok(scores.reshape(&[seqs.len()]))
}

/// What a reward model's run directory records of its training, beside the model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RewardInfo {
    /// The pairs it was trained on.
    pub data: String,
    /// The seed of their split.
    pub split_seed: u64,
    /// The Bradley-Terry margin.
    pub margin: f64,
    /// The centering coefficient.
    pub center_coef: f64,
}

/// The file of a reward model's run directory that holds its [`RewardInfo`].
pub const REWARD_FILE: &str = "reward.json";

/// A trained reward model with what it needs to read a prompt and a reply: its tokenizer, and
/// the template and end token of the run it was trained from.
pub struct RewardModel {
    /// The model, with its one-output head.
    pub model: Model,
    /// Its configuration.
    pub cfg: Config,
    /// The tokenizer it reads text with.
    pub tok: Box<dyn Tokenizer>,
    /// The fine-tuning record of the run it was trained from, if any.
    pub info: Option<SftInfo>,
    /// What its training recorded.
    pub record: RewardInfo,
    template: Template,
    end: String,
    device: Device,
}

impl RewardModel {
    /// The reward model of a run directory written by `llm reward train`, on `device`.
    pub fn load(dir: &Path, device: Device) -> Result<RewardModel> {
        let (model, cfg, tok) = load::load_model(dir)?;
        let path = dir.join(REWARD_FILE);
        if cfg.n_classes != 1 || !path.is_file() {
            return Err(Error::Invalid(format!(
                "{} holds no reward model (train one with `llm reward train`)",
                dir.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let record = serde_json::from_str(&text).map_err(|e| Error::json(&path, &e))?;
        let info = SftInfo::read(dir)?;
        let (template, _, end) = sft::reply_format(info.as_ref(), tok.as_ref())?;
        model.to_device(device)?;
        Ok(RewardModel {
            model,
            cfg,
            tok,
            info,
            record,
            template,
            end,
            device,
        })
    }

    /// The tokens the model reads for `reply` to the user's message `prompt`, as in
    /// training: the prompt in the template, the reply, the end token; cut to the context.
    pub fn encode(&self, prompt: &str, reply: &str) -> Result<Vec<u32>> {
        let framed = self.template.prompt(&[Turn::new(Role::User, prompt)])?;
        let pieces = [
            Piece::new(framed, false),
            Piece::new(reply, true),
            Piece::new(self.end.as_str(), true),
        ];
        let mut ids = sft::encode_pieces(&pieces, self.tok.as_ref(), true)?.ids;
        ids.truncate(self.cfg.block_size);
        Ok(ids)
    }

    /// The reward of each `(prompt, reply)`, `batch` at a time, without gradients.
    pub fn score(&self, replies: &[(&str, &str)], batch: usize) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(replies.len());
        for chunk in replies.chunks(batch.max(1)) {
            let seqs = chunk
                .iter()
                .map(|(p, r)| self.encode(p, r))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
            let r = no_grad(|| rewards(&self.model, &refs, 0, self.device))?;
            out.extend(r.value().to_vec_f64());
        }
        Ok(out)
    }
}

/// The mean Bradley-Terry loss of rewards `chosen (B)` over `rejected (B)` with margin
/// `margin` and centering coefficient `center` (see the module docs).
pub fn bradley_terry(chosen: &Var, rejected: &Var, margin: f64, center: f64) -> Var {
    let gap = chosen.sub(rejected).affine(1.0, -margin);
    let loss = softplus(&gap.neg()).mean_all();
    if center == 0.0 {
        return loss;
    }
    let sum = chosen.add(rejected);
    loss.add(&sum.mul(&sum).mean_all().mul_scalar(center))
}

/// The rewards of the chosen and of the rejected replies of `pairs`, from one batch.
fn pair_rewards(model: &Model, pairs: &[PairSeqs], pad: u32, device: Device) -> Result<(Var, Var)> {
    let seqs: Vec<&[u32]> = pairs
        .iter()
        .map(|p| p.chosen.ids.as_slice())
        .chain(pairs.iter().map(|p| p.rejected.ids.as_slice()))
        .collect();
    let all = rewards(model, &seqs, pad, device)?;
    let b = pairs.len();
    Ok((all.narrow(0, 0, b), all.narrow(0, b, b)))
}

/// How a reward model does on a set of pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct PairScores {
    /// The share of pairs whose chosen reply gets the higher reward.
    pub accuracy: f64,
    /// The mean of `r_w - r_l`.
    pub mean_margin: f64,
    /// Pairs scored.
    pub n: usize,
    /// The mean loss (with the training's margin and centering).
    pub loss: f64,
}

/// The training settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The margin `m`.
    pub margin: f64,
    /// The centering coefficient `c`.
    pub center: f64,
    /// Pairs per micro-batch.
    pub batch_size: usize,
    /// The id that fills padding.
    pub pad: u32,
}

/// Scores `pairs` in batches, without gradients.
pub fn score_pairs(
    model: &Model,
    pairs: &[PairSeqs],
    s: &Settings,
    device: Device,
) -> Result<PairScores> {
    let (mut right, mut margin, mut loss) = (0usize, 0.0, 0.0);
    no_grad(|| -> Result<()> {
        for chunk in pairs.chunks(s.batch_size.max(1)) {
            let (c, r) = pair_rewards(model, chunk, s.pad, device)?;
            loss += bradley_terry(&c, &r, s.margin, s.center).value().item() * chunk.len() as f64;
            let (c, r) = (c.value().to_vec_f64(), r.value().to_vec_f64());
            right += c.iter().zip(&r).filter(|(c, r)| c > r).count();
            margin += c.iter().zip(&r).map(|(c, r)| c - r).sum::<f64>();
        }
        Ok(())
    })?;
    let n = pairs.len();
    let per = |x: f64| x / n.max(1) as f64;
    Ok(PairScores {
        accuracy: per(right as f64),
        mean_margin: per(margin),
        n,
        loss: per(loss),
    })
}

/// Reward-model training on encoded pairs, evaluated on held-out ones.
pub struct RewardTraining {
    train: Vec<PairSeqs>,
    val: Vec<PairSeqs>,
    settings: Settings,
}

impl RewardTraining {
    /// Training on `train`, evaluated on `val`.
    pub fn new(train: Vec<PairSeqs>, val: Vec<PairSeqs>, settings: Settings) -> RewardTraining {
        RewardTraining {
            train,
            val,
            settings,
        }
    }
}

impl Objective for RewardTraining {
    fn check(&self, cfg: &crate::model::config::Config) -> Result<()> {
        crate::stages::pairs::check_pairs(&self.train, &self.val, cfg)
    }

    fn loss(&mut self, model: &Model, rng: &mut Rng, device: Device) -> Result<Loss> {
        let s = self.settings;
        let pairs: Vec<PairSeqs> = (0..s.batch_size)
            .map(|_| self.train[rng.below(self.train.len())].clone())
            .collect();
        let (c, r) = pair_rewards(model, &pairs, s.pad, device)?;
        let (cv, rv) = (c.value().to_vec_f64(), r.value().to_vec_f64());
        let n = pairs.len() as f64;
        let accuracy = cv.iter().zip(&rv).filter(|(c, r)| c > r).count() as f64 / n;
        let margin = cv.iter().zip(&rv).map(|(c, r)| c - r).sum::<f64>() / n;
        Ok(Loss {
            loss: bradley_terry(&c, &r, s.margin, s.center),
            units: pairs.len(),
            metrics: vec![("accuracy".into(), accuracy), ("margin".into(), margin)],
        })
    }

    fn evaluate(&mut self, model: &Model, _rng: &mut Rng, device: Device) -> Result<Metrics> {
        let seen = self
            .val
            .len()
            .max(self.settings.batch_size)
            .min(self.train.len());
        let train = score_pairs(model, &self.train[..seen], &self.settings, device)?;
        let mut metrics = vec![
            ("train_loss".to_string(), train.loss),
            ("train_accuracy".to_string(), train.accuracy),
        ];
        if !self.val.is_empty() {
            let val = score_pairs(model, &self.val, &self.settings, device)?;
            metrics.extend([
                ("val_loss".to_string(), val.loss),
                ("val_accuracy".to_string(), val.accuracy),
                ("val_margin".to_string(), val.mean_margin),
            ]);
        }
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::Tensor;

    #[test]
    fn equal_rewards_give_ln_2_and_the_margin_and_centering_add_as_written() {
        let r = |v: Vec<f64>| Var::constant(Tensor::from_vec(v, &[2]));
        let (c, l) = (r(vec![1.0, 0.5]), r(vec![1.0, -0.5]));
        let plain = bradley_terry(&c, &c, 0.0, 0.0).value().item();
        assert!((plain - std::f64::consts::LN_2).abs() < 1e-15);
        // gaps 0 and 1, minus the margin 0.25; centering sums 2 and 0.
        let want = ((1.0 + 0.25f64.exp()).ln() + (1.0 + (-0.75f64).exp()).ln()) / 2.0
            + 0.1 * (4.0 + 0.0) / 2.0;
        let got = bradley_terry(&c, &l, 0.25, 0.1).value().item();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn the_bradley_terry_loss_passes_the_gradient_check() {
        let mut rng = Rng::new(3);
        let mut draw = || {
            Tensor::from_vec(
                (0..5).map(|_| rng.normal() * 2.0).collect::<Vec<f64>>(),
                &[5],
            )
        };
        let inputs = [draw(), draw()];
        for (margin, center) in [(0.0, 0.0), (0.5, 0.01), (-0.3, 0.2)] {
            let f = move |x: &[Var]| bradley_terry(&x[0], &x[1], margin, center);
            autograd::gradcheck::gradcheck(
                &format!("bradley-terry m={margin} c={center}"),
                f,
                &inputs,
            )
            .unwrap();
        }
    }
}
