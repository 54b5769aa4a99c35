#!/usr/bin/env python
"""Make the carried pure-Python OpenMMLab wheels, installed into SITE (e.g.
``/tmp/site``), run on the GPU machine's own stack (torch + CUDA, numpy 2,
transformers 5, no mmcv ops, no network):

1. ``mmcv/_ext.py`` := ``tools/gpu/mmcv_ext_gpu_shim.py`` (mmcv-lite has no
   compiled ops; the shim gives RetinaNet's nms and focal loss).
2. mmcv's ``adjust_hue`` (the demo's classifier pre-training jitters hue):
   ``np.uint8(hue_factor * 255)`` of a negative factor raises OverflowError
   under numpy 2; ``np.uint8(int(hue_factor * 255) % 256)`` is the value
   numpy 1.x gave (truncated, wrapped into uint8).
3. mmpretrain's optional multimodal import breaks on transformers 5.x:
   marked unavailable.

Every patch is idempotent; text that is not where it should be is one
error naming the file.

    python tools/gpu/patch_site.py /tmp/site
"""
import argparse
import os.path as osp
import shutil
import sys

SHIM = osp.join(osp.dirname(osp.abspath(__file__)), 'mmcv_ext_gpu_shim.py')
# (file under SITE, text, replacement)
PATCHES = (
    ('mmcv/image/photometric.py', 'np.uint8(hue_factor * 255)',
     'np.uint8(int(hue_factor * 255) % 256)'),
    ('mmpretrain/utils/dependency.py', "'transformers>=4.28.0'",
     "'transformers<0'"),
)


class PatchError(RuntimeError):
    """A carried file is missing or has unexpected text."""


def patch_file(path, old, new):
    """Replace every ``old`` in ``path`` by ``new``; returns how many (0
    when already patched)."""
    try:
        text = open(path).read()
    except OSError as err:
        raise PatchError(f'{path}: {err.strerror}; install the carried wheels '
                         'into this site first') from None
    if old not in text:
        if new in text:
            return 0
        raise PatchError(f'{path} holds no {old!r}: another version than the '
                         'carried wheel; update tools/gpu/patch_site.py')
    with open(path, 'w') as f:
        f.write(text.replace(old, new))
    return text.count(old)


def patch_site(site):
    """Apply the shim and :data:`PATCHES` under ``site``; returns
    ``{file: replacements}``."""
    ext = osp.join(site, 'mmcv', '_ext.py')
    if not osp.isdir(osp.dirname(ext)):
        raise PatchError(f'{site} has no mmcv: install the carried wheels '
                         '(mmcv-lite) there first')
    shutil.copyfile(SHIM, ext)
    done = {'mmcv/_ext.py': 1}
    for rel, old, new in PATCHES:
        done[rel] = patch_file(osp.join(site, rel), old, new)
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('site', help='where the carried wheels are installed')
    args = parser.parse_args(argv)
    try:
        done = patch_site(args.site)
    except PatchError as err:
        print(f'patch_site: {err}', file=sys.stderr)
        return 1
    print('patched ' + ', '.join(f'{k} ({n})' for k, n in done.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
