"""A detector config + checkpoint -> mmdeploy -> ``end2end.onnx`` (network,
box decoding and NMS in one graph) -> ONNX Runtime, checked against PyTorch.

This is what ``tools/deploy/mmdeploy_export.py`` runs. The steps are
mmdeploy's own (``torch2onnx``, its task processor's PyTorch and backend
models, ``build_test_runner`` and ``visualize``), as its ``tools/deploy.py``
and ``tools/test.py`` use them, with three additions:

* **Exporter.** Since PyTorch 2.9 ``torch.onnx.export`` defaults to the
  ``torch.export``-based exporter (``dynamo=True``), which needs
  ``onnxscript`` and does not trace mmdeploy's rewritten detector ("mismatch
  between the structure of inputs and dynamic_shapes"); mmdeploy's rewriters
  are written for the TorchScript exporter. :func:`torchscript_onnx_export`
  makes ``dynamo=False`` the default while mmdeploy converts, and restores
  ``torch.onnx.export`` afterwards. Nothing is patched on ``import
  mmdet_gghost``. mmdeploy's ``tools/deploy.py`` runs the conversion in a
  spawned process; here every step runs in the calling process, so that is
  the only process that ever sees the changed default.
* **Checkpoint check.** mmdeploy loads the checkpoint with ``strict=False``
  (a checkpoint of another model would be converted with random weights and
  only a warning in the log). :func:`check_checkpoint` refuses it first.
* **Parity.** :func:`compare_detections` on one image (``--image``) and
  :func:`evaluate_parity` on the config's test set (``--eval``): the same
  dataloader and ``test_evaluator`` (mmdet's ``CocoMetric``) for the
  PyTorch model and the ONNX Runtime model.

The ONNX graph's NMS takes ``score_thr``, ``nms.iou_threshold``,
``max_per_img`` and ``nms_pre`` from the model config's ``test_cfg`` (see
``configs/deploy/_base_/detection_onnxruntime.py``); the candidates before
NMS are chosen per anchor (mmdeploy) instead of per (anchor, class) pair
(mmdet), so the two detection lists may differ among low-scored boxes.
"""
import contextlib
import functools
import inspect
import json
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEPLOY_CONFIG_DIR = osp.join(REPO, 'configs', 'deploy')
DEFAULT_DEPLOY_CFG = osp.join(DEPLOY_CONFIG_DIR,
                              'detection_onnxruntime_dynamic.py')
INSTALL_HINT = ('run `make setup` (it installs the pinned mmdeploy==1.3.1), '
                'or pip install mmdeploy==1.3.1 protobuf==3.20.2')

from .parity import (MAP_TOL, METRIC_KEY, DeployError,  # noqa: F401
                     compare_detections, compare_on_image, evaluate_parity,
                     fit_pipeline_to_shape, parity_report)


def require_mmdeploy():
    """``import mmdeploy``, or an ImportError that says how to install it."""
    try:
        import mmdeploy
    except ImportError as e:
        raise ImportError(f'mmdeploy is not installed ({e}); {INSTALL_HINT}'
                          ) from e
    return mmdeploy


# --------------------------------------------------------------------------
# configs and checkpoint
# --------------------------------------------------------------------------


def _our_deploy_configs():
    return sorted(f for f in os.listdir(DEPLOY_CONFIG_DIR)
                  if f.endswith('.py'))


def resolve_deploy_cfg(deploy_cfg: Optional[str] = None) -> str:
    """A deploy config path: ``deploy_cfg`` itself, one of ours named by
    file name (``detection_onnxruntime_dynamic`` or ``...py``), or the
    dynamic ONNX Runtime config when ``None``."""
    if deploy_cfg is None:
        return DEFAULT_DEPLOY_CFG
    if osp.isfile(deploy_cfg):
        return deploy_cfg
    name = osp.basename(deploy_cfg)
    ours = osp.join(DEPLOY_CONFIG_DIR,
                    name if name.endswith('.py') else name + '.py')
    if osp.isfile(ours):
        return ours
    raise FileNotFoundError(
        f'unknown deploy config {deploy_cfg!r}: no such file, and not one '
        f'of ours in configs/deploy/ ({", ".join(_our_deploy_configs())}); '
        'give a path or one of those names')


