#!/usr/bin/env bash
# The DPO study of benches/RESULTS.md:
#
#   1. polite replies: the instruction model of the SFT study (stories-small base, masked, seed
#      1), then DPO on the preference version of the same records (the same 935 / 55 / 110
#      split of seed 1337): learning rates 5e-5 and 2e-4 (3 seeds each) and 1e-3 (seed 1),
#      and DPO + NLL at 2e-4 (3 seeds). Before and after: reward accuracy and margin on the 55
#      held-out pairs, the teacher-forced loss of the 110 test records' reference replies, and
#      the share of the greedy replies to the 110 test prompts that a classifier fine-tuned on
#      chosen against rejected texts (training split only) calls polite;
#   2. arithmetic: a 2-digit model fine-tuned from scratch for 12 epochs (18 to 40% right),
#      pairs of its own right and wrong answers to 3,000 training prompts (`llm dpo-pairs`),
#      then one epoch of DPO, of DPO + NLL, or of SFT on the chosen answers alone (the
#      control: the same prompts, steps and sequences with gradients per step), 3 seeds, scored
#      on the 4,941 held-out problems;
#   3. peak memory of a few DPO steps with a live and with a precomputed reference.
#
# One line per run goes to $OUT (default runs/dpo-study.tsv). A run whose directory is
# complete is not trained again.
#
#   scripts/dpo-study.sh      # about 25 minutes on two cores; needs the stories-small base:
#   llm train --preset stories-small --data data/tinystories/TinyStories-train-first2MiB.txt \
#       --tokenizer bpe:2048 --out runs/stories
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm
LLM=target/release/llm
OUT=${OUT:-runs/dpo-study.tsv}
DIR=runs/dpo-study
BASE=${BASE:-runs/stories}
PREFERENCES=data/finetune/instruction-data-with-preference.json
mkdir -p "$DIR"
[ -f runs/add2/train.jsonl ] ||
    $LLM synth arithmetic --out runs/add2 --n 100000 --digits 2 --ops +,- >/dev/null

printf "study\tvariant\tseed\tseconds\tval_accuracy\tval_margin\tval_chosen_logratio\tanswer_loss\tscore\n" >"$OUT"

# Runs `llm` with the given flags into the directory after --out unless it is complete (its
# `.time` file, the run's seconds, exists).
train() {
    local dir=$1
    shift
    if [ ! -s "$dir.time" ]; then
        /usr/bin/time -f "%e" -o "$dir.time" $LLM "$@" --out "$dir" --overwrite >"$dir.log" 2>&1
    fi
}

# The first and last held-out rewards in a run's log: "accuracy margin chosen_logratio" of the
# evaluation at step 0, then of the last.
rewards() {
    python3 - "$1/log.jsonl" <<'EOF'
import json, sys
evals = [e for e in map(json.loads, open(sys.argv[1])) if "val_rewards_margin" in e]
for e in (evals[0], evals[-1]):
    print(f"{e['val_rewards_accuracy']:.4f}\t{e['val_rewards_margin']:.4f}\t"
          f"{e['val_chosen_logratio']:.4f}")
EOF
}

# A field of `llm eval --json`'s report: model, test file, field, extra eval flags.
report() {
    local model=$1 test=$2 field=$3
    shift 3
    $LLM eval --model "$model" --task "$test" --json "$@" |
        python3 -c "import json, sys; print(f'{json.load(sys.stdin)[\"$field\"]:.4f}')"
}

# Appends its arguments to $OUT as one tab-separated line.
row() {
    local IFS=$'\t'
    echo "$*" | tee -a "$OUT"
}

# ---- 1. Polite replies ----
SFT="$DIR/polite-sft"
train "$SFT" sft --init-from "$BASE" --data data/finetune/instruction-data.json \
    --split-seed 1337 --epochs 5 --batch-size 8 --lr 1e-3 --seed 1

