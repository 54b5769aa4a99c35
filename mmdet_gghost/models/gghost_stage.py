"""The G-Ghost stage: the one place where the G-Ghost idea lives.

A plain stage of ``n`` blocks at width ``c`` is rebuilt as (Han et al.,
IJCV 2022, Sec. 4)::

                 x  (N, C_in, H, W)
                 |
             first block  (full width c, does the downsampling)
                 | x0  (N, c, H', W')
        +--------+-----------------------------+
        | x0[:, :raw]                          | x0[:, raw:]
   complex blocks (width raw = (1-lambda) c)   cheap op (1x1 conv + BN,
        |  each output also pooled --+          or 3x3 depthwise + BN)
        |                            |                |
        |            GAP(x0), GAP(each complex output)|
        |                 -> mix (1x1 conv-BN-ReLU-   |
        |                    1x1 conv-BN) ------------+ (broadcast add)
        |                                             |  ReLU
        +------------- concat [complex, ghost] -------+
                            | (N, c, H', W')
                     [end block, official RegNet layout only]

``mix`` restores the deep information the cheap path lacks. It pools every
feature separately and concatenates the pooled vectors, which equals pooling
their concatenation but never materialises an ``(N, c + k*raw, H', W')``
tensor that exists only to be averaged.

Training the mix.  Its BNs normalise *pooled* vectors ``(N, C, 1, 1)``:
one value per sample and channel, so with trainable BN their batch
statistics come from ``N`` numbers per device (a block's BN sees
``N * H * W``).  Below :data:`MIX_MIN_BATCH` samples per device each stage
warns once, at its first such forward (:class:`SmallBatchMixNormWarning`;
Python shows the identical text once), and names the fixes:
``norm_eval=True`` (mmdet's default when fine-tuning), a larger per-device
batch (SyncBN for the backbone), the backbones' ``mix_norm_eval=True`` (the
mix's BNs only on their running statistics, the rest of the backbone's BNs
still train), or ``mix_norm_cfg=dict(type='SyncBN')`` on several GPUs (the
mix's BNs only, same state-dict keys, cheap: ``C`` numbers per sample).
Measured in the demo (RetinaNet fine-tuning at batch 4,
``tools/analysis/mix_ablation.py``): the mix's own statistics are not what
costs accuracy (``mix_norm_eval`` moved mAP by +0.008).  With every BN
frozen (``norm_eval``) or at batch 16 the mix is level with or ahead of no
mix; at batch 4 with trained BNs it is 0.04 mAP behind.  Consistent with
that (not proven): the pooled features come after the blocks' BNs, which
at batch 4 normalise each image against the 3 others, so in training the
mix adds a vector that depends on the batch, and at inference one that
does not.  At batch 1 batch
statistics do not exist at all (torch raises "Expected more than 1 value per
channel"; the official code has the same limit): there the mix's BNs
normalise with their running statistics, as under ``norm_eval``, and do not
update them; their affine parameters and everything else still train.

Initialisation.  With ``zero_init_mix`` (the backbones' default when they
train from scratch, as ``zero_init_residual`` for blocks) the weight of the
mix's last BN starts at zero, so the branch starts as a no-op and learns
how much to add: a freshly initialised mix otherwise adds a unit-scale,
random per-sample and per-channel offset to every ghost feature.  Loaded
checkpoints (official ones included) are unaffected.

:class:`DeployGGhostStage` is the op-lean inference form of a BN-fused stage
(:meth:`GGhostStage.deploy_form`): the same computation with fewer ops
(one ``mean`` for all pooled features, no concat copy, the mix vector as
the cheap conv's bias at batch 1).
"""
import copy
import numbers
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .blocks import DeployResidualBlock, plain_conv_act
from .deploy import capturing_graph

CHEAP_OPS = ('conv1x1', 'dwconv3x3')
# Fewer samples per device than this give the mix's trainable BNs noisy
# batch statistics (one pooled value per sample and channel).
MIX_MIN_BATCH = 8


class SmallBatchMixNormWarning(UserWarning):
    """The mix's BNs train on batch statistics of too few samples."""


