#!/usr/bin/env bash
# Prepare, on this (networked) machine, everything the GPU checks need that the GPU machine
# lacks, in one ignored folder `.devcarry/` small enough for the device tool's 64 MiB carry:
#
#   .devcarry/data/             a copy of the reference data (../shared/data, ~18 MB; the
#                               device tool does not carry ../shared)
#   .devcarry/ray-core.tar.xz   Ray (the version pinned below) for the GPU machine's Python,
#                               without the parts zcnas never imports (Java jars, RLlib, Serve,
#                               Data, Train, Tune, LLM): 79 MB wheel -> ~25 MB
#   .devcarry/whl/              the wheels of Ray's requirements that the GPU image lacks
#
# Then run the checks there with `.devcarry` in carry:
#     ZCNAS_DATA=.devcarry/data OUT=$OUT bash benchmarks/gpu_checks.sh
# gpu_checks.sh unpacks Ray into /tmp/site when `.devcarry/ray-core.tar.xz` is present and
# adds the `--executor ray --device cuda --per-gpu K` check.
#
#     bash benchmarks/gpu_stage.sh                  # for the GPU image (CPython 3.12)
#     PYVER=3.11 bash benchmarks/gpu_stage.sh       # for this machine: a local dry run
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
RAY=${RAY:-2.60.0}
DATA=${DATA:-../shared/data}
DEST=.devcarry
PY=${PY:-python3}
# Ray's requirements absent from the GPU image (its package list: click, filelock, msgpack,
# packaging, protobuf, pyyaml, requests and attrs are there; jsonschema's family is not)
EXTRA=${EXTRA:-"jsonschema jsonschema-specifications referencing rpds-py"}
grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || echo /.devcarry/ >> .git/info/exclude
rm -rf "$DEST" && mkdir -p "$DEST/whl" "$DEST/dl"
cp -r "$DATA" "$DEST/data"
chmod -R u+w "$DEST/data"

platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do platforms+=(--platform "$p"); done
fetch() {  # fetch DIR NAME...: wheels for the target interpreter, no dependencies
    local dir=$1
    shift
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
        --implementation cp "${platforms[@]}" -d "$dir" "$@"
}
fetch "$DEST/dl" "ray==$RAY"
# shellcheck disable=SC2086
fetch "$DEST/whl" $EXTRA

tree=$(mktemp -d)
(cd "$tree" && unzip -q "$OLDPWD/$DEST"/dl/ray-*.whl)
rm -rf "$tree"/ray/{jars,rllib,llm,serve,data,train,tune}
tar -C "$tree" -cf - . | xz -9 -T1 > "$DEST/ray-core.tar.xz"
rm -rf "$tree" "$DEST/dl"
du -sh "$DEST"/* | sed 's/^/  /'
total=$(du -sm "$DEST" | cut -f1)
echo "$DEST: $total MiB (the device tool carries at most 64 MiB with the working tree)"
[ "$total" -lt 60 ] || { echo "too large to carry"; exit 1; }
