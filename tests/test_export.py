"""Deploy paths: ONNX export + onnxruntime parity (mmdet_gghost.export,
tools/deploy/export_onnx.py), torch.compile without graph breaks, and the
fused / channels-last forms.

Parity is ``max|a - b| / max|a|`` per output <= 1e-4, with ``a`` the
*unfused* eval-mode PyTorch model (random weights, random BN statistics so
that folding BN is not a no-op) and ``b`` the BN-fused ONNX graph in
onnxruntime (or the fused / channels-last / compiled PyTorch form).
"""
import copy
import os.path as osp
import shutil
import sys

import pytest
import torch

import mmdet_gghost  # noqa: F401  (registers the models)
from mmdet_gghost import export as E
from mmdet_gghost.analysis import count_bn_layers
from mmdet_gghost.apis.build import init_weights_quietly
from mmdet_gghost.benchmark import inference_forms
from mmdet_gghost.export.modules import flatten_outputs
from mmdet_gghost.apis.weights import CheckpointMismatchError
from mmdet_gghost.models import (CGhostNet, GGhostRegNet, GGhostResNet,
                                 GGhostStage)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RETINANET = osp.join(ROOT, 'configs', 'retinanet_gghost_r34_1x_coco.py')
CLASSIFIER = osp.join(ROOT, 'configs', 'imagenet',
                      'cghostnet-1.0x_8xb32_in1k.py')
TOL = 1e-4

try:
    import onnx
    import onnxruntime as ort
except ImportError:  # only the ONNX tests below need them
    onnx = ort = None
#: the tests that export or run ONNX (the forms, compile and install-hint
#: tests need neither)
needs_onnx = pytest.mark.skipif(
    ort is None,
    reason='needs onnx and onnxruntime (pip install -e .[deploy])')



@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    # Tiny inputs: per-op overhead dominates, and on a busy 2-core machine
    # two OpenMP threads made these tests ~4x slower than one.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


BACKBONES = {
    'GGhostResNet34': lambda: GGhostResNet(depth=34),
    'GGhostRegNet-3.2GF': lambda: GGhostRegNet(arch='gghost_regnetx_3.2gf'),
    'CGhostNet': lambda: CGhostNet(widen_factor=1.0),
}


def _backbone(name, seed=0):
    model = BACKBONES[name]()
    init_weights_quietly(model, seed)
    E.randomize_bn_stats(model, seed)
    return model.eval()


def _max_rel(refs, outs):
    return max(E.max_rel_err(a, b) for a, b in zip(refs, outs))


def _assert_parity(report, n_checks):
    assert report['ok']
    assert len(report['checks']) == n_checks
    for check in report['checks']:
        assert check['rows'], 'no outputs compared'
        for row in check['rows']:
            assert row['max_rel'] <= TOL, row
            assert row['max_abs_ref'] > 0, row  # not trivially all-zero


# -- ONNX: backbones ------------------------------------------------------


@needs_onnx
@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbone_onnx_parity(name, tmp_path):
    model = _backbone(name)
    report = E.export_config(None, str(tmp_path / 'bb.onnx'),
                             model=(model, None), target='backbone',
                             shape=(64, 64), verify_dynamic=False)
    _assert_parity(report, 1)
    assert report['kind'] == 'backbone'
    assert report['output_names'] == ['feat_0', 'feat_1', 'feat_2', 'feat_3']
    # the exported graph is the deploy form: no BN left, none in ONNX
    assert report['fused_bn'] > 0 and report['unfused_bn'] == 0
    graph = onnx.load(report['file']).graph
    assert not [n for n in graph.node if n.op_type == 'BatchNormalization']
    shapes = [r['shape'] for r in report['checks'][0]['rows']]
    assert shapes == [(1, c, 64 // s, 64 // s)
                      for c, s in zip(model.out_channels, (4, 8, 16, 32))]


# -- ONNX: RetinaNet head outputs, dynamic axes ---------------------------


@pytest.fixture(scope='module')
def retinanet_export(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('onnx') / 'retinanet.onnx')
    model, cfg, scope = E.build_export_model(RETINANET)
    assert scope == 'mmdet'
    report = E.export_config(None, out, model=(model, scope), shape=(64, 64))
    return model, report


@needs_onnx
def test_retinanet_head_outputs_parity(retinanet_export):
    model, report = retinanet_export
    assert report['kind'] == 'detector'
    names = report['output_names']
    assert names == [f'cls_score_{i}' for i in range(5)] + \
        [f'bbox_pred_{i}' for i in range(5)]
    # export shape, batch 2, and 96x128 -- all against PyTorch
    _assert_parity(report, 3)
    first = report['checks'][0]['rows']
    num_anchors = model.bbox_head.num_base_priors
    num_classes = model.bbox_head.cls_out_channels
    assert first[0]['shape'] == (1, num_anchors * num_classes, 8, 8)
    assert first[5]['shape'] == (1, num_anchors * 4, 8, 8)
    assert [c['input_shape'] for c in report['checks']] == [
        (1, 3, 64, 64), (2, 3, 64, 64), (1, 3, 96, 128)]
    assert report['checks'][2]['rows'][0]['shape'] == (1, 720, 12, 16)


@needs_onnx
def test_dynamic_batch_and_hw_in_graph(retinanet_export):
    model, report = retinanet_export
    graph = onnx.load(report['file']).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ['batch', '', 'height', 'width']
    assert dims[1].dim_value == 3
    for out in graph.output:
        assert out.type.tensor_type.shape.dim[0].dim_param == 'batch'
    # one session, batch 1 then batch 2: batch 2 = both samples' outputs
    sess = ort.InferenceSession(report['file'],
                                providers=['CPUExecutionProvider'])
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    both = E.run_onnxruntime(report['file'], x, session=sess)
    single = E.run_onnxruntime(report['file'], x[1:], session=sess)
    assert both[0].shape[0] == 2 and single[0].shape[0] == 1
    assert _max_rel(single, [o[1:] for o in both]) <= TOL
    with torch.no_grad():
        ref = flatten_outputs(model._forward(x))
    assert _max_rel(ref, both) <= TOL


# -- ONNX: classifier through the CLI -------------------------------------


def _cli():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'deploy'))
    try:
        import export_onnx
    finally:
        sys.path.pop(0)
    return export_onnx


