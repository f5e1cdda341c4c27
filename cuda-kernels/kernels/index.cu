// Indexing along a dim: index_select (the embedding forward), its adjoint index_add (the
// embedding backward), gather, and its adjoint scatter_add.
// CPU twin: tensor/src/cpu/index.rs.
//
// Writing a contiguous tensor as (O, S, I) around the indexed dim (outer, size, inner), with
// indices as i64 already checked by the caller to lie in [0, S):
// - index_select: out[o, j, i] = x[o, ids[j], i], out (O, J, I);
// - index_add:    dst[o, s, i] = sum over j with ids[j] == s, in increasing j, of src[o, j, i];
//                 the caller passes the ids grouped by value (a sorted scatter-add): the
//                 positions j of value s are order[starts[s] .. starts[s + 1]], so each output
//                 element has one writer, no atomics are needed, and the sum is deterministic;
// - gather:       out[p] = x[p with p[dim] = idx[p]], over the view of x aligned with idx
//                 (`view`: idx's shape, x's strides with stride 0 at dim; `step`: x's stride
//                 at dim);
// - scatter_add:  dst[p with p[dim] = idx[p]] += src[p] into a zeroed dst, with atomic adds
//                 (repeated targets add up in an unspecified order).
// Selection and gather move raw bits, so one kernel serves every dtype of that size.

template <typename B>
__device__ void index_select_kernel(const B* x, u64 size, u64 inner, const i64* ids, u64 n_ids,
                                    B* out, u64 n) {
    FOR_EACH(e, n) {
        const u64 i = e % inner;
        const u64 row = e / inner;
        const u64 j = row % n_ids;
        const u64 o = row / n_ids;
        out[e] = x[(o * size + (u64)ids[j]) * inner + i];
    }
}

template <typename T>
__device__ void index_add_kernel(const T* src, u64 n_ids, u64 inner, u64 size,
                                 const i64* starts, const i64* order, T* dst, u64 n) {
    FOR_EACH(e, n) {
        const u64 i = e % inner;
        const u64 row = e / inner;
        const u64 s = row % size;
        const u64 o = row / size;
        T acc = (T)0;
        for (i64 p = starts[s]; p < starts[s + 1]; ++p) {
            acc += src[(o * n_ids + (u64)order[p]) * inner + i];
        }
        dst[e] = acc;
    }
}

template <typename B>
__device__ void gather_kernel(const B* x, Strided view, u64 step, const i64* idx, B* out,
                              u64 n) {
    FOR_EACH(e, n) {
        out[e] = x[strided_index(view, e) + (u64)idx[e] * step];
    }
}

template <typename T>
__device__ void scatter_add_kernel(const T* src, Strided view, u64 step, const i64* idx, T* dst,
                                   u64 n) {
    FOR_EACH(e, n) {
        atomicAdd(&dst[strided_index(view, e) + (u64)idx[e] * step], src[e]);
    }
}

#define SELECT_KERNELS(B, NAME)                                                              \
    extern "C" __global__ void index_select_##NAME(const B* x, u64 size, u64 inner,          \
                                                   const i64* ids, u64 n_ids, B* out, u64 n) { \
        index_select_kernel<B>(x, size, inner, ids, n_ids, out, n);                          \
    }                                                                                        \
    extern "C" __global__ void gather_##NAME(const B* x, Strided view, u64 step,             \
                                             const i64* idx, B* out, u64 n) {                \
        gather_kernel<B>(x, view, step, idx, out, n);                                        \
    }

SELECT_KERNELS(unsigned char, b8)
SELECT_KERNELS(unsigned short, b16)
SELECT_KERNELS(unsigned int, b32)
SELECT_KERNELS(u64, b64)

#define ADD_KERNELS(T, NAME)                                                                 \
    extern "C" __global__ void index_add_##NAME(const T* src, u64 n_ids, u64 inner, u64 size, \
                                                const i64* starts, const i64* order, T* dst, \
                                                u64 n) {                                     \
        index_add_kernel<T>(src, n_ids, inner, size, starts, order, dst, n);                 \
    }                                                                                        \
    extern "C" __global__ void scatter_add_##NAME(const T* src, Strided view, u64 step,      \
                                                  const i64* idx, T* dst, u64 n) {           \
        scatter_add_kernel<T>(src, view, step, idx, dst, n);                                 \
    }

ADD_KERNELS(float, f32)
ADD_KERNELS(double, f64)
