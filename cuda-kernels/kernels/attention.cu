// Causal scaled-dot-product attention, forward and backward, flash-attention style: keys and
// values stream through shared memory in tiles, the score matrix is never stored, and the
// forward saves only the row logsumexp, from which the backward recomputes the probabilities.
// CPU twin: tensor/src/cpu/attention.rs.
//
// Shapes: q, out, dout, dq (BH, Tq, D); k, v, dk, dv (BH, Tk, D); lse, delta (BH, Tq); all
// contiguous, Tq <= Tk, D <= ATT_MAX_D. Query row i sits at position i + Tk - Tq and sees keys
// j <= i + Tk - Tq. With scale = 1 / sqrt(D):
//   S_ij = scale q_i . k_j,  lse_i = logsumexp_{visible j} S_ij,  P_ij = exp(S_ij - lse_i),
//   out_i = sum_j P_ij v_j.
// Backward, from the forward's P (recomputed) and dO:
//   delta_i = dO_i . out_i,  dP_ij = dO_i . v_j,  dS_ij = P_ij (dP_ij - delta_i),
//   dV_j = sum_i P_ij dO_i,  dQ_i = scale sum_j dS_ij k_j,  dK_j = scale sum_i dS_ij q_i.
//
// Work split: a block holds ATT_WARPS warps; each warp owns one row (a query row for the
// forward and dQ, a key row for dK and dV). A tile holds ATT_BC = 32 rows of the other side,
// one per lane: lane l computes the score of tile row l with a dot product over D, the warp
// combines the 32 results with shuffles, and lane l accumulates output columns
// l, l + 32, ... (at most ATT_MAX_D / 32 registers). Every row has one writer, so there are
// no atomics, and the sums run in a fixed order.
// The forward keeps the running max m, the running sum l of exp(S - m) and the unnormalized
// output; a new tile with max m' rescales both by exp(m - m') (the online softmax).

#define ATT_WARPS 4
#define ATT_BC 32
#define ATT_MAX_D 128
#define ATT_PER_LANE (ATT_MAX_D / 32)

// Shared memory, in elements, of the forward and dQ kernels: two padded tiles of ATT_BC rows
// and one row per warp (the dkdv kernel needs the same amount plus 2 * ATT_BC).

// Loads rows j0 .. j0 + ATT_BC of a (rows, d) matrix into a tile with row stride d + 1
// (the padding keeps lanes that read one column each on different banks); rows past the
// end are zero.
template <typename T>
__device__ void load_tile(const T* src, i64 rows, int d, i64 j0, T* tile) {
    for (int e = threadIdx.x; e < ATT_BC * d; e += blockDim.x) {
        const int r = e / d, c = e % d;
        const i64 j = j0 + r;
        tile[r * (d + 1) + c] = j < rows ? src[j * d + c] : (T)0;
    }
}

template <typename T> __device__ T dot_rows(const T* a, const T* b, int d) {
    T s = (T)0;
    for (int c = 0; c < d; ++c) s += a[c] * b[c];
    return s;
}

template <typename T>
__device__ void attention_forward(const T* q, const T* k, const T* v, T* out, T* lse, int tq,
                                  int tk, int d, T scale) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* ks = (T*)smem;              // (ATT_BC, d + 1)
    T* vs = ks + ATT_BC * (d + 1); // (ATT_BC, d + 1)
    T* qs = vs + ATT_BC * (d + 1); // (ATT_WARPS, d)
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const i64 h = blockIdx.y;
    const int shift = tk - tq;
    const int i = blockIdx.x * ATT_WARPS + warp;
    const bool active = i < tq;  // uniform within a warp
    const int visible = active ? i + shift + 1 : 0;
    const int last = min(tq - 1, (int)(blockIdx.x * ATT_WARPS + ATT_WARPS - 1));
    const int kend = last + shift + 1;  // keys any row of this block sees
    const T* kh = k + h * tk * d;
    const T* vh = v + h * tk * d;
    T* qrow = qs + warp * d;
    if (active) {
        for (int c = lane; c < d; c += 32) qrow[c] = q[(h * tq + i) * d + c];
    }
    T m = -infinity<T>(), l = (T)0;
    T acc[ATT_PER_LANE];
    for (int t = 0; t < ATT_PER_LANE; ++t) acc[t] = (T)0;
    for (int j0 = 0; j0 < kend; j0 += ATT_BC) {
        __syncthreads();  // everyone is done with the previous tile
        load_tile(kh, tk, d, j0, ks);
        load_tile(vh, tk, d, j0, vs);
        __syncthreads();
        if (!active || j0 >= visible) continue;  // uniform within the warp
        const int j = j0 + lane;
        const T s = j < visible ? scale * dot_rows(qrow, ks + lane * (d + 1), d) : -infinity<T>();
        const T m_new = max_nan(m, warp_reduce(s, MaxOp()));  // finite: key j0 is visible
        const T p = j < visible ? exp(s - m_new) : (T)0;
        const T correction = exp(m - m_new);
        l = l * correction + warp_reduce(p, SumOp());
        const int n = min(ATT_BC, visible - j0);
        for (int t = 0; t < ATT_PER_LANE; ++t) acc[t] *= correction;
        for (int r = 0; r < n; ++r) {
            const T pr = __shfl_sync(FULL_MASK, p, r);
            for (int t = 0; t < ATT_PER_LANE; ++t) {
                const int c = lane + 32 * t;
                if (c < d) acc[t] += pr * vs[r * (d + 1) + c];
            }
        }
        m = m_new;
    }
    if (active) {
        for (int t = 0; t < ATT_PER_LANE; ++t) {
            const int c = lane + 32 * t;
            if (c < d) out[(h * tq + i) * d + c] = acc[t] / l;
        }
        if (lane == 0) lse[h * tq + i] = m + log(l);
    }
}

