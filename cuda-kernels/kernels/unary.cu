// Elementwise unary math: y[i] = f(x[x_view(i)]) into a contiguous `y` of `n` elements.
// CPU twin: tensor/src/cpu/unary.rs (`apply_reference` is the definition of each op).
//
// `op` numbers the ops in the order of `UnaryOp` in tensor/src/op.rs; `p0` and `p1` carry an
// op's parameters: clamp (lo, hi), powf (exponent), affine (mul, add).
// GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); erf form:
// 0.5 x (1 + erf(x / sqrt 2)). Their derivatives are in gelu.cu.

#define UNARY_NEG 0
#define UNARY_EXP 1
#define UNARY_LOG 2
#define UNARY_SQRT 3
#define UNARY_RSQRT 4
#define UNARY_TANH 5
#define UNARY_SIGMOID 6
#define UNARY_RELU 7
#define UNARY_GELU_TANH 8
#define UNARY_GELU_ERF 9
#define UNARY_SIN 10
#define UNARY_COS 11
#define UNARY_ABS 12
#define UNARY_SQUARE 13
#define UNARY_RECIP 14
#define UNARY_CLAMP 15
#define UNARY_POWF 16
#define UNARY_AFFINE 17

template <typename T> __device__ T apply_unary(int op, T x, T p0, T p1) {
    const T one = (T)1;
    switch (op) {
    case UNARY_NEG: return -x;
    case UNARY_EXP: return exp(x);
    case UNARY_LOG: return log(x);
    case UNARY_SQRT: return sqrt(x);
    case UNARY_RSQRT: return one / sqrt(x);
    case UNARY_TANH: return tanh(x);
    case UNARY_SIGMOID: return one / (one + exp(-x));
    case UNARY_RELU: return x < (T)0 ? (T)0 : x;  // NaN passes, as in PyTorch
    case UNARY_GELU_TANH: {
        T u = (T)0.7978845608028654 * (x + (T)0.044715 * x * x * x);
        return (T)0.5 * x * (one + tanh(u));
    }
    case UNARY_GELU_ERF: return (T)0.5 * x * (one + erf(x * (T)0.7071067811865476));
    case UNARY_SIN: return sin(x);
    case UNARY_COS: return cos(x);
    case UNARY_ABS: return fabs(x);
    case UNARY_SQUARE: return x * x;
    case UNARY_RECIP: return one / x;
    case UNARY_CLAMP: return x < p0 ? p0 : (x > p1 ? p1 : x);  // NaN passes
    case UNARY_POWF: return pow(x, p0);
    case UNARY_AFFINE: return x * p0 + p1;
    default: return x;
    }
}

template <typename T>
__device__ void unary_strided(const T* x, Strided xv, T* y, u64 n, int op, T p0, T p1) {
    FOR_EACH(i, n) {
        y[i] = apply_unary<T>(op, x[strided_index(xv, i)], p0, p1);
    }
}

extern "C" __global__ void unary_f32(const float* x, Strided xv, float* y, u64 n, int op,
                                     float p0, float p1) {
    unary_strided<float>(x, xv, y, n, op, p0, p1);
}
extern "C" __global__ void unary_f64(const double* x, Strided xv, double* y, u64 n, int op,
                                     double p0, double p1) {
    unary_strided<double>(x, xv, y, n, op, p0, p1);
}
