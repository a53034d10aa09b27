#!/usr/bin/env bash
# Every GPU check of the open issues in one bounded run, for a lent NVIDIA machine (H100/H200).
#
# On this machine first, `bash benchmarks/gpu_stage.sh` puts what the GPU machine lacks into
# the ignored folder `.devcarry/` (the reference data, a stripped Ray for its Python, Ray's
# missing requirements; about 45 MiB). Then on the GPU machine, from the repository root, with
# `.devcarry` carried:
#
#     ZCNAS_DATA=.devcarry/data OUT=$OUT bash benchmarks/gpu_checks.sh
#
# It installs zcnas from this checkout without a network (the machine's python3 already holds
# torch, numpy, pandas, scipy, pytest ...) and unpacks Ray into /tmp/site when it was staged.
# Everything ends by DEADLINE seconds (default 540: a 600 s call keeps a margin), whatever is
# slow, and everything lands in $OUT as three files: summary.txt, sweep.txt and
# gpu-checks.tar.gz (every step's full output; the device tool returns at most 8 files).
#
# The steps (STEPS picks and orders them):
#   phases      one process's time per cell by phase, without a profiler: the network build,
#               its placement, the suite's scoring and each proxy's share
#               (benchmarks.device_phases).
#   sweep       the default suite (synflow, naswot, stable 2x128) over the topology space in
#               index order, each way of running it for SWEEP_S seconds into its own store:
#               in-process (1 worker, the cuda default), process pools of 8/16 workers,
#               the pools again under a private MPS daemon where nvidia-cuda-mps-control
#               exists, and Ray's GPU actors (--per-gpu 16). The stores' commit times give
#               each way's steady rate (cells per second from the W-th commit of W workers
#               on: start-up and the workers' first burst excluded) and the full
#               space's time at that rate (sweep.txt). WAYS, MPS_WAYS and RAY_WAY pick
#               them. On an H200 (results/benchmarks/gpu-h200.txt) one process scores
#               about 11 cells/s, 8 processes 31, and 16 processes under MPS 84: the
#               whole space in 100 s (issue 14's target: 2 minutes).
#   full        the whole space (6,466 distinct cells) the fastest way the sweep found, timed
#               from start to the table written; run only when that rate finishes it before
#               the deadline with a minute to spare, else said why not.
#   pytest-gpu  the gpu-marked tests (CUDA scores and training against the CPU).
#   stable-stats  the stable proxy's statistics per layer against side by side, on the GPU
#               (benchmarks.stable_stats: the launches and waits per layer it removes).
#   training    a supernet epoch and a stand-alone epoch on the GPU (benchmarks/test_training).
#
# CPU dry run (small, to check the script itself):
#     PYVER=3.11 bash benchmarks/gpu_stage.sh
#     DEVICE=cpu SWEEP_S=15 PY=.venv/bin/python ZCNAS_DATA=.devcarry/data OUT=/tmp/gpu-out \
#         bash benchmarks/gpu_checks.sh
# (ARCHS=20 CELLS=<its distinct cells> lets the dry run reach the full step)
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
DEADLINE=${DEADLINE:-540}
SWEEP_S=${SWEEP_S:-25}
STEPS=${STEPS:-"phases sweep pytest-gpu full stable-stats training"}
WAYS=${WAYS:-"inprocess-1 process-8 process-16"}  # of the sweep
MPS_WAYS=${MPS_WAYS:-"8 16"}  # the process pools run again under MPS ("" for none)
RAY_WAY=${RAY_WAY:-1}  # 0: no Ray way in the sweep
ARCHS=${ARCHS:-all}  # of the full run (the dry run takes a few)
CELLS=${CELLS:-6466}  # its distinct cells
SUITE=synflow,naswot,stable
WORK=$(mktemp -d)  # full outputs; packed into $OUT at the end
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
: "${ZCNAS_DATA:?set ZCNAS_DATA to the reference data folder}"
export ZCNAS_DATA

left() { echo $((DEADLINE - SECONDS)); }
say() { echo "$*" | tee -a "$WORK/summary.txt"; }

if ! "$PY" -c "import zcnas_proxies, zcnas" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-index --no-build-isolation -e . \
        > "$WORK/install.txt" 2>&1 || { echo "install failed"; cat "$WORK/install.txt"; exit 1; }
fi
ZCNAS=("$PY" -m zcnas)

