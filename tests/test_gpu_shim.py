"""tools/gpu/mmcv_ext_gpu_shim.py, the ``mmcv._ext`` of the GPU machine
(mmcv-lite, no compiled ops): what RetinaNet calls there agrees with mmcv's
own ops and mmdet's CPU focal loss, checked here on CPU tensors."""
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

SHIM = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                'tools', 'gpu', 'mmcv_ext_gpu_shim.py')


@pytest.fixture(scope='module')
def shim():
    spec = importlib.util.spec_from_file_location('mmcv_ext_gpu_shim', SHIM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _logits(n=64, classes=5):
    """Logits up to |16| in float64: the formulas compared exactly (in
    float32 mmcv's kernel, and the shim, lose ~1e-4 relative where
    sigmoid rounds to 1; mmdet's BCE-with-logits does not)."""
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(n, classes, generator=g, dtype=torch.float64) * 4
         ).requires_grad_()
    # class indices, num_classes = background (as mmdet's RetinaNet head)
    t = torch.randint(0, classes + 1, (n, ), generator=g)
    return x, t


def _mmdet_loss(x, t, gamma, alpha, class_weight=None):
    """mmdet's CPU focal loss (autograd), per element, with mmcv's class
    weight of each sample's target."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    one_hot = F.one_hot(t, x.size(1) + 1)[:, :x.size(1)]
    loss = py_sigmoid_focal_loss(x, one_hot, None, gamma, alpha, 'none')
    if class_weight is not None:
        padded = torch.cat([class_weight, class_weight.new_zeros(1)])
        loss = loss * padded[t][:, None]
    return loss


@pytest.mark.parametrize('reduction', ['sum', 'mean', 'none'])
@pytest.mark.parametrize('gamma, alpha', [(2.0, 0.25), (1.5, 0.5)])
def test_sigmoid_focal_loss_matches_mmdet(monkeypatch, shim, reduction,
                                          gamma, alpha):
    """mmcv's ``sigmoid_focal_loss`` running on the shim: loss and input
    gradient equal mmdet's CPU focal loss (mmcv's 'mean' divides by the
    number of samples)."""
    from mmcv.ops import focal_loss
    monkeypatch.setattr(focal_loss, 'ext_module', shim)
    x, t = _logits()
    ref = _mmdet_loss(x, t, gamma, alpha)
    ref = dict(sum=ref.sum(), mean=ref.sum() / x.size(0), none=ref)[reduction]
    ref_grad, = torch.autograd.grad(ref.sum(), x)
    out = focal_loss.sigmoid_focal_loss(x, t, gamma, alpha, None, reduction)
    grad, = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_sigmoid_focal_loss_class_weight(monkeypatch, shim):
    from mmcv.ops import focal_loss
    monkeypatch.setattr(focal_loss, 'ext_module', shim)
    x, t = _logits()
    t = t.clamp(max=x.size(1) - 1)  # mmcv indexes weight[t]: no background
    w = torch.tensor([0.5, 1.0, 2.0, 0.0, 3.0], dtype=torch.float64)
    ref = _mmdet_loss(x, t, 2.0, 0.25, w).sum()
    ref_grad, = torch.autograd.grad(ref, x)
    out = focal_loss.sigmoid_focal_loss(x, t, 2.0, 0.25, w, 'sum')
    grad, = torch.autograd.grad(out, x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_nms_matches_mmcv(shim):
    pytest.importorskip('mmcv._ext', reason='mmcv ops not built')
    from mmcv.ops import nms
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(200, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=g) * 30], 1)
    scores = torch.rand(200, generator=g)
    _, keep = nms(boxes, scores, 0.5)
    assert torch.equal(shim.nms(boxes, scores, 0.5), keep)


def test_other_ops_fail_loudly_when_called(shim):
    with pytest.raises(NotImplementedError, match="'roi_align_forward'"):
        shim.roi_align_forward(torch.zeros(1))


# ------------------------------------- tools/gpu/patch_site.py, the wheels
@pytest.fixture
def carried_site(tmp_path):
    """A site with this environment's copies of the files patch_site edits
    (the carried wheels hold the same versions)."""
    import mmcv
    import mmpretrain
    for module, rel in ((mmcv, 'mmcv/image/photometric.py'),
                        (mmpretrain, 'mmpretrain/utils/dependency.py')):
        src = osp.join(osp.dirname(module.__file__), *rel.split('/')[1:])
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(open(src).read())
    return tmp_path


def _patch_site():
    spec = importlib.util.spec_from_file_location(
        'patch_site', osp.join(osp.dirname(SHIM), 'patch_site.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_patch_site_installs_the_shim_and_patches_once(carried_site):
    tool = _patch_site()
    done = tool.patch_site(str(carried_site))
    assert done == {'mmcv/_ext.py': 1, 'mmcv/image/photometric.py': 2,
                    'mmpretrain/utils/dependency.py': 1}
    assert (carried_site / 'mmcv/_ext.py').read_text() == open(SHIM).read()
    text = (carried_site / 'mmcv/image/photometric.py').read_text()
    assert 'np.uint8(hue_factor * 255)' not in text
    assert "'transformers<0'" in \
        (carried_site / 'mmpretrain/utils/dependency.py').read_text()
    again = tool.patch_site(str(carried_site))  # idempotent
    assert again['mmcv/image/photometric.py'] == 0
    assert (carried_site / 'mmcv/image/photometric.py').read_text() == text


def test_patched_hue_shift_is_numpy1s_value_without_overflow():
    """The replacement gives numpy 1.x's uint8 of every hue factor
    ColorJitter may draw (negative ones wrapped), computed in Python ints,
    which numpy 2 accepts."""
    import numpy as np
    (_, old, new), = [p for p in _patch_site().PATCHES
                      if p[0].endswith('photometric.py')]
    factors = np.linspace(-0.5, 0.5, 201).tolist()
    if np.__version__.startswith('1.'):
        for f in factors:
            assert eval(new, dict(np=np, hue_factor=f)) == \
                eval(old, dict(np=np, hue_factor=f)), f
    assert eval(new, dict(np=np, hue_factor=-0.3)) == 256 - 76
    assert 'int(' in new  # no float-to-uint8 cast left to numpy


def test_patch_site_refuses_an_unexpected_file(carried_site):
    tool = _patch_site()
    path = carried_site / 'mmcv/image/photometric.py'
    path.write_text('nothing to patch\n')
    with pytest.raises(tool.PatchError, match='photometric.py holds no'):
        tool.patch_site(str(carried_site))
    with pytest.raises(tool.PatchError, match='has no mmcv'):
        tool.patch_site(str(carried_site / 'empty'))
