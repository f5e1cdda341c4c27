// Rotary position embeddings in llama2.c's layout. CPU twin: tensor/src/cpu/rope.rs.
//
// Shapes: x, y (N, T, HS) contiguous, the T rows of each block at positions start..start+T;
// cos, sin (P, HS / 2). One thread per pair (2j, 2j + 1) of a row r at position
// p = start + r % T, with a = the table's angle at (p, j):
//   y[2j] = x[2j] cos(a) - x[2j+1] sin(a),   y[2j+1] = x[2j] sin(a) + x[2j+1] cos(a).
// sign = -1 rotates by -a instead (the backward: the inverse rotation is the transpose).

template <typename T>
__device__ void rope(const T* x, const T* cos_t, const T* sin_t, T* y, u64 rows, u64 t, u64 hs,
                     u64 start, T sign) {
    const u64 half = hs / 2;
    FOR_EACH(i, rows * half) {
        const u64 r = i / half, j = i % half;
        const u64 p = start + r % t;
        const T c = cos_t[p * half + j], s = sign * sin_t[p * half + j];
        const T a = x[r * hs + 2 * j], b = x[r * hs + 2 * j + 1];
        y[r * hs + 2 * j] = a * c - b * s;
        y[r * hs + 2 * j + 1] = a * s + b * c;
    }
}

extern "C" __global__ void rope_f32(const float* x, const float* cos_t, const float* sin_t,
                                    float* y, u64 rows, u64 t, u64 hs, u64 start, float sign) {
    rope<float>(x, cos_t, sin_t, y, rows, t, hs, start, sign);
}
extern "C" __global__ void rope_f64(const double* x, const double* cos_t, const double* sin_t,
                                    double* y, u64 rows, u64 t, u64 hs, u64 start, double sign) {
    rope<double>(x, cos_t, sin_t, y, rows, t, hs, start, sign);
}
