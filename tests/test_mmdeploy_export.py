"""tools/deploy/mmdeploy_export.py: the demo detector through mmdeploy to
ONNX Runtime (NMS in the graph), checked against PyTorch; the deploy
configs; the bad-input errors; the ONNX Runtime rows of the benchmark.

Tolerances (``image`` test, fp32 on the CPU, 256x256 input): every PyTorch
box has an ONNX Runtime box of the same label, boxes within
``BOX_TOL`` pixels, scores within ``SCORE_TOL``.
"""
import glob
import importlib.util
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmdet_gghost  # noqa: F401  (registers the models)
from tools_helpers import REPO, TOOLS, run_tool

try:
    import mmdeploy  # noqa: F401
    import onnxruntime as ort
except ImportError:  # only the tests marked needs_mmdeploy need them
    mmdeploy = ort = None
#: the tests that convert with mmdeploy or run ONNX Runtime (the config
#: resolution, pipeline, error and report tests below need neither)
needs_mmdeploy = pytest.mark.skipif(
    mmdeploy is None or ort is None,
    reason='needs mmdeploy and onnxruntime (make setup installs them)')

from mmdet_gghost.deploy import mmdeploy_export as D  # noqa: E402

GGHOST_DEMO = osp.join(REPO, 'configs', 'demo', 'retinanet_gghost_r34_demo.py')
R34_DEMO = osp.join(REPO, 'configs', 'demo', 'retinanet_r34_demo.py')
DYNAMIC = osp.join(REPO, 'configs', 'deploy',
                   'detection_onnxruntime_dynamic.py')
STATIC = osp.join(REPO, 'configs', 'deploy',
                  'detection_onnxruntime_static-800x1344.py')
BOX_TOL = 1e-2  # pixels
SCORE_TOL = 1e-4


def _tool():
    spec = importlib.util.spec_from_file_location(
        'mmdeploy_export_tool', osp.join(TOOLS, 'deploy', 'mmdeploy_export.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data_options(root):
    """--cfg-options pointing the demo config's test set at ``root``."""
    return [f'test_dataloader.dataset.data_root={root}/',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
            f'test_evaluator.ann_file={root}/annotations/'
            'instances_val2017.json']


def _random_detector(config, seed=0):
    """The config's detector with init_weights(), random BN statistics and
    classifier weights 5x init's, so that a few hundred (anchor, class)
    pairs per image score above the config's 0.05 threshold (fewer than
    nms_pre per level: mmdet and mmdeploy then pick the same candidates)
    instead of RetinaNet's 0.01 prior everywhere."""
    from mmdet_gghost.export import build_export_model
    model, cfg, _ = build_export_model(config, seed=seed)
    g = torch.Generator().manual_seed(seed)
    cls = model.bbox_head.retina_cls
    with torch.no_grad():
        cls.weight.copy_(torch.randn(cls.weight.shape, generator=g) * 0.05)
    return model, cfg


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from mmdet_gghost.datasets.synthetic import make_detection_dataset
    root = tmp_path_factory.mktemp('demo_det')
    make_detection_dataset(root, num_train=1, num_val=3, img_size=256)
    return str(root)


@pytest.fixture(scope='module')
def gghost_ckpt(tmp_path_factory):
    model, _ = _random_detector(GGHOST_DEMO)
    path = tmp_path_factory.mktemp('ckpt') / 'gghost_demo.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def pseudo_gt_data(tmp_path_factory, demo_data, gghost_ckpt):
    """The demo val set with PyTorch's own detections (score >= 0.1) as its
    ground truth: PyTorch's bbox mAP on it is high, so ONNX Runtime's mAP
    tells boxes that match from missing or moved ones."""
    import shutil
    from mmdet.apis import init_detector, inference_detector
    from mmdet.utils import register_all_modules
    register_all_modules()
    root = tmp_path_factory.mktemp('pseudo_gt')
    shutil.copytree(demo_data, root, dirs_exist_ok=True)
    ann = root / 'annotations' / 'instances_val2017.json'
    coco = json.loads(ann.read_text())
    cats = {c['name']: c['id'] for c in coco['categories']}
    model = init_detector(GGHOST_DEMO, gghost_ckpt, device='cpu')
    classes = Config.fromfile(GGHOST_DEMO).metainfo['classes']
    coco['annotations'] = []
    for img in coco['images']:
        pred = inference_detector(
            model, str(root / 'val2017' / img['file_name'])).pred_instances
        pred = pred[pred.scores >= 0.1]
        for (x1, y1, x2, y2), label in zip(pred.bboxes.tolist(),
                                           pred.labels.tolist()):
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=img['id'],
                category_id=cats[classes[label]], iscrowd=0,
                bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1)))
    assert len(coco['annotations']) >= 3
    ann.write_text(json.dumps(coco))
    return str(root)


