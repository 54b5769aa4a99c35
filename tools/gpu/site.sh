# Sourced by the scripts in tools/gpu/ (bash, from the repository root): on
# the GPU machine, which has torch + CUDA but no OpenMMLab stack, install
# the carried wheels (.whl/, tools/gpu/fetch_wheels.sh) into $SITE and patch
# them for that machine (tools/gpu/patch_site.py), then put $SITE and the
# repository on PYTHONPATH. Nothing is installed where mmdet and mmcv
# import already, unless FORCE_SITE=1 (a dry run of the GPU path here).
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
if [ -n "${FORCE_SITE:-}" ] || ! "$PY" -c "import mmdet, mmcv" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$SITE" --find-links .whl \
        -r tools/gpu/requirements-site.txt
    "$PY" tools/gpu/patch_site.py "$SITE"
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
