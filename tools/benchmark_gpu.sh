#!/usr/bin/env bash
# Reproduce the paper's GPU comparison: RetinaNet R34 vs G-Ghost-R34, full
# detector (preprocess + forward + NMS), 800x1333, fp32 and AMP, batch 1 and
# 8, interleaved timing with CUDA synchronisation. About 3-5 minutes.
#
#   bash tools/benchmark_gpu.sh                   # random-init weights
#   CKPT_A=r34.pth CKPT_B=gghost.pth EVAL_A=r34.json EVAL_B=gghost.json \
#       bash tools/benchmark_gpu.sh               # + mAP column and plot
#
# Results: work_dirs/benchmark_gpu/<fp32|amp>_bs<1|8>/benchmark.{json,csv,md}
# and work_dirs/benchmark_gpu/summary.md (all four tables in one).
# Environment overrides: CONFIG_A/CONFIG_B, WARMUP, ROUNDS, OUT, PY, SHAPE
# ("H W"), and DEVICE (cpu runs the fp32 part only: a dry run of the script).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
OUT=${OUT:-work_dirs/benchmark_gpu}
A=${CONFIG_A:-configs/retinanet_r34_1x_coco.py}
B=${CONFIG_B:-configs/retinanet_gghost_r34_1x_coco.py}
WARMUP=${WARMUP:-10}
ROUNDS=${ROUNDS:-${ITERS:-50}}  # ITERS: its old name
DEVICE=${DEVICE:-cuda}
SHAPE=${SHAPE:-800 1333}

extra=()
if [ -n "${CKPT_A:-}${CKPT_B:-}" ]; then
    extra+=(--checkpoint "${CKPT_A:-none}" "${CKPT_B:-none}")
fi
if [ -n "${EVAL_A:-}${EVAL_B:-}" ]; then
    extra+=(--eval-results "${EVAL_A:-none}" "${EVAL_B:-none}")
fi

if [ "${DEVICE#cuda}" != "$DEVICE" ]; then
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else
  'benchmark_gpu.sh: no CUDA device visible to torch')"
fi
mkdir -p "$OUT"

for bs in 1 8; do
    for prec in fp32 amp; do
        dir="$OUT/${prec}_bs${bs}"
        flags=()
        if [ "$prec" = amp ]; then
            # autocast is CUDA-only in tools/benchmark.py
            [ "${DEVICE#cuda}" != "$DEVICE" ] || continue
            flags+=(--amp)
        fi
        if [ -n "${EVAL_A:-}${EVAL_B:-}" ]; then
            flags+=(--plot "$dir/map_vs_fps.png")
        fi
        echo "=== $prec, batch $bs -> $dir"
        "$PY" tools/benchmark.py "$A" "$B" --names R34 G-Ghost-R34 \
            --device "$DEVICE" --batch-size "$bs" --shape $SHAPE \
            --warmup "$WARMUP" --rounds "$ROUNDS" --no-progress \
            --out "$dir" ${flags[@]+"${flags[@]}"} ${extra[@]+"${extra[@]}"}
    done
done

# one Markdown file with the four tables (each file's table + its title)
"$PY" - "$OUT" <<'EOF'
import glob, os, sys
out = sys.argv[1]
parts = ['# RetinaNet R34 vs G-Ghost-R34 on GPU', '']
for md in sorted(glob.glob(os.path.join(out, '*_bs*', 'benchmark.md'))):
    lines = open(md).read().splitlines()
    table = [l for l in lines if l.startswith('|')]
    parts += ['## ' + lines[0].lstrip('# ').replace('Benchmark: ', ''), '']
    parts += table + ['', f'(details: `{md}`)', '']
open(os.path.join(out, 'summary.md'), 'w').write('\n'.join(parts) + '\n')
print('\n'.join(parts))
EOF
