//! Direct Preference Optimization (Rafailov et al., 2023, "Direct Preference Optimization: Your
//! Language Model is Secretly a Reward Model"): a policy learns to prefer one reply to another
//! without a reward model, measured against a frozen reference (the model it started from).
//!
//! For a prompt `x`, a preferred reply `y_w` and a dispreferred `y_l`, with `log p(y|x)` the
//! summed (or, with [`Reduce::Mean`], averaged) log-probabilities of the reply's tokens and its
//! end token:
//!
//! ```text
//! r_w = beta (log pi(y_w|x) - log ref(y_w|x))        the implicit reward of each reply
//! r_l = beta (log pi(y_l|x) - log ref(y_l|x))
//! h   = (r_w - r_l) / beta                           the log-ratio margin
//! sigmoid (DPO):          L = -log sigmoid(beta h) = softplus(-beta h)
//! ipo (Azar et al. 2023): L = (h - 1/(2 beta))^2
//! hinge (SLiC, Zhao et al. 2023): L = max(0, 1 - beta h)
//! ```
//!
//! averaged over the pairs of a batch. At the start the policy is the reference, so `h = 0`,
//! every reward is 0 and the sigmoid loss is exactly `ln 2`. Reported with the loss: the mean
//! rewards of the chosen and rejected replies, their margin `r_w - r_l`, the share of pairs with
//! `r_w > r_l` (reward accuracy) and the chosen replies' log-ratio alone, which often falls
//! while the margin grows (both replies lose probability, the rejected one faster).
//!
//! Because of that fall, the loss can add `a` times the chosen replies' mean negative
//! log-likelihood per token, `-(1/|y_w|) log pi(y_w|x)` averaged over pairs (the "DPO + NLL"
//! objective of Pang et al., 2024, "Iterative Reasoning Preference Optimization", there with
//! `a = 1`): [`Settings::nll_weight`], 0 for plain DPO.

use crate::data::batch::{Batch, IGNORE};
use crate::model::Model;
use crate::stages::pairs::PairSeqs;
use crate::stages::sft::Sequence;
use crate::train::objective::{Loss, Metrics, Objective};
use crate::{Error, Result};
use autograd::Var;
use tensor::{Device, Tensor};

/// How a reply's token log-probabilities become one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Their sum: the log-probability of the whole reply.
    Sum,
    /// Their mean: per token, so long replies weigh no more than short ones.
    Mean,
}

/// Which preference loss (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// DPO's logistic loss.
    Sigmoid,
    /// IPO's squared loss.
    Ipo,
    /// SLiC's hinge loss.
    Hinge,
}

impl LossKind {
    /// The loss a name stands for: `sigmoid`, `ipo` or `hinge`.
    pub fn parse(name: &str) -> Result<LossKind> {
        match name {
            "sigmoid" => Ok(LossKind::Sigmoid),
            "ipo" => Ok(LossKind::Ipo),
            "hinge" => Ok(LossKind::Hinge),
            _ => Err(Error::Invalid(format!(
                "unknown preference loss {name:?}; expected sigmoid, ipo or hinge"
            ))),
        }
    }
}

