// Copies, fills and dtype conversions of strided views.
// CPU twin: tensor/src/cpu/copy.rs.
//
// Shapes: a view of `n` elements in row-major order, `src` and `dst` of one shape.
// - copy:    dst[dst_view(i)] = src[src_view(i)]; `contiguous()` is a copy into a contiguous
//            view, `copy_into` (cat, copy_) one into a narrowed view.
// - fill:    dst[dst_view(i)] = value.
// - convert: dst[i] = D(double(src[src_view(i)])) into a contiguous `dst`, through `double` as
//            on the CPU; float-to-integer conversions truncate toward zero and saturate, with
//            NaN giving 0 (Rust's `as`).
// Copies and fills move raw bits of the element's size (1, 2, 4 or 8 bytes), so one kernel
// serves every dtype of that size. The destination view must not overlap itself.

template <typename B>
__device__ void copy_strided(const B* src, Strided sv, B* dst, Strided dv, u64 n) {
    FOR_EACH(i, n) {
        dst[strided_index(dv, i)] = src[strided_index(sv, i)];
    }
}

template <typename B> __device__ void fill_strided(B* dst, Strided dv, u64 n, B value) {
    FOR_EACH(i, n) {
        dst[strided_index(dv, i)] = value;
    }
}

#define COPY_KERNELS(B, NAME)                                                                \
    extern "C" __global__ void copy_##NAME(const B* src, Strided sv, B* dst, Strided dv,    \
                                           u64 n) {                                          \
        copy_strided<B>(src, sv, dst, dv, n);                                                \
    }                                                                                        \
    extern "C" __global__ void fill_##NAME(B* dst, Strided dv, u64 n, B value) {             \
        fill_strided<B>(dst, dv, n, value);                                                  \
    }

COPY_KERNELS(unsigned char, b8)
COPY_KERNELS(unsigned short, b16)
COPY_KERNELS(unsigned int, b32)
COPY_KERNELS(u64, b64)

// Conversions from `double`, matching Rust's `as` casts.
template <typename D> __device__ D from_f64(double v);
template <> __device__ float from_f64<float>(double v) { return (float)v; }
template <> __device__ double from_f64<double>(double v) { return v; }
template <> __device__ unsigned char from_f64<unsigned char>(double v) {
    if (isnan(v) || v <= 0.0) return 0;
    if (v >= 255.0) return 255;
    return (unsigned char)v;
}
template <> __device__ unsigned int from_f64<unsigned int>(double v) {
    if (isnan(v) || v <= 0.0) return 0;
    if (v >= 4294967295.0) return 4294967295u;
    return (unsigned int)v;
}
template <> __device__ i64 from_f64<i64>(double v) {
    if (isnan(v)) return 0;
    if (v >= 9223372036854775807.0) return 9223372036854775807ll;
    if (v <= -9223372036854775807.0) return (-9223372036854775807ll - 1);
    return (i64)v;
}

template <typename S, typename D>
__device__ void convert_strided(const S* src, Strided sv, D* dst, u64 n) {
    FOR_EACH(i, n) {
        dst[i] = from_f64<D>((double)src[strided_index(sv, i)]);
    }
}

#define CONVERT_KERNEL(S, SN, D, DN)                                                         \
    extern "C" __global__ void convert_##SN##_##DN(const S* src, Strided sv, D* dst, u64 n) { \
        convert_strided<S, D>(src, sv, dst, n);                                              \
    }

#define CONVERT_FROM(S, SN)                                                                  \
    CONVERT_KERNEL(S, SN, float, f32)                                                        \
    CONVERT_KERNEL(S, SN, double, f64)                                                       \
    CONVERT_KERNEL(S, SN, unsigned char, u8)                                                 \
    CONVERT_KERNEL(S, SN, unsigned int, u32)                                                 \
    CONVERT_KERNEL(S, SN, i64, i64)

CONVERT_FROM(float, f32)
CONVERT_FROM(double, f64)
CONVERT_FROM(unsigned char, u8)
CONVERT_FROM(unsigned int, u32)
CONVERT_FROM(i64, i64)
