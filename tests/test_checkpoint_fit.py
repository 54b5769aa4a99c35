"""One checkpoint-to-model rule for test, benchmark and export: a
checkpoint that does not fit the model is an error (counts and examples),
unless --allow-partial-checkpoint. And one builder that applies it
(mmdet_gghost.apis.build.build_model)."""
import os.path as osp

import pytest
import torch

from mmdet_gghost.apis.build import build_model
from mmdet_gghost.apis.weights import (CheckpointMismatchError,
                                       check_checkpoint_matches)
from tools_helpers import cls_config, dump_config, tool_error, tool_main


@pytest.fixture(scope='module')
def files(tmp_path_factory, tiny_det_config):
    """The shared tiny detector config, a classifier checkpoint (same
    ResNet-18 backbone keys, a classification head) and the detector's
    own (seeded init) weights."""
    root = tmp_path_factory.mktemp('fit')
    config = tiny_det_config
    cls_config_path = dump_config(cls_config(str(root)), root / 'cls.py')
    classifier = build_model(cls_config_path)
    cls_ckpt = str(root / 'classifier.pth')
    torch.save(dict(state_dict=classifier.state_dict(), meta={}), cls_ckpt)
    detector = build_model(config)
    det_state = detector.state_dict()
    det_ckpt = str(root / 'detector.pth')
    torch.save(dict(state_dict=det_state), det_ckpt)
    return dict(root=root, config=config, cls_ckpt=cls_ckpt,
                det_ckpt=det_ckpt, det_state=det_state, detector=detector,
                cls_config=cls_config_path, classifier=classifier)


def test_rule_names_counts_and_examples(files):
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_matches(files['detector'], files['cls_ckpt'])
    message = str(info.value)
    n_missing = sum(not k.startswith('backbone.') and
                    not k.endswith('num_batches_tracked')
                    for k in files['det_state'])
    assert f'{n_missing} model tensors missing from the checkpoint: ' \
        'neck.' in message
    assert '2 checkpoint tensors the model does not have: head.fc.weight, ' \
        'head.fc.bias' in message
    assert 'classifier (backbone + head) checkpoint' in message
    assert '--allow-partial-checkpoint' in message


def test_rule_ignores_only_harmless_keys(files, tmp_path):
    state = {k: v for k, v in files['det_state'].items()
             if not k.endswith('num_batches_tracked')}
    state['data_preprocessor.mean'] = torch.zeros(3, 1, 1)
    path = str(tmp_path / 'harmless.pth')
    torch.save(state, path)
    assert not check_checkpoint_matches(files['detector'], path)
    del state['bbox_head.retina_cls.bias']
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError,
                       match='1 model tensors missing from the checkpoint: '
                       'bbox_head.retina_cls.bias'):
        check_checkpoint_matches(files['detector'], path)


def test_test_tool_refuses_classifier_checkpoint(files, capsys):
    work = files['root'] / 'eval'
    code, err = tool_error('test.py', files['config'], files['cls_ckpt'],
                           '--work-dir', work, capsys=capsys)
    assert code != 0
    assert 'Traceback' not in err
    assert f'test.py: error: checkpoint {files["cls_ckpt"]} does not fit' \
        in err
    assert not osp.exists(work / 'metrics.json')
    # the explicit opt-out evaluates, with the mismatch in the log
    assert tool_main('test.py', files['config'], files['cls_ckpt'],
                     '--work-dir', work, '--allow-partial-checkpoint') is None
    assert osp.isfile(work / 'metrics.json')
    log = sorted(work.glob('*/*.log'))[-1]  # this run's
    assert 'Partial checkpoint load (allowed)' in log.read_text()


def test_benchmark_refuses_classifier_checkpoint(files, capsys):
    from mmdet_gghost.benchmark import load_model
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        load_model(files['config'], files['cls_ckpt'])
    _, _, info = load_model(files['config'], files['cls_ckpt'],
                            allow_partial_checkpoint=True)
    assert info['weights'] == 'partial checkpoint'
    model, _, info = load_model(files['config'], files['det_ckpt'])
    assert info['weights'] == 'checkpoint'
    for key, value in model.state_dict().items():
        assert torch.equal(value, files['det_state'][key]), key
    code, err = tool_error('benchmark.py', files['config'], '--checkpoint',
                           files['cls_ckpt'], '--no-complexity',
                           '--no-progress', capsys=capsys)
    assert code != 0
    assert 'Traceback' not in err
    assert f'error: checkpoint {files["cls_ckpt"]} does not fit' in err


def test_export_refuses_classifier_checkpoint(files):
    from mmdet_gghost.export import build_export_model
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        build_export_model(files['config'], files['cls_ckpt'])