/// The log-probabilities `(S)` of the scored tokens of each of `seqs` under `model`, summed or
/// averaged per sequence (a sequence must have a scored token after its first).
pub fn sequence_logps(
    model: &Model,
    seqs: &[&Sequence],
    reduce: Reduce,
    pad: u32,
    device: Device,
) -> Var {
    let examples: Vec<(&[u32], &[bool])> = seqs
        .iter()
        .map(|s| (s.ids.as_slice(), s.scored.as_slice()))
        .collect();
    let batch = Batch::language(&examples, pad);
    let targets = batch.targets.expect("a language batch has targets");
    let width = batch.ids.dim(1);
    let per_token = model.target_log_probs(&batch.ids.to_device(device), &targets);
    // Row `i` of the scored targets belongs to sequence `position / width`: a constant
    // (S, N) matrix of weights sums (or averages) each sequence's rows.
    let owner: Vec<usize> = targets
        .to_vec::<i64>()
        .iter()
        .enumerate()
        .filter(|(_, &t)| t != IGNORE)
        .map(|(i, _)| i / width)
        .collect();
    let mut counts = vec![0usize; seqs.len()];
    owner.iter().for_each(|&s| counts[s] += 1);
    let n = owner.len();
    let mut weights = vec![0.0f64; seqs.len() * n];
    for (i, &s) in owner.iter().enumerate() {
        weights[s * n + i] = match reduce {
            Reduce::Sum => 1.0,
            Reduce::Mean => 1.0 / counts[s] as f64,
        };
    }
    let weights = Tensor::from_vec(weights, &[seqs.len(), n])
        .to_dtype(per_token.dtype())
        .to_device(device);
    Var::constant(weights)
        .matmul(&per_token.reshape(&[n, 1]))
        .reshape(&[seqs.len()])
}

/// `softplus(z) = ln(1 + e^z)`, written as `max(z, 0) + ln(1 + e^{-|z|})` so that neither
/// branch overflows.
pub fn softplus(z: &Var) -> Var {
    let abs = z.relu().add(&z.neg().relu());
    z.relu().add(&abs.neg().exp().affine(1.0, 1.0).log())
}

/// The mean preference loss of a batch: `policy_*` and `reference_*` are the log-probabilities
/// `(B)` of the chosen and rejected replies (see the module docs); the reference's are taken to
/// the policy's dtype and device.
pub fn preference_loss(
    policy_chosen: &Var,
    policy_rejected: &Var,
    reference_chosen: &Tensor,
    reference_rejected: &Tensor,
    beta: f64,
    kind: LossKind,
) -> Var {
    let like_policy = |t: &Tensor| {
        t.to_dtype(policy_chosen.dtype())
            .to_device(policy_chosen.device())
    };
    let reference_margin =
        Var::constant(like_policy(reference_chosen).sub(&like_policy(reference_rejected)));
    let h = policy_chosen.sub(policy_rejected).sub(&reference_margin);
    let per_pair = match kind {
        LossKind::Sigmoid => softplus(&h.mul_scalar(-beta)),
        LossKind::Ipo => {
            let d = h.affine(1.0, -1.0 / (2.0 * beta));
            d.mul(&d)
        }
        LossKind::Hinge => h.affine(-beta, 1.0).relu(),
    };
    per_pair.mean_all()
}

/// The mean negative log-likelihood per token `-(1/B) sum_i logp_i / n_i` of sequences whose
/// log-probabilities `logps (B)` were reduced by `reduce` over their `n_i` scored tokens.
pub fn per_token_nll(logps: &Var, seqs: &[&Sequence], reduce: Reduce) -> Var {
    let per_token = match reduce {
        Reduce::Mean => logps.clone(),
        Reduce::Sum => {
            let counts: Vec<f64> = seqs.iter().map(|s| scored_targets(s) as f64).collect();
            let inverse: Vec<f64> = counts.iter().map(|n| 1.0 / n).collect();
            let inverse = Tensor::from_vec(inverse, &[seqs.len()])
                .to_dtype(logps.dtype())
                .to_device(logps.device());
            logps.mul(&Var::constant(inverse))
        }
    };
    per_token.mean_all().neg()
}

/// The tokens of `s` that are targets: those scored after the first.
fn scored_targets(s: &Sequence) -> usize {
    s.scored.iter().skip(1).filter(|&&b| b).count()
}

