"""`make demo`'s driver: its control flow (train / resume / skip), the
shortened schedules it builds and the summary it writes. The real training
is exercised by tests/test_tools.py; the full demo is `make demo`."""
import json

import pytest
from mmengine.config import Config

from mmdet_gghost import apis, demo


@pytest.mark.parametrize('iters', [8, 120, 700])
def test_iteration_override_keeps_a_valid_schedule(iters):
    cfg = Config.fromfile(demo.DET_CONFIG)
    cfg.merge_from_dict(demo._iters_options(demo.DET_CONFIG, iters))
    warmup, cosine = cfg.param_scheduler
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_cfg.val_begin > iters  # test.py evaluates instead
    assert 0 <= warmup.begin < warmup.end == cosine.begin < cosine.end
    assert cosine.end == iters and cosine.T_max == iters - cosine.begin


def _fake_apis(monkeypatch, calls, metrics):
    def fake_train(config, work_dir, resume, cfg_options):
        calls.append(('train', resume))
        max_iters = Config.fromfile(config).train_cfg.max_iters
        if cfg_options:
            max_iters = cfg_options['train_cfg.max_iters']
        (demo.Path(work_dir) / f'iter_{max_iters}.pth').write_bytes(b'x')

    def fake_test(config, ckpt, work_dir, metrics_json, cfg_options):
        calls.append(('test', ckpt))
        demo.Path(metrics_json).write_text(json.dumps({'metrics': metrics}))
        return metrics

    monkeypatch.setattr(apis, 'train', fake_train)
    monkeypatch.setattr(apis, 'test', fake_test)


def test_train_then_skip_then_resume(monkeypatch, tmp_path):
    calls, metrics = [], {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.8}
    _fake_apis(monkeypatch, calls, metrics)
    opts = demo._iters_options(demo.DET_CONFIG, 10)
    work = tmp_path / 'det'
    work.mkdir()
    data_calls = []
    out = demo.train_and_evaluate(demo.DET_CONFIG, work,
                                  lambda: data_calls.append(1), opts)
    assert calls == [('train', False), ('test', str(work / 'iter_10.pth'))]
    assert out['metrics'] == metrics and data_calls == [1]
    # finished run: no retraining
    calls.clear()
    demo.train_and_evaluate(demo.DET_CONFIG, work, lambda: None, opts)
    assert [c[0] for c in calls] == ['test']
    # interrupted run (a checkpoint pointer but no final checkpoint): resume
    calls.clear()
    (work / 'iter_10.pth').unlink()
    (work / 'last_checkpoint').write_text(str(work / 'iter_5.pth'))
    demo.train_and_evaluate(demo.DET_CONFIG, work, lambda: None, opts)
    assert calls[0] == ('train', True)


def test_training_that_leaves_no_checkpoint_is_an_error(monkeypatch,
                                                       tmp_path):
    monkeypatch.setattr(apis, 'train', lambda *a, **k: None)
    with pytest.raises(RuntimeError, match='iter_10.pth'):
        demo.train_and_evaluate(demo.DET_CONFIG, tmp_path, lambda: None,
                                demo._iters_options(demo.DET_CONFIG, 10))


def test_summary_reports_the_numbers(tmp_path):
    md = tmp_path / 'bench.md'
    md.write_text('| model | FPS |\n|---|---|\n| a | 3.0 |\n')
    det = dict(metrics={'coco/bbox_mAP': 0.612, 'coco/bbox_mAP_50': 0.873,
                        'coco/bbox_mAP_75': 0.7}, train_s=600.0)
    cls = dict(metrics={'accuracy/top1': 95.5}, train_s=100.0)
    bench = dict(paths={'md': str(md), 'plot': str(tmp_path / 'p.png')})
    path = demo.write_summary(tmp_path, det, bench, cls=cls, elapsed_s=780)
    text = path.read_text()
    assert '0.612' in text and '0.873' in text
    assert '| a | 3.0 |' in text and 'p.png' in text
    assert '95.50%' in text and '13.0 min' in text


def test_resuming_a_run_of_another_length_is_refused(monkeypatch, tmp_path):
    calls = []
    _fake_apis(monkeypatch, calls, {})
    work = tmp_path / 'det'
    work.mkdir()
    # an older, longer schedule left iter_700 but the config now ends at 10
    (work / 'iter_700.pth').write_bytes(b'x')
    (work / 'last_checkpoint').write_text(str(work / 'iter_700.pth'))
    with pytest.raises(RuntimeError, match='iteration 700 .*Delete'):
        demo.train_and_evaluate(demo.DET_CONFIG, work, lambda: None,
                                demo._iters_options(demo.DET_CONFIG, 10))
    assert calls == []  # nothing was trained or evaluated


def test_detector_starts_from_the_pretrained_classifier(monkeypatch,
                                                       tmp_path):
    """make demo: pre-train the classifier, then the detector's backbone
    init_cfg points at exactly that checkpoint (in whatever work dir)."""
    seen = []

    def fake_train_and_evaluate(config, work_dir, data_fn, cfg_options=None):
        seen.append((demo.Path(config).name, work_dir, cfg_options))
        ckpt = demo.Path(work_dir) / 'iter_5.pth'
        return dict(checkpoint=str(ckpt), metrics={'accuracy/top1': 50.0,
                                                   'coco/bbox_mAP_50': 0.5},
                    metrics_json=str(demo.Path(work_dir) / 'm.json'),
                    train_s=1.0, test_s=1.0)

    monkeypatch.setattr(demo, 'train_and_evaluate', fake_train_and_evaluate)
    monkeypatch.setattr(demo, 'benchmark_detectors',
                        lambda *a, **k: dict(rows=[], paths={}))
    result = demo.run_demo(tmp_path / 'w', parts=('det', ), det_iters=20)
    assert [s[0] for s in seen] == ['gghost_r34_cls_pretrain.py',
                                    'retinanet_gghost_r34_demo.py']
    det_options = seen[1][2]
    assert det_options['model.backbone.init_cfg.checkpoint'] == str(
        tmp_path / 'w' / 'pretrain_cls' / 'iter_5.pth')
    assert det_options['train_cfg.max_iters'] == 20
    text = result['summary'].read_text()
    assert 'pre-trained as a classifier' in text and '50.0%' in text


def test_demo_configs_chain():
    """The detector config's default init checkpoint is the pre-training
    config's last checkpoint under make demo's default work dir."""
    pre = Config.fromfile(demo.PRETRAIN_CONFIG)
    det = Config.fromfile(demo.DET_CONFIG)
    init = det.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    assert init.checkpoint == (
        f'work_dirs/demo/pretrain_cls/iter_{pre.train_cfg.max_iters}.pth')
    assert pre.default_hooks.checkpoint.interval == pre.train_cfg.max_iters
