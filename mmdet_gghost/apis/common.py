"""Helpers shared by :mod:`mmdet_gghost.apis.train` and ``.test``: toolbox
registration, dataset checks, CPU-friendly distributed setup, CLI glue."""
import contextlib
import logging
import os
import os.path as osp
import sys
from typing import Optional, Sequence
from unittest import mock

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log

from ..checkpoint import NotACheckpointError, UnsafeCheckpointError
from ..datasets.checks import DatasetError, check_dataset_cfg
from .build import load_config  # noqa: F401  (re-exported, the one loader)
from .build import register_scope
from .weights import CheckpointMismatchError

# ``launcher`` values understood by mmengine's Runner.
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')

# What the CLIs report as one line instead of a traceback: missing files,
# refused checkpoints, bad data sets.
USER_ERRORS = (FileNotFoundError, UnsafeCheckpointError,
               CheckpointMismatchError, NotACheckpointError, DatasetError)


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: Optional[str]) -> None:
    """Work dir priority, like mmdet: argument > config > config name."""
    if work_dir is not None:
        cfg.work_dir = os.fspath(work_dir)
    elif cfg.get('work_dir', None) is None:
        # 'mmdet_gghost::x.py' (a shipped config) -> 'x'
        name = osp.splitext(osp.basename(
            os.fspath(config_path).split('::')[-1]))[0]
        cfg.work_dir = osp.join('./work_dirs', name)


def register_toolbox(cfg: Config) -> str:
    """:func:`~.build.register_scope` of ``cfg.default_scope`` (the Runner
    sets the default scope itself); returns the scope."""
    scope = cfg.get('default_scope', None)
    if not scope:
        raise ValueError(
            "The config has no `default_scope`; set it to 'mmdet' or "
            "'mmpretrain' so the tools know which toolbox to use.")
    register_scope(scope)
    return scope


def check_datasets(cfg: Config, splits: Sequence[str]) -> None:
    """Validate the datasets of ``<split>_dataloader`` before building:
    clear errors (:func:`~mmdet_gghost.datasets.checks.check_dataset_cfg`)
    long before mmengine would fail inside a worker.  Skipped with
    ``data_check = False`` in the config (``--no-data-check``)."""
    if cfg.get('data_check', True) is False:
        return
    for split in splits:
        loader = cfg.get(f'{split}_dataloader', None)
        if loader is not None and loader.get('dataset', None) is not None:
            check_dataset_cfg(loader.dataset)


def prepare_distributed(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; make ``launcher != 'none'`` work without CUDA.

    mmengine assumes CUDA for distributed runs: backend ``nccl`` (mmdet's
    default), DDP with ``device_ids=[LOCAL_RANK]`` (rejected for CPU
    modules), ``torch.cuda.set_device`` in ``init_dist``.  Without CUDA:
    ``gloo``, ``device_ids=None`` and the Runner built in
    :func:`runner_context`.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, '
                         f'got {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.get('env_cfg', None) is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg', None) is None:
        cfg.env_cfg.dist_cfg = dict()
    backend = cfg.env_cfg.dist_cfg.get('backend', 'nccl')
    # Only rank 0 says it (the process group, and so the logger's rank,
    # does not exist yet).
    if backend != 'gloo' and os.environ.get('RANK', '0') == '0':
        print_log(f"No CUDA device: using the 'gloo' distributed backend "
                  f'instead of {backend!r}.', logger='current',
                  level=logging.WARNING)
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    _use_cpu_ddp(cfg)


def runner_context(cfg: Config):
    """Where to build the Runner: without CUDA, a distributed Runner's
    ``init_dist`` skips ``torch.cuda.set_device`` (gloo needs no device)."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return contextlib.nullcontext()
    return mock.patch.object(torch.cuda, 'set_device', lambda device: None)


def _use_cpu_ddp(cfg: Config) -> None:
    """Build (MM)DistributedDataParallel without ``device_ids`` on CPU."""
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        # Same defaults as Runner.wrap_model uses without a wrapper cfg.
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
        return
    cls = wrapper.get('type', 'MMDistributedDataParallel')
    cls = MODEL_WRAPPERS.get(cls) if isinstance(cls, str) else cls
    # Runner.wrap_model passes ``device_ids`` to DDP subclasses only;
    # values in the cfg win over its default_args.
    if isinstance(cls, type) and issubclass(cls, DistributedDataParallel):
        wrapper.setdefault('device_ids', None)


# -- shared by the tools/train.py and tools/test.py command lines -------------
def add_runner_arguments(parser) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank`` (mmdet's)."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs (mmdet syntax)')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='job launcher')
    parser.add_argument(
        '--no-data-check', action='store_true',
        help='skip our dataset pre-check (same as the config key '
        'data_check = False), e.g. for data formats it does not know')
    # torch >= 2.0 launchers pass --local-rank, older ones --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def cfg_options_of(args) -> dict:
    """``--cfg-options`` plus what ``--no-data-check`` means."""
    options = dict(args.cfg_options or {})
    if args.no_data_check:
        options['data_check'] = False
    return options


def run_tool(tool: str, args, fn, **kwargs):
    """``fn(**kwargs)`` for the CLI ``tool``: :data:`USER_ERRORS` exit with
    their one-line message, not a traceback; the process group is always
    torn down."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    try:
        return fn(**kwargs)
    except USER_ERRORS as error:
        sys.exit(f'{tool}: error: {error}')
    finally:  # a quiet exit
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