// delta_i = dO_i . out_i, one warp per row.
template <typename T>
__device__ void attention_delta(const T* out, const T* dout, T* delta, i64 rows, int d) {
    const int lane = threadIdx.x & 31;
    const i64 warps = (i64)gridDim.x * ATT_WARPS;
    for (i64 r = (i64)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5); r < rows; r += warps) {
        T s = (T)0;
        for (int c = lane; c < d; c += 32) s += out[r * d + c] * dout[r * d + c];
        s = warp_reduce(s, SumOp());
        if (lane == 0) delta[r] = s;
    }
}

// dQ: one warp per query row, streaming key and value tiles.
template <typename T>
__device__ void attention_backward_dq(const T* q, const T* k, const T* v, const T* dout,
                                      const T* lse, const T* delta, T* dq, int tq, int tk, int d,
                                      T scale) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* ks = (T*)smem;                 // (ATT_BC, d + 1)
    T* vs = ks + ATT_BC * (d + 1);    // (ATT_BC, d + 1)
    T* qs = vs + ATT_BC * (d + 1);    // (ATT_WARPS, d)
    T* dos = qs + ATT_WARPS * d;      // (ATT_WARPS, d)
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const i64 h = blockIdx.y;
    const int shift = tk - tq;
    const int i = blockIdx.x * ATT_WARPS + warp;
    const bool active = i < tq;
    const int visible = active ? i + shift + 1 : 0;
    const int last = min(tq - 1, (int)(blockIdx.x * ATT_WARPS + ATT_WARPS - 1));
    const int kend = last + shift + 1;
    const T* kh = k + h * tk * d;
    const T* vh = v + h * tk * d;
    T* qrow = qs + warp * d;
    T* dorow = dos + warp * d;
    T lse_i = (T)0, delta_i = (T)0;
    if (active) {
        for (int c = lane; c < d; c += 32) {
            qrow[c] = q[(h * tq + i) * d + c];
            dorow[c] = dout[(h * tq + i) * d + c];
        }
        lse_i = lse[h * tq + i];
        delta_i = delta[h * tq + i];
    }
    T acc[ATT_PER_LANE];
    for (int t = 0; t < ATT_PER_LANE; ++t) acc[t] = (T)0;
    for (int j0 = 0; j0 < kend; j0 += ATT_BC) {
        __syncthreads();
        load_tile(kh, tk, d, j0, ks);
        load_tile(vh, tk, d, j0, vs);
        __syncthreads();
        if (!active || j0 >= visible) continue;
        const int j = j0 + lane;
        T ds = (T)0;
        if (j < visible) {
            const T p = exp(scale * dot_rows(qrow, ks + lane * (d + 1), d) - lse_i);
            const T dp = dot_rows(dorow, vs + lane * (d + 1), d);
            ds = p * (dp - delta_i);
        }
        const int n = min(ATT_BC, visible - j0);
        for (int r = 0; r < n; ++r) {
            const T dsr = __shfl_sync(FULL_MASK, ds, r);
            for (int t = 0; t < ATT_PER_LANE; ++t) {
                const int c = lane + 32 * t;
                if (c < d) acc[t] += dsr * ks[r * (d + 1) + c];
            }
        }
    }
    if (active) {
        for (int t = 0; t < ATT_PER_LANE; ++t) {
            const int c = lane + 32 * t;
            if (c < d) dq[(h * tq + i) * d + c] = scale * acc[t];
        }
    }
}

