"""G-Ghost RegNetX: the official ``g_ghost_regnet.py`` layout, parameter for
parameter.

Official layout: stem 3x3/2 conv to 32 channels; RegNetX blocks (1x1 -> 3x3
group conv -> 1x1, no SE); ``layer1`` plain; ``layer3`` always a G-Ghost
stage; ``layer2``/``layer4`` G-Ghost stages when deeper than 2 blocks. A
G-Ghost stage has a full-width ``end`` block after the concat, its complex
blocks use ``int(0.75 * group_width)`` channels per group and its complex
width is rounded to a multiple of that.
"""
from mmcv.cnn import ConvModule

from ..registry import register_model
from .base import MultiStageBackbone
from .blocks import ResidualBlock
from .gghost_resnet import make_plain_stage
from .gghost_stage import GGhostStage


def _arch(depths, widths, group_width):
    return dict(depths=depths, widths=widths, group_width=group_width)


@register_model
class GGhostRegNet(MultiStageBackbone):
    """G-Ghost RegNetX.

    Args:
        arch (str | dict): a key of :attr:`arch_settings` (e.g.
            ``'gghost_regnetx_3.2gf'``) or a dict with ``depths``, ``widths``
            (4 stages each) and ``group_width``.
        gghost_stages (Sequence[int] | None): 0-based stages built as
            :class:`GGhostStage`; ``None`` = the official rule.
        cheap_ratio (float): ``lambda``; 0.5 in the official models.
        cheap_op, mix: see :class:`GGhostStage`.
        complex_group_width_ratio (float): group width of the complex blocks
            relative to the others (0.75 officially).
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
            the OpenMMLab backbone contract.

    Shapes: ``(N, 3, H, W)`` -> stage ``i`` of ``(N, widths[i],
    H / 2**(i + 2), W / 2**(i + 2))``.
    """

    # From the official g_ghost_regnet.py: depths, widths, group width.
    arch_settings = {
        'gghost_regnetx_200mf': _arch((1, 1, 4, 7), (24, 56, 152, 368), 8),
        'gghost_regnetx_400mf': _arch((1, 2, 7, 12), (32, 64, 160, 384), 16),
        'gghost_regnetx_600mf': _arch((1, 3, 5, 7), (48, 96, 240, 528), 24),
        'gghost_regnetx_800mf': _arch((1, 3, 7, 5), (64, 128, 288, 672), 16),
        'gghost_regnetx_1.6gf': _arch((2, 4, 10, 2), (72, 168, 408, 912), 24),
        'gghost_regnetx_3.2gf': _arch((2, 6, 15, 2), (96, 192, 432, 1008),
                                      48),
        'gghost_regnetx_4.0gf': _arch((2, 5, 14, 2), (80, 240, 560, 1360),
                                      40),
        'gghost_regnetx_6.4gf': _arch((2, 4, 10, 1), (168, 392, 784, 1624),
                                      56),
        'gghost_regnetx_8.0gf': _arch((2, 5, 15, 1), (80, 240, 720, 1920),
                                      120),
        'gghost_regnetx_12gf': _arch((2, 5, 11, 1), (224, 448, 896, 2240),
                                     112),
        'gghost_regnetx_16gf': _arch((2, 6, 13, 1), (256, 512, 896, 2048),
                                     128),
        'gghost_regnetx_32gf': _arch((2, 7, 13, 1), (336, 672, 1344, 2520),
                                     168),
    }
    stem_channels = 32

    def __init__(self, arch='gghost_regnetx_3.2gf', gghost_stages=None,
                 cheap_ratio=0.5, cheap_op='conv1x1', mix=True,
                 complex_group_width_ratio=0.75, in_channels=3,
                 out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 zero_init_residual=True, zero_init_mix=True, conv_cfg=None,
                 norm_cfg=dict(type='BN', requires_grad=True),
                 mix_norm_cfg=None, mix_norm_eval=False, with_cp=False,
                 init_cfg=None):
        super().__init__(out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval,
                         zero_init_residual=zero_init_residual,
                         zero_init_mix=zero_init_mix,
                         mix_norm_eval=mix_norm_eval, init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise ValueError(
                    f'unknown arch {arch!r} for GGhostRegNet; choose from '
                    f'{sorted(self.arch_settings)} or pass a dict(depths=..., '
                    'widths=..., group_width=...)')
            arch = self.arch_settings[arch]
        elif not (isinstance(arch, dict)
                  and {'depths', 'widths', 'group_width'} <= set(arch)):
            raise ValueError('arch must be an arch name or a dict with depths, '
                             f'widths and group_width; got {arch!r}')
        depths, widths = tuple(arch['depths']), tuple(arch['widths'])
        group_width = arch['group_width']
        if len(depths) != 4 or len(widths) != 4:
            raise ValueError(f'arch needs 4 depths and 4 widths, got {depths} '
                             f'and {widths}')
        if gghost_stages is None:
            gghost_stages = [i for i in (1, 2, 3) if i == 2 or depths[i] > 2]
        for i in gghost_stages:
            if not isinstance(i, int) or not 0 <= i < 4 or depths[i] < 3:
                raise ValueError(
                    f'gghost_stages {tuple(gghost_stages)}: stage {i!r} must '
                    'be in 0..3 and have >= 3 blocks (first + complex + end); '
                    f'depths are {depths}')
        if not 0 < complex_group_width_ratio <= 1:
            raise ValueError('complex_group_width_ratio must be in (0, 1], '
                             f'got {complex_group_width_ratio}')
        self.arch = dict(arch)
        self.gghost_stages = tuple(gghost_stages)
        complex_gw = int(group_width * complex_group_width_ratio)
        block_cfg = dict(kind='regnetx', conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         with_cp=with_cp)

        def make_block(in_ch, out_ch, stride, role):
            gw = complex_gw if role == 'complex' else group_width
            return ResidualBlock(in_ch, out_ch, stride, group_width=gw,
                                 **block_cfg)

        self.stem = ConvModule(in_channels, self.stem_channels, 3, 2, 1,
                               bias=False, conv_cfg=conv_cfg,
                               norm_cfg=norm_cfg)
        self.stage_names = ['stem']
        self.out_channels = list(widths)
        channels = self.stem_channels
        for i, (depth, width) in enumerate(zip(depths, widths)):
            if i in self.gghost_stages:
                stage = GGhostStage(
                    make_block, channels, width, depth, stride=2,
                    cheap_ratio=cheap_ratio, cheap_op=cheap_op, mix=mix,
                    end_block=True, channel_divisor=complex_gw,
                    conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                    mix_norm_cfg=mix_norm_cfg)
            else:
                stage = make_plain_stage(make_block, channels, width, depth, 2)
            self.add_module(f'layer{i + 1}', stage)
            self.stage_names.append(f'layer{i + 1}')
            channels = width
        self._finish_init()
