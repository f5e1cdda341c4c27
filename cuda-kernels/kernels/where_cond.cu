// Selection by a mask: out[i] = mask[m_view(i)] != 0 ? a[a_view(i)] : b[b_view(i)].
// CPU twin: tensor/src/cpu/where_cond.rs.
//
// All three views are broadcast to the output's shape of `n` elements; `out` is contiguous.
// Elements move as raw bits of their size, so one kernel serves every dtype of that size.

template <typename B>
__device__ void where_strided(const unsigned char* mask, Strided mv, const B* a, Strided av,
                              const B* b, Strided bv, B* out, u64 n) {
    FOR_EACH(i, n) {
        out[i] = mask[strided_index(mv, i)] != 0 ? a[strided_index(av, i)]
                                                 : b[strided_index(bv, i)];
    }
}

#define WHERE_KERNEL(B, NAME)                                                                \
    extern "C" __global__ void where_##NAME(const unsigned char* mask, Strided mv,           \
                                            const B* a, Strided av, const B* b, Strided bv,  \
                                            B* out, u64 n) {                                 \
        where_strided<B>(mask, mv, a, av, b, bv, out, n);                                    \
    }

WHERE_KERNEL(unsigned char, b8)
WHERE_KERNEL(unsigned int, b32)
WHERE_KERNEL(u64, b64)
