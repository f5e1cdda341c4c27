//! State dicts: named tensors saved in the safetensors format and loaded through a memory map.
//!
//! A safetensors file is an 8-byte little-endian header length `n`, `n` bytes of JSON naming
//! each tensor's dtype, shape and byte range, then the raw little-endian data. [`save`] writes
//! floating-point tensors as `f32`, `f16`, `bf16` or `f64` (integer tensors keep their dtype);
//! [`load`] maps the file and validates the whole header, so that reading a tensor later can
//! only succeed; [`load_into`] assigns a file's tensors to a module's parameters and buffers by
//! name, reporting every missing, unexpected and mis-shaped name at once.
//!
//! Bad files are errors, never panics: each [`Error`] names the file and the problem
//! (truncated, header length past the end of the file, invalid JSON, offsets out of range,
//! unsupported dtype, ...).
//!
//! Integrity: [`save`] records the CRC-32 of every tensor's bytes in the metadata, under
//! [`CHECKSUMS_KEY`] (a JSON object of name to checksum), and [`load`] verifies them, so a
//! damaged file is an error naming the tensor. Files without that key (written by other
//! programs) load unverified. NaN and infinities are stored and read back bit for bit;
//! [`StateDict::first_non_finite`] finds them for a loader whose tensors must be finite.

use crate::module::Module;
use autograd::Var;
use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use tensor::cpu::CpuStorage;
use tensor::{DType, Tensor};

/// The safetensors crate's limit on the JSON header's size.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// The metadata key of the tensors' checksums.
pub const CHECKSUMS_KEY: &str = "crc32";

/// What went wrong saving or loading a state dict; every message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening, reading, mapping or writing the file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("{}: not a valid safetensors file: {problem}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FormatProblem,
    },
    /// The file's names or shapes do not fit the module.
    #[error("{}: {mismatch}", .path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Every name that did not fit.
        mismatch: Mismatch,
    },
    /// A tensor could not be converted (dtype or device) while saving or loading.
    #[error("{}: tensor `{name}`: {source}", .path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The conversion's error.
        #[source]
        source: tensor::Error,
    },
    /// The arguments of a save or a load make no sense (duplicate names, a non-float dtype
    /// on disk, metadata that does not parse).
    #[error("{}: {problem}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// `Result` with a state-dict [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Why a file is not a valid safetensors file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatProblem {
    /// Fewer than the 8 bytes of the header length.
    #[error(
        "the file is {len} bytes long, too short to hold the 8-byte header length (truncated)"
    )]
    TooShort {
        /// The file's length in bytes.
        len: u64,
    },
    /// The header length is absurdly large (a corrupted first 8 bytes).
    #[error(
        "the header length field says {header_len} bytes, above the {MAX_HEADER_LEN}-byte limit \
        (corrupted header)"
    )]
    HeaderTooLarge {
        /// The header length the file claims.
        header_len: u64,
    },
    /// The header length points past the end of the file.
    #[error(
        "the header length field says {header_len} bytes, but only {available} bytes follow it \
        (truncated or corrupted)"
    )]
    HeaderBeyondFile {
        /// The header length the file claims.
        header_len: u64,
        /// The bytes after the 8-byte length field.
        available: u64,
    },
    /// The header is not UTF-8 JSON of the expected form.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// A tensor's byte range is out of order, overlaps another, or does not match its shape
    /// and dtype.
    #[error("data offsets out of range: {0}")]
    BadOffsets(String),
    /// The data after the header is not as long as the header says.
    #[error(
        "the header describes {described} bytes of tensor data but the file holds {actual} \
        (truncated, or bytes appended)"
    )]
    DataLength {
        /// Bytes of data the header accounts for.
        described: u64,
        /// Bytes of data after the header.
        actual: u64,
    },
    /// A tensor is stored in a dtype this crate does not read.
    #[error(
        "tensor `{name}` has dtype {dtype}, which is not supported (F64, F32, F16, BF16, U8, \
        U32, I64 are)"
    )]
    UnsupportedDType {
        /// The tensor.
        name: String,
        /// Its dtype, as safetensors names it.
        dtype: String,
    },
    /// The checksums in the metadata cannot be read, or do not list every tensor.
    #[error("the checksums under `{CHECKSUMS_KEY}` in the metadata are unreadable: {0}")]
    BadChecksums(String),
    /// A tensor's bytes do not match the checksum saved with them.
    #[error("tensor `{name}` does not match its checksum (the file is damaged)")]
    Checksum {
        /// The tensor.
        name: String,
    },
}

