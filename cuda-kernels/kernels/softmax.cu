// Softmax, log-softmax and logsumexp over the rows of a contiguous (rows, n) buffer, with the
// backward kernels. One block per row (grid-stride over rows).
// CPU twin: tensor/src/cpu/softmax.rs.
//
// With m = max_j x_j:
//   logsumexp(x) = m + ln sum_j exp(x_j - m)        (m itself when m is +-inf)
//   softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)
//   log_softmax(x)_i = x_i - logsumexp(x)
// Backward from the output y and upstream dy:
//   softmax:     dx_i = y_i (dy_i - sum_j dy_j y_j)
//   log_softmax: dx_i = dy_i - exp(y_i) sum_j dy_j

#define KIND_SOFTMAX 0
#define KIND_LOG_SOFTMAX 1

// logsumexp of one row, computed by the whole block; every thread gets it.
template <typename T> __device__ T row_logsumexp(const T* row, u64 n, T* scratch) {
    T m = -infinity<T>();
    for (u64 j = threadIdx.x; j < n; j += blockDim.x) m = max_nan(m, row[j]);
    m = block_max(m, scratch);
    if (isinf(m)) return m;
    T s = (T)0;
    for (u64 j = threadIdx.x; j < n; j += blockDim.x) s += exp(row[j] - m);
    s = block_sum(s, scratch);
    return m + log(s);
}

template <typename T>
__device__ void softmax_forward(const T* x, T* y, u64 rows, u64 n, int kind) {
    __shared__ T scratch[32];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        T m = -infinity<T>();
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) m = max_nan(m, xr[j]);
        m = block_max(m, scratch);
        T s = (T)0;
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) s += exp(xr[j] - m);
        s = block_sum(s, scratch);
        if (kind == KIND_SOFTMAX) {
            const T inv = (T)1 / s;
            for (u64 j = threadIdx.x; j < n; j += blockDim.x) yr[j] = exp(xr[j] - m) * inv;
        } else {
            const T lse = m + log(s);
            for (u64 j = threadIdx.x; j < n; j += blockDim.x) yr[j] = xr[j] - lse;
        }
    }
}

template <typename T>
__device__ void softmax_backward(const T* y, const T* dy, T* dx, u64 rows, u64 n, int kind) {
    __shared__ T scratch[32];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* yr = y + r * n;
        const T* gr = dy + r * n;
        T* dr = dx + r * n;
        T s = (T)0;
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) {
            s += kind == KIND_SOFTMAX ? yr[j] * gr[j] : gr[j];
        }
        s = block_sum(s, scratch);
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) {
            dr[j] = kind == KIND_SOFTMAX ? yr[j] * (gr[j] - s) : gr[j] - exp(yr[j]) * s;
        }
    }
}

template <typename T> __device__ void logsumexp_rows(const T* x, T* out, u64 rows, u64 n) {
    __shared__ T scratch[32];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        T l = row_logsumexp<T>(x + r * n, n, scratch);
        if (threadIdx.x == 0) out[r] = l;
    }
}

#define SOFTMAX_KERNELS(T, NAME)                                                             \
    extern "C" __global__ void softmax_forward_##NAME(const T* x, T* y, u64 rows, u64 n,     \
                                                      int kind) {                            \
        softmax_forward<T>(x, y, rows, n, kind);                                             \
    }                                                                                        \
    extern "C" __global__ void softmax_backward_##NAME(const T* y, const T* dy, T* dx,       \
                                                       u64 rows, u64 n, int kind) {          \
        softmax_backward<T>(y, dy, dx, rows, n, kind);                                       \
    }                                                                                        \
    extern "C" __global__ void logsumexp_##NAME(const T* x, T* out, u64 rows, u64 n) {       \
        logsumexp_rows<T>(x, out, rows, n);                                                  \
    }

SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(double, f64)
