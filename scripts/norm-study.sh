#!/usr/bin/env bash
# The default model (`llm train`: the char-small preset on the embedded Tiny Shakespeare) with
# each choice of norm (`"norm"`: layer, batch, rms, none) at equal steps, for each seed in
# $SEEDS (default: 1337 1 2). Writes runs/norm-study.tsv: the final train and validation
# losses and the wall time of each run; each run's end-of-training sample (batch 1, evaluation
# mode) is in runs/norm-study/NORM-sSEED.log. Runs already in runs/norm-study are kept.
#
#   scripts/norm-study.sh        # about 3 minutes per run on 2 AVX-512 cores
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1337 1 2}
NORMS=${NORMS:-layer batch rms none}
DIR=runs/norm-study
mkdir -p "$DIR"
cargo build --release -p llm
LLM=target/release/llm

printf "norm\tseed\ttrain_loss\tval_loss\tseconds\n" >runs/norm-study.tsv
for seed in $SEEDS; do
    for norm in $NORMS; do
        out="$DIR/$norm-s$seed"
        if [ ! -f "$out/seconds" ]; then
            echo "{\"norm\": \"$norm\"}" >"$DIR/$norm.json"
            start=$(date +%s.%N)
            $LLM train --config "$DIR/$norm.json" --seed "$seed" --sample-chars 300 \
                --out "$out" --overwrite >"$out.log" 2>&1
            echo "$(date +%s.%N) - $start" | bc -l >"$out/seconds"
        fi
        last=$(grep -o 'train_loss [0-9.a-z]*, val_loss [0-9.a-z]*' "$out.log" | tail -1)
        train=$(echo "$last" | sed 's/train_loss \([^,]*\),.*/\1/')
        val=$(echo "$last" | sed 's/.*val_loss //')
        printf "%s\t%s\t%s\t%s\t%.0f\n" "$norm" "$seed" "$train" "$val" "$(cat "$out/seconds")" |
            tee -a runs/norm-study.tsv
    done
done
