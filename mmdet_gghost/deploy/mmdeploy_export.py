"""A detector config + checkpoint -> mmdeploy -> ``end2end.onnx`` (network,
box decoding and NMS in one graph) -> ONNX Runtime, checked against PyTorch
(``tools/deploy/mmdeploy_export.py``): mmdeploy's own steps, plus the
TorchScript exporter, a strict checkpoint check and parity on one image or
on the test set.  The graph's NMS keeps the candidates per anchor
(mmdeploy), not per (anchor, class) pair (mmdet), so low-scored boxes may
differ.
"""
import contextlib
import copy
import functools
import inspect
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence
from unittest import mock

import numpy as np
import torch

from ..config_bases import package_configs_dir

#: our deploy configs, in the package's configs (``configs/deploy/``)
DEFAULT_DEPLOY_NAME = 'detection_onnxruntime_dynamic.py'
INSTALL_HINT = ('run `make setup` (it installs the pinned mmdeploy==1.3.1), '
                'or pip install mmdeploy==1.3.1 protobuf==3.20.2')
#: bbox mAP difference ONNX Runtime - PyTorch that counts as parity
MAP_TOL = 0.005
METRIC_KEY = 'coco/bbox_mAP'


class DeployError(ValueError):
    """Inputs that cannot be deployed (the message says why and the fix)."""


def deploy_config_dir() -> str:
    """Our deploy configs: ``deploy/`` of the package's configs."""
    return osp.join(package_configs_dir(), 'deploy')


def _our_deploy_configs() -> str:
    """The file names of our deploy configs, for messages."""
    return ', '.join(sorted(f for f in os.listdir(deploy_config_dir())
                            if f.endswith('.py')))


def resolve_deploy_cfg(deploy_cfg: Optional[str] = None) -> str:
    """A deploy config path: ``deploy_cfg`` itself, one of ours named by
    file name (``detection_onnxruntime_dynamic`` or ``...py``), or the
    dynamic ONNX Runtime config when ``None``."""
    if deploy_cfg is None:
        return osp.join(deploy_config_dir(), DEFAULT_DEPLOY_NAME)
    if osp.isfile(deploy_cfg):
        return deploy_cfg
    name = osp.basename(deploy_cfg)
    ours = osp.join(deploy_config_dir(),
                    name if name.endswith('.py') else name + '.py')
    if osp.isfile(ours):
        return ours
    raise FileNotFoundError(
        f'unknown deploy config {deploy_cfg!r}: no such file, and not one '
        f'of ours in configs/deploy/ ({_our_deploy_configs()}); '
        'give a path or one of those names')


def load_deploy_configs(config, deploy_cfg: Optional[str] = None,
                        cfg_options: Optional[dict] = None):
    """``(model_cfg, deploy_cfg, deploy_cfg_path)`` as mmdeploy loads them
    from ``config`` (path or Config), checked to be an mmdet detector for
    ONNX Runtime."""
    try:
        import mmdeploy  # noqa: F401
    except ImportError as e:
        raise ImportError(f'mmdeploy is not installed ({e}); {INSTALL_HINT}'
                          ) from e
    from mmdeploy.utils import load_config
    if isinstance(config, str) and not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    path = resolve_deploy_cfg(deploy_cfg)
    deploy_config, model_cfg = load_config(path, config)
    if cfg_options:
        model_cfg.merge_from_dict(cfg_options)
    backend = deploy_config.get('backend_config', {}).get('type')
    codebase = deploy_config.get('codebase_config', {}).get('type')
    if backend != 'onnxruntime' or codebase != 'mmdet':
        raise DeployError(
            f'{path} deploys codebase {codebase!r} to backend {backend!r}; '
            'this tool deploys mmdet detectors to ONNX Runtime: use one of '
            f'configs/deploy/ ({_our_deploy_configs()})')
    if model_cfg.get('default_scope') != 'mmdet' or \
            'test_pipeline' not in model_cfg:
        name = config if isinstance(config, str) else 'the config'
        raise DeployError(
            f'{name} is not an mmdet detector config (needs default_scope '
            "'mmdet' and a test_pipeline, which mmdeploy reads)")
    return model_cfg, deploy_config, path


