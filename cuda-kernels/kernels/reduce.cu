// Reductions over any set of dims: sum, max and min; arg-max and arg-min over one dim.
// CPU twin: tensor/src/cpu/reduce.rs.
//
// The input view is split into a "kept" view (the output's dims, with the input's offset) and
// a "reduced" view (offset 0): out[k] = reduce_r x[kept(k) + red(r)], k < n_out, r < n_red.
// Two kernels, chosen by the caller from the strides:
// - reduce_rows: one block per output; its threads stride over r and meet in a block
//   reduction (good when the reduced elements of one output are close together);
// - reduce_cols: blocks of 32 x COLS_LANES threads; the 32 lanes take 32 adjacent outputs
//   (one coalesced load per step) and the COLS_LANES rows of threads split r between them,
//   then meet in shared memory (good when consecutive outputs are adjacent in memory, as in
//   a sum over the batch dim for a bias gradient).
// Either kernel can split r into gridDim.y pieces of `chunk` elements, one piece per
// blockIdx.y, so that a few outputs with a long r still fill the GPU: piece p writes the
// partial result over r in [p * chunk, min(n_red, (p + 1) * chunk)) to out[p * n_out + k],
// and the caller reduces the partials of each output with a second launch. The order of
// every combination is fixed by the launch shape, so results are the same run after run.
// Identities: 0 for sum, -inf for max, +inf for min; max and min propagate NaN.
// arg_reduce: out[k] = the first index j < n along the dim with the extreme value (NaN
// counts as the extreme), as u32.

#define REDUCE_SUM 0
#define REDUCE_MAX 1
#define REDUCE_MIN 2
#define REDUCE_ARGMAX 3
#define REDUCE_ARGMIN 4

template <typename T> __device__ __forceinline__ T reduce_identity(int op) {
    if (op == REDUCE_MAX) return -infinity<T>();
    if (op == REDUCE_MIN) return infinity<T>();
    return (T)0;
}

template <typename T> __device__ __forceinline__ T reduce_combine(int op, T a, T b) {
    if (op == REDUCE_MAX) return max_nan(a, b);
    if (op == REDUCE_MIN) return min_nan(a, b);
    return a + b;
}

#define COLS_LANES 8

template <typename T>
__device__ void reduce_rows_kernel(const T* x, Strided kept, Strided red, u64 n_red, u64 chunk,
                                   T* out, u64 n_out, int op) {
    __shared__ T scratch[32];
    const u64 begin = (u64)blockIdx.y * chunk;
    const u64 end = begin + chunk < n_red ? begin + chunk : n_red;
    T* part = out + (u64)blockIdx.y * n_out;
    for (u64 k = blockIdx.x; k < n_out; k += gridDim.x) {
        const u64 base = strided_index(kept, k);
        T acc = reduce_identity<T>(op);
        for (u64 r = begin + threadIdx.x; r < end; r += blockDim.x) {
            acc = reduce_combine<T>(op, acc, x[base + strided_index(red, r)]);
        }
        if (op == REDUCE_MAX) {
            acc = block_reduce(acc, scratch, MaxOp(), reduce_identity<T>(op));
        } else if (op == REDUCE_MIN) {
            acc = block_reduce(acc, scratch, MinOp(), reduce_identity<T>(op));
        } else {
            acc = block_reduce(acc, scratch, SumOp(), (T)0);
        }
        if (threadIdx.x == 0) {
            part[k] = acc;
        }
    }
}

