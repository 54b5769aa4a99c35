"""The OpenMMLab backbone contract, handled once for every backbone here.

Subclasses build ``self.stem`` and one module per stage, list the stage
attribute names in ``self.stage_names`` (stem first) and their output widths in
``self.out_channels``; this base class does ``out_indices``,
``frozen_stages``, ``norm_eval`` / ``mix_norm_eval``,
``zero_init_residual`` / ``zero_init_mix``,
``Pretrained``
loading (with ``prefix``, official-checkpoint conversion and no silently
skipped keys) and the deploy (BN-fused) form.
"""

from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint.compare import compare_state_dicts
from ..checkpoint.reading import (CheckpointMismatchError, read_checkpoint,
                                  require_checkpoint)
from .blocks import ResidualBlock
from .deploy import fuse_model, to_deploy_form
from .gghost_stage import GGhostStage

DEFAULT_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


def check_contract(out_indices, frozen_stages, num_stages):
    """Validate ``out_indices`` / ``frozen_stages``; returns ``out_indices``
    as a sorted tuple of non-negative indices."""
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    out_indices = tuple(out_indices)
    if not out_indices:
        raise ValueError('out_indices is empty; give at least one stage index '
                         f'in [0, {num_stages - 1}]')
    resolved = []
    for index in out_indices:
        if not isinstance(index, int) or not -num_stages <= index < num_stages:
            raise ValueError(
                f'out_indices {out_indices} contains {index!r}, outside the '
                f'{num_stages} stages of this backbone (valid: 0..'
                f'{num_stages - 1}, or negative from the end)')
        resolved.append(index % num_stages)
    if not isinstance(frozen_stages, int) or not \
            -1 <= frozen_stages <= num_stages:
        raise ValueError(
            f'frozen_stages={frozen_stages!r} is out of range: use -1 (train '
            f'everything), 0 (freeze the stem) .. {num_stages} (freeze the '
            'stem and that many stages)')
    return tuple(sorted(set(resolved)))


class MultiStageBackbone(BaseModule):
    """Base class of the G-Ghost backbones (see module docstring).

    Forward: ``(N, 3, H, W)`` -> tuple of the stages in ``out_indices``,
    stage ``i`` being ``(N, out_channels[i], H / s_i, W / s_i)`` with strides
    ``s = (4, 8, 16, 32)``.
    """

    def __init__(self, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                 norm_eval=False, zero_init_residual=True, zero_init_mix=True,
                 mix_norm_eval=False, init_cfg=None):
        if init_cfg is None:
            init_cfg = DEFAULT_INIT_CFG
        super().__init__(init_cfg=init_cfg)
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.zero_init_mix = zero_init_mix
        self.mix_norm_eval = mix_norm_eval

    def _finish_init(self):
        """Call at the end of a subclass ``__init__``."""
        num_stages = len(self.stage_names) - 1
        self.out_indices = check_contract(self.out_indices, self.frozen_stages,
                                          num_stages)
        self._freeze_stages()

    @property
    def num_stages(self):
        return len(self.stage_names) - 1

    def forward(self, x):
        """(N, 3, H, W) -> tuple of ``len(out_indices)`` feature maps."""
        x = self.stem(x)
        outs = []
        for i, name in enumerate(self.stage_names[1:]):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self):
        for name in self.stage_names[:self.frozen_stages + 1]:
            module = getattr(self, name)
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and (self.norm_eval or self.mix_norm_eval):
            for m in self._trained_norms():
                m.eval()
        return self

    def _trained_norms(self):
        """The BNs that ``norm_eval`` (all) or ``mix_norm_eval`` (the G-Ghost
        mix branches') keep on their running statistics in training."""
        if self.norm_eval:
            roots = [self]
        else:
            roots = [m.mix for m in self.modules()
                     if isinstance(m, GGhostStage) and m.mix is not None]
        return [m for root in roots for m in root.modules()
                if isinstance(m, _BatchNorm)]

    # -- initialisation ---------------------------------------------------
    def _pretrained_cfg(self):
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [
            self.init_cfg
        ]
        for cfg in cfgs:
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                return cfg
        return None

    def init_weights(self):
        pretrained = self._pretrained_cfg()
        if pretrained is None:
            super().init_weights()
            for m in self.modules():
                if self.zero_init_residual and isinstance(m, ResidualBlock):
                    m.last_norm.weight.data.zero_()
                if self.zero_init_mix and isinstance(m, GGhostStage) and \
                        m.mix_last_norm is not None:
                    m.mix_last_norm.weight.data.zero_()
            return
        load_pretrained(self, pretrained['checkpoint'],
                        prefix=pretrained.get('prefix'),
                        map_location=pretrained.get('map_location', 'cpu'))
        self._is_init = True

    # -- deploy -----------------------------------------------------------
    def switch_to_deploy(self):
        """Switch to the op-lean inference form, in place.

        Every BN (blocks, cheap path and mix branch) is folded into its conv
        (:func:`fuse_model`), then every block, stage and conv is replaced
        by its deploy form (:func:`to_deploy_form`: plain ``nn.Conv2d``,
        in-place ReLU, fewer ops; see ``DeployGGhostStage``). Built from the
        eval form, so checkpoints (official ones included) load into the
        eval form first. Only valid for inference: the result equals the
        eval-mode model; it cannot be trained or switched back.
        """
        fuse_model(self)
        to_deploy_form(self)
        return self


