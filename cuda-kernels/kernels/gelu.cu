// GELU backward in both forms: dx[i] = dy[i] * gelu'(x[i]) over contiguous buffers of n.
// CPU twin: tensor/src/cpu/gelu.rs. (The forward is an elementwise op in unary.cu.)
//
// Tanh form: the forward was y = 0.5 x (1 + tanh u), u = c (x + 0.044715 x^3), c = sqrt(2/pi),
//   so dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2).
// Erf form: the forward was y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)),
//   so dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).

#define GELU_TANH 0
#define GELU_ERF 1

template <typename T> __device__ T gelu_derivative(int kind, T x) {
    const T half = (T)0.5, one = (T)1;
    if (kind == GELU_TANH) {
        const T c = (T)0.7978845608028654;
        const T x2 = x * x;
        const T t = tanh(c * (x + (T)0.044715 * x2 * x));
        return half * (one + t) + half * x * (one - t * t) * c * (one + (T)(3.0 * 0.044715) * x2);
    }
    const T cdf = half * (one + erf(x * (T)0.7071067811865476));
    return cdf + x * exp(-x * x * half) * (T)0.3989422804014327;
}

template <typename T> __device__ void gelu_backward(const T* x, const T* dy, T* dx, u64 n,
                                                    int kind) {
    FOR_EACH(i, n) {
        dx[i] = dy[i] * gelu_derivative<T>(kind, x[i]);
    }
}

extern "C" __global__ void gelu_backward_f32(const float* x, const float* dy, float* dx, u64 n,
                                             int kind) {
    gelu_backward<float>(x, dy, dx, n, kind);
}
extern "C" __global__ void gelu_backward_f64(const double* x, const double* dy, double* dx,
                                             u64 n, int kind) {
    gelu_backward<double>(x, dy, dx, n, kind);
}
