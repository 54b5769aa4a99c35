"""Inference-speed benchmark for mmdet and mmpretrain configs.

What is timed (``task='full'``, the default): ``model.test_step(batch)``,
i.e. data preprocessor (to device, normalise, pad) + network forward +
post-processing (box decoding, NMS) -- exactly what mmengine's test loop
runs per batch. Data *loading* is excluded: batches are built (synthetic) or
loaded (``--data``) before timing and reused. ``task='backbone'`` times the
backbone alone on the already preprocessed tensor.

Fairness on a noisy machine: all models are timed in *interleaved rounds*
(round r = one timed call of model 1, 2, ..., n, in that order), so slow
drifts of the machine (thermal, other jobs) hit every model alike. The
speed ratio of model i to the first model is computed inside each round and
the median over rounds is reported. On CUDA every timed call is bracketed by
``torch.cuda.synchronize()`` (kernel launches are asynchronous; timing
without it measures the launch, not the work).

Detections after NMS: without a checkpoint every model gets its own
from-scratch initialisation, under which RetinaNet's classifier predicts the
prior probability (0.01) everywhere -- below the config's ``score_thr``
(0.05), so no box would reach NMS; a trained model on busy images sends
thousands. Scores on synthetic noise are meaningless for trained weights as
well. With synthetic inputs the threshold is therefore *calibrated* per
model (``score_thr='auto'``, :func:`calibrate_score_thr`): it is set so that
a fixed fraction ``candidate_fraction`` (default 1 %) of the (anchor, class)
pairs of each image pass it. For RetinaNet at 800x1333 that is ~161k of
16.1M pairs; every FPN level then still fills its ``nms_pre`` (1000)
candidates (P7 nearly: ~560), NMS sees ~4.6k boxes and ``max_per_img``
(100) come out -- the full post-processing load of a busy image, the same
for every model. ``score_thr=0`` is still available but is *not* realistic:
then mmdet's ``filter_scores_and_topk`` sorts every one of the 16M scores
(~1 s per image on 2 CPU cores, the same for every model), which no
trained detector does at its 0.05 threshold. Detectors without a dense
head to calibrate (two-stage) use 0. The mean number of detections per
image after NMS is reported per model (``dets/img``); with ``--data`` the
config's threshold is kept.

The public functions are usable without the CLI (see ``tools/benchmark.py``).
"""
import copy
import csv
import datetime
import functools
import itertools
import json
import os
import os.path as osp
import platform
import time
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from .analysis import (build_model_from_config, complexity_report,
                       format_count, init_weights_quietly, load_config,
                       strip_pretrained)

__all__ = [
    'load_model', 'make_inputs', 'make_step_fn', 'time_interleaved',
    'summarize', 'write_reports', 'plot_map_vs_fps', 'load_metric',
    'collect_env', 'count_detections', 'outputs_finite', 'make_console',
    'run_benchmark', 'calibrate_score_thr', 'CSV_FIELDS', 'UsageError'
]

DEFAULT_SHAPES = {'det': (800, 1333), 'cls': (224, 224)}


class UsageError(ValueError):
    """Inconsistent options or unusable inputs (reported without trace)."""


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


def _check_file(path: Optional[str], what: str) -> None:
    if path is not None and not osp.isfile(str(path)):
        raise FileNotFoundError(f'{what} not found: {path}')


def _override_test_cfg(test_cfg, key: str, value) -> int:
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
            n += _override_test_cfg(v, key, value)
    return n


