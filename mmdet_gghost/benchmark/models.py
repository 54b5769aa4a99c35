"""Models for benchmarking: the one builder
(:func:`mmdet_gghost.apis.build.build_model`) plus ``test_cfg`` overrides
and the timed form (BN fused, channels-last)."""
from typing import Optional

import torch
import torch.nn as nn

from ..apis.build import build_model, load_config
from .reports import to_plain
from .settings import check_file

__all__ = ['load_model', 'override_test_cfg']


def override_test_cfg(test_cfg, key: str, value) -> int:
    """Set ``key`` wherever it already exists in a (nested) test_cfg.

    The ``rpn`` sub-dict of two-stage detectors is skipped: its
    ``max_per_img`` is the number of proposals, not of final detections.

    Returns:
        int: how many places were set.
    """
    if not isinstance(test_cfg, dict):
        return 0
    n = 0
    for k, v in test_cfg.items():
        if k == key:
            test_cfg[k] = value
            n += 1
        elif isinstance(v, dict) and k != 'rpn':
            n += override_test_cfg(v, key, value)
    return n


def load_model(cfg_path,
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               fuse: bool = False,
               channels_last: bool = False,
               score_thr: Optional[float] = None,
               max_per_img: Optional[int] = None,
               cfg_options: Optional[dict] = None,
               seed: int = 0,
               allow_partial_checkpoint: bool = False):
    """Build a detector/classifier from a config for benchmarking.

    Without a checkpoint the model gets ``init_weights()`` (pretrained
    ``init_cfg`` removed, fixed seed), not PyTorch's layer defaults: with
    those, eval-mode BN does not normalise, deep features blow up, every
    score is 0 and no box reaches NMS (an unfairly cheap post-processing).

    Args:
        cfg_path: mmdet or mmpretrain config file (or ``Config``).
        checkpoint: weights file; ``None``: initialised as above.
        device: ``'cpu'`` or ``'cuda'``/``'cuda:N'``.
        fuse: the deploy form (:func:`mmdet_gghost.models.deploy_model`:
            BN folded into convs, G-Ghost backbones op-lean).
        channels_last: convert weights to NHWC.
        score_thr, max_per_img: override these keys of ``model.test_cfg``
            where present (detectors).
        allow_partial_checkpoint: load a checkpoint that does not fit
            the model (warned about; the rest keeps ``init_weights()``);
            by default that is a ``CheckpointMismatchError``
            (:func:`mmdet_gghost.apis.weights.load_checkpoint_checked`).

    Returns:
        tuple: ``(model, cfg, info)``; model in eval mode on ``device``;
        ``info`` = dict(scope, task ('det' | 'cls'), config, checkpoint,
        weights ('checkpoint' | 'partial checkpoint' | 'init_weights'),
        bn_fused, test_cfg).

    Raises:
        FileNotFoundError: naming the missing config or checkpoint.
        CheckpointMismatchError: the checkpoint does not fit the model.
    """
    cfg = load_config(cfg_path, cfg_options)
    check_file(checkpoint, 'Checkpoint file')
    test_cfg = cfg.model.get('test_cfg', None)
    if score_thr is not None:
        override_test_cfg(test_cfg, 'score_thr', float(score_thr))
    if max_per_img is not None:
        override_test_cfg(test_cfg, 'max_per_img', int(max_per_img))
    model = build_model(cfg, checkpoint, device=device, init_seed=seed,
                        allow_partial_checkpoint=allow_partial_checkpoint)
    cfg = model.cfg
    scope = cfg.get('default_scope', None) or 'mmdet'
    weights = 'init_weights'
    if checkpoint is not None:
        weights = 'checkpoint'
        if allow_partial_checkpoint and _is_partial(model, checkpoint):
            weights = 'partial checkpoint'
    if fuse:
        from mmdet_gghost.models import deploy_model
        model = deploy_model(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    task = _task_of(model, scope)
    info = dict(
        scope=scope,
        task=task,
        config=str(cfg_path),
        checkpoint=checkpoint,
        weights=weights,
        bn_fused=bool(fuse),
        test_cfg=to_plain(cfg.model.get('test_cfg', None)))
    return model, cfg, info


def _is_partial(model: nn.Module, checkpoint: str) -> bool:
    """Whether the (allowed) checkpoint left tensors of ``model`` out."""
    from ..apis.weights import compare_state_dicts, read_state_dict
    return bool(compare_state_dicts(model.state_dict(),
                                    read_state_dict(checkpoint)))


def _task_of(model: nn.Module, scope: str) -> str:
    from mmdet.models.detectors import BaseDetector
    if isinstance(model, BaseDetector) or scope == 'mmdet':
        return 'det'
    return 'cls'