@needs_onnx
def test_cli_classifier_logits(tmp_path, capsys):
    out = tmp_path / 'cls.onnx'
    rc = _cli().main([CLASSIFIER, '--shape', '64', '64', '--out', str(out),
                      '--threads', '1'])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert out.is_file()
    assert 'exported classifier (mmpretrain)' in text
    assert text.count('OK (max rel err') == 3  # export shape, batch 2, H/W
    assert 'logits         1x1000' in text
    assert 'FAIL' not in text
    graph = onnx.load(str(out)).graph
    assert [o.name for o in graph.output] == ['logits']


@needs_onnx
def test_cli_loads_checkpoint(tmp_path, capsys):
    """--checkpoint weights end up in the graph (not a fresh init)."""
    model, _, _ = E.build_export_model(CLASSIFIER, seed=7)
    ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(ckpt))
    out = tmp_path / 'cls.onnx'
    rc = _cli().main([CLASSIFIER, '--checkpoint', str(ckpt), '--shape', '32',
                      '32', '--out', str(out), '--seed', '0'])
    assert rc == 0, capsys.readouterr().out
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x, mode='tensor')
    assert E.max_rel_err(ref, E.run_onnxruntime(str(out), x)[0]) <= TOL
    # a wrong checkpoint is refused, not silently half-loaded
    torch.save({'state_dict': {'backbone.stem.conv.weight': torch.zeros(1)}},
               str(ckpt))
    with pytest.raises(CheckpointMismatchError,
                       match=r"1 shape mismatches .*'backbone.stem.conv."
                       r"weight', \(1,\), \(16, 3, 3, 3\)"):
        E.build_export_model(CLASSIFIER, checkpoint=str(ckpt))
    assert _cli().main([CLASSIFIER, '--checkpoint', str(ckpt)]) == 2
    assert 'error: checkpoint' in capsys.readouterr().err


@needs_onnx
def test_cli_fails_on_parity_mismatch(tmp_path, capsys, monkeypatch):
    real = E.run_onnxruntime

    def corrupted(*args, **kwargs):
        return [o * 1.01 for o in real(*args, **kwargs)]

    # verify_onnx looks it up in its own module
    from mmdet_gghost.export import onnx_export
    monkeypatch.setattr(onnx_export, 'run_onnxruntime', corrupted)
    rc = _cli().main([
        CLASSIFIER, '--target', 'backbone', '--shape', '32', '32', '--out',
        str(tmp_path / 'bad.onnx'), '--static-hw'])
    captured = capsys.readouterr()
    assert rc == 1
    assert 'FAILED' in captured.out and 'FAIL' in captured.out
    assert 'parity check FAILED' in captured.err


@needs_onnx
def test_cli_two_stage_detector_is_refused(capsys):
    cfg = osp.join(ROOT, 'configs', 'detectors',
                   'faster-rcnn_gghost_r34_fpn_1x_coco.py')
    rc = _cli().main([cfg, '--no-verify', '--out', '/nonexistent/x.onnx'])
    assert rc == 2
    assert '--target backbone' in capsys.readouterr().err


# -- missing deploy extra ---------------------------------------------------


def test_missing_onnx_gives_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, 'onnx', None)
    with pytest.raises(ImportError, match=r'pip install -e \.\[deploy\]'):
        E.require_onnx()
    rc = _cli().main([CLASSIFIER, '--out', str(tmp_path / 'x.onnx')])
    assert rc == 2
    assert 'pip install -e .[deploy]' in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()


