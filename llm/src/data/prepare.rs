//! `prepare`: text files to `train.bin`, `val.bin` and `meta.json`.
//!
//! The inputs are read as one text, their concatenation. Its first `⌊(1 - f) · N⌋` bytes (`N`
//! bytes in all, `f` the validation fraction; the cut moved forward to a character boundary and
//! out of any special token) are the training text and the rest the validation text, each
//! encoded on its own, as nanoGPT's `prepare.py` does. A file's end also ends a text: nothing
//! merges across files.
//!
//! Files are streamed in blocks of a few MiB, so their size is not bounded by memory. A block is
//! cut at a point where cutting does not change the ids (see [`crate::tokenizer::parallel`]),
//! the rest carried into the next block, and each block is encoded in parallel pieces. Where a
//! block has no such point (megabytes without a space after a word) it is cut at its end; and a
//! BPE without a split pattern, whose merges may cross spaces, can encode the text around a cut
//! differently from the whole.
//!
//! The three outputs are written whole under temporary names (`*.partial`), and only then
//! renamed into place: the old `meta.json` is removed first and the new one renamed last, so
//! at no moment does a `meta.json` sit beside `.bin` files it does not describe. A failed run
//! removes its `*.partial` files and leaves any earlier outputs as they were.

use super::{Meta, TokenDtype, META_FILE};
use crate::tokenizer::parallel::{cut_before, inside_special};
use crate::tokenizer::{self, encode_parallel, Special, Tokenizer};
use crate::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of text encoded at a time.
const BLOCK: usize = 8 << 20;

/// What `prepare` reads and writes.
#[derive(Clone, Debug)]
pub struct PrepareOptions {
    /// Text files, UTF-8, read in order as one text.
    pub inputs: Vec<PathBuf>,
    /// `char` (a vocabulary of the inputs' characters), `gpt2`, or a tokenizer file or directory
    /// (see [`tokenizer::resolve`]).
    pub tokenizer: String,
    /// The output directory (created if needed).
    pub out: PathBuf,
    /// The fraction of the text, at its end, that becomes `val.bin`; in `[0, 1)`.
    pub val_fraction: f64,
    /// What to do with special-token strings in the text.
    pub special: Special,
}

/// Runs `prepare` and returns the metadata it wrote.
pub fn prepare(options: &PrepareOptions) -> Result<Meta> {
    if !(0.0..1.0).contains(&options.val_fraction) {
        return Err(Error::Invalid(format!(
            "--val-fraction {} is not in [0, 1)",
            options.val_fraction
        )));
    }
    if options.inputs.is_empty() {
        return Err(Error::Invalid(
            "prepare needs at least one --input file".into(),
        ));
    }
    let mut total = 0u64;
    for path in &options.inputs {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io("read", path, e))?
            .len();
        if len == 0 {
            return Err(Error::Invalid(format!("{} is empty", path.display())));
        }
        total += len;
    }
    let tok = tokenizer::resolve(&options.tokenizer, || distinct_chars(&options.inputs))?;
    super::create_out_dir(&options.out)?;
    let outputs = Outputs::new(&options.out);
    let meta =
        write_partials(options, &*tok, total, &outputs).inspect_err(|_| outputs.discard())?;
    outputs.commit()?;
    Ok(meta)
}

/// The three outputs of a prepared directory and their temporary names.
struct Outputs {
    train: PathBuf,
    val: PathBuf,
    meta: PathBuf,
}

impl Outputs {
    fn new(dir: &Path) -> Outputs {
        Outputs {
            train: dir.join("train.bin"),
            val: dir.join("val.bin"),
            meta: dir.join(META_FILE),
        }
    }

    /// The temporary name of an output.
    fn partial(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    }

    /// Moves the finished temporary files into place: the old metadata out first, the new
    /// metadata in last.
    fn commit(&self) -> Result<()> {
        if self.meta.exists() {
            std::fs::remove_file(&self.meta).map_err(|e| Error::io("remove", &self.meta, e))?;
        }
        for path in [&self.train, &self.val, &self.meta] {
            let partial = Outputs::partial(path);
            std::fs::rename(&partial, path).map_err(|e| Error::io("rename", &partial, e))?;
        }
        Ok(())
    }

