"""ONNX export of the deploy form (BN folded into convs) with PyTorch's
TorchScript exporter (``dynamo=False``: the ``torch.export`` one, default
since 2.9, needs ``onnxscript``), and its onnxruntime parity check against
the unfused eval-mode PyTorch model (so the check covers BN fusion too)."""
import copy
import importlib
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..analysis import count_bn_layers
from ..models import fuse_model
from .modules import (flatten_outputs, _output_names, build_export_model,
                      export_module)

#: What :func:`export_onnx` calls ``torch.onnx.export`` with.
EXPORTER = 'torchscript (torch.onnx.export(..., dynamo=False))'
DEFAULT_TOL = 1e-4
DEFAULT_OPSET = 17


def require_onnx(module: str = 'onnx'):
    """``import onnx`` (or ``onnxruntime``), or an ImportError that says
    how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        need, hint = (('ONNX export needs the onnx package', '')
                      if module == 'onnx' else
                      ('verifying an ONNX export needs onnxruntime',
                       ' (or skip the check with --no-verify)'))
        raise ImportError(f'{need} ({e}); install the deploy extra: '
                          f'pip install -e .[deploy]{hint}') from e


def export_onnx(module: nn.Module, out_file: str,
                input_shape: Sequence[int] = (1, 3, 224, 224),
                opset: int = DEFAULT_OPSET, dynamic_hw: bool = True,
                output_names=None) -> Dict:
    """Export ``module`` (tensor -> tuple of tensors) with the TorchScript
    exporter and check the file with ``onnx.checker``. Dynamic axes: the
    batch axis; with ``dynamic_hw`` also the spatial axes of the input and
    of every 4-D output (every graph here is shape-agnostic).

    Returns:
        dict: ``input_name``, ``output_names``, ``dynamic_axes``,
        ``opset``, ``file``.
    """
    onnx = require_onnx()
    module = module.eval()
    x = torch.randn(*input_shape)
    with torch.no_grad():
        raw = module(x)
    output_names = list(output_names) if output_names is not None else [
        f'output_{i}' for i in range(len(raw))]
    if len(output_names) != len(raw):
        raise ValueError(f'{len(output_names)} output names for {len(raw)} '
                         'outputs')
    hw = {2: 'height', 3: 'width'} if dynamic_hw else {}
    dynamic_axes = {'input': {0: 'batch', **hw}}
    for name, t in zip(output_names, raw):
        dynamic_axes[name] = {0: 'batch'}
        if dynamic_hw and t.dim() == 4:
            dynamic_axes[name].update({2: f'{name}_h', 3: f'{name}_w'})
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with warnings.catch_warnings():
        # "legacy TorchScript-based ONNX export" deprecation notice, and
        # tracer warnings about shape values turned into constants (none of
        # our graphs depends on one; the parity check at a second shape
        # would catch it).
        warnings.simplefilter('ignore')
        with torch.no_grad():
            torch.onnx.export(
                module, (x, ), out_file, dynamo=False, input_names=['input'],
                output_names=output_names, dynamic_axes=dynamic_axes,
                opset_version=opset, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(out_file))
    return dict(file=out_file, input_name='input', output_names=output_names,
                dynamic_axes=dynamic_axes, opset=opset)


def _ort_session(onnx_file: str):
    """An onnxruntime session on the CPU, with torch's thread count."""
    ort = require_onnx('onnxruntime')
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(onnx_file, opts,
                                providers=['CPUExecutionProvider'])


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def run_onnxruntime(onnx_file: str, x, session=None) -> List[np.ndarray]:
    """Outputs of ``onnx_file`` on ``x`` (CPU execution provider)."""
    session = session or _ort_session(onnx_file)
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(_numpy(x),
                                                         np.float32)})


def max_rel_err(ref, out) -> float:
    """``max|ref - out| / max|ref|`` over the whole tensor (``inf`` when the
    shapes differ; the plain max abs error when ``ref`` is all zero).

    One scale per tensor, so that near-zero elements do not blow it up.
    """
    ref, out = _numpy(ref).astype(np.float64), _numpy(out)
    if ref.shape != out.shape:
        return float('inf')
    diff = np.abs(ref - out).max() if ref.size else 0.0
    scale = np.abs(ref).max() if ref.size else 0.0
    if not np.isfinite(diff) or not np.isfinite(scale):
        return float('inf')
    return float(diff / scale) if scale > 0 else float(diff)


