//! Runs on every machine with `--features cuda`: placing a tensor on a GPU either works (and
//! round-trips the values exactly) or fails with one sentence, never a panic.
#![cfg(feature = "cuda")]

use tensor::{DType, Device, Tensor};

#[test]
fn to_device_works_or_says_why_in_one_sentence() {
    let x = Tensor::arange(7, DType::F32).reshape(&[7]);
    match tensor::cuda::probe() {
        Ok(info) => {
            eprintln!("found {info}");
            let back = x.to_device(Device::Cuda(0)).to_device(Device::Cpu);
            assert_eq!(back.to_vec::<f32>(), x.to_vec::<f32>());
        }
        Err(reason) => {
            eprintln!("no GPU here: {reason}");
            let err = x.try_to_device(Device::Cuda(0)).unwrap_err().to_string();
            assert!(err.contains(&reason), "{err}");
            assert!(
                err.ends_with('.') && !err.contains('\n'),
                "not one sentence: {err}"
            );
            assert_eq!(
                err.matches(". ").count(),
                0,
                "more than one sentence: {err}"
            );
        }
    }
}

#[test]
fn a_missing_device_is_an_error() {
    let err = Tensor::zeros(&[2], DType::F32)
        .try_to_device(Device::Cuda(1000))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("device error: CUDA is unavailable"),
        "{err}"
    );
}

#[test]
fn gpu_tensors_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<tensor::cuda::CudaStorage>();
    send_sync::<Tensor>();
}