    /// Removes whatever temporary files a failed run left.
    fn discard(&self) {
        for path in [&self.train, &self.val, &self.meta] {
            let _ = std::fs::remove_file(Outputs::partial(path));
        }
    }
}

/// Encodes the inputs into the temporary files of `outputs` and returns the metadata written.
fn write_partials(
    options: &PrepareOptions,
    tok: &dyn Tokenizer,
    total: u64,
    outputs: &Outputs,
) -> Result<Meta> {
    let dtype = TokenDtype::for_vocab(tok.vocab_size());
    let train_at = (total as f64 * (1.0 - options.val_fraction)).floor() as u64;
    let mut train = TokenWriter::create(&Outputs::partial(&outputs.train), dtype)?;
    let mut val = TokenWriter::create(&Outputs::partial(&outputs.val), dtype)?;
    let mut base = 0u64;
    for path in &options.inputs {
        let encode = |text: &str, offset: usize| {
            encode_parallel(tok, text, options.special).map_err(|e| e.shifted(offset).in_file(path))
        };
        stream_text(
            path,
            tok,
            train_at.checked_sub(base),
            BLOCK,
            |text, offset| {
                let writer = match base + (offset as u64) < train_at {
                    true => &mut train,
                    false => &mut val,
                };
                writer.write(&encode(text, offset)?)
            },
        )?;
        base += std::fs::metadata(path)
            .map_err(|e| Error::io("read", path, e))?
            .len();
    }
    let meta = Meta {
        version: 1,
        tokenizer: tok.to_json(),
        vocab_size: tok.vocab_size(),
        dtype,
        train_tokens: train.count,
        val_tokens: val.count,
    };
    if meta.train_tokens == 0 {
        return Err(Error::Invalid(format!(
            "the training split is empty: all {total} bytes of input went to validation (--val-fraction {})",
            options.val_fraction
        )));
    }
    train.finish()?;
    val.finish()?;
    let text = serde_json::to_string_pretty(&meta).expect("metadata serializes") + "\n";
    let partial = Outputs::partial(&outputs.meta);
    std::fs::write(&partial, text.as_bytes())
        .and_then(|()| File::open(&partial)?.sync_all())
        .map_err(|e| Error::io("write", &partial, e))?;
    Ok(meta)
}

/// Reads `path` as UTF-8 in blocks of about `block` bytes and calls `f(text, offset)` on consecutive pieces, cut where
/// encoding is not changed by the cut (see the module documentation), plus a forced cut at byte
/// `split` of the file when it is given and inside it.
fn stream_text(
    path: &Path,
    tok: &dyn Tokenizer,
    split: Option<u64>,
    block: usize,
    mut f: impl FnMut(&str, usize) -> Result<()>,
) -> Result<()> {
    let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let read_size = block.min(1 << 20);
    let mut buf: Vec<u8> = Vec::with_capacity(block + read_size);
    let (mut offset, mut eof) = (0usize, false);
    loop {
        while !eof && buf.len() < block {
            let old = buf.len();
            buf.resize(old + read_size, 0);
            let n = file
                .read(&mut buf[old..])
                .map_err(|e| Error::io("read", path, e))?;
            buf.truncate(old + n);
            eof = n == 0;
        }
        if buf.is_empty() {
            return Ok(());
        }
        let text = valid_prefix(&buf, eof).map_err(|at| utf8_error(path, offset + at))?;
        let mut end = match eof && text.len() == buf.len() {
            true => text.len(),
            false => cut_before(text, text.len(), tok.special_tokens()).unwrap_or(text.len()),
        };
        if let Some(split) = split.map(|s| s as usize).filter(|&s| s > offset) {
            if split < offset + end {
                let specials = tok.special_tokens();
                end = (split - offset..=text.len())
                    .find(|&i| text.is_char_boundary(i) && !inside_special(text, i, specials))
                    .expect("the end is a boundary outside any token");
            }
        }
        f(&text[..end], offset)?;
        buf.drain(..end);
        offset += end;
    }
}

/// The longest valid UTF-8 prefix of `buf`, or the offset of an invalid byte. An incomplete
/// character at the end is left out, unless the file ended there (`eof`), which is invalid.
fn valid_prefix(buf: &[u8], eof: bool) -> Result<&str, usize> {
    match std::str::from_utf8(buf) {
        Ok(text) => Ok(text),
        Err(e) if e.error_len().is_none() && !eof => {
            Ok(std::str::from_utf8(&buf[..e.valid_up_to()]).expect("checked valid"))
        }
        Err(e) => Err(e.valid_up_to()),
    }
}

