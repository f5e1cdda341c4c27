//! Where a run's training data came from, recorded in the run directory as `data.json`, so that
//! a resumed run trains on the same data and refuses other data.
//!
//! ```text
//! {"path": "/data/shakespeare", "tokenizer": "char", "train_tokens": 1003854,
//!  "fingerprint": "6f1c0f7d2a9b8e41"}
//! ```
//!
//! `path` is the `--data` directory or file made absolute, or `null` for the built-in Tiny
//! Shakespeare; `tokenizer` is the `--tokenizer` that encoded a text file (`char` for the
//! built-in text; a prepared directory names its own in `meta.json`); `train_tokens` counts the
//! training split; `fingerprint` is a 64-bit FNV-1a hash, in hex, of the prepared directory's
//! `meta.json` or of the text. A change to any of them means other data.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The record's file name inside a run directory.
pub const DATA: &str = "data.json";

/// What a run trains on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// The `--data` directory or text file, absolute; `None` for the built-in text.
    pub path: Option<PathBuf>,
    /// The tokenizer named on the command line for a text file.
    pub tokenizer: String,
    /// Tokens in the training split.
    pub train_tokens: usize,
    /// FNV-1a hash of `meta.json` (a prepared directory) or of the text, as 16 hex digits.
    pub fingerprint: String,
}

/// The 64-bit FNV-1a hash of `bytes` as 16 hex digits: stable across platforms and versions.
pub fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl DataSource {
    /// How the source reads in messages: its path, or the built-in text.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "the built-in Tiny Shakespeare".into(),
        }
    }

    /// Writes the record into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a data source serializes");
        super::write_atomically(&dir.join(DATA), json.as_bytes())
    }

    /// The record of the run in `dir`, or `None` for a run written before runs recorded their
    /// data.
    pub fn read(dir: &Path) -> Result<Option<DataSource>> {
        let path = dir.join(DATA);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::json(&path, &e))
    }

    /// Checks that `now`, the data as read today, is the data this record describes; the error
    /// names what differs and the record's file in `dir`.
    pub fn check_unchanged(&self, now: &DataSource, dir: &Path) -> Result<()> {
        let what = if self.path != now.path {
            format!("comes from {}", now.describe())
        } else if self.tokenizer != now.tokenizer {
            format!("is encoded by the tokenizer {:?}", now.tokenizer)
        } else if self.train_tokens != now.train_tokens || self.fingerprint != now.fingerprint {
            "has changed since".into()
        } else {
            return Ok(());
        };
        Err(Error::Invalid(format!(
            "the run in {} was trained on {} (see {}), but the data now {what}; resuming would train on other data",
            dir.display(),
            self.describe(),
            dir.join(DATA).display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(tokens: usize) -> DataSource {
        DataSource {
            path: Some("/data/text.txt".into()),
            tokenizer: "char".into(),
            train_tokens: tokens,
            fingerprint: fingerprint(b"to be or not to be"),
        }
    }

    #[test]
    fn fingerprints_are_fnv1a() {
        // Published FNV-1a 64 values.
        assert_eq!(fingerprint(b""), "cbf29ce484222325");
        assert_eq!(fingerprint(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fingerprint(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn the_record_round_trips_and_any_difference_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DataSource::read(dir.path()).unwrap(), None);
        let s = source(100);
        s.write(dir.path()).unwrap();
        let back = DataSource::read(dir.path()).unwrap().unwrap();
        assert_eq!(back, s);
        back.check_unchanged(&s, dir.path()).unwrap();
        for (other, says) in [
            (
                DataSource {
                    path: None,
                    ..s.clone()
                },
                "built-in",
            ),
            (
                DataSource {
                    tokenizer: "gpt2".into(),
                    ..s.clone()
                },
                "gpt2",
            ),
            (source(101), "changed"),
            (
                DataSource {
                    fingerprint: fingerprint(b"x"),
                    ..s.clone()
                },
                "changed",
            ),
        ] {
            let err = back
                .check_unchanged(&other, dir.path())
                .unwrap_err()
                .to_string();
            assert!(err.contains(says) && err.contains("data.json"), "{err}");
        }
    }
}
