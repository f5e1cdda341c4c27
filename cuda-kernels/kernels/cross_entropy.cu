// Cross-entropy over logits fused with the log-softmax, forward and backward.
// CPU twin: tensor/src/cpu/cross_entropy.rs.
//
// Shapes: logits (N, V) contiguous rows; targets (N) as i64 already checked by the caller to
// lie in [0, V), with -1 marking an ignored row; count = the number of rows not ignored.
// Forward:
//   cross_entropy_rows (one block per row): lse_n = logsumexp_v logits[n, v] and
//     row_loss_n = lse_n - logits[n, t_n], or 0 for an ignored row;
//   cross_entropy_mean (one block): loss = sum_n row_loss_n / count, summed in a fixed order
//     (NaN when count is 0, as in PyTorch).
// Backward, for upstream gradient g of the mean loss, scale = g / count:
//   dlogits[n, v] = scale (exp(logits[n, v] - lse_n) - [v == t_n]), zero on ignored rows.

template <typename T>
__device__ void cross_entropy_rows(const T* logits, const i64* targets, T* lse, T* row_loss,
                                   u64 rows, u64 v) {
    __shared__ T scratch[32];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = logits + r * v;
        T m = -infinity<T>();
        for (u64 j = threadIdx.x; j < v; j += blockDim.x) m = max_nan(m, xr[j]);
        m = block_max(m, scratch);
        T s = (T)0;
        for (u64 j = threadIdx.x; j < v; j += blockDim.x) s += exp(xr[j] - m);
        s = block_sum(s, scratch);
        const T l = isinf(m) ? m : m + log(s);
        if (threadIdx.x == 0) {
            const i64 t = targets[r];
            lse[r] = l;
            row_loss[r] = t < 0 ? (T)0 : l - xr[t];
        }
    }
}

template <typename T>
__device__ void cross_entropy_mean(const T* row_loss, u64 rows, T count, T* loss) {
    __shared__ T scratch[32];
    T s = (T)0;
    for (u64 r = threadIdx.x; r < rows; r += blockDim.x) s += row_loss[r];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) *loss = s / count;
}

template <typename T>
__device__ void cross_entropy_backward(const T* logits, const i64* targets, const T* lse,
                                       T* dlogits, u64 rows, u64 v, T scale) {
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = logits + r * v;
        T* dr = dlogits + r * v;
        const i64 t = targets[r];
        const T l = lse[r];
        for (u64 j = threadIdx.x; j < v; j += blockDim.x) {
            if (t < 0) {
                dr[j] = (T)0;
            } else {
                const T onehot = (i64)j == t ? (T)1 : (T)0;
                dr[j] = scale * (exp(xr[j] - l) - onehot);
            }
        }
    }
}

#define CROSS_ENTROPY_KERNELS(T, NAME)                                                       \
    extern "C" __global__ void cross_entropy_rows_##NAME(const T* logits, const i64* targets,\
                                                         T* lse, T* row_loss, u64 rows,      \
                                                         u64 v) {                            \
        cross_entropy_rows<T>(logits, targets, lse, row_loss, rows, v);                      \
    }                                                                                        \
    extern "C" __global__ void cross_entropy_mean_##NAME(const T* row_loss, u64 rows,        \
                                                         T count, T* loss) {                 \
        cross_entropy_mean<T>(row_loss, rows, count, loss);                                  \
    }                                                                                        \
    extern "C" __global__ void cross_entropy_backward_##NAME(                                \
        const T* logits, const i64* targets, const T* lse, T* dlogits, u64 rows, u64 v,      \
        T scale) {                                                                           \
        cross_entropy_backward<T>(logits, targets, lse, dlogits, rows, v, scale);            \
    }

CROSS_ENTROPY_KERNELS(float, f32)
CROSS_ENTROPY_KERNELS(double, f64)
