//! A token dataset: one long sequence of ids, memory-mapped from a `.bin` file (so a file
//! larger than RAM works) or held in memory, from which training draws random windows and
//! evaluation walks sequential ones.
//!
//! A window of `T + 1` ids starting at `s` gives inputs `x = ids[s..s+T]` and next-token
//! targets `y = ids[s+1..s+T+1]`.

use super::{Meta, TokenDtype, META_FILE};
use crate::{Error, Result};
use memmap2::Mmap;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tensor::{Rng, Tensor};

/// Which file of a prepared directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// `train.bin`.
    Train,
    /// `val.bin`.
    Val,
}

impl Split {
    /// The file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Split::Train => "train.bin",
            Split::Val => "val.bin",
        }
    }
}

/// Where the ids live.
enum Tokens {
    /// A memory-mapped file of little-endian ids.
    Mapped {
        map: Mmap,
        dtype: TokenDtype,
        path: PathBuf,
    },
    /// Ids in memory.
    Owned(Vec<u32>),
}

/// A sequence of token ids to draw training and evaluation windows from.
pub struct TokenDataset {
    tokens: Tokens,
}

impl TokenDataset {
    /// Opens a `.bin` file, or a prepared directory's `train.bin`. The dtype comes from the
    /// `meta.json` beside the file; with none it is `u16`, as in nanoGPT's files.
    pub fn open(path: impl AsRef<Path>) -> Result<TokenDataset> {
        let path = path.as_ref();
        match path.is_dir() {
            true => TokenDataset::open_split(path, Split::Train),
            false => {
                let dir = path.parent().unwrap_or(Path::new("."));
                TokenDataset::open_bin(path, dtype_beside(dir)?)
            }
        }
    }

    /// Opens `dir/train.bin` or `dir/val.bin`.
    pub fn open_split(dir: impl AsRef<Path>, split: Split) -> Result<TokenDataset> {
        let dir = dir.as_ref();
        TokenDataset::open_bin(dir.join(split.file_name()), dtype_beside(dir)?)
    }

    /// Memory-maps `path` as ids of `dtype`. The file must not change while it is open.
    pub fn open_bin(path: impl AsRef<Path>, dtype: TokenDtype) -> Result<TokenDataset> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        let metadata = file.metadata().map_err(|e| Error::io("read", path, e))?;
        if !metadata.is_file() {
            return Err(Error::Invalid(format!(
                "{} is not a regular file of token ids",
                path.display()
            )));
        }
        let bytes = metadata.len();
        if bytes == 0 {
            return Err(Error::Invalid(format!(
                "{} holds no tokens",
                path.display()
            )));
        }
        if bytes % dtype.width() as u64 != 0 {
            return Err(Error::Invalid(format!(
                "{} has {bytes} bytes, which is not a whole number of {} ids",
                path.display(),
                dtype.name()
            )));
        }
        // Safety: the map is read-only, and the caller keeps the file unchanged while it is open.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("map", path, e))?;
        Ok(TokenDataset {
            tokens: Tokens::Mapped {
                map,
                dtype,
                path: path.to_path_buf(),
            },
        })
    }

    /// A dataset over ids in memory.
    pub fn from_tokens(tokens: Vec<u32>) -> TokenDataset {
        TokenDataset {
            tokens: Tokens::Owned(tokens),
        }
    }

    /// The number of ids.
    pub fn len(&self) -> usize {
        match &self.tokens {
            Tokens::Mapped { map, dtype, .. } => map.len() / dtype.width(),
            Tokens::Owned(v) => v.len(),
        }
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends ids `start..end` to `out`.
    pub fn extend_with(&self, start: usize, end: usize, out: &mut Vec<u32>) {
        match &self.tokens {
            Tokens::Mapped { map, dtype, .. } => {
                let bytes = &map[start * dtype.width()..end * dtype.width()];
                match dtype {
                    TokenDtype::U16 => out.extend(
                        bytes
                            .chunks_exact(2)
                            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))),
                    ),
                    TokenDtype::U32 => out.extend(
                        bytes
                            .chunks_exact(4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    ),
                }
            }
            Tokens::Owned(v) => out.extend_from_slice(&v[start..end]),
        }
    }

    /// Checks that every id is below `vocab_size`; the error names the first that is not, with
    /// its file and byte offset (or its position, for ids in memory). A scan of the whole
    /// dataset, in parallel: a bad id found now is not a failure at a random step later.
    pub fn check_ids(&self, vocab_size: usize) -> Result<()> {
        const CHUNK: usize = 1 << 20;
        let n = self.len();
        let first_bad = (0..n.div_ceil(CHUNK)).into_par_iter().find_map_first(|c| {
            let (start, end) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let ids = self.slice(start, end);
            let at = ids.iter().position(|&id| id as usize >= vocab_size)?;
            Some((start + at, ids[at]))
        });
        let Some((index, id)) = first_bad else {
            return Ok(());
        };
        Err(Error::Invalid(match &self.tokens {
            Tokens::Mapped { path, dtype, .. } => format!(
                "{}: token id {id} at byte {} is not below the vocabulary size {vocab_size}",
                path.display(),
                index * dtype.width()
            ),
            Tokens::Owned(_) => format!(
                "token id {id} at position {index} is not below the vocabulary size {vocab_size}"
            ),
        }))
    }

    /// Ids `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(end - start);
        self.extend_with(start, end, &mut out);
        out
    }

    /// `batch` windows at uniformly random starts: inputs and next-token targets, both `u32`
    /// of shape `(batch, block)`. An error if the dataset is shorter than `block + 1` ids.
    pub fn sample_batch(
        &self,
        batch: usize,
        block: usize,
        rng: &mut Rng,
    ) -> Result<(Tensor, Tensor)> {
        if batch == 0 || block == 0 || self.len() < block + 1 {
            return Err(Error::Invalid(format!(
                "cannot draw {batch} windows of {block} + 1 tokens from a dataset of {} tokens",
                self.len()
            )));
        }
        let starts: Vec<usize> = (0..batch).map(|_| rng.below(self.len() - block)).collect();
        Ok(self.windows(&starts, block))
    }

    /// Inputs and targets for windows of `block` targets at `starts`.
    fn windows(&self, starts: &[usize], block: usize) -> (Tensor, Tensor) {
        let (mut x, mut y) = (Vec::with_capacity(starts.len() * block), Vec::new());
        y.reserve(starts.len() * block);
        let mut window = Vec::with_capacity(block + 1);
        for &s in starts {
            window.clear();
            self.extend_with(s, s + block + 1, &mut window);
            x.extend_from_slice(&window[..block]);
            y.extend_from_slice(&window[1..]);
        }
        let shape = [starts.len(), block];
        (Tensor::from_vec(x, &shape), Tensor::from_vec(y, &shape))
    }

    /// Sequential windows for evaluation; see [`EvalBatches`].
    pub fn eval_batches(&self, batch: usize, block: usize) -> EvalBatches<'_> {
        EvalBatches {
            data: self,
            batch: batch.max(1),
            block: block.max(1),
            next: 0,
        }
    }
}

