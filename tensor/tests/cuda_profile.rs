//! Kernel profiling (`tensor::cuda::set_profiling`, `kernel_times`): every kernel a tensor op
//! launches is counted under its name while profiling is on, and nothing is once it is off.
//!
//! Needs an NVIDIA GPU (or the emulator): without one the test prints why it was skipped.
#![cfg(feature = "cuda")]

use tensor::{DType, Device, Gelu, Rng, Tensor};

#[test]
fn profiling_times_each_kernel_by_name() {
    if let Err(reason) = tensor::cuda::probe() {
        eprintln!("skipped (needs a GPU): {reason}");
        return;
    }
    let dev = Device::Cuda(0);
    let mut rng = Rng::new(1);
    let x = Tensor::randn(&[4099], 0.0, 1.0, DType::F32, &mut rng).to_device(dev);
    let dy = Tensor::randn(&[4099], 0.0, 1.0, DType::F32, &mut rng).to_device(dev);
    tensor::cuda::set_profiling(0, true).unwrap();
    for _ in 0..3 {
        x.try_gelu_backward(&dy, Gelu::Tanh).unwrap();
    }
    let times = tensor::cuda::kernel_times(0).unwrap();
    tensor::cuda::set_profiling(0, false).unwrap();
    let gelu = times
        .iter()
        .find(|t| t.name == "gelu_backward_f32")
        .unwrap_or_else(|| panic!("no gelu_backward_f32 among {times:?}"));
    assert_eq!(gelu.calls, 3, "{gelu:?}");
    assert!(gelu.ms > 0.0, "{gelu:?}");
    assert!(times.windows(2).all(|w| w[0].ms >= w[1].ms), "{times:?}");
    let table = tensor::cuda::kernel_time_table(&times, 3);
    assert!(table.contains("gelu_backward_f32"), "{table}");
    assert!(tensor::cuda::kernel_times(0).unwrap().is_empty());
}
