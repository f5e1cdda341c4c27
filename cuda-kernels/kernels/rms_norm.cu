// RMS normalization over the last dim, forward (Llama's norm).
// CPU twin: tensor/src/cpu/rms_norm.rs. (The backward is composed of elementwise ops and sums.)
//
// Shapes: x, y (N, C) contiguous rows; weight (C); rstd (N). One block per row:
//   rstd = 1 / sqrt(sum_c x_c^2 / C + eps),  y = x * rstd * weight.

template <typename T>
__device__ void rms_norm_forward(const T* x, const T* w, T* y, T* rstd, u64 rows, u64 c, T eps) {
    __shared__ T scratch[32];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        T s = (T)0;
        for (u64 j = threadIdx.x; j < c; j += blockDim.x) s += xr[j] * xr[j];
        const T rs = (T)1 / sqrt(block_sum(s, scratch) / (T)c + eps);
        for (u64 j = threadIdx.x; j < c; j += blockDim.x) yr[j] = xr[j] * rs * w[j];
        if (threadIdx.x == 0) rstd[r] = rs;
    }
}

extern "C" __global__ void rms_norm_forward_f32(const float* x, const float* w, float* y,
                                                float* rstd, u64 rows, u64 c, float eps) {
    rms_norm_forward<float>(x, w, y, rstd, rows, c, eps);
}
extern "C" __global__ void rms_norm_forward_f64(const double* x, const double* w, double* y,
                                                double* rstd, u64 rows, u64 c, double eps) {
    rms_norm_forward<double>(x, w, y, rstd, rows, c, eps);
}
