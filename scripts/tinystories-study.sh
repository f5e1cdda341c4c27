#!/usr/bin/env bash
# The `tinystories` preset (a Llama) against `stories-small` (a GPT) of the same width, depth,
# context, batch, schedule and byte-level BPE of 2,048 ids, on the shipped TinyStories sample,
# for each seed in $SEEDS (default: 1337 1 2). Writes runs/tinystories-study.tsv: the final
# validation loss (the sample's last 10%), the loss on the shipped validation sample, and the
# wall time of training, one row per run. Runs already in runs/tinystories-study are kept.
#
#   scripts/tinystories-study.sh            # about 6 minutes per run on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1337 1 2}
DIR=runs/tinystories-study
mkdir -p "$DIR"
cargo build --release -p llm
LLM=target/release/llm
DATA=data/tinystories/TinyStories-train-first2MiB.txt
VALID=data/tinystories/tinystories_valid_sample.txt

printf "preset\tseed\tval_loss\tvalid_sample_loss\tseconds\n" >runs/tinystories-study.tsv
for seed in $SEEDS; do
    for preset in stories-small tinystories; do
        out="$DIR/$preset-s$seed"
        if [ ! -f "$out/seconds" ]; then
            start=$(date +%s.%N)
            $LLM train --preset "$preset" --data "$DATA" --tokenizer bpe:2048 --seed "$seed" \
                --sample-chars 0 --out "$out" --overwrite >"$out.log" 2>&1
            echo "$(date +%s.%N) - $start" | bc -l >"$out/seconds"
        fi
        val=$(grep -o 'val_loss [0-9.]*' "$out.log" | tail -1 | cut -d' ' -f2)
        sample=$($LLM eval --model "$out" --text "$VALID" 2>/dev/null | sed -n 's/^loss \([0-9.]*\).*/\1/p')
        printf "%s\t%s\t%s\t%s\t%.0f\n" "$preset" "$seed" "$val" "$sample" "$(cat "$out/seconds")" |
            tee -a runs/tinystories-study.tsv
    done
done
