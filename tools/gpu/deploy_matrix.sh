#!/usr/bin/env bash
# Issue 13's GPU run on this workplace's device machine (torch + CUDA, no
# OpenMMLab stack, no network): the same preamble as run_device_benchmark.sh
# (carried wheels from .whl/ into /tmp/site, torchvision nms shim for
# mmcv._ext), then tools/gpu/deploy_matrix.py (~5 min).
#   OUT=docs/results/gpu-h200 bash tools/gpu/deploy_matrix.sh
#   DRY_RUN=1 OUT=/tmp/dry bash tools/gpu/deploy_matrix.sh   # CPU check
set -euo pipefail
export PYTHONFAULTHANDLER=1  # a crash prints its Python stack
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-docs/results/gpu-$(date -u +%Y%m%d)}
if [ -n "${DRY_RUN:-}" ]; then
    exec "$PY" tools/gpu/deploy_matrix.py --dry-run --out "$OUT" "$@"
fi
if ! "$PY" -c "import mmdet, mmcv" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    cp tools/gpu/mmcv_ext_gpu_shim.py /tmp/site/mmcv/_ext.py
fi
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PY" tools/gpu/deploy_matrix.py --out "$OUT" "$@"
