#!/usr/bin/env bash
# Every GPU check of the open issues in one short run, for a lent NVIDIA machine (H100/H200).
#
# On this machine first, `bash benchmarks/gpu_stage.sh` puts what the GPU machine lacks into
# the ignored folder `.devcarry/` (the reference data, a stripped Ray for its Python, Ray's
# missing requirements; about 45 MiB). Then on the GPU machine, from the repository root, with
# `.devcarry` carried:
#
#     ZCNAS_DATA=.devcarry/data OUT=/tmp/gpu-out bash benchmarks/gpu_checks.sh
#
# It installs zcnas from this checkout without a network (the machine's python3 already holds
# torch, numpy, pandas, scipy, pytest ...) and unpacks Ray into /tmp/site when it was staged.
# Then, each step bounded by a timeout and each written to $OUT (STEPS picks and orders them;
# the default order puts the issues' targets first, so a run cut short still has them):
#   device.txt           the GPU (nvidia-smi) and torch's view of it;
#   pytest-gpu.txt       the gpu-marked tests (CUDA scores and training against the CPU);
#   tss-default          the default suite (synflow, naswot, stable 2x128) over all 15,625
#                        topology cells on the GPU, process executor, no store (issue 14's
#                        target: < 2 min);
#   tss-default-ray      the same on a local Ray instance with GPU actors (--per-gpu $PER_GPU),
#                        compared cell by cell with tss-default in ray-vs-process.txt;
#   tss-zcnas            ensemble:zcnas's components over all cells on the GPU (issue 18's
#                        full-space table; correlate it with `zcnas correlate`);
#   training             a supernet epoch and a stand-alone epoch on the GPU (issue 16).
# CPU dry run (small, to check the script itself):
#     PYVER=3.11 bash benchmarks/gpu_stage.sh
#     DEVICE=cpu ARCHS=8 PY=.venv/bin/python ZCNAS_DATA=.devcarry/data bash benchmarks/gpu_checks.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
DEVICE=${DEVICE:-cuda}
ARCHS=${ARCHS:-all}
PY=${PY:-python3}
PER_GPU=${PER_GPU:-4}
STEPS=${STEPS:-"pytest-gpu tss-default tss-default-ray tss-zcnas training"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
: "${ZCNAS_DATA:?set ZCNAS_DATA to the reference data folder}"
export ZCNAS_DATA

if ! "$PY" -c "import zcnas_proxies, zcnas" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-index --no-build-isolation -e . \
        > "$OUT/install.txt" 2>&1 || { echo "install failed"; cat "$OUT/install.txt"; exit 1; }
fi
ZCNAS=("$PY" -m zcnas)

if [ -f .devcarry/ray-core.tar.xz ]; then  # first on the path, also where a Ray is installed
    mkdir -p /tmp/site
    tar -C /tmp/site -xJf .devcarry/ray-core.tar.xz
    if compgen -G ".devcarry/whl/*.whl" > /dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .devcarry/whl/*.whl > "$OUT/install-ray.txt" 2>&1 \
            || { echo "installing Ray's requirements failed"; cat "$OUT/install-ray.txt"; }
    fi
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
RAY_VERSION=$("$PY" -c "import ray; print(ray.__version__, 'from', ray.__file__)" 2>/dev/null \
    || echo none)

{
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
} > "$OUT/device.txt" 2>&1
echo "ray $RAY_VERSION" >> "$OUT/device.txt"
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

wants() { [[ " $STEPS " == *" $1 "* ]]; }
for name in $STEPS; do
    case $name in
    pytest-gpu)
        [ "$DEVICE" = cuda ] && step pytest-gpu 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider ;;
    tss-default)
        step tss-default 240 "${ZCNAS[@]}" score --device "$DEVICE" --archs "$ARCHS" \
            --proxies synflow,naswot,stable --no-store --no-progress \
            --out "$OUT/tss-default-$DEVICE" ;;
    tss-default-ray)
        if [ "$RAY_VERSION" = none ]; then
            echo "tss-default-ray: skipped, no Ray (run benchmarks/gpu_stage.sh and carry .devcarry)" \
                | tee -a "$OUT/summary.txt"
            continue
        fi
        share=()
        [ "$DEVICE" = cuda ] && share=(--per-gpu "$PER_GPU")
        step tss-default-ray 300 "${ZCNAS[@]}" score --device "$DEVICE" --archs "$ARCHS" \
            --proxies synflow,naswot,stable --no-store --no-progress --executor ray \
            "${share[@]}" --out "$OUT/tss-default-ray-$DEVICE"
        if wants tss-default; then
            "$PY" - "$OUT/tss-default-$DEVICE.csv" "$OUT/tss-default-ray-$DEVICE.csv" \
                > "$OUT/ray-vs-process.txt" 2>&1 <<'PYEOF'
import sys

import numpy as np
import pandas as pd

a, b = (pd.read_csv(p).set_index(["arch", "proxy"]).value.sort_index() for p in sys.argv[1:])
both = a.index.intersection(b.index)
x, y = a[both].to_numpy(), b[both].to_numpy()
same = (x == y) | (np.isnan(x) & np.isnan(y))
with np.errstate(invalid="ignore"):
    rel = np.abs(x - y) / np.maximum(np.abs(x), 1e-30)
print(f"{len(both)} (arch, proxy) values in both tables ({len(a)} process, {len(b)} ray); "
      f"bitwise equal: {int(same.sum())}; largest relative difference: "
      f"{np.nanmax(np.where(same, 0, rel)):.3g}")
PYEOF
            tee -a "$OUT/summary.txt" < "$OUT/ray-vs-process.txt"
        fi ;;
    tss-zcnas)
        step tss-zcnas 420 "${ZCNAS[@]}" score --device "$DEVICE" --archs "$ARCHS" \
            --proxies meco,stable,jacov,gradsign,az_expressivity,az_progressivity,az_trainability \
            --no-store --no-progress --out "$OUT/tss-zcnas-$DEVICE" ;;
    training)
        ZCNAS_BENCH_DEVICE=$DEVICE step training 180 "$PY" -m pytest -q benchmarks/test_training.py \
            --benchmark-only -o addopts="" -p no:cacheprovider ;;
    *)
        echo "unknown step $name" ;;
    esac
done
cat "$OUT/summary.txt"
