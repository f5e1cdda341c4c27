#!/usr/bin/env bash
# The spam classifier study of benches/RESULTS.md: a small English base model pretrained on the
# shipped TinyStories sample, then `llm classify train` on the SMS Spam Collection in every
# configuration of the table, each with three seeds; wall time and peak memory from
# /usr/bin/time. Prints one line per run and writes them to $OUT (default runs/spam-study.tsv).
#
#   scripts/spam-study.sh            # about 30 minutes on two cores
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm --example bag_of_words
LLM=target/release/llm
OUT=${OUT:-runs/spam-study.tsv}
SEEDS=${SEEDS:-"123 124 125"}
STORIES=data/tinystories/TinyStories-train-first2MiB.txt
SPAM=data/finetune/SMSSpamCollection.tsv
mkdir -p runs

# The base model (about 5 minutes) and the same architecture untrained.
if [ ! -f runs/stories/checkpoint.safetensors ]; then
    $LLM train --preset stories-small --data $STORIES --tokenizer bpe:2048 --out runs/stories \
        --sample-chars 0
fi
if [ ! -f runs/stories-untrained/checkpoint.safetensors ]; then
    $LLM train --preset stories-small --data $STORIES --tokenizer bpe:2048 \
        --out runs/stories-untrained --max-iters 0 --sample-chars 0
fi

printf "row\tseed\ttest_accuracy\ttrained_params_M\tseconds\tpeak_MiB\n" >"$OUT"

# One fine-tuning run: row name, seed, then the flags of `llm classify train`.
run() {
    local name=$1 seed=$2 log
    shift 2
    log=$(mktemp)
    /usr/bin/time -f "%e %M" -o "$log.time" $LLM classify train --data $SPAM \
        --out "runs/spam-$name-$seed" --overwrite --seed "$seed" "$@" >"$log" 2>&1
    local acc trained secs mib
    acc=$(tr '\r' '\n' <"$log" | sed -n 's/^test accuracy \([0-9.]*\).*/\1/p')
    trained=$(sed -n 's/.*, \([0-9.]*\)M trained).*/\1/p' "$log")
    read -r secs kib <"$log.time"
    mib=$((kib / 1024))
    printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$seed" "$acc" "$trained" "$secs" "$mib" | tee -a "$OUT"
    rm -f "$log" "$log.time"
}

for seed in $SEEDS; do
    run before-fine-tuning "$seed" --init-from runs/stories --epochs 0
    run all "$seed" --init-from runs/stories --train all
    run last-block "$seed" --init-from runs/stories --train last-block
    run head "$seed" --init-from runs/stories --train head
    run all-first-token "$seed" --init-from runs/stories --train all --pool first
    run all-from-random "$seed" --init-from runs/stories-untrained --train all
    for rank in 8 16 32 128; do
        run "lora-r$rank" "$seed" --init-from runs/stories --train lora --lora-rank "$rank"
    done
    printf "bag-of-words\t%s\t%s\n" "$seed" \
        "$(target/release/examples/bag_of_words "runs/spam-all-$seed" 200 "$seed" |
            sed -n 's/.*, test \([0-9.]*\) (.*/\1/p')" | tee -a "$OUT"
done