def fuse_bn(model: nn.Module) -> nn.Module:
    """The deploy form, in place: every BN folded into its conv, and every
    G-Ghost backbone switched to its op-lean form (``switch_to_deploy``).

    Stock modules (mmdet's ResNet, FPN, heads) get mmcv's
    ``fuse_conv_bn`` (``mmdet_gghost.models.deploy_model``).
    """
    from mmdet_gghost.models import deploy_model
    return deploy_model(model)


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

    Without a checkpoint the model gets its own from-scratch initialisation
    (``init_weights()`` with pretrained ``init_cfg`` removed, fixed seed),
    not PyTorch's layer defaults: with the latter, BN in eval mode does not
    normalise and the features of a deep net grow by orders of magnitude
    (RetinaNet G-Ghost-R34: classification logits of +-700, every sigmoid
    score exactly 0, hence *no* box reaching NMS -- an unfairly cheap
    post-processing). Values do not otherwise affect speed.

    Args:
        cfg_path: mmdet or mmpretrain config file (or ``Config``).
        checkpoint: weights file; ``None``: initialised as above.
        device: ``'cpu'`` or ``'cuda'``/``'cuda:N'``.
        fuse: fold BN into convs.
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
        weights ('checkpoint' | 'init_weights'), bn_fused, test_cfg).

    Raises:
        FileNotFoundError: naming the missing config or checkpoint.
        CheckpointMismatchError: the checkpoint does not fit the model.
    """
    _check_file(None if not isinstance(cfg_path, (str, os.PathLike)) else
                cfg_path, 'Config file')
    _check_file(checkpoint, 'Checkpoint file')
    cfg = load_config(cfg_path, cfg_options)
    test_cfg = cfg.model.get('test_cfg', None)
    if score_thr is not None:
        _override_test_cfg(test_cfg, 'score_thr', float(score_thr))
    if max_per_img is not None:
        _override_test_cfg(test_cfg, 'max_per_img', int(max_per_img))
    strip_pretrained(cfg.model)
    model, cfg, scope = build_model_from_config(cfg)
    if (checkpoint is None or allow_partial_checkpoint) and hasattr(
            model, 'init_weights'):
        init_weights_quietly(model, seed)
    weights = 'init_weights'
    if checkpoint is not None:
        from .apis.weights import load_checkpoint_checked
        partial = load_checkpoint_checked(model, checkpoint,
                                          allow_partial_checkpoint)
        weights = 'partial checkpoint' if partial else 'checkpoint'
    model = model.to(device)
    model.eval()  # (some train() overrides return None: no chaining)
    if fuse:
        model = fuse_bn(model)
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
        test_cfg=_to_plain(cfg.model.get('test_cfg', None)))
    return model, cfg, info


def calibrate_score_thr(model: nn.Module,
                        batch: dict,
                        candidate_fraction: float = 0.01) -> Optional[float]:
    """The score threshold at which ``candidate_fraction`` of the (anchor,
    class) pairs of every image in ``batch`` pass, for a dense detector.

    Runs preprocessor, network and head once (no post-processing), scores
    every pair as the head's post-processing does (sigmoid, or softmax
    without the background column) and returns a value just below the
    ``ceil(fraction * pairs)``-th largest score of the image with the
    lowest such score, so that at least that many pairs pass
    ``scores > score_thr`` in every image.

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
        data = model.data_preprocessor(batch, False)
        outs = head(model.extract_feat(data['inputs']))
    cls_scores = outs[0]
    if not isinstance(cls_scores, (list, tuple)) or \
            not torch.is_tensor(cls_scores[0]) or cls_scores[0].dim() != 4:
        return None
    channels = head.cls_out_channels
    per_image = []
    for level in cls_scores:  # (N, A * C, H, W)
        n = level.shape[0]
        s = level.float().permute(0, 2, 3, 1).reshape(n, -1, channels)
        if getattr(head, 'use_sigmoid_cls', True):
            s = s.sigmoid()
        else:
            s = s.softmax(-1)[..., :-1]
        per_image.append(s.reshape(n, -1))
    scores = torch.cat(per_image, dim=1)  # (N, pairs)
    k = max(1, int(np.ceil(candidate_fraction * scores.shape[1])))
    kth = scores.topk(k, dim=1).values[:, -1].min()
    # strictly below the k-th score: the filter is ``scores > score_thr``
    return float(np.nextafter(np.float32(kth.item()), np.float32(0)))


def _task_of(model: nn.Module, scope: str) -> str:
    try:
        from mmdet.models.detectors import BaseDetector
        if isinstance(model, BaseDetector):
            return 'det'
    except ImportError:
        pass
    return 'det' if scope == 'mmdet' else 'cls'


def _to_plain(obj):
    """ConfigDict/tuples -> JSON-serialisable builtins."""
    if isinstance(obj, dict):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return obj


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------


def make_inputs(task: str,
                shape: Sequence[int],
                batch_size: int = 1,
                num_batches: int = 1,
                seed: int = 0) -> List[dict]:
    """Synthetic batches in the format a dataloader hands to ``test_step``.

    Args:
        task: ``'det'`` (adds ``DetDataSample`` metainfo: ``img_shape`` =
            ``ori_shape`` = shape, ``scale_factor`` 1) or ``'cls'``.
        shape: ``(H, W)`` of every image.

    Returns:
        list of ``num_batches`` dicts ``{'inputs': [uint8 tensor (3, H, W)] *
        batch_size, 'data_samples': [...] or None}`` on the CPU (moving them
        to the device is part of the data preprocessor, as in testing).
    """
    h, w = int(shape[0]), int(shape[1])
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for b in range(num_batches):
        imgs = [
            torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
            for _ in range(batch_size)
        ]
        samples = None
        if task == 'det':
            from mmdet.structures import DetDataSample
            samples = [
                DetDataSample(
                    metainfo=dict(
                        img_id=b * batch_size + i,
                        img_shape=(h, w),
                        ori_shape=(h, w),
                        scale_factor=(1.0, 1.0))) for i in range(batch_size)
            ]
        batches.append(dict(inputs=imgs, data_samples=samples))
    return batches


def make_data_inputs(cfg,
                     scope: str,
                     batch_size: int = 1,
                     num_batches: int = 4) -> List[dict]:
    """Load ``num_batches`` batches of the config's test dataloader.

    They are loaded once, before timing (loading is not what we measure).
    """
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(
        batch_size=batch_size, num_workers=0, persistent_workers=False)
    with DefaultScope.overwrite_default_scope(scope):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        batches = list(itertools.islice(iter(loader), num_batches))
    if not batches:
        raise UsageError('the test dataloader yielded no batch')
    return batches


def count_detections(outputs) -> Optional[float]:
    """Mean number of predicted boxes per image, ``None`` if not detection."""
    counts = [
        len(o.pred_instances) for o in outputs
        if hasattr(o, 'pred_instances')
    ]
    return float(np.mean(counts)) if counts else None