@pytest.fixture(scope='module')
def exported(tmp_path_factory, demo_data, gghost_ckpt, pseudo_gt_data):
    """The tool, once: export + --image + --eval on the demo val set
    (with PyTorch's detections as ground truth: :func:`pseudo_gt_data`)."""
    work_dir = tmp_path_factory.mktemp('deploy')
    image = osp.join(demo_data, 'val2017', '000000000002.png')
    result = run_tool(osp.join('deploy', 'mmdeploy_export.py'), GGHOST_DEMO,
                      gghost_ckpt, '--work-dir', work_dir, '--image', image,
                      '--eval', '--cfg-options',
                      *_data_options(pseudo_gt_data), timeout=600)
    return dict(work_dir=work_dir, image=image, stdout=result.stdout)


# -- the deploy configs -----------------------------------------------------


@needs_mmdeploy
@pytest.mark.parametrize('path', [DYNAMIC, STATIC], ids=osp.basename)
def test_deploy_configs_parse_as_mmdeploy_reads_them(path):
    from mmdeploy.utils import (get_backend, get_codebase, get_input_shape,
                                get_ir_config, get_task_type,
                                is_dynamic_shape)
    cfg = Config.fromfile(path)
    assert get_backend(cfg).value == 'onnxruntime'
    assert get_codebase(cfg).value == 'mmdet'
    assert get_task_type(cfg).value == 'ObjectDetection'
    ir = get_ir_config(cfg)
    assert ir['save_file'] == 'end2end.onnx'
    assert ir['output_names'] == ['dets', 'labels']
    if path == DYNAMIC:
        assert is_dynamic_shape(cfg)
        assert get_input_shape(cfg) is None
        assert ir['dynamic_axes']['input'] == {0: 'batch', 2: 'height',
                                               3: 'width'}
    else:
        assert not is_dynamic_shape(cfg)
        assert list(get_input_shape(cfg)) == [1344, 800]  # (W, H)


def test_deploy_cfg_by_name_and_unknown_name():
    # ours are found in the package's configs (a symlink or copy of configs/)
    assert osp.samefile(D.resolve_deploy_cfg(None), DYNAMIC)
    assert osp.samefile(
        D.resolve_deploy_cfg('detection_onnxruntime_static-800x1344'), STATIC)
    with pytest.raises(FileNotFoundError,
                       match=r"unknown deploy config 'nope.py'.*"
                       r'detection_onnxruntime_dynamic\.py'):
        D.resolve_deploy_cfg('nope.py')


def test_static_eval_pipeline_fits_images_into_the_graph_input():
    cfg = Config.fromfile(GGHOST_DEMO)
    pipeline = D.fit_pipeline_to_shape(cfg.test_pipeline, (1344, 800))
    types = [t['type'] for t in pipeline]
    resize = pipeline[types.index('Resize')]
    assert resize['scale'] == (1344, 800) and resize['keep_ratio']
    assert pipeline[types.index('Resize') + 1] == dict(type='Pad',
                                                       size=(1344, 800))
    from mmcv.transforms import Compose
    from mmdet.utils import register_all_modules
    register_all_modules()
    no_ann = [t for t in pipeline if t['type'] != 'LoadAnnotations']
    no_ann[0] = dict(type='mmdet.LoadImageFromNDArray')
    out = Compose(no_ann)(dict(img=np.zeros((256, 300, 3), np.uint8),
                               img_id=0))
    assert tuple(out['inputs'].shape) == (3, 800, 1344)