def check_checkpoint(model_cfg, checkpoint: str) -> None:
    """``CheckpointMismatchError`` unless ``checkpoint`` fits the config's
    model (mmdeploy would load it with ``strict=False``)."""
    from mmdet_gghost.apis.build import build_model
    build_model(model_cfg, checkpoint, init_seed=None)


def torchscript_onnx_export():
    """A context in which ``torch.onnx.export`` defaults to
    ``dynamo=False`` (nothing is patched on import).

    Since PyTorch 2.9 the default is the ``torch.export``-based exporter,
    which does not trace mmdeploy's rewritten detector ("mismatch between
    the structure of inputs and dynamic_shapes"); mmdeploy's rewriters are
    written for the TorchScript one.
    """
    export = torch.onnx.export
    if 'dynamo' not in inspect.signature(export).parameters:
        return contextlib.nullcontext()  # older torch: TorchScript only
    # an explicit ``dynamo=`` in a call still wins over the partial's
    return mock.patch.object(torch.onnx, 'export',
                             functools.partial(export, dynamo=False))


def conversion_image(model_cfg) -> np.ndarray:
    """A random HxWx3 uint8 image of the test pipeline's Resize scale (or
    800x1333): what the graph is traced on when no ``--image`` is given."""
    w, h = 1333, 800
    for t in model_cfg.test_pipeline:
        scale = t.get('scale')
        if 'Resize' in str(t.get('type')) and isinstance(scale, (tuple, list)):
            w, h = int(scale[0]), int(scale[1])
            break
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def export_end2end(model_cfg, deploy_config, checkpoint: str,
                   work_dir: str, image=None, device: str = 'cpu') -> str:
    """mmdeploy's ``torch2onnx`` in this process; returns the ONNX path."""
    from mmdeploy.apis import torch2onnx
    from mmdeploy.utils import get_ir_config
    os.makedirs(work_dir, exist_ok=True)
    save_file = get_ir_config(deploy_config)['save_file']
    if image is None:
        image = conversion_image(model_cfg)
    with torchscript_onnx_export():
        torch2onnx(image, work_dir, save_file, deploy_config, model_cfg,
                   checkpoint, device=device)
    path = osp.join(work_dir, save_file)
    if not osp.isfile(path):
        raise RuntimeError(f'mmdeploy reported no error but wrote no {path}')
    return path


def build_models(model_cfg, deploy_config, checkpoint: Optional[str],
                 onnx_file: str, device: str = 'cpu',
                 threads: Optional[int] = None):
    """mmdeploy's task processor, the PyTorch model (``None`` without
    ``checkpoint``; loaded strictly, then in its deploy form as in
    mmdeploy's ``build_pytorch_model``: the model the graph was traced
    from) and mmdeploy's ONNX Runtime model (``End2EndModel``, with
    ``threads`` intra-op threads if given)."""
    from mmdeploy.apis.utils import build_task_processor

    from mmdet_gghost.apis.build import build_model
    processor = build_task_processor(model_cfg, deploy_config, device)
    torch_model = None
    if checkpoint:
        torch_model = build_model(model_cfg, checkpoint, device=device)
        for module in (getattr(torch_model, 'backbone', None), torch_model):
            if callable(getattr(module, 'switch_to_deploy', None)):
                module.switch_to_deploy()
    ort_model = processor.build_backend_model(
        [onnx_file],
        data_preprocessor_updater=processor.update_data_preprocessor)
    if threads:
        # mmdeploy's ORTWrapper leaves ONNX Runtime's default (a thread per
        # core): re-open its session, keeping its options (custom ops).
        import onnxruntime as ort
        wrapper = ort_model.wrapper
        opts = wrapper.sess.get_session_options()
        opts.intra_op_num_threads = int(threads)
        wrapper.sess = ort.InferenceSession(
            onnx_file, opts, providers=wrapper.sess.get_providers())
        wrapper.io_binding = wrapper.sess.io_binding()
    return processor, torch_model, ort_model