/// The rewards of a batch or a held-out set (see the module docs), as means over pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rewards {
    /// `beta (log pi(y_w|x) - log ref(y_w|x))`.
    pub chosen: f64,
    /// `beta (log pi(y_l|x) - log ref(y_l|x))`.
    pub rejected: f64,
    /// `chosen - rejected`.
    pub margin: f64,
    /// The share of pairs whose chosen reward is above the rejected one.
    pub accuracy: f64,
    /// `log pi(y_w|x) - log ref(y_w|x)`, the chosen replies' log-ratio.
    pub chosen_logratio: f64,
}

impl Rewards {
    /// The rewards from per-pair log-probabilities.
    pub fn of(policy: (&[f64], &[f64]), reference: (&[f64], &[f64]), beta: f64) -> Rewards {
        let n = policy.0.len().max(1) as f64;
        let (mut r, mut right) = (Rewards::default(), 0usize);
        for i in 0..policy.0.len() {
            let c = policy.0[i] - reference.0[i];
            let l = policy.1[i] - reference.1[i];
            r.chosen += beta * c / n;
            r.rejected += beta * l / n;
            r.chosen_logratio += c / n;
            right += usize::from(c > l);
        }
        r.margin = r.chosen - r.rejected;
        r.accuracy = right as f64 / n;
        r
    }
}

impl Rewards {
    /// The rewards as metrics named `{prefix}rewards_chosen`, `_rejected`, `_margin`,
    /// `_accuracy` and `{prefix}chosen_logratio`.
    pub fn named(&self, prefix: &str) -> Metrics {
        [
            ("rewards_chosen", self.chosen),
            ("rewards_rejected", self.rejected),
            ("rewards_margin", self.margin),
            ("rewards_accuracy", self.accuracy),
            ("chosen_logratio", self.chosen_logratio),
        ]
        .into_iter()
        .map(|(name, value)| (format!("{prefix}{name}"), value))
        .collect()
    }
}

/// Where the reference's log-probabilities come from.
pub enum Reference {
    /// A frozen model, run on every batch.
    Live(Model),
    /// Computed once beforehand: `(chosen, rejected)` per training pair and per held-out pair.
    Precomputed {
        /// Per training pair.
        train: Vec<(f64, f64)>,
        /// Per held-out pair.
        val: Vec<(f64, f64)>,
    },
}

/// The settings of the preference loss.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The strength of the reference: larger keeps the policy closer to it.
    pub beta: f64,
    /// Which loss.
    pub kind: LossKind,
    /// How reply log-probabilities are reduced.
    pub reduce: Reduce,
    /// Pairs per micro-batch.
    pub batch_size: usize,
    /// The id that fills padding (never a target).
    pub pad: u32,
    /// The weight `a` of the chosen replies' negative log-likelihood (0: plain DPO).
    pub nll_weight: f64,
}

/// The reference's `(chosen, rejected)` log-probabilities of `pairs`, in batches, without
/// gradients.
pub fn reference_logps(
    reference: &Model,
    pairs: &[PairSeqs],
    s: &Settings,
    device: Device,
) -> Vec<(f64, f64)> {
    autograd::no_grad(|| {
        pairs
            .chunks(s.batch_size.max(1))
            .flat_map(|chunk| {
                let (c, r) = pair_logps(reference, chunk, s, device);
                let (c, r) = (c.value().to_vec_f64(), r.value().to_vec_f64());
                c.into_iter().zip(r).collect::<Vec<_>>()
            })
            .collect()
    })
}

/// The log-probabilities `(B)` of the chosen and of the rejected replies of `pairs`, from one
/// forward pass over all `2B` sequences.
pub fn pair_logps(model: &Model, pairs: &[PairSeqs], s: &Settings, device: Device) -> (Var, Var) {
    let seqs: Vec<&Sequence> = pairs
        .iter()
        .map(|p| &p.chosen)
        .chain(pairs.iter().map(|p| &p.rejected))
        .collect();
    let all = sequence_logps(model, &seqs, s.reduce, s.pad, device);
    let b = pairs.len();
    (all.narrow(0, 0, b), all.narrow(0, b, b))
}