# The judge: a classifier of chosen (polite) against rejected texts, trained on the training
# split's pairs, validated and tested on the held-out ones (pairs whose texts are equal left
# out).
JUDGE="$DIR/polite-judge"
if [ ! -s "$JUDGE.time" ]; then
    python3 - "$PREFERENCES" "$SFT/sft.json" "$DIR" <<'EOF'
import json, sys
records = json.load(open(sys.argv[1]))
split = json.load(open(sys.argv[2]))["split"]
for name in ("train", "val", "test"):
    with open(f"{sys.argv[3]}/polite-{name}.jsonl", "w") as f:
        for i in split[name]:
            r = records[i]
            if r["chosen"] != r["rejected"]:
                f.write(json.dumps({"text": r["chosen"], "label": "polite"}) + "\n")
                f.write(json.dumps({"text": r["rejected"], "label": "impolite"}) + "\n")
EOF
fi
train "$JUDGE" classify train --init-from "$BASE" --data "$DIR/polite-train.jsonl" \
    --val "$DIR/polite-val.jsonl" --test "$DIR/polite-test.jsonl" --train all --epochs 5 --seed 1
JUDGE_TEST=$($LLM classify eval --model "$JUDGE" --split test --json |
    python3 -c "import json, sys; print(f'{json.load(sys.stdin)[\"accuracy\"]:.4f}')")
echo "judge: accuracy $JUDGE_TEST on the test split's chosen and rejected replies"

# The share of a model's greedy replies to the test prompts that the judge calls polite (an
# empty reply counts as not polite).
polite_share() {
    local model=$1 answers="$1/answers.jsonl"
    $LLM eval --model "$model" --task "$SFT/test.jsonl" --max-new-tokens 128 \
        --answers "$answers" >/dev/null
    python3 -c "
import json, sys
for line in open('$answers'):
    answer = json.loads(line)['answer']
    if answer:
        print(json.dumps({'text': answer, 'label': 'polite'}))
" >"$model/answers-judged.jsonl"
    $LLM classify eval --model "$JUDGE" --data "$model/answers-judged.jsonl" --json |
        python3 -c "
import json, sys
judged = json.load(sys.stdin)
total = sum(1 for _ in open('$answers'))
print(f'{judged[\"accuracy\"] * judged[\"n\"] / total:.4f}')"
}

POLITE=(--data "$PREFERENCES" --split-seed 1337 --beta 0.1 --logp mean --epochs 2 --batch-size 8
    --eval-interval 20)
DPO_POLITE=(--init-from "$SFT" "${POLITE[@]}")
# Before: the SFT model (held-out rewards are 0 at step 0 of any run).
row polite sft 1 "$(cat "$SFT.time")" 0 0 0 \
    "$(report "$SFT" "$SFT/test.jsonl" answer_loss --max-new-tokens 1)" "$(polite_share "$SFT")"
# Three learning rates at seed 1, then seeds 2 and 3 at the two smaller ones.
for lr in 5e-5 2e-4 1e-3; do
    for seed in 1 2 3; do
        [ "$lr" = 1e-3 ] && [ "$seed" != 1 ] && continue
        run="$DIR/polite-dpo-lr$lr-$seed"
        train "$run" dpo "${DPO_POLITE[@]}" --lr "$lr" --seed "$seed"
        row polite "dpo-lr$lr" "$seed" "$(cat "$run.time")" "$(rewards "$run" | tail -n 1)" \
            "$(report "$run" "$SFT/test.jsonl" answer_loss --max-new-tokens 1)" \
            "$(polite_share "$run")"
    done
done
# DPO + NLL at the rate where plain DPO broke the model.
for seed in 1 2 3; do
    run="$DIR/polite-dpo+nll-lr2e-4-$seed"
    train "$run" dpo "${DPO_POLITE[@]}" --lr 2e-4 --nll-weight 1 --seed "$seed"
    row polite "dpo+nll-lr2e-4" "$seed" "$(cat "$run.time")" "$(rewards "$run" | tail -n 1)" \
        "$(report "$run" "$SFT/test.jsonl" answer_loss --max-new-tokens 1)" \
        "$(polite_share "$run")"