def load_pretrained(module, checkpoint, prefix=None, map_location='cpu'):
    """Load ``checkpoint`` into ``module``, refusing partial matches.

    ``prefix`` (e.g. ``'backbone.'``) selects and strips a sub-model's keys,
    as mmengine's ``Pretrained`` init does. A checkpoint of the official
    G-Ghost RegNet code, or a torchvision ResNet's (e.g.
    ``torchvision://resnet34`` into ``GGhostResNet(gghost_stages=())``), is
    converted on the fly. Unlike mmengine's
    ``Pretrained`` init (``strict=False``), a key that does not map is an
    error, so that no pretrained weight is silently dropped.
    """
    from .converters import (convert_official_gghost_regnet,
                             convert_torchvision_resnet, is_official_layout,
                             is_torchvision_resnet_layout)

    require_checkpoint(
        checkpoint, 'pretrained checkpoint',
        'Train the ImageNet classifier (configs/imagenet/) or convert the '
        'official G-Ghost RegNet weights with tools/model_converters/'
        'gghost_official_to_mmpretrain.py and put the file there (the '
        'demo detector configs/demo/retinanet_gghost_r34_demo.py '
        'expects the short pre-training that `make demo` runs first: '
        'python tools/train.py configs/demo/gghost_r34_cls_pretrain.py '
        '--work-dir work_dirs/demo/pretrain_cls); to '
        'train from scratch instead, say so explicitly with '
        '--cfg-options model.backbone.init_cfg=None')
    state, _ = read_checkpoint(checkpoint, map_location=map_location)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
        if not state:
            raise CheckpointMismatchError(
                f'no key of {checkpoint} starts with prefix {prefix!r}; '
                'check init_cfg.prefix')
    logger = MMLogger.get_current_instance()
    layout = ('official G-Ghost RegNet' if is_official_layout(state) else
              'torchvision ResNet' if is_torchvision_resnet_layout(state)
              else None)
    if layout:
        convert = (convert_official_gghost_regnet if layout.startswith(
            'official') else convert_torchvision_resnet)
        state, unmapped = convert(state)
        state = {k[len('backbone.'):]: v for k, v in state.items()
                 if k.startswith('backbone.')}
        logger.info(f'{checkpoint}: {layout} layout, converted on the fly' +
                    (' (tools/model_converters/gghost_official_to_mmpretrain'
                     '.py does it once)' if layout.startswith('official')
                     else ''))
        if unmapped:
            raise CheckpointMismatchError(
                f'{checkpoint}: {layout} keys with no counterpart here: '
                f'{unmapped[:10]}')
    # the one rule of every checkpoint load (mmdet_gghost.checkpoint.compare):
    # BN num_batches_tracked and data_preprocessor.* differences are harmless
    missing, unexpected, shape = compare_state_dicts(module.state_dict(),
                                                     state)
    mismatched = [f'{k} {a} vs {b}' for k, a, b in shape]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(
            f'{checkpoint} does not match {type(module).__name__}: '
            f'{len(missing)} missing keys (e.g. {missing[:5]}), '
            f'{len(unexpected)} unexpected keys (e.g. {unexpected[:5]}), '
            f'{len(mismatched)} shape mismatches (e.g. {mismatched[:3]}). '
            'Check the arch/depth and init_cfg.prefix (classifier '
            "checkpoints need prefix='backbone.')")
    module.load_state_dict(state, strict=False)  # checked above
    logger.info(f'loaded {len(state)} tensors from {checkpoint} into '
                f'{type(module).__name__}')