/// DPO on encoded pairs against a reference.
pub struct Dpo {
    train: Vec<PairSeqs>,
    val: Vec<PairSeqs>,
    reference: Reference,
    settings: Settings,
}

impl Dpo {
    /// Training on `train`, evaluated on `val`.
    pub fn new(
        train: Vec<PairSeqs>,
        val: Vec<PairSeqs>,
        reference: Reference,
        settings: Settings,
    ) -> Dpo {
        Dpo {
            train,
            val,
            reference,
            settings,
        }
    }

    /// Where the reference's log-probabilities come from.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The numbers of training and of held-out pairs.
    pub fn pairs(&self) -> (usize, usize) {
        (self.train.len(), self.val.len())
    }

    /// The reference's log-probabilities of the pairs at `which` (of the training set, or of
    /// the held-out set with `held_out`).
    fn reference_of(&self, which: &[usize], held_out: bool, device: Device) -> (Tensor, Tensor) {
        let pairs: Vec<(f64, f64)> = match &self.reference {
            Reference::Precomputed { train, val } => {
                let set = if held_out { val } else { train };
                which.iter().map(|&i| set[i]).collect()
            }
            Reference::Live(model) => {
                let set = if held_out { &self.val } else { &self.train };
                let picked: Vec<PairSeqs> = which.iter().map(|&i| set[i].clone()).collect();
                reference_logps(model, &picked, &self.settings, device)
            }
        };
        let (c, r): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        let n = c.len();
        (Tensor::from_vec(c, &[n]), Tensor::from_vec(r, &[n]))
    }

    /// Loss and rewards of `model` on the pairs at `which`, in batches, without gradients.
    fn score(
        &self,
        model: &Model,
        which: &[usize],
        held_out: bool,
        device: Device,
    ) -> (f64, Rewards) {
        let set = if held_out { &self.val } else { &self.train };
        let s = &self.settings;
        let (mut pc, mut pr, mut rc, mut rr, mut loss) = (vec![], vec![], vec![], vec![], 0.0);
        autograd::no_grad(|| {
            for chunk in which.chunks(s.batch_size.max(1)) {
                let pairs: Vec<PairSeqs> = chunk.iter().map(|&i| set[i].clone()).collect();
                let (c, r) = pair_logps(model, &pairs, s, device);
                let (refc, refr) = self.reference_of(chunk, held_out, device);
                let l = preference_loss(&c, &r, &refc, &refr, s.beta, s.kind);
                loss += l.value().item() * chunk.len() as f64;
                pc.extend(c.value().to_vec_f64());
                pr.extend(r.value().to_vec_f64());
                rc.extend(refc.to_vec_f64());
                rr.extend(refr.to_vec_f64());
            }
        });
        let rewards = Rewards::of((&pc, &pr), (&rc, &rr), s.beta);
        (loss / which.len().max(1) as f64, rewards)
    }
}

impl Objective for Dpo {
    fn check(&self, cfg: &crate::model::config::Config) -> Result<()> {
        crate::stages::pairs::check_pairs(&self.train, &self.val, cfg)
    }

    fn loss(&mut self, model: &Model, rng: &mut tensor::Rng, device: Device) -> Result<Loss> {
        let which: Vec<usize> = (0..self.settings.batch_size)
            .map(|_| rng.below(self.train.len()))
            .collect();
        let pairs: Vec<PairSeqs> = which.iter().map(|&i| self.train[i].clone()).collect();
        let (c, r) = pair_logps(model, &pairs, &self.settings, device);
        let (rc, rr) = self.reference_of(&which, false, device);
        let s = &self.settings;
        let mut loss = preference_loss(&c, &r, &rc, &rr, s.beta, s.kind);
        if s.nll_weight > 0.0 {
            let chosen: Vec<&Sequence> = pairs.iter().map(|p| &p.chosen).collect();
            let nll = per_token_nll(&c, &chosen, s.reduce);
            loss = loss.add(&nll.mul_scalar(s.nll_weight));
        }
        let rewards = Rewards::of(
            (&c.value().to_vec_f64(), &r.value().to_vec_f64()),
            (&rc.to_vec_f64(), &rr.to_vec_f64()),
            s.beta,
        );
        let units = pairs
            .iter()
            .map(|p| p.chosen.ids.len() + p.rejected.ids.len())
            .sum();
        Ok(Loss {
            loss,
            units,
            metrics: rewards.named(""),
        })
    }

