#!/usr/bin/env bash
# The accuracy issue's converged comparison on the GPU machine: make
# demo-paper's four models x SEEDS, JOBS trainings side by side on the one
# GPU (each job a process; mmengine trains and evaluates on CUDA by itself),
# then the demo's summary, curves and FPS (CPU, 2 threads). LIMIT seconds at
# most (a device call may run 600 s); what finished is archived either way
# in $OUT/demo_paper.tgz (summaries, curves, every run's metrics.json and
# scalars.json), and a second call on the still-warm machine resumes from
# the checkpoints in $WORK.
#   OUT=/tmp/out bash tools/gpu/demo_paper.sh   # SCALE="6 16" SEEDS="0 1" JOBS=8
#   DRY_RUN=1 OUT=/tmp/dry bash tools/gpu/demo_paper.sh   # CPU check, tiny
set -euo pipefail
export PYTHONFAULTHANDLER=1  # a crash prints its Python stack
cd "$(dirname "$0")/../.."
if [ -n "${DRY_RUN:-}" ]; then
    # the carried wheels and patches, on a tiny schedule: 32 pre-training and
    # 64 detector iterations (past the warm-ups; a multiple of the 8
    # evaluations)
    export FORCE_SITE=1
    SCALE=${SCALE:-0.16 0.1} SEEDS=${SEEDS:-0} JOBS=${JOBS:-2}
    WORK=${WORK:-work_dirs/demo_paper_gpu_dry} ROUNDS=${ROUNDS:-2}
fi
source tools/gpu/site.sh
OUT=${OUT:-work_dirs/demo_paper_gpu_out}
WORK=${WORK:-work_dirs/demo_paper_gpu}
mkdir -p "$OUT"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
    "$PY" -c "import sys, numpy, torch, mmcv, mmdet, mmengine, mmpretrain
print(sys.version.split()[0], 'numpy', numpy.__version__, 'torch', torch.__version__,
      'cuda', torch.cuda.is_available(), 'mmcv', mmcv.__version__, 'mmdet',
      mmdet.__version__, 'mmengine', mmengine.__version__, 'mmpretrain',
      mmpretrain.__version__)"
    nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
set +e
# timeout signals its whole process group: the job processes end too
timeout --kill-after=20 "${LIMIT:-540}" "$PY" tools/demo.py \
    --work-dir "$WORK" --only det --paper --paper-scale ${SCALE:-6 16} \
    --seeds ${SEEDS:-0 1} --jobs "${JOBS:-8}" --rounds "${ROUNDS:-10}" \
    > "$OUT/demo.log" 2>&1
rc=$?
set -e
echo "demo.py exit code $rc (124: LIMIT reached; run again to resume)" | tee -a "$OUT/env.txt"
tail -n 25 "$OUT/demo.log"
# what finished, small files only (a device call returns a few files)
(cd "$WORK" && find . \( -name 'summary.*' -o -name '*.png' \
    -o -name metrics.json -o -name scalars.json -o -name '*.log' \) -print0 |
    tar czf - --null -T -) > "$OUT/demo_paper.tgz"
exit $rc