fn utf8_error(path: &Path, offset: usize) -> Error {
    Error::Utf8 {
        what: path.display().to_string(),
        offset,
    }
}

/// The distinct characters of the files, in increasing order, as one string.
fn distinct_chars(paths: &[PathBuf]) -> Result<String> {
    let mut seen = vec![0u64; (char::MAX as usize + 1).div_ceil(64)];
    for path in paths {
        let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let (mut buf, mut offset) = (Vec::new(), 0usize);
        let mut block = vec![0u8; BLOCK];
        loop {
            let n = file
                .read(&mut block)
                .map_err(|e| Error::io("read", path, e))?;
            buf.extend_from_slice(&block[..n]);
            let text = valid_prefix(&buf, n == 0).map_err(|at| utf8_error(path, offset + at))?;
            for c in text.chars() {
                seen[c as usize / 64] |= 1 << (c as usize % 64);
            }
            let used = text.len();
            buf.drain(..used);
            offset += used;
            if n == 0 {
                break;
            }
        }
    }
    let chars = (0..=char::MAX as u32)
        .filter(|&c| seen[c as usize / 64] & (1 << (c % 64)) != 0)
        .filter_map(char::from_u32);
    Ok(chars.collect())
}

/// Writes ids as little-endian `u16` or `u32` to a file, flushed to disk by
/// [`TokenWriter::finish`].
struct TokenWriter {
    out: BufWriter<File>,
    path: PathBuf,
    dtype: TokenDtype,
    count: u64,
}

impl TokenWriter {
    fn create(path: &Path, dtype: TokenDtype) -> Result<TokenWriter> {
        let file = File::create(path).map_err(|e| Error::io("create", path, e))?;
        Ok(TokenWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            dtype,
            count: 0,
        })
    }

    fn write(&mut self, ids: &[u32]) -> Result<()> {
        let bytes: Vec<u8> = match self.dtype {
            TokenDtype::U16 => ids
                .iter()
                .flat_map(|&id| (id as u16).to_le_bytes())
                .collect(),
            TokenDtype::U32 => ids.iter().flat_map(|&id| id.to_le_bytes()).collect(),
        };
        self.out
            .write_all(&bytes)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.count += ids.len() as u64;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io("write", &self.path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("write", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Gpt2Tokenizer;

    #[test]
    fn small_blocks_encode_like_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        let text = &crate::TINY_SHAKESPEARE[..5000];
        let text = format!("{text}héllo wörld 日本語<|endoftext|> end");
        std::fs::write(&path, &text).unwrap();
        let tok = Gpt2Tokenizer::new();
        for (block, split) in [(64, None), (37, Some(1000)), (1 << 20, Some(17))] {
            let (mut pieces, mut ids) = (Vec::new(), Vec::new());
            stream_text(&path, &tok, split, block, |piece, offset| {
                pieces.push((offset, piece.to_string()));
                ids.extend(tok.encode(piece)?);
                Ok(())
            })
            .unwrap();
            assert_eq!(
                pieces.iter().map(|p| p.1.as_str()).collect::<String>(),
                text
            );
            if let Some(split) = split {
                assert!(
                    pieces.iter().any(|p| p.0 as u64 == split),
                    "no piece at {split}"
                );
                continue;
            }
            assert!(pieces.len() > 50);
            assert_eq!(ids, tok.encode(&text).unwrap(), "block {block}");
        }
    }

    #[test]
    fn invalid_utf8_names_the_byte_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.txt");
        let mut bytes = b"abc def ".repeat(20);
        bytes.extend_from_slice(&[b'x', 0xC3, 0x28, b' ', b'y']);
        std::fs::write(&path, &bytes).unwrap();
        let tok = Gpt2Tokenizer::new();
        let err = stream_text(&path, &tok, None, 16, |_, _| Ok(())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} is not valid UTF-8 at byte 161", path.display())
        );
        std::fs::write(&path, [b'a', 0xE6, 0x97]).unwrap();
        let err = stream_text(&path, &tok, None, 16, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().ends_with("at byte 1"), "{err}");
        assert!(distinct_chars(&[path]).is_err());
    }
}
