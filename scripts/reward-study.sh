#!/usr/bin/env bash
# The reward-model study of benches/RESULTS.md: `llm reward train` on three kinds of
# comparison data, 3 seeds each, scored on held-out pairs (the test split, 10% of the pairs,
# made by the run's split seed) with `llm reward eval`:
#
#   1. polite replies: the polite/impolite pairs from the SFT model of the DPO study, 2 epochs;
#   2. HH-RLHF helpful-base test pairs from the stories-small base (no instruction tuning), 1
#      epoch; the transcripts keep their last tokens within the context of 128;
#   3. arithmetic: the right and wrong answers of the DPO study's 2-digit models (`llm
#      dpo-pairs`), each from that model, 1 epoch.
#
# One line per run goes to $OUT (default runs/reward-study.tsv). Needs scripts/dpo-study.sh's
# runs (and so the stories-small base).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm
LLM=target/release/llm
OUT=${OUT:-runs/reward-study.tsv}
DIR=runs/reward-study
DPO=runs/dpo-study
mkdir -p "$DIR"
printf "data\tseed\tseconds\ttest_pairs\ttest_accuracy\ttest_margin\n" >"$OUT"

# One run: data name, seed, the pairs file, then the flags of `llm reward train`.
run() {
    local name=$1 seed=$2 pairs=$3 dir="$DIR/$1-$2"
    shift 3
    if [ ! -s "$dir.time" ]; then
        /usr/bin/time -f "%e" -o "$dir.time" $LLM reward train --data "$pairs" --seed "$seed" \
            --out "$dir" --overwrite "$@" >"$dir.log" 2>&1
    fi
    $LLM reward eval --model "$dir" --data "$pairs" --split test --json 2>/dev/null |
        python3 -c "
import json, sys
r = json.load(sys.stdin)
print('\t'.join(['$name', '$seed', '$(cat "$dir.time")', str(r['n']),
                 f\"{r['accuracy']:.4f}\", f\"{r['mean_margin']:.4f}\"]))" | tee -a "$OUT"
}

for seed in 1 2 3; do
    run polite "$seed" data/finetune/instruction-data-with-preference.json \
        --init-from "$DPO/polite-sft" --split-seed 1337 --epochs 2
    run hh-rlhf "$seed" data/preference/hh-rlhf-helpful-base-test.jsonl \
        --init-from runs/stories --split-seed 1337 --epochs 1
done
for seed in 1337 1338 1339; do
    run arithmetic "$seed" "$DPO/add-pairs-$seed.jsonl" --init-from "$DPO/add-sft-$seed" --epochs 1
done
