"""Every config in configs/ builds its model, takes one training step and one
test step on a tiny synthetic batch; the backbones resolve in both
registries."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import mmdet_gghost  # noqa: F401

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'
DET_CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py')
                     if 'imagenet' not in p.parts and '_base_' not in p.parts
                     and 'deploy' not in p.parts  # mmdeploy configs
                     and 'cls' not in p.stem)
CLS_CONFIGS = sorted((CONFIG_DIR / 'imagenet').glob('*.py')) + sorted(
    p for p in (CONFIG_DIR / 'demo').glob('*.py') if 'cls' in p.stem)

def _rel(p):
    return str(p.relative_to(CONFIG_DIR))


def _build(cfg, toolbox):
    if toolbox == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmpretrain.registry import MODELS
        from mmpretrain.utils import register_all_modules
    register_all_modules()
    model_cfg = cfg.model
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    return MODELS.build(model_cfg)


@pytest.mark.parametrize('path', DET_CONFIGS, ids=_rel)
def test_detection_config_trains_and_tests_one_step(path):
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    model = _build(cfg, 'mmdet')
    # FPN in_channels must match what the backbone gives
    model.backbone.eval()  # mmdet's ResNet.train() returns None
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 64, 64))
    assert list(cfg.model.neck.in_channels) == [f.shape[1] for f in feats]
    num_classes = cfg.model.get('bbox_head', {}).get('num_classes', 80)
    packed = demo_mm_inputs(2, [[3, 128, 160], [3, 96, 128]], num_items=[3, 2],
                            num_classes=num_classes)
    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    with torch.no_grad():
        results = model.test_step(packed)
    assert len(results) == 2
    assert results[0].pred_instances.bboxes.shape[-1] == 4


@pytest.mark.parametrize('path', CLS_CONFIGS, ids=_rel)
def test_classification_config_trains_and_tests_one_step(path):
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    model = _build(cfg, 'mmpretrain')
    num_classes = cfg.model.head.num_classes
    size = 64
    inputs = [torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
              for _ in range(2)]
    samples = [DataSample().set_gt_label(i % num_classes) for i in range(2)]
    packed = dict(inputs=inputs, data_samples=samples)
    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    with torch.no_grad():
        results = model.test_step(packed)
    assert results[0].pred_score.shape == (num_classes, )


@pytest.mark.parametrize('type_name', [
    'GGhostResNet', 'mmdet_gghost.GGhostResNet', 'GGhostRegNet', 'CGhostNet'
])
def test_backbones_resolve_in_both_registries(type_name):
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as PRE
    kwargs = dict(depth=18) if 'ResNet' in type_name else {}
    if 'RegNet' in type_name:
        kwargs = dict(arch='gghost_regnetx_200mf')
    classes = {type(reg.build(dict(type=type_name, **kwargs)))
               for reg in (DET, PRE)}
    assert len(classes) == 1
    assert classes.pop().__module__.startswith('mmdet_gghost.models')


def test_custom_imports_in_a_config_string(tmp_path):
    """What a user writes: custom_imports + the plain type name."""
    from mmengine.registry import DefaultScope
    text = ("custom_imports = dict(imports=['mmdet_gghost'], "
            "allow_failed_imports=False)\n"
            "model = dict(type='ImageClassifier', backbone=dict("
            "type='GGhostResNet', depth=18, out_indices=(3,)), "
            "neck=dict(type='GlobalAveragePooling'), head=dict("
            "type='LinearClsHead', num_classes=5, in_channels=512))\n")
    cfg = Config.fromstring(text, file_format='.py')
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    out = model(torch.randn(2, 3, 64, 64), mode='tensor')
    assert out.shape == (2, 5)
