// Batched matrix multiply, the readable version: a tiled GEMM in shared memory.
// CPU twin: tensor/src/cpu/matmul.rs. (The fast path is cuBLAS; tests hold the two together.)
//
// C[b] (M, N) = A[b] (M, K) @ B[b] (K, N), C[b][i][j] = sum_p A[b][i][p] B[b][p][j], for
// b < batch. A and B may have any strides (rs: between rows, cs: between columns, bs: between
// batches; stride 0 broadcasts), so transposed views need no copy; C is contiguous.
// Grid: (ceil(N / TILE), ceil(M / TILE), batches), block: TILE x TILE threads, one per element
// of C. Each step loads a TILE x TILE tile of A and of B into shared memory, then every thread
// adds the tile's TILE products to its element.

#define TILE 16

template <typename T>
__device__ void gemm_tiled(const T* a, i64 rsa, i64 csa, i64 bsa, const T* b, i64 rsb, i64 csb,
                           i64 bsb, T* c, u64 m, u64 n, u64 k, u64 batch) {
    __shared__ T a_tile[TILE][TILE];
    __shared__ T b_tile[TILE][TILE + 1];  // padded: columns are read across threads
    const u64 tx = threadIdx.x, ty = threadIdx.y;
    const u64 row = (u64)blockIdx.y * TILE + ty;
    const u64 col = (u64)blockIdx.x * TILE + tx;
    for (u64 bi = blockIdx.z; bi < batch; bi += gridDim.z) {
        const T* ab = a + (i64)bi * bsa;
        const T* bb = b + (i64)bi * bsb;
        T acc = (T)0;
        for (u64 p0 = 0; p0 < k; p0 += TILE) {
            a_tile[ty][tx] = (row < m && p0 + tx < k) ? ab[(i64)row * rsa + (i64)(p0 + tx) * csa]
                                                      : (T)0;
            b_tile[ty][tx] = (p0 + ty < k && col < n) ? bb[(i64)(p0 + ty) * rsb + (i64)col * csb]
                                                      : (T)0;
            __syncthreads();
            for (int q = 0; q < TILE; ++q) acc += a_tile[ty][q] * b_tile[q][tx];
            __syncthreads();
        }
        if (row < m && col < n) c[(bi * m + row) * n + col] = acc;
    }
}

extern "C" __global__ void gemm_tiled_f32(const float* a, i64 rsa, i64 csa, i64 bsa,
                                          const float* b, i64 rsb, i64 csb, i64 bsb, float* c,
                                          u64 m, u64 n, u64 k, u64 batch) {
    gemm_tiled<float>(a, rsa, csa, bsa, b, rsb, csb, bsb, c, m, n, k, batch);
}
extern "C" __global__ void gemm_tiled_f64(const double* a, i64 rsa, i64 csa, i64 bsa,
                                          const double* b, i64 rsb, i64 csb, i64 bsb, double* c,
                                          u64 m, u64 n, u64 k, u64 batch) {
    gemm_tiled<double>(a, rsa, csa, bsa, b, rsb, csb, bsb, c, m, n, k, batch);
}
