"""mmpretrain integration of the G-Ghost classifiers.

* our classification config works with mmpretrain's own entry points
  (``get_model``, ``init_model``, ``ImageClassificationInferencer``,
  ``tools/analysis_tools/get_flops.py``) and with ``tools/train.py`` /
  ``tools/test.py``;
* an ImageNet classifier checkpoint initialises the RetinaNet backbone
  tensor for tensor, and nothing is skipped silently;
* bad input (wrong class count, missing/empty/corrupt data) gives one clear
  error.

Everything runs on tiny data (32x32 images, a few per class) and a couple of
iterations; the demo's real accuracy is measured separately
(docs/classification.md).
"""
import copy
import json
import os.path as osp
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdet_gghost  # noqa: F401  (registers the backbones)
from mmdet_gghost.apis.classification import (CheckpointMismatchError,
                                              build_classifier,
                                              check_classifier_load_from,
                                              load_classifier,
                                              read_state_dict)
from mmdet_gghost.datasets import CLS_CLASSES, make_classification_dataset
from tools_helpers import (REPO, last_checkpoint, tool_env, tool_error,
                           tool_main)

DEMO_CFG = osp.join(REPO, 'configs/demo/gghost_r34_cls_demo.py')
IMAGENET_CFG = osp.join(REPO, 'configs/imagenet/gghost-resnet34_8xb32_in1k.py')
RETINANET_CFG = osp.join(REPO, 'configs/retinanet_gghost_r34_1x_coco.py')
IMG_SIZE = 32  # the smallest the generator makes; R34 still works (1x1 out)

# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def restore_default_scope():
    """In-process runners and inferencers make 'mmpretrain' the current
    default scope; later tests (other files) may build mmdet models
    relying on the current scope, so put the previous state back (as
    mmengine's ``DefaultScope.overwrite_default_scope`` does)."""
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved


@pytest.fixture(scope='module')
def tiny_cls(tmp_path_factory):
    """8 classes x (4 train, 2 val) images of 32x32 pixels."""
    root = tmp_path_factory.mktemp('data') / 'cls'
    make_classification_dataset(root, num_train_per_class=4,
                                num_val_per_class=2, img_size=IMG_SIZE)
    return root


@pytest.fixture
def cls_copy(tiny_cls, tmp_path):
    """A private copy of the tiny set, for tests that break it."""
    return Path(shutil.copytree(tiny_cls, tmp_path / 'cls'))


def randomize_state(model, seed):
    """Every parameter and buffer (BN statistics too) set to seeded random
    values, so that equal outputs can only come from loading them."""
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            if value.is_floating_point():
                rand = torch.rand(value.shape, generator=gen)
                # running_var must stay positive; others centred on 0.
                value.copy_(rand + 0.5 if key.endswith('running_var') else
                            (rand - 0.5) * 0.2)
            else:  # num_batches_tracked
                value.fill_(int(torch.randint(1, 1000, (1, ),
                                              generator=gen)))
    return model


def save_checkpoint(state, path, classes=None):
    """An mmengine-style checkpoint as CheckpointHook writes it."""
    meta = {'mmdet_gghost': 'test'}
    if classes is not None:
        meta['dataset_meta'] = {'classes': list(classes)}
    torch.save({'state_dict': state, 'meta': meta}, path)
    return str(path)


@pytest.fixture(scope='module')
def demo_ckpt(tmp_path_factory):
    """(randomised demo classifier, its checkpoint path)."""
    from mmpretrain import get_model
    model = randomize_state(get_model(DEMO_CFG), seed=1).eval()
    path = tmp_path_factory.mktemp('ckpt') / 'demo.pth'
    return model, save_checkpoint(model.state_dict(), path, CLS_CLASSES)


def logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x, mode='tensor')


def data_options(root, **extra):
    """--cfg-options pointing the demo config at ``root``, in-process and
    single-threaded data loading (tiny data: workers only cost time)."""
    opts = {}
    for split in ('train', 'val', 'test'):
        opts[f'{split}_dataloader.dataset.data_root'] = str(root)
        opts[f'{split}_dataloader.num_workers'] = 0
        opts[f'{split}_dataloader.persistent_workers'] = False
    opts.update(extra)
    return opts


def as_cli(options):
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def val_images(root):
    """[(path, label)] of the val split, labels in CLS_CLASSES order."""
    return [(str(p), label) for label, name in enumerate(CLS_CLASSES)
            for p in sorted((Path(root) / 'val' / name).glob('*.png'))]


