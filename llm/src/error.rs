//! The crate's error type. Each message is one sentence that names what is at fault: the file and
//! line, the byte offset, the token id or the flag.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written or created.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted: "read", "write", "create", "open", ...
        action: &'static str,
        /// The file at fault.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Bytes that should be UTF-8 are not.
    #[error("{what} is not valid UTF-8 at byte {offset}")]
    Utf8 {
        /// What was being read, e.g. a file name or "the decoded text".
        what: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A file's contents do not parse.
    #[error("{}, line {line}: {message}", path.display())]
    Parse {
        /// The file at fault.
        path: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// What is wrong there.
        message: String,
    },
    /// A character tokenizer met a character outside its vocabulary.
    #[error("character {ch:?} (U+{:04X}) at byte {offset} is not in the vocabulary", *.ch as u32)]
    UnknownChar {
        /// The character.
        ch: char,
        /// Its byte offset in the text.
        offset: usize,
    },
    /// The text holds a special token and the caller chose to reject them.
    #[error("the text contains the special token {token:?} at byte {offset}, and special tokens are rejected")]
    SpecialTokenRejected {
        /// The special token.
        token: String,
        /// Its byte offset in the text.
        offset: usize,
    },
    /// Decoding met an id the vocabulary does not have.
    #[error(
        "token id {id} at position {position} is out of range for a vocabulary of {vocab_size}"
    )]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// Its index in the id sequence.
        position: usize,
        /// The vocabulary size: valid ids are below it.
        vocab_size: usize,
    },
    /// An error inside a named file (the inner error's offsets are offsets in that file).
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What went wrong in it.
        source: Box<Error>,
    },
    /// An argument or a value that cannot be used, with the reason.
    #[error("{0}")]
    Invalid(String),
    /// A configuration that cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// Training produced a loss that is NaN or infinite.
    #[error("the training loss became {loss} at step {step}")]
    NonFiniteLoss {
        /// The step whose loss was not finite.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// A tensor operation failed (a shape, dtype or device problem).
    #[error(transparent)]
    Tensor(#[from] tensor::Error),
    /// A weights file could not be read or written.
    #[error(transparent)]
    StateDict(#[from] nn::state_dict::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A parse error at `line` of `path`.
    pub fn parse(path: &Path, line: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// A `serde_json` error in `path`, keeping the line it reports.
    pub fn json(path: &Path, e: &serde_json::Error) -> Error {
        Error::parse(path, e.line(), json_message(e))
    }

    /// The same error with its byte offsets moved `by` bytes later: for an error found in a piece
    /// of a longer text that starts at byte `by`.
    pub fn shifted(self, by: usize) -> Error {
        match self {
            Error::UnknownChar { ch, offset } => Error::UnknownChar {
                ch,
                offset: offset + by,
            },
            Error::SpecialTokenRejected { token, offset } => Error::SpecialTokenRejected {
                token,
                offset: offset + by,
            },
            Error::Utf8 { what, offset } => Error::Utf8 {
                what,
                offset: offset + by,
            },
            other => other,
        }
    }

    /// The same error, said to be inside `path`.
    pub fn in_file(self, path: &Path) -> Error {
        Error::InFile {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

/// A `serde_json` message without its trailing " at line L column C" (the caller names the line),
/// but with the column, which is the useful part on a long line.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) => format!("{message} (column {})", e.column()),
        None => full,
    }
}