def split_channels(channels, cheap_ratio, divisor=1):
    """Channels of the complex and the cheap path, as the official code.

    ``raw = int(channels * (1 - cheap_ratio) / divisor) * divisor``,
    ``cheap = channels - raw``.

    Raises:
        ValueError: if ``cheap_ratio`` is not a number in (0, 1),
            ``divisor`` not an integer >= 1, or either path would get no
            channels.
    """
    if isinstance(cheap_ratio, (bool, str)) or not isinstance(
            cheap_ratio, numbers.Real):
        raise ValueError(f'cheap_ratio must be a number in (0, 1), got '
                         f'{cheap_ratio!r}; the paper uses 0.4-0.5')
    if isinstance(divisor, bool) or not isinstance(
            divisor, numbers.Integral) or divisor < 1:
        raise ValueError(f'channel_divisor must be an integer >= 1, got '
                         f'{divisor!r}')
    if not 0 < cheap_ratio < 1:
        raise ValueError(f'cheap_ratio must be in (0, 1), got {cheap_ratio}; '
                         'the paper uses 0.4-0.5')
    raw = int(channels * (1 - cheap_ratio) / divisor) * divisor
    cheap = channels - raw
    if raw <= 0 or cheap <= 0:
        raise ValueError(
            f'a stage of {channels} channels with cheap_ratio={cheap_ratio} '
            f'and channel divisor {divisor} leaves {raw} complex and {cheap} '
            'cheap channels; both must be > 0: choose a cheap_ratio closer to '
            '0.5, or make this stage a plain stage')
    return raw, cheap


