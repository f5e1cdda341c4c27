"""Training-step throughput of a GPT in PyTorch eager: the reference side of benches/train_step.rs.

The model is nanoGPT's GPT-2 (learned positions, pre-LayerNorm blocks, one fused qkv
projection, causal F.scaled_dot_product_attention, a 4x GELU MLP, final LayerNorm, head tied to
the token embedding), with GPT-2's initialization. GELU is the tanh approximation, as in GPT-2
and in our model. One step is what nanoGPT's train.py does per iteration without
gradient accumulation: forward, backward, clipping to a global norm, AdamW (weight decay on
matrices only, fused on a GPU) at the warmup + cosine learning rate, then zeroing the gradients.
Float32 with TF32 off (our GEMMs are plain f32), no torch.compile. Times are medians over the
timed steps, each measured until the device is idle.

    python3 benches/train_step.py --tiny                      # a 2-layer GPT, seconds on a CPU
    python3 benches/train_step.py --device cuda               # GPT-2 124M, batch 8, context 1024
    python3 benches/train_step.py --config '{"n_layer": 6}'   # nanoGPT keys override the shape

With --lengths, the step is a classifier's instead (benches/train_step.rs --shape
spam-classifier): the same GPT with a classification head on the last real token of each
right-padded sequence, cross-entropy over the classes, and with lora_rank > 0 LoRA adapters from
the `peft` package on the blocks' linear layers, training only the adapters and the head.
With --lengths and --prompts (and no classes), it is a supervised fine-tuning step (--shape
sft): the language-model loss over each right-padded sequence's tokens after its prompt
(targets -100 elsewhere, which cross_entropy ignores). With --dpo as well, it is a DPO step
(--shape dpo): the first half of the sequences are the chosen replies and the second half the
rejected ones; the policy's summed log-probabilities of the reply tokens, the same from a frozen
copy of the initial model under no_grad (the reference), and the sigmoid DPO loss at beta 0.1.
With --ppo instead, it is a PPO update (--shape ppo) on a rollout of those sequences with random
rewards: the reply tokens' log-probabilities under the policy and a frozen copy (the reference)
and a value model's values (a copy of the model with a zero-initialised one-output head), all
under no_grad; per-token rewards -0.05 (logp - ref) with the reward added at each reply's last
token; GAE (gamma 1, lambda 0.95) as a reversed loop over positions, vectorised over the batch;
advantages whitened; the clipped policy loss (0.2) and the entropy at the reply positions; the
value model's clipped value loss (0.2), backward, clipping and its own AdamW step (lr 1e-4, no
decay) inside the step. Logits are computed at the reply positions only, as ours are.

benches/train_step.rs runs this script with its own configuration in --config, so both sides
train the same shape with the same hyperparameters. The last line on stdout is a JSON object:
ms_per_step, tokens_per_s, first_loss, params (the parameter count) and torch (the version).
"""

import argparse
import copy
import json
import math
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# GPT-2 124M with nanoGPT's train_gpt2.py optimizer settings, at batch 8: the same values as
# the `gpt2` preset of `llm train` with batch_size 8.
GPT2 = {
    "vocab_size": 50257, "block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768,
    "dropout": 0.0, "bias": True, "batch_size": 8, "learning_rate": 6e-4, "min_lr": 6e-5,
    "warmup_iters": 2000, "lr_decay_iters": 600000, "weight_decay": 0.1, "beta1": 0.9,
    "beta2": 0.95, "grad_clip": 1.0, "n_classes": 0, "lora_rank": 0, "lora_alpha": 0.0,
}
# The tiny shape of `benches/train_step.rs --tiny`.
TINY = {**GPT2, "vocab_size": 512, "block_size": 64, "n_layer": 2, "n_head": 4, "n_embd": 64,
        "batch_size": 4}


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["n_embd"]
        self.n_head, self.dropout = cfg["n_head"], cfg["dropout"]
        self.c_attn = nn.Linear(c, 3 * c, bias=cfg["bias"])
        self.c_proj = nn.Linear(c, c, bias=cfg["bias"])
        self.resid_dropout = nn.Dropout(cfg["dropout"])

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c)))


class Mlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["n_embd"]
        self.c_fc = nn.Linear(c, 4 * c, bias=cfg["bias"])
        self.c_proj = nn.Linear(4 * c, c, bias=cfg["bias"])
        self.dropout = nn.Dropout(cfg["dropout"])

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg["n_embd"], bias=cfg["bias"])
        self.attn = SelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg["n_embd"], bias=cfg["bias"])
        self.mlp = Mlp(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["n_embd"]
        self.wte = nn.Embedding(cfg["vocab_size"], c)
        self.wpe = nn.Embedding(cfg["block_size"], c)
        self.drop = nn.Dropout(cfg["dropout"])
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(c, bias=cfg["bias"])
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        # GPT-2 scales the residual projections' initial weights by 1/sqrt(2 * layers).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg["n_layer"]))

    def hidden(self, ids):
        """The final states (B, T, C) after the last LayerNorm."""
        t = ids.shape[1]
        x = self.drop(self.wte(ids) + self.wpe(torch.arange(t, device=ids.device)))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)

    def forward(self, ids, targets):
        logits = self.hidden(ids) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


