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
from tools_helpers import (TOOLS, ckpt_iter, cls_config, det_config,
                           dump_config, free_port, iter_tag, last_checkpoint,
                           make_cls_folder, make_coco_dataset, run_tool,
                           tool_env, tool_error)


@pytest.fixture(scope='module')
def det_data(tmp_path_factory):
    return make_coco_dataset(str(tmp_path_factory.mktemp('det') / 'data'))


def _det_config(tmp_path, data, **kwargs):
    return dump_config(det_config(data, **kwargs), tmp_path / 'retina.py')


@pytest.fixture(scope='module')
def det_run(tmp_path_factory, det_data):
    """``tools/train.py`` for 2 iterations (checkpoint at 2), run once."""
    root = tmp_path_factory.mktemp('det_run')
    config = _det_config(root, det_data, max_iters=2, ckpt_interval=2)
    work_dir = root / 'work'
    run_tool('train.py', config, '--work-dir', work_dir)
    return config, work_dir / 'iter_2.pth'


def test_train_then_test_writes_coco_metrics(tmp_path, det_run):
    config, checkpoint = det_run
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


def test_sigkill_then_resume_continues(tmp_path, det_data):
    # Long enough that it is still running when the first checkpoint lands.
    config = _det_config(tmp_path, det_data, max_iters=200, ckpt_interval=2)
    work_dir = tmp_path / 'work'
    process = subprocess.Popen(
        [sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir',
         str(work_dir)],
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
    assert start >= 2 and start < 200
    final = start + 2
    result = run_tool('train.py', config, '--work-dir', work_dir, '--resume',
                      '--cfg-options', f'train_cfg.max_iters={final}')
    log = result.stdout + result.stderr
    assert f'resumed epoch: 0, iter: {start}' in log
    assert iter_tag(start + 1, final) in log
    assert iter_tag(1, final) not in log
    checkpoint = torch.load(work_dir / f'iter_{final}.pth')
    assert checkpoint['meta']['iter'] == final


def test_resume_from_explicit_checkpoint_path(tmp_path, det_run):
    config, checkpoint = det_run
    result = run_tool('train.py', config, '--work-dir', tmp_path / 'work2',
                      '--resume', checkpoint, '--cfg-options',
                      'train_cfg.max_iters=3', 'default_hooks.checkpoint.'
                      'interval=1')
    assert 'resumed epoch: 0, iter: 2' in result.stdout + result.stderr
    assert torch.load(tmp_path / 'work2' / 'iter_3.pth')['meta']['iter'] == 3


def test_ddp_on_cpu_with_dist_train_sh(tmp_path, det_data):
    config = _det_config(tmp_path, det_data, max_iters=2, ckpt_interval=2)
    work_dir = tmp_path / 'work'
    env = tool_env()
    for _ in range(3):  # a free port may be taken before torchrun binds it
        env.update(PYTHON=sys.executable, PORT=str(free_port()))
        result = subprocess.run(
            ['bash', osp.join(TOOLS, 'dist_train.sh'), config, '2',
             '--work-dir', str(work_dir)],
            env=env, capture_output=True, text=True, timeout=300)
        log = result.stdout + result.stderr
        if 'address already in use' not in log.lower():
            break
    assert result.returncode == 0, log[-6000:]
    assert "using the 'gloo' distributed backend" in log
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    checkpoint = torch.load(work_dir / 'iter_2.pth')
    assert checkpoint['meta']['iter'] == 2
    # DDP's wrapper is stripped: keys are the plain model's.
    assert all(not k.startswith('module.') for k in checkpoint['state_dict'])


def test_mmpretrain_config_trains_and_tests(tmp_path):
    data = make_cls_folder(str(tmp_path / 'cls'))
    config = dump_config(cls_config(data, max_iters=2, ckpt_interval=2),
                         tmp_path / 'cls_resnet18.py')
    work_dir = tmp_path / 'work'
    result = run_tool('train.py', config, '--work-dir', work_dir)
    assert iter_tag(2, 2) in result.stdout + result.stderr
    checkpoint = torch.load(work_dir / 'iter_2.pth')
    assert checkpoint['meta']['iter'] == 2
    assert any(k.startswith('backbone.') for k in checkpoint['state_dict'])

    metrics_json = tmp_path / 'metrics.json'
    run_tool('test.py', config, work_dir / 'iter_2.pth', '--work-dir',
             tmp_path / 'eval', '--metrics-json', metrics_json,
             '--out', tmp_path / 'preds.pkl')
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


def test_missing_checkpoint_is_a_clear_error(tmp_path, det_data, capsys):
    config = _det_config(tmp_path, det_data)
    missing = tmp_path / 'no_such.pth'
    code, err = tool_error('test.py', config, missing, capsys=capsys)
    assert code != 0
    assert f"test.py: error: Checkpoint file not found: {missing}" in err
    assert "Traceback" not in err
    from mmdet_gghost.apis import train
    with pytest.raises(FileNotFoundError, match='no_such.pth'):
        train(config, work_dir=str(tmp_path / 'w'), resume=str(missing))


def test_amp_without_accelerator_is_a_clear_error(tmp_path, det_data):
    if torch.cuda.is_available():
        pytest.skip('needs a machine without CUDA')
    from mmdet_gghost.apis import build_train_cfg
    with pytest.raises(RuntimeError, match='CUDA'):
        build_train_cfg(_det_config(tmp_path, det_data), amp=True)


def test_cpu_distributed_cfg_uses_gloo_and_no_device_ids(tmp_path,
                                                         det_data):
    """Unit-level view of what makes DDP work on CPU (no process group)."""
    if torch.cuda.is_available():
        pytest.skip('needs a machine without CUDA')
    from mmdet_gghost.apis.common import _use_cpu_ddp
    from mmdet_gghost.apis import build_train_cfg
    cfg = build_train_cfg(_det_config(tmp_path, det_data),
                          launcher='pytorch')
    _use_cpu_ddp(cfg)
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
