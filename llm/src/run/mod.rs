//! A run directory: the files every stage writes and reads, how they are written, and how a
//! model is loaded from one. Below [`crate::train`] and every other stage, which all use it.
//!
//! ```text
//! DIR/
//!   config.json              the configuration (nanoGPT keys)          run::CONFIG
//!   tokenizer.json           the tokenizer                             run::TOKENIZER
//!   data.json                where the training data came from        run::source
//!   checkpoint.safetensors   weights, optimizer state, step, generators run::checkpoint
//!   log.jsonl                one line per step and per evaluation      train::log
//!   loss.svg                 the loss curve                            train::plot
//!   lock                     held by the one process writing the run   run::lock
//! ```
//!
//! Every file is written under a temporary name, flushed to disk and renamed into place
//! ([`write_atomically`]), so a kill at any instant leaves the previous version whole.

pub mod checkpoint;
pub mod load;
pub mod lock;
pub mod source;

use crate::model::config::{self, Config};
use crate::tokenizer::{self, Tokenizer};
use crate::{Error, Result};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// The configuration's file name.
pub const CONFIG: &str = "config.json";
/// The tokenizer's file name.
pub const TOKENIZER: &str = "tokenizer.json";
/// The checkpoint's file name.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The training log's file name.
pub const LOG: &str = "log.jsonl";
/// The loss curve's file name.
pub const CURVE: &str = "loss.svg";
/// The reward curve's file name (reinforcement learning).
pub const REWARD_CURVE: &str = "reward.svg";

/// The files of a run, besides its lock.
pub const RUN_FILES: [&str; 7] = [
    CONFIG,
    TOKENIZER,
    source::DATA,
    CHECKPOINT,
    LOG,
    CURVE,
    REWARD_CURVE,
];

/// True when `dir` holds a run (its configuration, checkpoint or log).
pub fn holds_run(dir: &Path) -> bool {
    [CONFIG, CHECKPOINT, LOG]
        .iter()
        .any(|f| dir.join(f).exists())
}

/// `path` with `.tmp` appended.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Flushes a finished temporary file and renames it over `path`.
fn commit(tmp: &Path, path: &Path) -> Result<()> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("flush", tmp, e))?;
    fs::rename(tmp, path).map_err(|e| Error::io("rename into place", path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Persist the rename itself; not every filesystem allows syncing a directory.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file, flush, rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    fs::write(&tmp, bytes).map_err(|e| Error::io("write", &tmp, e))?;
    commit(&tmp, path)
}

/// Writes the run's configuration and tokenizer (once, at the start of a run).
pub fn write_run_files(dir: &Path, cfg: &Config, tok: &dyn Tokenizer) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let json = serde_json::to_string_pretty(cfg).expect("a config serializes");
    write_atomically(&dir.join(CONFIG), json.as_bytes())?;
    let tok_json = serde_json::to_string_pretty(&tok.to_json()).expect("a tokenizer serializes");
    write_atomically(&dir.join(TOKENIZER), tok_json.as_bytes())
}

/// Reads a run's configuration and checks every key ([`Config::validate_resolved`]).
pub fn read_config(dir: &Path) -> Result<Config> {
    let path = dir.join(CONFIG);
    let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let json = config::parse_object(&text).map_err(|e| Error::json(&path, &e))?;
    let invalid = |why: String| Error::Config(format!("{}: {why}", path.display()));
    if let Some(why) = config::other_family(&json) {
        return Err(invalid(why));
    }
    let cfg: Config = serde_json::from_value(serde_json::Value::Object(json))
        .map_err(|e| invalid(e.to_string()))?;
    cfg.validate_resolved().map_err(|e| invalid(e.0))?;
    Ok(cfg)
}

/// Reads a run's tokenizer.
pub fn read_tokenizer(dir: &Path) -> Result<Box<dyn Tokenizer>> {
    tokenizer::load(&dir.join(TOKENIZER))
}
