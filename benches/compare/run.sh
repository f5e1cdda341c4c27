#!/usr/bin/env bash
# Tensor kernels against PyTorch, side by side: builds and runs benches/compare/ours.rs, runs
# benches/compare/torch_ops.py on the same cases, and prints ours / torch / ratio per case
# (ratio > 1: we are faster). Both sides use $THREADS threads (default 2).
#
#   benches/compare/run.sh [NAME_FILTER...]
#
# PyTorch comes from $PYTHON; without it, a venv is made in .venv at the repository root.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
threads="${THREADS:-2}"

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
RAYON_NUM_THREADS="$threads" cargo bench --quiet --bench compare -- "$@" >"$ours"
TORCH_THREADS="$threads" OMP_NUM_THREADS="$threads" \
    "$PYTHON" benches/compare/torch_ops.py "$@" >"$theirs"

echo "threads: $threads; median of 7 samples per case; ratio = ours / torch"
awk -F'\t' '
    NR == FNR { torch[$1] = $3; next }
    FNR == 1 { printf "%-28s %-8s %10s %10s %7s\n", "case", "unit", "ours", "torch", "ratio" }
    {
        t = ($1 in torch) ? torch[$1] : 0
        ratio = t > 0 ? sprintf("%.2f", $3 / t) : "-"
        printf "%-28s %-8s %10.1f %10.1f %7s\n", $1, $2, $3, t, ratio
    }
' "$theirs" "$ours"
