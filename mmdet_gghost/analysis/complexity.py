"""Params, MACs, activations and ops per backbone stage
(:func:`complexity_report`, counted by mmengine's analyzers) and their
printing (:func:`print_complexity_report`).

* **MACs**: mmengine's ``FlopAnalyzer`` "flops" (one fused multiply-add
  counts one).  BatchNorm is not counted unless ``count_bn``: it folds into
  the preceding conv at inference, so a fused and an unfused copy agree.
* **Activations**: elements of every conv/linear output
  (``ActivationAnalyzer``), the paper's proxy of GPU latency.
* **Params**: learnable parameters; folding BN changes them, hence every
  report says whether BN was fused.
* **Ops**: device-launching aten ops per forward (:func:`.ops.count_ops`).
"""
import contextlib
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union
from unittest import mock

import torch
import torch.nn as nn
from mmengine.analysis import (ActivationAnalyzer, FlopAnalyzer,
                               parameter_count)

from .ops import count_ops


def infer_stage_groups(backbone: nn.Module,
                       stage_names: Optional[Sequence[str]] = None
                       ) -> 'OrderedDict[str, List[str]]':
    """Stage name -> child module names of ``backbone``.

    Priority: explicit ``stage_names``; the backbone's ``stage_names``
    attribute (our G-Ghost backbones); ``res_layers`` (mmdet ResNet/RegNet),
    the other children grouped as ``'stem'``; else one stage per child.
    """
    names = stage_names or getattr(backbone, 'stage_names', None)
    if names:
        return OrderedDict((n, [n]) for n in names)
    children = [n for n, _ in backbone.named_children()]
    res_layers = list(getattr(backbone, 'res_layers', []) or [])
    stem = [n for n in children if n not in res_layers]
    groups = OrderedDict([('stem', stem)] if res_layers and stem else [])
    groups.update((n, [n]) for n in res_layers or children)
    return groups


def count_bn_layers(model: nn.Module) -> int:
    """Number of BatchNorm layers left in ``model`` (0 after fusing)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for m in model.modules())


def _tensor_forward(model: nn.Module):
    """A context in which ``model(x)`` of an OpenMMLab ``BaseModel``
    (detector/classifier) runs in ``mode='tensor'`` (no preprocessing, no
    decoding/NMS), as in mmdet's ``get_flops.py``.  ``forward`` is patched
    on the instance, not wrapped, so module names stay the model's own."""
    if not (hasattr(model, 'data_preprocessor')
            and hasattr(model, '_run_forward')):
        return contextlib.nullcontext()
    forward = model.forward
    return mock.patch.object(model, 'forward',
                             lambda x: forward(x, mode='tensor'))


STAT_KEYS = ('params', 'macs', 'activations', 'ops')


