// The AdamW update, in place over one parameter and its moment buffers (contiguous, n each).
// CPU twin: tensor/src/cpu/adamw.rs.
//
// With gradient g, step t (from 1) and PyTorch's order of operations:
//   p *= 1 - lr wd                       (decay = 1 - lr wd)
//   m += (1 - b1) (g - m)
//   v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// The caller computes the per-step scalars once: step_size = lr / (1 - b1^t) and
// inv_bc2_sqrt = 1 / sqrt(1 - b2^t).

template <typename T>
__device__ void adamw_kernel(T* p, const T* g, T* m, T* v, u64 n, T decay, T one_minus_b1, T b2,
                             T one_minus_b2, T step_size, T inv_bc2_sqrt, T eps) {
    FOR_EACH(i, n) {
        const T gi = g[i];
        T pi = p[i] * decay;
        const T mi = m[i] + one_minus_b1 * (gi - m[i]);
        const T vi = b2 * v[i] + one_minus_b2 * gi * gi;
        pi -= step_size * mi / (sqrt(vi) * inv_bc2_sqrt + eps);
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}

#define ADAMW_KERNEL(T, NAME)                                                                \
    extern "C" __global__ void adamw_##NAME(T* p, const T* g, T* m, T* v, u64 n, T decay,    \
                                            T one_minus_b1, T b2, T one_minus_b2,            \
                                            T step_size, T inv_bc2_sqrt, T eps) {            \
        adamw_kernel<T>(p, g, m, v, n, decay, one_minus_b1, b2, one_minus_b2, step_size,     \
                        inv_bc2_sqrt, eps);                                                  \
    }

ADAMW_KERNEL(float, f32)
ADAMW_KERNEL(double, f64)