// dK and dV: one warp per key row, streaming tiles of the query rows that see it.
template <typename T>
__device__ void attention_backward_dkdv(const T* q, const T* k, const T* v, const T* dout,
                                        const T* lse, const T* delta, T* dk, T* dv, int tq,
                                        int tk, int d, T scale) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* qs = (T*)smem;                  // (ATT_BC, d + 1)
    T* dos = qs + ATT_BC * (d + 1);    // (ATT_BC, d + 1)
    T* krows = dos + ATT_BC * (d + 1); // (ATT_WARPS, d)
    T* vrows = krows + ATT_WARPS * d;  // (ATT_WARPS, d)
    T* lses = vrows + ATT_WARPS * d;   // (ATT_BC)
    T* deltas = lses + ATT_BC;         // (ATT_BC)
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const i64 h = blockIdx.y;
    const int shift = tk - tq;
    const int j = blockIdx.x * ATT_WARPS + warp;
    const bool active = j < tk;
    // Query row i sees key j when i + shift >= j; the block's first key bounds the first row.
    const int first = max(0, (int)(blockIdx.x * ATT_WARPS) - shift);
    const int first_i = max(0, j - shift);  // this warp's first query row
    T* krow = krows + warp * d;
    T* vrow = vrows + warp * d;
    if (active) {
        for (int c = lane; c < d; c += 32) {
            krow[c] = k[(h * tk + j) * d + c];
            vrow[c] = v[(h * tk + j) * d + c];
        }
    }
    T acc_k[ATT_PER_LANE], acc_v[ATT_PER_LANE];
    for (int t = 0; t < ATT_PER_LANE; ++t) acc_k[t] = acc_v[t] = (T)0;
    for (int i0 = first; i0 < tq; i0 += ATT_BC) {
        __syncthreads();
        load_tile(q + h * tq * d, tq, d, i0, qs);
        load_tile(dout + h * tq * d, tq, d, i0, dos);
        for (int r = threadIdx.x; r < ATT_BC; r += blockDim.x) {
            const int i = i0 + r;
            lses[r] = i < tq ? lse[h * tq + i] : (T)0;
            deltas[r] = i < tq ? delta[h * tq + i] : (T)0;
        }
        __syncthreads();
        if (!active || i0 + ATT_BC <= first_i) continue;  // uniform within the warp
        const int i = i0 + lane;
        const bool sees = i < tq && i >= first_i;
        T p = (T)0, ds = (T)0;
        if (sees) {
            p = exp(scale * dot_rows(qs + lane * (d + 1), krow, d) - lses[lane]);
            const T dp = dot_rows(dos + lane * (d + 1), vrow, d);
            ds = p * (dp - deltas[lane]);
        }
        for (int r = 0; r < ATT_BC; ++r) {
            const T pr = __shfl_sync(FULL_MASK, p, r);
            const T dsr = __shfl_sync(FULL_MASK, ds, r);
            for (int t = 0; t < ATT_PER_LANE; ++t) {
                const int c = lane + 32 * t;
                if (c < d) {
                    acc_v[t] += pr * dos[r * (d + 1) + c];
                    acc_k[t] += dsr * qs[r * (d + 1) + c];
                }
            }
        }
    }
    if (active) {
        for (int t = 0; t < ATT_PER_LANE; ++t) {
            const int c = lane + 32 * t;
            if (c < d) {
                dk[(h * tk + j) * d + c] = scale * acc_k[t];
                dv[(h * tk + j) * d + c] = acc_v[t];
            }
        }
    }
}

#define ATTENTION_KERNELS(T, NAME)                                                           \
    extern "C" __global__ void attention_forward_##NAME(const T* q, const T* k, const T* v,  \
                                                        T* out, T* lse, int tq, int tk,      \
                                                        int d, T scale) {                    \
        attention_forward<T>(q, k, v, out, lse, tq, tk, d, scale);                           \
    }                                                                                        \
    extern "C" __global__ void attention_delta_##NAME(const T* out, const T* dout, T* delta, \
                                                      i64 rows, int d) {                     \
        attention_delta<T>(out, dout, delta, rows, d);                                       \
    }                                                                                        \
    extern "C" __global__ void attention_backward_dq_##NAME(                                 \
        const T* q, const T* k, const T* v, const T* dout, const T* lse, const T* delta,     \
        T* dq, int tq, int tk, int d, T scale) {                                             \
        attention_backward_dq<T>(q, k, v, dout, lse, delta, dq, tq, tk, d, scale);           \
    }                                                                                        \
    extern "C" __global__ void attention_backward_dkdv_##NAME(                               \
        const T* q, const T* k, const T* v, const T* dout, const T* lse, const T* delta,     \
        T* dk, T* dv, int tq, int tk, int d, T scale) {                                      \
        attention_backward_dkdv<T>(q, k, v, dout, lse, delta, dk, dv, tq, tk, d, scale);     \
    }

ATTENTION_KERNELS(float, f32)
ATTENTION_KERNELS(double, f64)
