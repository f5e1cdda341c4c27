"""One AdamW step over ~10M float32 parameters: torch.optim.AdamW (default, foreach, fused)
against this repository's `nn::AdamW`, on the same shapes and thread count.

The shapes are those of benches/adamw.rs: a small GPT, 8 layers of width 320, 100 tensors.
Weight decay applies to matrices only (two parameter groups), as in nanoGPT.

The machine may be shared, so the sides take turns: each round times every torch variant and
then runs `cargo bench --bench adamw`; the summary gives each side's median over the rounds of
its per-round median step time, and the median of the per-round ratios (which cancels load
that changes between rounds).

Run from the repository root:
    python benches/compare/adamw_torch.py [--rounds 5] [--variants default,foreach,fused]
                                          [--torch-only]
"""

import argparse
import os
import re
import statistics
import subprocess
import time

import torch

N_LAYER, C, VOCAB, BLOCK = 8, 320, 512, 256
WARMUP, STEPS = 3, 20
THREADS = 2


def shapes():
    s = [(VOCAB, C), (BLOCK, C)]
    for _ in range(N_LAYER):
        s += [(C,), (C,), (3 * C, C), (3 * C,), (C, C), (C,),
              (C,), (C,), (4 * C, C), (4 * C,), (C, 4 * C), (C,)]
    return s + [(C,), (C,)]


def time_torch(**variant):
    """Median, min and max milliseconds of one step."""
    torch.manual_seed(0)
    params = []
    for shape in shapes():
        p = torch.nn.Parameter(torch.randn(shape) * 0.02)
        p.grad = torch.randn(shape)
        params.append(p)
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, **variant)
    ms = []
    for i in range(WARMUP + STEPS):
        t = time.perf_counter()
        opt.step()
        if i >= WARMUP:
            ms.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ms), min(ms), max(ms)


def time_rust():
    """Median milliseconds of one step of `nn::AdamW`, from the Rust bench."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    out = subprocess.run(["cargo", "bench", "-q", "--bench", "adamw"], env=env,
                         check=True, capture_output=True, text=True).stdout
    print("  " + out.strip().replace("\n", "\n  "))
    return float(re.search(r"median_ms=([0-9.]+)", out).group(1))


VARIANTS = [("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default="default,foreach,fused",
                        help="comma-separated torch variants to time")
    parser.add_argument("--torch-only", action="store_true")
    args = parser.parse_args()
    variants = [(n, v) for n, v in VARIANTS if n in args.variants.split(",")]
    torch.set_num_threads(THREADS)
    n = sum(torch.Size(s).numel() for s in shapes())
    print(f"torch {torch.__version__}, {THREADS} threads, {n} params in {len(shapes())} tensors")
    medians = {name: [] for name, _ in variants}
    if not args.torch_only:
        medians["nn::AdamW"] = []
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}")
        for name, variant in variants:
            med, lo, hi = time_torch(**variant)
            medians[name].append(med)
            print(f"  torch.optim.AdamW {name:8s} median {med:7.2f} ms (min {lo:.2f}, max {hi:.2f})")
        if not args.torch_only:
            medians["nn::AdamW"].append(time_rust())
    summary = {name: statistics.median(ms) for name, ms in medians.items()}
    print("median over rounds of the per-round median step time:")
    for name, ms in summary.items():
        print(f"  {name:18s} {ms:7.2f} ms")
    if not args.torch_only:
        torch_only = {k: v for k, v in summary.items() if k != "nn::AdamW"}
        fastest = min(torch_only, key=torch_only.get)
        ratio = torch_only[fastest] / summary["nn::AdamW"]
        paired = statistics.median(t / o for t, o in zip(medians[fastest], medians["nn::AdamW"]))
        print(f"nn::AdamW vs the fastest torch variant ({fastest}): {ratio:.2f}x; "
              f"median of the per-round ratios {paired:.2f}x (above 1: nn::AdamW is faster)")


if __name__ == "__main__":
    main()
