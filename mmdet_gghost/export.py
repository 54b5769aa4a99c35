"""Deploy paths: ONNX export with onnxruntime parity, and the fused /
channels-last / compiled forms of a model.

What is exported (``target``):

* ``'backbone'`` (any config, or a bare backbone module): ``(N, 3, H, W)`` ->
  the feature maps of ``out_indices`` (``feat_0`` ...).
* ``'model'``:

  - mmpretrain classifier: ``model(x, mode='tensor')`` = backbone + neck +
    head -> ``logits`` ``(N, num_classes)`` (before softmax).
  - mmdet single-stage detector (RetinaNet, FCOS, ...): ``model._forward(x)``
    = backbone + neck + head up to the raw head outputs, flattened per
    level: ``cls_score_0 .. cls_score_{L-1}``, ``bbox_pred_0 ..`` (and
    ``centerness_*`` for FCOS). Box decoding and NMS stay outside the graph.
    Two-stage detectors need data samples for their RPN proposals in
    ``_forward``; export their backbone instead.

The input is the *preprocessed* tensor: what the model's
``data_preprocessor`` produces (BGR->RGB if configured, ``(x - mean) /
std``, padded to a multiple of 32 for detectors). ``H`` and ``W`` must stay
multiples of 32 for a detector (FPN adds upsampled maps to laterals; mmdet's
own padding guarantees this).

The exported model is the deploy form: BN folded into the convs
(:func:`mmdet_gghost.models.fuse_model`). Exporter: PyTorch's TorchScript-
based exporter (``torch.onnx.export(..., dynamo=False)``). Since PyTorch
2.9 the default is the ``torch.export``-based exporter, which needs the
``onnxscript`` package; the TorchScript one needs only ``torch`` and is
still there (deprecated) in PyTorch 2.14.

Dynamic axes: the batch axis always; with ``dynamic_hw`` (default) also the
spatial axes of the input and of every 4-D output -- every graph here is
shape-agnostic (convs, channel slices with constant bounds, global mean
pooling, FPN upsampling to the lateral's runtime size).

Parity: :func:`verify_onnx` runs onnxruntime and the *unfused* eval-mode
PyTorch model on the same random input and reports, per output, the max
relative error ``max|a - b| / max|a|`` (``a`` = PyTorch, ``b`` =
onnxruntime; one scale per output tensor, so that near-zero elements do not
blow up the ratio). The tolerance is 1e-4. So the check covers BN fusion
*and* the export.
"""
import copy
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .analysis import init_weights_quietly

__all__ = [
    'DEPLOY_INSTALL_HINT', 'EXPORTER', 'require_onnx', 'require_onnxruntime',
    'build_model', 'randomize_bn_stats', 'init_weights_quietly',
    'export_module', 'export_onnx', 'run_onnxruntime', 'max_rel_err',
    'compare_outputs', 'verify_onnx', 'export_config', 'format_report',
    'deploy_forms', 'time_forms'
]

DEPLOY_INSTALL_HINT = 'pip install -e .[deploy]'
#: What :func:`export_onnx` calls ``torch.onnx.export`` with.
EXPORTER = 'torchscript (torch.onnx.export(..., dynamo=False))'
DEFAULT_TOL = 1e-4
DEFAULT_OPSET = 17


# --------------------------------------------------------------------------
# optional dependencies
# --------------------------------------------------------------------------


def require_onnx():
    """``import onnx``, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError(
            f'ONNX export needs the onnx package ({e}); install the deploy '
            f'extra: {DEPLOY_INSTALL_HINT}') from e
    return onnx


def require_onnxruntime():
    """``import onnxruntime``, or an ImportError that says how to install
    it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            f'verifying an ONNX export needs onnxruntime ({e}); install the '
            f'deploy extra: {DEPLOY_INSTALL_HINT} (or skip the check with '
            '--no-verify)') from e
    return onnxruntime


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