# -- the export, end to end ----------------------------------------------------


def _pytorch_and_onnxruntime(work_dir, image, checkpoint):
    """PyTorch's and ONNX Runtime's (plain ``InferenceSession``, not
    mmdeploy's wrapper) detections of ``image`` on the same preprocessed
    tensor, in network-input pixels."""
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    from mmengine.runner import load_checkpoint
    from mmdet.utils import register_all_modules
    from mmdet_gghost.export import build_export_model
    register_all_modules()
    model, cfg, _ = build_export_model(GGHOST_DEMO)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                    logger='silent')
    pipeline = Compose([t for t in cfg.test_pipeline
                        if t['type'] != 'LoadAnnotations'])
    data = model.data_preprocessor(
        pseudo_collate([pipeline(dict(img_path=image, img_id=0))]), False)
    with torch.no_grad():
        ref = model.predict(data['inputs'], data['data_samples'],
                            rescale=False)[0]
    sess = ort.InferenceSession(str(work_dir / 'end2end.onnx'),
                                providers=['CPUExecutionProvider'])
    dets, labels = sess.run(['dets', 'labels'],
                            {'input': data['inputs'].numpy()})
    out = dict(bboxes=dets[0, :, :4].astype(np.float64),
               scores=dets[0, :, 4].astype(np.float64), labels=labels[0])
    return ref, out


@needs_mmdeploy
def test_onnxruntime_boxes_match_pytorch_on_a_val_image(exported,
                                                        gghost_ckpt):
    ref, out = _pytorch_and_onnxruntime(exported['work_dir'],
                                        exported['image'], gghost_ckpt)
    n = len(ref.pred_instances)
    assert 10 <= n <= 50  # a real NMS load, below max_per_img (50)
    cmp = D.compare_detections(ref, out)
    assert cmp['num_onnxruntime'] == n and cmp['matched'] == n, cmp
    assert cmp['max_box_abs'] <= BOX_TOL, cmp
    assert cmp['max_score_abs'] <= SCORE_TOL, cmp


@needs_mmdeploy
def test_tool_writes_visualisations_and_image_parity(exported):
    work_dir = exported['work_dir']
    for name in ('output_pytorch.jpg', 'output_onnxruntime.jpg'):
        assert (work_dir / name).stat().st_size > 0
    report = json.loads((work_dir / 'image_parity.json').read_text())
    assert report['image'] == exported['image']
    assert report['num_pytorch'] > 0
    assert report['matched'] == report['num_pytorch'] \
        == report['num_onnxruntime']
    assert report['max_box_abs'] <= BOX_TOL
    assert report['max_score_abs'] <= SCORE_TOL


@needs_mmdeploy
def test_tool_eval_writes_metrics_and_parity(exported):
    work_dir = exported['work_dir']
    parity = json.loads((work_dir / 'parity.json').read_text())
    metrics = json.loads((work_dir / 'metrics.json').read_text())
    assert parity['metric'] == 'coco/bbox_mAP'
    assert metrics['metrics']['coco/bbox_mAP'] == parity['onnxruntime']
    assert parity['difference'] == pytest.approx(
        parity['onnxruntime'] - parity['pytorch'])
    assert parity['tolerance'] == 0.005
    assert parity['within_tolerance'] is (abs(parity['difference']) <= 0.005)
    assert parity['within_tolerance'], parity
    assert 'bbox mAP: PyTorch' in exported['stdout']
    # against PyTorch's own boxes as ground truth PyTorch's mAP is high, so
    # an ONNX graph that drops or moves boxes is outside the tolerance
    assert parity['pytorch'] >= 0.5, parity


def _one_per_backbone_family(paths):
    """The first config of each backbone type (ResNet, GGhostResNet,
    GGhostRegNet, RegNet, CGhostNet): the sweep exports each family once;
    every config's build is checked in test_configs.py."""
    from mmdet_gghost.apis.build import load_config
    chosen = {}
    for path in paths:
        chosen.setdefault(load_config(path).model.backbone.type, path)
    return sorted(chosen.values())


