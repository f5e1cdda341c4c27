"""Reference side of the GEMM benchmark: `torch.matmul` on the CPU, driven line by line.

`cargo bench --bench gemm` starts this script once and, for each measurement, writes one line
to its stdin:

    BATCH M K N OPA OPB REPEATS

where OPA is `n` (A stored as (M, K)) or `t` (A stored as (K, M) and used transposed), OPB
likewise for B ((K, N) or (N, K)), and BATCH > 1 makes a batched product. The script answers
with one line: the seconds of each of REPEATS calls, space-separated. Operands are random f32
tensors created once per shape; each call allocates its output, as `torch.matmul` does.

With `--clock thread` the times are the calling thread's CPU time (`time.thread_time`), which
other jobs on a shared machine barely move; it is only meaningful with one thread.

Usage: python benches/compare/gemm_torch.py --threads N [--clock wall|thread]
"""

import argparse
import sys
import time

import torch


def operands(batch, m, k, n, opa, opb):
    """Random operands laid out as the line asks, as views with the logical shapes."""
    lead = (batch,) if batch > 1 else ()
    a = torch.randn(*lead, k, m).transpose(-1, -2) if opa == "t" else torch.randn(*lead, m, k)
    b = torch.randn(*lead, n, k).transpose(-1, -2) if opb == "t" else torch.randn(*lead, k, n)
    return a, b


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    torch.set_num_threads(args.threads)
    cache = {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    for line in sys.stdin:
        batch, m, k, n, opa, opb, repeats = line.split()
        key = (int(batch), int(m), int(k), int(n), opa, opb)
        if key not in cache:
            cache.clear()
            cache[key] = operands(*key)
            torch.matmul(*cache[key])
        a, b = cache[key]
        times = []
        for _ in range(int(repeats)):
            start = clock()
            torch.matmul(a, b)
            times.append(clock() - start)
        print(" ".join(f"{t:.9f}" for t in times), flush=True)


if __name__ == "__main__":
    main()
