// Elementwise binary ops and comparisons with broadcasting.
// CPU twin: tensor/src/cpu/binary.rs (`apply` and `compare` define each op).
//
// Both inputs arrive as views already broadcast to the output's shape (size-1 and missing
// dims have stride 0), with `n` elements.
// - binary:         z[i] = x[x_view(i)] op y[y_view(i)], contiguous `z`;
// - binary_inplace: x[x_view(i)] = x[x_view(i)] op y[y_view(i)] (`x_view` must not overlap
//                   itself, so each element has one writer);
// - compare:        mask[i] = x[x_view(i)] cmp y[y_view(i)] as 0 or 1; NaN compares false
//                   except under `ne`.
// `op` numbers follow `BinaryOp` and `CmpOp` in tensor/src/op.rs.

#define BINARY_ADD 0
#define BINARY_SUB 1
#define BINARY_MUL 2
#define BINARY_DIV 3
#define BINARY_POW 4
#define BINARY_MAXIMUM 5
#define BINARY_MINIMUM 6

#define CMP_EQ 0
#define CMP_NE 1
#define CMP_LT 2
#define CMP_LE 3
#define CMP_GT 4
#define CMP_GE 5

template <typename T> __device__ __forceinline__ T apply_binary(int op, T a, T b) {
    switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    case BINARY_POW: return pow(a, b);
    case BINARY_MAXIMUM: return max_nan(a, b);
    case BINARY_MINIMUM: return min_nan(a, b);
    default: return a;
    }
}

template <typename T> __device__ __forceinline__ unsigned char apply_compare(int op, T a, T b) {
    switch (op) {
    case CMP_EQ: return a == b;
    case CMP_NE: return a != b;
    case CMP_LT: return a < b;
    case CMP_LE: return a <= b;
    case CMP_GT: return a > b;
    case CMP_GE: return a >= b;
    default: return 0;
    }
}

template <typename T>
__device__ void binary_strided(const T* x, Strided xv, const T* y, Strided yv, T* z, u64 n,
                               int op) {
    FOR_EACH(i, n) {
        z[i] = apply_binary<T>(op, x[strided_index(xv, i)], y[strided_index(yv, i)]);
    }
}

template <typename T>
__device__ void binary_inplace_strided(T* x, Strided xv, const T* y, Strided yv, u64 n,
                                       int op) {
    FOR_EACH(i, n) {
        u64 at = strided_index(xv, i);
        x[at] = apply_binary<T>(op, x[at], y[strided_index(yv, i)]);
    }
}

template <typename T>
__device__ void compare_strided(const T* x, Strided xv, const T* y, Strided yv,
                                unsigned char* mask, u64 n, int op) {
    FOR_EACH(i, n) {
        mask[i] = apply_compare<T>(op, x[strided_index(xv, i)], y[strided_index(yv, i)]);
    }
}

#define BINARY_KERNELS(T, NAME)                                                              \
    extern "C" __global__ void binary_##NAME(const T* x, Strided xv, const T* y, Strided yv, \
                                             T* z, u64 n, int op) {                          \
        binary_strided<T>(x, xv, y, yv, z, n, op);                                           \
    }                                                                                        \
    extern "C" __global__ void binary_inplace_##NAME(T* x, Strided xv, const T* y,           \
                                                     Strided yv, u64 n, int op) {            \
        binary_inplace_strided<T>(x, xv, y, yv, n, op);                                      \
    }

BINARY_KERNELS(float, f32)
BINARY_KERNELS(double, f64)

#define COMPARE_KERNEL(T, NAME)                                                              \
    extern "C" __global__ void compare_##NAME(const T* x, Strided xv, const T* y, Strided yv, \
                                              unsigned char* mask, u64 n, int op) {          \
        compare_strided<T>(x, xv, y, yv, mask, n, op);                                       \
    }

COMPARE_KERNEL(float, f32)
COMPARE_KERNEL(double, f64)
COMPARE_KERNEL(unsigned char, u8)
COMPARE_KERNEL(unsigned int, u32)
COMPARE_KERNEL(i64, i64)