@torch.no_grad()
def randomize_bn_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial running statistics and affine parameters.

    Freshly initialised BNs (mean 0, var 1, weight 1 -- or 0 for
    zero-initialised residual branches --, bias 0) make folding them almost
    a no-op, so a parity check on such weights would not notice a BN folded
    into the wrong conv. Values: mean ~ N(0, 0.1), var ~ U(0.5, 1.5),
    weight ~ U(0.5, 1.5), bias ~ N(0, 0.1).
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            if m.running_mean is not None:
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.weight is not None:
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def build_model(config, checkpoint: Optional[str] = None,
                cfg_options: Optional[dict] = None, seed: int = 0,
                random_bn: Optional[bool] = None,
                allow_partial_checkpoint: bool = False):
    """Build the model of an mmdet or mmpretrain config, in eval mode.

    The toolbox is chosen by the config's ``default_scope``. Pretrained
    ``init_cfg`` entries are removed first, so building never opens the
    ImageNet checkpoints the detection configs point at. Then either
    ``checkpoint`` is loaded (every tensor must fit, see
    :mod:`mmdet_gghost.apis.weights`; ``allow_partial_checkpoint`` loads
    what fits over ``init_weights()``) or the model
    gets its own ``init_weights()`` (fixed ``seed``) and, unless
    ``random_bn=False``, random BN statistics (:func:`randomize_bn_stats`),
    so that checks on it exercise the BN folding.

    Returns:
        tuple: ``(model, cfg, scope)``; ``scope`` is ``'mmdet'`` or
        ``'mmpretrain'``.
    """
    from .analysis import (build_model_from_config, load_config,
                           strip_pretrained)

    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg = load_config(config, cfg_options)
    strip_pretrained(cfg.model)
    model, cfg, scope = build_model_from_config(cfg)
    if checkpoint is not None:
        from .apis.weights import load_checkpoint_checked
        if allow_partial_checkpoint and hasattr(model, 'init_weights'):
            init_weights_quietly(model, seed)
        load_checkpoint_checked(model, checkpoint, allow_partial_checkpoint)
    else:
        if hasattr(model, 'init_weights'):
            init_weights_quietly(model, seed)
        if random_bn is None or random_bn:
            randomize_bn_stats(model, seed)
    model.eval()
    return model, cfg, scope


class _Exportable(nn.Module):
    """Tensor in, flat tuple of tensors out (what ONNX export wants)."""

    def __init__(self, model: nn.Module, kind: str):
        super().__init__()
        self.model = model
        self.kind = kind

    def raw(self, x):
        """The model's own (nested) tensor outputs."""
        if self.kind == 'backbone':
            return self.model(x)
        if self.kind == 'classifier':
            return self.model(x, mode='tensor')
        return self.model._forward(x)  # detector

    def forward(self, x):
        return tuple(_flatten(self.raw(x)))


def _flatten(out) -> List[torch.Tensor]:
    if torch.is_tensor(out):
        return [out]
    flat = []
    for o in out:
        flat.extend(_flatten(o))
    return flat


def _output_names(kind: str, raw_out) -> List[str]:
    if kind == 'backbone':
        return [f'feat_{i}' for i in range(len(_flatten(raw_out)))]
    if kind == 'classifier':
        if torch.is_tensor(raw_out):
            return ['logits']
        return [f'logits_{i}' for i in range(len(_flatten(raw_out)))]
    # detector: (cls_scores, bbox_preds[, centernesses]) per level
    groups = ('cls_score', 'bbox_pred', 'centerness')
    names = []
    for g, part in enumerate(raw_out):
        base = groups[g] if g < len(groups) and len(raw_out) <= 3 \
            else f'out{g}'
        names.extend(f'{base}_{lvl}' for lvl in range(len(_flatten(part))))
    return names


def export_module(model: nn.Module, scope: Optional[str] = None,
                  target: str = 'model') -> Tuple[nn.Module, str]:
    """The part of ``model`` to export, wrapped to return a flat tuple.

    Args:
        model: an mmdet detector, an mmpretrain classifier or a bare
            backbone.
        scope: ``'mmdet'`` / ``'mmpretrain'`` (only used in messages).
        target: ``'backbone'`` or ``'model'`` (see module docstring).

    Returns:
        tuple: ``(module, kind)``, ``kind`` in ``'backbone'``,
        ``'classifier'``, ``'detector'``.
    """
    if target not in ('backbone', 'model'):
        raise ValueError(f"target must be 'backbone' or 'model', got "
                         f'{target!r}')
    if not isinstance(getattr(model, 'backbone', None), nn.Module):
        # a bare backbone: exporting "the model" means the backbone too
        return _Exportable(model, 'backbone').eval(), 'backbone'
    if target == 'backbone':
        return _Exportable(model.backbone, 'backbone').eval(), 'backbone'
    from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
    if isinstance(model, TwoStageDetector):
        raise ValueError(
            f'{type(model).__name__} is a two-stage detector: its tensor '
            'forward needs data samples for the RPN proposals, which an ONNX '
            'graph cannot take; export its backbone (--target backbone) or '
            'use mmdeploy for the whole detector')
    if isinstance(model, SingleStageDetector):
        return _Exportable(model, 'detector').eval(), 'detector'
    if hasattr(model, 'head') and hasattr(model, 'extract_feat'):
        return _Exportable(model, 'classifier').eval(), 'classifier'
    raise ValueError(
        f'do not know how to export the whole {type(model).__name__} '
        f'(scope {scope}); use --target backbone')