/// The dtype recorded in `dir/meta.json`, or `u16` when there is no such file.
fn dtype_beside(dir: &Path) -> Result<TokenDtype> {
    match dir.join(META_FILE).is_file() {
        true => Ok(Meta::read(dir)?.dtype),
        false => Ok(TokenDtype::U16),
    }
}

/// Sequential evaluation windows: `(x, y)` batches of shape `(rows, block)` with `rows <=
/// batch`, from the start of the data, then one last `(1, r)` window for the `r < block`
/// targets left over. Every target (every id but the first) appears exactly once, in order.
pub struct EvalBatches<'a> {
    data: &'a TokenDataset,
    batch: usize,
    block: usize,
    /// The start of the next window.
    next: usize,
}

impl Iterator for EvalBatches<'_> {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<(Tensor, Tensor)> {
        let targets_left = self.data.len().saturating_sub(self.next + 1);
        if targets_left == 0 {
            return None;
        }
        if targets_left < self.block {
            let window = self.data.windows(&[self.next], targets_left);
            self.next += targets_left;
            return Some(window);
        }
        let rows = (targets_left / self.block).min(self.batch);
        let starts: Vec<usize> = (0..rows).map(|r| self.next + r * self.block).collect();
        self.next += rows * self.block;
        Some(self.data.windows(&starts, self.block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_windows_are_inputs_and_shifted_targets() {
        let data = TokenDataset::from_tokens((0..100).collect());
        let mut rng = Rng::new(0);
        let (x, y) = data.sample_batch(4, 8, &mut rng).unwrap();
        assert_eq!(x.shape(), &[4, 8]);
        let (x, y) = (x.to_vec::<u32>(), y.to_vec::<u32>());
        for row in 0..4 {
            let xs = &x[row * 8..row * 8 + 8];
            assert!(xs.windows(2).all(|w| w[1] == w[0] + 1));
            assert_eq!(
                &y[row * 8..row * 8 + 8],
                &xs.iter().map(|v| v + 1).collect::<Vec<_>>()[..]
            );
        }
        let mut again = Rng::new(0);
        let (x2, _) = data.sample_batch(4, 8, &mut again).unwrap();
        assert_eq!(x2.to_vec::<u32>(), x);
        assert!(data.sample_batch(1, 100, &mut rng).is_err());
        assert!(data.sample_batch(1, 99, &mut rng).is_ok());
    }

    #[test]
    fn ids_past_the_vocabulary_are_found_with_their_file_and_offset() {
        let data = TokenDataset::from_tokens(vec![0, 5, 9, 3]);
        data.check_ids(10).unwrap();
        let err = data.check_ids(9).unwrap_err().to_string();
        assert!(err.contains("token id 9 at position 2"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.bin");
        let mut ids = vec![1u16; (1 << 20) + 10];
        ids[(1 << 20) + 3] = 70;
        std::fs::write(&path, bytemuck::cast_slice::<u16, u8>(&ids)).unwrap();
        let data = TokenDataset::open_bin(&path, TokenDtype::U16).unwrap();
        data.check_ids(71).unwrap();
        let err = data.check_ids(65).unwrap_err().to_string();
        let at = 2 * ((1 << 20) + 3);
        assert!(
            err.contains(&format!("train.bin: token id 70 at byte {at}")),
            "{err}"
        );
    }

    #[test]
    fn eval_batches_cover_every_target_once() {
        let data = TokenDataset::from_tokens((0..23).collect());
        let batches: Vec<(Vec<usize>, Vec<u32>, Vec<u32>)> = data
            .eval_batches(2, 5)
            .map(|(x, y)| (x.shape().to_vec(), x.to_vec(), y.to_vec()))
            .collect();
        let shapes: Vec<&Vec<usize>> = batches.iter().map(|b| &b.0).collect();
        assert_eq!(shapes, [&vec![2, 5], &vec![2, 5], &vec![1, 2]]);
        let targets: Vec<u32> = batches.iter().flat_map(|b| b.2.clone()).collect();
        assert_eq!(targets, (1..23).collect::<Vec<u32>>());
        let inputs: Vec<u32> = batches.iter().flat_map(|b| b.1.clone()).collect();
        assert_eq!(inputs, (0..22).collect::<Vec<u32>>());
        assert_eq!(
            TokenDataset::from_tokens(vec![7])
                .eval_batches(2, 5)
                .count(),
            0
        );
    }
}
