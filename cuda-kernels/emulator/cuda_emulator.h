// The part of CUDA C that the kernels under kernels/ use, defined for a host C++ compiler, so
// that the same kernel sources run on the CPU (the `emulator` feature; see src/emulator.rs).
//
// Every CUDA thread of a block is a fiber with its own stack, and the blocks of a grid run one
// after another on the calling thread (runtime.cpp). Fibers switch only at __syncthreads and
// at warp shuffles, so:
// - `__shared__` variables can be plain statics: one block runs at a time;
// - atomics are plain read-modify-writes;
// - a barrier or shuffle that some threads never reach is reported as an error instead of
//   hanging, and so is a shuffle in a warp some of whose lanes have exited.
// - a read or write past the end of a buffer faults on the inaccessible page that follows
//   every buffer (src/emulator.rs), and runtime.cpp reports it as the launch's error.
// What it cannot show: races between threads that do not synchronize (the fibers run in a
// fixed order).

#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict

using std::erf;
using std::exp;
using std::fabs;
using std::isinf;
using std::isnan;
using std::log;
using std::sqrt;
using std::tanh;

struct dim3 {
    unsigned int x, y, z;
};

// The running fiber's coordinates; the scheduler sets them before resuming a fiber.
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {
// Waits until every live thread of the block is here.
void sync_block();
// Publishes this lane's `bits`, waits for the whole warp, and returns lane `src`'s.
uint64_t shuffle(unsigned int mask, uint64_t bits, unsigned int src);
// This thread's lane within its warp.
unsigned int lane();

template <typename T> T shuffle_as(unsigned int mask, T v, unsigned int src) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffles move at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    bits = shuffle(mask, bits, src);
    T out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}
}  // namespace emu

inline void __syncthreads() { emu::sync_block(); }

template <typename T> T __shfl_sync(unsigned int mask, T v, int src) {
    return emu::shuffle_as(mask, v, (unsigned int)src & 31u);
}
template <typename T> T __shfl_xor_sync(unsigned int mask, T v, int lane_mask) {
    return emu::shuffle_as(mask, v, (emu::lane() ^ (unsigned int)lane_mask) & 31u);
}

template <typename T> T atomicAdd(T* address, T v) {
    const T old = *address;
    *address = old + v;
    return old;
}

inline double __longlong_as_double(long long bits) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

namespace emu {
// A kernel entry point taking its arguments as `cuLaunchKernel` does: `params[i]` is the
// address of argument i.
typedef void (*Entry)(void** params);

struct Kernel {
    const char* name;
    Entry entry;
};

// Calls `f` with its arguments read from `params`.
template <typename... A, std::size_t... I>
void call_with(void (*f)(A...), void** params, std::index_sequence<I...>) {
    f(*static_cast<typename std::remove_cv<typename std::remove_reference<A>::type>::type*>(
        params[I])...);
}
template <typename... A> void call(void (*f)(A...), void** params) {
    call_with(f, params, std::index_sequence_for<A...>{});
}
}  // namespace emu
