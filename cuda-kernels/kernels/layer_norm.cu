// Layer normalization over the last dim, forward and backward.
// CPU twin: tensor/src/cpu/layer_norm.rs.
//
// Shapes: x, y, dy, dx (N, C) contiguous rows; weight, bias, dweight, dbias (C), each
// optional (a null pointer means absent); mean, rstd (N).
// Forward, one block per row:
//   mean = sum_c x_c / C,  var = sum_c (x_c - mean)^2 / C (biased),  rstd = 1 / sqrt(var + eps),
//   xhat = (x - mean) rstd,  y = xhat * weight + bias.
// Backward: the forward was y = xhat * w + b, so with g = dy * w (the gradient reaching xhat):
//   dx = rstd (g - mean_c(g) - xhat * mean_c(g * xhat))          (one block per row)
//   dweight = sum_rows dy * xhat,  dbias = sum_rows dy           (column sums, two passes:
//   each block of rows writes partial sums, then `column_sum` adds the blocks in order, so the
//   result does not depend on scheduling)

template <typename T>
__device__ void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd,
                                   u64 rows, u64 c, T eps) {
    __shared__ T scratch[32];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        T s = (T)0;
        for (u64 j = threadIdx.x; j < c; j += blockDim.x) s += xr[j];
        const T m = block_sum(s, scratch) / (T)c;
        T v = (T)0;
        for (u64 j = threadIdx.x; j < c; j += blockDim.x) v += (xr[j] - m) * (xr[j] - m);
        const T rs = (T)1 / sqrt(block_sum(v, scratch) / (T)c + eps);
        for (u64 j = threadIdx.x; j < c; j += blockDim.x) {
            T out = (xr[j] - m) * rs;
            if (w) out *= w[j];
            if (b) out += b[j];
            yr[j] = out;
        }
        if (threadIdx.x == 0) {
            mean[r] = m;
            rstd[r] = rs;
        }
    }
}

template <typename T>
__device__ void layer_norm_backward_dx(const T* dy, const T* x, const T* w, const T* mean,
                                       const T* rstd, T* dx, u64 rows, u64 c) {
    __shared__ T scratch[32];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * c;
        const T* gr = dy + r * c;
        T* dr = dx + r * c;
        const T m = mean[r], rs = rstd[r];
        T sg = (T)0, sgx = (T)0;
        for (u64 j = threadIdx.x; j < c; j += blockDim.x) {
            const T g = w ? gr[j] * w[j] : gr[j];
            sg += g;
            sgx += g * (xr[j] - m) * rs;
        }
        const T mg = block_sum(sg, scratch) / (T)c;
        const T mgx = block_sum(sgx, scratch) / (T)c;
        for (u64 j = threadIdx.x; j < c; j += blockDim.x) {
            const T g = w ? gr[j] * w[j] : gr[j];
            const T xhat = (xr[j] - m) * rs;
            dr[j] = rs * (g - mg - xhat * mgx);
        }
    }
}

// Partial column sums over blocks of `rows_per_part` rows: grid (ceil(C / threads), parts).
// part_w[p * C + j] = sum_{rows r of part p} dy[r, j] * xhat[r, j]; part_b likewise with dy.
template <typename T>
__device__ void layer_norm_backward_params(const T* dy, const T* x, const T* mean,
                                           const T* rstd, T* part_w, T* part_b, u64 rows,
                                           u64 c, u64 rows_per_part) {
    const u64 j = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    const u64 p = blockIdx.y;
    if (j >= c) return;
    const u64 r0 = p * rows_per_part;
    const u64 r1 = min(rows, r0 + rows_per_part);
    T sw = (T)0, sb = (T)0;
    for (u64 r = r0; r < r1; ++r) {
        const T g = dy[r * c + j];
        sw += g * (x[r * c + j] - mean[r]) * rstd[r];
        sb += g;
    }
    if (part_w) part_w[p * c + j] = sw;
    if (part_b) part_b[p * c + j] = sb;
}

// out[j] = sum_p part[p * C + j], over the parts in order.
template <typename T> __device__ void column_sum(const T* part, u64 parts, u64 c, T* out) {
    FOR_EACH(j, c) {
        T s = (T)0;
        for (u64 p = 0; p < parts; ++p) s += part[p * c + j];
        out[j] = s;
    }
}

#define LAYER_NORM_KERNELS(T, NAME)                                                          \
    extern "C" __global__ void layer_norm_forward_##NAME(const T* x, const T* w, const T* b, \
                                                         T* y, T* mean, T* rstd, u64 rows,   \
                                                         u64 c, T eps) {                     \
        layer_norm_forward<T>(x, w, b, y, mean, rstd, rows, c, eps);                         \
    }                                                                                        \
    extern "C" __global__ void layer_norm_backward_dx_##NAME(                                \
        const T* dy, const T* x, const T* w, const T* mean, const T* rstd, T* dx, u64 rows,  \
        u64 c) {                                                                             \
        layer_norm_backward_dx<T>(dy, x, w, mean, rstd, dx, rows, c);                        \
    }                                                                                        \
    extern "C" __global__ void layer_norm_backward_params_##NAME(                            \
        const T* dy, const T* x, const T* mean, const T* rstd, T* part_w, T* part_b,         \
        u64 rows, u64 c, u64 rows_per_part) {                                                \
        layer_norm_backward_params<T>(dy, x, mean, rstd, part_w, part_b, rows, c,            \
                                      rows_per_part);                                        \
    }                                                                                        \
    extern "C" __global__ void column_sum_##NAME(const T* part, u64 parts, u64 c, T* out) {  \
        column_sum<T>(part, parts, c, out);                                                  \
    }

LAYER_NORM_KERNELS(float, f32)
LAYER_NORM_KERNELS(double, f64)
