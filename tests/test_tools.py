"""tools/train.py, tools/test.py and tools/dist_train.sh, end to end."""
import json
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

import mmdet_gghost  # noqa: F401  (safe checkpoint loading for torch.load)
from tools_helpers import (TOOLS, ckpt_iter, free_port, iter_tag,
                           last_checkpoint, run_tool, tool_env, tool_error)


def test_train_then_test_writes_coco_metrics(tmp_path, tiny_det_checkpoint):
    """tools/test.py on the shared tiny training's iteration-2 weights."""
    config = tiny_det_checkpoint['config']
    checkpoint = tiny_det_checkpoint['checkpoints'][2]
    assert torch.load(checkpoint)['meta']['iter'] == 2

    metrics_json = tmp_path / 'eval' / 'metrics.json'
    preds = tmp_path / 'preds.pkl'
    run_tool('test.py', config, checkpoint, '--work-dir', tmp_path / 'eval',
             '--metrics-json', metrics_json, '--out', preds)
    report = json.loads(metrics_json.read_text())
    assert report['config'] == osp.abspath(config)
    assert report['checkpoint'] == osp.abspath(checkpoint)
    assert report['timestamp']
    metrics = report['metrics']
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50'} <= set(metrics)
    # the values are the model's: pycocotools on the dumped predictions
    # (not mmdet's CocoMetric) gives the same mAP and AP50 (3 decimals,
    # as CocoMetric rounds)
    mAP, ap50 = _coco_map_of_dump(preds, _ann_file(config))
    assert len(_load_pickle(preds)) == 4  # one entry per val image
    assert metrics['coco/bbox_mAP'] == pytest.approx(mAP, abs=6e-4)
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(ap50, abs=6e-4)


def _ann_file(config):
    from mmengine.config import Config
    return Config.fromfile(config).test_evaluator.ann_file


def _load_pickle(path):
    import pickle
    with open(path, 'rb') as f:
        return pickle.load(f)