# --------------------------------------------------------------------------
# mmpretrain's entry points on our config
# --------------------------------------------------------------------------
def test_get_model_with_pretrained_round_trips(demo_ckpt):
    from mmpretrain import get_model
    saved, ckpt = demo_ckpt
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    expected = logits(saved, x)
    # A fresh model differs, so equality below means the weights loaded.
    assert not torch.allclose(logits(get_model(DEMO_CFG), x), expected)

    loaded = get_model(DEMO_CFG, pretrained=ckpt)
    torch.testing.assert_close(logits(loaded, x), expected, rtol=0, atol=0)
    # get_model keeps the checkpoint's dataset_meta (the inferencer's names)
    assert tuple(loaded._dataset_meta['classes']) == CLS_CLASSES
    # the strict variant returns the same model
    strict = load_classifier(DEMO_CFG, ckpt)
    torch.testing.assert_close(logits(strict, x), expected, rtol=0, atol=0)


def test_init_model(demo_ckpt):
    from mmpretrain.apis import init_model
    saved, ckpt = demo_ckpt
    model = init_model(DEMO_CFG, ckpt, device='cpu')
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(logits(model, x), logits(saved, x), rtol=0,
                               atol=0)


def test_image_classification_inferencer(demo_ckpt, tiny_cls):
    from mmpretrain.apis import ImageClassificationInferencer
    from mmpretrain.structures import DataSample
    from mmengine.registry import DefaultScope
    saved, ckpt = demo_ckpt
    image, _ = val_images(tiny_cls)[5]
    # The inferencer builds its pipeline in the *current* default scope;
    # detection tests earlier in the session may have left it at 'mmdet'.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(
            model=DEMO_CFG, pretrained=ckpt, device='cpu')
        [result] = inferencer(image)

    # What the saved model says about the same image (mmcv reads BGR, the
    # data preprocessor converts to RGB and normalises, as in training).
    img = torch.from_numpy(mmcv.imread(image)).permute(2, 0, 1)
    with torch.no_grad():
        [sample] = saved.test_step(
            dict(inputs=[img], data_samples=[DataSample()]))
    np.testing.assert_allclose(result['pred_scores'],
                               sample.pred_score.numpy(), rtol=1e-5,
                               atol=1e-6)
    assert result['pred_label'] == int(sample.pred_score.argmax())
    assert result['pred_class'] == CLS_CLASSES[result['pred_label']]