/// Names that did not line up between a file and a module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mismatch {
    /// In the module, not in the file.
    pub missing: Vec<String>,
    /// In the file, not in the module.
    pub unexpected: Vec<String>,
    /// In both, with different shapes.
    pub shapes: Vec<ShapeMismatch>,
}

/// One name whose shape differs between the module and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The tensor's name.
    pub name: String,
    /// Its shape in the module.
    pub module: Vec<usize>,
    /// Its shape in the file.
    pub file: Vec<usize>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![];
        if !self.missing.is_empty() {
            parts.push(format!("missing: {}", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected: {}", self.unexpected.join(", ")));
        }
        if !self.shapes.is_empty() {
            let s: Vec<String> = self
                .shapes
                .iter()
                .map(|m| format!("{} (module {:?}, file {:?})", m.name, m.module, m.file))
                .collect();
            parts.push(format!("wrong shape: {}", s.join(", ")));
        }
        write!(
            f,
            "the state dict does not match the module; {}",
            parts.join("; ")
        )
    }
}

/// What a successful load left out: names it skipped (only possible when not strict).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Module names the file did not have (they keep their values).
    pub missing: Vec<String>,
    /// File names the module did not have (ignored).
    pub unexpected: Vec<String>,
}

// ----- saving -----

/// One tensor converted to its on-disk dtype, ready to be written.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    data: CpuStorage,
}

impl safetensors::View for &Entry {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.data.as_bytes())
    }
    fn data_len(&self) -> usize {
        self.data.as_bytes().len()
    }
}

fn to_safetensors_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::U8 => Dtype::U8,
        DType::U32 => Dtype::U32,
        DType::I64 => Dtype::I64,
    }
}

fn from_safetensors_dtype(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::U8 => DType::U8,
        Dtype::U32 => DType::U32,
        Dtype::I64 => DType::I64,
        _ => return None,
    })
}

/// Writes `tensors` to `path` (the whole file, flushed before returning). Floating-point
/// tensors are stored as `dtype_on_disk` (`F32`, `F16`, `BF16` or `F64`); integer tensors keep
/// their own dtype. Names must be unique.
pub fn save(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    dtype_on_disk: DType,
) -> Result<()> {
    save_with_metadata(path, tensors, dtype_on_disk, &BTreeMap::new())
}

