// Definitions shared by every kernel file; the launcher puts this text in front of each file
// before compiling it.
//
// Conventions of all kernels:
// - `u64` sizes and indices, so a tensor may hold more than 2^31 elements;
// - elementwise kernels use grid-stride loops, so any grid size covers any `n`;
// - row kernels (softmax, layer norm, cross-entropy, reductions) run one block of
//   `BLOCK_THREADS` threads per row and combine the threads' partial results with the block
//   reductions below, which every thread of the block must reach.

typedef unsigned long long u64;
typedef long long i64;

#define MAX_DIMS 8
#define BLOCK_THREADS 256
#define FULL_MASK 0xffffffffu

// A strided view of `shape` over a buffer: element `[i0, ..., i_{rank-1}]` lives at
// `offset + sum_k i_k * strides[k]` (the layout of the tensor crate, see layout.rs).
struct Strided {
    u64 rank;
    u64 offset;
    u64 shape[MAX_DIMS];
    u64 strides[MAX_DIMS];
};

// Buffer index of the `i`-th element of a view in row-major order.
__device__ __forceinline__ u64 strided_index(const Strided& v, u64 i) {
    if (v.rank == 1) {
        return v.offset + i * v.strides[0];
    }
    u64 at = v.offset;
    for (int d = (int)v.rank - 1; d >= 0; --d) {
        u64 size = v.shape[d];
        at += (i % size) * v.strides[d];
        i /= size;
    }
    return at;
}

// Grid-stride loop over `0 <= i < n`.
#define FOR_EACH(i, n)                                                          \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (u64)(n);      \
         i += (u64)blockDim.x * gridDim.x)

// `max` and `min` that propagate NaN, like the CPU's `max_nan` / `min_nan` (dtype.rs).
template <typename T> __device__ __forceinline__ T max_nan(T a, T b) {
    return (isnan(a) || a > b) ? a : b;
}
template <typename T> __device__ __forceinline__ T min_nan(T a, T b) {
    return (isnan(a) || a < b) ? a : b;
}

template <typename T> __device__ __forceinline__ T infinity() {
    return (T)__longlong_as_double(0x7ff0000000000000ll);
}

struct SumOp {
    template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
    template <typename T> __device__ T operator()(T a, T b) const { return max_nan(a, b); }
};
struct MinOp {
    template <typename T> __device__ T operator()(T a, T b) const { return min_nan(a, b); }
};

// Combines `v` across the 32 lanes of a warp; every lane gets the result.
template <typename T, typename Op> __device__ T warp_reduce(T v, Op op) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = op(v, __shfl_xor_sync(FULL_MASK, v, offset));
    }
    return v;
}

// Combines `v` across the whole block; every thread gets the result. `scratch` is a shared
// array of 32 elements. Every thread of the block must call this, and the block must be
// one-dimensional with a multiple of 32 threads (partial warps would shuffle with lanes that
// do not exist).
template <typename T, typename Op>
__device__ T block_reduce(T v, T* scratch, Op op, T identity) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    v = warp_reduce(v, op);
    __syncthreads();  // the previous call's readers of scratch are done
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    v = (lane < warps) ? scratch[lane] : identity;
    v = warp_reduce(v, op);
    return v;
}

template <typename T> __device__ T block_sum(T v, T* scratch) {
    return block_reduce(v, scratch, SumOp(), (T)0);
}
template <typename T> __device__ T block_max(T v, T* scratch) {
    return block_reduce(v, scratch, MaxOp(), -infinity<T>());
}