# --------------------------------------------------------------------------
# export and parity
# --------------------------------------------------------------------------


def export_onnx(module: nn.Module, out_file: str,
                input_shape: Sequence[int] = (1, 3, 224, 224),
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
                dynamic_hw: bool = True, output_names=None,
                check: bool = True) -> Dict:
    """Export ``module`` (tensor -> tuple of tensors) with the TorchScript
    exporter.

    Returns:
        dict: ``input_name``, ``output_names``, ``dynamic_axes``,
        ``opset``, ``file``.
    """
    onnx = require_onnx() if check else None
    module = module.eval()
    x = torch.randn(*input_shape)
    with torch.no_grad():
        raw = module(x)
    if output_names is None:
        output_names = [f'output_{i}' for i in range(len(raw))]
    output_names = list(output_names)
    if len(output_names) != len(raw):
        raise ValueError(f'{len(output_names)} output names for {len(raw)} '
                         'outputs')
    dynamic_axes = {}
    if dynamic_batch or dynamic_hw:
        in_axes = {}
        if dynamic_batch:
            in_axes[0] = 'batch'
        if dynamic_hw:
            in_axes.update({2: 'height', 3: 'width'})
        dynamic_axes['input'] = in_axes
        for name, t in zip(output_names, raw):
            axes = {}
            if dynamic_batch:
                axes[0] = 'batch'
            if dynamic_hw and t.dim() == 4:
                axes.update({2: f'{name}_h', 3: f'{name}_w'})
            if axes:
                dynamic_axes[name] = axes
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    with warnings.catch_warnings():
        # "legacy TorchScript-based ONNX export" deprecation notice, and
        # tracer warnings about shape values turned into constants (none of
        # our graphs depends on one; the parity check at a second shape
        # would catch it).
        warnings.simplefilter('ignore')
        with torch.no_grad():
            torch.onnx.export(
                module, (x, ),
                out_file,
                dynamo=False,
                input_names=['input'],
                output_names=output_names,
                dynamic_axes=dynamic_axes or None,
                opset_version=opset,
                do_constant_folding=True)
    if check:
        onnx.checker.check_model(onnx.load(out_file))
    return dict(file=out_file, input_name='input', output_names=output_names,
                dynamic_axes=dynamic_axes, opset=opset)


def run_onnxruntime(onnx_file: str, x, session=None) -> List[np.ndarray]:
    """Outputs of ``onnx_file`` on ``x`` (CPU execution provider)."""
    if session is None:
        ort = require_onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(onnx_file, opts,
                                       providers=['CPUExecutionProvider'])
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(x, np.float32)})


def max_rel_err(ref, out) -> float:
    """``max|ref - out| / max|ref|`` over the whole tensor (``inf`` when the
    shapes differ; the plain max abs error when ``ref`` is all zero)."""
    ref = ref.detach().cpu().numpy() if torch.is_tensor(ref) else \
        np.asarray(ref)
    out = out.detach().cpu().numpy() if torch.is_tensor(out) else \
        np.asarray(out)
    if ref.shape != out.shape:
        return float('inf')
    ref = ref.astype(np.float64)
    diff = np.abs(ref - out.astype(np.float64)).max() if ref.size else 0.0
    scale = np.abs(ref).max() if ref.size else 0.0
    if not np.isfinite(diff) or not np.isfinite(scale):
        return float('inf')
    return float(diff / scale) if scale > 0 else float(diff)


def compare_outputs(refs, outs, names=None, tol: float = DEFAULT_TOL
                    ) -> List[Dict]:
    """Per-output parity rows: name, shape, max_abs, max_abs_ref, max_rel,
    ok (``max_rel <= tol``)."""
    refs, outs = list(refs), list(outs)
    if len(refs) != len(outs):
        raise ValueError(f'{len(refs)} reference outputs vs {len(outs)}')
    names = names or [f'output_{i}' for i in range(len(refs))]
    rows = []
    for name, a, b in zip(names, refs, outs):
        a_np = a.detach().cpu().numpy() if torch.is_tensor(a) else a
        b_np = b.detach().cpu().numpy() if torch.is_tensor(b) else b
        rel = max_rel_err(a_np, b_np)
        same_shape = tuple(a_np.shape) == tuple(b_np.shape)
        rows.append(
            dict(
                name=name,
                shape=tuple(a_np.shape),
                max_abs=float(np.abs(a_np - b_np).max())
                if same_shape and a_np.size else float('inf'),
                max_abs_ref=float(np.abs(a_np).max()) if a_np.size else 0.0,
                max_rel=rel,
                ok=rel <= tol))
    return rows


