"""Safe (weights_only=True) loading of OpenMMLab training checkpoints."""
import glob
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import mmdet_gghost  # noqa: F401  (enables safe checkpoint loading)
from mmdet_gghost.checkpoint import (UnsafeCheckpointError,
                                     allow_checkpoint_globals,
                                     enable_safe_checkpoint_loading,
                                     load_checkpoint_file)
from tools_helpers import copy_work_dir, iter_tag, tool_env


class Untrusted:
    """Stands for any class a checkpoint should not smuggle in."""

    def __init__(self, value=1):
        self.value = value


class GetattrEscape:
    """Pickles as ``getattr(HistoryBuffer, '__init__')``."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


def _run_log(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def test_hook_checkpoint_loads_with_default_torch_load(tiny_det_checkpoint):
    assert tiny_det_checkpoint['iters'] == 4
    path = tiny_det_checkpoint['checkpoints'][4]
    checkpoint = torch.load(path)  # default: weights_only=True
    assert checkpoint['meta']['iter'] == 4
    assert set(checkpoint) >= {'meta', 'state_dict', 'message_hub',
                               'optimizer', 'param_schedulers'}
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert len(buffer.data[0]) > 0 and np.isfinite(buffer.mean())
    assert checkpoint['meta']['dataset_meta']['classes'] == ('red', 'green')


def test_plain_torch_refuses_without_our_allow_list(tiny_det_checkpoint):
    """Proves the allow-list is what makes these checkpoints loadable."""
    path = tiny_det_checkpoint['checkpoints'][2]
    code = ('import sys, torch\n'
            'try:\n    torch.load(sys.argv[1])\n'
            'except Exception as e:\n    print("REFUSED", e)\n')
    out = subprocess.run([sys.executable, '-c', code, path], env=tool_env(),
                         capture_output=True, text=True, timeout=120).stdout
    assert 'REFUSED' in out and 'Weights only load failed' in out


def test_resume_restores_iteration(tiny_det_checkpoint, tmp_path):
    from mmdet_gghost.apis import train
    work_dir = copy_work_dir(tiny_det_checkpoint['work_dir'],
                             tmp_path / 'work')
    runner = train(tiny_det_checkpoint['config'], work_dir=work_dir,
                   resume=True,
                   cfg_options={'train_cfg.max_iters': 6,
                                'experiment_name': 'resumed_run'})
    assert runner.iter == 6
    log = _run_log(runner)
    assert 'resumed epoch: 0, iter: 4' in log
    # The first iteration logged after resuming is iteration 5.
    assert iter_tag(5, 6) in log and iter_tag(1, 6) not in log
    assert torch.load(osp.join(work_dir, 'iter_6.pth'))['meta']['iter'] == 6


def test_unknown_object_is_refused_with_clear_error(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'untrusted.pth')
    torch.save({'state_dict': {'w': torch.ones(1)},
                'meta': {'extra': Untrusted()}}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')  # what Runner uses
    message = str(info.value)
    assert f'{__name__}.Untrusted' in message
    assert path in message
    assert 'allow_checkpoint_globals(Untrusted)' in message
    assert 'torch.serialization.add_safe_globals' in message
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert info.value.refused == [f'{__name__}.Untrusted']
    # The documented fix works when the user trusts the file ...
    with torch.serialization.safe_globals([Untrusted]):
        assert _load_checkpoint(path)['meta']['extra'].value == 1
    # ... and allow_checkpoint_globals is the same thing, process-wide.
    before = list(torch.serialization.get_safe_globals())
    try:
        allow_checkpoint_globals(Untrusted)
        assert load_checkpoint_file(path)['meta']['extra'].value == 1
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def test_getattr_is_restricted_to_history_buffer_methods(tmp_path):
    path = str(tmp_path / 'escape.pth')
    torch.save({'meta': GetattrEscape()}, path)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'HistoryBuffer\.__init__') as info:
        load_checkpoint_file(path)
    assert 'cannot be allow-listed' in str(info.value)


def test_numpy_values_load(tmp_path):
    path = str(tmp_path / 'numpy.pth')
    values = dict(array=np.arange(3, dtype=np.float32), f64=np.float64(1.5),
                  i64=np.int64(2), dtype=np.dtype('int16'),
                  flag=np.bool_(True))
    torch.save(values, path)
    loaded = torch.load(path)
    assert np.array_equal(loaded['array'], values['array'])
    assert loaded['f64'] == 1.5 and loaded['i64'] == 2
    assert loaded['dtype'] == np.dtype('int16') and bool(loaded['flag'])


def test_enable_is_idempotent():
    from mmengine.runner.checkpoint import CheckpointLoader
    enable_safe_checkpoint_loading()
    count = len(torch.serialization.get_safe_globals())
    loader = CheckpointLoader.__dict__['load_checkpoint'].__func__
    enable_safe_checkpoint_loading()
    assert len(torch.serialization.get_safe_globals()) == count
    assert CheckpointLoader.__dict__['load_checkpoint'].__func__ is loader
    # Wrapped exactly once: the wrapped function is mmengine's own.
    assert not hasattr(loader.__wrapped__, '__wrapped__')


def test_missing_checkpoint_is_named(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(missing)
    assert not glob.glob(missing)


def test_tools_refuse_untrusted_checkpoint_clearly(tiny_det_checkpoint,
                                                   tmp_path, capsys):
    """Through tools/test.py: Runner.load_checkpoint -> our one-line error."""
    from tools_helpers import tool_error
    checkpoint = torch.load(tiny_det_checkpoint['checkpoint'])
    checkpoint['meta']['extra'] = Untrusted()
    path = str(tmp_path / 'untrusted_model.pth')
    torch.save(checkpoint, path)
    code, err = tool_error('test.py', tiny_det_checkpoint['config'], path,
                           '--work-dir', tmp_path / 'eval', capsys=capsys)
    assert code != 0
    assert 'Traceback' not in err
    assert f'test.py: error: Refused to load checkpoint {path!r}' in err
    assert f'{__name__}.Untrusted' in err
    assert 'allow_checkpoint_globals(Untrusted)' in err


@pytest.mark.parametrize('content', [b'', b'not a checkpoint\n',
                                     b'PK\x03\x04 truncated zip'],
                         ids=['empty', 'text', 'truncated'])
def test_not_a_checkpoint_is_named(tmp_path, content):
    """Empty, text or truncated .pth: one error naming the file, through our
    loader and mmengine's (tools), not a bare EOFError / KeyError: 101."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmdet_gghost.checkpoint import NotACheckpointError
    path = tmp_path / 'broken.pth'
    path.write_bytes(content)
    for load in (load_checkpoint_file, _load_checkpoint):
        with pytest.raises(NotACheckpointError,
                           match=f"checkpoint '{path}' \\({len(content)} "
                           'bytes\\) is not a readable PyTorch checkpoint'):
            load(str(path))


def test_pretrained_backbones_read_checkpoints_as_every_tool_does(tmp_path):
    """One reader (mmdet_gghost.checkpoint.reading) for models and apis:
    ``state_dict`` or ``model`` key, DataParallel ``module.`` prefix
    removed, and one error type for a checkpoint that does not fit."""
    from mmdet_gghost.apis.weights import read_state_dict
    from mmdet_gghost.checkpoint import CheckpointMismatchError
    from mmdet_gghost.models import GGhostResNet
    source = GGhostResNet(depth=18)
    source.init_weights()
    saved = {f'module.backbone.{k}': v + 1 if v.is_floating_point() else v
             for k, v in source.state_dict().items()}
    path = tmp_path / 'wrapped.pth'
    torch.save(dict(model=saved), path)
    assert set(read_state_dict(path)) == {k[len('module.'):] for k in saved}
    target = GGhostResNet(depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    target.init_weights()
    for key, value in target.state_dict().items():
        assert torch.equal(value, saved[f'module.backbone.{key}']), key
    wrong = GGhostResNet(depth=34, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        wrong.init_weights()
