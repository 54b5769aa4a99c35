"""Train an mmdet or mmpretrain config (the engine behind tools/train.py)."""
import importlib
from typing import Optional, Union

from mmengine.config import Config
from mmengine.runner import Runner

from ..checkpoint.reading import require_checkpoint, resolve_last_checkpoint
from ..hooks import use_crash_safe_checkpoints
from .build import load_config
from .classification import check_classifier_load_from
from .common import (check_datasets, prepare_distributed, register_toolbox,
                     runner_context, set_work_dir)

ResumeArg = Union[bool, str, None]


def build_train_cfg(config: str, work_dir: Optional[str] = None,
                    resume: ResumeArg = False,
                    cfg_options: Optional[dict] = None,
                    launcher: str = 'none', amp: bool = False,
                    auto_scale_lr: bool = False) -> Config:
    """Load ``config`` and apply the train CLI's options to it.

    Args:
        config: Path of an mmdet or mmpretrain config file.
        work_dir: Where logs and checkpoints go; default: the config's
            ``work_dir`` or ``./work_dirs/<config name>``.
        resume: ``True``/``'auto'`` resumes from the latest checkpoint in
            the work dir, a path resumes from that checkpoint.
        cfg_options: Overrides merged into the config (``--cfg-options``).
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        amp: Use mixed precision (``AmpOptimWrapper``), as mmdet's
            ``--amp`` does.
        auto_scale_lr: Scale the LR by the actual total batch size.
    """
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    set_work_dir(cfg, config, work_dir)
    # a checkpoint file is complete or absent (see mmdet_gghost/hooks.py)
    use_crash_safe_checkpoints(cfg)
    if amp:
        from mmengine.device import (is_cuda_available, is_mlu_available,
                                     is_npu_available)
        # AmpOptimWrapper asserts one of these
        if not (is_cuda_available() or is_npu_available()
                or is_mlu_available()):
            raise RuntimeError(
                'amp=True (--amp) needs a CUDA, NPU or MLU device; '
                'mmengine\'s AmpOptimWrapper does not support CPU-only '
                'training.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if auto_scale_lr:
        scale = cfg.get('auto_scale_lr', None)
        if not scale or 'base_batch_size' not in scale:
            raise RuntimeError('auto_scale_lr=True needs '
                               '`auto_scale_lr = dict(base_batch_size=...)` '
                               'in the config.')
        cfg.auto_scale_lr.enable = True
    if resume is True or resume == 'auto':
        # <work_dir>/last_checkpoint, also after the work dir was moved
        # (mmengine would read its absolute path); None: start afresh.
        cfg.resume = True
        cfg.load_from = resolve_last_checkpoint(cfg.work_dir)
    elif resume is not None and resume is not False:
        cfg.resume = True
        cfg.load_from = require_checkpoint(resume, 'Checkpoint to resume from')
    return cfg


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg`` or the config's ``runner_type`` (mmdet style).

    The visualizer's ``name`` is dropped: mmengine hands a second Runner in
    the process the first one's ``'visualizer'`` instance, which would write
    the second run's ``vis_data/scalars.json`` into the first run's work
    dir; unnamed, each Runner names its own after its experiment.
    """
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer.pop('name', None)
    with runner_context(cfg):
        if 'runner_type' not in cfg:
            return Runner.from_cfg(cfg)
        registry = importlib.import_module(f'{cfg.default_scope}.registry')
        return registry.RUNNERS.build(cfg)


def train(config: str, work_dir: Optional[str] = None,
          resume: ResumeArg = False, cfg_options: Optional[dict] = None,
          launcher: str = 'none', amp: bool = False,
          auto_scale_lr: bool = False) -> Runner:
    """Train ``config`` (arguments as :func:`build_train_cfg`) and return
    the finished :class:`Runner`; ``runner.work_dir`` holds the logs and
    checkpoints.  Without CUDA, distributed launchers use gloo."""
    cfg = build_train_cfg(config, work_dir, resume, cfg_options, launcher,
                          amp, auto_scale_lr)
    register_toolbox(cfg)
    # (a split without a dataloader is skipped)
    has_val = cfg.get('val_cfg', None) is not None
    check_datasets(cfg, ['train', 'val'] if has_val else ['train'])
    # The Runner loads `load_from` with strict=False: a classifier head of
    # another class count would only be warned about.
    check_classifier_load_from(cfg)
    prepare_distributed(cfg, launcher)
    runner = build_runner(cfg)
    runner.train()
    return runner