/// [`save`], plus string key/value pairs in the file's `__metadata__` (read back with
/// [`StateDict::metadata`]).
pub fn save_with_metadata(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    dtype_on_disk: DType,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let invalid = |problem: String| Error::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    if !dtype_on_disk.is_float() {
        return Err(invalid(format!(
            "cannot store tensors as {dtype_on_disk}: the on-disk dtype must be a float dtype"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut entries = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(invalid(format!("tensor name `{name}` appears twice")));
        }
        let dtype = if t.dtype().is_float() {
            dtype_on_disk
        } else {
            t.dtype()
        };
        let data = t
            .try_to_dtype(dtype)
            .and_then(|t| t.to_cpu_storage())
            .map_err(|source| Error::Tensor {
                path: path.to_path_buf(),
                name: name.clone(),
                source,
            })?;
        let entry = Entry {
            dtype: to_safetensors_dtype(dtype),
            shape: t.shape().to_vec(),
            data,
        };
        entries.push((name.as_str(), entry));
    }
    let checksums: BTreeMap<&str, u32> = entries
        .iter()
        .map(|(name, e)| (*name, crc32fast::hash(e.data.as_bytes())))
        .collect();
    let mut metadata = metadata.clone();
    metadata.insert(
        CHECKSUMS_KEY.to_string(),
        serde_json::to_string(&checksums).expect("checksums serialize"),
    );
    let info = Some(metadata.into_iter().collect::<HashMap<_, _>>());
    safetensors::serialize_to_file(entries.iter().map(|(n, e)| (*n, e)), info, path).map_err(|e| {
        match e {
            SafeTensorError::IoError(source) => Error::Io {
                path: path.to_path_buf(),
                source,
            },
            other => invalid(other.to_string()),
        }
    })
}

/// Saves a module's parameters and buffers ([`Module::named_state`]).
pub fn save_module(
    module: &dyn Module,
    path: impl AsRef<Path>,
    dtype_on_disk: DType,
) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = module
        .named_state()
        .into_iter()
        .map(|(name, v)| (name, v.value()))
        .collect();
    save(path, &tensors, dtype_on_disk)
}

// ----- loading -----

/// A safetensors file mapped into memory, its header validated. Tensors are read (copied out
/// of the map) only when asked for. The file must not change while it is mapped.
pub struct StateDict {
    path: PathBuf,
    mmap: Mmap,
    /// Byte offset of the data section (8 + header length).
    data_start: usize,
    header: Metadata,
}

/// Maps `path` and validates it: header length, JSON, every tensor's dtype, shape and byte
/// range, and that the data section ends exactly where the file does.
pub fn load(path: impl AsRef<Path>) -> Result<StateDict> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the map is read-only; the file must not be changed while it is mapped, which
    // `StateDict` documents.
    let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
    let format = |problem| Error::Format {
        path: path.to_path_buf(),
        problem,
    };
    let (data_start, header) = parse_header(&mmap).map_err(format)?;
    let dict = StateDict {
        path: path.to_path_buf(),
        mmap,
        data_start,
        header,
    };
    dict.verify().map_err(format)?;
    Ok(dict)
}

/// Checks the whole file's structure; returns where the data starts and the header.
fn parse_header(bytes: &[u8]) -> std::result::Result<(usize, Metadata), FormatProblem> {
    let len = bytes.len() as u64;
    let Some(prefix) = bytes.first_chunk::<8>() else {
        return Err(FormatProblem::TooShort { len });
    };
    let header_len = u64::from_le_bytes(*prefix);
    if header_len > MAX_HEADER_LEN {
        return Err(FormatProblem::HeaderTooLarge { header_len });
    }
    if header_len > len - 8 {
        return Err(FormatProblem::HeaderBeyondFile {
            header_len,
            available: len - 8,
        });
    }
    let header_end = 8 + header_len as usize;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| match e {
        SafeTensorError::MetadataIncompleteBuffer => FormatProblem::DataLength {
            described: described_data_len(&bytes[8..header_end]),
            actual: len - header_end as u64,
        },
        other => describe(other),
    })?;
    for (name, info) in header.tensors() {
        if from_safetensors_dtype(info.dtype).is_none() {
            return Err(FormatProblem::UnsupportedDType {
                name,
                dtype: info.dtype.to_string(),
            });
        }
    }
    Ok((header_end, header))
}

/// The end of the last byte range a header names (the data length it describes). Only called
/// on a header that parsed as JSON but did not match the file's length.
fn described_data_len(header: &[u8]) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(header).unwrap_or_default();
    let ends = json
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64());
    ends.max().unwrap_or(0)
}

