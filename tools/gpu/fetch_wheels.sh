#!/usr/bin/env bash
# Wheels of tools/gpu/requirements-site.txt for the GPU machine, into .whl/
# (git-ignored, ~12 MB a Python version; carry it: run(carry=['.whl'])).
# Binary ones (pycocotools, shapely) for each Python of PYTHONS, so the
# machine's Python, whichever it is, and a dry run here both find theirs.
#   bash tools/gpu/fetch_wheels.sh            # PYTHONS="3.11 3.12 3.13"
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
for v in ${PYTHONS:-3.11 3.12 3.13}; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d .whl \
        --python-version "$v" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -r tools/gpu/requirements-site.txt
done
ls .whl | wc -l