def complexity_report(model: nn.Module, input_shape: Sequence[int],
                      stage_names: Optional[Sequence[str]] = None,
                      count_bn: bool = False,
                      bn_fused: Optional[bool] = None) -> dict:
    """Params, MACs and activations of ``model``, total and per stage.

    Args:
        model: a bare backbone, or an OpenMMLab detector/classifier with a
            ``backbone`` attribute (traced in ``mode='tensor'``, i.e.
            without preprocessing and post-processing).
        input_shape: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` of the
            *network* input (for detectors: after padding). Counts are for
            that batch size (1 unless given).
        stage_names: backbone stage module names in order; by default the
            backbone's ``stage_names`` attribute or :func:`infer_stage_groups`.
        count_bn: count BatchNorm ops in MACs (mmengine's default); off by
            default since BN folds into convs at inference.
        bn_fused: recorded as is (whether the caller folded BN); ``None``
            means "fused iff no BatchNorm layer is left".

    Returns:
        dict with keys ``input_shape`` (list of 4 ints), ``bn_fused``,
        ``bn_layers`` (BN layers left), ``bn_macs_counted``, ``total``,
        ``parts`` (top-level children with a non-zero count, e.g.
        backbone/neck/bbox_head; detectors and classifiers only),
        ``backbone`` (with ``name``: its module path, '' for a bare
        backbone), ``stages`` (list of dicts with ``name`` and ``modules``),
        ``other`` (backbone total minus its stages: ops run directly in the
        backbone's ``forward``), ``unsupported_ops`` (op -> count, ops
        mmengine does not count: ReLU, add, pooling...), ``ops_by_type``
        (aten op name -> count of :func:`count_ops`). Every stats dict
        has integer ``params``, ``macs``, ``activations`` and ``ops``.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (2, 3, 4):
        raise ValueError(f'input_shape must be (H, W), (C, H, W) or '
                         f'(N, C, H, W), got {input_shape}')
    shape = (1, 3)[:4 - len(shape)] + shape  # the missing N=1, C=3
    backbone = getattr(model, 'backbone', None)
    prefix = 'backbone' if isinstance(backbone, nn.Module) else ''
    groups = infer_stage_groups(backbone if prefix else model, stage_names)
    # detector/classifier parts, then the stages: their ops are counted
    children = [n for n, _ in model.named_children()] if prefix else []
    tracked = children + [_full_name(prefix, m) for mods in groups.values()
                          for m in mods]
    counts = _trace_counts(model, shape, count_bn,
                           list(dict.fromkeys(tracked)))
    counts['params'] = dict(parameter_count(model))

    def stats(names, prefix=prefix):  # STAT_KEYS over modules ``names``
        names = [_full_name(prefix, n) for n in names]
        return {key: int(sum(counts[key].get(n, 0) for n in names))
                for key in STAT_KEYS}

    bb = dict(stats(['']), name=prefix)
    stages = [dict(stats(mods), name=name, modules=list(mods))
              for name, mods in groups.items()]
    other = {k: bb[k] - sum(s[k] for s in stages) for k in STAT_KEYS}
    parts = [dict(stats([n], ''), name=n) for n in children]
    # e.g. not the data preprocessor
    parts = [p for p in parts if any(p[k] for k in STAT_KEYS)]
    n_bn = count_bn_layers(model)
    return dict(
        input_shape=list(shape),
        bn_fused=(n_bn == 0) if bn_fused is None else bool(bn_fused),
        bn_layers=n_bn, bn_macs_counted=bool(count_bn), total=stats([''], ''),
        ops_by_type=dict(sorted(counts['ops_by_type'].items())),
        parts=parts, backbone=bb, stages=stages, other=other,
        unsupported_ops=counts['unsupported'])


def _full_name(prefix: str, name: str) -> str:
    """A backbone-relative module name as a name in the whole model."""
    return f'{prefix}.{name}' if prefix and name else (prefix or name)


def _trace_counts(model: nn.Module, shape: Tuple[int, int, int, int],
                  count_bn: bool, tracked: List[str]) -> dict:
    """MACs, activations (per module) and ops (per tracked module and per
    op type) of one eval-mode forward of a random input of ``shape``; the
    model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    # a model without parameters runs on the CPU
    param = next(model.parameters(), torch.empty(0))
    x = torch.randn(*shape, device=param.device)
    try:
        with _tensor_forward(model), torch.no_grad():
            flops = FlopAnalyzer(model, (x, ))
            if not count_bn:
                # a zero handle, not ``None``: mmengine only ignores ops
                # that have no handle, and batch_norm has one by default
                flops.set_op_handle('aten::batch_norm',
                                    lambda inputs, outputs: 0)
            acts = ActivationAnalyzer(model, (x, ))
            for analyzer in (flops, acts):
                # ReLU/add/pool are "unsupported" by design; the list is
                # returned instead of logged for every op.
                analyzer.unsupported_ops_warnings(False)
                analyzer.uncalled_modules_warnings(False)
            counts = dict(macs=dict(flops.by_module()),
                          activations=dict(acts.by_module()),
                          unsupported=dict(flops.unsupported_ops()))
            counts['ops'], counts['ops_by_type'] = count_ops(
                model, (x, ), tracked)
    finally:
        model.train(was_training)
    return counts


def format_count(x: Union[int, float, None], digits: int = 3) -> str:
    """``21284672 -> '21.3M'``; K/M/G/T suffixes, 3 significant digits."""
    if x is None:
        return '-'
    for div, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(x) >= div:
            return f'{x / div:.{digits}g}{suffix}'
    return f'{x:.{digits}g}' if isinstance(x, float) else str(x)


def complexity_notes(report: dict) -> str:
    """One line saying what the numbers of a report mean (BN fused or not)."""
    n, c, h, w = report['input_shape']
    fused = ('yes' if report['bn_fused'] else
             f'no ({report["bn_layers"]} BN layers)')
    bn_ops = 'counted' if report['bn_macs_counted'] else 'not counted'
    return (f'input {n}x{c}x{h}x{w}; BN fused: {fused}; MACs = '
            'multiply-accumulates (mmengine FlopAnalyzer "flops"; BN ops '
            f'{bn_ops}); activations = elements of conv/linear outputs; '
            'ops = device-launching aten ops per forward (views and '
            'allocations excluded)')


def complexity_table(report: dict, title: Optional[str] = None):
    """A :class:`rich.table.Table` of a :func:`complexity_report` dict."""
    from rich.table import Table
    table = Table(title=title)
    table.add_column('module')
    for col in ('params', 'MACs', 'activations', 'ops', '% backbone MACs'):
        table.add_column(col, justify='right')
    bb_macs = report['backbone']['macs'] or 1

    def row(name, s, style=None, share=True):
        table.add_row(name, *(format_count(s[k]) for k in STAT_KEYS[:3]),
                      str(s.get('ops', '-')),
                      f'{100.0 * s["macs"] / bb_macs:.1f}' if share else '',
                      style=style)

    if report['parts']:
        row('model (total)', report['total'], style='bold', share=False)
        for p in report['parts']:
            row(f'  {p["name"]}', p, share=False)
        table.add_section()
    bb_name = report['backbone']['name'] or 'backbone'
    row(f'{bb_name} (total)', report['backbone'], style='bold')
    for s in report['stages']:
        row(f'  {s["name"]}', s)
    if any(report['other'].values()):
        row('  (outside stages)', report['other'])
    return table


def print_complexity_report(report: dict, title: Optional[str] = None,
                            console=None) -> None:
    """Print :func:`complexity_table` and :func:`complexity_notes`."""
    from rich.console import Console
    console = console or Console()
    console.print(complexity_table(report, title))
    console.print(complexity_notes(report), soft_wrap=True)
