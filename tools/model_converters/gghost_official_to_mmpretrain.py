#!/usr/bin/env python
"""Convert an official G-Ghost RegNet checkpoint (huawei-noah/
Efficient-AI-Backbones, g_ghost_pytorch) to an mmpretrain ImageClassifier
checkpoint (``backbone.*`` + ``head.fc.*``) usable by our configs."""
import argparse
import sys
from pathlib import Path

import torch

from mmdet_gghost.models.converters import (convert_official_gghost_regnet,
                                            is_official_layout)


def convert_file(src, dst):
    """Convert ``src`` into ``dst``; returns the number of tensors written.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``src`` is not an official G-Ghost RegNet checkpoint, or
            has keys that do not map (nothing is dropped silently).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f'official checkpoint {src} not found')
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if not is_official_layout(state):
        raise ValueError(f'{src} does not look like an official G-Ghost RegNet '
                         'checkpoint (no layerK.base/merge/cheap keys)')
    converted, unmapped = convert_official_gghost_regnet(state)
    if unmapped:
        raise ValueError(f'{src}: {len(unmapped)} keys have no counterpart in '
                         f'GGhostRegNet: {unmapped[:10]}')
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': converted,
                'meta': {'converted_from': str(src)}}, dst)
    return len(converted)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint for mmpretrain/mmdet')
    args = parser.parse_args(argv)
    try:
        n = convert_file(args.src, args.dst)
    except (FileNotFoundError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'converted {n} tensors: {args.src} -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
