"""Training-step throughput of the same GPT-2 as benches/train_step.rs, in PyTorch eager.

Same architecture (pre-norm blocks, causal attention, GELU MLP, tied output embedding), same
initialization scheme, same AdamW hyperparameters, float32 with TF32 off, no torch.compile.
Attention uses F.scaled_dot_product_attention, as nanoGPT does in eager mode.

    python3 benches/train_step.py --device cuda --preset gpt2 --batch 8 --seq 1024

The last line printed is `tokens_per_s=<median> ms_per_step=<median>`.
"""

import argparse
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"gpt2": (50257, 12, 12, 768), "tiny": (512, 2, 4, 64)}


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.fc, self.out = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab, layers, heads, c, seq):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, c), nn.Embedding(seq, c)
        self.blocks = nn.ModuleList(Block(c, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids, targets):
        x = self.wte(ids) + self.wpe.weight[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", default="tiny", choices=PRESETS)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1337)
    vocab, layers, heads, c = PRESETS[args.preset]
    dev = torch.device(args.device)
    model = Gpt(vocab, layers, heads, c, args.seq).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"PyTorch {torch.__version__} on {args.device}", file=sys.stderr)
    times = []
    for step in range(1, args.steps + 3):
        batch = torch.randint(0, vocab, (args.batch, args.seq + 1))
        ids, targets = batch[:, :-1].contiguous().to(dev), batch[:, 1:].contiguous().to(dev)
        sync()
        start = time.perf_counter()
        loss = model(ids, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = loss.item()
        sync()
        ms = (time.perf_counter() - start) * 1e3
        print(f"step {step:3} | loss {loss:.4f} | {ms:8.1f} ms", file=sys.stderr)
        if step > 2:
            times.append(ms)
    median = sorted(times)[len(times) // 2]
    print(f"tokens_per_s={args.batch * args.seq / median * 1e3:.1f} ms_per_step={median:.2f}")


if __name__ == "__main__":
    main()