def outputs_finite(outputs) -> bool:
    """Whether every tensor in a model output (tensors, tuples/lists of
    them, data samples with ``pred_instances``/``pred_score``) is finite."""
    if torch.is_tensor(outputs):
        return (not outputs.is_floating_point()
                or bool(torch.isfinite(outputs).all()))
    if isinstance(outputs, (list, tuple)):
        return all(outputs_finite(o) for o in outputs)
    if isinstance(outputs, dict):
        return all(outputs_finite(o) for o in outputs.values())
    for name in ('pred_instances', 'pred_score'):
        field = getattr(outputs, name, None)
        if field is None:
            continue
        values = field.values() if hasattr(field, 'values') else [field]
        if not all(outputs_finite(v) for v in values if torch.is_tensor(v)):
            return False
    return True


def _compile_parts(model: nn.Module, task: str,
                   mode: Optional[str] = None) -> None:
    """torch.compile the network parts' ``forward`` in place.

    Only the tensor-in/tensor-out parts are compiled; pre/post-processing
    (python lists, data samples, NMS with data-dependent shapes) stays
    eager. Patching ``forward`` keeps mmdet's attribute access
    (``model.bbox_head.predict`` ...) working.
    """
    names = ['backbone'] if task == 'backbone' else [
        'backbone', 'neck', 'bbox_head', 'head', 'rpn_head'
    ]
    for name in names:
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            part.forward = torch.compile(part.forward, mode=mode)


def make_step_fn(model: nn.Module,
                 batches: Sequence[dict],
                 task: str = 'full',
                 amp: bool = False,
                 channels_last: bool = False) -> Callable[[], Any]:
    """A zero-argument callable running one inference step per call.

    Successive calls cycle through ``batches``; models called the same
    number of times therefore see the same batch in the same round.

    Args:
        task: ``'full'`` -> ``model.test_step(batch)`` (returns data
            samples); ``'backbone'`` -> ``model.backbone(x)`` on the
            preprocessed tensor (prepared here, outside the timing).
    """
    if task == 'backbone':
        backbone = getattr(model, 'backbone', None)
        if backbone is None:
            raise UsageError('--task backbone: the model has no backbone')
        with torch.no_grad():
            tensors = [
                model.data_preprocessor(b, False)['inputs'] for b in batches
            ]
        if channels_last:
            tensors = [t.contiguous(memory_format=torch.channels_last)
                       for t in tensors]
        it = itertools.cycle(tensors)

        def run():
            return backbone(next(it))
    else:
        it = itertools.cycle(batches)

        def run():
            return model.test_step(next(it))

    device_type = _device_of(model).type

    def step():
        amp_ctx = (torch.autocast(device_type=device_type, dtype=torch.float16)
                   if amp else nullcontext())
        with torch.no_grad(), amp_ctx:
            return run()

    return step


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device('cpu')


# --------------------------------------------------------------------------
# timing and statistics
# --------------------------------------------------------------------------