// Launched with blockDim (32, COLS_LANES).
template <typename T>
__device__ void reduce_cols_kernel(const T* x, Strided kept, Strided red, u64 n_red, u64 chunk,
                                   T* out, u64 n_out, int op) {
    __shared__ T scratch[COLS_LANES][32];
    const u64 begin = (u64)blockIdx.y * chunk;
    const u64 end = begin + chunk < n_red ? begin + chunk : n_red;
    T* part = out + (u64)blockIdx.y * n_out;
    for (u64 first = (u64)blockIdx.x * 32; first < n_out; first += (u64)gridDim.x * 32) {
        const u64 k = first + threadIdx.x;
        T acc = reduce_identity<T>(op);
        if (k < n_out) {
            const u64 base = strided_index(kept, k);
            for (u64 r = begin + threadIdx.y; r < end; r += COLS_LANES) {
                acc = reduce_combine<T>(op, acc, x[base + strided_index(red, r)]);
            }
        }
        scratch[threadIdx.y][threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.y == 0 && k < n_out) {
            for (int lane = 1; lane < COLS_LANES; ++lane) {
                acc = reduce_combine<T>(op, acc, scratch[lane][threadIdx.x]);
            }
            part[k] = acc;
        }
        __syncthreads();  // scratch is read before the next outputs overwrite it
    }
}

// True when candidate `a` at index `ia` beats `b` at `ib`: a strictly better value, or an equal
// one (both NaN included) at a smaller index.
template <typename T>
__device__ __forceinline__ bool arg_better(int op, T a, unsigned int ia, T b, unsigned int ib) {
    const bool a_nan = isnan(a), b_nan = isnan(b);
    if (a_nan || b_nan) {
        return a_nan && (!b_nan || ia < ib);
    }
    if (a == b) return ia < ib;
    return op == REDUCE_ARGMAX ? a > b : a < b;
}

template <typename T>
__device__ void arg_reduce_kernel(const T* x, Strided kept, u64 n, u64 stride,
                                  unsigned int* out, u64 n_out, int op) {
    __shared__ T vals[BLOCK_THREADS];
    __shared__ unsigned int idxs[BLOCK_THREADS];
    for (u64 k = blockIdx.x; k < n_out; k += gridDim.x) {
        const u64 base = strided_index(kept, k);
        T best = x[base];
        unsigned int best_i = 0;
        for (u64 j = threadIdx.x; j < n; j += blockDim.x) {
            T v = x[base + j * stride];
            if (arg_better<T>(op, v, (unsigned int)j, best, best_i)) {
                best = v;
                best_i = (unsigned int)j;
            }
        }
        vals[threadIdx.x] = best;
        idxs[threadIdx.x] = best_i;
        __syncthreads();
        for (unsigned int half = blockDim.x / 2; half > 0; half >>= 1) {
            if (threadIdx.x < half) {
                T v = vals[threadIdx.x + half];
                unsigned int vi = idxs[threadIdx.x + half];
                if (arg_better<T>(op, v, vi, vals[threadIdx.x], idxs[threadIdx.x])) {
                    vals[threadIdx.x] = v;
                    idxs[threadIdx.x] = vi;
                }
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            out[k] = idxs[0];
        }
        __syncthreads();  // idxs[0] is read before the next output overwrites it
    }
}

#define REDUCE_KERNELS(T, NAME)                                                              \
    extern "C" __global__ void reduce_rows_##NAME(const T* x, Strided kept, Strided red,     \
                                                  u64 n_red, u64 chunk, T* out, u64 n_out,   \
                                                  int op) {                                  \
        reduce_rows_kernel<T>(x, kept, red, n_red, chunk, out, n_out, op);                   \
    }                                                                                        \
    extern "C" __global__ void reduce_cols_##NAME(const T* x, Strided kept, Strided red,     \
                                                  u64 n_red, u64 chunk, T* out, u64 n_out,   \
                                                  int op) {                                  \
        reduce_cols_kernel<T>(x, kept, red, n_red, chunk, out, n_out, op);                   \
    }                                                                                        \
    extern "C" __global__ void arg_reduce_##NAME(const T* x, Strided kept, u64 n,            \
                                                 u64 stride, unsigned int* out, u64 n_out,   \
                                                 int op) {                                   \
        arg_reduce_kernel<T>(x, kept, n, stride, out, n_out, op);                            \
    }

REDUCE_KERNELS(float, f32)
REDUCE_KERNELS(double, f64)