class Classifier(nn.Module):
    """A GPT with a classification head on the state of each sequence's last real token
    (sequences right-padded; causal attention keeps the padding out of the real tokens)."""

    def __init__(self, cfg):
        super().__init__()
        self.gpt = Gpt(cfg)
        self.classifier = nn.Linear(cfg["n_embd"], cfg["n_classes"])
        nn.init.normal_(self.classifier.weight, 0.0, 0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, ids, lengths, classes):
        x = self.gpt.hidden(ids)
        pooled = x[torch.arange(ids.shape[0], device=ids.device), lengths - 1]
        return F.cross_entropy(self.classifier(pooled), classes)


def with_lora(model, rank, alpha):
    """`model` with LoRA adapters (the `peft` package) on every linear layer of the blocks,
    the targets of our LoRA; only the adapters and the classification head train."""
    from peft import LoraConfig, get_peft_model
    lora = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none",
                      target_modules=["c_attn", "c_proj", "c_fc"])
    model = get_peft_model(model, lora)
    head = getattr(model.base_model.model, "classifier", None)
    for p in head.parameters() if head is not None else []:
        p.requires_grad_(True)
    return model


def lr_at(cfg, step):
    """nanoGPT's learning rate at step `step` (0-based): linear warmup, then cosine decay."""
    warmup, decay = cfg["warmup_iters"], cfg["lr_decay_iters"]
    if step < warmup:
        return cfg["learning_rate"] * (step + 1) / (warmup + 1)
    if step > decay or decay <= warmup:
        return cfg["min_lr"]
    coeff = 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (decay - warmup)))
    return cfg["min_lr"] + coeff * (cfg["learning_rate"] - cfg["min_lr"])


def device_name(dev):
    """The GPU's name, or the CPU's model name."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def profile(step_at, first, steps, dev):
    """Runs `steps` more steps under PyTorch's profiler and prints its table of self time per
    operator (on a GPU, the device time of the kernels each launched), per step."""
    from torch.profiler import ProfilerActivity
    activities = [ProfilerActivity.CPU]
    if dev.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for step in range(first, first + steps):
            step_at(step)
    key = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(f"PyTorch profile of {steps} steps (totals over all of them), by {key}:",
          file=sys.stderr)
    print(prof.key_averages().table(sort_by=key, row_limit=30), file=sys.stderr)


def reply_logps(model, ids, targets):
    """Each sequence's summed log-probability of its targets (those not -100)."""
    logits = model.hidden(ids) @ model.wte.weight.t()
    mask = targets != -100
    picked = torch.gather(logits.log_softmax(-1), 2, targets.clamp(min=0).unsqueeze(-1))
    return (picked.squeeze(-1) * mask).sum(-1)


def dpo_loss(model, reference, ids, targets, beta=0.1):
    """The sigmoid DPO loss of chosen (first half) over rejected (second half) replies."""
    policy = reply_logps(model, ids, targets)
    with torch.no_grad():
        ref = reply_logps(reference, ids, targets)
    half = ids.shape[0] // 2
    h = (policy[:half] - policy[half:]) - (ref[:half] - ref[half:])
    return -F.logsigmoid(beta * h).mean()


def scored_logps(model, ids, mask, targets):
    """Log-probabilities of the targets at the positions of `mask`, and the log-softmax rows."""
    logp = (model.hidden(ids)[mask] @ model.wte.weight.t()).log_softmax(-1)
    return torch.gather(logp, 1, targets[mask].unsqueeze(-1)).squeeze(-1), logp


class Critic(nn.Module):
    """A value model: a copy of the policy's body and a one-output head at every position."""

    def __init__(self, body):
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.wte.weight.shape[1], 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids, mask):
        return self.head(self.body.hidden(ids)[mask]).squeeze(-1)