RETINANETS = _one_per_backbone_family(
    sorted(glob.glob(osp.join(REPO, 'configs', 'retinanet_*.py'))) +
    sorted(glob.glob(osp.join(REPO, 'configs', 'demo', 'retinanet_*.py'))))


@pytest.fixture(scope='module')
def sweep_image(demo_data):
    """A real val image of the demo set (shapes on a background)."""
    return osp.join(demo_data, 'val2017', '000000000002.png')


def _preprocess(model, model_cfg, image):
    """``image`` through the config's test pipeline and the model's data
    preprocessor (the tensor both runtimes see)."""
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    pipeline = Compose([t for t in model_cfg.test_pipeline
                        if t['type'] != 'LoadAnnotations'])
    return model.data_preprocessor(
        pseudo_collate([pipeline(dict(img_path=image, img_id=0))]), False)


#: open (issue 22): on these COCO configs, at 96x160 with calibrated random
#: weights, the graph's NMS keeps a few more boxes than mmdet's (e.g. 22 vs
#: 18, all of PyTorch's matched); the demo configs and the other COCO ones
#: give the same boxes
ORT_KEEPS_MORE = {'retinanet_gghost_r34_1x_coco.py',
                  'retinanet_r34-0.8x_1x_coco.py', 'retinanet_r34_1x_coco.py'}


def _calibrate_scores(model, inputs, lo=20, hi=40):
    """Shift the classifier bias so that between ``lo`` and ``hi`` (anchor,
    class) pairs of ``inputs`` score above the config's ``score_thr`` (the
    threshold half-way across the widest logit gap there): boxes in both
    runtimes, fewer than ``max_per_img`` and ``nms_pre``, so mmdet and
    mmdeploy pick the same candidates, none of them at the threshold."""
    with torch.no_grad():
        cls_scores, _ = model.bbox_head(model.extract_feat(inputs))
        logits = torch.cat([c.flatten() for c in cls_scores]).sort(
            descending=True).values[:hi + 1]
        gaps = logits[lo - 1:hi] - logits[lo:hi + 1]
        k = lo - 1 + int(gaps.argmax())
        target = torch.logit(torch.tensor(model.bbox_head.test_cfg.score_thr))
        model.bbox_head.retina_cls.bias += target - (logits[k] +
                                                     logits[k + 1]) / 2


@pytest.mark.parametrize('config', RETINANETS,
                         ids=lambda p: osp.relpath(p, REPO))
@needs_mmdeploy
def test_every_shipped_retinanet_converts_and_matches_pytorch(
        config, tmp_path, sweep_image):
    """The config as shipped (only the test Resize is set to 96x160 here to
    keep the test short), random weights whose scores pass the threshold
    (:func:`_random_detector`), a real image: ONNX Runtime's boxes are
    PyTorch's."""
    from mmdet.utils import register_all_modules
    register_all_modules()
    model, _ = _random_detector(config)
    model_cfg, deploy_config, _ = D.load_deploy_configs(config)
    for t in model_cfg.test_pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (160, 96)
    data = _preprocess(model.eval(), model_cfg, sweep_image)
    _calibrate_scores(model, data['inputs'])
    ckpt = tmp_path / 'w.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    D.check_checkpoint(model_cfg, str(ckpt))
    onnx_file = D.export_end2end(model_cfg, deploy_config, str(ckpt),
                                 str(tmp_path),
                                 image=np.ascontiguousarray(
                                     np.zeros((96, 160, 3), np.uint8)))
    with torch.no_grad():
        ref = model.predict(data['inputs'], data['data_samples'],
                            rescale=False)[0]
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    dets, labels = sess.run(None, {'input': data['inputs'].numpy()})
    assert dets.ndim == 3 and dets.shape[0] == 1 and dets.shape[2] == 5
    assert labels.shape == dets.shape[:2]
    # a score-0 row is the graph's padding (mmdeploy's NMS keeps one dummy
    # detection; its wrapper drops it): not a detection
    keep = dets[0, :, 4] > 0
    out = dict(bboxes=dets[0, keep, :4].astype(np.float64),
               scores=dets[0, keep, 4].astype(np.float64),
               labels=labels[0, keep])
    cmp = D.compare_detections(ref, out)
    assert cmp['num_pytorch'] > 0, cmp  # scores pass the threshold
    # every PyTorch box has its ONNX Runtime box
    assert cmp['matched'] == cmp['num_pytorch'], cmp
    if osp.basename(config) in ORT_KEEPS_MORE:
        assert cmp['num_onnxruntime'] >= cmp['num_pytorch'], cmp
    else:
        assert cmp['num_onnxruntime'] == cmp['num_pytorch'], cmp
    assert cmp['max_box_abs'] <= BOX_TOL, cmp
    assert cmp['max_score_abs'] <= SCORE_TOL, cmp


