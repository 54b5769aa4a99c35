"""Model complexity: parameters, MACs, activations and ops per backbone
stage.

All counting is done by mmengine's jit-trace based analyzers
(:class:`mmengine.analysis.FlopAnalyzer`, :class:`ActivationAnalyzer`,
:func:`parameter_count`); this module only decides *what* to trace and how
to group the per-module counts into backbone stages.

Definitions (the ones the G-GhostNet paper uses):

* **MACs** -- multiply-accumulates. mmengine's ``FlopAnalyzer`` counts one
  fused multiply-add as one "flop", so its numbers *are* MACs; we never
  double them here. BatchNorm is **not** counted by default: at inference it
  folds into the preceding conv, and counting it (mmengine's estimate is
  2 ops per element) would make a fused and an unfused copy of the same
  network disagree. ``count_bn=True`` restores mmengine's default.
* **Activations** -- total number of elements of the outputs of every conv
  (and linear/matmul) layer, mmengine's ``ActivationAnalyzer``. The paper
  uses this as its proxy of GPU latency.
* **Params** -- learnable parameters (buffers such as BN running stats are
  not parameters). Folding BN into convs *changes* this number (each BN's
  ``weight``/``bias`` disappear, each conv gains a ``bias``), which is why
  every report says whether BN was fused.
* **Ops** -- device-launching aten ops per forward (:func:`count_ops`):
  every aten op PyTorch dispatches, views (``slice``, ``view``...) and
  allocations (``empty``) excluded, counted with a
  ``TorchDispatchMode`` on whatever device the model is on (deterministic).
  At batch 1 on a GPU the host launches one kernel per op and the GPU
  waits on it, so latency follows this number more than MACs.
"""
import copy
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import (ActivationAnalyzer, FlopAnalyzer,
                               parameter_count)
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = [
    'arch_to_backbone_cfg', 'build_backbone_from_arch',
    'build_model_from_config', 'load_config', 'infer_stage_groups',
    'complexity_report', 'complexity_table', 'complexity_notes',
    'print_complexity_report', 'count_ops', 'is_device_op',
    'format_count', 'count_bn_layers'
]

# --------------------------------------------------------------------------
# building models
# --------------------------------------------------------------------------

_ARCH_PATTERNS = [
    # (regex, function(match) -> backbone config dict)
    (r'gghost_resnet(\d+)', lambda m: dict(
        type='GGhostResNet', depth=int(m.group(1)))),
    (r'resnet(\d+)', lambda m: dict(type='ResNet', depth=int(m.group(1)))),
    (r'gghost_regnetx_[\d.]+[mg]f', lambda m: dict(
        type='GGhostRegNet', arch=m.group(0))),
    (r'regnetx_[\d.]+[mg]f', lambda m: dict(type='RegNet', arch=m.group(0))),
    (r'cghostnet_([\d.]+)x', lambda m: dict(
        type='CGhostNet', widen_factor=float(m.group(1)))),
]

ARCH_EXAMPLES = ('gghost_resnet34', 'resnet34', 'gghost_regnetx_3.2gf',
                 'regnetx_3.2gf', 'cghostnet_1.0x')


