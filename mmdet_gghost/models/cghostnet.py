"""C-GhostNet: GhostNet v1 (the CPU/ARM side of the paper) as a multi-scale
backbone.

Module -> block -> network:

* :class:`GhostModule` makes ``n`` maps from ``ceil(n / ratio)`` intrinsic
  maps (1x1 conv) plus cheap 3x3 depthwise "ghost" maps of those.
* :class:`GhostBottleneck`: Ghost module (expand) -> [depthwise stride-2] ->
  [SE] -> Ghost module (project, no ReLU) + shortcut.
* :class:`CGhostNet`: stem, the 16 bottlenecks of GhostNet 1.0x grouped into
  four stages ending at strides 4/8/16/32, and the final 1x1 conv to 960
  channels in the last stage (the classification head adds pooling, the
  1280-wide layer and the classifier: mmpretrain's ``StackedLinearClsHead``).

``deploy_form()`` of a BN-fused module/bottleneck gives its op-lean
inference form (:class:`DeployGhostModule`, :class:`DeployGhostBottleneck`).
"""
import math

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from ..registry import register_model
from .base import MultiStageBackbone
from .blocks import plain_conv_act
from .deploy import capturing_graph
from .utils import make_divisible


class GhostModule(BaseModule):
    """``(N, C_in, H, W) -> (N, C_out, H, W)``; ``C_out / ratio`` maps from
    a 1x1 conv, the rest from a ``dw_size`` depthwise conv of those."""

    def __init__(self, in_channels, out_channels, ratio=2, dw_size=3,
                 relu=True, norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.out_channels = out_channels
        intrinsic = math.ceil(out_channels / ratio)
        act_cfg = dict(type='ReLU') if relu else None
        self.primary_conv = ConvModule(in_channels, intrinsic, 1, bias=False,
                                       norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.cheap_operation = ConvModule(
            intrinsic, intrinsic * (ratio - 1), dw_size, padding=dw_size // 2,
            groups=intrinsic, bias=False, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x):
        intrinsic = self.primary_conv(x)
        out = torch.cat([intrinsic, self.cheap_operation(intrinsic)], dim=1)
        return out[:, :self.out_channels]

    def deploy_form(self):
        """:class:`DeployGhostModule` of this BN-fused module (``None`` if
        a conv is not a plain BN-fused ``ConvModule``)."""
        primary = plain_conv_act(self.primary_conv)
        cheap = plain_conv_act(self.cheap_operation)
        if primary is None or cheap is None or \
                (primary[1] is None) != (cheap[1] is None):
            return None
        return DeployGhostModule(primary[0], cheap[0], self.out_channels,
                                 relu=primary[1] is not None)


class DeployGhostModule(nn.Module):
    """Inference form of a BN-fused :class:`GhostModule`. With ReLU, both
    ReLUs write straight into the output buffer (``clamp_min(out=)``) and
    the cheap conv reads the intrinsic maps from there: conv, ReLU, conv,
    ReLU -- no concat. Without ReLU the concat stays (no conv writes into a
    given buffer). Recorded as a graph (``capturing_graph``: tracers,
    ``torch.compile``) the ReLU'd maps are concatenated too."""

    def __init__(self, primary, cheap, out_channels, relu=True):
        super().__init__()
        self.primary_conv = primary
        self.cheap_operation = cheap
        self.out_channels = out_channels
        self.relu = relu

    def forward(self, x):
        intrinsic = self.primary_conv(x)
        if capturing_graph() and self.relu:
            intrinsic = torch.relu(intrinsic)
            out = torch.cat(
                [intrinsic, torch.relu(self.cheap_operation(intrinsic))], 1)
            return out[:, :self.out_channels]
        if not self.relu:
            out = torch.cat([intrinsic, self.cheap_operation(intrinsic)], 1)
            return out[:, :self.out_channels]
        n, c, h, w = intrinsic.shape
        fmt = (torch.channels_last
               if intrinsic.is_contiguous(memory_format=torch.channels_last)
               and not intrinsic.is_contiguous() else torch.contiguous_format)
        out = torch.empty((n, c + self.cheap_operation.out_channels, h, w),
                          dtype=intrinsic.dtype, device=intrinsic.device,
                          memory_format=fmt)
        intrinsic = torch.clamp_min(intrinsic, 0, out=out[:, :c])
        torch.clamp_min(self.cheap_operation(intrinsic), 0, out=out[:, c:])
        return out[:, :self.out_channels]


class SqueezeExcite(BaseModule):
    """GhostNet's SE: GAP -> 1x1 reduce -> ReLU -> 1x1 expand -> hard
    sigmoid, multiplied onto the input."""

    def __init__(self, channels, se_ratio=0.25, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        reduced = make_divisible(channels * se_ratio, 4)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        w = self.conv_expand(self.act(self.conv_reduce(x.mean((2, 3),
                                                              keepdim=True))))
        return x * self.gate(w)


class GhostBottleneck(BaseModule):
    """``(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)``."""

    def __init__(self, in_channels, mid_channels, out_channels, kernel_size=3,
                 stride=1, se_ratio=0.0, norm_cfg=dict(type='BN'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.ghost1 = GhostModule(in_channels, mid_channels, relu=True,
                                  norm_cfg=norm_cfg)
        self.conv_dw = ConvModule(
            mid_channels, mid_channels, kernel_size, stride,
            (kernel_size - 1) // 2, groups=mid_channels, bias=False,
            norm_cfg=norm_cfg, act_cfg=None) if stride > 1 else None
        self.se = SqueezeExcite(mid_channels, se_ratio) if se_ratio else None
        self.ghost2 = GhostModule(mid_channels, out_channels, relu=False,
                                  norm_cfg=norm_cfg)
        if in_channels == out_channels and stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                ConvModule(in_channels, in_channels, kernel_size, stride,
                           (kernel_size - 1) // 2, groups=in_channels,
                           bias=False, norm_cfg=norm_cfg, act_cfg=None),
                ConvModule(in_channels, out_channels, 1, bias=False,
                           norm_cfg=norm_cfg, act_cfg=None))

    def forward(self, x):
        out = self.ghost1(x)
        if self.conv_dw is not None:
            out = self.conv_dw(out)
        if self.se is not None:
            out = self.se(out)
        return self.ghost2(out) + self.shortcut(x)

    def deploy_form(self):
        """:class:`DeployGhostBottleneck` of this BN-fused bottleneck
        (``None`` if a part has no deploy form)."""
        ghost1, ghost2 = self.ghost1.deploy_form(), self.ghost2.deploy_form()
        convs = [plain_conv_act(m) for m in (
            [self.conv_dw] if self.conv_dw is not None else [])]
        shortcut = ([] if isinstance(self.shortcut, nn.Identity) else
                    [plain_conv_act(m) for m in self.shortcut])
        if ghost1 is None or ghost2 is None or \
                any(p is None or p[1] is not None
                    for p in convs + shortcut):
            return None
        return DeployGhostBottleneck(
            ghost1, convs[0][0] if convs else None, self.se, ghost2,
            nn.Sequential(*[conv for conv, _ in shortcut])
            if shortcut else None)


class DeployGhostBottleneck(nn.Module):
    """Inference form of a BN-fused :class:`GhostBottleneck`: plain convs,
    no ``Identity`` shortcut call, the shortcut added in place into the
    second Ghost module's fresh output (out of place when recorded as a
    graph, ``capturing_graph``: that output is a channel slice of a
    concat, and an in-place op on a view is a write into a slice)."""

    def __init__(self, ghost1, conv_dw, se, ghost2, shortcut=None):
        super().__init__()
        self.ghost1 = ghost1
        self.conv_dw = conv_dw
        self.se = se
        self.ghost2 = ghost2
        self.shortcut = shortcut

    def forward(self, x):
        out = self.ghost1(x)
        if self.conv_dw is not None:
            out = self.conv_dw(out)
        if self.se is not None:
            out = self.se(out)
        out = self.ghost2(out)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return out + shortcut if capturing_graph() else out.add_(shortcut)


@register_model
class CGhostNet(MultiStageBackbone):
    """GhostNet v1 backbone with outputs at strides 4/8/16/32.

    Args:
        widen_factor (float): width multiplier (0.5, 1.0, 1.3 published);
            widths are rounded to multiples of 4.
        out_indices, frozen_stages, norm_eval, init_cfg: the OpenMMLab
            backbone contract. ``zero_init_residual`` has no effect (GhostNet
            blocks end without ReLU and are not zero-initialised).

    Shapes: ``(N, 3, H, W)`` -> stage ``i`` of ``(N, out_channels[i],
    H / 2**(i + 2), W / 2**(i + 2))``; at ``widen_factor=1.0`` the widths are
    ``(24, 40, 112, 960)``.
    """

    # Per stage: bottlenecks as (kernel, expansion width, out width, SE ratio,
    # stride), GhostNet 1.0x; stages end at strides 4, 8, 16 and 32.
    arch_settings = [
        [(3, 16, 16, 0, 1), (3, 48, 24, 0, 2), (3, 72, 24, 0, 1)],
        [(5, 72, 40, 0.25, 2), (5, 120, 40, 0.25, 1)],
        [(3, 240, 80, 0, 2), (3, 200, 80, 0, 1), (3, 184, 80, 0, 1),
         (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1),
         (3, 672, 112, 0.25, 1)],
        [(5, 672, 160, 0.25, 2), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1),
         (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)],
    ]
    last_channels = 960

    def __init__(self, widen_factor=1.0, in_channels=3,
                 out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 zero_init_residual=False, norm_cfg=dict(type='BN'),
                 with_cp=False, init_cfg=None):
        super().__init__(out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval,
                         zero_init_residual=zero_init_residual,
                         init_cfg=init_cfg)
        if widen_factor <= 0:
            raise ValueError(f'widen_factor must be > 0, got {widen_factor}')
        if with_cp:
            raise ValueError('with_cp is not supported by CGhostNet (its '
                             'activations are small); set with_cp=False')
        self.widen_factor = widen_factor
        stem_channels = make_divisible(16 * widen_factor, 4)
        self.stem = ConvModule(in_channels, stem_channels, 3, 2, 1,
                               bias=False, norm_cfg=norm_cfg)
        self.stage_names = ['stem']
        self.out_channels = []
        channels = stem_channels
        for i, stage_cfg in enumerate(self.arch_settings):
            blocks = []
            for kernel, mid, out, se_ratio, stride in stage_cfg:
                out = make_divisible(out * widen_factor, 4)
                blocks.append(GhostBottleneck(
                    channels, make_divisible(mid * widen_factor, 4), out,
                    kernel, stride, se_ratio, norm_cfg=norm_cfg))
                channels = out
            if i == len(self.arch_settings) - 1:
                last = make_divisible(self.last_channels * widen_factor, 4)
                blocks.append(ConvModule(channels, last, 1, bias=False,
                                         norm_cfg=norm_cfg))
                channels = last
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            self.stage_names.append(f'layer{i + 1}')
            self.out_channels.append(channels)
        self._finish_init()
