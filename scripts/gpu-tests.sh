#!/usr/bin/env bash
# All GPU checks of the CUDA backend, runnable from prebuilt binaries.
#
#   scripts/gpu-tests.sh build [DIR]   where Rust is: build the GPU test binaries, the `llm`
#                                      command and the training-step benchmark with the `cuda`
#                                      feature, and copy them, an NVRTC, the PyTorch reference
#                                      script and this script into DIR (default gpu-bundle),
#                                      also packed as DIR.tar.xz (about 21 MB)
#   DIR/gpu-tests.sh run               on the GPU machine (no Rust, no network needed): run
#                                      every bundled check and print a summary; then time a
#                                      GPT-2 124M training step (batch 8, context 1024) against
#                                      PyTorch eager when PyTorch with CUDA is installed,
#                                      profile two more steps on each side (time per kernel),
#                                      and print the row for benches/RESULTS.md. Exits non-zero if
#                                      a check or the benchmark failed, or if a check skipped
#                                      on a machine where nvidia-smi sees a GPU.
#   DIR/gpu-tests.sh sanitize          on the GPU machine: the kernel tests under NVIDIA's
#                                      compute-sanitizer (memcheck, racecheck, synccheck,
#                                      initcheck); exits non-zero if one reports an error.
#
# The checks: every kernel against its CPU twin (tensor/tests/cuda_ops.rs), the kernel
# profile (tensor/tests/cuda_profile.rs), the tiled GEMM against cuBLAS, the allocator and the
# PTX cache (cuda-kernels/tests/gpu.rs), the GPT trained
# for 10 steps on the GPU and the CPU (tests/cuda_training.rs), `llm train --device cuda`
# (llm/tests/cuda_cli.rs), the kernel sources compiled by the NVRTC found
# (cuda-kernels/tests/nvrtc_compile.rs), and the device error path
# (tensor/tests/cuda_unavailable.rs). The benchmark is benches/train_step.rs, which runs
# benches/train_step.py for the PyTorch side.
set -euo pipefail

TESTS="cuda_ops cuda_profile cuda_unavailable cuda_training cuda_cli gpu nvrtc_compile"

# Copies executables that cargo reported in the JSON messages of file $1 into directory $2:
# those named in $3.., each an integration test, a benchmark or a command (not the unit-test
# harness that shares a command's name).
copy_built() {
    python3 - "$@" <<'PY'
import json, shutil, sys
messages, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
built = {}
for line in open(messages):
    msg = json.loads(line)
    if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
        continue
    target, is_test = msg["target"], msg["profile"]["test"]
    kind = target["kind"]
    if kind == ["test"] or kind == ["bench"] or kind == ["bin"] and not is_test:
        built[target["name"]] = msg["executable"]
for name in names:
    if name not in built:
        sys.exit(f"no executable named {name} was built")
    shutil.copy(built[name], f"{out}/{name}")
PY
}

build() {
    local root out
    root=$(cd "$(dirname "$0")/.." && pwd)
    out=$(realpath -m "${1:-$root/gpu-bundle}")
    cd "$root"
    rm -rf "$out"
    mkdir -p "$out/bin" "$out/nvrtc"
    cargo test --release --locked -p cuda-kernels -p tensor -p llm -p llm-stack --features cuda \
        --no-run --message-format=json >"$out/build.json"
    # shellcheck disable=SC2086 # one name per word
    copy_built "$out/build.json" "$out/bin" $TESTS llm
    cargo bench --locked --features cuda --bench train_step --no-run --message-format=json \
        >"$out/build.json"
    copy_built "$out/build.json" "$out/bin" train_step
    rm "$out/build.json"
    cp benches/train_step.py "$out/"
    # An NVRTC for CUDA 12.0: its PTX loads on every driver from CUDA 12.0 on, and it
    # compiles for GPUs up to compute capability 9.0. A newer NVRTC on the GPU machine that
    # its driver accepts is preferred to it.
    python3 -m pip install --quiet --disable-pip-version-check --target "$out/nvrtc/pkg" \
        'nvidia-cuda-nvrtc-cu12==12.0.*'
    find "$out/nvrtc/pkg" -name 'libnvrtc*.so*' -exec mv {} "$out/nvrtc/" \;
    rm -rf "$out/nvrtc/pkg"
    cp "$0" "$out/gpu-tests.sh"
    # Without debug info (symbol names stay, for backtraces) and packed, the bundle is a
    # tenth of its size: small enough to carry to a machine that takes a limited upload.
    strip --strip-debug "$out"/bin/*
    tar -C "$(dirname "$out")" -cf - "$(basename "$out")" | xz -T0 >"$out.tar.xz"
    echo "bundle ready: $out, packed as $out.tar.xz ($(du -h "$out.tar.xz" | cut -f1))"
    echo "on the GPU machine: tar -xJf $(basename "$out").tar.xz && $(basename "$out")/gpu-tests.sh run"
}

# Library directories of the Python environments on this machine (PyTorch's wheels bring
# NVRTC and cuBLAS), for the CUDA backend's library search.
python_lib_dirs() {
    command -v python3 >/dev/null || return 0
    python3 - <<'PY' 2>/dev/null || true
import glob, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()] + sys.path
dirs = {d for r in roots for d in glob.glob(r + "/nvidia/*/lib")}
print(":".join(sorted(dirs)))
PY
}

