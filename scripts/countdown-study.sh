#!/usr/bin/env bash
# The countdown study of benches/RESULTS.md: reinforcement learning where many answers are
# right. `llm synth countdown --numbers 3` (reach a target from 3 numbers of 1 to 25 with +, -
# and *; any expression that reaches it scores 1, a near miss partial credit). For seeds 1337 /
# 1338 / 1339: SFT from scratch on the training problems (12 epochs, the stored answers), then
# for 600 steps of 32 replies at lr 3e-5 either
#
#   - GRPO: 300 rollouts of 8 prompts x 8 replies, the countdown verifier's score;
#   - PPO: 300 rollouts of 64 prompts x 1 reply, KL penalty 0.05, a value model; or
#   - the control: SFT on the training problems' stored answers, the same 600 steps;
#
# scored by greedy accuracy and mean score on the test problems and pass@8 (8 draws at
# temperature 1) on the first 1,000. One line per model goes to $OUT (default
# runs/countdown-study.tsv).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm
LLM=target/release/llm
OUT=${OUT:-runs/countdown-study.tsv}
DIR=runs/countdown-study
mkdir -p "$DIR"
[ -s runs/cd3/train.jsonl ] || $LLM synth countdown --numbers 3 --n 20000 --out runs/cd3 >/dev/null
head -n 1000 runs/cd3/test.jsonl >"$DIR/test-1000.jsonl"
printf "model\tseed\tseconds\taccuracy\tmean_score\tpass@1\tpass@8\n" >"$OUT"

# Scores a model: name, seed, seconds, model directory.
score() {
    local greedy pass
    greedy=$($LLM eval --model "$4" --task runs/cd3/test.jsonl --verifier countdown --json |
        python3 -c "import json, sys; r = json.load(sys.stdin); print(f\"{r['accuracy']:.4f}\t{r['mean_score']:.4f}\")")
    pass=$($LLM eval --model "$4" --task "$DIR/test-1000.jsonl" --verifier countdown \
        --samples 8 --seed "$2" --json |
        python3 -c "
import json, sys
p = json.load(sys.stdin)['pass_at_k']
print(f\"{p['1']:.4f}\t{p['8']:.4f}\")")
    printf "%s\t%s\t%s\t%s\t%s\n" "$1" "$2" "$3" "$greedy" "$pass" | tee -a "$OUT"
}

# Runs `llm ARGS...` into run directory $1 unless it finished before, timing it.
train() {
    local run=$1
    shift
    if [ ! -s "$run.time" ]; then
        /usr/bin/time -f "%e" -o "$run.time" $LLM "$@" --out "$run" --overwrite >"$run.log" 2>&1
    fi
}

for seed in 1337 1338 1339; do
    base="$DIR/sft-$seed"
    train "$base" sft --data runs/cd3/train.jsonl --epochs 12 --seed "$seed"
    score sft "$seed" "$(cat "$base.time")" "$base"
    train "$DIR/grpo-$seed" ppo --algo grpo --init-from "$base" --reward countdown \
        --prompts runs/cd3/train.jsonl --rollouts 300 --lr 3e-5 --seed "$seed"
    score grpo "$seed" "$(cat "$DIR/grpo-$seed.time")" "$DIR/grpo-$seed"
    train "$DIR/ppo-$seed" ppo --init-from "$base" --reward countdown \
        --prompts runs/cd3/train.jsonl --prompts-per-rollout 64 --rollouts 300 --lr 3e-5 \
        --seed "$seed"
    score ppo "$seed" "$(cat "$DIR/ppo-$seed.time")" "$DIR/ppo-$seed"
    train "$DIR/sft-control-$seed" sft --init-from "$base" --data runs/cd3/train.jsonl \
        --max-iters 600 --batch-size 32 --lr 3e-5 --seed "$seed"
    score sft-control "$seed" "$(cat "$DIR/sft-control-$seed.time")" "$DIR/sft-control-$seed"
done
