"""Crash-safe checkpoints: SIGKILL during a checkpoint write at
max_keep_ckpts=1 leaves the previous checkpoint intact, and training
resumes from it, also after the work dir was moved."""
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mmdet_gghost.checkpoint import resolve_last_checkpoint
from tools_helpers import tool_env

# A tiny mmengine training (3 iterations, a checkpoint every iteration,
# max_keep_ckpts=1) with the checkpoint hook our train tool uses.  With
# KILL_AT set, the write of that checkpoint stops half-way: it writes half
# the bytes, creates the file READY, then sleeps until killed.
CHILD = '''
import os, sys, time
import torch
from torch import nn
from mmengine.fileio import LocalBackend
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmdet_gghost  # noqa: F401
from mmdet_gghost.hooks import use_crash_safe_checkpoints

work_dir, resume = sys.argv[1], sys.argv[2] == 'resume'
kill_at, ready = os.environ.get('KILL_AT'), os.environ.get('READY')


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(torch.stack(inputs))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)))


put = LocalBackend.put


def slow_put(self, obj, filepath):
    if kill_at and os.path.basename(filepath).endswith(kill_at):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        open(ready, 'w').close()
        time.sleep(300)
    return put(self, obj, filepath)


LocalBackend.put = slow_put
cfg = dict(
    work_dir=work_dir,
    train_dataloader=dict(dataset=Data(), batch_size=1, num_workers=0,
                          sampler=dict(type='DefaultSampler', shuffle=False)),
    train_cfg=dict(by_epoch=False, max_iters=3),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
    default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                       interval=1, max_keep_ckpts=1)),
    resume=resume,
    load_from=sys.argv[3] if resume else None,
)
assert use_crash_safe_checkpoints(cfg)
runner = Runner(model=Toy(), **cfg)
runner.train()
print('FINISHED AT', runner.iter, flush=True)
'''


def _child(tmp_path, *args, env=None, **popen):
    script = tmp_path / 'child.py'
    script.write_text(CHILD)
    return subprocess.Popen([sys.executable, str(script), *map(str, args)],
                            env=dict(tool_env(), **(env or {})), **popen)


def test_sigkill_during_checkpoint_write_keeps_previous(tmp_path):
    work = tmp_path / 'work'
    ready = tmp_path / 'READY'
    child = _child(tmp_path, work, 'fresh',
                   env=dict(KILL_AT='iter_2.pth', READY=str(ready)),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            if child.poll() is not None:
                pytest.fail('training ended before the 2nd checkpoint: ' +
                            child.stderr.read().decode()[-3000:])
            if time.monotonic() > deadline:
                pytest.fail('the 2nd checkpoint write never started')
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)  # half of iter_2 is on disk
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # the previous checkpoint is complete and still there; no iter_2.pth,
    # only the hidden partial file
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == \
        ['.tmp_iter_2.pth', 'iter_1.pth']
    assert resolve_last_checkpoint(str(work)) == str(work / 'iter_1.pth')
    from mmdet_gghost.checkpoint import load_checkpoint_file
    assert load_checkpoint_file(str(work / 'iter_1.pth'))['meta']['iter'] == 1

    # move the work dir: last_checkpoint (an absolute path) still resolves
    moved = tmp_path / 'moved'
    shutil.move(str(work), str(moved))
    resumed_from = resolve_last_checkpoint(str(moved))
    assert resumed_from == str(moved / 'iter_1.pth')
    child = _child(tmp_path, moved, 'resume', resumed_from,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = child.communicate(timeout=240)[0].decode()
    assert child.returncode == 0, out[-3000:]
    assert 'resumed epoch: 0, iter: 1' in out
    assert 'FINISHED AT 3' in out
    # max_keep_ckpts=1 and no partial files left
    assert [p for p in os.listdir(moved) if 'iter_' in p] == ['iter_3.pth']


def test_train_tool_uses_the_crash_safe_hook(tmp_path, tiny_det_config):
    from mmdet_gghost.apis import build_train_cfg
    cfg = build_train_cfg(tiny_det_config, work_dir=str(tmp_path / 'w'))
    assert cfg.default_hooks.checkpoint.type == 'CrashSafeCheckpointHook'
    assert cfg.default_hooks.checkpoint.interval == 2  # arguments kept


def test_resume_auto_finds_checkpoint_of_moved_work_dir(tmp_path,
                                                        tiny_det_config):
    from mmdet_gghost.apis import build_train_cfg
    config = tiny_det_config
    moved = tmp_path / 'moved'
    moved.mkdir()
    (moved / 'iter_4.pth').write_bytes(b'x')
    (moved / 'last_checkpoint').write_text('/gone/work/iter_4.pth')
    cfg = build_train_cfg(config, work_dir=str(moved), resume='auto')
    assert (cfg.resume, cfg.load_from) == (True, str(moved / 'iter_4.pth'))
    (moved / 'iter_4.pth').unlink()
    with pytest.raises(FileNotFoundError,
                       match='names /gone/work/iter_4.pth, which does not '
                       'exist, and there is no iter_4.pth in'):
        build_train_cfg(config, work_dir=str(moved), resume='auto')
