"""Evaluate a checkpoint of an mmdet or mmpretrain config (tools/test.py).

Writes the metrics to a JSON file that the benchmark tool reads::

    {"config": "/abs/cfg.py", "checkpoint": "/abs/iter_8.pth",
     "timestamp": "2026-11-28T14:50:00+00:00",
     "metrics": {"coco/bbox_mAP": 0.1, ...}}
"""
import datetime
import numbers
import os
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config
from mmengine.dist import get_rank
from mmengine.fileio import dump

from ..checkpoint.reading import is_remote, require_checkpoint
from .build import load_config
from .common import (check_datasets, prepare_distributed, register_toolbox,
                     set_work_dir)
from .train import build_runner
from .weights import check_checkpoint_matches


def _enable_visualization(cfg: Config, scope: str, show_dir: str) -> None:
    """Save painted predictions to ``show_dir`` (mmdet/mmpretrain hooks)."""
    hook = (cfg.get('default_hooks', None) or {}).get('visualization', None)
    if hook is None:
        raise RuntimeError(
            '--show-dir needs a VisualizationHook: add '
            "default_hooks=dict(visualization=dict(type='"
            "VisualizationHook')) to the config.")
    if scope == 'mmdet':
        hook.update(draw=True, test_out_dir=show_dir)
    else:  # mmpretrain's hook
        hook.update(enable=True, out_dir=show_dir)


def _add_dump_metric(runner, scope: str, out: str) -> None:
    """Also dump raw predictions to ``out`` (a .pkl file)."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl/.pickle file, got {out}')
    if scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults as Dump
    else:
        from mmengine.evaluator import DumpResults as Dump
    runner.test_evaluator.metrics.append(Dump(out_file_path=out))


def _to_json(value: Any) -> Any:
    """numpy/torch values in metrics -> plain JSON types."""
    if isinstance(value, numbers.Number):
        return float(value)  # e.g. numpy.float32, numpy.int64
    # arrays, tensors, numpy.bool_
    return value.tolist() if hasattr(value, 'tolist') else str(value)


def write_metrics_json(path: str, metrics: dict, config: str,
                       checkpoint: str) -> str:
    """Write ``metrics`` with provenance to ``path``; returns ``path``."""
    payload = dict(
        config=osp.abspath(config),
        checkpoint=checkpoint if is_remote(checkpoint) else
        osp.abspath(checkpoint),
        timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        metrics=metrics,
    )
    # (mmengine creates the folder)
    dump(payload, path, file_format='json', indent=2, default=_to_json)
    return path


def test(config: str, checkpoint: str, work_dir: Optional[str] = None,
         out: Optional[str] = None, metrics_json: Optional[str] = None,
         cfg_options: Optional[dict] = None, launcher: str = 'none',
         show_dir: Optional[str] = None,
         allow_partial_checkpoint: bool = False) -> dict:
    """Evaluate ``checkpoint`` on the config's test set; return metrics.

    Args:
        config, work_dir, cfg_options, launcher: as for
            :func:`~.train.build_train_cfg`.
        checkpoint: Checkpoint file or URL (loaded with the safe loader).
        out: Optional ``.pkl`` to dump raw predictions to.
        metrics_json: Where rank 0 writes the metrics JSON; default
            ``<work_dir>/metrics.json``.
        show_dir: Save painted predictions there.
        allow_partial_checkpoint: Only warn if the checkpoint does not fit
            the model; by default that is a ``CheckpointMismatchError``.
    """
    config, checkpoint = os.fspath(config), os.fspath(checkpoint)
    cfg = load_config(config, cfg_options)
    # fail early, naming the path; URLs are left to mmengine
    require_checkpoint(checkpoint)
    set_work_dir(cfg, config, work_dir)
    cfg.load_from = checkpoint
    cfg.resume = False
    scope = register_toolbox(cfg)
    if show_dir:
        _enable_visualization(cfg, scope, show_dir)
    check_datasets(cfg, ['test'])
    prepare_distributed(cfg, launcher)
    runner = build_runner(cfg)
    # mmengine would load a checkpoint that does not fit with a warning
    # only, and report the metrics of random tensors.
    check_checkpoint_matches(runner.model, checkpoint,
                             allow_partial_checkpoint)
    if out:
        _add_dump_metric(runner, scope, out)
    metrics = runner.test()
    if get_rank() == 0:
        path = osp.abspath(metrics_json
                           or osp.join(cfg.work_dir, 'metrics.json'))
        write_metrics_json(path, metrics, config, checkpoint)
        runner.logger.info(f'Metrics written to {path}')
    return metrics