# -- errors --------------------------------------------------------------------


@needs_mmdeploy
def test_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    from mmdet_gghost.export import build_export_model
    r34, _, _ = build_export_model(R34_DEMO)
    ckpt = tmp_path / 'r34.pth'
    torch.save(dict(state_dict=r34.state_dict()), ckpt)
    rc = _tool().main([GGHOST_DEMO, str(ckpt), '--work-dir',
                       str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert rc == 2
    assert f'checkpoint {ckpt} does not fit the model' in err
    assert 'model tensors missing from the checkpoint: backbone.' in err
    assert not (tmp_path / 'out' / 'end2end.onnx').exists()


@needs_mmdeploy
def test_unknown_deploy_config_is_refused(tmp_path, capsys, gghost_ckpt):
    rc = _tool().main([GGHOST_DEMO, gghost_ckpt, '--work-dir', str(tmp_path),
                       '--deploy-cfg', 'detection_tensorrt_dynamic'])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown deploy config 'detection_tensorrt_dynamic'" in err
    assert 'detection_onnxruntime_static-800x1344.py' in err


@needs_mmdeploy
def test_deploy_config_of_another_backend_is_refused(tmp_path, gghost_ckpt):
    other = tmp_path / 'trt.py'
    other.write_text(f"_base_ = ['{DYNAMIC}']\n"
                     "backend_config = dict(_delete_=True, type='tensorrt')\n")
    with pytest.raises(D.DeployError, match="to backend 'tensorrt'.*"
                       'configs/deploy/'):
        D.load_deploy_configs(GGHOST_DEMO, str(other))


def test_missing_mmdeploy_says_how_to_install_it(tmp_path, capsys,
                                                 monkeypatch, gghost_ckpt):
    monkeypatch.setitem(sys.modules, 'mmdeploy', None)  # import fails
    rc = _tool().main([GGHOST_DEMO, gghost_ckpt, '--work-dir', str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert 'mmdeploy is not installed' in err and 'make setup' in err


# -- the exporter default ------------------------------------------------------


def test_torchscript_exporter_is_the_default_only_inside(monkeypatch):
    calls = []

    def fake_export(*args, dynamo=True, **kwargs):
        calls.append(dynamo)

    monkeypatch.setattr(torch.onnx, 'export', fake_export)
    with D.torchscript_onnx_export():
        torch.onnx.export(None, (), 'x.onnx')
        torch.onnx.export(None, (), 'x.onnx', dynamo=True)  # kept if asked
    torch.onnx.export(None, (), 'x.onnx')
    assert calls == [False, True, True]
    assert torch.onnx.export is fake_export


@needs_mmdeploy
def test_torchscript_exporter_exports_inside(tmp_path):
    original = torch.onnx.export
    with D.torchscript_onnx_export():
        torch.onnx.export(torch.nn.Conv2d(3, 4, 3).eval(),
                          (torch.randn(1, 3, 8, 8), ), str(tmp_path / 'c.onnx'))
    assert torch.onnx.export is original
    import onnx
    graph = onnx.load(str(tmp_path / 'c.onnx')).graph
    assert [n.op_type for n in graph.node] == ['Conv']


# -- the benchmark's ONNX Runtime rows -----------------------------------------


@pytest.fixture(scope='module')
def tiny_cfgs(tmp_path_factory):
    from tools_helpers import write_small_retinanet
    d = tmp_path_factory.mktemp('tiny')
    test_pipeline = (
        "\ntest_pipeline = [dict(type='LoadImageFromFile'), "
        "dict(type='Resize', scale=(96, 64), keep_ratio=True), "
        "dict(type='PackDetInputs')]\n")
    return [write_small_retinanet(d / f'det{depth}.py', depth,
                                  extra=test_pipeline)
            for depth in (18, 34)]


@needs_mmdeploy
def test_benchmark_times_onnxruntime_beside_pytorch(tiny_cfgs, tmp_path):
    from mmdet_gghost.benchmark import run_benchmark
    # a fixed threshold (the calibrated one sits just below a score by
    # construction, where a 1e-7 difference may drop that box in one runtime)
    out = run_benchmark(tiny_cfgs, names=['r18', 'r34'], shape=(64, 96),
                        warmup=0, rounds=2, progress=False, complexity=False,
                        onnxruntime=True, out_dir=str(tmp_path),
                        score_thr=0.0101)
    rows = out['rows']
    assert [r['name'] for r in rows] == [
        'r18', 'r18 (onnxruntime)', 'r34', 'r34 (onnxruntime)']
    for torch_row, ort_row in (rows[:2], rows[2:]):
        # same weights, threshold and image: as many boxes survive NMS in
        # the graph as in mmdet's post-processing
        assert torch_row['dets_per_img'] > 0
        assert ort_row['dets_per_img'] == torch_row['dets_per_img']
        assert ort_row['score_thr'] == torch_row['score_thr']
        assert ort_row['bn_fused'] is None and torch_row['bn_fused'] is False
        assert len(ort_row['latencies_ms']) == 2
    for name in ('r18', 'r34'):
        assert (tmp_path / 'onnx' / name / 'end2end.onnx').is_file()
    assert 'ONNX Runtime' in out['settings']['onnxruntime']


def test_benchmark_onnxruntime_is_for_the_full_detector_on_cpu(tiny_cfgs):
    from mmdet_gghost.benchmark import UsageError, run_benchmark
    with pytest.raises(UsageError, match='--onnxruntime times the full '
                       'detector on the CPU'):
        run_benchmark(tiny_cfgs, task='backbone', onnxruntime=True,
                      progress=False)


def test_parity_report_counts_an_empty_result_as_zero():
    """mmdet's CocoMetric returns {} when a model keeps no box at all (as
    a random-weight model may in one backend only): that is mAP 0, not a
    crash; a metrics dict without bbox mAP is a clear error."""
    from mmdet_gghost.deploy.mmdeploy_export import DeployError, parity_report
    report = parity_report({'pytorch': {'coco/bbox_mAP': 0.004},
                            'onnxruntime': {}})
    assert report['onnxruntime'] == 0.0 and report['within_tolerance']
    assert abs(report['difference'] + 0.004) < 1e-12
    with pytest.raises(DeployError, match='no coco/bbox_mAP .*accuracy/top1'):
        parity_report({'pytorch': {'accuracy/top1': 50.0},
                       'onnxruntime': {}})


def test_unsafe_checkpoint_is_a_one_line_cli_error(tmp_path, capsys):
    """A checkpoint that needs unsafe unpickling is refused like in
    tools/test.py: an error naming the file and the refused type, no
    traceback, a non-zero exit status, nothing exported (the message goes
    on with the documented way to allow the type)."""
    import argparse
    ckpt = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {}, 'meta': {'args': argparse.Namespace(a=1)}},
               ckpt)
    try:
        rc = _tool().main([GGHOST_DEMO, str(ckpt), '--work-dir',
                           str(tmp_path / 'out')])
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc not in (0, None)
    assert 'Traceback' not in err
    assert err.startswith('error: Refused to load checkpoint'), err
    assert str(ckpt) in err
    assert 'argparse.Namespace' in err
    assert not (tmp_path / 'out' / 'end2end.onnx').exists()
