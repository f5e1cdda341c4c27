#!/usr/bin/env bash
# The reinforcement-learning study of benches/RESULTS.md: the DPO study's 2-digit models (12
# epochs of SFT from scratch, seeds 1337 / 1338 / 1339), then either
#
#   - GRPO: 300 rollouts of 8 prompts x 8 replies from its 3,000 training prompts, exact-match
#     reward, 2 steps of 32 replies per rollout (600 steps), lr 3e-5, no KL penalty;
#   - PPO: 300 rollouts of 64 prompts x 1 reply, the same 600 steps of 32 at lr 3e-5, KL
#     penalty 0.05, a value model at lr 1e-4, GAE with gamma 1 and lambda 0.95; or
#   - the control: SFT on the same prompts with their right answers, the same 600 steps of 32
#     sequences at the same learning rate (SFT is handed the answers GRPO has to find);
#
# scored by held-out exact match on the 4,941 test problems, and pass@1 / pass@8 (8 draws at
# temperature 1) on the first 1,000. One line per model goes to $OUT (default
# runs/rl-study.tsv). Needs scripts/dpo-study.sh's runs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm
LLM=target/release/llm
OUT=${OUT:-runs/rl-study.tsv}
DIR=runs/rl-study
DPO=runs/dpo-study
mkdir -p "$DIR"
head -n 1000 runs/add2/test.jsonl >"$DIR/test-1000.jsonl"
printf "model\tseed\tseconds\taccuracy\tpass@1\tpass@8\n" >"$OUT"

# Scores a model: name, seed, seconds, model directory.
score() {
    local acc pass
    acc=$($LLM eval --model "$4" --task runs/add2/test.jsonl --json |
        python3 -c "import json, sys; print(f\"{json.load(sys.stdin)['accuracy']:.4f}\")")
    pass=$($LLM eval --model "$4" --task "$DIR/test-1000.jsonl" --samples 8 --seed "$2" --json |
        python3 -c "
import json, sys
p = json.load(sys.stdin)['pass_at_k']
print(f\"{p['1']:.4f}\t{p['8']:.4f}\")")
    printf "%s\t%s\t%s\t%s\t%s\n" "$1" "$2" "$3" "$acc" "$pass" | tee -a "$OUT"
}

for seed in 1337 1338 1339; do
    base="$DPO/add-sft-$seed"
    score sft "$seed" "$(cat "$base.time")" "$base"
    run="$DIR/grpo-$seed"
    if [ ! -s "$run.time" ]; then
        /usr/bin/time -f "%e" -o "$run.time" $LLM ppo --algo grpo --init-from "$base" \
            --prompts "$DPO/add-prompts.jsonl" --rollouts 300 --lr 3e-5 --seed "$seed" \
            --out "$run" --overwrite >"$run.log" 2>&1
    fi
    score grpo "$seed" "$(cat "$run.time")" "$run"
    run="$DIR/ppo-$seed"
    if [ ! -s "$run.time" ]; then
        /usr/bin/time -f "%e" -o "$run.time" $LLM ppo --init-from "$base" \
            --prompts "$DPO/add-prompts.jsonl" --prompts-per-rollout 64 --rollouts 300 \
            --lr 3e-5 --seed "$seed" --out "$run" --overwrite >"$run.log" 2>&1
    fi
    score ppo "$seed" "$(cat "$run.time")" "$run"
    run="$DIR/sft-control-$seed"
    if [ ! -s "$run.time" ]; then
        /usr/bin/time -f "%e" -o "$run.time" $LLM sft --init-from "$base" \
            --data "$DPO/add-prompts.jsonl" --max-iters 600 --batch-size 32 --lr 3e-5 \
            --seed "$seed" --out "$run" --overwrite >"$run.log" 2>&1
    fi
    score sft-control "$seed" "$(cat "$run.time")" "$run"
done