def ppo_loss(model, reference, critic, critic_opt, ids, targets, rewards, beta=0.05, gamma=1.0,
             lam=0.95, clip=0.2, value_clip=0.2):
    """The clipped policy loss of one PPO update; steps the value model on the way."""
    mask = targets != -100
    b, t = ids.shape
    with torch.no_grad():
        old, _ = scored_logps(model, ids, mask, targets)
        ref, _ = scored_logps(reference, ids, mask, targets)
        values_flat = critic(ids, mask)
        per_token = torch.zeros(b, t, device=ids.device)
        values = torch.zeros(b, t, device=ids.device)
        per_token[mask] = -beta * (old - ref)
        values[mask] = values_flat
        last = t - 1 - mask.flip(1).int().argmax(1)
        per_token[torch.arange(b), last] += rewards
        advantages = torch.zeros(b, t, device=ids.device)
        running = torch.zeros(b, device=ids.device)
        for i in reversed(range(t)):
            next_value = values[:, i + 1] if i + 1 < t else torch.zeros(b, device=ids.device)
            delta = per_token[:, i] + gamma * next_value - values[:, i]
            running = (delta + gamma * lam * running) * mask[:, i]
            advantages[:, i] = running
        returns = (advantages + values)[mask]
        a = advantages[mask]
        a = (a - a.mean()) / (a.std(unbiased=False) + 1e-8)
    new, logp = scored_logps(model, ids, mask, targets)
    with torch.no_grad():  # for the log, as ours computes it
        entropy = -(logp.exp() * logp).sum(-1).mean()
    ratio = (new - old).exp()
    loss = -torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a).mean()
    v = critic(ids, mask)
    v_clipped = values_flat + (v - values_flat).clamp(-value_clip, value_clip)
    value_loss = 0.5 * torch.max((v - returns) ** 2, (v_clipped - returns) ** 2).mean()
    value_loss.backward()
    torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
    critic_opt.step()
    critic_opt.zero_grad(set_to_none=True)
    return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer GPT instead of GPT-2 124M")
    ap.add_argument("--config", default="{}",
                    help="a JSON object of nanoGPT keys overriding the settings (others are ignored)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's choice)")
    ap.add_argument("--lengths", default="",
                    help="comma-separated lengths of the right-padded sequences of a "
                         "classification step (with n_classes in --config); LoRA from "
                         "lora_rank and lora_alpha in --config")
    ap.add_argument("--prompts", default="",
                    help="comma-separated prompt lengths of a fine-tuning step, one per "
                         "--lengths sequence: only the tokens after the prompt are targets")
    ap.add_argument("--dpo", action="store_true",
                    help="with --lengths and --prompts: a DPO step, chosen replies first, then "
                         "rejected")
    ap.add_argument("--ppo", action="store_true",
                    help="with --lengths and --prompts: a PPO update on a rollout of those "
                         "sequences")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, profile N more steps and print the time per operator "
                         "(on a GPU, per kernel) to stderr")
    args = ap.parse_args()
    cfg = {**(TINY if args.tiny else GPT2)}
    overrides = json.loads(args.config)
    cfg.update({k: v for k, v in overrides.items() if k in cfg})
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1337)
    dev = torch.device(args.device)
    lengths = [int(n) for n in args.lengths.split(",") if n]
    prompts = [int(n) for n in args.prompts.split(",") if n]
    model = Classifier(cfg) if lengths and not prompts else Gpt(cfg)
    if cfg["lora_rank"] > 0:
        model = with_lora(model, cfg["lora_rank"], cfg["lora_alpha"])
    model = model.to(dev)
    reference, critic = None, None
    if args.dpo or args.ppo:
        reference = copy.deepcopy(model).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
    if args.ppo:
        critic = Critic(copy.deepcopy(model)).to(dev)
        critic_opt = torch.optim.AdamW(critic.parameters(), lr=1e-4, betas=(0.9, 0.95),
                                       eps=1e-8, weight_decay=0.0, fused=dev.type == "cuda")
        rewards = torch.rand(len(lengths), device=dev)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(
        groups, lr=cfg["learning_rate"], betas=(cfg["beta1"], cfg["beta2"]), eps=1e-8,
        fused=dev.type == "cuda",
    )
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    n_params = sum(p.numel() for p in params)
    b, t, v = cfg["batch_size"], cfg["block_size"], cfg["vocab_size"]
    if lengths:
        b, t = len(lengths), max(lengths)
    print(f"PyTorch {torch.__version__} on {device_name(dev)}: {n_params / 1e6:.2f}M parameters, "
          f"batch {b}, context {t}, {torch.get_num_threads()} CPU threads", file=sys.stderr)

    def batch():
        """The model's inputs: a language-model batch, or a padded classification batch."""
        if not lengths:
            data = torch.randint(0, v, (b, t + 1), device=dev)
            return data[:, :-1].contiguous(), data[:, 1:].contiguous()
        ids = torch.randint(0, v, (b, t), device=dev)
        if prompts:
            targets = torch.full((b, t), -100, device=dev)
            for i, (n, p) in enumerate(zip(lengths, prompts)):
                targets[i, p - 1:n - 1] = ids[i, p:n]
            return ids, targets
        classes = torch.randint(0, cfg["n_classes"], (b,), device=dev)
        return ids, torch.tensor(lengths, device=dev), classes

    def step_at(step):
        """One training step, timed until the device is idle: (loss, milliseconds)."""
        inputs = batch()
        sync()
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        if critic is not None:
            loss = ppo_loss(model, reference, critic, critic_opt, *inputs, rewards)
        elif reference is not None:
            loss = dpo_loss(model, reference, *inputs)
        else:
            loss = model(*inputs)
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = loss.item()
        sync()
        return loss, (time.perf_counter() - start) * 1e3

    times, first_loss = [], None
    for step in range(args.warmup + args.steps):
        loss, ms = step_at(step)
        first_loss = loss if first_loss is None else first_loss
        print(f"step {step + 1:3} | loss {loss:.4f} | {ms:8.1f} ms", file=sys.stderr)
        if step >= args.warmup:
            times.append(ms)
    if args.profile:
        profile(step_at, args.warmup + args.steps, args.profile, dev)
    median = sorted(times)[len(times) // 2]
    print(json.dumps({
        "ms_per_step": median, "tokens_per_s": b * t / median * 1e3, "first_loss": first_loss,
        "params": n_params, "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