if [ -f .devcarry/ray-core.tar.xz ]; then  # first on the path, also where a Ray is installed
    mkdir -p /tmp/site
    tar -C /tmp/site -xJf .devcarry/ray-core.tar.xz
    if compgen -G ".devcarry/whl/*.whl" > /dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .devcarry/whl/*.whl > "$WORK/install-ray.txt" 2>&1 \
            || { echo "installing Ray's requirements failed"; cat "$WORK/install-ray.txt"; }
    fi
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
RAY_VERSION=$("$PY" -c "import ray; print(ray.__version__, 'from', ray.__file__)" 2>/dev/null \
    || echo none)
{
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    echo "cpus $(nproc); ray $RAY_VERSION; mps $(command -v nvidia-cuda-mps-control || echo none)"
} 2>&1 | tee -a "$WORK/summary.txt"

step() {  # step NAME SECONDS CMD...: at most SECONDS (and never past the deadline), SIGINT first
    local name=$1 limit=$2
    shift 2
    [ "$limit" -gt "$(left)" ] && limit=$(left)
    if [ "$limit" -lt 5 ]; then
        say "$name: skipped, the deadline is near"
        return 124
    fi
    local start=$SECONDS
    timeout -s INT -k 10 "$limit" "$@" > "$WORK/$name.txt" 2>&1
    local rc=$?
    say "$name: rc=$rc, $((SECONDS - start)) s (limit $limit s)"
    return $rc
}

MPS_DIR=""
mps_on() {  # a private MPS daemon for this run's processes; false where there is none
    command -v nvidia-cuda-mps-control > /dev/null || return 1
    MPS_DIR=$(mktemp -d)
    export CUDA_MPS_PIPE_DIRECTORY=$MPS_DIR/pipe CUDA_MPS_LOG_DIRECTORY=$MPS_DIR/log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d > "$WORK/mps-start.txt" 2>&1 || { mps_off; return 1; }
}
mps_off() {
    [ -n "$MPS_DIR" ] || return 0
    echo quit | timeout 10 nvidia-cuda-mps-control > /dev/null 2>&1
    sleep 1
    cp -r "$CUDA_MPS_LOG_DIRECTORY" "$WORK/mps-log" 2>/dev/null
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    MPS_DIR=""
}

trap mps_off EXIT  # a daemon started is stopped, however the script ends

rate() {  # rate NAME STORE WORKERS: a store's steady commit rate, one line into sweep.txt
    "$PY" - "$1" "$2" "$3" >> "$WORK/sweep.txt" 2>&1 <<'PYEOF'
import sqlite3
import sys

name, path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:  # read-only: a step that made no store leaves none behind
    rows = sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute(
        "SELECT canonical, MAX(created) FROM scores GROUP BY canonical ORDER BY 2").fetchall()
except sqlite3.Error as e:
    print(f"{name:<16} no store ({e})")
    sys.exit()
# from the W-th commit on: W workers start together and finish their first cells in a burst
steady = rows[max(0, workers - 1):]
n = len(steady)
if n >= 3:
    span = steady[-1][1] - steady[0][1]
    r = (n - 1) / span if span > 0 else float("inf")
    print(f"{name:<16} {len(rows):5d} {span:6.1f} {r:7.2f} cells/s  "
          f"full space (6,466) ~{6466 / r:6.0f} s")
else:
    print(f"{name:<16} {len(rows):5d}  (too few for a rate)")
PYEOF
}

sweep() {
    printf '%-16s %5s %6s %7s\n' way cells span rate > "$WORK/sweep.txt"
    for way in $WAYS; do
        set -- ${way/-/ }
        local name="$1-${2:-1}"
        step "sweep-$name" "$SWEEP_S" "${ZCNAS[@]}" score --device "$DEVICE" --archs all \
            --proxies "$SUITE" --no-progress --executor "$1" --workers "${2:-1}" \
            --store "$WORK/$name.sqlite" --out "$WORK/$name"
        rate "$name" "$WORK/$name.sqlite" "${2:-1}"
    done
    if [ "$DEVICE" = cuda ] && [ -n "$MPS_WAYS" ] && mps_on; then
        for n in $MPS_WAYS; do
            step "sweep-mps-$n" "$SWEEP_S" "${ZCNAS[@]}" score --device cuda --archs all \
                --proxies "$SUITE" --no-progress --executor process --workers "$n" \
                --store "$WORK/mps-$n.sqlite" --out "$WORK/mps-$n"
            rate "mps-process-$n" "$WORK/mps-$n.sqlite" "$n"
        done
        mps_off
    else
        echo "mps: not tried (no nvidia-cuda-mps-control, its start failed, or not cuda)" \
            >> "$WORK/sweep.txt"
    fi
    if [ "$RAY_VERSION" != none ] && [ "$RAY_WAY" = 1 ]; then
        local share=()
        [ "$DEVICE" = cuda ] && share=(--per-gpu 16)
        step sweep-ray "$((SWEEP_S + 15))" "${ZCNAS[@]}" score --device "$DEVICE" --archs all \
            --proxies "$SUITE" --no-progress --executor ray "${share[@]}" \
            --store "$WORK/ray.sqlite" --out "$WORK/ray"
        rate "ray-16" "$WORK/ray.sqlite" 16
    fi
    tee -a "$WORK/summary.txt" < "$WORK/sweep.txt"
}

full() {  # the whole space, the fastest way of the sweep, when it fits before the deadline
    [ -f "$WORK/sweep.txt" ] || { say "full: skipped, no sweep"; return; }
    local best
    # sweep.txt columns: way, cells, span, rate, "cells/s", ...
    best=$(awk '$5 == "cells/s" && ($4 + 0) > r { r = $4 + 0; w = $1 } END { print w, r }' \
        "$WORK/sweep.txt")
    set -- $best
    local way=${1:-} r=${2:-0}
    if [ -z "$way" ]; then
        say "full: skipped, the sweep measured no rate"
        return
    fi
    local need
    need=$(awk -v r="$r" -v n="$CELLS" 'BEGIN { printf "%d", n / r + 30 }')
    if [ "$need" -gt $(($(left) - 60)) ]; then
        say "full: skipped, $way at $r cells/s needs ~$need s, $(left) s are left"
        return
    fi
    local args=()
    case $way in
    inprocess-*) args=(--executor inprocess --workers 1) ;;
    process-*) args=(--executor process --workers "${way#process-}") ;;
    mps-process-*) mps_on; args=(--executor process --workers "${way#mps-process-}") ;;
    ray-*) args=(--executor ray)
        [ "$DEVICE" = cuda ] && args+=(--per-gpu 16) ;;
    esac
    step "full-$way" "$((need + 60))" "${ZCNAS[@]}" score --device "$DEVICE" --archs "$ARCHS" \
        --proxies "$SUITE" --no-progress --no-store "${args[@]}" --out "$WORK/full-$way"
    mps_off
    tail -n 7 "$WORK/full-$way.txt" | tee -a "$WORK/summary.txt"
}

for name in $STEPS; do
    case $name in
    phases)
        step phases 90 "$PY" -m benchmarks.device_phases --device "$DEVICE" --archs 40 \
            --data "$ZCNAS_DATA" && tail -n 14 "$WORK/phases.txt" | tee -a "$WORK/summary.txt" ;;
    sweep) sweep ;;
    full) full ;;
    stable-stats)
        step stable-stats 60 "$PY" -m benchmarks.stable_stats --device "$DEVICE" --archs 20 \
            --data "$ZCNAS_DATA" && tail -n 5 "$WORK/stable-stats.txt" | tee -a "$WORK/summary.txt" ;;
    pytest-gpu)
        [ "$DEVICE" = cuda ] && step pytest-gpu 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider \
            && tail -n 3 "$WORK/pytest-gpu.txt" | tee -a "$WORK/summary.txt" ;;
    training)
        ZCNAS_BENCH_DEVICE=$DEVICE step training 150 "$PY" -m pytest -q \
            benchmarks/test_training.py --benchmark-only -o addopts="" -p no:cacheprovider
        grep -E "^(Name|test_)" "$WORK/training.txt" | tee -a "$WORK/summary.txt" ;;
    *) say "unknown step $name" ;;
    esac
done
mps_off
rm -f "$WORK"/*.csv
cp "$WORK/summary.txt" "$WORK/sweep.txt" "$OUT/" 2>/dev/null
tar -C "$WORK" -czf "$OUT/gpu-checks.tar.gz" --exclude='*.sqlite*' . \
    && echo "wrote $OUT/summary.txt, $OUT/sweep.txt and $OUT/gpu-checks.tar.gz"
