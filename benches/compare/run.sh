#!/usr/bin/env bash
# Tensor kernels against PyTorch, side by side: builds and runs benches/compare/ours.rs, runs
# benches/compare/torch_ops.py on the same cases, and prints ours / torch / ratio per case
# (ratio > 1: we are faster).
#
#   benches/compare/run.sh [NAME_FILTER...]
#
# Environment: THREADS (default 2) threads on each side; ROUNDS (default 3) alternations of the
# two sides, each case's rate being the median over rounds of per-round medians, so that a
# burst of load on a shared machine hits both sides alike. PyTorch comes from $PYTHON; without
# it, a venv is made in .venv at the repository root.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
        .venv/bin/pip install torch numpy
    fi
    PYTHON="$root/.venv/bin/python"
fi

ours="$(mktemp)"
theirs="$(mktemp)"
trap 'rm -f "$ours" "$theirs"' EXIT

cargo bench --quiet --bench compare --no-run
for ((round = 1; round <= rounds; round++)); do
    echo "round $round of $rounds" >&2
    RAYON_NUM_THREADS="$threads" cargo bench --quiet --bench compare -- "$@" >>"$ours"
    TORCH_THREADS="$threads" OMP_NUM_THREADS="$threads" \
        "$PYTHON" benches/compare/torch_ops.py "$@" >>"$theirs"
done

echo "threads: $threads; rounds: $rounds (median of 7 samples each); ratio = ours / torch"
awk -F'\t' '
    function median(list,    v, n, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == FNR { torch[$1] = torch[$1] " " $3; next }
    !($1 in ours) { order[++cases] = $1; unit[$1] = $2 }
    { ours[$1] = ours[$1] " " $3 }
    END {
        printf "%-28s %-8s %10s %10s %7s\n", "case", "unit", "ours", "torch", "ratio"
        for (i = 1; i <= cases; i++) {
            c = order[i]
            o = median(ours[c])
            t = (c in torch) ? median(torch[c]) : 0
            ratio = (t > 0) ? sprintf("%.2f", o / t) : "-"
            printf "%-28s %-8s %10.1f %10.1f %7s\n", c, unit[c], o, t, ratio
        }
    }
' "$theirs" "$ours"
