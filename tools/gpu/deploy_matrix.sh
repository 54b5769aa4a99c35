#!/usr/bin/env bash
# Issue 13's GPU run on this workplace's device machine (torch + CUDA, no
# OpenMMLab stack, no network): the carried wheels (tools/gpu/site.sh), then
# tools/gpu/deploy_matrix.py (~5 min).
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
source tools/gpu/site.sh
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PY" tools/gpu/deploy_matrix.py --out "$OUT" "$@"
