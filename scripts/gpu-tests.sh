#!/usr/bin/env bash
# All GPU checks of the CUDA backend, runnable from prebuilt binaries.
#
#   scripts/gpu-tests.sh build [DIR]   where Rust is: build the GPU test binaries and copy them,
#                                      an NVRTC and this script into DIR (default gpu-bundle)
#   DIR/gpu-tests.sh run               on the GPU machine (no Rust, no network needed): run
#                                      every bundled check, print a summary, exit non-zero if
#                                      any failed; then time a GPT-2 124M training step (batch
#                                      8, context 1024) against PyTorch eager when PyTorch
#                                      with CUDA is installed, and print a line for
#                                      benches/RESULTS.md
#
# The checks: every kernel against its CPU twin (tensor/tests/cuda_ops.rs), the tiled GEMM
# against cuBLAS, the allocator and the PTX cache (cuda-kernels/tests/gpu.rs), a decoder block
# trained on the GPU and the CPU (tests/cuda_training.rs), the kernel sources compiled by the
# NVRTC found (cuda-kernels/tests/nvrtc_compile.rs), and the device error path
# (tensor/tests/cuda_unavailable.rs).
set -euo pipefail

TESTS="cuda_ops cuda_unavailable cuda_training gpu nvrtc_compile"

build() {
    local root out
    root=$(cd "$(dirname "$0")/.." && pwd)
    out=$(realpath -m "${1:-$root/gpu-bundle}")
    cd "$root"
    rm -rf "$out"
    mkdir -p "$out/bin" "$out/nvrtc"
    cargo test --release --locked -p cuda-kernels -p tensor -p llm-stack --features cuda --no-run \
        --message-format=json >"$out/build.json"
    python3 - "$out" $TESTS <<'PY'
import json, shutil, sys
out, names = sys.argv[1], sys.argv[2:]
built = {}
for line in open(out + "/build.json"):
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
        built[msg["target"]["name"]] = msg["executable"]
for name in names:
    if name not in built:
        sys.exit(f"no test binary named {name} was built")
    shutil.copy(built[name], f"{out}/bin/{name}")
PY
    rm "$out/build.json"
    cargo bench --locked --features cuda --bench train_step --no-run --message-format=json >"$out/build.json"
    python3 - "$out" <<'PY'
import json, shutil, sys
out = sys.argv[1]
for line in open(out + "/build.json"):
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "train_step":
        shutil.copy(msg["executable"], out + "/bin/train_step")
PY
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
    echo "bundle ready: copy $out to the GPU machine and run $out/gpu-tests.sh run"
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

run() {
    local here log pass=0 fail=0 failed="" skipped
    here=$(cd "$(dirname "$0")" && pwd)
    log=$(mktemp)
    export CUDA_KERNELS_LIB_DIRS="$(python_lib_dirs):$here/nvrtc${CUDA_KERNELS_LIB_DIRS:+:$CUDA_KERNELS_LIB_DIRS}"
    export LD_LIBRARY_PATH="$here/nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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
    skipped=$(grep -c "skipped (needs a GPU)" "$log" || true)
    rm -f "$log"
    echo
    echo "GPU checks: $pass passed, $fail failed${failed:+ ($failed )}"
    if [ "$skipped" -gt 0 ]; then
        echo "$skipped tests found no usable GPU and were skipped; the reason is printed above"
    fi
    [ "$fail" -eq 0 ] || return 1
    compare "$here"
}

# Times a GPT-2 124M training step here and in PyTorch eager on the same GPU.
compare() {
    local here=$1 sizes="--preset gpt2 --batch 8 --seq 1024 --steps 10" ours theirs gpu
    echo
    echo "=== GPT-2 124M training step (forward, backward, AdamW), batch 8, context 1024"
    ours=$("$here/bin/train_step" --device cuda $sizes | tail -n 1) || return 1
    echo "llm-stack: $ours"
    if ! python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
        echo "PyTorch with CUDA is not installed here, so there is nothing to compare with"
        return 0
    fi
    theirs=$(python3 "$here/train_step.py" --device cuda $sizes | tail -n 1) || return 1
    echo "PyTorch:   $theirs"
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
    python3 - "$ours" "$theirs" "$gpu" <<'PY'
import sys
ours, theirs, gpu = sys.argv[1:]
val = lambda s: float(s.split()[0].split("=")[1])
r = val(ours) / val(theirs)
print(f"ratio (llm-stack / PyTorch tokens/s): {r:.2f}")
print(f"for benches/RESULTS.md: | {gpu} | GPT-2 124M, B=8, T=1024, f32 | {val(ours):.0f} | {val(theirs):.0f} | {r:.2f} |")
PY
}

case "${1:-}" in
build) build "${2:-}" ;;
run) run ;;
*)
    echo "usage: $0 build [DIR] | run" >&2
    exit 2
    ;;
esac
