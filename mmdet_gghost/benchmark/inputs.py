"""Inputs of a benchmark run, built before timing (loading is not timed):
synthetic batches (with random ground truth for training), batches of the
config's test or train dataloader, and the per-model score threshold for
synthetic images."""
import copy
import itertools
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from .settings import SYNTHETIC_BOXES, UsageError

DEFAULT_SHAPES = {'det': (800, 1333), 'cls': (224, 224)}


def make_inputs(task: str, shape: Sequence[int], batch_size: int = 1,
                num_batches: int = 1, seed: int = 0) -> List[dict]:
    """``num_batches`` synthetic batches as a dataloader hands them to
    ``test_step``: dicts ``{'inputs': [uint8 tensor (3, H, W)] *
    batch_size, 'data_samples'}`` on the CPU (the data preprocessor moves
    them, as in testing), ``(H, W) = shape``. ``data_samples``: ``None``
    for ``task='cls'``; for ``'det'``, ``DetDataSample`` objects with
    ``img_shape`` = ``ori_shape`` = ``shape`` and ``scale_factor`` 1."""
    h, w = int(shape[0]), int(shape[1])
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for b in range(num_batches):
        imgs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                              generator=gen) for _ in range(batch_size)]
        samples = None
        if task == 'det':
            from mmdet.structures import DetDataSample
            samples = [DetDataSample(metainfo=dict(
                img_id=b * batch_size + i, img_shape=(h, w),
                ori_shape=(h, w), scale_factor=(1.0, 1.0)))
                for i in range(batch_size)]
        batches.append(dict(inputs=imgs, data_samples=samples))
    return batches


def make_train_inputs(task: str, shape: Sequence[int], num_classes: int,
                      batch_size: int = 1, num_batches: int = 1,
                      boxes_per_image: int = SYNTHETIC_BOXES,
                      seed: int = 0) -> List[dict]:
    """:func:`make_inputs` with random ground truth, as the train
    dataloader hands it to ``train_step``: detection samples get
    ``gt_instances`` (``boxes_per_image`` boxes, ``HorizontalBoxes`` as
    ``PackDetInputs`` gives them, 1/8 to 1/2 of the image side, labels
    below ``num_classes``); classification samples a ``gt_label``."""
    batches = make_inputs(task, shape, batch_size, num_batches, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    h, w = int(shape[0]), int(shape[1])
    for batch in batches:
        if task != 'det':
            from mmpretrain.structures import DataSample
            batch['data_samples'] = [DataSample().set_gt_label(int(
                torch.randint(num_classes, (1, ), generator=gen)))
                for _ in batch['inputs']]
            continue
        from mmdet.structures.bbox import HorizontalBoxes
        from mmengine.structures import InstanceData
        n, side = boxes_per_image, torch.tensor([w, h, w, h])
        for sample in batch['data_samples']:
            size = (torch.rand(n, 2, generator=gen) * 3 + 1) / 8  # 1/8-1/2
            corner = torch.rand(n, 2, generator=gen) * (1 - size)
            boxes = torch.cat([corner, corner + size], 1) * side
            sample.gt_instances = InstanceData(
                bboxes=HorizontalBoxes(boxes),
                labels=torch.randint(num_classes, (n, ), generator=gen))
    return batches


def make_data_inputs(cfg, scope: str, batch_size: int = 1,
                     num_batches: int = 4,
                     split: str = 'test') -> List[dict]:
    """``num_batches`` batches of the config's ``split`` (``'test'`` or
    ``'train'``: its pipeline, ground truth included) dataloader."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    if cfg.get(f'{split}_dataloader', None) is None:
        raise UsageError(f'--data loads the config\'s {split}_dataloader, '
                         'and this config has none: drop --data')
    loader_cfg = copy.deepcopy(cfg[f'{split}_dataloader'])
    loader_cfg.update(
        batch_size=batch_size, num_workers=0, persistent_workers=False)
    with DefaultScope.overwrite_default_scope(scope):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        batches = list(itertools.islice(iter(loader), num_batches))
    if not batches:
        raise UsageError(f'the {split} dataloader yielded no batch')
    return batches


def calibrate_score_thr(model: nn.Module, batch: dict,
                        candidate_fraction: float = 0.01) -> Optional[float]:
    """The score threshold at which ``candidate_fraction`` of the (anchor,
    class) pairs of every image in ``batch`` pass, for a dense detector.

    Why: from scratch, RetinaNet scores its prior (0.01) everywhere, below
    the config's 0.05: no box would reach NMS, while a trained model on a
    busy image sends thousands. Calibrated, every model post-processes the
    same share (at 1 %, RetinaNet at 800x1333 fills each level's
    ``nms_pre``); ``score_thr=0`` instead sorts all 16M scores (~1 s per
    image on 2 CPU cores), which no trained detector does.

    Scores every pair as the head does (sigmoid, or softmax without
    background) and returns a value just below the ``ceil(fraction *
    pairs)``-th largest score of the image with the lowest such score.

    Returns:
        float | None: the threshold, or ``None`` for models without a
        single-stage dense ``bbox_head`` (e.g. two-stage detectors).
    """
    if not 0 < candidate_fraction <= 1:
        raise UsageError('candidate_fraction must be in (0, 1], got '
                         f'{candidate_fraction}')
    head = getattr(model, 'bbox_head', None)
    if head is None or getattr(model, 'roi_head', None) is not None or \
            not hasattr(head, 'cls_out_channels'):
        return None
    with torch.no_grad():
        x = model.data_preprocessor(batch, False)['inputs']
        cls_scores = head(model.extract_feat(x))[0]
    if not isinstance(cls_scores, (list, tuple)) or \
            not torch.is_tensor(cls_scores[0]) or cls_scores[0].dim() != 4:
        return None
    channels = head.cls_out_channels
    per_image = []
    for level in cls_scores:  # (N, A * C, H, W)
        n = level.shape[0]
        s = level.float().permute(0, 2, 3, 1).reshape(n, -1, channels)
        s = (s.sigmoid() if getattr(head, 'use_sigmoid_cls', True) else
             s.softmax(-1)[..., :-1])
        per_image.append(s.reshape(n, -1))
    scores = torch.cat(per_image, dim=1)  # (N, pairs)
    k = max(1, int(np.ceil(candidate_fraction * scores.shape[1])))
    kth = scores.topk(k, dim=1).values[:, -1].min()
    # strictly below the k-th score: the filter is ``scores > score_thr``
    return float(np.nextafter(np.float32(kth.item()), np.float32(0)))