def _coco_map_of_dump(preds, ann_file):
    """(mAP, AP50) of DumpDetResults' pickle, by pycocotools directly."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        cat_ids = sorted(gt.getCatIds())
        dets = [dict(image_id=p['img_id'], category_id=cat_ids[int(label)],
                     bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score))
                for p in _load_pickle(preds)
                for (x1, y1, x2, y2), score, label in zip(
                    p['pred_instances']['bboxes'].tolist(),
                    p['pred_instances']['scores'],
                    p['pred_instances']['labels'])]
        assert dets, 'score_thr=0: the tiny detector returns boxes'
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0], ev.stats[1]


def _wait_for(path, process, timeout=240):
    """Wait until ``path`` exists (or the process ends / time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if osp.exists(path):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def test_sigkill_then_resume_continues(tmp_path, tiny_det_config):
    config = tiny_det_config
    work_dir = tmp_path / 'work'
    # Long enough that it is still running when the first checkpoint (at
    # iteration 1) lands.
    process = subprocess.Popen(
        [sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir',
         str(work_dir), '--cfg-options', 'train_cfg.max_iters=200',
         'default_hooks.checkpoint.interval=1'],
        env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # CheckpointHook writes last_checkpoint after the .pth file.
        assert _wait_for(work_dir / 'last_checkpoint', process), \
            'training ended or stalled before its first checkpoint'
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL

    start = ckpt_iter(last_checkpoint(work_dir))
    assert start >= 1 and start < 200
    final = start + 1
    result = run_tool('train.py', config, '--work-dir', work_dir, '--resume',
                      '--cfg-options', f'train_cfg.max_iters={final}')
    log = result.stdout + result.stderr
    assert f'resumed epoch: 0, iter: {start}' in log
    assert iter_tag(start + 1, final) in log
    assert iter_tag(1, final) not in log
    checkpoint = torch.load(work_dir / f'iter_{final}.pth')
    assert checkpoint['meta']['iter'] == final


def test_resume_from_explicit_checkpoint_path(tmp_path, tiny_det_checkpoint):
    config = tiny_det_checkpoint['config']
    checkpoint = tiny_det_checkpoint['checkpoints'][2]
    result = run_tool('train.py', config, '--work-dir', tmp_path / 'work2',
                      '--resume', checkpoint, '--cfg-options',
                      'train_cfg.max_iters=3', 'default_hooks.checkpoint.'
                      'interval=1')
    assert 'resumed epoch: 0, iter: 2' in result.stdout + result.stderr
    assert torch.load(tmp_path / 'work2' / 'iter_3.pth')['meta']['iter'] == 3


def test_ddp_on_cpu_with_dist_train_sh(tmp_path, tiny_det_config):
    work_dir = tmp_path / 'work'
    env = tool_env()
    for _ in range(3):  # a free port may be taken before torchrun binds it
        env.update(PYTHON=sys.executable, PORT=str(free_port()))
        result = subprocess.run(
            ['bash', osp.join(TOOLS, 'dist_train.sh'), tiny_det_config, '2',
             '--work-dir', str(work_dir), '--cfg-options',
             'train_cfg.max_iters=1', 'default_hooks.checkpoint.interval=1'],
            env=env, capture_output=True, text=True, timeout=300)
        log = result.stdout + result.stderr
        if 'address already in use' not in log.lower():
            break
    assert result.returncode == 0, log[-6000:]
    assert "using the 'gloo' distributed backend" in log
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    checkpoint = torch.load(work_dir / 'iter_1.pth')
    assert checkpoint['meta']['iter'] == 1
    # DDP's wrapper is stripped: keys are the plain model's.
    assert all(not k.startswith('module.') for k in checkpoint['state_dict'])


def test_mmpretrain_config_trains_and_tests(tmp_path, tiny_cls_checkpoint):
    """An mmpretrain config through apis.train (the shared in-process
    training; tools/train.py's own subprocess on an mmpretrain config is
    test_classification's) and tools/test.py."""
    config = tiny_cls_checkpoint['config']
    assert iter_tag(2, 2) in tiny_cls_checkpoint['log']
    checkpoint = torch.load(tiny_cls_checkpoint['checkpoint'])
    assert checkpoint['meta']['iter'] == 2
    assert any(k.startswith('backbone.') for k in checkpoint['state_dict'])

    metrics_json = tmp_path / 'metrics.json'
    run_tool('test.py', config, tiny_cls_checkpoint['checkpoint'],
             '--work-dir', tmp_path / 'eval', '--metrics-json',
             metrics_json, '--out', tmp_path / 'preds.pkl')
    metrics = json.loads(metrics_json.read_text())['metrics']
    # the value is the model's: top-1 of the dumped predictions
    dumped = _load_pickle(tmp_path / 'preds.pkl')
    assert len(dumped) == 8  # 2 classes x 4 images
    top1 = 100.0 * sum(int(d['pred_label'][0]) == int(d['gt_label'][0])
                       for d in dumped) / len(dumped)
    assert metrics['accuracy/top1'] == pytest.approx(top1)


def test_missing_config_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / 'no_such_config.py'
    code, err = tool_error('train.py', missing, capsys=capsys)
    assert code != 0
    assert f"train.py: error: Config file not found: {missing}" in err
    assert "Traceback" not in err
    from mmdet_gghost.apis import test, train
    with pytest.raises(FileNotFoundError, match='no_such_config.py'):
        train(str(missing))
    with pytest.raises(FileNotFoundError, match='no_such_config.py'):
        test(str(missing), str(tmp_path / 'x.pth'))


def test_missing_checkpoint_is_a_clear_error(tmp_path, tiny_det_config,
                                             capsys):
    config = tiny_det_config
    missing = tmp_path / 'no_such.pth'
    code, err = tool_error('test.py', config, missing, capsys=capsys)
    assert code != 0
    assert f"test.py: error: Checkpoint file not found: {missing}" in err
    assert "Traceback" not in err
    from mmdet_gghost.apis import train
    with pytest.raises(FileNotFoundError, match='no_such.pth'):
        train(config, work_dir=str(tmp_path / 'w'), resume=str(missing))


def test_amp_without_accelerator_is_a_clear_error(tiny_det_config):
    if torch.cuda.is_available():
        pytest.skip('needs a machine without CUDA')
    from mmdet_gghost.apis import build_train_cfg
    with pytest.raises(RuntimeError, match='CUDA'):
        build_train_cfg(tiny_det_config, amp=True)


def test_cpu_distributed_cfg_uses_gloo_and_no_device_ids(tiny_det_config):
    """Unit-level view of what makes DDP work on CPU (no process group)."""
    if torch.cuda.is_available():
        pytest.skip('needs a machine without CUDA')
    from mmdet_gghost.apis.common import _use_cpu_ddp
    from mmdet_gghost.apis import build_train_cfg
    cfg = build_train_cfg(tiny_det_config, launcher='pytorch')
    _use_cpu_ddp(cfg)
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
