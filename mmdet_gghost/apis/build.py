"""One way from a config (+ checkpoint) to a ready model, for every tool:
:func:`load_config` (the one config loader), :func:`build_model` (detector
or classifier, by ``default_scope``) and :func:`build_backbone_from_arch`.
Nothing here downloads (:func:`strip_pretrained`)."""
import copy
import importlib
import logging
import os
import os.path as osp
import re
from typing import Optional

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm

from ..config_bases import PREFIX, enable_package_bases, resolve_config
from .weights import load_state_dict_checked, read_checkpoint


def load_config(config, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file (or deep-copy a ``Config``), ``cfg_options``
    (``--cfg-options``) merged; ``config`` (and a ``_base_``) may be
    ``'mmdet_gghost::<config>'`` (:mod:`mmdet_gghost.config_bases`).

    Returns:
        Config: ``custom_imports`` imported, every ``*_dataloader`` loading
        images by ``CheckedLoadImageFromFile`` (errors name the file;
        ``test_pipeline`` is left for mmdeploy).

    Raises:
        FileNotFoundError: ``Config file not found: <path>``.
    """
    enable_package_bases()
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        path = os.fspath(config)
        if path.startswith(PREFIX):
            path = resolve_config(path)
        if not osp.isfile(path):
            raise FileNotFoundError(f'Config file not found: {path}')
        cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports', None):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    from mmdet_gghost.datasets.checks import use_checked_image_loader
    use_checked_image_loader(cfg)
    return cfg


def strip_pretrained(cfg) -> int:
    """Set every ``init_cfg`` that loads pretrained weights to ``None``
    (``init_weights`` must not download or open them); returns how many
    were removed."""
    if isinstance(cfg, (list, tuple)):
        return sum(strip_pretrained(v) for v in cfg)
    if not isinstance(cfg, dict):
        return 0
    n = 0
    for k, v in cfg.items():
        if k != 'init_cfg' or v is None:
            n += strip_pretrained(v)
        elif any(isinstance(i, dict) and i.get('type') == 'Pretrained'
                 for i in (v if isinstance(v, (list, tuple)) else [v])):
            cfg[k] = None
            n += 1
    return n


# ``build_model``'s keyword of the same name shadows the function there.
_strip_pretrained = strip_pretrained


def init_weights_quietly(model: nn.Module, seed: int = 0) -> None:
    """``model.init_weights()`` under a fixed seed, without mmengine's
    per-parameter INFO dump; the global RNG state is restored."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.init_weights()
    finally:
        logger.setLevel(level)


def register_scope(scope: str):
    """Register every module of the toolbox ``scope`` (``'mmdet'``,
    ``'mmpretrain'``; the default scope is left alone) and our backbones;
    returns its ``registry`` module.  ValueError if it is not installed."""
    import mmdet_gghost.models  # noqa: F401  (registers the backbones)
    try:
        registry = importlib.import_module(f'{scope}.registry')
        utils = importlib.import_module(f'{scope}.utils')
    except ImportError as error:
        raise ValueError(f'Unsupported default_scope {scope!r} '
                         "(expected 'mmdet' or 'mmpretrain'): "
                         f'{error}') from error
    utils.register_all_modules(init_default_scope=False)
    return registry


def _build_in_scope(model_cfg: dict, scope: str) -> nn.Module:
    """``model_cfg`` built from the ``MODELS`` registry of ``scope``."""
    from mmengine.registry import DefaultScope
    registry = register_scope(scope)
    # Registry.build otherwise follows the default scope the process last
    # initialised: an mmdet config could be built from mmpretrain's registry
    # (or vice versa) when both are used in one process.
    with DefaultScope.overwrite_default_scope(scope):
        return registry.MODELS.build(model_cfg)


def _keep_checkpoint_meta(model: nn.Module, cfg: Config, scope: str,
                          meta: dict) -> None:
    """What mmdet's ``init_detector`` / mmpretrain's ``get_model`` attach:
    the config, and the class names saved in the checkpoint's meta."""
    model.cfg = cfg
    dataset_meta = meta.get('dataset_meta', None)
    if dataset_meta is None and 'CLASSES' in meta:
        dataset_meta = {'classes': meta['CLASSES']}
    if scope == 'mmpretrain':
        model._config = cfg  # what mmpretrain's inferencers read
        if dataset_meta is not None:
            model._dataset_meta = dataset_meta
    elif dataset_meta is not None:
        model.dataset_meta = {k.lower(): v for k, v in dataset_meta.items()}


def build_model(config,
                checkpoint: Optional[str] = None,
                *,
                cfg_options: Optional[dict] = None,
                device='cpu',
                allow_partial_checkpoint: bool = False,
                init_seed: Optional[int] = 0,
                strip_pretrained: bool = True) -> nn.Module:
    """A ready model from a config (+ checkpoint), like mmdet's
    ``init_detector`` / mmpretrain's ``get_model`` but strict.

    ``cfg.model`` (with ``strip_pretrained``, no ``Pretrained``
    ``init_cfg``: no hub access) is built from the registry of
    ``cfg.default_scope`` (default ``'mmdet'``), SyncBN reverted to BN.
    A ``checkpoint`` is read by the safe loader and must fit
    (:func:`~.weights.check_state_dict_fits`); ``allow_partial_checkpoint``
    inits first, then loads what fits and logs the rest.  Without one,
    ``init_weights()`` runs under ``init_seed`` (:func:`init_weights_quietly`:
    two builds are equal); ``init_seed=None`` keeps the constructor init
    from the global RNG, as the Runner sees a model before ``init_weights``.

    Returns:
        nn.Module: on ``device``, in eval mode, with ``model.cfg`` (also
        ``model._config`` for mmpretrain) and the checkpoint's
        ``dataset_meta`` (class names) attached.

    Raises:
        FileNotFoundError: missing config or checkpoint file.
        CheckpointMismatchError: the checkpoint does not fit (names the
            tensors and ``--allow-partial-checkpoint``).
        ValueError: a ``default_scope`` whose toolbox is not installed.
    """
    cfg = load_config(config, cfg_options)
    if strip_pretrained:
        _strip_pretrained(cfg.model)
    scope = cfg.get('default_scope', None) or 'mmdet'
    model_cfg = copy.deepcopy(cfg.model)
    # mmpretrain configs keep ``data_preprocessor`` at top level; mmengine's
    # Runner merges it into the model the same way.
    if cfg.get('data_preprocessor', None) is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    # constructors draw random values too
    with torch.random.fork_rng(devices=[], enabled=init_seed is not None):
        if init_seed is not None:
            torch.manual_seed(init_seed)
        model = revert_sync_batchnorm(_build_in_scope(model_cfg, scope))
    meta = {}
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
        state, meta = read_checkpoint(checkpoint)  # clear missing-file error
        if allow_partial_checkpoint and init_seed is not None:
            init_weights_quietly(model, init_seed)
        load_state_dict_checked(model, state, checkpoint,
                                allow_partial_checkpoint)
    elif init_seed is not None and hasattr(model, 'init_weights'):
        init_weights_quietly(model, init_seed)
    _keep_checkpoint_meta(model, cfg, scope, meta)
    model = model.to(device)
    model.eval()  # not chained: mmdet's ResNet.train() returns None
    return model


def build_model_from_config(cfg, cfg_options: Optional[dict] = None):
    """``(model, cfg, scope)``: :func:`build_model` with no checkpoint, no
    ``init_weights`` and nothing stripped (eval mode, CPU); ``scope`` is
    ``'mmdet'`` or ``'mmpretrain'``."""
    model = build_model(cfg, cfg_options=cfg_options, init_seed=None,
                        strip_pretrained=False)
    return model, model.cfg, model.cfg.get('default_scope', None) or 'mmdet'


# regex -> backbone type and the key that the name's number (group 1) or,
# without a group, the whole name sets
_ARCH_PATTERNS = (
    (r'gghost_resnet(\d+)', 'GGhostResNet', 'depth', int),
    (r'resnet(\d+)', 'ResNet', 'depth', int),
    (r'gghost_regnetx_[\d.]+[mg]f', 'GGhostRegNet', 'arch', str),
    (r'regnetx_[\d.]+[mg]f', 'RegNet', 'arch', str),
    (r'cghostnet_([\d.]+)x', 'CGhostNet', 'widen_factor', float),
)

ARCH_EXAMPLES = ('gghost_resnet34', 'resnet34', 'gghost_regnetx_3.2gf',
                 'regnetx_3.2gf', 'cghostnet_1.0x')


def arch_to_backbone_cfg(arch: str) -> dict:
    """Map a backbone name such as ``'gghost_resnet34'`` to a config dict
    (``dict(type='GGhostResNet', depth=34)``); ValueError for a name none
    of the :data:`ARCH_EXAMPLES` forms match."""
    name = arch.strip().lower()
    for pattern, type_, key, convert in _ARCH_PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            return {'type': type_, key: convert(m.group(m.lastindex or 0))}
    raise ValueError(f'Unknown backbone arch {arch!r}; expected a config '
                     f'file or one of the forms {", ".join(ARCH_EXAMPLES)}')


def build_backbone_from_arch(arch: str, **overrides) -> nn.Module:
    """Build a bare backbone (eval mode, constructor init, no
    ``init_weights``) from an arch name; ``overrides`` update its config."""
    cfg = arch_to_backbone_cfg(arch)
    cfg.update(overrides)
    model = _build_in_scope(cfg, 'mmdet')
    model.eval()  # not chained: mmdet's ResNet.train() returns None
    return model