@needs_onnx
def test_missing_onnxruntime_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    model = GGhostResNet(depth=18).eval()
    with pytest.raises(ImportError, match=r'pip install -e \.\[deploy\]'):
        E.export_config(None, str(tmp_path / 'x.onnx'), model=(model, None),
                        shape=(32, 32))
    # exporting without the check still works
    report = E.export_config(None, str(tmp_path / 'x.onnx'),
                             model=(model, None), shape=(32, 32),
                             verify=False)
    assert report['checks'] == [] and (tmp_path / 'x.onnx').is_file()


# -- fused / channels-last forms --------------------------------------------


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_fused_and_channels_last_equal_eval(name):
    model = _backbone(name, seed=1)
    forms = inference_forms(model)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = forms['eval'](x)
        for form in ('fused', 'channels_last', 'fused_channels_last'):
            inp = x.contiguous(memory_format=torch.channels_last) \
                if 'channels_last' in form else x
            out = forms[form](inp)
            assert len(out) == len(ref)
            assert _max_rel(ref, out) <= TOL, form
    assert count_bn_layers(forms['fused']) == 0
    assert count_bn_layers(forms['eval']) > 0
    w = next(forms['channels_last'].parameters())
    assert w.is_contiguous(memory_format=torch.channels_last)


def test_compare_forms_cli_prints_fps_ratio_table(capsys):
    """tools/deploy/compare_forms.py: one row per form, the benchmark's
    FPS ratio (first form = 1.000); --batch-size as in every tool."""
    from tools_helpers import load_tool
    threads = torch.get_num_threads()
    try:
        rc = load_tool('deploy/compare_forms.py').main([
            CLASSIFIER, '--forms', 'eval', 'fused', '--shape', '32', '32',
            '--batch-size', '2', '--rounds', '1', '--warmup', '0',
            '--threads', '1'])
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert 'input 2x3x32x32' in lines[0]
    assert lines[1].split() == ['form', 'median', 'ms', 'min', 'ms', 'FPS',
                                'FPS', 'ratio', '1st', 'call', 's', 'max',
                                'rel', 'err']
    assert [row.split()[0] for row in lines[2:]] == ['eval', 'fused']
    assert lines[2].split()[4] == '1.000'
    assert float(lines[3].split()[-1]) <= TOL


# -- torch.compile ------------------------------------------------------------


def _stages():
    r18 = GGhostResNet(depth=18).eval()
    regnet = GGhostRegNet(arch='gghost_regnetx_200mf').eval()
    return {
        # basic blocks, mix, conv1x1 cheap op
        'resnet18.layer2': (r18.layer2, (1, 64, 16, 16)),
        # official layout: regnetx blocks + end block
        'regnetx200mf.layer4': (regnet.layer4, (1, 152, 8, 8)),
        # depthwise cheap op, no mix
        'dwconv-nomix': (GGhostResNet(depth=18, cheap_op='dwconv3x3',
                                      mix=False).layer3.eval(),
                         (1, 128, 8, 8)),
    }


def test_no_graph_break_in_gghost_stages():
    import torch._dynamo as dynamo
    for name, (stage, shape) in _stages().items():
        assert isinstance(stage, GGhostStage)
        dynamo.reset()
        with torch.no_grad():
            explanation = dynamo.explain(stage)(torch.randn(*shape))
        assert explanation.graph_break_count == 0, (
            name, [b.reason for b in explanation.break_reasons])
        assert explanation.graph_count == 1, name


@pytest.mark.parametrize('spec', [
    ('GGhostResNet18', lambda: GGhostResNet(depth=18)),
    ('GGhostRegNet-200MF', lambda: GGhostRegNet(arch='gghost_regnetx_200mf')),
    ('CGhostNet-0.5x', lambda: CGhostNet(widen_factor=0.5)),
], ids=lambda s: s[0])
def test_whole_backbone_compiles_without_breaks(spec):
    """A whole backbone compiles as one graph (``fullgraph=True`` raises on
    any graph break) and the compiled module equals eager (aot_eager:
    dynamo + AOTAutograd tracing, no C++ codegen)."""
    name, make = spec
    model = make()
    E.randomize_bn_stats(model)
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    torch._dynamo.reset()
    with torch.no_grad():
        ref = model(x)
        out = torch.compile(model, backend='aot_eager', fullgraph=True)(x)
    assert len(out) == 4
    assert _max_rel(ref, out) <= TOL


def _have_cxx():
    return any(shutil.which(c) for c in ('g++', 'c++', 'clang++'))


@pytest.mark.skipif(not _have_cxx(), reason='inductor needs a C++ compiler')
def test_inductor_compiled_gghost_stage_equals_eager():
    """A real (inductor, C++) compile of a small fused G-Ghost stage."""
    torch._dynamo.reset()
    model = GGhostResNet(depth=18, widen_factor=0.25)
    E.randomize_bn_stats(model)
    stage = copy.deepcopy(model.layer2).eval()
    forms = inference_forms(stage, ['eval', 'compiled_fused'])
    x = torch.randn(1, stage.first.in_channels, 16, 16)
    with torch.no_grad():
        ref = forms['eval'](x)
        out = forms['compiled_fused'](x)
    assert E.max_rel_err(ref, out) <= TOL