class GGhostStage(BaseModule):
    """A G-Ghost stage; any residual block type plugs in through
    ``make_block``.

    Args:
        make_block (callable): ``make_block(in_channels, out_channels, stride,
            role)`` returns a block mapping ``(N, in, H, W)`` to
            ``(N, out, H / stride, W / stride)``; ``role`` is ``'first'``,
            ``'complex'`` or ``'end'`` (``'plain'`` in plain stages) so a
            family can change e.g. the group width of its complex blocks.
        in_channels (int): ``C_in``.
        out_channels (int): ``c``, the stage's output width.
        num_blocks (int): ``n``, the depth of the plain stage it replaces.
            The complex path gets ``n - 1`` blocks (``n - 2`` with
            ``end_block``), so the stage keeps ``n`` blocks in depth.
        stride (int): stride of the first block.
        cheap_ratio (float): ``lambda``, fraction of output channels made by
            the cheap path.
        cheap_op (str): ``'conv1x1'`` (official) or ``'dwconv3x3'``.
        mix (bool): add the mix branch (on in the paper's final models).
        end_block (bool): official G-Ghost RegNet layout: one more
            full-width block after the concat.
        channel_divisor (int): the complex width is rounded down to a
            multiple of this (e.g. the complex blocks' group width).
        mix_norm_cfg (dict | None): norm layers of the mix branch; ``None``
            = ``norm_cfg``. ``dict(type='SyncBN')`` syncs only the mix's
            statistics across GPUs (see the module docstring); any BN type
            keeps the state-dict keys.

    Shapes: ``(N, C_in, H, W) -> (N, c, H / stride, W / stride)``.
    """

    def __init__(self, make_block, in_channels, out_channels, num_blocks,
                 stride=2, cheap_ratio=0.5, cheap_op='conv1x1', mix=True,
                 end_block=False, channel_divisor=1, conv_cfg=None,
                 norm_cfg=dict(type='BN', requires_grad=True),
                 act_cfg=dict(type='ReLU'), mix_norm_cfg=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if cheap_op not in CHEAP_OPS:
            raise ValueError(f'unknown cheap_op {cheap_op!r}; expected one of '
                             f'{CHEAP_OPS}')
        num_complex = num_blocks - (2 if end_block else 1)
        if num_complex < 1:
            raise ValueError(
                f'a G-Ghost stage needs at least {3 if end_block else 2} '
                f'blocks{" with end_block" if end_block else ""}, got '
                f'{num_blocks}; keep this stage plain')
        raw, cheap = split_channels(out_channels, cheap_ratio, channel_divisor)
        self.out_channels = out_channels
        self.complex_channels = raw
        self.cheap_channels = cheap
        self.with_mix = mix

        self.first = make_block(in_channels, out_channels, stride, 'first')
        self.complex_blocks = nn.Sequential(
            *[make_block(raw, raw, 1, 'complex') for _ in range(num_complex)])
        if cheap_op == 'conv1x1':
            cheap_conv = dict(kernel_size=1, padding=0, groups=1)
        else:
            cheap_conv = dict(kernel_size=3, padding=1, groups=cheap)
        self.cheap = ConvModule(cheap, cheap, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=None, bias=False,
                                **cheap_conv)
        if mix:
            pooled_channels = out_channels + raw * num_complex
            mix_norm = norm_cfg if mix_norm_cfg is None else mix_norm_cfg
            self.mix = nn.Sequential(
                ConvModule(pooled_channels, cheap, 1, conv_cfg=conv_cfg,
                           norm_cfg=mix_norm, act_cfg=act_cfg, bias=False),
                ConvModule(cheap, cheap, 1, conv_cfg=conv_cfg,
                           norm_cfg=mix_norm, act_cfg=None, bias=False))
        else:
            self.mix = None
        self.cheap_act = nn.ReLU(inplace=True)
        self._warned_small_batch = False
        self.end = (make_block(out_channels, out_channels, 1, 'end')
                    if end_block else None)

    def forward(self, x):
        """(N, C_in, H, W) -> (N, c, H', W')."""
        x0 = self.first(x)
        # Channel slices of an NCHW tensor are views; with N == 1 they are
        # even contiguous, so the convs below read them without a copy.
        complex_feat = x0[:, :self.complex_channels]
        pooled = [x0.mean((2, 3), keepdim=True)] if self.with_mix else None
        for block in self.complex_blocks:
            complex_feat = block(complex_feat)
            if pooled is not None:
                pooled.append(complex_feat.mean((2, 3), keepdim=True))
        ghost = self.cheap(x0[:, self.complex_channels:])
        if self.mix is not None:
            # (N, cheap, 1, 1) broadcast over H', W', in place
            ghost += self._mix(torch.cat(pooled, dim=1))
        out = torch.cat([complex_feat, self.cheap_act(ghost)], dim=1)
        return out if self.end is None else self.end(out)

    @property
    def mix_last_norm(self):
        """The norm layer whose zero-init makes the mix a no-op (``None``
        without mix or without a norm there)."""
        return getattr(self.mix[-1], 'norm', None) if self.mix else None

    def _mix(self, pooled):
        """``self.mix(pooled)``; below :data:`MIX_MIN_BATCH` samples in
        training it warns, at batch 1 it puts the mix's BNs on their running
        statistics (see the module docstring)."""
        if not self.training or pooled.shape[0] >= MIX_MIN_BATCH:
            return self.mix(pooled)
        stuck = [m for m in self.mix.modules() if _needs_batch_stats(m)]
        if stuck and not self._warned_small_batch:  # once per stage
            self._warned_small_batch = True
            warnings.warn(
                'G-Ghost mix BNs train on batch statistics of '
                f'{pooled.shape[0]} pooled sample(s) per device (< '
                f'{MIX_MIN_BATCH}): noisy. Set '
                'model.backbone.norm_eval=True, or a larger per-device '
                "batch (or SyncBN for the backbone), or at least "
                'mix_norm_eval=True for the mix alone',
                SmallBatchMixNormWarning, stacklevel=2)
        if pooled.shape[0] > 1:
            return self.mix(pooled)
        for bn in stuck:
            bn.training = False
        try:
            return self.mix(pooled)
        finally:
            for bn in stuck:
                bn.training = True

    def deploy_form(self):
        """The :class:`DeployGGhostStage` of this BN-fused stage, or ``None``
        when a block or conv is not one whose deploy form exists (a custom
        ``make_block`` or ``conv_cfg``): the caller then keeps this stage."""
        parts = [self.first, *self.complex_blocks]
        if self.end is not None:
            parts.append(self.end)
        blocks = [getattr(b, 'deploy_form', lambda: None)() for b in parts]
        cheap = plain_conv_act(self.cheap)
        mix = ([plain_conv_act(m) for m in self.mix]
               if self.mix is not None else [])
        if any(b is None for b in blocks) or cheap is None or \
                cheap[1] is not None or any(m is None for m in mix) or \
                cheap[0].padding_mode != 'zeros':
            return None
        if mix and (mix[0][1] is None or mix[1][1] is not None):
            return None
        return DeployGGhostStage(
            blocks[0], blocks[1:len(self.complex_blocks) + 1], cheap[0],
            [conv for conv, _ in mix],
            blocks[-1] if self.end is not None else None)


def _needs_batch_stats(module):
    """Whether ``module`` is a BN that would compute batch statistics from
    this process's batch alone (SyncBN over several processes does not)."""
    if not isinstance(module, _BatchNorm) or not module.training or \
            module.running_mean is None:
        return False
    return not (isinstance(module, nn.SyncBatchNorm) and dist.is_available()
                and dist.is_initialized() and dist.get_world_size() > 1)


class DeployGGhostStage(nn.Module):
    """Inference form of a BN-fused :class:`GGhostStage`, op for op the
    same maths with fewer ops and module calls.

    * Batch 1, NCHW (where channel slices are dense): the first block's
      output ``x0``, every complex block's output and the ghost features
      are written (``out=``) into channel slices of one buffer
      ``z = [x0 | y_1 .. y_k | ghost]``: the mix pools
      ``z[:, :c + k * raw]`` with one ``mean`` (the official pooled
      concatenation, in its order) and the stage output
      ``[y_k | ghost]`` is the last ``c`` channels of ``z`` -- a view, no
      concat copy.
    * Channels-last or batch > 1, where a channel slice is not dense and a
      conv reading one would copy it first, with ``raw == cheap`` (every
      G-Ghost ResNet stage): the first block writes ``x0``'s two halves
      into two dense tensors of a stack ``z = [x0_a, x0_b, y_1 ..
      y_{k-1}]`` (one add with a 5-d ``out``); every conv reads a dense
      block of ``z``; the last complex block and the ghost ReLU write into
      the dense output ``[y_k | ghost]``; one mean pools ``z``, one more
      ``y_k``, both into one ``(N, k + 2, raw)`` vector in the official
      order (no concat).
    * Otherwise (no mix at NCHW batch 1, or ``raw != cheap`` off NCHW
      batch 1, e.g. the first G-Ghost RegNet stage) the blocks keep their
      own outputs, each feature is pooled apart (as the eval form) and only
      the dense output ``[y_k | ghost]`` is a buffer the last complex
      block and the ghost ReLU write into (no concat copy).
    * The cheap conv's folded bias moves into the bias of the mix's second
      conv; at batch 1 the mix vector ``(1, cheap, 1, 1)`` then *is* the
      cheap conv's bias (exact), at batch > 1 it is added in place.
    * ReLU of the ghost features writes into the buffer
      (``clamp_min(out=)``).
    * Recorded as a graph (``torch.compile``, ``torch.export``, tracers:
      :func:`~mmdet_gghost.models.deploy.capturing_graph`) it computes the
      same values functionally, as the eval form does (pooled apart,
      ``torch.cat``, no write into a slice): one graph, no break, which
      inductor fuses itself.

    Per stage, beyond its blocks (5 ops each, 6 with a projection): mean,
    mix conv, ReLU, mix conv, cheap conv, ReLU = 6 ops at batch 1 in NCHW;
    7 in channels-last at batch 1 (the second mean), 8 at batch > 1 in
    either layout (the mix added), whatever the number of blocks; 2
    without mix. The path kept for ``raw != cheap``: ``n`` means + concat
    + 5 (``n + 7`` at batch > 1) and a copy before two convs; against
    ``n + 8`` in the
    BN-fused eval form.
    """

    def __init__(self, first, complex_blocks, cheap, mix_convs=(),
                 end=None):
        super().__init__()
        if not all(isinstance(b, DeployResidualBlock)
                   for b in (first, *complex_blocks)):
            raise TypeError('DeployGGhostStage needs DeployResidualBlock '
                            'first/complex blocks (they write into the '
                            'stage buffer)')
        self.first = first
        self.complex_blocks = nn.ModuleList(complex_blocks)
        self.out_channels = first.convs[-1].out_channels
        self.complex_channels = complex_blocks[-1].convs[-1].out_channels
        self.cheap_channels = cheap.out_channels
        self.with_mix = bool(mix_convs)
        cheap = copy.deepcopy(cheap)
        if self.with_mix:
            mix1, mix2 = (copy.deepcopy(m) for m in mix_convs)
            # mix2(h) + cheap(x) = (mix2.w h + mix2.b + cheap.b) + cheap.w x
            with torch.no_grad():
                mix2.bias.add_(cheap.bias)
            cheap.bias = None
            self.mix1, self.mix2 = mix1, mix2
        else:
            self.mix1 = self.mix2 = None
        self.cheap = cheap
        self.end = end

    @staticmethod
    def _layout(like):
        """The memory format a conv keeps for ``like`` (and its output)."""
        return (torch.channels_last
                if like.is_contiguous(memory_format=torch.channels_last)
                and not like.is_contiguous() else torch.contiguous_format)

    def _buffer(self, like, channels, blocks=None):
        """An empty ``(N, channels, H, W)`` tensor in ``like``'s layout;
        with ``blocks``, a ``(blocks, N, channels, H, W)`` stack of such
        tensors, each dense on its own."""
        n, _, h, w = like.shape
        buf = torch.empty(((blocks or 1) * n, channels, h, w),
                          dtype=like.dtype, device=like.device,
                          memory_format=self._layout(like))
        return buf if blocks is None else buf.unflatten(0, (blocks, n))

    def _plan(self, y):
        """Where the first block writes ``x0``, given its last conv's output
        ``y``: ``('one', z)``: NCHW batch 1 with mix, ``z = [x0 | y_1 ..
        y_k | ghost]`` (dense slices); ``('blocks', z)``: channel slices
        would not be dense (channels-last, batch > 1) and ``raw ==
        cheap``: ``z`` stacks ``x0[:, :raw], x0[:, raw:], y_1 ..
        y_{k-1}``, each a dense tensor; ``('own', None)``: otherwise."""
        raw, k = self.complex_channels, len(self.complex_blocks)
        if y.shape[0] == 1 and y.is_contiguous():
            if not self.with_mix:
                return 'own', None
            c = self.out_channels
            return 'one', self._buffer(y, 2 * c + (k - 1) * raw)
        if raw != self.cheap_channels:
            return 'own', None
        return 'blocks', self._buffer(y, raw, k + 1)

    def forward(self, x):
        """(N, C_in, H, W) -> (N, c, H', W')."""
        if capturing_graph():
            return self._functional_forward(x)
        plan = []

        def x0_destination(y):
            plan.extend(self._plan(y))
            kind, z = plan
            if kind == 'one':
                return z[:, :self.out_channels]
            # (N, 2, raw, H, W): the block writes x0's halves apart
            return z[:2].transpose(0, 1) if kind == 'blocks' else None

        x0 = self.first(x, out=x0_destination)
        kind, z = plan
        if kind == 'one':
            return self._one_buffer_forward(x0, z)
        if kind == 'blocks':
            return self._blocks_forward(z)
        return self._own_outputs_forward(x0)

    def _one_buffer_forward(self, x0, z):
        """NCHW batch 1: the blocks write into channel slices of ``z``, one
        mean pools ``[x0 | y_1 .. y_k]``, the output is a view of ``z``."""
        c, raw = self.out_channels, self.complex_channels
        k = len(self.complex_blocks)
        pooled_channels = c + k * raw
        feat = x0[:, :raw]
        for i, block in enumerate(self.complex_blocks):
            feat = block(feat, out=z[:, c + i * raw:c + (i + 1) * raw])
        mix = self.mix2(torch.relu_(self.mix1(
            z[:, :pooled_channels].mean((2, 3), keepdim=True))))
        out = z[:, pooled_channels - raw:]
        return self._finish(out, x0[:, raw:], mix)

    def _blocks_forward(self, z):
        """Channels-last or batch > 1 (``raw == cheap``): every tensor a conv
        reads is a dense block of ``z``; ``y_k`` goes into the dense output
        ``[y_k | ghost]``; two means pool ``z`` and ``y_k`` into one
        ``(N, k + 2, raw)`` vector, in the official order."""
        raw, k = self.complex_channels, len(self.complex_blocks)
        out = self._buffer(z[0], 2 * raw)
        feat = z[0]
        for i, block in enumerate(self.complex_blocks):
            feat = block(feat, out=z[i + 2] if i < k - 1 else out[:, :raw])
        mix = None
        if self.with_mix:
            n = out.shape[0]
            pooled = z.new_empty((n, k + 2, raw))
            torch.mean(z, (3, 4), out=pooled[:, :k + 1].transpose(0, 1))
            torch.mean(out[:, :raw], (2, 3), out=pooled[:, k + 1])
            mix = self.mix2(torch.relu_(self.mix1(
                pooled.view(n, (k + 2) * raw, 1, 1))))
        return self._finish(out, z[1], mix)

    def _own_outputs_forward(self, x0):
        """No mix at NCHW batch 1, or ``raw != cheap``: each block keeps its
        own output, features pooled apart, a dense output buffer."""
        raw, k = self.complex_channels, len(self.complex_blocks)
        out = self._buffer(x0, self.out_channels)
        pooled = [x0.mean((2, 3), keepdim=True)] if self.with_mix else []
        feat = x0[:, :raw]
        for i, block in enumerate(self.complex_blocks):
            feat = block(feat, out=out[:, :raw] if i == k - 1 else None)
            if pooled:
                pooled.append(feat.mean((2, 3), keepdim=True))
        mix = (self.mix2(torch.relu_(self.mix1(torch.cat(pooled, 1))))
               if pooled else None)
        return self._finish(out, x0[:, raw:], mix)

    def _finish(self, out, cheap_in, mix):
        """Ghost features ``relu(cheap(cheap_in) + mix)`` into
        ``out[:, raw:]``; then the end block, if any."""
        ghost = self._cheap(cheap_in, mix)
        torch.clamp_min(ghost, 0, out=out[:, self.complex_channels:])
        return out if self.end is None else self.end(out)

    def _functional_forward(self, x):
        """The same values without buffers, slice writes or in-place ops on
        views (for tracers and ``torch.compile``: ``capturing_graph``); the
        concat is what inductor fuses best, its producers (the last
        complex block's add + ReLU, the ghost features' mix add + ReLU)
        writing into the output directly."""
        raw = self.complex_channels
        x0 = self.first(x)
        feat = x0[:, :raw]
        pooled = [x0.mean((2, 3), keepdim=True)] if self.with_mix else []
        for block in self.complex_blocks:
            feat = block(feat)
            if pooled:
                pooled.append(feat.mean((2, 3), keepdim=True))
        mix = (self.mix2(torch.relu(self.mix1(torch.cat(pooled, 1))))
               if pooled else None)
        ghost = self.cheap(x0[:, raw:])
        if mix is not None:
            ghost = ghost + mix
        out = torch.cat([feat, torch.relu(ghost)], 1)
        return out if self.end is None else self.end(out)

    def _cheap(self, x, mix):
        """The cheap conv plus the ``(N, cheap, 1, 1)`` mix vector."""
        conv = self.cheap
        if mix is None:
            return conv(x)
        if mix.shape[0] == 1:  # per-channel bias: exact at batch 1
            return F.conv2d(x, conv.weight, mix.view(-1), conv.stride,
                            conv.padding, conv.dilation, conv.groups)
        return conv(x).add_(mix)
