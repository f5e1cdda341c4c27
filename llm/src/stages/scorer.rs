//! What scores a reply in reinforcement learning: a task's verifier, a reward model, or the
//! probability a classifier gives one class.
//!
//! A scorer is named by a spec (`llm ppo --reward SPEC`):
//!
//! - `arithmetic` or `countdown`: the task's verifier against the problem's answer, reading
//!   the reply's first line, trimmed (a score in `[0, 1]`, see [`crate::tasks`]);
//! - `DIR`: the reward model of a run directory written by `llm reward train`; it reads the
//!   user's prompt in its own template, the reply and its end token, as it was trained;
//! - `DIR:CLASS`: the classifier of a run directory written by `llm classify train`; the
//!   score is its probability of the class named `CLASS` for the prompt followed directly by
//!   the reply (for example the positive class of a sentiment classifier, for a policy that
//!   continues the start of a text).
//!
//! Model scorers read with their own tokenizers, so they need not share the policy's.

use crate::stages::classify::Classifier;
use crate::stages::reward::{RewardModel, REWARD_FILE};
use crate::tasks::{Problem, Task, Verifier};
use crate::{Error, Result};
use std::path::Path;
use tensor::Device;

/// Replies a model scorer reads at once.
const BATCH: usize = 32;

/// A reply's scorer (see the module docs).
pub enum Scorer {
    /// A task's verifier.
    Task(Task),
    /// A reward model's score.
    RewardModel(Box<RewardModel>),
    /// A classifier's probability of class `class`.
    Class {
        /// The classifier.
        classifier: Box<Classifier>,
        /// The index of the class.
        class: usize,
    },
}

impl Scorer {
    /// The scorer `spec` names (see the module docs), with any model on `device`.
    pub fn parse(spec: &str, device: Device) -> Result<Scorer> {
        if let Ok(task) = spec.parse::<Task>() {
            return Ok(Scorer::Task(task));
        }
        if Path::new(spec).join(REWARD_FILE).is_file() {
            return Ok(Scorer::RewardModel(Box::new(RewardModel::load(
                Path::new(spec),
                device,
            )?)));
        }
        if let Some((dir, class)) = spec.rsplit_once(':') {
            if Path::new(dir).is_dir() {
                let classifier = Classifier::load(Path::new(dir), device)?;
                let class = classifier.class(class)?;
                return Ok(Scorer::Class {
                    classifier: Box::new(classifier),
                    class,
                });
            }
        }
        Err(Error::Invalid(format!(
            "--reward {spec:?} is neither a task (arithmetic, countdown), nor a reward model's \
             run directory (one holding {REWARD_FILE}), nor a classifier's directory and a \
             class name (DIR:CLASS)"
        )))
    }

    /// Whether the scorer reads the problems' answers (a task's verifier does).
    pub fn needs_answers(&self) -> bool {
        matches!(self, Scorer::Task(_))
    }

    /// The score of each reply, `replies[i]` being the text written after the user's message
    /// `problems[i].prompt` (before any template) up to its end token.
    pub fn score(&self, problems: &[&Problem], replies: &[String]) -> Result<Vec<f64>> {
        assert_eq!(problems.len(), replies.len(), "one reply per problem");
        match self {
            Scorer::Task(task) => Ok(problems
                .iter()
                .zip(replies)
                .map(|(p, r)| task.score(p, r.trim()))
                .collect()),
            Scorer::RewardModel(model) => {
                let pairs: Vec<(&str, &str)> = problems
                    .iter()
                    .zip(replies)
                    .map(|(p, r)| (p.prompt.as_str(), r.as_str()))
                    .collect();
                model.score(&pairs, BATCH)
            }
            Scorer::Class { classifier, class } => {
                let texts: Vec<String> = problems
                    .iter()
                    .zip(replies)
                    .map(|(p, r)| format!("{}{r}", p.prompt))
                    .collect();
                classifier.probability_of(&texts, *class, BATCH)
            }
        }
    }
}