def load_deploy_configs(config, deploy_cfg: Optional[str] = None,
                        cfg_options: Optional[dict] = None):
    """``(model_cfg, deploy_cfg, deploy_cfg_path)`` as mmdeploy loads them,
    checked to be an mmdet detector for ONNX Runtime.

    Args:
        config (str | Config): the model config.
    """
    require_mmdeploy()
    from mmdeploy.utils import load_config
    if isinstance(config, str) and not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    path = resolve_deploy_cfg(deploy_cfg)
    deploy, model_cfg = load_config(path, config)
    if cfg_options:
        model_cfg.merge_from_dict(cfg_options)
    backend = deploy.get('backend_config', {}).get('type')
    codebase = deploy.get('codebase_config', {}).get('type')
    if backend != 'onnxruntime' or codebase != 'mmdet':
        raise DeployError(
            f'{path} deploys codebase {codebase!r} to backend {backend!r}; '
            'this tool deploys mmdet detectors to ONNX Runtime: use one of '
            f'configs/deploy/ ({", ".join(_our_deploy_configs())})')
    if model_cfg.get('default_scope') != 'mmdet' or \
            'test_pipeline' not in model_cfg:
        name = config if isinstance(config, str) else 'the config'
        raise DeployError(
            f'{name} is not an mmdet detector config (needs default_scope '
            "'mmdet' and a test_pipeline, which mmdeploy reads)")
    return model_cfg, deploy, path


def check_checkpoint(model_cfg, checkpoint: str) -> None:
    """Refuse a checkpoint that does not fit the config's model.

    mmdeploy loads checkpoints with ``strict=False``; this raises
    :class:`~mmdet_gghost.apis.weights.CheckpointMismatchError`
    naming the missing / unexpected / mis-shaped tensors instead.
    """
    from mmdet_gghost.apis.build import build_model
    build_model(model_cfg, checkpoint, init_seed=None)


# --------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------


@contextlib.contextmanager
def torchscript_onnx_export():
    """While inside, ``torch.onnx.export`` defaults to ``dynamo=False`` (the
    TorchScript exporter mmdeploy's rewriters need); restored on exit."""
    original = torch.onnx.export
    if 'dynamo' not in inspect.signature(original).parameters:
        yield  # an older torch: TorchScript is the only exporter
        return

    @functools.wraps(original)
    def export(*args, **kwargs):
        kwargs.setdefault('dynamo', False)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original


def conversion_image(model_cfg, seed: int = 0) -> np.ndarray:
    """A random HxWx3 uint8 image of the test pipeline's Resize scale (or
    800x1333): what the graph is traced on when no ``--image`` is given."""
    w, h = 1333, 800
    for t in model_cfg.test_pipeline:
        scale = t.get('scale')
        if 'Resize' in str(t.get('type')) and isinstance(scale, (tuple, list)):
            w, h = int(scale[0]), int(scale[1])
            break
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def export_end2end(model_cfg, deploy, checkpoint: str, work_dir: str,
                   image=None, device: str = 'cpu') -> str:
    """mmdeploy's ``torch2onnx`` in this process; returns the ONNX path."""
    from mmdeploy.apis import torch2onnx
    from mmdeploy.utils import get_ir_config
    os.makedirs(work_dir, exist_ok=True)
    save_file = get_ir_config(deploy)['save_file']
    if image is None:
        image = conversion_image(model_cfg)
    with torchscript_onnx_export():
        torch2onnx(image, work_dir, save_file, deploy, model_cfg, checkpoint,
                   device=device)
    path = osp.join(work_dir, save_file)
    if not osp.isfile(path):
        raise RuntimeError(f'mmdeploy reported no error but wrote no {path}')
    return path


def build_models(model_cfg, deploy, checkpoint: Optional[str],
                 onnx_file: str, device: str = 'cpu',
                 threads: Optional[int] = None):
    """mmdeploy's task processor, the PyTorch model (``None`` without
    ``checkpoint``) and mmdeploy's ONNX Runtime model (``End2EndModel``).

    The PyTorch model is :func:`mmdet_gghost.apis.build.build_model` (the
    checkpoint loaded through the one checkpoint rule, not mmdeploy's
    ``strict=False`` load), then switched to its deploy form as mmdeploy's
    ``build_pytorch_model`` does, so it is the model the graph was traced
    from."""
    from mmdeploy.apis.utils import build_task_processor

    from mmdet_gghost.apis.build import build_model
    processor = build_task_processor(model_cfg, deploy, device)
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
        set_ort_threads(ort_model, onnx_file, threads)
    return processor, torch_model, ort_model