/// A readable account of a safetensors parse error.
fn describe(e: SafeTensorError) -> FormatProblem {
    match e {
        SafeTensorError::InvalidHeader(e) => {
            FormatProblem::InvalidHeader(format!("not UTF-8 ({e})"))
        }
        SafeTensorError::InvalidHeaderDeserialization(e) => {
            FormatProblem::InvalidHeader(format!("not valid JSON of tensor entries ({e})"))
        }
        SafeTensorError::InvalidOffset(name) => FormatProblem::BadOffsets(format!(
            "tensor `{name}` does not start where the previous one ends"
        )),
        SafeTensorError::TensorInvalidInfo => FormatProblem::BadOffsets(
            "a tensor's byte range does not match its shape and dtype".into(),
        ),
        SafeTensorError::ValidationOverflow => {
            FormatProblem::BadOffsets("a tensor's shape is too large to address".into())
        }
        other => FormatProblem::InvalidHeader(other.to_string()),
    }
}

/// The index and value of the first element of little-endian `bytes` of `dtype` that is NaN
/// or infinite; `None` for integer dtypes and for all-finite data.
fn first_non_finite(bytes: &[u8], dtype: DType) -> Option<(usize, f64)> {
    let values: Box<dyn Iterator<Item = f64> + '_> = match dtype {
        DType::F32 => Box::new(
            bytes
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        ),
        DType::F64 => Box::new(
            bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        ),
        DType::F16 => Box::new(
            bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f64()),
        ),
        DType::BF16 => Box::new(
            bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f64()),
        ),
        DType::U8 | DType::U32 | DType::I64 => return None,
    };
    values.enumerate().find(|(_, v)| !v.is_finite())
}

/// Copies `bytes` (little-endian, any alignment) into a tensor of `dtype` and `shape`.
fn tensor_from_bytes(bytes: &[u8], dtype: DType, shape: &[usize]) -> Tensor {
    use bytemuck::pod_collect_to_vec as collect;
    match dtype {
        DType::F32 => Tensor::from_vec(collect::<u8, f32>(bytes), shape),
        DType::F64 => Tensor::from_vec(collect::<u8, f64>(bytes), shape),
        DType::F16 => Tensor::from_vec(collect::<u8, f16>(bytes), shape),
        DType::BF16 => Tensor::from_vec(collect::<u8, bf16>(bytes), shape),
        DType::U8 => Tensor::from_vec(bytes.to_vec(), shape),
        DType::U32 => Tensor::from_vec(collect::<u8, u32>(bytes), shape),
        DType::I64 => Tensor::from_vec(collect::<u8, i64>(bytes), shape),
    }
}

impl StateDict {
    /// The file this dict maps.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.header.tensors().into_keys().collect();
        names.sort();
        names
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.header.tensors().len()
    }

    /// True when the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.header.info(name)
    }

    /// The shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.info(name).map(|i| i.shape.clone())
    }

    /// The dtype tensor `name` is stored in.
    pub fn dtype(&self, name: &str) -> Option<DType> {
        self.info(name)
            .and_then(|i| from_safetensors_dtype(i.dtype))
    }

    /// The stored bytes of tensor `name`.
    fn bytes(&self, info: &TensorInfo) -> &[u8] {
        let (start, end) = info.data_offsets;
        // The header was validated against the file's length in `load`.
        &self.mmap[self.data_start + start..self.data_start + end]
    }

    /// Tensor `name` in the dtype it is stored in.
    pub fn tensor(&self, name: &str) -> Option<Tensor> {
        let info = self.info(name)?;
        Some(tensor_from_bytes(
            self.bytes(info),
            self.dtype(name)?,
            &info.shape,
        ))
    }

    /// Checks every tensor against its saved checksum, when the file has checksums, in
    /// parallel over the tensors.
    fn verify(&self) -> std::result::Result<(), FormatProblem> {
        use rayon::prelude::*;
        let Some(checksums) = self.checksums()? else {
            return Ok(());
        };
        let mut tensors: Vec<(String, &TensorInfo)> = self.header.tensors().into_iter().collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        tensors
            .par_iter()
            .try_for_each(|(name, info)| match checksums.get(name) {
                None => Err(FormatProblem::BadChecksums(format!(
                    "tensor `{name}` has none"
                ))),
                Some(&sum) if sum != crc32fast::hash(self.bytes(info)) => {
                    Err(FormatProblem::Checksum { name: name.clone() })
                }
                Some(_) => Ok(()),
            })
    }

    /// The index and value of the first element of tensor `name` that is NaN or infinite;
    /// `None` when all are finite, for integer tensors, and for unknown names.
    pub fn first_non_finite(&self, name: &str) -> Option<(usize, f64)> {
        let info = self.info(name)?;
        first_non_finite(self.bytes(info), self.dtype(name)?)
    }

    /// The checksums saved in the metadata, if any.
    fn checksums(&self) -> std::result::Result<Option<HashMap<String, u32>>, FormatProblem> {
        let Some(text) = self
            .header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(CHECKSUMS_KEY))
        else {
            return Ok(None);
        };
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| FormatProblem::BadChecksums(e.to_string()))
    }

    /// Tensor `name`, floating-point data converted to `f32` (integer data keeps its dtype).
    pub fn get(&self, name: &str) -> Option<Tensor> {
        let t = self.tensor(name)?;
        Some(if t.dtype().is_float() {
            t.to_dtype(DType::F32)
        } else {
            t
        })
    }

    /// The file's `__metadata__` key/value pairs (empty when it has none), without the
    /// checksums, which belong to the format.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut pairs: BTreeMap<String, String> = self
            .header
            .metadata()
            .as_ref()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        pairs.remove(CHECKSUMS_KEY);
        pairs
    }
}

