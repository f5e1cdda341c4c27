#!/usr/bin/env bash
# The sentiment study of benches/RESULTS.md: PPO makes the stories-small base model (runs/stories)
# continue the start of a sentence more positively, rewarded by the SST-2 classifier's
# probability of the positive class (runs/sst2, class 1).
#
# Prompts: the first 4 words of the second sentence of each TinyStories story in the shipped
# sample, repeats dropped: the first 1,300 train, the next 200 are held out. Each run: 200
# rollouts of 32 prompts x 1 reply of at most 24 tokens, lr 1e-4, with the KL penalty (0.05) or
# without it (0), seeds 1 and 2. Measured: the held-out mean reward (one reply per prompt at
# temperature 1, a fixed seed) before and after, the KL per reply to the start over the last
# 10 rollouts, the loss on the pretraining text, and the greedy replies to the held-out prompts
# with their distinct-bigram ratio. One line per run goes to $OUT (default
# runs/sentiment-study.tsv). Needs runs/stories and runs/sst2 (their commands are in
# benches/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p llm
LLM=target/release/llm
OUT=${OUT:-runs/sentiment-study.tsv}
DIR=runs/sentiment
mkdir -p "$DIR"
TEXT=data/tinystories/TinyStories-train-first2MiB.txt

python3 - "$TEXT" "$DIR" <<'EOF'
import json, re, sys
text, out = open(sys.argv[1], encoding="utf-8").read(), sys.argv[2]
starts, seen = [], set()
for story in text.split("<|endoftext|>")[:-1]:
    sentences = re.split(r"(?<=[.!?])\s+", story.strip().replace("\n", " "))
    words = sentences[1].split() if len(sentences) > 1 else []
    start = " ".join(words[:4])
    if len(words) >= 6 and start not in seen:
        seen.add(start)
        starts.append(start)
def write(name, items, answer):
    with open(f"{out}/{name}", "w") as f:
        for s in items:
            f.write(json.dumps({"prompt": s, "answer": ""} if answer else {"prompt": s}) + "\n")
write("starts-train.jsonl", starts[:1300], False)
write("starts-val.jsonl", starts[1300:1500], False)
write("starts-val-eval.jsonl", starts[1300:1500], True)
EOF

printf "kl_coef\tseed\tseconds\tval_reward_start\tval_reward_end\tkl_end\ttext_loss\tdistinct2\n" >"$OUT"

# The greedy replies of a model to the held-out starts, and their distinct-bigram ratio.
distinct2() {
    $LLM eval --model "$1" --task "$DIR/starts-val-eval.jsonl" --max-new-tokens 24 \
        --answers "$1.answers.jsonl" --json >/dev/null
    python3 - "$1.answers.jsonl" <<'EOF'
import json, sys
words = [json.loads(l)["answer"].split() for l in open(sys.argv[1])]
pairs = [tuple(w[i:i + 2]) for w in words for i in range(len(w) - 1)]
print(f"{len(set(pairs)) / max(len(pairs), 1):.3f}")
EOF
}

text_loss() {
    $LLM eval --model "$1" --text "$TEXT" --json |
        python3 -c "import json, sys; print(f\"{json.load(sys.stdin)['loss']:.4f}\")"
}

printf "start\t-\t-\t-\t-\t-\t%s\t%s\n" "$(text_loss runs/stories)" "$(distinct2 runs/stories)" |
    tee -a "$OUT"
for kl in 0.05 0; do
    for seed in 1 2; do
        run="$DIR/ppo-kl$kl-$seed"
        if [ ! -s "$run.time" ]; then
            /usr/bin/time -f "%e" -o "$run.time" $LLM ppo --init-from runs/stories \
                --reward runs/sst2:1 --prompts "$DIR/starts-train.jsonl" \
                --val "$DIR/starts-val.jsonl" --rollouts 200 --prompts-per-rollout 32 \
                --max-new-tokens 24 --lr 1e-4 --kl-coef "$kl" --eval-interval 50 \
                --seed "$seed" --out "$run" --overwrite >"$run.log" 2>&1
        fi
        rewards=$(python3 - "$run/log.jsonl" <<'EOF'
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
val = [l["val_mean_reward"] for l in log if "val_mean_reward" in l]
kl = [l["kl"] for l in log if "kl" in l][-10:]
print(f"{val[0]:.4f}\t{val[-1]:.4f}\t{sum(kl) / len(kl):.3f}")
EOF
)
        printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$kl" "$seed" "$(cat "$run.time")" "$rewards" \
            "$(text_loss "$run")" "$(distinct2 "$run")" | tee -a "$OUT"
    done
done