def verify_onnx(onnx_file: str, reference: nn.Module,
                input_shapes: Sequence[Sequence[int]],
                output_names=None, tol: float = DEFAULT_TOL,
                seed: int = 0) -> List[Dict]:
    """Run ``onnx_file`` in onnxruntime and ``reference`` in PyTorch on the
    same random inputs, one per shape in ``input_shapes``.

    Returns:
        list: one dict per input shape: ``input_shape``, ``ok`` and
        ``rows``, one per output: ``name``, ``shape``, ``max_abs``,
        ``max_abs_ref``, ``max_rel``, ``ok`` (``max_rel <= tol``).
    """
    session = _ort_session(onnx_file)
    g = torch.Generator().manual_seed(seed)
    results = []
    for shape in input_shapes:
        x = torch.randn(*shape, generator=g)
        with torch.no_grad():
            ref = flatten_outputs(reference(x))
        out = run_onnxruntime(onnx_file, x, session=session)
        if len(ref) != len(out):
            raise ValueError(f'{len(ref)} reference outputs vs {len(out)}')
        names = output_names or [f'output_{i}' for i in range(len(ref))]
        rows = []
        for name, a, b in zip(names, ref, out):
            a, b = _numpy(a), _numpy(b)
            rel = max_rel_err(a, b)
            same = a.shape == b.shape and a.size
            rows.append(dict(
                name=name, shape=tuple(a.shape),
                max_abs=float(np.abs(a - b).max()) if same else float('inf'),
                max_abs_ref=float(np.abs(a).max()) if a.size else 0.0,
                max_rel=rel, ok=rel <= tol))
        results.append(dict(input_shape=tuple(shape), rows=rows,
                            ok=all(r['ok'] for r in rows)))
    return results


def export_config(config, out_file: str, checkpoint: Optional[str] = None,
                  target: str = 'model', shape: Sequence[int] = None,
                  batch_size: int = 1, opset: int = DEFAULT_OPSET,
                  verify: bool = True, dynamic_hw: bool = True,
                  tol: float = DEFAULT_TOL, seed: int = 0,
                  verify_dynamic: bool = True, model=None,
                  allow_partial_checkpoint: bool = False) -> Dict:
    """Config -> deploy form (BN fused) -> ONNX -> onnxruntime parity.

    Verification runs the export at the export shape and, with
    ``verify_dynamic``, at batch ``batch_size + 1`` and, with
    ``dynamic_hw``, at ``+32`` in H and ``+64`` in W, each against the
    *unfused* eval-mode PyTorch model. ``model``: an already built
    ``(model, scope)`` pair instead of building from ``config``.

    Returns:
        dict: ``kind``, ``scope``, ``file``, ``output_names``,
        ``dynamic_axes``, ``opset``, ``exporter``, ``fused_bn`` (BNs
        folded), ``unfused_bn``, ``tol``, ``checks`` (see
        :func:`verify_onnx`; empty without ``verify``), ``ok``.
    """
    require_onnx()
    if verify:
        require_onnx('onnxruntime')
    if model is None:
        model, _, scope = build_export_model(
            config, checkpoint, seed=seed,
            allow_partial_checkpoint=allow_partial_checkpoint)
    else:
        model, scope = model
    reference, kind = export_module(model, scope, target)
    h, w = shape or ((800, 1216) if kind == 'detector' else (224, 224))
    if kind == 'detector' and (h % 32 or w % 32):
        raise ValueError(f'detector input {h}x{w}: H and W must be multiples '
                         "of 32 (what the data preprocessor's padding gives)")
    deploy = copy.deepcopy(reference)
    n_bn = count_bn_layers(deploy)
    # fuse the wrapped model, not the wrapper: fuse_model's leftover check
    # treats everything inside a module of this package as ours
    fuse_model(deploy.model)
    n_left = count_bn_layers(deploy)
    with torch.no_grad():
        raw = deploy.raw(torch.zeros(batch_size, 3, h, w))
    names = _output_names(kind, raw)
    info = export_onnx(deploy, out_file, (batch_size, 3, h, w), opset=opset,
                       dynamic_hw=dynamic_hw, output_names=names)
    shapes = [(batch_size, 3, h, w)]
    if verify_dynamic:
        shapes.append((batch_size + 1, 3, h, w))
        if dynamic_hw:
            shapes.append((batch_size, 3, h + 32, w + 64))
    checks = verify_onnx(out_file, reference, shapes, names, tol, seed) \
        if verify else []
    return dict(kind=kind, scope=scope, exporter=EXPORTER,
                fused_bn=n_bn - n_left, unfused_bn=n_left, tol=tol,
                checks=checks, ok=all(c['ok'] for c in checks), **info)


def format_report(report: Dict) -> str:
    """Human-readable lines of an :func:`export_config` report."""
    lines = [
        f"exported {report['kind']} ({report['scope']}) -> {report['file']}",
        f"  exporter: {report['exporter']}, opset {report['opset']}; "
        f"{report['fused_bn']} BN folded into convs"
        + (f", {report['unfused_bn']} BN left (no conv before them)"
           if report['unfused_bn'] else ''),
        f"  dynamic axes: input{sorted(report['dynamic_axes']['input'])} "
        '(and the matching axes of every output)',
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
