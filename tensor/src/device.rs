//! Where a tensor's storage lives.

use crate::error::{Error, Result};
use std::fmt;

/// A compute device. `Cuda(i)` is the i-th GPU; it exists in every build so callers can name
/// it, but only a build with the `cuda` feature can place storage there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The host CPU (the default).
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
}

impl Device {
    /// Parses `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "unknown device `{s}`: expected cpu, cuda or cuda:N"
                    ))
                }),
        }
    }

    /// This device for a log line: `cpu`, or for a GPU in a build with the `cuda` feature its
    /// description (name, memory, driver, NVRTC and what serves GEMMs, as
    /// [`crate::cuda::DeviceInfo`] prints it) once it has been opened.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => crate::cuda::device_info(*i)
                .map_or_else(|_| self.to_string(), |info| info.to_string()),
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
        assert_eq!(Device::parse("cuda").unwrap(), Device::Cuda(0));
        assert_eq!(Device::parse("cuda:3").unwrap(), Device::Cuda(3));
        assert!(Device::parse("tpu")
            .unwrap_err()
            .to_string()
            .contains("tpu"));
        assert_eq!(
            Device::parse(&Device::Cuda(2).to_string()).unwrap(),
            Device::Cuda(2)
        );
    }
}
