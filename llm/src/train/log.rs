//! The training log: one JSON object per line, for each step
//! (`{"step", "loss", "grad_norm", "lr", "ms", "tok_per_s"}`) and each evaluation (`{"step"}`
//! and the objective's metrics, such as `"train_loss"` and `"val_loss"`). On resume, lines after the checkpoint's step (written
//! by the interrupted run) are dropped, so the log describes exactly the resumed run.

use super::objective::Metrics;
use super::StepStats;
use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Training and validation losses by step, for the loss curve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// `(step, loss)` of each logged training step.
    pub train: Vec<(usize, f64)>,
    /// `(step, val_loss)` of each evaluation that had a validation split.
    pub val: Vec<(usize, f64)>,
    /// `(step, reward)` of each logged step of reinforcement learning (its rollout's mean).
    pub reward: Vec<(usize, f64)>,
    /// `(step, value)` of each evaluation of reinforcement learning on held-out prompts: the
    /// mean reward with a model scorer, the mean score with a verifier.
    pub val_reward: Vec<(usize, f64)>,
}

impl History {
    fn record(&mut self, line: &serde_json::Value) {
        let Some(step) = line["step"].as_u64().map(|s| s as usize) else {
            return;
        };
        if let Some(loss) = line["loss"].as_f64() {
            self.train.push((step, loss));
        }
        self.record_eval(step, |name| line[name].as_f64());
        if let Some(reward) = line["reward"].as_f64() {
            self.reward.push((step, reward));
        }
    }

    /// Records the held-out values of an evaluation at `step`, read by `metric`.
    pub fn record_eval(&mut self, step: usize, metric: impl Fn(&str) -> Option<f64>) {
        if let Some(val) = metric("val_loss") {
            self.val.push((step, val));
        }
        if let Some(val) = metric("val_mean_reward").or_else(|| metric("val_mean_score")) {
            self.val_reward.push((step, val));
        }
    }
}

/// An open training log.
pub struct TrainLog {
    path: PathBuf,
    file: File,
}

impl TrainLog {
    /// Starts a log in `dir`. With `resume_from = Some(step)`, keeps the existing lines up to
    /// that step and returns their history; otherwise starts empty.
    pub fn open(dir: &Path, resume_from: Option<usize>) -> Result<(TrainLog, History)> {
        let path = dir.join(crate::run::LOG);
        let mut history = History::default();
        let mut kept = String::new();
        if let Some(last) = resume_from {
            let text = fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if value["step"].as_u64().is_some_and(|s| s as usize <= last) {
                    history.record(&value);
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        crate::run::write_atomically(&path, kept.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        Ok((TrainLog { path, file }, history))
    }

    fn write(&mut self, value: serde_json::Value) -> Result<()> {
        writeln!(self.file, "{value}").map_err(|e| Error::io("write", &self.path, e))
    }

    /// Appends a step's statistics.
    pub fn step(&mut self, s: &StepStats) -> Result<()> {
        let mut line = serde_json::to_value(s).expect("step stats serialize");
        let fields = line
            .as_object_mut()
            .expect("step stats serialize to an object");
        for (name, value) in &s.metrics {
            fields.insert(name.clone(), (*value).into());
        }
        self.write(line)
    }

    /// Appends an evaluation.
    pub fn eval(&mut self, step: usize, metrics: &Metrics) -> Result<()> {
        let mut line = serde_json::Map::new();
        line.insert("step".into(), step.into());
        for (name, value) in metrics {
            line.insert(name.clone(), (*value).into());
        }
        self.write(serde_json::Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(step: usize, loss: f64) -> StepStats {
        StepStats {
            step,
            loss,
            grad_norm: 1.0,
            lr: 1e-3,
            ms: 10.0,
            tok_per_s: 100.0,
            phases: Default::default(),
            metrics: vec![("margin".to_string(), step as f64 / 4.0)],
        }
    }

    #[test]
    fn resuming_drops_lines_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, h) = TrainLog::open(dir.path(), None).unwrap();
        assert_eq!(h, History::default());
        for s in 1..=5 {
            log.step(&stats(s, 5.0 - s as f64)).unwrap();
        }
        let metrics = vec![
            ("train_loss".to_string(), 1.5),
            ("val_loss".to_string(), 1.75),
        ];
        log.eval(4, &metrics).unwrap();
        drop(log);
        let (mut log, h) = TrainLog::open(dir.path(), Some(4)).unwrap();
        assert_eq!(h.train, vec![(1, 4.0), (2, 3.0), (3, 2.0), (4, 1.0)]);
        assert_eq!(h.val, vec![(4, 1.75)]);
        log.step(&stats(5, 0.5)).unwrap();
        let text = fs::read_to_string(dir.path().join(crate::run::LOG)).unwrap();
        assert_eq!(text.lines().count(), 6);
        let last = text.lines().last().unwrap();
        assert!(
            last.contains("\"loss\":0.5") && last.contains("\"margin\":1.25"),
            "{last}"
        );
    }
}