def verify_onnx(onnx_file: str, reference: nn.Module,
                input_shapes: Sequence[Sequence[int]],
                output_names=None, tol: float = DEFAULT_TOL,
                seed: int = 0) -> List[Dict]:
    """Run ``onnx_file`` in onnxruntime and ``reference`` in PyTorch on the
    same random inputs, one per shape in ``input_shapes``.

    Returns:
        list: one dict per input shape: ``input_shape``, ``rows``
        (:func:`compare_outputs`), ``ok``.
    """
    ort = require_onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(onnx_file, opts,
                                   providers=['CPUExecutionProvider'])
    g = torch.Generator().manual_seed(seed)
    results = []
    for shape in input_shapes:
        x = torch.randn(*shape, generator=g)
        with torch.no_grad():
            ref = reference(x)
        ref = _flatten(ref)
        out = run_onnxruntime(onnx_file, x, session=session)
        rows = compare_outputs(ref, out, output_names, tol)
        results.append(dict(input_shape=tuple(shape), rows=rows,
                            ok=all(r['ok'] for r in rows)))
    return results


def _count_bn(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for m in model.modules())


def export_config(config, out_file: str, checkpoint: Optional[str] = None,
                  target: str = 'model', shape: Sequence[int] = None,
                  batch: int = 1, opset: int = DEFAULT_OPSET,
                  verify: bool = True, dynamic_hw: bool = True,
                  tol: float = DEFAULT_TOL, seed: int = 0,
                  cfg_options: Optional[dict] = None,
                  verify_dynamic: bool = True, model=None,
                  allow_partial_checkpoint: bool = False) -> Dict:
    """Config -> deploy form (BN fused) -> ONNX -> onnxruntime parity.

    Verification runs the export at the export shape and, with
    ``verify_dynamic``, at batch ``batch + 1`` (dynamic batch) and, with
    ``dynamic_hw``, at a second spatial size (``+32`` in H, ``+64`` in W),
    each against the *unfused* eval-mode PyTorch model.

    Args:
        model: an already built ``(model, scope)`` pair instead of building
            from ``config`` (tests).
        allow_partial_checkpoint: see :func:`build_model`.

    Returns:
        dict: ``kind``, ``scope``, ``file``, ``output_names``,
        ``dynamic_axes``, ``opset``, ``exporter``, ``fused_bn`` (BNs
        folded), ``checks`` (see :func:`verify_onnx`; empty without
        ``verify``), ``ok``.
    """
    from .models import fuse_model

    require_onnx()
    if verify:
        require_onnxruntime()
    if model is None:
        model, _, scope = build_model(
            config, checkpoint, cfg_options, seed,
            allow_partial_checkpoint=allow_partial_checkpoint)
    else:
        model, scope = model
    reference, kind = export_module(model, scope, target)
    if shape is None:
        shape = (800, 1216) if kind == 'detector' else (224, 224)
    h, w = shape
    if kind == 'detector' and (h % 32 or w % 32):
        raise ValueError(f'detector input {h}x{w}: H and W must be multiples '
                         "of 32 (what the data preprocessor's padding gives)")
    deploy = copy.deepcopy(reference)
    n_bn = _count_bn(deploy)
    # fuse the wrapped model, not the wrapper: fuse_model's leftover check
    # treats everything inside a module of this package as ours
    fuse_model(deploy.model)
    n_left = _count_bn(deploy)
    with torch.no_grad():
        raw = deploy.raw(torch.zeros(batch, 3, h, w))
    names = _output_names(kind, raw)
    info = export_onnx(deploy, out_file, (batch, 3, h, w), opset=opset,
                       dynamic_batch=True, dynamic_hw=dynamic_hw,
                       output_names=names)
    shapes = [(batch, 3, h, w)]
    if verify_dynamic:
        shapes.append((batch + 1, 3, h, w))
        if dynamic_hw:
            shapes.append((batch, 3, h + 32, w + 64))
    checks = verify_onnx(out_file, reference, shapes, names, tol, seed) \
        if verify else []
    return dict(
        kind=kind,
        scope=scope,
        exporter=EXPORTER,
        fused_bn=n_bn - n_left,
        unfused_bn=n_left,
        tol=tol,
        checks=checks,
        ok=all(c['ok'] for c in checks),
        **info)