done

# ---- 2. Arithmetic ----
head -n 3000 runs/add2/train.jsonl >"$DIR/add-prompts.jsonl"
for seed in 1337 1338 1339; do
    base="$DIR/add-sft-$seed"
    train "$base" sft --data runs/add2/train.jsonl --epochs 12 --seed "$seed"
    pairs="$DIR/add-pairs-$seed.jsonl"
    [ -f "$pairs" ] || $LLM dpo-pairs --model "$base" --task "$DIR/add-prompts.jsonl" \
        --samples 8 --seed "$seed" --out "$pairs" 2>>"$DIR/add-pairs.log"
    python3 -c "
import json
for line in open('$pairs'):
    r = json.loads(line)
    print(json.dumps({'prompt': r['prompt'], 'answer': r['chosen']}))
" >"$DIR/add-chosen-$seed.jsonl"
    score() { report "$1" runs/add2/test.jsonl accuracy; }
    loss() { report "$1" runs/add2/test.jsonl answer_loss; }
    row arithmetic sft "$seed" "$(cat "$base.time")" "" "" "" "$(loss "$base")" "$(score "$base")"
    for variant in dpo dpo+nll; do
        run="$DIR/add-$variant-$seed"
        nll=0
        [ "$variant" = dpo+nll ] && nll=1
        train "$run" dpo --init-from "$base" --data "$pairs" --lr 1e-4 --epochs 1 \
            --nll-weight "$nll" --seed "$seed"
        row arithmetic "$variant" "$seed" "$(cat "$run.time")" "$(rewards "$run" | tail -n 1)" \
            "$(loss "$run")" "$(score "$run")"
    done
    steps=$(python3 -c "import json; print(json.load(open('$DIR/add-dpo-$seed/config.json'))['max_iters'])")
    run="$DIR/add-sft-on-chosen-$seed"
    train "$run" sft --init-from "$base" --data "$DIR/add-chosen-$seed.jsonl" --lr 1e-4 \
        --max-iters "$steps" --batch-size 16 --seed "$seed"
    row arithmetic sft-on-chosen "$seed" "$(cat "$run.time")" "" "" "" "$(loss "$run")" \
        "$(score "$run")"
done

# ---- 3. Peak memory (KB, in the last column) of a DPO run with the reference model and with
# its log-probabilities: the polite runs' model, and an untrained 8-layer, width-512 GPT
# (26.3M parameters) on the same tokenizer ----
echo '{"n_layer": 8, "n_head": 8, "n_embd": 512, "block_size": 128, "batch_size": 4}' \
    >"$DIR/mem-base.json"
[ -s "$DIR/mem-base.time" ] || /usr/bin/time -f "%e" -o "$DIR/mem-base.time" $LLM train \
    --data data/tinystories/TinyStories-train-first2MiB.txt --tokenizer "$BASE/tokenizer.json" \
    --config "$DIR/mem-base.json" --max-iters 1 --sample-chars 0 --out "$DIR/mem-base" \
    --overwrite >/dev/null 2>&1
for model in "$SFT" "$DIR/mem-base"; do
    for how in live precomputed; do
        flag=()
        [ "$how" = precomputed ] && flag=(--precompute-reference)
        /usr/bin/time -f "%M" -o "$DIR/memory.kb" $LLM dpo --init-from "$model" "${POLITE[@]}" \
            --lr 5e-5 --max-iters 5 "${flag[@]}" --out "$DIR/memory-run" --overwrite >/dev/null 2>&1
        row memory "$how" "$(basename "$model")" "" "" "" "" "" "$(cat "$DIR/memory.kb")"
    done
done