def set_ort_threads(ort_model, onnx_file: str, threads: int) -> None:
    """Re-open the ONNX Runtime session of an mmdeploy backend model with
    ``threads`` intra-op threads (mmdeploy's ``ORTWrapper`` leaves ONNX
    Runtime's default: one per physical core). The session options it built
    (custom-ops library included) are kept."""
    import onnxruntime as ort
    wrapper = ort_model.wrapper
    opts = wrapper.sess.get_session_options()
    opts.intra_op_num_threads = int(threads)
    wrapper.sess = ort.InferenceSession(
        onnx_file, opts, providers=wrapper.sess.get_providers())
    wrapper.io_binding = wrapper.sess.io_binding()


# --------------------------------------------------------------------------
# the whole tool
# --------------------------------------------------------------------------


def deploy(config: str, checkpoint: str, work_dir: str,
           deploy_cfg: Optional[str] = None, image: Optional[str] = None,
           evaluate: bool = False, cfg_options: Optional[dict] = None,
           device: str = 'cpu', log=print) -> Dict:
    """Check, convert, then optionally compare on ``image`` and evaluate.

    Writes ``work_dir/end2end.onnx``; with ``image`` also
    ``output_pytorch.jpg``, ``output_onnxruntime.jpg`` and
    ``image_parity.json``; with ``evaluate`` also ``metrics.json`` (ONNX
    Runtime, the format of ``tools/test.py``) and ``parity.json``.

    Returns:
        dict: ``onnx``, ``deploy_cfg``, and ``image_parity`` / ``parity``
        when computed.
    """
    from mmdet_gghost.apis.common import check_datasets
    if image is not None and not osp.isfile(image):
        raise FileNotFoundError(f'image not found: {image}')
    model_cfg, deploy_, deploy_path = load_deploy_configs(
        config, deploy_cfg, cfg_options)
    check_checkpoint(model_cfg, checkpoint)
    if evaluate:  # fail before minutes of conversion
        check_datasets(model_cfg, ['test'])
    log(f'converting {config} with {deploy_path} (mmdeploy, in this '
        'process, TorchScript exporter)')
    onnx_file = export_end2end(model_cfg, deploy_, checkpoint, work_dir,
                               image, device)
    log(f'wrote {onnx_file}')
    result = dict(onnx=onnx_file, deploy_cfg=deploy_path)
    if image is None and not evaluate:
        return result
    processor, torch_model, ort_model = build_models(
        model_cfg, deploy_, checkpoint, onnx_file, device)
    if image is not None:
        result['image_parity'] = compare_on_image(
            processor, deploy_, torch_model, ort_model, image, work_dir)
        _dump(osp.join(work_dir, 'image_parity.json'),
              dict(image=osp.abspath(image), **result['image_parity']))
        log(f'{image}: {json.dumps(result["image_parity"])}; wrote '
            f'output_pytorch.jpg and output_onnxruntime.jpg in {work_dir}')
    if evaluate:
        from mmdet_gghost.apis.test import write_metrics_json
        metrics = evaluate_parity(processor, deploy_, model_cfg, torch_model,
                                  ort_model, work_dir)
        write_metrics_json(osp.join(work_dir, 'metrics.json'),
                           metrics['onnxruntime'], config, checkpoint)
        result['parity'] = dict(
            parity_report(metrics), config=osp.abspath(config),
            checkpoint=osp.abspath(checkpoint), onnx=osp.abspath(onnx_file),
            deploy_cfg=osp.abspath(deploy_path))
        _dump(osp.join(work_dir, 'parity.json'), result['parity'])
        p = result['parity']
        log(f"bbox mAP: PyTorch {p['pytorch']:.4f}, ONNX Runtime "
            f"{p['onnxruntime']:.4f}, difference {p['difference']:+.4f} "
            f"({'within' if p['within_tolerance'] else 'OUTSIDE'} "
            f"{p['tolerance']}); wrote metrics.json and parity.json")
    return result


def _dump(path: str, obj: Dict) -> None:
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
