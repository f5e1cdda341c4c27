"""PyTorch's side of the tensor-kernel comparison.

Runs the cases of benches/cases.rs (same names, shapes and work counts) in f32 on the CPU and
prints one tab-separated line per case: name, unit, rate, median seconds per call. The timing
method is the one of benches/compare/ours.rs: one warm-up call, then batches of 1, 2, 4, ...
calls until a batch lasts at least SAMPLE_SECONDS; then SAMPLES batches of that size, and the
median of their times per call. Threads: $TORCH_THREADS (default 2). Arguments are name filters.
"""

import os
import sys
import time

import torch
import torch.nn.functional as F

SAMPLES = 7
SAMPLE_SECONDS = 0.2

SQUARE = [128, 256, 512, 1024, 2048]
GPT = [(4096, 384, 1536), (4096, 1536, 384), (4096, 384, 384), (768, 768, 50304)]
BATCHED = [(48, 256, 64, 256), (48, 256, 256, 64)]
LENGTHS = [(1 << 20, "1M"), (1 << 24, "16M")]
ROWS = 4096
COLS = [384, 65, 50304]
MLP_ROWS = 4096
MLP_WIDTHS = [384, 1536, 384, 1536, 384]
ATTENTION = (8, 6, 256, 64)


def random(*shape):
    """Values in [-2, 2), f32."""
    return torch.rand(*shape, dtype=torch.float32) * 4 - 2


def mlp():
    """Forward and backward of four linear layers with tanh GELU between, loss = sum."""
    forward_flops = sum(2 * MLP_ROWS * a * b for a, b in zip(MLP_WIDTHS, MLP_WIDTHS[1:]))

    def setup():
        with torch.inference_mode(False):
            layers = [torch.nn.Linear(a, b) for a, b in zip(MLP_WIDTHS, MLP_WIDTHS[1:])]
            x = random(MLP_ROWS, MLP_WIDTHS[0])

        def call():
            with torch.inference_mode(False), torch.enable_grad():
                for layer in layers:
                    layer.zero_grad(set_to_none=True)
                h = x
                for i, layer in enumerate(layers):
                    h = layer(h)
                    if i + 1 < len(layers):
                        h = F.gelu(h, approximate="tanh")
                h.sum().backward()
                return layers[0].weight.grad

        return call

    return "mlp/4096x384x1536_fwd_bwd", "GFLOP/s", 3 * forward_flops, setup


def attention():
    """Forward and backward of causal scaled-dot-product attention, loss = sum."""
    b, h, t, d = ATTENTION

    def setup():
        with torch.inference_mode(False):
            qkv = [(random(b, h, t, d) * 0.25).requires_grad_() for _ in range(3)]

        def call():
            with torch.inference_mode(False), torch.enable_grad():
                for p in qkv:
                    p.grad = None
                F.scaled_dot_product_attention(*qkv, is_causal=True).sum().backward()
                return qkv[0].grad

        return call

    return f"attention/{b}x{h}x{t}x{d}_fwd_bwd", "GFLOP/s", 3 * 2 * 2 * b * h * t * t * d, setup


def matmul(m, k, n):
    def setup():
        a, b = random(m, k), random(k, n)
        return lambda: torch.matmul(a, b)

    return f"matmul/{m}x{k}x{n}", "GFLOP/s", 2 * m * k * n, setup


def bmm(batch, m, k, n):
    def setup():
        a, b = random(batch, m, k), random(batch, k, n)
        return lambda: torch.matmul(a, b)

    return f"bmm/{batch}x{m}x{k}x{n}", "GFLOP/s", 2 * batch * m * k * n, setup


def elementwise(group, length, label, arrays, op):
    def setup():
        x, y = random(length), random(length)
        return lambda: op(x, y)

    return f"{group}/{label}", "GB/s", arrays * length * 4, setup


def gelu(x, _):
    return F.gelu(x, approximate="tanh")


def rows(group, cols, arrays, make_call):
    def setup():
        return make_call(random(ROWS, cols))

    return f"{group}/{ROWS}x{cols}", "GB/s", arrays * ROWS * cols * 4, setup


def softmax(x):
    return lambda: torch.softmax(x, -1)


def layer_norm(x):
    c = x.shape[-1]
    w, b = random(c), random(c)
    return lambda: F.layer_norm(x, (c,), w, b, 1e-5)


def rms_norm(x):
    c = x.shape[-1]
    w = random(c)
    return lambda: F.rms_norm(x, (c,), w, 1e-5)


def cross_entropy(logits):
    rows_, v = logits.shape
    targets = torch.tensor([(i * 7919) % v for i in range(rows_)], dtype=torch.int64)
    return lambda: F.cross_entropy(logits, targets)


def all_cases():
    cases = [mlp(), attention()]
    cases += [matmul(s, s, s) for s in SQUARE]
    cases += [matmul(m, k, n) for m, k, n in GPT]
    cases += [bmm(*shape) for shape in BATCHED]
    for length, label in LENGTHS:
        cases.append(elementwise("add", length, label, 3, torch.add))
        cases.append(elementwise("mul", length, label, 3, torch.mul))
        cases.append(elementwise("gelu", length, label, 2, gelu))
    for c in COLS:
        cases.append(rows("softmax", c, 2, softmax))
        cases.append(rows("layer_norm", c, 2, layer_norm))
        cases.append(rows("rms_norm", c, 2, rms_norm))
        cases.append(rows("cross_entropy", c, 1, cross_entropy))
    return cases


def time_per_call(call):
    """Median seconds per call."""

    def batch(calls):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        return time.perf_counter() - start

    batch(1)
    calls = 1
    while batch(calls) < SAMPLE_SECONDS:
        calls *= 2
    samples = sorted(batch(calls) / calls for _ in range(SAMPLES))
    return samples[SAMPLES // 2]


def main():
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    filters = sys.argv[1:]
    with torch.inference_mode():
        for name, unit, work, setup in all_cases():
            if filters and not any(f in name for f in filters):
                continue
            seconds = time_per_call(setup())
            print(f"{name}\t{unit}\t{work / seconds / 1e9:.3f}\t{seconds:.6e}", flush=True)


if __name__ == "__main__":
    main()