impl fmt::Debug for StateDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StateDict({}, {} tensors)",
            self.path.display(),
            self.len()
        )
    }
}

/// Assigns the dict's tensors to a module's parameters and buffers ([`Module::named_state`]),
/// converted to each one's dtype and device.
///
/// Shapes must always agree. With `strict`, names must also agree exactly: every missing,
/// unexpected and mis-shaped name is reported in one [`Error::Mismatch`]. Nothing is assigned
/// unless the whole load succeeds. Without `strict`, the returned report lists the names
/// skipped.
pub fn load_into(module: &dyn Module, dict: &StateDict, strict: bool) -> Result<LoadReport> {
    assign(&module.named_state(), dict, strict)
}

/// [`load`] then [`load_into`].
pub fn load_file_into(
    module: &dyn Module,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<LoadReport> {
    load_into(module, &load(path)?, strict)
}

/// Assigns `dict`'s tensors to `targets` by name (see [`load_into`]).
pub(crate) fn assign(
    targets: &[(String, Var)],
    dict: &StateDict,
    strict: bool,
) -> Result<LoadReport> {
    let mut mismatch = Mismatch::default();
    for (name, var) in targets {
        match dict.shape(name) {
            None => mismatch.missing.push(name.clone()),
            Some(file) if file != var.shape() => mismatch.shapes.push(ShapeMismatch {
                name: name.clone(),
                module: var.shape(),
                file,
            }),
            Some(_) => {}
        }
    }
    let known: BTreeSet<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
    mismatch.unexpected = dict
        .names()
        .into_iter()
        .filter(|n| !known.contains(n.as_str()))
        .collect();
    let names_differ = !mismatch.missing.is_empty() || !mismatch.unexpected.is_empty();
    if !mismatch.shapes.is_empty() || (strict && names_differ) {
        return Err(Error::Mismatch {
            path: dict.path.clone(),
            mismatch,
        });
    }
    let mut converted = Vec::with_capacity(targets.len());
    for (name, var) in targets {
        let Some(t) = dict.tensor(name) else { continue };
        let t = t
            .try_to_dtype(var.dtype())
            .and_then(|t| t.try_to_device(var.device()))
            .map_err(|source| Error::Tensor {
                path: dict.path.clone(),
                name: name.clone(),
                source,
            })?;
        converted.push((var, t));
    }
    for (var, t) in converted {
        var.set_value(t);
    }
    Ok(LoadReport {
        missing: mismatch.missing,
        unexpected: mismatch.unexpected,
    })
}