# -- the one builder -----------------------------------------------------------


def _mismatch_message(fn, *args, **kwargs):
    with pytest.raises(CheckpointMismatchError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_build_model_detector_without_checkpoint(files):
    """Deterministic init_weights (seeded, global RNG untouched), eval
    mode, the config attached."""
    rng = torch.random.get_rng_state()
    model = build_model(files['config'])
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert not model.training
    assert model.cfg.default_scope == 'mmdet'
    assert type(model).__name__ == 'RetinaNet'
    for key, value in model.state_dict().items():
        assert torch.equal(value, files['det_state'][key]), key
    other = build_model(files['config'], init_seed=1).state_dict()
    assert not all(torch.equal(v, other[k])
                   for k, v in files['det_state'].items())


def test_build_model_detector_with_checkpoint(files, tmp_path):
    gen = torch.Generator().manual_seed(3)
    state = {k: (torch.rand(v.shape, generator=gen)
                 if v.is_floating_point() else v)
             for k, v in files['det_state'].items()}
    path = str(tmp_path / 'det.pth')
    torch.save(dict(state_dict=state,
                    meta=dict(dataset_meta=dict(CLASSES=('a', 'b')))), path)
    model = build_model(files['config'], path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # like mmdet's init_detector: the checkpoint's class names (keys
    # lower-cased) and the config
    assert model.dataset_meta == {'classes': ('a', 'b')}
    assert model.cfg.model.type == 'RetinaNet'


def test_build_model_classifier(files):
    model = build_model(files['cls_config'], files['cls_ckpt'])
    assert type(model).__name__ == 'ImageClassifier'
    assert not model.training
    assert model._config is model.cfg  # what mmpretrain's inferencers read
    expected = files['classifier'].state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_build_model_strips_pretrained_init(files):
    """No pretrained file or hub is ever opened unless asked for."""
    from mmengine.config import Config
    cfg = Config.fromfile(files['config'])
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=str(files['root'] / 'nope.pth'))
    model = build_model(cfg)
    assert model.cfg.model.backbone.init_cfg is None
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'  # not changed
    with pytest.raises((FileNotFoundError, IOError), match='nope.pth'):
        build_model(cfg, strip_pretrained=False)


def test_build_model_missing_files(files, tmp_path):
    missing = str(tmp_path / 'no_such_config.py')
    with pytest.raises(FileNotFoundError,
                       match=f'Config file not found: {missing}'):
        build_model(missing)
    with pytest.raises(FileNotFoundError, match='Checkpoint file not found'):
        build_model(files['config'], str(tmp_path / 'no_such.pth'))


def test_every_builder_gives_the_one_error(files):
    """The detector builder, the classifier loader and the rule itself
    refuse a checkpoint of the other model with the same message (the
    classifier loader used to leave out the opt-out)."""
    from mmdet_gghost.apis.classification import load_classifier
    rule = _mismatch_message(check_checkpoint_matches, files['detector'],
                             files['cls_ckpt'])
    assert _mismatch_message(build_model, files['config'],
                             files['cls_ckpt']) == rule
    rule = _mismatch_message(check_checkpoint_matches, files['classifier'],
                             files['det_ckpt'])
    assert '--allow-partial-checkpoint' in rule
    assert _mismatch_message(build_model, files['cls_config'],
                             files['det_ckpt']) == rule
    assert _mismatch_message(load_classifier, files['cls_config'],
                             files['det_ckpt']) == rule


def test_every_builder_ignores_the_same_harmless_keys(files, tmp_path):
    """num_batches_tracked and data_preprocessor buffers are treated in
    apis/weights.py only: every builder accepts a checkpoint without them."""
    from mmdet_gghost.apis.classification import load_classifier
    for config, model in ((files['config'], files['detector']),
                          (files['cls_config'], files['classifier'])):
        state = {k: v for k, v in model.state_dict().items()
                 if not k.endswith('num_batches_tracked')}
        state['data_preprocessor.mean'] = torch.zeros(3, 1, 1)
        path = str(tmp_path / 'harmless.pth')
        torch.save(state, path)
        assert not check_checkpoint_matches(model, path)
        build_model(config, path)
    load_classifier(files['cls_config'], path)


def test_partial_checkpoint_loads_what_fits(files):
    """The opt-out: the classifier's backbone into the detector, the rest
    from the seeded init_weights."""
    model = build_model(files['config'], files['cls_ckpt'],
                        allow_partial_checkpoint=True)
    cls_state = files['classifier'].state_dict()
    for key, value in model.state_dict().items():
        expected = cls_state[key] if key.startswith('backbone.') else \
            files['det_state'][key]
        assert torch.equal(value, expected), key
