#!/usr/bin/env bash
# Greedy generation speed of llama2.c's run.c and of `llm sample` on the same models and the
# same CPU threads: stories260K (shipped in data/llama2c) and a stories15M-shaped Llama (dim
# 288, 6 layers, 6 heads, SwiGLU 768, vocabulary 32,000, context 256) after one training step
# from random weights, exported for run.c with `llm llama2c export`. Both sides write up to 255
# tokens after BOS, greedily for stories260K, and for the random model (whose most likely token
# can be BOS, which ends a story) drawn at temperature 1 from the full distribution (run.c's
# `-t 1 -p 1`); they report tokens per second after the first token (run.c's "achieved
# tok/s"). Each is run $REPS times (default 5) and the median kept.
#
# run.c is llama2.c's (MIT licensed) and is not part of this project: give its path in RUN_C.
# It is built here with `gcc -O3 -march=native -fopenmp` and run with OMP_NUM_THREADS set to
# $THREADS (default: every CPU); ours uses as many rayon threads.
#
#   RUN_C=/path/to/llama2.c/run.c scripts/llama2c-speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RUN_C:?set RUN_C to the path of the run.c of llama2.c}"
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-5}
DIR=runs/llama2c-speed
mkdir -p "$DIR"
cargo build --release -p llm
LLM=target/release/llm
gcc -O3 -march=native -fopenmp -o "$DIR/run" "$RUN_C" -lm

$LLM llama2c import --model data/llama2c/stories260K.bin --tokenizer data/llama2c/tok512.bin \
    --out "$DIR/stories260K" --overwrite 2>/dev/null
cp data/llama2c/stories260K.bin "$DIR/stories260K.bin"
cat >"$DIR/stories15M-shape.json" <<'EOF'
{"model": "llama", "dim": 288, "n_layers": 6, "n_heads": 6, "n_kv_heads": 6, "hidden_dim": 768,
 "max_seq_len": 256, "max_iters": 1, "eval_interval": 0, "checkpoint_interval": 0}
EOF
if [ ! -f "$DIR/stories15M-shape.bin" ]; then
    $LLM train --config "$DIR/stories15M-shape.json" --tokenizer llama2c:data/llama2c/tokenizer.bin \
        --data data/tinystories/TinyStories-train-first2MiB.txt --sample-chars 0 \
        --out "$DIR/stories15M-shape" --overwrite >/dev/null 2>&1
    $LLM llama2c export --model "$DIR/stories15M-shape" --out "$DIR/stories15M-shape.bin" 2>/dev/null
fi

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# Our tokens/s after the first token, on run directory $1 at temperature $2.
ours() {
    RAYON_NUM_THREADS=$THREADS $LLM sample --model "$1" --temperature "$2" --seed 1 \
        --max-new-tokens 255 2>&1 >/dev/null |
        sed -n 's/.* \([0-9.]*\) tokens.s after the first/\1/p'
}

# run.c's achieved tok/s on model file $1 with tokenizer $2 at temperature $3.
theirs() {
    OMP_NUM_THREADS=$THREADS "$DIR/run" "$1" -z "$2" -t "$3" -p 1 -s 1 -n 256 2>&1 >/dev/null |
        sed -n 's/achieved tok.s: \([0-9.]*\)/\1/p'
}

printf "model\tllm-stack tok/s\trun.c tok/s\tratio\n"
for model in stories260K:data/llama2c/tok512.bin:0 stories15M-shape:data/llama2c/tokenizer.bin:1; do
    IFS=: read -r name tok t <<<"$model"
    a=$(for _ in $(seq "$REPS"); do ours "$DIR/$name" "$t"; done | median)
    b=$(for _ in $(seq "$REPS"); do theirs "$DIR/$name.bin" "$tok" "$t"; done | median)
    printf "%s\t%s\t%s\t%s\n" "$name" "$a" "$b" "$(echo "scale=2; $a / $b" | bc -l)"
done