def strip_pretrained(cfg) -> int:
    """Set every ``init_cfg`` that loads pretrained weights to ``None``.

    Benchmarks and exports never need the ImageNet weights the configs
    point at, and ``init_weights`` must not try to download or open them. Returns how many were removed.
    """
    n = 0
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if k == 'init_cfg' and v is not None:
                items = v if isinstance(v, (list, tuple)) else [v]
                if any(isinstance(i, dict) and i.get('type') == 'Pretrained'
                       for i in items):
                    cfg[k] = None
                    n += 1
            else:
                n += strip_pretrained(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            n += strip_pretrained(v)
    return n


def init_weights_quietly(model: nn.Module, seed: int = 0) -> None:
    """``model.init_weights()`` under a fixed seed, without mmengine's
    per-parameter INFO dump; the global RNG state is restored."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model.init_weights()
    finally:
        torch.random.set_rng_state(state)
        logger.setLevel(level)


def arch_to_backbone_cfg(arch: str) -> dict:
    """Map a backbone name such as ``'gghost_resnet34'`` to a config dict.

    Returns:
        dict: e.g. ``dict(type='GGhostResNet', depth=34)``, buildable from
        mmdet's ``MODELS`` once ``mmdet_gghost`` is imported.

    Raises:
        ValueError: for a name none of the known patterns match.
    """
    name = arch.strip().lower()
    for pattern, make in _ARCH_PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            return make(m)
    raise ValueError(f'Unknown backbone arch {arch!r}; expected a config '
                     f'file or one of the forms {", ".join(ARCH_EXAMPLES)}')


def _import_project_modules(custom_imports: Optional[dict] = None) -> None:
    """Register our backbones (and a config's ``custom_imports``)."""
    try:
        import mmdet_gghost.models  # noqa: F401  (registers the backbones)
    except ImportError:
        # The stock models still work; a G-Ghost type will then fail to
        # build with the registry's own "not in the registry" message.
        pass
    if custom_imports:
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**custom_imports)


def _toolbox_models(scope: str):
    """The ``MODELS`` registry of an OpenMMLab toolbox, all modules loaded."""
    if scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
        from mmpretrain.utils import register_all_modules
    elif scope == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        raise ValueError(f'Unsupported default_scope {scope!r} '
                         "(expected 'mmdet' or 'mmpretrain')")
    register_all_modules(init_default_scope=False)
    return MODELS


def build_backbone_from_arch(arch: str, **overrides) -> nn.Module:
    """Build a bare backbone (eval mode, random init) from an arch name."""
    from mmengine.registry import DefaultScope
    cfg = arch_to_backbone_cfg(arch)
    cfg.update(overrides)
    _import_project_modules()
    models = _toolbox_models('mmdet')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = models.build(cfg)
    # not ``return model.eval()``: mmdet's ResNet.train() returns None
    model.eval()
    return model


def load_config(cfg_path, cfg_options: Optional[dict] = None):
    """Read a config file; a missing file raises one clear error."""
    import os.path as osp

    from mmengine.config import Config
    if isinstance(cfg_path, Config):
        cfg = copy.deepcopy(cfg_path)
    else:
        if not osp.isfile(str(cfg_path)):
            raise FileNotFoundError(f'Config file not found: {cfg_path}')
        cfg = Config.fromfile(str(cfg_path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model_from_config(cfg, cfg_options: Optional[dict] = None):
    """Build ``cfg.model`` with the registry of its ``default_scope``.

    Works for mmdet (detectors) and mmpretrain (classifiers) configs. The
    model is built without calling ``init_weights`` (so no pretrained
    download) and SyncBN is reverted to BN (single process).

    Args:
        cfg (str | Config): config path or object.

    Returns:
        tuple[nn.Module, Config, str]: the model (eval mode, CPU), the
        config and its scope (``'mmdet'`` or ``'mmpretrain'``).
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    cfg = load_config(cfg, cfg_options)
    scope = cfg.get('default_scope', None) or 'mmdet'
    _import_project_modules(cfg.get('custom_imports', None))
    models = _toolbox_models(scope)
    model_cfg = copy.deepcopy(cfg.model)
    # mmpretrain configs keep ``data_preprocessor`` at top level; mmengine's
    # Runner merges it into the model the same way.
    if cfg.get('data_preprocessor', None) is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    # Build under the config's scope: mmengine's Registry.build otherwise
    # follows whatever default scope the process last initialised, so an
    # mmdet config could be built from mmpretrain's registry (or vice versa)
    # when both are benchmarked in one process.
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(model_cfg)
    model = revert_sync_batchnorm(model)
    model.eval()
    return model, cfg, scope


# --------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------


def infer_stage_groups(backbone: nn.Module,
                       stage_names: Optional[Sequence[str]] = None
                       ) -> 'OrderedDict[str, List[str]]':
    """Group a backbone's child modules into stages.

    Priority: explicit ``stage_names``; the backbone's ``stage_names``
    attribute (our G-Ghost backbones); OpenMMLab ResNet-likes (``res_layers``
    attribute, e.g. mmdet ResNet/RegNet), whose stem is several children
    (``conv1``, ``bn1``, ``relu``, ``maxpool``) grouped as ``'stem'``;
    otherwise every top-level child is its own stage.

    Returns:
        OrderedDict: stage name -> list of child module names (relative to
        the backbone).
    """
    names = stage_names or getattr(backbone, 'stage_names', None)
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    if names:
        for n in names:
            groups[n] = [n]
        return groups
    children = [n for n, _ in backbone.named_children()]
    res_layers = list(getattr(backbone, 'res_layers', []) or [])
    if res_layers:
        stem = [n for n in children if n not in res_layers]
        if stem:
            groups['stem'] = stem
        for n in res_layers:
            groups[n] = [n]
        return groups
    for n in children:
        groups[n] = [n]
    return groups


def count_bn_layers(model: nn.Module) -> int:
    """Number of BatchNorm layers left in ``model`` (0 after fusing)."""
    return sum(
        isinstance(m, nn.modules.batchnorm._BatchNorm)
        for m in model.modules())


# --------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------


class _TensorForward:
    """Make ``model(x)`` trace the pure network part of an OpenMMLab model.

    Detectors/classifiers (mmengine ``BaseModel``) are traced in
    ``mode='tensor'``: backbone + neck + head, no data preprocessing and no
    post-processing (decoding, NMS), as mmdet's ``get_flops.py`` does. The
    instance attribute ``forward`` is patched (and restored) instead of
    wrapping the model so module names stay the model's own.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.patch = hasattr(model, 'data_preprocessor') and hasattr(
            model, '_run_forward')

    def __enter__(self):
        if self.patch:
            orig = self.model.forward

            def forward(x):
                return orig(x, mode='tensor')

            self.model.forward = forward
        return self.model

    def __exit__(self, *exc):
        if self.patch:
            del self.model.forward  # back to the class' method


# aten ops that allocate or alias without launching a kernel (views are
# recognised from their schema, see is_device_op)
NO_KERNEL_OPS = frozenset({
    'empty', 'empty_like', 'empty_strided', 'new_empty', 'new_empty_strided',
    'lift_fresh', '_unsafe_view', 'resize_'
})


def is_device_op(func) -> bool:
    """Whether the aten op ``func`` (an ``OpOverload``) launches device
    work: not a view (its schema says the output aliases an input) and not
    a pure allocation (:data:`NO_KERNEL_OPS`)."""
    return not func.is_view and \
        func.overloadpacket.__name__ not in NO_KERNEL_OPS


class _OpCounter(TorchDispatchMode):
    """Counts :func:`is_device_op` ops, for every module name in the
    ``active`` stack and per op name."""

    def __init__(self, active: List[str]):
        super().__init__()
        self.active = active
        self.by_module: Dict[str, int] = {}
        self.by_op: Dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if is_device_op(func):
            for name in self.active:
                self.by_module[name] = self.by_module.get(name, 0) + 1
            key = str(func.overloadpacket).replace('aten.', '')
            self.by_op[key] = self.by_op.get(key, 0) + 1
        return func(*args, **(kwargs or {}))


def count_ops(model: nn.Module, inputs: Tuple,
              module_names: Sequence[str] = ()) -> Tuple[Dict[str, int],
                                                         Dict[str, int]]:
    """Device-launching aten ops of one ``model(*inputs)`` (no grad).

    Args:
        module_names: submodules (dotted names) to count separately, e.g.
            the backbone stages; nested names are fine (an op counts for
            every tracked module it runs in).

    Returns:
        tuple: ``(by_module, by_op)``; ``by_module['']`` is the total, the
        other keys are ``module_names``; ``by_op`` maps op names such as
        ``'convolution'`` to counts.
    """
    active = ['']
    modules = dict(model.named_modules())
    patched = []

    def tracked(name, forward):
        def run(*args, **kwargs):
            active.append(name)
            try:
                return forward(*args, **kwargs)
            finally:
                active.pop()
        return run

    try:
        # ``forward`` wrapped on the instance rather than hooks: mmdet calls
        # e.g. ``self.bbox_head.forward(x)`` directly, past the hooks
        for name in module_names:
            m = modules[name]
            patched.append((m, m.__dict__.get('forward')))
            m.forward = tracked(name, m.forward)
        counter = _OpCounter(active)
        with torch.no_grad(), counter:
            model(*inputs)
    finally:
        for m, own in reversed(patched):
            if own is None:
                del m.forward
            else:
                m.forward = own
    by_module = {n: counter.by_module.get(n, 0) for n in [''] +
                 list(module_names)}
    return by_module, counter.by_op


def _zero_handle(inputs, outputs) -> int:
    return 0


def _as_input_shape(input_shape: Sequence[int]) -> Tuple[int, int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (3, ) + shape
    if len(shape) == 3:
        shape = (1, ) + shape
    if len(shape) != 4:
        raise ValueError(f'input_shape must be (H, W), (C, H, W) or '
                         f'(N, C, H, W), got {input_shape}')
    return shape


def _stats(params: Dict[str, int], macs: Dict[str, int],
           acts: Dict[str, int], names: Sequence[str],
           ops: Optional[Dict[str, int]] = None) -> dict:
    return dict(
        params=int(sum(params.get(n, 0) for n in names)),
        macs=int(sum(macs.get(n, 0) for n in names)),
        activations=int(sum(acts.get(n, 0) for n in names)),
        ops=int(sum((ops or {}).get(n, 0) for n in names)))


def complexity_report(model: nn.Module,
                      input_shape: Sequence[int],
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
    shape = _as_input_shape(input_shape)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device('cpu')
    x = torch.randn(*shape, device=device)

    backbone = getattr(model, 'backbone', None)
    prefix = 'backbone' if isinstance(backbone, nn.Module) else ''
    if not prefix:
        backbone = model
    groups = infer_stage_groups(backbone, stage_names)

    try:
        with _TensorForward(model) as traced, torch.no_grad():
            flops = FlopAnalyzer(traced, (x, ))
            if not count_bn:
                # a zero handle, not ``None``: mmengine only ignores ops
                # that have no handle, and batch_norm has one by default
                flops.set_op_handle('aten::batch_norm', _zero_handle)
            acts = ActivationAnalyzer(traced, (x, ))
            for analyzer in (flops, acts):
                # ReLU/add/pool are "unsupported" by design; the list is
                # returned instead of logged for every op.
                analyzer.unsupported_ops_warnings(False)
                analyzer.uncalled_modules_warnings(False)
            macs_by_mod = dict(flops.by_module())
            acts_by_mod = dict(acts.by_module())
            unsupported = dict(flops.unsupported_ops())
            ops_by_mod, ops_by_type = count_ops(
                traced, (x, ), _tracked_modules(model, prefix, groups))
    finally:
        model.train(was_training)
    params_by_mod = dict(parameter_count(model))

    def full(name):
        return f'{prefix}.{name}' if prefix and name else (prefix or name)

    def stats(names):
        return _stats(params_by_mod, macs_by_mod, acts_by_mod,
                      [full(n) for n in names], ops_by_mod)

    bb = stats([''])
    bb['name'] = prefix
    stages = []
    for name, mods in groups.items():
        s = stats(mods)
        s.update(name=name, modules=list(mods))
        stages.append(s)
    other = {
        k: bb[k] - sum(s[k] for s in stages)
        for k in ('params', 'macs', 'activations', 'ops')
    }
    parts = []
    if prefix:
        for name, _ in model.named_children():
            s = _stats(params_by_mod, macs_by_mod, acts_by_mod, [name],
                       ops_by_mod)
            if any(s.values()):  # e.g. not the data preprocessor
                s['name'] = name
                parts.append(s)
    n_bn = count_bn_layers(model)
    return dict(
        input_shape=list(shape),
        bn_fused=(n_bn == 0) if bn_fused is None else bool(bn_fused),
        bn_layers=n_bn,
        bn_macs_counted=bool(count_bn),
        total=_stats(params_by_mod, macs_by_mod, acts_by_mod, [''],
                     ops_by_mod),
        ops_by_type=dict(sorted(ops_by_type.items())),
        parts=parts,
        backbone=bb,
        stages=stages,
        other=other,
        unsupported_ops=unsupported)


def _tracked_modules(model: nn.Module, prefix: str,
                     groups: 'OrderedDict[str, List[str]]') -> List[str]:
    """Module names whose ops :func:`complexity_report` reports: the
    model's top-level children (detector parts) and the stage modules."""
    names = [n for n, _ in model.named_children()] if prefix else []
    for mods in groups.values():
        names += [f'{prefix}.{m}' if prefix else m for m in mods]
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------


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
    for col in ('params', 'MACs', 'activations', 'ops'):
        table.add_column(col, justify='right')
    table.add_column('% backbone MACs', justify='right')
    bb_macs = report['backbone']['macs'] or 1

    def row(name, s, style=None, share=True):
        table.add_row(
            name,
            format_count(s['params']),
            format_count(s['macs']),
            format_count(s['activations']),
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


def print_complexity_report(report: dict,
                            title: Optional[str] = None,
                            console=None) -> None:
    """Print :func:`complexity_table` and :func:`complexity_notes`."""
    from rich.console import Console
    console = console or Console()
    console.print(complexity_table(report, title))
    console.print(complexity_notes(report), soft_wrap=True)
