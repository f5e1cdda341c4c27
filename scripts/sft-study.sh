#!/usr/bin/env bash
# The supervised fine-tuning study of benches/RESULTS.md:
#
#   1. prompt masking on the instruction data (LLMs-from-scratch chapter 7, Alpaca template,
#      the 85/5/10 split of seed 1337 for every run), from the stories-small base, 3 seeds each;
#   2. LoRA rank 16 against full fine-tuning on the same data, 3 seeds;
#   3. prompt masking on 2-digit arithmetic from scratch (the recipe of the tasks study), 3 seeds;
#   4. arithmetic: a base pretrained on the equations, then fine-tuned in the chat template.
#
# Every run is scored with `llm eval --task` on held-out records: the reference replies'
# teacher-forced loss, ROUGE-L, exact match and accuracy. One line per run goes to $OUT
# (default runs/sft-study.tsv). A run whose directory is complete is not trained again.
#
#   scripts/sft-study.sh      # about 50 minutes on two cores; needs the stories-small base:
#   llm train --preset stories-small --data data/tinystories/TinyStories-train-first2MiB.txt \
#       --tokenizer bpe:2048 --out runs/stories
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm
LLM=target/release/llm
OUT=${OUT:-runs/sft-study.tsv}
DIR=runs/sft-study
BASE=${BASE:-runs/stories}
INSTRUCTIONS=data/finetune/instruction-data.json
mkdir -p "$DIR"
[ -f runs/add2/train.jsonl ] ||
    $LLM synth arithmetic --out runs/add2 --n 100000 --digits 2 --ops +,- >/dev/null

printf "study\tvariant\tseed\ttrained_M\tseconds\tanswer_loss\trouge_l\texact\taccuracy\n" >"$OUT"

# One run: study, variant, seed, the test file, extra `llm eval` flags (one word), then the
# flags of `llm sft`.
run() {
    local study=$1 variant=$2 seed=$3 test=$4 eval_flags=$5 dir="$DIR/$1-$2-$3"
    shift 5
    if [ ! -f "$dir.time" ]; then
        /usr/bin/time -f "%e" -o "$dir.time" $LLM sft --seed "$seed" --out "$dir" --overwrite \
            "$@" >"$dir.log" 2>&1
    fi
    [ "$test" = run ] && test="$dir/test.jsonl"
    score "$study" "$variant" "$seed" "$dir" "$test" "$(cat "$dir.time")" \
        "$(sed -n 's/.*M parameters, \([0-9.]*\)M trained.*/\1/p' "$dir.log" | head -n 1)" \
        $eval_flags
}

# Scores a model: study, variant, seed, model, test file, seconds, trained millions, then
# extra `llm eval` flags.
score() {
    local study=$1 variant=$2 seed=$3 model=$4 test=$5 secs=$6 trained=$7 report
    shift 7
    report=$($LLM eval --model "$model" --task "$test" --max-new-tokens 128 --json "$@")
    python3 - "$study" "$variant" "$seed" "$trained" "$secs" "$report" <<'EOF' | tee -a "$OUT"
import json, sys
study, variant, seed, trained, secs, report = sys.argv[1:7]
r = json.loads(report)
loss = r["answer_loss"]
print(f"{study}\t{variant}\t{seed}\t{trained}\t{secs}\t"
      f"{'' if loss is None else f'{loss:.4f}'}\t{r['text']['rouge_l']:.4f}\t"
      f"{r['text']['exact_match']:.4f}\t{r['accuracy']:.4f}")
EOF
}

INST=(--init-from "$BASE" --data "$INSTRUCTIONS" --split-seed 1337 --epochs 5 --batch-size 8)
for seed in 1 2 3; do
    run instructions masked "$seed" run "" "${INST[@]}" --lr 1e-3
    run instructions unmasked "$seed" run "" "${INST[@]}" --lr 1e-3 --no-mask-prompt
    run instructions lora16 "$seed" run "" "${INST[@]}" --lr 1e-3 --lora-rank 16
done
# LoRA at the learning rates adapters usually want (the full model's 1e-3 was chosen by
# validation loss among 1e-4, 5e-4, 1e-3 and 2e-3).
for lr in 3e-3 1e-2; do
    for seed in 1 2 3; do
        run instructions "lora16-lr$lr" "$seed" run "" "${INST[@]}" --lr "$lr" --lora-rank 16
    done
done

ADD=(--data runs/add2/train.jsonl --epochs 40)
for seed in 1337 1338 1339; do
    run arithmetic masked "$seed" runs/add2/test.jsonl "" "${ADD[@]}"
    run arithmetic unmasked "$seed" runs/add2/test.jsonl "" "${ADD[@]}" --no-mask-prompt
done

# A base that has only read the equations (`train.txt`: one per line), scored on the bare
# prompts; then fine-tuned to answer in the chat template, scored in it.
PRE="$DIR/arithmetic-base"
if [ ! -f "$PRE.time" ]; then
    /usr/bin/time -f "%e" -o "$PRE.time" $LLM train --data runs/add2/train.txt --tokenizer char \
        --max-iters 2000 --out "$PRE" --overwrite >"$PRE.log" 2>&1
fi
score arithmetic pretrained 1337 "$PRE" runs/add2/test.jsonl "$(cat "$PRE.time")" all
run arithmetic pretrained+chat-sft 1337 runs/add2/test.jsonl --template=chat \
    --init-from "$PRE" --data runs/add2/train.jsonl --template chat --epochs 2 --lr 3e-4
run arithmetic pretrained+chat-sft-10ep 1337 runs/add2/test.jsonl --template=chat \
    --init-from "$PRE" --data runs/add2/train.jsonl --template chat --epochs 10 --lr 3e-4

# The math model (masked, seed 1337: 96.1% on the bare prompts), taught the chat template.
run arithmetic masked+chat-sft 1337 runs/add2/test.jsonl --template=chat \
    --init-from "$DIR/arithmetic-masked-1337" --data runs/add2/train.jsonl --template chat \
    --epochs 2 --lr 3e-4
run arithmetic masked+chat-sft-10ep-lr1e-3 1337 runs/add2/test.jsonl --template=chat \
    --init-from "$DIR/arithmetic-masked-1337" --data runs/add2/train.jsonl --template chat \
    --epochs 10 --lr 1e-3