    fn evaluate(
        &mut self,
        model: &Model,
        _rng: &mut tensor::Rng,
        device: Device,
    ) -> Result<Metrics> {
        let seen: Vec<usize> = (0..self
            .val
            .len()
            .max(self.settings.batch_size)
            .min(self.train.len()))
            .collect();
        let (train_loss, _) = self.score(model, &seen, false, device);
        let mut metrics = vec![("train_loss".to_string(), train_loss)];
        if !self.val.is_empty() {
            let all: Vec<usize> = (0..self.val.len()).collect();
            let (val_loss, r) = self.score(model, &all, true, device);
            metrics.push(("val_loss".to_string(), val_loss));
            metrics.extend(r.named("val_"));
        }
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Config;
    use autograd::no_grad;
    use nn::Module;
    use tensor::{DType, Rng};

    fn model() -> Model {
        let cfg = Config {
            vocab_size: 9,
            block_size: 12,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
            ..Config::char_small()
        };
        let model = Model::new(&cfg, &mut Rng::new(2), &nn::SharedRng::new(0));
        nn::Module::to_dtype(&model, DType::F64).unwrap();
        model
    }

    fn seq(ids: &[u32], prompt: usize) -> Sequence {
        Sequence {
            ids: ids.to_vec(),
            scored: (0..ids.len()).map(|i| i >= prompt).collect(),
        }
    }

    #[test]
    fn sum_and_mean_log_probs_match_a_hand_computation() {
        let model = model();
        let a = seq(&[1, 2, 3, 4, 5], 3);
        let b = seq(&[6, 7, 8], 1);
        for reduce in [Reduce::Sum, Reduce::Mean] {
            let got = sequence_logps(&model, &[&a, &b], reduce, 0, Device::Cpu)
                .value()
                .to_vec::<f64>();
            for (s, g) in [&a, &b].iter().zip(&got) {
                // log softmax of the full logits at each scored position, by hand.
                let ids = Tensor::from_vec(s.ids.clone(), &[1, s.ids.len()]);
                let logits = model.logits(&ids).value().to_vec::<f64>();
                let v = 9;
                let mut terms = vec![];
                for t in 1..s.ids.len() {
                    if s.scored[t] {
                        let row = &logits[(t - 1) * v..t * v];
                        let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
                        terms.push(row[s.ids[t] as usize] - lse);
                    }
                }
                let sum: f64 = terms.iter().sum();
                let want = match reduce {
                    Reduce::Sum => sum,
                    Reduce::Mean => sum / terms.len() as f64,
                };
                assert!((g - want).abs() < 1e-10, "{reduce:?}: {g} vs {want}");
            }
        }
    }

    #[test]
    fn at_the_start_the_loss_is_ln_2_and_every_reward_is_0() {
        let model = model();
        let (c, r) = (seq(&[1, 2, 3, 4], 2), seq(&[1, 2, 5, 6, 7], 2));
        let reference = no_grad(|| sequence_logps(&model, &[&c, &r], Reduce::Sum, 0, Device::Cpu))
            .value()
            .to_vec::<f64>();
        let policy = sequence_logps(&model, &[&c, &r], Reduce::Sum, 0, Device::Cpu);
        let (pc, pr) = (policy.narrow(0, 0, 1), policy.narrow(0, 1, 1));
        let (rc, rr) = (
            Tensor::from_vec(vec![reference[0]], &[1]),
            Tensor::from_vec(vec![reference[1]], &[1]),
        );
        let loss = preference_loss(&pc, &pr, &rc, &rr, 0.1, LossKind::Sigmoid);
        assert_eq!(loss.value().item(), std::f64::consts::LN_2);
        let p = policy.value().to_vec::<f64>();
        let rewards = Rewards::of((&p[..1], &p[1..]), (&reference[..1], &reference[1..]), 0.1);
        assert_eq!(
            (rewards.chosen, rewards.rejected, rewards.margin),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn the_preference_losses_pass_the_gradient_check() {
        let mut rng = Rng::new(5);
        let draw = |rng: &mut Rng| {
            Tensor::from_vec(
                (0..4).map(|_| rng.normal() * 3.0).collect::<Vec<f64>>(),
                &[4],
            )
        };
        let (rc, rr) = (draw(&mut rng), draw(&mut rng));
        let inputs = [draw(&mut rng), draw(&mut rng)];
        for kind in [LossKind::Sigmoid, LossKind::Ipo, LossKind::Hinge] {
            let (rc, rr) = (rc.clone(), rr.clone());
            let f = move |x: &[Var]| preference_loss(&x[0], &x[1], &rc, &rr, 0.5, kind);
            autograd::gradcheck::gradcheck(&format!("{kind:?} preference loss"), f, &inputs)
                .unwrap();
        }
    }

    #[test]
    fn rewards_are_beta_times_the_log_ratios() {
        let r = Rewards::of(
            (&[-1.0, -2.0], &[-3.0, -1.0]),
            (&[-2.0, -2.0], &[-2.0, -2.0]),
            0.5,
        );
        assert_eq!(r.chosen, 0.5 * (1.0 + 0.0) / 2.0);
        assert_eq!(r.rejected, 0.5 * (-1.0 + 1.0) / 2.0);
        assert_eq!(r.margin, r.chosen - r.rejected);
        assert_eq!(r.accuracy, 0.5);
        assert_eq!(r.chosen_logratio, 0.5);
    }

    /// Pairs of random replies to random prompts over a vocabulary of 9.
    fn pairs(n: usize, rng: &mut Rng) -> Vec<PairSeqs> {
        let mut draw =
            |len: usize| -> Vec<u32> { (0..len).map(|_| 1 + rng.below(8) as u32).collect() };
        (0..n)
            .map(|i| {
                let prompt = draw(2 + i % 3);
                let reply = |r: Vec<u32>| seq(&[prompt.clone(), r].concat(), prompt.len());
                PairSeqs {
                    chosen: reply(draw(2 + i % 2)),
                    rejected: reply(draw(3)),
                }
            })
            .collect()
    }

    fn settings(batch_size: usize) -> Settings {
        Settings {
            beta: 0.5,
            kind: LossKind::Sigmoid,
            reduce: Reduce::Sum,
            batch_size,
            pad: 0,
            nll_weight: 0.0,
        }
    }

    fn small_config() -> Config {
        Config {
            vocab_size: 9,
            block_size: 12,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
            dropout: 0.0,
            learning_rate: 3e-2,
            warmup_iters: 0,
            max_iters: 30,
            ..Config::char_small()
        }
    }

    #[test]
    fn a_precomputed_reference_gives_the_losses_of_the_live_one() {
        let cfg = small_config();
        let reference = Model::new(&cfg, &mut Rng::new(4), &nn::SharedRng::new(0));
        let policy = Model::new(&cfg, &mut Rng::new(9), &nn::SharedRng::new(0));
        let (train, val) = (pairs(12, &mut Rng::new(1)), pairs(5, &mut Rng::new(2)));
        let s = settings(4);
        let precomputed = Reference::Precomputed {
            train: reference_logps(&reference, &train, &s, Device::Cpu),
            val: reference_logps(&reference, &val, &s, Device::Cpu),
        };
        let mut live = Dpo::new(train.clone(), val.clone(), Reference::Live(reference), s);
        let mut stored = Dpo::new(train, val, precomputed, s);
        for seed in 0..3 {
            let a = live
                .loss(&policy, &mut Rng::new(seed), Device::Cpu)
                .unwrap();
            let b = stored
                .loss(&policy, &mut Rng::new(seed), Device::Cpu)
                .unwrap();
            let (a, b) = (a.loss.value().item(), b.loss.value().item());
            assert!(a > 0.0 && (a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let live = live
            .evaluate(&policy, &mut Rng::new(0), Device::Cpu)
            .unwrap();
        let stored = stored
            .evaluate(&policy, &mut Rng::new(0), Device::Cpu)
            .unwrap();
        for ((name, a), (_, b)) in live.iter().zip(&stored) {
            assert!((a - b).abs() < 1e-6, "{name}: {a} vs {b}");
        }
    }

    #[test]
    fn training_separates_the_replies_and_leaves_the_reference_bit_identical() {
        let cfg = small_config();
        let model = || Model::new(&cfg, &mut Rng::new(4), &nn::SharedRng::new(0));
        let reference = model();
        reference.freeze();
        let before: Vec<Vec<f32>> = reference
            .params()
            .iter()
            .map(|p| p.value().to_vec())
            .collect();
        let train = pairs(8, &mut Rng::new(1));
        let mut dpo = Dpo::new(
            train.clone(),
            train,
            Reference::Live(reference),
            settings(4),
        );
        let mut trainer = crate::train::Trainer::with_model(
            cfg.clone(),
            model(),
            nn::SharedRng::new(0),
            Device::Cpu,
        )
        .unwrap();
        let start = dpo
            .evaluate(&trainer.model, &mut Rng::new(0), Device::Cpu)
            .unwrap();
        assert_eq!(start[1].0, "val_loss");
        assert!(
            (start[1].1 - std::f64::consts::LN_2).abs() < 1e-6,
            "{start:?}"
        );
        let mut last = None;
        for _ in 0..cfg.max_iters {
            last = Some(trainer.train_step(&mut dpo).unwrap());
        }
        let step = last.unwrap();
        let names: Vec<&str> = step.metrics.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "rewards_chosen",
                "rewards_rejected",
                "rewards_margin",
                "rewards_accuracy",
                "chosen_logratio"
            ]
        );
        let end = dpo
            .evaluate(&trainer.model, &mut Rng::new(0), Device::Cpu)
            .unwrap();
        let metric = |name: &str| end.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(metric("val_loss") < 0.3, "{end:?}");
        assert_eq!(metric("val_rewards_accuracy"), 1.0);
        assert!(metric("val_rewards_margin") > 1.0, "{end:?}");
        let Reference::Live(reference) = &dpo.reference else {
            unreachable!()
        };
        let after: Vec<Vec<f32>> = reference
            .params()
            .iter()
            .map(|p| p.value().to_vec())
            .collect();
        assert_eq!(before, after);
        assert!(reference.params().iter().all(|p| p.grad().is_none()));
    }

    #[test]
    fn the_nll_term_is_the_chosen_replies_mean_loss_per_token() {
        let model = model();
        let (a, b) = (seq(&[1, 2, 3, 4, 5], 2), seq(&[6, 7, 8], 1));
        let mean = sequence_logps(&model, &[&a, &b], Reduce::Mean, 0, Device::Cpu);
        let want = -(mean.value().to_vec::<f64>().iter().sum::<f64>()) / 2.0;
        for reduce in [Reduce::Sum, Reduce::Mean] {
            let logps = sequence_logps(&model, &[&a, &b], reduce, 0, Device::Cpu);
            let got = per_token_nll(&logps, &[&a, &b], reduce).value().item();
            assert!((got - want).abs() < 1e-12, "{reduce:?}: {got} vs {want}");
        }
    }
}