def convert(config: str, checkpoint: str, work_dir: str,
            deploy_cfg: Optional[str] = None, image: Optional[str] = None,
            evaluate: bool = False, cfg_options: Optional[dict] = None,
            device: str = 'cpu', log=print) -> Dict:
    """Check, convert, then optionally compare on ``image`` and evaluate.
    Writes ``work_dir/end2end.onnx``; with ``image`` also
    ``output_{pytorch,onnxruntime}.jpg`` and ``image_parity.json``; with
    ``evaluate`` also ``metrics.json`` (ONNX Runtime, the format of
    ``tools/test.py``) and ``parity.json``.  Returns a dict: ``onnx``,
    ``deploy_cfg``, and ``image_parity`` / ``parity`` when computed."""
    from mmengine.fileio import dump

    from mmdet_gghost.apis.common import check_datasets
    if image is not None and not osp.isfile(image):
        raise FileNotFoundError(f'image not found: {image}')
    model_cfg, deploy_config, deploy_path = load_deploy_configs(
        config, deploy_cfg, cfg_options)
    check_checkpoint(model_cfg, checkpoint)
    if evaluate:  # fail before minutes of conversion
        check_datasets(model_cfg, ['test'])
    log(f'converting {config} with {deploy_path} (mmdeploy, in this '
        'process, TorchScript exporter)')
    onnx_file = export_end2end(model_cfg, deploy_config, checkpoint, work_dir,
                               image, device)
    log(f'wrote {onnx_file}')
    result = dict(onnx=onnx_file, deploy_cfg=deploy_path)
    if image is None and not evaluate:
        return result
    processor, torch_model, ort_model = build_models(
        model_cfg, deploy_config, checkpoint, onnx_file, device)
    if image is not None:
        result['image_parity'] = compare_on_image(
            processor, deploy_config, torch_model, ort_model, image, work_dir)
        dump(dict(image=osp.abspath(image), **result['image_parity']),
             osp.join(work_dir, 'image_parity.json'), indent=2)
        log(f'{image}: {json.dumps(result["image_parity"])}; wrote '
            f'output_pytorch.jpg and output_onnxruntime.jpg in {work_dir}')
    if evaluate:
        from mmdet_gghost.apis.test import write_metrics_json
        metrics = evaluate_parity(processor, deploy_config, model_cfg,
                                  torch_model, ort_model, work_dir)
        write_metrics_json(osp.join(work_dir, 'metrics.json'),
                           metrics['onnxruntime'], config, checkpoint)
        p = result['parity'] = dict(
            parity_report(metrics), config=osp.abspath(config),
            checkpoint=osp.abspath(checkpoint), onnx=osp.abspath(onnx_file),
            deploy_cfg=osp.abspath(deploy_path))
        dump(p, osp.join(work_dir, 'parity.json'), indent=2)
        log(f"bbox mAP: PyTorch {p['pytorch']:.4f}, ONNX Runtime "
            f"{p['onnxruntime']:.4f}, difference {p['difference']:+.4f} "
            f"({'within' if p['within_tolerance'] else 'OUTSIDE'} "
            f"{p['tolerance']}); wrote metrics.json and parity.json")
    return result


def _detections(sample) -> Dict[str, np.ndarray]:
    inst = sample.pred_instances
    return dict(bboxes=inst.bboxes.detach().cpu().numpy().astype(np.float64),
                scores=inst.scores.detach().cpu().numpy().astype(np.float64),
                labels=inst.labels.detach().cpu().numpy())


def compare_detections(ref, out) -> Dict:
    """Match ``out``'s boxes to ``ref``'s (same label, nearest box, each used
    once, in ``ref``'s score order) and report the differences.

    Args:
        ref, out: ``DetDataSample`` with ``pred_instances`` (PyTorch, ONNX
            Runtime) or dicts of ``bboxes``/``scores``/``labels`` arrays.

    Returns:
        dict: ``num_pytorch``, ``num_onnxruntime``, ``matched``,
        ``max_box_abs`` (pixels, over matched pairs), ``max_score_abs``.
    """
    ref, out = (d if isinstance(d, dict) else _detections(d)
                for d in (ref, out))
    used = np.zeros(len(out['scores']), dtype=bool)
    box_err, score_err = [0.0], [0.0]
    for i in np.argsort(-ref['scores'], kind='stable'):
        cand = np.flatnonzero((out['labels'] == ref['labels'][i]) & ~used)
        if not len(cand):
            continue
        dist = np.abs(out['bboxes'][cand] - ref['bboxes'][i]).max(axis=1)
        j = cand[int(dist.argmin())]
        used[j] = True
        box_err.append(float(dist.min()))
        score_err.append(abs(float(out['scores'][j] - ref['scores'][i])))
    return dict(num_pytorch=int(len(ref['scores'])),
                num_onnxruntime=int(len(out['scores'])),
                matched=int(used.sum()), max_box_abs=max(box_err),
                max_score_abs=max(score_err))


