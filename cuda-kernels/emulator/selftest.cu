// Kernels that test the emulator itself (src/emulator.rs, its unit tests): they are built
// only into the emulator, never compiled by NVRTC.

// For thread t of a 1-d block: t, the block's linear index in a 3-d grid, and the block's sum
// of t (a block reduction: shuffles and barriers); three u64 per thread, block after block.
extern "C" __global__ void emu_test_block_sum(u64* out) {
    __shared__ u64 scratch[32];
    const u64 t = threadIdx.x;
    const u64 block = blockIdx.x + (u64)gridDim.x * (blockIdx.y + (u64)gridDim.y * blockIdx.z);
    const u64 sum = block_sum(t, scratch);
    u64* o = out + 3 * (block * blockDim.x + t);
    o[0] = t;
    o[1] = block;
    o[2] = sum;
}

// For thread t (linear index) of a 3-d block: t, lane 0's t and lane (t xor 1)'s t, read by
// shuffles; three u64 per thread.
extern "C" __global__ void emu_test_warp_lanes(u64* out) {
    const u64 t = threadIdx.x + (u64)blockDim.x * (threadIdx.y + (u64)blockDim.y * threadIdx.z);
    u64* o = out + 3 * t;
    o[0] = t;
    o[1] = __shfl_sync(FULL_MASK, t, 0);
    o[2] = __shfl_xor_sync(FULL_MASK, t, 1);
}

// Half of each warp waits at a barrier while the other half shuffles with it: a GPU would
// hang.
extern "C" __global__ void emu_test_divergent_barrier(int* out) {
    if ((threadIdx.x & 31) < 16) {
        __syncthreads();
    } else {
        out[threadIdx.x] = __shfl_xor_sync(FULL_MASK, (int)threadIdx.x, 1);
    }
}

// Lane 0 exits before the others shuffle.
extern "C" __global__ void emu_test_exited_shuffle(int* out) {
    if ((threadIdx.x & 31) == 0) return;
    out[threadIdx.x] = __shfl_xor_sync(FULL_MASK, (int)threadIdx.x, 1);
}

// Writes one element past the `n` it is given.
extern "C" __global__ void emu_test_write_past_end(float* out, u64 n) {
    FOR_EACH(i, n + 1) out[i] = 1.0f;
}

// Reads element i + 1 of `x` for every i < n: one element past the end of n.
extern "C" __global__ void emu_test_read_past_end(const float* x, float* out, u64 n) {
    FOR_EACH(i, n) out[i] = x[i + 1];
}

// Thread 0 writes the element before `out`.
extern "C" __global__ void emu_test_write_before_start(float* out) {
    if (threadIdx.x == 0) out[-1] = 1.0f;
}
