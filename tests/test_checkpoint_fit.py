"""One checkpoint-to-model rule for test, benchmark and export: a
checkpoint that does not fit the model is an error (counts and examples),
unless --allow-partial-checkpoint."""
import os.path as osp

import pytest
import torch

from mmdet_gghost.apis.weights import (CheckpointMismatchError,
                                       check_checkpoint_matches)
from tools_helpers import (cls_config, det_config, dump_config,
                           make_coco_dataset, run_tool)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A tiny detector config, a classifier checkpoint (same ResNet-18
    backbone keys, a classification head) and the detector's own
    weights."""
    from mmdet_gghost.analysis import build_model_from_config
    root = tmp_path_factory.mktemp('fit')
    data = make_coco_dataset(str(root / 'data'), num_train=1, num_val=1)
    config = dump_config(det_config(data), root / 'det.py')
    classifier, _, _ = build_model_from_config(
        dump_config(cls_config(str(root)), root / 'cls.py'))
    cls_ckpt = str(root / 'classifier.pth')
    torch.save(dict(state_dict=classifier.state_dict(), meta={}), cls_ckpt)
    detector, _, _ = build_model_from_config(config)
    det_state = detector.state_dict()
    det_ckpt = str(root / 'detector.pth')
    torch.save(dict(state_dict=det_state), det_ckpt)
    return dict(root=root, config=config, cls_ckpt=cls_ckpt,
                det_ckpt=det_ckpt, det_state=det_state, detector=detector)


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


def test_test_tool_refuses_classifier_checkpoint(files):
    work = files['root'] / 'eval'
    result = run_tool('test.py', files['config'], files['cls_ckpt'],
                      '--work-dir', work, check=False)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert f'test.py: error: checkpoint {files["cls_ckpt"]} does not fit' \
        in result.stderr
    assert not osp.exists(work / 'metrics.json')
    # the explicit opt-out evaluates, with the mismatch in the log
    result = run_tool('test.py', files['config'], files['cls_ckpt'],
                      '--work-dir', work, '--allow-partial-checkpoint')
    assert osp.isfile(work / 'metrics.json')
    assert 'Partial checkpoint load (allowed)' in result.stdout + \
        result.stderr


def test_benchmark_refuses_classifier_checkpoint(files):
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
    result = run_tool('benchmark.py', files['config'], '--checkpoint',
                      files['cls_ckpt'], '--no-complexity', '--no-progress',
                      check=False)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert f'error: checkpoint {files["cls_ckpt"]} does not fit' \
        in result.stderr


def test_export_refuses_classifier_checkpoint(files):
    from mmdet_gghost.export import build_model
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        build_model(files['config'], files['cls_ckpt'])
