#!/usr/bin/env bash
# Every GPU check of the open issues in one short run, for a lent NVIDIA machine (H100/H200).
#
# On the GPU machine, from the repository root, with the reference data in $ZCNAS_DATA (the
# device tool does not carry ../shared: copy ../shared/data into an ignored folder of the
# checkout, e.g. `.devdata`, and carry it):
#
#     ZCNAS_DATA=.devdata OUT=/tmp/gpu-out bash benchmarks/gpu_checks.sh
#
# It installs zcnas from this checkout without a network (the machine's python3 already holds
# torch, numpy, pandas, scipy, pytest ...), then, each step bounded by a timeout and each
# written to $OUT:
#   1. device.txt       the GPU (nvidia-smi) and torch's view of it;
#   2. pytest-gpu.txt   the gpu-marked tests (CUDA scores and training against the CPU);
#   3. tss-default-cuda the default suite (synflow, naswot, stable 2x128) over all 15,625
#                       topology cells on the GPU, no store (issue 14's target: < 2 min),
#                       its wall time in scoring-gpu.txt;
#   4. tss-zcnas-cuda   ensemble:zcnas's components over all cells on the GPU (issue 18's
#                       full-space table; correlate it with `zcnas correlate`);
#   5. training-gpu.txt a supernet epoch and a stand-alone epoch on the GPU (issue 16).
# Ray is not in the machine's image and its wheel (79 MB) is over the device tool's 64 MiB
# carry limit, so `--executor ray --per-gpu K` is not among these checks.
# CPU dry run (small, to check the script itself): DEVICE=cpu ARCHS=8 bash benchmarks/gpu_checks.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
DEVICE=${DEVICE:-cuda}
ARCHS=${ARCHS:-all}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
: "${ZCNAS_DATA:?set ZCNAS_DATA to the reference data folder}"
export ZCNAS_DATA

if ! "$PY" -c "import zcnas_proxies, zcnas" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-index --no-build-isolation -e . \
        > "$OUT/install.txt" 2>&1 || { echo "install failed"; cat "$OUT/install.txt"; exit 1; }
fi
ZCNAS=("$PY" -m zcnas)

{
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
} > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

step() {  # step NAME SECONDS CMD...: run with a timeout, keep its output, say how long it took
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    echo "$name: rc=$rc, $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
    tail -n 5 "$OUT/$name.txt"
}

if [ "$DEVICE" = cuda ]; then
    step pytest-gpu 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider
fi
step tss-default 240 "${ZCNAS[@]}" score --device "$DEVICE" --archs "$ARCHS" \
    --proxies synflow,naswot,stable --no-store --no-progress --out "$OUT/tss-default-$DEVICE"
step tss-zcnas 420 "${ZCNAS[@]}" score --device "$DEVICE" --archs "$ARCHS" \
    --proxies meco,stable,jacov,gradsign,az_expressivity,az_progressivity,az_trainability \
    --no-store --no-progress --out "$OUT/tss-zcnas-$DEVICE"
ZCNAS_BENCH_DEVICE=$DEVICE step training 180 "$PY" -m pytest -q benchmarks/test_training.py \
    --benchmark-only -o addopts="" -p no:cacheprovider
cat "$OUT/summary.txt"