def compare_on_image(processor, deploy_config, torch_model, ort_model, image,
                     work_dir: str) -> Dict:
    """Both models on one image: the visualisations
    ``output_{pytorch,onnxruntime}.jpg`` and :func:`compare_detections`."""
    from mmdeploy.utils import get_input_shape
    data, _ = processor.create_input(image, get_input_shape(deploy_config))
    results = {}
    for name, model in (('pytorch', torch_model), ('onnxruntime', ort_model)):
        with torch.no_grad():
            results[name] = model.test_step(copy.deepcopy(data))[0]
        processor.visualize(
            image=image, model=model, result=results[name],
            output_file=osp.join(work_dir, f'output_{name}.jpg'),
            window_name=name, show_result=False)
    return compare_detections(results['pytorch'], results['onnxruntime'])


def fit_pipeline_to_shape(pipeline: Sequence[dict], input_shape) -> list:
    """A test pipeline whose images fit a static ``(W, H)`` graph input:
    resized to fit inside it (aspect ratio kept), then padded to it."""
    w, h = int(input_shape[0]), int(input_shape[1])
    out = []
    for t in copy.deepcopy(list(pipeline)):
        out.append(t)
        if 'Resize' in str(t.get('type')):
            t.update(scale=(w, h), keep_ratio=True)
            out.append(dict(type='Pad', size=(w, h)))
    if not any(t.get('type') == 'Pad' for t in out):
        raise DeployError('a static deploy config needs a Resize in the '
                          'test pipeline to fit images to its input shape')
    return out


def evaluate_parity(processor, deploy_config, model_cfg, torch_model,
                    ort_model, work_dir: str) -> Dict:
    """The config's test set through both models: same dataloader, same
    ``test_evaluator``. Returns ``{'pytorch': metrics, 'onnxruntime':
    metrics}``."""
    from mmdeploy.utils import get_input_shape, is_dynamic_shape
    metrics = {}
    for name, model in (('pytorch', torch_model), ('onnxruntime', ort_model)):
        loader = copy.deepcopy(model_cfg.test_dataloader)
        if not is_dynamic_shape(deploy_config):
            loader.dataset.pipeline = fit_pipeline_to_shape(
                loader.dataset.pipeline, get_input_shape(deploy_config))
        runner = processor.build_test_runner(
            model, osp.join(work_dir, f'eval_{name}'), dataloader=loader)
        metrics[name] = runner.test()
    return metrics


def _map_of(metrics: Dict, backend: str) -> float:
    """bbox mAP of one backend; mmdet's CocoMetric returns ``{}`` when a
    model keeps no box on the whole test set, which is an mAP of 0."""
    if not metrics:
        return 0.0
    if METRIC_KEY not in metrics:
        raise DeployError(f'the {backend} evaluation gave no {METRIC_KEY} '
                          f'(got {sorted(metrics)}): is test_evaluator '
                          "mmdet's CocoMetric with metric='bbox'?")
    return float(metrics[METRIC_KEY])


def parity_report(metrics: Dict, tol: float = MAP_TOL) -> Dict:
    """bbox mAP of each backend, ONNX Runtime - PyTorch, and whether the
    difference is within ``tol``."""
    pt, ort = (_map_of(metrics[name], name) for name in ('pytorch',
                                                          'onnxruntime'))
    return dict(metric=METRIC_KEY, pytorch=pt, onnxruntime=ort,
                difference=ort - pt, tolerance=tol,
                within_tolerance=bool(abs(ort - pt) <= tol))
