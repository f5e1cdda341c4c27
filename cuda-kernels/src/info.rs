//! What was found when a device was opened.

/// The device, its driver and how kernels are compiled for it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// The device's CUDA ordinal.
    pub ordinal: usize,
    /// The GPU's name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// `(major, minor)` compute capability.
    pub compute_capability: (i32, i32),
    /// Device memory in bytes.
    pub memory_bytes: usize,
    /// `(major, minor)` CUDA version the driver supports.
    pub driver_cuda: (i32, i32),
    /// The NVRTC used, with its version and file.
    pub nvrtc: String,
    /// The virtual architecture kernels are compiled for (`compute_{arch}`).
    pub arch: u32,
    /// The cuBLAS that serves GEMMs, with its version and file; else why none does (and the
    /// tiled kernel serves them).
    pub cublas: Result<String, String>,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cuda:{} {} (compute {}.{}, {:.1} GiB), driver CUDA {}.{}, {}, PTX for compute_{}, GEMM by ",
            self.ordinal,
            self.name,
            self.compute_capability.0,
            self.compute_capability.1,
            self.memory_bytes as f64 / (1u64 << 30) as f64,
            self.driver_cuda.0,
            self.driver_cuda.1,
            self.nvrtc,
            self.arch,
        )?;
        match &self.cublas {
            Ok(blas) => write!(f, "{blas}"),
            Err(why) => write!(f, "the tiled kernel ({why})"),
        }
    }
}
