#!/usr/bin/env bash
# The arithmetic study of benches/RESULTS.md: GPTs of three sizes trained from scratch with
# `llm sft` on synthetic addition and subtraction of 1 to 4 digits, scored with
# `llm eval --task` on the held-out problems (i % 10 in {1, 3, 7}); then what changes with
# reversed answer digits, multiplication and more steps. Prints one line per run and writes
# them to $OUT (default runs/math-study.tsv).
#
#   scripts/math-study.sh            # about 40 minutes on two cores
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm
LLM=target/release/llm
OUT=${OUT:-runs/math-study.tsv}
STEPS=${STEPS:-4000}
mkdir -p runs/math

# Model sizes: the char-small preset's settings with these shapes (context 32 holds any
# problem of up to 4 digits).
size_config() {
    local name=$1 layers=$2 heads=$3 width=$4
    printf '{"n_layer": %d, "n_head": %d, "n_embd": %d, "block_size": 32}\n' \
        "$layers" "$heads" "$width" >"runs/math/$name.json"
}
size_config tiny 2 2 64
size_config small 4 4 128
size_config medium 6 6 192

# One data set: name, then the flags of `llm synth arithmetic`.
data() {
    local name=$1
    shift
    [ -f "runs/math/$name/train.jsonl" ] ||
        $LLM synth arithmetic --out "runs/math/$name" --n 100000 "$@" >/dev/null
}

printf "size\tdata\tsteps\tparams_M\tseconds\taccuracy\tci95\tby_group\n" >"$OUT"

# One run: size, data set, steps.
run() {
    local size=$1 set=$2 steps=$3 dir="runs/math/$1-$2-$3" secs params report
    /usr/bin/time -f "%e" -o "$dir.time" $LLM sft --data "runs/math/$set/train.jsonl" \
        --config "runs/math/$size.json" --max-iters "$steps" --out "$dir" --overwrite \
        >"$dir.log" 2>&1
    secs=$(cat "$dir.time")
    params=$(sed -n 's/.*(\([0-9.]*\)M parameters.*/\1/p' "$dir.log" | head -n 1)
    report=$($LLM eval --model "$dir" --task "runs/math/$set/test.jsonl" --max-new-tokens 8 --json)
    python3 - "$size" "$set" "$steps" "$params" "$secs" "$report" <<'EOF' | tee -a "$OUT"
import json, sys
size, data, steps, params, secs, report = sys.argv[1:7]
r = json.loads(report)
groups = ", ".join(f"{g} {a['accuracy']:.3f}" for g, a in r["groups"].items())
print(f"{size}\t{data}\t{steps}\t{params}\t{secs}\t{r['accuracy']:.4f}\t"
      f"{r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}\t{groups}")
EOF
}

for digits in 1 2 3 4; do
    data "d$digits" --digits "$digits" --ops +,-
done
data d3-reversed --digits 3 --ops +,- --reverse
data d2-times --digits 2 --ops '*'

for size in tiny small medium; do
    for digits in 1 2 3 4; do
        run "$size" "d$digits" "$STEPS"
    done
done
run small d3-reversed "$STEPS"
run small d2-times "$STEPS"
run small d3 $((3 * STEPS))
