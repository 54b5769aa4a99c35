"""G-Ghost ResNet: the paper's ResNet experiments (no official code exists).

Design choices the paper leaves open, and what we chose:

* Which stages: every stage with at least 2 blocks (all four for ResNet-18/
  34/50/101) — ``gghost_stages`` picks others; ``gghost_stages=()`` gives the
  plain ResNet, which with ``widen_factor=0.8`` is the paper's
  "ResNet34-0.8x" baseline.
* Layout: the ResNet stage keeps its depth ``n``: first block at full width
  (stride, projection shortcut), ``n - 1`` complex blocks at width
  ``(1 - cheap_ratio) * c``, no extra ``end`` block (the official RegNet code
  adds one; the paper's figure has none, and it would cost a full-width block).
* Channel split as the official code: the complex path reads the first
  ``raw`` channels of the first block's output, the cheap op the remaining
  ``c - raw``; ``raw`` is rounded down to a multiple of 8 (``channel_divisor``)
  so the complex convs keep GPU-friendly widths.
* Cheap op 1x1 conv + BN and mix as in the official code; ``cheap_ratio``
  0.5 (the official value; the paper's standalone G-GhostNet uses 0.4).
* Stem, strides and the block types are mmdet's ResNet (pytorch style: the
  stride sits on the 3x3 conv), so a plain configuration matches mmdet's
  ``ResNet`` parameter for parameter.
"""
from mmcv.cnn import ConvModule
from torch import nn

from ..registry import register_model
from .base import MultiStageBackbone
from .blocks import ResidualBlock
from .gghost_stage import GGhostStage
from .utils import make_divisible


@register_model
class GGhostResNet(MultiStageBackbone):
    """ResNet with G-Ghost stages.

    Args:
        depth (int): 18, 34, 50 or 101.
        widen_factor (float): multiplies every width (stem included),
            rounded to a multiple of 8.
        gghost_stages (Sequence[int] | None): 0-based indices of the stages
            built as :class:`GGhostStage`; ``None`` = every stage with >= 2
            blocks; ``()`` = plain ResNet.
        cheap_ratio, cheap_op, mix: see :class:`GGhostStage`.
        zero_init_mix (bool): when training from scratch, the mix's last
            BN weight starts at 0 (the branch starts as a no-op); loaded
            weights are unaffected. See :mod:`.gghost_stage`.
        mix_norm_cfg (dict | None): the mix's norm layers (default
            ``norm_cfg``), e.g. ``dict(type='SyncBN')``.
        mix_norm_eval (bool): in training, the mix's BNs normalise with
            their running statistics and do not update them (their affine
            parameters still train), as ``norm_eval`` does for every BN: the
            fix for small per-device batches. See :mod:`.gghost_stage`.
        out_indices, frozen_stages, norm_eval, zero_init_residual, init_cfg:
            the OpenMMLab backbone contract (see :class:`MultiStageBackbone`).
        with_cp (bool): gradient checkpointing in every residual block.

    Shapes: ``(N, 3, H, W)`` -> stage ``i`` of ``(N, out_channels[i],
    H / 2**(i + 2), W / 2**(i + 2))``.
    """

    # depth: (block kind, blocks per stage)
    arch_settings = {
        18: ('basic', (2, 2, 2, 2)),
        34: ('basic', (3, 4, 6, 3)),
        50: ('bottleneck', (3, 4, 6, 3)),
        101: ('bottleneck', (3, 4, 23, 3)),
    }
    base_widths = (64, 128, 256, 512)
    expansion = {'basic': 1, 'bottleneck': 4}

    def __init__(self, depth=34, widen_factor=1.0, gghost_stages=None,
                 cheap_ratio=0.5, cheap_op='conv1x1', mix=True,
                 channel_divisor=8, in_channels=3, out_indices=(0, 1, 2, 3),
                 frozen_stages=-1, norm_eval=False, zero_init_residual=True,
                 zero_init_mix=True, conv_cfg=None,
                 norm_cfg=dict(type='BN', requires_grad=True),
                 mix_norm_cfg=None, mix_norm_eval=False, with_cp=False,
                 init_cfg=None):
        super().__init__(out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval,
                         zero_init_residual=zero_init_residual,
                         zero_init_mix=zero_init_mix,
                         mix_norm_eval=mix_norm_eval, init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'unknown depth {depth!r} for GGhostResNet; '
                             f'choose from {sorted(self.arch_settings)}')
        if widen_factor <= 0:
            raise ValueError(f'widen_factor must be > 0, got {widen_factor}')
        kind, stage_blocks = self.arch_settings[depth]
        if gghost_stages is None:
            gghost_stages = [i for i, n in enumerate(stage_blocks) if n >= 2]
        for i in gghost_stages:
            if not isinstance(i, int) or not 0 <= i < len(stage_blocks):
                raise ValueError(f'gghost_stages {tuple(gghost_stages)} names '
                                 f'stage {i!r}; valid: 0..{len(stage_blocks) - 1}')
            if stage_blocks[i] < 2:
                raise ValueError(
                    f'stage {i} of ResNet-{depth} has {stage_blocks[i]} block; '
                    'a G-Ghost stage needs >= 2: drop it from gghost_stages')
        self.depth = depth
        self.gghost_stages = tuple(gghost_stages)
        block_cfg = dict(kind=kind, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         with_cp=with_cp)

        def make_block(in_ch, out_ch, stride, role=None):
            return ResidualBlock(in_ch, out_ch, stride, **block_cfg)

        stem_channels = make_divisible(64 * widen_factor, 8)
        self.stem = nn.Sequential(
            ConvModule(in_channels, stem_channels, 7, 2, 3, bias=False,
                       conv_cfg=conv_cfg, norm_cfg=norm_cfg),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.stage_names = ['stem']
        self.out_channels = []
        channels = stem_channels
        for i, num_blocks in enumerate(stage_blocks):
            width = make_divisible(self.base_widths[i] * widen_factor, 8)
            out_ch = width * self.expansion[kind]
            stride = 1 if i == 0 else 2
            if i in self.gghost_stages:
                stage = GGhostStage(
                    make_block, channels, out_ch, num_blocks, stride,
                    cheap_ratio=cheap_ratio, cheap_op=cheap_op, mix=mix,
                    channel_divisor=channel_divisor, conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg, mix_norm_cfg=mix_norm_cfg)
            else:
                stage = make_plain_stage(make_block, channels, out_ch,
                                         num_blocks, stride)
            name = f'layer{i + 1}'
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.out_channels.append(out_ch)
            channels = out_ch
        self._finish_init()


def make_plain_stage(make_block, in_channels, out_channels, num_blocks,
                     stride):
    """``num_blocks`` blocks, the first one strided: ``(N, C_in, H, W) ->
    (N, C_out, H / stride, W / stride)``."""
    blocks = [make_block(in_channels, out_channels, stride, 'first')]
    blocks += [make_block(out_channels, out_channels, 1, 'plain')
               for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)