def time_interleaved(callables: Sequence[Callable[[], Any]],
                     rounds: int,
                     warmup: int = 0,
                     sync: Optional[Callable[[], None]] = None,
                     on_round: Optional[Callable[[int], None]] = None
                     ) -> List[np.ndarray]:
    """Time callables in interleaved rounds: A B C, A B C, ...

    Args:
        callables: zero-argument functions (one per model).
        rounds: timed rounds; each round times one call of every callable.
        warmup: untimed rounds run first (same interleaving).
        sync: called right before starting and right before stopping each
            timer (``torch.cuda.synchronize`` on CUDA), so asynchronous
            work is inside the measured interval.
        on_round: called with the round index after each round (progress).

    Returns:
        list (one per callable) of float64 arrays of shape ``(rounds,)``:
        wall-clock seconds of each call, aligned by round.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in callables:
            fn()
    sync()
    lat = np.zeros((len(callables), rounds), dtype=np.float64)
    for r in range(rounds):
        for i, fn in enumerate(callables):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            lat[i, r] = time.perf_counter() - t0
        if on_round is not None:
            on_round(r)
    return [lat[i] for i in range(len(callables))]


def summarize(latencies: Sequence[np.ndarray],
              batch_sizes: Union[int, Sequence[int]] = 1,
              names: Optional[Sequence[str]] = None,
              macs: Optional[Sequence[Optional[float]]] = None
              ) -> List[dict]:
    """Per-model statistics of interleaved latencies.

    Args:
        latencies: per model, seconds per call, shape ``(rounds,)``, all
            aligned by round (as :func:`time_interleaved` returns them).
        batch_sizes: images per call (one int for all, or one per model).
        macs: MACs per image of each model's timed network (or ``None``).

    Returns:
        list of dicts (one per model): ``name, batch_size, rounds,
        median_ms, mean_ms, p10_ms, p90_ms, fps`` (= batch / median
        latency), ``fps_ratio`` (median over rounds of this model's FPS
        divided by the first model's FPS *in the same round*),
        ``fps_ratio_p10/p90`` (spread of those per-round ratios) and
        ``gflops_per_s`` (= 2 * MACs * batch / median latency / 1e9; one
        MAC = two floating-point operations; ``None`` without MACs).
    """
    lat = [np.asarray(x, dtype=np.float64) for x in latencies]
    n = len(lat)
    if n == 0:
        return []
    rounds = len(lat[0])
    if any(len(x) != rounds for x in lat):
        raise ValueError('latency arrays must be aligned by round '
                         '(same length)')
    bs = ([int(batch_sizes)] * n if np.isscalar(batch_sizes) else
          [int(b) for b in batch_sizes])
    names = list(names) if names is not None else [f'model{i}'
                                                   for i in range(n)]
    macs = list(macs) if macs is not None else [None] * n
    ref_fps = bs[0] / lat[0]  # per round
    rows = []
    for i in range(n):
        med = float(np.median(lat[i]))
        ratios = (bs[i] / lat[i]) / ref_fps
        row = dict(
            name=names[i],
            batch_size=bs[i],
            rounds=rounds,
            median_ms=med * 1e3,
            mean_ms=float(np.mean(lat[i])) * 1e3,
            p10_ms=float(np.percentile(lat[i], 10)) * 1e3,
            p90_ms=float(np.percentile(lat[i], 90)) * 1e3,
            fps=bs[i] / med,
            fps_ratio=float(np.median(ratios)),
            fps_ratio_p10=float(np.percentile(ratios, 10)),
            fps_ratio_p90=float(np.percentile(ratios, 90)),
            gflops_per_s=(None if macs[i] is None else
                          2.0 * float(macs[i]) * bs[i] / med / 1e9))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# eval results, environment, reports, plot
# --------------------------------------------------------------------------

METRIC_KEYS = ('coco/bbox_mAP', 'bbox_mAP', 'pascal_voc/mAP', 'mAP',
               'accuracy/top1', 'top1')


def load_metric(path: str, key: Optional[str] = None):
    """Read a metric from a ``tools/test.py`` results JSON.

    Accepts ``{"metrics": {...}}``, a flat ``{"coco/bbox_mAP": ...}`` dict,
    or mmengine's JSON-lines logs (last line holding the key wins).

    Args:
        key: metric name; default: the first of :data:`METRIC_KEYS` present.

    Returns:
        tuple[str, float]: the key used and its value.
    """
    _check_file(path, 'Eval results file')
    with open(path) as f:
        text = f.read()
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines()
                   if line.strip()]
    dicts = []
    for rec in records:
        if isinstance(rec, dict):
            metrics = rec.get('metrics', rec)
            if isinstance(metrics, dict):
                dicts.append(metrics)
    keys = [key] if key else list(METRIC_KEYS)
    for d in reversed(dicts):
        for k in keys:
            if k in d and isinstance(d[k], (int, float)):
                return k, float(d[k])
    raise UsageError(f'{path}: no metric {" / ".join(keys)} found '
                   '(use --metric-key)')


def collect_env(device: str = 'cpu') -> dict:
    """Hardware and software the numbers were measured with."""
    env = dict(
        date=datetime.datetime.now().astimezone().isoformat(
            timespec='seconds'),
        python=platform.python_version(),
        platform=platform.platform(),
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        torch=torch.__version__,
        device=device)
    for mod in ('mmengine', 'mmcv', 'mmdet', 'mmpretrain', 'mmdet_gghost',
                'numpy'):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001  (absent or broken: record it)
            env[mod] = None
    if str(device).startswith('cuda') and torch.cuda.is_available():
        dev = torch.device(device)
        env.update(
            gpu=torch.cuda.get_device_name(dev),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cudnn_benchmark=torch.backends.cudnn.benchmark)
    return env


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# one row per model; the CSV has exactly these columns in this order
CSV_FIELDS = [
    'name', 'config', 'checkpoint', 'task', 'input_shape', 'batch_size',
    'rounds', 'params', 'macs', 'activations', 'ops', 'bn_fused',
    'dets_per_img',
    'score_thr', 'first_call_s', 'outputs_finite', 'median_ms', 'mean_ms', 'p10_ms',
    'p90_ms', 'fps', 'fps_ratio', 'fps_ratio_p10', 'fps_ratio_p90',
    'gflops_per_s', 'metric_key', 'metric'
]

NOTES = [
    'latency = wall-clock time of one call ({what}); median, p10, p90 over '
    'the timed rounds',
    'FPS = batch size / median latency',
    'ratio = median over rounds of (FPS of the model / FPS of the first '
    'model in the same round); models were timed interleaved, round by round',
    'params / MACs / activations: mmengine analysis of the network part '
    '(traced in tensor mode, no post-processing), per image at the input '
    'shape; 1 MAC = one multiply-add; BN ops not counted in MACs',
    'ops: device-launching aten ops of one forward of the network part in '
    'the benchmarked form, batch 1 (views and allocations excluded; '
    'mmdet_gghost.analysis.count_ops)',
    'GFLOP/s (achieved) = 2 x MACs x batch / median latency',
]


def _fmt(v, nd=2):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return '-'
    if isinstance(v, bool):
        return 'yes' if v else 'no'
    if isinstance(v, float):
        return f'{v:.{nd}f}'
    return str(v)


# (header, key, formatter) of the console / Markdown table
_TABLE_COLUMNS = [
    ('model', 'name', str),
    ('params', 'params', format_count),
    ('MACs', 'macs', format_count),
    ('acts', 'activations', format_count),
    ('ops', 'ops', lambda v: '-' if v is None else str(v)),
    ('BN fused', 'bn_fused', _fmt),
    ('score thr', 'score_thr', lambda v: '-' if v is None else f'{v:.4g}'),
    ('dets/img', 'dets_per_img', lambda v: _fmt(v, 1)),
    ('median ms', 'median_ms', _fmt),
    ('p10 ms', 'p10_ms', _fmt),
    ('p90 ms', 'p90_ms', _fmt),
    ('FPS', 'fps', _fmt),
    ('ratio', 'fps_ratio', lambda v: _fmt(v, 3)),
    ('GFLOP/s', 'gflops_per_s', lambda v: _fmt(v, 1)),
    ('metric', 'metric', lambda v: _fmt(v, 3)),
]


def table_rows(rows: Sequence[dict]) -> List[List[str]]:
    """Formatted cells of the console/Markdown table (header first)."""
    optional = ('metric', 'score_thr')  # shown only when some row has one
    cols = [c for c in _TABLE_COLUMNS
            if c[1] not in optional or any(r.get(c[1]) is not None
                                           for r in rows)]
    out = [[c[0] for c in cols]]
    for r in rows:
        out.append([c[2](r.get(c[1])) for c in cols])
    return out


def make_console():
    """A rich console wide enough for the table also when piped to a file
    (rich falls back to 80 columns without a terminal)."""
    import shutil

    from rich.console import Console
    width = max(shutil.get_terminal_size((160, 24)).columns, 160)
    return Console(width=width, log_path=False)


def print_table(rows: Sequence[dict], settings: dict, console=None) -> None:
    """Print the results as a rich table."""
    from rich.table import Table
    cells = table_rows(rows)
    table = Table(
        title=_title(settings),
        caption='ratio: median of per-round FPS ratios to the first model; '
        'GFLOP/s = 2 x MACs x batch / median latency',
        caption_justify='left')
    for i, h in enumerate(cells[0]):
        table.add_column(h, justify='left' if i == 0 else 'right')
    for r in cells[1:]:
        table.add_row(*r)
    (console or make_console()).print(table)


def _title(settings: dict) -> str:
    flags = [f'{k}' for k in ('fuse_conv_bn', 'channels_last', 'amp',
                              'compile', 'cuda_graphs') if settings.get(k)]
    if settings.get('compile_mode'):
        flags.append(f'mode={settings["compile_mode"]}')
    return (f'{settings.get("task", "full")} inference on '
            f'{settings.get("device", "?")}, batch '
            f'{settings.get("batch_size", "?")}, '
            f'{settings.get("rounds", "?")} rounds'
            + (f' [{", ".join(flags)}]' if flags else ''))


def write_reports(out_dir: str,
                  rows: Sequence[dict],
                  env: dict,
                  settings: dict,
                  extra: Optional[dict] = None) -> Dict[str, str]:
    """Write ``benchmark.json``, ``benchmark.csv`` and ``benchmark.md``.

    The JSON holds everything (rows incl. raw per-round latencies under
    ``latencies_ms`` if present, env, settings, ``extra``); the CSV holds
    :data:`CSV_FIELDS` of each row at full precision; the Markdown file is
    the console table plus environment and settings.

    Returns:
        dict: ``{'json': path, 'csv': path, 'md': path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        k: osp.join(out_dir, f'benchmark.{k}')
        for k in ('json', 'csv', 'md')
    }
    doc = dict(
        settings=_to_plain(settings),
        env=_to_plain(env),
        results=_to_plain(list(rows)),
        **_to_plain(extra or {}))
    with open(paths['json'], 'w') as f:
        json.dump(doc, f, indent=2)
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS,
                                extrasaction='ignore')
        writer.writeheader()
        for r in rows:
            writer.writerow({
                k: ('x'.join(map(str, r[k])) if isinstance(
                    r.get(k), (list, tuple)) else r.get(k))
                for k in CSV_FIELDS
            })
    cells = table_rows(rows)
    what = ('model.test_step: preprocess + forward + post-processing/NMS'
            if settings.get('task', 'full') == 'full' else
            'backbone forward')
    lines = [f'# Benchmark: {_title(settings)}', '']
    lines.append('| ' + ' | '.join(cells[0]) + ' |')
    lines.append('|' + '|'.join(['---'] + ['---:'] *
                                (len(cells[0]) - 1)) + '|')
    for c in cells[1:]:
        lines.append('| ' + ' | '.join(c) + ' |')
    lines += ['', '## Notes', '']
    lines += [f'- {n.format(what=what)}' for n in NOTES]
    if settings.get('detections_note'):
        lines.append(f'- {settings["detections_note"]}')
    lines += ['', '## Models', '']
    for r in rows:
        lines.append(f'- **{r["name"]}**: config `{r.get("config")}`, '
                     f'weights `{r.get("checkpoint") or "init_weights()"}`'
                     f', input {_fmt_shape(r.get("input_shape"))}'
                     + (f', first call {r["first_call_s"]:.2f} s'
                        if r.get('first_call_s') is not None else ''))
    lines += ['', '## Settings', '']
    lines += [f'- {k}: `{v}`' for k, v in settings.items()]
    lines += ['', '## Environment', '']
    lines += [f'- {k}: `{v}`' for k, v in env.items()]
    with open(paths['md'], 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return paths


def _fmt_shape(shape) -> str:
    return 'x'.join(map(str, shape)) if shape else '-'


def plot_map_vs_fps(names: Sequence[str],
                    fps: Sequence[float],
                    metrics: Sequence[float],
                    out_path: Optional[str] = None,
                    metric_name: str = 'mAP',
                    title: Optional[str] = None):
    """Accuracy vs speed scatter, one labelled point per model.

    Uses matplotlib's object API with the Agg canvas (no global backend
    switch, no display needed).

    Returns:
        tuple: ``(fig, ax)``; ``ax.collections[0]`` holds the points.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    if not (len(names) == len(fps) == len(metrics)):
        raise ValueError('names, fps and metrics must have the same length')
    fig = Figure(figsize=(6, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colors = [f'C{i % 10}' for i in range(len(names))]
    ax.scatter(list(fps), list(metrics), c=colors, s=60, zorder=3)
    for name, x, y in zip(names, fps, metrics):
        ax.annotate(
            name, (x, y),
            textcoords='offset points',
            xytext=(6, 6),
            fontsize=9)
    ax.set_xlabel('FPS (images / s, higher is better)')
    ax.set_ylabel(metric_name)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.25, y=0.25)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if out_path:
        os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
        fig.savefig(out_path)
    return fig, ax


# --------------------------------------------------------------------------
# the whole run
# --------------------------------------------------------------------------


def _unique_names(configs: Sequence[str]) -> List[str]:
    base = [osp.splitext(osp.basename(str(c)))[0] for c in configs]
    return [
        b if base.count(b) == 1 else f'{b}#{i}' for i, b in enumerate(base)
    ]


def _per_config(values, n, what):
    """Expand an optional per-config list; 'none'/'-' mean "not given"."""
    if not values:
        return [None] * n
    if len(values) != n:
        raise UsageError(f'{what}: give one per config ({n}), got '
                         f'{len(values)} (use "none" as placeholder)')
    return [None if v in (None, 'none', 'None', '-') else v for v in values]


# Smallest valid value of each count option, and its CLI flag.
_COUNT_OPTIONS = dict(batch_size=('--batch-size', 1),
                      threads=('--threads', 1), warmup=('--warmup', 0),
                      rounds=('--iters', 1),
                      data_batches=('--data-batches', 1),
                      max_per_img=('--max-per-img', 1))


def _check_counts(shape=None, **counts) -> None:
    """One :class:`UsageError` for a count option below its minimum
    (``None`` = default) or a non-positive ``shape``."""
    for key, value in counts.items():
        flag, low = _COUNT_OPTIONS[key]
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < low):
            raise UsageError(f'{flag} must be an integer >= {low}, got '
                             f'{value!r}')
    if shape is not None and (len(shape) != 2 or any(
            not isinstance(v, (int, np.integer)) or v < 1 for v in shape)):
        raise UsageError(f'--shape takes two integers H W >= 1, got '
                         f'{list(shape)}')


def _check_graph_options(cuda_graphs: bool, compile: bool, is_cuda: bool,
                         device: str) -> None:
    """--cuda-graphs needs CUDA and excludes --compile (whose
    ``reduce-overhead`` mode is the compiler's own CUDA-graph route)."""
    if cuda_graphs and not is_cuda:
        raise UsageError(f'--cuda-graphs needs a CUDA device (got --device '
                         f'{device}); CUDA graphs do not exist on the CPU: '
                         'use --device cuda, or drop --cuda-graphs')
    if cuda_graphs and compile:
        raise UsageError('--cuda-graphs and --compile/--compile-mode are two '
                         'routes to the same thing: use --cuda-graphs (eager '
                         'capture) or --compile-mode reduce-overhead')


def _restores_torch_settings(fn):
    """Run ``fn`` and put back what it may change process-wide: torch's
    thread count and ``cudnn.benchmark`` (a caller such as the demo trains
    afterwards in the same process)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        cudnn_benchmark = torch.backends.cudnn.benchmark
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
            torch.backends.cudnn.benchmark = cudnn_benchmark
    return wrapper


@_restores_torch_settings
def run_benchmark(configs: Sequence[str],
                  checkpoints: Optional[Sequence[Optional[str]]] = None,
                  names: Optional[Sequence[str]] = None,
                  task: str = 'full',
                  shape: Optional[Sequence[int]] = None,
                  data: bool = False,
                  data_batches: int = 4,
                  device: str = 'cpu',
                  threads: Optional[int] = None,
                  warmup: Optional[int] = None,
                  rounds: Optional[int] = None,
                  batch_size: int = 1,
                  fuse_conv_bn: bool = False,
                  channels_last: bool = False,
                  amp: bool = False,
                  compile: bool = False,
                  compile_mode: Optional[str] = None,
                  cuda_graphs: bool = False,
                  cudnn_benchmark: bool = False,
                  score_thr: Union[float, str, None] = 'auto',
                  candidate_fraction: float = 0.01,
                  max_per_img: Optional[int] = None,
                  complexity: bool = True,
                  eval_results: Optional[Sequence[Optional[str]]] = None,
                  metric_key: Optional[str] = None,
                  out_dir: Optional[str] = None,
                  plot: Optional[str] = None,
                  progress: bool = True,
                  console=None,
                  onnxruntime: bool = False,
                  allow_partial_checkpoint: bool = False) -> dict:
    """Benchmark several configs against each other (see module doc).

    Returns:
        dict(rows=[...], env={...}, settings={...}, paths={...},
        complexity={name: report}, figure=(fig, ax) or None).

    Raises:
        FileNotFoundError: a config, checkpoint or eval-results file is
            missing (checked before anything is built).
        UsageError: inconsistent options (a ``ValueError``).
        CheckpointMismatchError: a checkpoint does not fit its config's
            model (unless ``allow_partial_checkpoint``).
    """
    _check_counts(shape=shape, batch_size=batch_size, threads=threads,
                  warmup=warmup, rounds=rounds, data_batches=data_batches,
                  max_per_img=max_per_img)
    console = console or make_console()
    n = len(configs)
    if n == 0:
        raise UsageError('give at least one config')
    checkpoints = _per_config(checkpoints, n, '--checkpoint')
    eval_results = _per_config(eval_results, n, '--eval-results')
    # fail fast, before minutes of model building
    for c in configs:
        _check_file(c, 'Config file')
    for c in checkpoints:
        _check_file(c, 'Checkpoint file')
    for e in eval_results:
        _check_file(e, 'Eval results file')
    if task not in ('full', 'backbone'):
        raise UsageError(f'task must be "full" or "backbone", got {task!r}')
    is_cuda = str(device).startswith('cuda')
    compile = compile or compile_mode is not None
    _check_graph_options(cuda_graphs, compile, is_cuda, device)
    if is_cuda and not torch.cuda.is_available():
        raise UsageError(f'--device {device}: CUDA is not available')
    if amp and not is_cuda:
        raise UsageError('--amp is CUDA autocast (float16): use '
                         '--device cuda')
    if onnxruntime and (task != 'full' or is_cuda):
        raise UsageError('--onnxruntime times the full detector on the CPU '
                         '(ONNX Runtime CPU provider): use --task full and '
                         '--device cpu')
    if plot and not any(e is not None for e in eval_results):
        raise UsageError('--plot draws mAP vs FPS: give --eval-results')
    names = list(names) if names else _unique_names(configs)
    if len(names) != n:
        raise UsageError(f'--names: give one per config ({n})')
    if threads:
        torch.set_num_threads(int(threads))
    # CPU: one RetinaNet-R34 call at 800x1333 takes ~8 s on 2 cores, so the
    # default CPU run is short (raise --iters on a bigger machine)
    warmup = (20 if is_cuda else 1) if warmup is None else int(warmup)
    rounds = (100 if is_cuda else 6) if rounds is None else int(rounds)
    # synthetic images: calibrate each dense detector's threshold so that
    # the same fraction of pairs reaches post-processing (module doc);
    # real images: keep the config's threshold
    calibrate = score_thr == 'auto' and not data and task == 'full'
    if calibrate and not 0 < candidate_fraction <= 1:
        raise UsageError('--candidate-fraction must be in (0, 1], got '
                         f'{candidate_fraction}')
    if score_thr == 'auto':
        score_thr = None if data else 0.0

    if is_cuda:
        # let cuDNN pick the fastest algorithm per conv shape (mmdet's
        # env_cfg.cudnn_benchmark); the warm-up rounds absorb the search
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    settings = dict(
        task=task,
        device=device,
        batch_size=batch_size,
        shape=list(shape) if shape else None,
        inputs='test dataloader' if data else 'synthetic uint8 noise',
        warmup=warmup,
        rounds=rounds,
        threads=torch.get_num_threads(),
        fuse_conv_bn=fuse_conv_bn,
        channels_last=channels_last,
        amp=amp,
        compile=compile,
        onnxruntime=('also each model exported by mmdeploy, in ONNX Runtime '
                     '(mmdet_gghost/deploy/ort_runtime.py)'
                     if onnxruntime else None),
        compile_mode=compile_mode,
        cuda_graphs=cuda_graphs,
        cudnn_benchmark=bool(cudnn_benchmark) if is_cuda else None,
        score_thr=(f'calibrated: {candidate_fraction:g} of the (anchor, '
                   'class) pairs pass' if calibrate else score_thr),
        max_per_img=max_per_img)
    sync = torch.cuda.synchronize if is_cuda else None

    entries = []
    for i, cfg_path in enumerate(configs):
        console.log(f'building {names[i]} from {cfg_path}')
        model, cfg, info = load_model(
            cfg_path,
            checkpoints[i],
            device=device,
            fuse=fuse_conv_bn,
            channels_last=channels_last,
            score_thr=score_thr if task == 'full' else None,
            max_per_img=max_per_img if task == 'full' else None,
            allow_partial_checkpoint=allow_partial_checkpoint)
        if data:
            batches = make_data_inputs(cfg, info['scope'], batch_size,
                                       data_batches)
        else:
            hw = shape or DEFAULT_SHAPES[info['task']]
            batches = make_inputs(info['task'], hw, batch_size)
        used_thr = score_thr if task == 'full' else None
        if calibrate and info['task'] == 'det':
            thr = calibrate_score_thr(model, batches[0], candidate_fraction)
            if thr is not None and _override_test_cfg(
                    model.bbox_head.test_cfg, 'score_thr', thr):
                used_thr = thr
        with torch.no_grad():
            net_in = model.data_preprocessor(batches[0], False)['inputs']
        in_shape = [1] + list(net_in.shape[1:])
        report = None
        if complexity:
            console.log(f'counting complexity of {names[i]} at '
                        f'{_fmt_shape(in_shape)}')
            target = model.backbone if task == 'backbone' else model
            report = complexity_report(
                target, in_shape, bn_fused=fuse_conv_bn)
        if compile:
            _compile_parts(model, task, compile_mode)
        if cuda_graphs:
            from .cuda_graphs import enable_cuda_graphs
            try:
                enable_cuda_graphs(model, task)
            except ValueError as e:
                raise UsageError(f'--cuda-graphs: {e}') from None
        fn = make_step_fn(model, batches, task, amp, channels_last)
        entries.append(
            dict(
                name=names[i],
                model=model,
                info=info,
                fn=fn,
                in_shape=in_shape,
                score_thr=used_thr,
                report=report))
        if onnxruntime:  # same weights, test_cfg and images, next row
            from .deploy.ort_runtime import onnxruntime_entry
            console.log(f'exporting {names[i]} to ONNX Runtime (mmdeploy)')
            entries.append(onnxruntime_entry(
                entries[-1], cfg_path, checkpoints[i], batches, used_thr,
                max_per_img, out_dir and osp.join(out_dir, 'onnx', names[i])))

    # One untimed call per model: compile time (with --compile) or lazy
    # init, and the detections-after-NMS count of these inputs.
    for e in entries:
        if sync:
            sync()
        t0 = time.perf_counter()
        out = e['fn']()
        if sync:
            sync()
        e['first_call_s'] = time.perf_counter() - t0
        e['dets'] = (count_detections(out) if task == 'full'
                     and isinstance(out, (list, tuple)) else None)
        if e['dets'] == 0:
            console.log(f'[yellow]note: no box survives post-processing for '
                        f'{e["name"]} (score_thr {e["score_thr"]!r}); NMS then '
                        'costs ~nothing. Use --score-thr 0 or a trained '
                        'checkpoint for a realistic load')
        e['finite'] = outputs_finite(out)
        if not e['finite']:
            console.log(f'[red]warning: {e["name"]} produced non-finite '
                        'outputs (inf/NaN): its timing may not be '
                        'representative')

    fns = [e['fn'] for e in entries]
    if progress:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress,
                                   TextColumn, TimeRemainingColumn)
        with Progress(
                TextColumn('[bold]timing'),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console) as bar:
            job = bar.add_task('timing', total=warmup + rounds)
            for _ in range(warmup):  # visible warmup, then timed rounds
                time_interleaved(fns, rounds=0, warmup=1)
                bar.advance(job)
            lats = time_interleaved(
                fns, rounds, warmup=0, sync=sync,
                on_round=lambda r: bar.advance(job))
    else:
        lats = time_interleaved(fns, rounds, warmup=warmup, sync=sync)

    macs = [e['report']['total']['macs'] if e['report'] else None
            for e in entries]
    if onnxruntime:  # ONNX Runtime rows: no metric of their own
        eval_results = [x for ev in eval_results for x in (ev, None)]
    rows = summarize(lats, batch_size, [e['name'] for e in entries], macs)
    metric_names = set()
    for e, r, lat, ev in zip(entries, rows, lats, eval_results):
        rep = e['report']
        r.update(
            config=e['info']['config'],
            checkpoint=e['info']['checkpoint'],
            task=task,
            input_shape=e['in_shape'],
            params=rep['total']['params'] if rep else None,
            macs=rep['total']['macs'] if rep else None,
            activations=rep['total']['activations'] if rep else None,
            ops=rep['total']['ops'] if rep else None,
            bn_fused=e['info']['bn_fused'],
            dets_per_img=e['dets'],
            score_thr=e['score_thr'],
            first_call_s=e['first_call_s'],
            outputs_finite=e['finite'],
            metric_key=None,
            metric=None,
            latencies_ms=[float(x) * 1e3 for x in lat])
        if ev is not None:
            r['metric_key'], r['metric'] = load_metric(ev, metric_key)
            metric_names.add(r['metric_key'])

    if task == 'full' and any(r['dets_per_img'] is not None for r in rows):
        settings['detections_note'] = (
            'dets/img = mean boxes per image after NMS on these inputs; '
            + (f'score_thr calibrated per model (column score_thr) so that '
               f'{candidate_fraction:g} of the (anchor, class) pairs of each '
               'image pass it: every model post-processes the same share of '
               'candidates, a busy image\'s load (see mmdet_gghost/'
               'benchmark.py)' if calibrate else
               'score_thr forced to 0: NMS gets a full candidate set, and '
               'every score of the image is sorted first (mmdet '
               'filter_scores_and_topk), heavier than any trained detector '
               'at its threshold' if score_thr == 0.0 else
               f'score_thr={score_thr}'))
    env = collect_env(device)
    print_table(rows, settings, console)
    result = dict(
        rows=rows,
        env=env,
        settings=settings,
        complexity={e['name']: e['report'] for e in entries},
        paths={},
        figure=None)
    if out_dir:
        result['paths'] = write_reports(
            out_dir, rows, env, settings,
            extra=dict(complexity=result['complexity']))
    if plot:
        pts = [r for r in rows if r['metric'] is not None]
        result['figure'] = plot_map_vs_fps(
            [r['name'] for r in pts], [r['fps'] for r in pts],
            [r['metric'] for r in pts],
            plot,
            metric_name=' / '.join(sorted(metric_names)) or 'mAP',
            title=_title(settings))
        result['paths']['plot'] = plot
    for k, p in result['paths'].items():
        console.log(f'wrote {p}')
    return result
