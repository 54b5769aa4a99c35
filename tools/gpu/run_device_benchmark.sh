#!/usr/bin/env bash
# GPU FPS run on a machine that has torch + CUDA but no OpenMMLab stack and
# no network (this workplace's device machine): installs carried pure-Python
# wheels (tools/gpu/site.sh: mmengine, mmdet, mmcv-lite, ...), then runs tools/benchmark_gpu.sh and a
# backbone-only comparison. Results under ${OUT:-work_dirs/benchmark_gpu}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/gpu/site.sh
export OUT=${OUT:-work_dirs/benchmark_gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch, mmcv, mmdet, mmengine, mmdet_gghost; print('torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__)" | tee -a "$OUT/gpu.txt"
PY="$PY" WARMUP=${WARMUP:-10} ROUNDS=${ROUNDS:-50} bash tools/benchmark_gpu.sh
for bs in 1 8; do
  "$PY" tools/benchmark.py configs/retinanet_r34_1x_coco.py \
      configs/retinanet_gghost_r34_1x_coco.py --names R34 G-Ghost-R34 \
      --task backbone --device cuda --batch-size $bs --shape 800 1216 \
      --warmup 10 --rounds 100 --no-progress --out "$OUT/backbone_fp32_bs$bs"
done
