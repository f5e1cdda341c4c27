"""Generation throughput in PyTorch: the reference side of benches/generate.rs.

Two ways to decode greedily from a randomly initialised GPT of the given shape, from one prompt
or several of the same length at once:

- plain: a nanoGPT-style model with a key/value cache per layer (the new token's keys and
  values appended with torch.cat, causal scaled-dot-product attention over the cache);
- transformers: GPT2LMHeadModel.generate with its own cache (greedy, exactly N new tokens).

With --sample, each token is drawn from the full distribution at temperature 1 instead
(multinomial of the softmax; transformers with do_sample, top_k 0).

Each run starts from the same prompt of random tokens and produces --new-tokens tokens; the
time of a run includes the prompts' forward pass; rates count the new tokens of every prompt. Rates are medians over --reps runs after one
untimed run. Float32, no gradients, the given number of CPU threads.

    python3 benches/generate.py --config '{"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "vocab_size": 65}'

The last line on stdout is a JSON object: plain and transformers (tokens/s; transformers is
null when the package is missing), torch and transformers_version.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, n_head, bias):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(c, bias=bias)
        self.c_attn = nn.Linear(c, 3 * c, bias=bias)
        self.attn_proj = nn.Linear(c, c, bias=bias)
        self.ln_2 = nn.LayerNorm(c, bias=bias)
        self.c_fc = nn.Linear(c, 4 * c, bias=bias)
        self.mlp_proj = nn.Linear(4 * c, c, bias=bias)

    def forward(self, x, cache):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        # A single new token sees every cached key; a prompt is causal within itself.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, c))
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, (k, v)


class CachedGpt(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["n_embd"]
        self.wte = nn.Embedding(cfg["vocab_size"], c)
        self.wpe = nn.Embedding(cfg["block_size"], c)
        self.blocks = nn.ModuleList(
            Block(c, cfg["n_head"], cfg["bias"]) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(c, bias=cfg["bias"])
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids, caches):
        start = 0 if caches[0] is None else caches[0][0].shape[2]
        pos = torch.arange(start, start + ids.shape[1])
        x = self.wte(ids) + self.wpe(pos)
        new = []
        for block, cache in zip(self.blocks, caches):
            x, kv = block(x, cache)
            new.append(kv)
        return self.ln_f(x[:, -1]) @ self.wte.weight.t(), new


def plain_run(model, prompt, n, sample):
    caches = [None] * len(model.blocks)
    logits, caches = model(prompt, caches)
    out = []
    for i in range(n):
        if sample:
            nxt = torch.multinomial(logits.softmax(-1), 1)
        else:
            nxt = logits.argmax(-1, keepdim=True)
        out.append(nxt)
        if i + 1 < n:
            logits, caches = model(nxt, caches)
    return torch.cat(out, 1)


def timed(run, reps, n):
    run()
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        rates.append(n / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True,
                    help="JSON: n_layer, n_head, n_embd, block_size, vocab_size, bias")
    ap.add_argument("--prompts", default="[[0]]",
                    help="JSON list of prompts (lists of token ids, all of one length)")
    ap.add_argument("--new-tokens", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample", action="store_true",
                    help="draw each token at temperature 1 from the full distribution")
    args = ap.parse_args()
    cfg = {"bias": False, **json.loads(args.config)}
    torch.set_num_threads(args.threads)
    torch.manual_seed(1337)
    prompt = torch.tensor(json.loads(args.prompts), dtype=torch.long)
    n = args.new_tokens
    tokens = n * prompt.shape[0]
    assert prompt.shape[1] + n <= cfg["block_size"], "prompt and new tokens must fit the context"
    result = {"torch": torch.__version__}
    with torch.inference_mode():
        model = CachedGpt(cfg).eval()
        result["plain"] = timed(lambda: plain_run(model, prompt, n, args.sample), args.reps, tokens)
        print(f"plain PyTorch loop: {result['plain']:.1f} tokens/s", file=sys.stderr)
        try:
            import transformers
        except ImportError:
            result["transformers"] = None
            print("transformers is not installed: its row is skipped", file=sys.stderr)
        else:
            hf_cfg = transformers.GPT2Config(
                vocab_size=cfg["vocab_size"], n_positions=cfg["block_size"], n_embd=cfg["n_embd"],
                n_layer=cfg["n_layer"], n_head=cfg["n_head"], activation_function="gelu_new",
                bos_token_id=0, eos_token_id=0, pad_token_id=0)
            hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
            gen = lambda: hf.generate(
                prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                min_new_tokens=n, do_sample=args.sample, top_k=0, top_p=1.0, temperature=1.0)
            result["transformers"] = timed(gen, args.reps, tokens)
            result["transformers_version"] = transformers.__version__
            print(f"transformers generate: {result['transformers']:.1f} tokens/s", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
