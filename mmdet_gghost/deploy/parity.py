"""Parity of an mmdeploy ONNX Runtime model with its PyTorch model: the
detections on one image (:func:`compare_detections`), and the COCO mAP of
both on the config's test set through the same dataloader and
``test_evaluator`` (:func:`evaluate_parity`, :func:`parity_report`)."""
import copy
import os.path as osp
from typing import Dict, Sequence

import numpy as np
import torch

#: bbox mAP difference ONNX Runtime - PyTorch that counts as parity
MAP_TOL = 0.005
METRIC_KEY = 'coco/bbox_mAP'


class DeployError(ValueError):
    """Inputs that cannot be deployed (the message says why and the fix)."""


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
    ref = ref if isinstance(ref, dict) else _detections(ref)
    out = out if isinstance(out, dict) else _detections(out)
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


def compare_on_image(processor, deploy, torch_model, ort_model, image,
                     work_dir: str) -> Dict:
    """Both models on one image: the visualisations
    ``output_{pytorch,onnxruntime}.jpg`` and :func:`compare_detections`."""
    from mmdeploy.utils import get_input_shape
    data, _ = processor.create_input(image, get_input_shape(deploy))
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


def _test_dataloader(model_cfg, deploy):
    from mmdeploy.utils import get_input_shape, is_dynamic_shape
    loader = copy.deepcopy(model_cfg.test_dataloader)
    if not is_dynamic_shape(deploy):
        loader.dataset.pipeline = fit_pipeline_to_shape(
            loader.dataset.pipeline, get_input_shape(deploy))
    return loader


def evaluate_parity(processor, deploy, model_cfg, torch_model, ort_model,
                    work_dir: str) -> Dict:
    """The config's test set through both models: same dataloader, same
    ``test_evaluator``. Returns ``{'pytorch': metrics, 'onnxruntime':
    metrics}``."""
    metrics = {}
    for name, model in (('pytorch', torch_model), ('onnxruntime', ort_model)):
        runner = processor.build_test_runner(
            model, osp.join(work_dir, f'eval_{name}'),
            dataloader=_test_dataloader(model_cfg, deploy))
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
