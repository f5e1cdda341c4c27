//! The run around the steps, the same for every stage: evaluation every `eval_interval` steps,
//! a checkpoint every `checkpoint_interval` steps and at the end (before the final evaluation,
//! so nothing after it can lose the trained steps), Ctrl-C finishing the step and
//! checkpointing, a stop with a clear message on a loss that is not finite, a progress bar, the
//! JSONL log and the loss curve.
//!
//! An evaluation that fails is a warning, never fatal to the training.

use super::log::{History, TrainLog};
use super::objective::{Metrics, Objective};
use super::plot::{curve_svg, Series};
use super::Trainer;
use crate::run::{self, CURVE, REWARD_CURVE};
use crate::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How a run ended.
pub struct Outcome {
    /// Ctrl-C stopped it before `max_iters`.
    pub interrupted: bool,
    /// Every logged loss, for the curve and the summary.
    pub history: History,
    /// The last evaluation's metrics (empty when it did not run).
    pub last_metrics: Metrics,
}

/// Trains `trainer` on `objective` until the configuration's `max_iters` or Ctrl-C, writing
/// the log, checkpoints and the loss curve into `out` (which the caller has prepared, holding
/// its lock). `resumed`: the trainer was restored from `out`'s checkpoint, whose log lines up to
/// its step are kept. `unit` names what the objective's micro-batches count (`tok`, `ex`).
pub fn drive(
    trainer: &mut Trainer,
    objective: &mut dyn Objective,
    out: &Path,
    resumed: bool,
    unit: &str,
) -> Result<Outcome> {
    let (mut log, mut history) = TrainLog::open(out, resumed.then_some(trainer.step))?;
    let max_iters = trainer.cfg.max_iters;
    let (eval_interval, checkpoint_interval) =
        (trainer.cfg.eval_interval, trainer.cfg.checkpoint_interval);
    let interrupted = interrupt_flag();
    let progress = progress_bar(max_iters, trainer.step);
    let started = Instant::now();
    let mut units = 0.0;
    let mut saved_step = resumed.then_some(trainer.step);
    let mut last_metrics = vec![];
    while trainer.step < max_iters && !interrupted.load(Ordering::Relaxed) {
        if eval_interval > 0 && trainer.step.is_multiple_of(eval_interval) {
            last_metrics = evaluate(trainer, objective, &mut log, &mut history, &progress);
        }
        let s = trainer.train_step(objective).map_err(|e| {
            progress.abandon();
            stopped(e, out, saved_step)
        })?;
        units += s.tok_per_s * s.ms / 1e3;
        log.step(&s)?;
        history.train.push((s.step, s.loss));
        if let Some((_, r)) = s.metrics.iter().find(|(k, _)| k == "reward") {
            history.reward.push((s.step, *r));
        }
        progress.set_position(s.step as u64);
        progress.set_message(format!(
            "loss {:.4} | lr {:.2e} | {:.0} {unit}/s",
            s.loss, s.lr, s.tok_per_s
        ));
        if checkpoint_interval > 0 && s.step % checkpoint_interval == 0 {
            trainer.save(out)?;
            saved_step = Some(trainer.step);
            write_curve(out, trainer.step, &history)?;
        }
    }
    let was_interrupted = interrupted.load(Ordering::Relaxed) && trainer.step < max_iters;
    trainer.save(out)?;
    if !was_interrupted {
        last_metrics = evaluate(trainer, objective, &mut log, &mut history, &progress);
    }
    write_curve(out, trainer.step, &history)?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} at step {} after {seconds:.1} s ({:.0} {unit}/s){}; checkpoint in {}",
        if was_interrupted {
            "interrupted"
        } else {
            "finished"
        },
        trainer.step,
        units / seconds.max(1e-9),
        describe(&last_metrics, "; "),
        out.display()
    );
    Ok(Outcome {
        interrupted: was_interrupted,
        history,
        last_metrics,
    })
}

/// `, name value, ...` after `lead`, or nothing for no metrics.
fn describe(metrics: &Metrics, lead: &str) -> String {
    if metrics.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    format!("{lead}{}", parts.join(", "))
}

/// Evaluates, logs and reports the metrics; an evaluation that fails is reported as a warning
/// and gives no metrics.
fn evaluate(
    trainer: &mut Trainer,
    objective: &mut dyn Objective,
    log: &mut TrainLog,
    history: &mut History,
    progress: &indicatif::ProgressBar,
) -> Metrics {
    let metrics = match trainer.evaluate(objective) {
        Ok(m) => m,
        Err(e) => {
            say(
                progress,
                &format!("warning: evaluation at step {} skipped: {e}", trainer.step),
            );
            return vec![];
        }
    };
    if let Err(e) = log.eval(trainer.step, &metrics) {
        say(progress, &format!("warning: {e}"));
    }
    history.record_eval(trainer.step, |name| {
        metrics.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    });
    say(
        progress,
        &format!("step {}{}", trainer.step, describe(&metrics, ": ")),
    );
    metrics
}

/// The error that stopped training, with what is left on disk.
fn stopped(e: Error, out: &Path, saved_step: Option<usize>) -> Error {
    let left = match saved_step {
        Some(step) => format!(
            "the checkpoint of step {step} in {} is untouched",
            out.display()
        ),
        None => format!("no checkpoint was written to {}", out.display()),
    };
    Error::Invalid(format!("{e}; stopping: {left}"))
}

/// Writes the loss curve of a run at `step`, and for reinforcement learning the reward curve.
fn write_curve(out: &Path, step: usize, history: &History) -> Result<()> {
    let title = format!("{} ({step} steps)", out.display());
    if !history.reward.is_empty() {
        let svg = curve_svg(
            &title,
            "reward",
            &[
                Series {
                    name: "rollout mean",
                    color: "#1f77b4",
                    points: &history.reward,
                },
                Series {
                    name: "held out",
                    color: "#d62728",
                    points: &history.val_reward,
                },
            ],
        );
        run::write_atomically(&out.join(REWARD_CURVE), svg.as_bytes())?;
    }
    let svg = curve_svg(
        &title,
        "loss",
        &[
            Series {
                name: "train",
                color: "#1f77b4",
                points: &history.train,
            },
            Series {
                name: "validation",
                color: "#d62728",
                points: &history.val,
            },
        ],
    );
    run::write_atomically(&out.join(CURVE), svg.as_bytes())
}

/// Prints a line above the progress bar (or plainly when there is no bar).
fn say(progress: &indicatif::ProgressBar, line: &str) {
    if progress.is_hidden() {
        eprintln!("{line}");
    } else {
        progress.println(line);
    }
}

fn progress_bar(total: usize, at: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} | {msg} | {elapsed_precise} < {eta_precise}",
        )
        .expect("a valid progress template"),
    );
    bar.set_position(at as u64);
    bar
}

/// A flag set by Ctrl-C; a second Ctrl-C exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    // Another handler may already be installed (e.g. in tests running several commands); the
    // run then simply cannot be interrupted gracefully.
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)");
    });
    flag
}
