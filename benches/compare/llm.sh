#!/usr/bin/env bash
# The model-level comparison with PyTorch on this CPU: every row of benches/RESULTS.md's
# "Training and generation against PyTorch" section, each printed with its ratio (ours / torch;
# above 1 we are faster, except for memory, where below 1 we use less).
#
#   benches/compare/llm.sh [train] [finetune] [generate] [memory] [gemm]     (default: all five)
#
#   train     tokens/s of one training step (benches/train_step.rs against benches/train_step.py)
#             on nanoGPT's CPU configuration, nanoGPT's shakespeare-char and GPT-2 124M at
#             batch 4, context 64
#   finetune  tokens/s of one fine-tuning step of the spam classifier (all parameters, and LoRA
#             rank 8 against the `peft` package)
#   generate  tokens/s of 200 greedy tokens, batch 1, KV cache (benches/generate.rs against a
#             plain PyTorch loop and transformers' generate), shakespeare-char and GPT-2 shapes
#   memory    peak resident memory (/usr/bin/time -v) of 30 training steps on the nanoGPT CPU
#             configuration, each side in its own process
#   gemm      f32 GEMM GFLOP/s on GPT shapes against torch.matmul (benches/gemm.rs)
#
# Environment: THREADS (default 2) threads on each side. PyTorch (transformers, peft) come from
# $PYTHON; without it, a venv is made in .venv at the repository root.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
threads="${THREADS:-2}"
parts=("$@")
[[ ${#parts[@]} -eq 0 ]] && parts=(train finetune generate memory gemm)

if [[ -z "${PYTHON:-}" ]]; then
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
        .venv/bin/pip install torch numpy transformers peft
    fi
    PYTHON="$root/.venv/bin/python"
fi
export PYTHON RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"

cargo bench --quiet --bench train_step --bench generate --bench gemm --no-run
bench() { cargo bench --quiet --bench "$@"; }

# Prints `label: value` for the peak resident set of a command, in MiB.
peak_rss() {
    local label="$1"
    shift
    local log
    log="$(mktemp)"
    /usr/bin/time -v "$@" >/dev/null 2>"$log"
    awk -v label="$label" '/Maximum resident set size/ { printf "%s\t%.1f\n", label, $NF / 1024 }' "$log"
    rm -f "$log"
}

for part in "${parts[@]}"; do
    case "$part" in
    train)
        for shape in nanogpt-cpu shakespeare-char gpt2-b4t64; do
            echo "== training step, $shape"
            bench train_step -- --shape "$shape" --steps 10 --warmup 2 | tail -n 6
        done
        ;;
    finetune)
        for lora in "" "--lora 8"; do
            echo "== fine-tuning step, spam classifier ${lora:-all parameters}"
            # shellcheck disable=SC2086 # an empty $lora is no argument
            bench train_step -- --shape spam-classifier $lora --steps 20 --warmup 3 | tail -n 6
        done
        ;;
    generate)
        for shape in shakespeare-char gpt2; do
            echo "== generation, $shape"
            bench generate -- --shape "$shape" | tail -n 9
        done
        ;;
    memory)
        echo "== peak resident memory, 30 training steps, nanogpt-cpu shape (MiB)"
        config='{"vocab_size": 65, "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128,
                 "batch_size": 12, "dropout": 0.0, "bias": false, "beta2": 0.99}'
        binary="$(ls -t target/release/deps/train_step-* | grep -v '\.d$' | head -n 1)"
        ours="$(peak_rss llm-stack "$binary" --shape nanogpt-cpu --steps 30 --no-reference)"
        theirs="$(peak_rss pytorch "$PYTHON" benches/train_step.py --tiny --config "$config" \
            --steps 30 --threads "$threads")"
        printf '%s\n%s\n' "$ours" "$theirs" | awk -F'\t' '
            { rss[NR] = $2; printf "%-12s %8.1f MiB\n", $1, $2 }
            END { printf "ratio, llm-stack / PyTorch peak memory: %.2f\n", rss[1] / rss[2] }'
        ;;
    gemm)
        echo "== f32 GEMM, GFLOP/s"
        bench gemm -- --rounds 3
        ;;
    *)
        echo "unknown part '$part': expected train, finetune, generate, memory or gemm" >&2
        exit 2
        ;;
    esac
done