def format_report(report: Dict) -> str:
    """Human-readable lines of an :func:`export_config` report."""
    lines = [
        f"exported {report['kind']} ({report['scope']}) -> {report['file']}",
        f"  exporter: {report['exporter']}, opset {report['opset']}; "
        f"{report['fused_bn']} BN folded into convs"
        + (f", {report['unfused_bn']} BN left (no conv before them)"
           if report['unfused_bn'] else ''),
        '  dynamic axes: ' + ', '.join(
            f'{k}{sorted(v)}' for k, v in report['dynamic_axes'].items()
            if k == 'input') + ' (and the matching axes of every output)',
    ]
    if not report['checks']:
        lines.append('  parity: not checked (--no-verify)')
    for c in report['checks']:
        lines.append(
            f"  onnxruntime vs PyTorch (eval, unfused) at input "
            f"{'x'.join(map(str, c['input_shape']))}: "
            f"{'OK' if c['ok'] else 'FAILED'} (max rel err = max|a-b| / "
            f"max|a| <= {report['tol']:g})")
        for r in c['rows']:
            lines.append(
                f"    {r['name']:<14} {'x'.join(map(str, r['shape'])):<16} "
                f"max_rel {r['max_rel']:.2e}  max_abs {r['max_abs']:.2e}  "
                f"{'ok' if r['ok'] else 'FAIL'}")
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# fused / channels-last / compiled forms
# --------------------------------------------------------------------------


def deploy_forms(model: nn.Module, forms: Sequence[str] = (
        'eval', 'fused', 'channels_last', 'fused_channels_last'),
                 compile_backend: Optional[str] = None
                 ) -> Dict[str, nn.Module]:
    """Copies of ``model`` (eval mode) in the requested inference forms.

    Forms: ``'eval'`` (as is), ``'fused'`` (BN folded), ``'channels_last'``
    (NHWC weights; feed NHWC inputs for speed -- the outputs are the same
    values either way), ``'fused_channels_last'``, and any of these with a
    ``'compiled_'`` prefix (``torch.compile`` with ``compile_backend``,
    default inductor).
    """
    from .models import fuse_model

    out = {}
    for form in forms:
        base = form[len('compiled_'):] if form.startswith('compiled_') \
            else form
        m = copy.deepcopy(model).eval()
        if base not in ('eval', 'fused', 'channels_last',
                        'fused_channels_last'):
            raise ValueError(f'unknown form {form!r}')
        if 'fused' in base:
            fuse_model(m)
        if 'channels_last' in base:
            m = m.to(memory_format=torch.channels_last)
        if form.startswith('compiled_'):
            m = torch.compile(m, backend=compile_backend or 'inductor')
        out[form] = m
    return out


def time_forms(forms: Dict[str, nn.Module], input_shape: Sequence[int],
               rounds: int = 5, warmup: int = 1, seed: int = 0) -> Dict:
    """CPU latency of inference forms (see :func:`deploy_forms`), timed in
    interleaved rounds (form 1, 2, ..., n, then again), so that drifts of a
    busy machine hit every form alike.

    The first call of each form (``first_call_s``: compilation for compiled
    forms) is untimed; then ``warmup`` untimed rounds. Channels-last forms
    get an NHWC input. Also checks each form's outputs against the first
    form's (``max_rel``).

    Returns:
        dict: form -> dict(median_s, min_s, ratio (median over rounds of
        this form's time / the first form's, same round), first_call_s,
        max_rel).
    """
    import time

    from .benchmark import time_interleaved

    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(
        seed))
    names = list(forms)
    fns, firsts, outs = [], {}, {}
    for name in names:
        inp = x.contiguous(memory_format=torch.channels_last) \
            if 'channels_last' in name else x
        model = forms[name]

        def fn(model=model, inp=inp):
            with torch.no_grad():
                return model(inp)

        t0 = time.perf_counter()
        outs[name] = _flatten(fn())
        firsts[name] = time.perf_counter() - t0
        fns.append(fn)
    lat = time_interleaved(fns, rounds=rounds, warmup=warmup)
    ref = lat[0]
    result = {}
    for name, t in zip(names, lat):
        result[name] = dict(
            median_s=float(np.median(t)),
            min_s=float(np.min(t)),
            ratio=float(np.median(t / ref)),
            first_call_s=firsts[name],
            max_rel=max(
                max_rel_err(a, b) for a, b in zip(outs[names[0]],
                                                  outs[name])))
    return result
