"""Residual blocks that plug into plain stages and into :class:`GGhostStage`.

One class covers the three block families the paper uses, because they only
differ in their conv stack:

=============  =========================================  ====================
``kind``       conv stack (each conv + norm, ReLU between)  inner width
=============  =========================================  ====================
``basic``      3x3 (stride) -> 3x3                          ``out``
``bottleneck`` 1x1 -> 3x3 (stride) -> 1x1                   ``out // 4``
``regnetx``    1x1 -> 3x3 grouped (stride) -> 1x1           ``out``
=============  =========================================  ====================

The shortcut is the identity when shapes match, else a strided 1x1 conv +
norm (``downsample``); ReLU follows the residual add. Parameter names
(``conv1.conv``, ``conv1.bn``, ..., ``downsample.conv``) are what the
official-checkpoint converter maps to.

:class:`DeployResidualBlock` is the op-lean inference form of a BN-fused
block (plain ``nn.Conv2d`` with the folded bias, in-place ReLUs), built by
:meth:`ResidualBlock.deploy_form`.
"""
import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

BLOCK_KINDS = ('basic', 'bottleneck', 'regnetx')


class ResidualBlock(BaseModule):
    """A residual block.

    Args:
        in_channels (int): ``C_in`` of the input ``(N, C_in, H, W)``.
        out_channels (int): ``C_out`` of the output
            ``(N, C_out, H / stride, W / stride)``.
        stride (int): stride of the 3x3 conv (and of the projection).
        kind (str): one of :data:`BLOCK_KINDS`.
        group_width (int, optional): channels per group of the 3x3 conv of a
            ``regnetx`` block (RegNet's ``w / g``); ignored otherwise.
        expansion (int): ``out_channels / inner width`` of a ``bottleneck``.
        with_cp (bool): recompute the block in backward to save memory.
    """

    def __init__(self, in_channels, out_channels, stride=1, kind='basic',
                 group_width=None, expansion=4, conv_cfg=None,
                 norm_cfg=dict(type='BN', requires_grad=True),
                 act_cfg=dict(type='ReLU'), with_cp=False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if kind not in BLOCK_KINDS:
            raise ValueError(f'unknown block kind {kind!r}; expected one of '
                             f'{BLOCK_KINDS}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kind = kind
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=False)
        if kind == 'basic':
            convs = [
                ConvModule(in_channels, out_channels, 3, stride, 1,
                           act_cfg=act_cfg, **common),
                ConvModule(out_channels, out_channels, 3, 1, 1, act_cfg=None,
                           **common),
            ]
        else:
            if kind == 'bottleneck':
                mid, groups = out_channels // expansion, 1
            else:
                mid = out_channels
                gw = min(mid, group_width or mid)
                if mid % gw:
                    raise ValueError(
                        f'regnetx block width {mid} is not a multiple of its '
                        f'group width {gw}; pick widths divisible by the '
                        'group width')
                groups = mid // gw
            convs = [
                ConvModule(in_channels, mid, 1, 1, 0, act_cfg=act_cfg,
                           **common),
                ConvModule(mid, mid, 3, stride, 1, groups=groups,
                           act_cfg=act_cfg, **common),
                ConvModule(mid, out_channels, 1, 1, 0, act_cfg=None, **common),
            ]
        for i, conv in enumerate(convs, 1):
            self.add_module(f'conv{i}', conv)
        self.num_convs = len(convs)
        if stride != 1 or in_channels != out_channels:
            self.downsample = ConvModule(in_channels, out_channels, 1, stride,
                                         0, act_cfg=None, **common)
        else:
            self.downsample = None
        self.act = nn.ReLU(inplace=True)

    @property
    def last_norm(self):
        """The norm layer whose zero-init turns the block into identity."""
        return getattr(self, f'conv{self.num_convs}').norm

    def _residual(self, x):
        out = x
        for i in range(1, self.num_convs + 1):
            out = getattr(self, f'conv{i}')(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        # in place, as mmdet's/mmpretrain's blocks: one full-size tensor
        # less to allocate and write per block (autograd-safe: no op before
        # needs its output for backward)
        out += shortcut
        return out

    def forward(self, x):
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.act(out)

    def deploy_form(self):
        """The :class:`DeployResidualBlock` of this BN-fused block, or
        ``None`` when a part is not the plain conv -> folded norm -> ReLU
        this class builds (e.g. a custom ``conv_cfg``)."""
        parts = [plain_conv_act(getattr(self, f'conv{i}'))
                 for i in range(1, self.num_convs + 1)]
        if self.downsample is not None:
            parts.append(plain_conv_act(self.downsample))
        if any(p is None for p in parts) or not isinstance(self.act, nn.ReLU):
            return None
        acts = [act is not None for _, act in parts]
        # ReLU after every conv of the stack but the last, none on the
        # shortcut: anything else is not the block we know how to rebuild
        expected = [True] * (self.num_convs - 1) + [False] * (
            len(parts) - self.num_convs + 1)
        if acts != expected:
            return None
        convs = [conv for conv, _ in parts]
        return DeployResidualBlock(
            convs[:self.num_convs],
            None if self.downsample is None else convs[-1])


def plain_conv_act(module):
    """``(conv, act)`` of a BN-fused ``ConvModule``, ``act`` being ``None``
    or an in-place ``nn.ReLU``; ``None`` if the module is anything else
    (another order, a norm left, spectral norm or explicit padding, a conv
    that is not ``nn.Conv2d``, another activation)."""
    if not isinstance(module, ConvModule) or \
            module.order != ('conv', 'norm', 'act') or \
            module.with_spectral_norm or module.with_explicit_padding or \
            type(module.conv) is not nn.Conv2d:
        return None
    if module.with_norm and not isinstance(module.norm, nn.Identity):
        return None  # a norm that was not folded
    if not module.with_activation:
        return module.conv, None
    if type(module.activate) is not nn.ReLU:
        return None
    return module.conv, nn.ReLU(inplace=True)


class DeployResidualBlock(nn.Module):
    """Inference form of a BN-fused :class:`ResidualBlock`: the same convs
    (folded bias) called directly, ReLU in place, the residual added in
    place -- 5 ops per block (6 with a projection shortcut), as a fused
    mmdet ResNet block, and no ``ConvModule``/``Identity`` calls.

    ``forward(x, out=...)`` writes the result into ``out`` (e.g. a channel
    slice of a larger buffer the caller concatenates into) instead of a new
    tensor, at the same op count; ``out`` may also be a callable that gets
    the last conv's output (for its shape) and returns the destination
    (``None``: a new tensor). A 5-d ``out`` ``(N, parts, C_out / parts, H,
    W)`` receives the channels in ``parts`` equal groups, so each group may
    live in a tensor of its own (e.g. dense channel halves in channels-last,
    where a channel slice of one tensor is not dense); the block then
    returns that 5-d view.

    Args:
        convs (list[nn.Conv2d]): the conv stack; ReLU after every conv but
            the last.
        downsample (nn.Conv2d | None): projection shortcut.
    """

    def __init__(self, convs, downsample=None):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.downsample = downsample

    def forward(self, x, out=None):
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        y = x
        for conv in self.convs[:-1]:
            y = torch.relu_(conv(y))
        y = self.convs[-1](y)
        shortcut = x if self.downsample is None else self.downsample(x)
        if callable(out):
            out = out(y)
        if out is None:
            out = y.add_(shortcut)
        else:
            if out.dim() == 5:  # (N, parts, C_out / parts, H, W)
                y, shortcut = (t.unflatten(1, out.shape[1:3])
                               for t in (y, shortcut))
            torch.add(y, shortcut, out=out)
        return torch.relu_(out)