def test_get_flops(tmp_path):
    """mmpretrain's tools/analysis_tools/get_flops.py on our config, and the
    same computation in-process (the script is shipped with the pip
    package under mmpretrain/.mim/tools)."""
    import mmpretrain
    from mmengine.analysis import get_model_complexity_info
    from mmpretrain import get_model

    # What get_flops.py does: count extract_feat (backbone + neck).
    model = get_model(DEMO_CFG).eval()
    model.forward = model.extract_feat
    info = get_model_complexity_info(model, (3, 64, 64))
    # params: the whole classifier (the head too), FLOPs: extract_feat only
    assert info['params'] == sum(p.numel() for p in model.parameters())
    # 64x64 is (64 / 224)^2 of the 224x224 count: a few hundred MMACs.
    assert 1e8 < info['flops'] < 1e9

    script = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools',
                      'analysis_tools', 'get_flops.py')
    if not osp.isfile(script):
        pytest.skip('this mmpretrain install does not ship tools/; the '
                    'in-process count above is what get_flops.py does')
    out = subprocess.run([sys.executable, script, DEMO_CFG, '--shape', '64'],
                         env=tool_env(), capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"Flops: {info['flops_str']}" in out.stdout
    assert f"Params: {info['params_str']}" in out.stdout


# --------------------------------------------------------------------------
# tools/train.py + tools/test.py on the demo config
# --------------------------------------------------------------------------
def test_demo_config_trains_and_tests(tiny_cls, tmp_path):
    work_dir = tmp_path / 'work'
    options = data_options(
        tiny_cls, **{
            'train_cfg.max_iters': 2,
            'train_cfg.val_interval': 2,
            'train_dataloader.batch_size': 8,
            'default_hooks.checkpoint.interval': 2,
            'default_hooks.logger.interval': 1,
        })
    assert tool_main('train.py', DEMO_CFG, '--work-dir', work_dir,
                     *as_cli(options)) is None
    [log] = [p.read_text() for p in work_dir.glob('*/*.log')]
    assert re.search(r'Iter\(train\) \[2/2\]', log)
    assert re.search(r'Iter\(val\) .*accuracy/top1: ', log)
    checkpoint = last_checkpoint(work_dir)
    assert checkpoint.endswith('iter_2.pth')

    metrics_json = tmp_path / 'metrics.json'
    assert tool_main('test.py', DEMO_CFG, checkpoint, '--work-dir',
                     tmp_path / 'eval', '--metrics-json', metrics_json,
                     *as_cli(data_options(tiny_cls))) is None
    report = json.loads(metrics_json.read_text())
    assert report['checkpoint'] == osp.abspath(checkpoint)
    top1 = report['metrics']['accuracy/top1']

    # Recompute the accuracy from the checkpoint, image by image.
    from mmpretrain.structures import DataSample
    model = load_classifier(DEMO_CFG, checkpoint)
    correct = 0
    for path, label in val_images(tiny_cls):
        img = torch.from_numpy(mmcv.imread(path)).permute(2, 0, 1)
        with torch.no_grad():
            [sample] = model.test_step(
                dict(inputs=[img], data_samples=[DataSample()]))
        correct += int(sample.pred_score.argmax()) == label
    assert top1 == pytest.approx(100 * correct / len(val_images(tiny_cls)))


# --------------------------------------------------------------------------
# ImageNet classifier checkpoint -> RetinaNet backbone
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def imagenet_ckpt(tmp_path_factory):
    """A G-Ghost-ResNet34 ImageNet classifier (1000 classes) checkpoint,
    built from our ImageNet config, with random values everywhere."""
    model = build_classifier(Config.fromfile(IMAGENET_CFG))
    assert model.head.fc.out_features == 1000
    state = randomize_state(model, seed=2).state_dict()
    path = tmp_path_factory.mktemp('in1k') / 'gghost-resnet34_in1k.pth'
    return save_checkpoint(state, path)


def build_retinanet(checkpoint):
    """RetinaNet of our config, backbone init_cfg.checkpoint overridden the
    way ``--cfg-options`` does, after ``init_weights``."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(RETINANET_CFG)
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': checkpoint})
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
    detector.init_weights()
    return detector


def test_classifier_checkpoint_initialises_retinanet_backbone(imagenet_ckpt):
    expected = {k[len('backbone.'):]: v
                for k, v in read_state_dict(imagenet_ckpt).items()
                if k.startswith('backbone.')}
    backbone = build_retinanet(imagenet_ckpt).backbone.state_dict()
    assert set(backbone) == set(expected)
    different = [k for k, v in backbone.items()
                 if not torch.equal(v, expected[k])]
    assert different == []


def test_incomplete_or_extra_backbone_keys_are_refused(imagenet_ckpt,
                                                       tmp_path):
    state = read_state_dict(imagenet_ckpt)
    dropped = 'backbone.layer3.cheap.bn.running_mean'
    missing = save_checkpoint(
        {k: v for k, v in state.items() if k != dropped},
        tmp_path / 'missing.pth')
    with pytest.raises(ValueError, match=r'1 missing keys .*'
                       r'layer3\.cheap\.bn\.running_mean'):
        build_retinanet(missing)

    extra = save_checkpoint(
        dict(state, **{'backbone.layer5.conv.weight': torch.zeros(1)}),
        tmp_path / 'extra.pth')
    with pytest.raises(ValueError,
                       match=r'1 unexpected keys .*layer5\.conv\.weight'):
        build_retinanet(extra)


# --------------------------------------------------------------------------
# Wrong number of classes
# --------------------------------------------------------------------------
def test_mmpretrain_keeps_a_random_head_for_a_wrong_class_count(
        imagenet_ckpt):
    """Why the check below exists: get_model (and load_from, init_model,
    the inferencers) only warn, load the backbone and keep a random head."""
    from mmpretrain import get_model
    model = get_model(DEMO_CFG, pretrained=imagenet_ckpt)
    state = read_state_dict(imagenet_ckpt)
    assert torch.equal(model.backbone.stem[0].conv.weight,
                       state['backbone.stem.0.conv.weight'])
    assert model.head.fc.weight.shape == (8, 512)
    assert state['head.fc.weight'].shape == (1000, 512)


def test_wrong_class_count_is_a_clear_error(imagenet_ckpt, demo_ckpt):
    with pytest.raises(CheckpointMismatchError) as error:
        load_classifier(DEMO_CFG, imagenet_ckpt)
    msg = str(error.value)
    assert f'checkpoint {imagenet_ckpt} does not fit' in msg
    assert 'trained for 1000 classes but the config has ' \
        'model.head.num_classes=8' in msg
    assert 'head.fc.weight' in msg
    assert 'model.backbone.init_cfg.prefix=backbone.' in msg

    cfg = Config.fromfile(DEMO_CFG)
    cfg.load_from = imagenet_ckpt
    with pytest.raises(CheckpointMismatchError, match='trained for 1000'):
        check_classifier_load_from(cfg)
    # a checkpoint of the demo config itself passes, no load_from too
    cfg.load_from = demo_ckpt[1]
    check_classifier_load_from(cfg)
    cfg.load_from = None
    check_classifier_load_from(cfg)


def test_load_from_check_catches_other_mismatches(demo_ckpt, tmp_path):
    _, ckpt = demo_ckpt
    state = read_state_dict(ckpt)
    cfg = Config.fromfile(DEMO_CFG)
    cfg.load_from = save_checkpoint(
        {k: v
         for k, v in state.items() if not k.startswith('backbone.layer4')},
        tmp_path / 'no_layer4.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r'model tensors missing from the checkpoint: '
                       r'backbone\.layer4'):
        check_classifier_load_from(cfg)
    # a depth-18 model cannot take the depth-34 checkpoint
    cfg = Config.fromfile(DEMO_CFG)
    cfg.model.backbone.depth = 18
    cfg.load_from = ckpt
    with pytest.raises(CheckpointMismatchError,
                       match='checkpoint tensors the model does not have'):
        check_classifier_load_from(cfg)
    # detection configs keep mmdet's fine-tuning behaviour (not checked)
    det = Config.fromfile(RETINANET_CFG)
    det.load_from = ckpt
    check_classifier_load_from(det)


def test_train_tool_refuses_load_from_with_wrong_class_count(
        imagenet_ckpt, tiny_cls, tmp_path):
    options = data_options(tiny_cls, **{'train_cfg.max_iters': 1,
                                        'train_cfg.val_interval': 10,
                                        'load_from': imagenet_ckpt})
    message = tool_main('train.py', DEMO_CFG, '--work-dir', tmp_path / 'w',
                        *as_cli(options))
    assert message is not None and 'trained for 1000 classes' in message


def test_the_fine_tuning_advice_of_the_error_works(imagenet_ckpt, tiny_cls,
                                                  tmp_path):
    """The error suggests loading only the backbone through its init_cfg:
    that trains, and every backbone tensor is loaded (strictly)."""
    work_dir = tmp_path / 'w'
    options = data_options(tiny_cls, **{
        'train_cfg.max_iters': 1, 'train_cfg.val_interval': 10,
        'load_from': 'None',
        'model.backbone.init_cfg.type': 'Pretrained',
        'model.backbone.init_cfg.checkpoint': imagenet_ckpt,
        'model.backbone.init_cfg.prefix': 'backbone.'})
    assert tool_main('train.py', DEMO_CFG, '--work-dir', work_dir,
                     *as_cli(options)) is None
    [log] = work_dir.glob('*/*.log')
    num_backbone = sum(k.startswith('backbone.')
                       for k in read_state_dict(imagenet_ckpt))
    assert f'loaded {num_backbone} tensors from {imagenet_ckpt} into ' \
        'GGhostResNet' in log.read_text()


def test_test_tool_refuses_checkpoint_with_wrong_class_count(
        imagenet_ckpt, tiny_cls, tmp_path):
    """Without the check, tools/test.py reports the accuracy of a random
    8-class head after a warning."""
    message = tool_main('test.py', DEMO_CFG, imagenet_ckpt, '--work-dir',
                        tmp_path / 'w', *as_cli(data_options(tiny_cls)))
    assert message is not None and 'trained for 1000 classes' in message


# --------------------------------------------------------------------------
# Bad data through tools/train.py
# --------------------------------------------------------------------------
def test_missing_data_root(tmp_path, capsys):
    missing = tmp_path / 'no_such_data'
    code, err = tool_error('train.py', DEMO_CFG, '--work-dir', tmp_path / 'w',
                           *as_cli(data_options(missing)), capsys=capsys)
    assert code != 0
    assert f'train.py: error: data root {missing} does not exist' in err
    assert 'make_synthetic_data.py cls' in err
    assert 'Traceback' not in err


def test_empty_class_folder(cls_copy, tmp_path):
    empty = cls_copy / 'train' / 'star_striped'
    for image in empty.iterdir():
        image.unlink()
    message = tool_main('train.py', DEMO_CFG, '--work-dir', tmp_path / 'w',
                        *as_cli(data_options(cls_copy)))
    assert message is not None
    assert f'class folder {empty} has no images' in message


def test_corrupt_image_found_before_training(cls_copy, tmp_path):
    first = cls_copy / 'train' / 'circle_solid' / '00000.png'
    first.write_bytes(first.read_bytes()[:40])  # truncated download
    message = tool_main('train.py', DEMO_CFG, '--work-dir', tmp_path / 'w',
                        *as_cli(data_options(cls_copy)))
    assert message is not None
    assert f'corrupt or unreadable image {first}' in message


def test_corrupt_image_found_while_validating(cls_copy, tmp_path):
    """Only the first image is decoded up front; the others are read by
    CheckedLoadImageFromFile, whose error names the file."""
    bad = cls_copy / 'val' / 'triangle_striped' / '00001.png'
    bad.write_bytes(b'')
    options = data_options(cls_copy, **{'train_cfg.max_iters': 1,
                                        'train_cfg.val_interval': 1,
                                        'train_dataloader.batch_size': 4})
    message = tool_main('train.py', DEMO_CFG, '--work-dir', tmp_path / 'w',
                        *as_cli(options))
    assert message is not None
    assert f'corrupt or unreadable image {bad}' in message
    assert 'the file is empty' in message or 'delete or replace' in message