# Points the CUDA backend's library search at the Python environments' CUDA libraries and at
# the bundled NVRTC (directory $1).
library_paths() {
    export CUDA_KERNELS_LIB_DIRS="$(python_lib_dirs):$1/nvrtc${CUDA_KERNELS_LIB_DIRS:+:$CUDA_KERNELS_LIB_DIRS}"
    export LD_LIBRARY_PATH="$1/nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

run() {
    local here log bench pass=0 fail=0 failed="" skipped row status=0 reference
    here=$(cd "$(dirname "$0")" && pwd)
    log=$(mktemp)
    bench=$(mktemp)
    library_paths "$here"
    # The `llm` command that llm/tests/cuda_cli.rs runs.
    export LLM_BIN="$here/bin/llm"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    for name in $TESTS; do
        echo "=== $name"
        if "$here/bin/$name" --test-threads=1 --nocapture 2>&1 | tee -a "$log"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            failed="$failed $name"
        fi
    done
    skipped=$(grep "skipped\|no GPU here" "$log" | sort -u || true)
    rm -f "$log"

    echo
    echo "=== GPT-2 124M training step (forward, backward, AdamW), batch 8, context 1024"
    reference=(--reference "$here/train_step.py")
    if ! python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
        echo "PyTorch with CUDA is not installed here: timing our side only"
        reference=(--no-reference)
    fi
    if ! PYTHON=python3 "$here/bin/train_step" --device cuda --profile 2 "${reference[@]}" | tee "$bench"; then
        status=1
    fi
    row=$(grep '^| ' "$bench" || true)
    rm -f "$bench"

    echo
    echo "GPU checks: $pass passed, $fail failed${failed:+ ($failed )}"
    if [ -n "$skipped" ]; then
        echo "checks that did not run, and why:"
        echo "$skipped"
        # On a machine with a GPU every check must run: a skip there is a failure.
        if nvidia-smi -L >/dev/null 2>&1; then
            status=1
        fi
    fi
    if [ -n "$row" ]; then
        echo "row for benches/RESULTS.md:"
        echo "$row"
    else
        echo "benchmark: no row (see above)"
    fi
    [ "$fail" -eq 0 ] && [ "$status" -eq 0 ]
}

# Every kernel test (tensor/tests/cuda_ops.rs) under NVIDIA's compute-sanitizer: memcheck
# (out-of-bounds and misaligned accesses), racecheck (shared-memory races between threads
# that do not synchronize), synccheck (barriers in divergent code) and initcheck (reads of
# device memory no one wrote). The real-hardware counterparts of the emulator's checks, and
# the two it cannot make. Slow: each tool runs the kernels many times slower.
sanitize() {
    local here sanitizer tool failed=""
    here=$(cd "$(dirname "$0")" && pwd)
    library_paths "$here"
    sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    if [ ! -x "$sanitizer" ]; then
        echo "compute-sanitizer is not installed here (it comes with the CUDA toolkit)" >&2
        return 1
    fi
    for tool in memcheck racecheck synccheck initcheck; do
        echo "=== $tool"
        if ! "$sanitizer" --tool "$tool" --error-exitcode 1 "$here/bin/cuda_ops" --test-threads=1; then
            failed="$failed $tool"
        fi
    done
    echo
    if [ -n "$failed" ]; then
        echo "compute-sanitizer found errors with:$failed"
        return 1
    fi
    echo "compute-sanitizer: no errors from memcheck, racecheck, synccheck or initcheck"
}

case "${1:-}" in
build) build "${2:-}" ;;
run) run ;;
sanitize) sanitize ;;
*)
    echo "usage: $0 build [DIR] | run | sanitize" >&2
    exit 2
    ;;
esac
