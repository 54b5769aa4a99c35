"""`make demo`'s driver: one recipe for every backbone, each point from its
own weights and metrics, control flow (train / resume / skip), the summary,
and mmdet's own DetInferencer on a demo config. The real training is
exercised by tests/test_tools.py; the full demo is `make demo`."""
import json
import os

import pytest
import torch
from mmengine.config import Config

from mmdet_gghost import apis
from mmdet_gghost.apps import demo
from tools_helpers import load_tool

DET = demo.DEMO_MODELS[1].det  # the G-Ghost demo detector
SHORT = {'train_cfg.max_iters': 10}


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
    work = tmp_path / 'det'
    work.mkdir()
    data_calls = []
    out = demo.train_and_evaluate(DET, work, lambda: data_calls.append(1),
                                  SHORT)
    assert calls == [('train', False), ('test', str(work / 'iter_10.pth'))]
    assert out['metrics'] == metrics and data_calls == [1]
    # finished run: no retraining
    calls.clear()
    demo.train_and_evaluate(DET, work, lambda: None, SHORT)
    assert [c[0] for c in calls] == ['test']
    # interrupted run (a checkpoint pointer but no final checkpoint): resume
    calls.clear()
    (work / 'iter_10.pth').unlink()
    (work / 'last_checkpoint').write_text(str(work / 'iter_5.pth'))
    demo.train_and_evaluate(DET, work, lambda: None, SHORT)
    assert calls[0] == ('train', True)


def test_finished_run_keeps_the_metrics_recorded_for_its_checkpoint(
        monkeypatch, tmp_path):
    """A finished run is not evaluated again when its metrics.json holds
    metrics of that very checkpoint, written after it; otherwise it is."""
    from mmdet_gghost.apis.test import write_metrics_json
    calls, metrics = [], {'coco/bbox_mAP': 0.5}
    _fake_apis(monkeypatch, calls, {'coco/bbox_mAP': 0.1})
    work = tmp_path / 'det'
    work.mkdir()
    ckpt = work / 'iter_10.pth'
    ckpt.write_bytes(b'x')
    write_metrics_json(str(work / 'metrics.json'), metrics, str(DET),
                       str(ckpt))
    out = demo.train_and_evaluate(DET, work, lambda: None, SHORT)
    assert calls == [] and out['metrics'] == metrics
    # the checkpoint is newer than its metrics: evaluated anew
    stamp = (work / 'metrics.json').stat().st_mtime
    os.utime(ckpt, (stamp + 10, stamp + 10))
    out = demo.train_and_evaluate(DET, work, lambda: None, SHORT)
    assert calls == [('test', str(ckpt))]
    assert out['metrics'] == {'coco/bbox_mAP': 0.1}
    # metrics of another checkpoint: evaluated anew
    calls.clear()
    write_metrics_json(str(work / 'metrics.json'), metrics, str(DET),
                       str(work / 'iter_5.pth'))
    demo.train_and_evaluate(DET, work, lambda: None, SHORT)
    assert calls == [('test', str(ckpt))]


def test_training_that_leaves_no_checkpoint_is_an_error(monkeypatch,
                                                       tmp_path):
    monkeypatch.setattr(apis, 'train', lambda *a, **k: None)
    with pytest.raises(RuntimeError, match='iter_10.pth'):
        demo.train_and_evaluate(DET, tmp_path, lambda: None, SHORT)


def test_resuming_a_run_of_another_length_is_refused(monkeypatch, tmp_path):
    calls = []
    _fake_apis(monkeypatch, calls, {})
    work = tmp_path / 'det'
    work.mkdir()
    # an older, longer schedule left iter_700 but the config now ends at 10
    (work / 'iter_700.pth').write_bytes(b'x')
    (work / 'last_checkpoint').write_text(str(work / 'iter_700.pth'))
    with pytest.raises(RuntimeError, match='iteration 700 .*Delete'):
        demo.train_and_evaluate(DET, work, lambda: None, SHORT)
    assert calls == []  # nothing was trained or evaluated


def test_resuming_a_run_of_another_schedule_is_refused(monkeypatch,
                                                       tmp_path):
    """A run stopped before the end of a schedule of another shape (a
    --paper run of an older demo) does not go on under this one."""
    from mmdet_gghost.apis.build import load_config
    calls = []
    _fake_apis(monkeypatch, calls, {})
    work = tmp_path / 'det'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'iter_240.pth'))
    # what mmengine dumped when that run started: 3x, lr step at 7/8
    load_config(DET, demo.run_options(DET, scale=3)).dump(
        str(work / DET.name))
    options = demo.run_options(DET, scale=4, milestones=(0.5, ))
    with pytest.raises(RuntimeError, match='other max_iters / param_sch'):
        demo.train_and_evaluate(DET, work, lambda: None, options)
    assert calls == []
    # the same schedule resumes
    load_config(DET, options).dump(str(work / DET.name))
    demo.train_and_evaluate(DET, work, lambda: None, options)
    assert calls[0] == ('train', True)


# ------------------------------------------------------------ one recipe
@pytest.mark.parametrize('models', [demo.DEMO_MODELS, demo.PAPER_MODELS],
                         ids=['demo', 'paper'])
def test_shipped_models_share_one_recipe(models):
    demo.check_same_recipe([m.pretrain for m in models])
    demo.check_same_recipe([m.det for m in models])
    # ... and really differ in their backbones
    backbones = [Config.fromfile(m.det).model.backbone for m in models]
    assert len({json.dumps(b.to_dict(), sort_keys=True, default=str)
                for b in backbones}) == len(models)


def test_a_model_with_another_schedule_is_refused(tmp_path):
    odd = tmp_path / 'retinanet_r34_odd.py'
    odd.write_text(f"_base_ = '{demo.DEMO_MODELS[0].det}'\n"
                   'train_cfg = dict(max_iters=99)\n'
                   "optim_wrapper = dict(optimizer=dict(lr=0.5))\n")
    with pytest.raises(demo.RecipeMismatchError,
                       match=r'retinanet_r34_odd.py .*2 setting.*'
                       r'optim_wrapper.optimizer.lr: 0.004 vs 0.5.*'
                       r'train_cfg.max_iters'):
        demo.check_same_recipe([DET, odd])


def test_run_demo_refuses_before_training(monkeypatch, tmp_path):
    odd = tmp_path / 'r34_pretrain_odd.py'
    odd.write_text(f"_base_ = '{demo.DEMO_MODELS[0].pretrain}'\n"
                   'randomness = dict(seed=7)\n')
    models = (demo.DEMO_MODELS[0]._replace(pretrain=odd),
              demo.DEMO_MODELS[1])
    monkeypatch.setattr(demo, 'DEMO_MODELS', models)
    monkeypatch.setattr(demo, 'train_model',
                        lambda *a, **k: pytest.fail('trained anyway'))
    with pytest.raises(demo.RecipeMismatchError, match='randomness.seed'):
        demo.run_demo(tmp_path / 'w', parts=('det', ))


def test_r34_demo_backbone_is_resnet34():
    from mmdet.models.backbones import ResNet

    from mmdet_gghost.models import GGhostResNet
    cfg = Config.fromfile(demo.DEMO_MODELS[0].det).model.backbone.to_dict()
    for key in ('type', 'init_cfg'):
        cfg.pop(key)
    ours, ref = GGhostResNet(**cfg), ResNet(depth=34)
    assert [p.shape for p in ours.parameters()] == \
        [p.shape for p in ref.parameters()]


def test_demo_configs_chain():
    """Each detector config's default init checkpoint is its own
    pre-training's last checkpoint under make demo's work dir layout."""
    for m in demo.PAPER_MODELS:
        pre, det = Config.fromfile(m.pretrain), Config.fromfile(m.det)
        init = det.model.backbone.init_cfg
        assert init.type == 'Pretrained' and init.prefix == 'backbone.'
        assert init.checkpoint == (f'work_dirs/demo/{m.slug}/pretrain_cls/'
                                   f'iter_{pre.train_cfg.max_iters}.pth')
        assert pre.default_hooks.checkpoint.interval == \
            pre.train_cfg.max_iters


# ------------------------------------------- each point from its own files
def _fake_training(monkeypatch, seen):
    """train_and_evaluate that records its calls and gives every work dir
    its own metrics (mAP from the model's name)."""
    def fake(config, work_dir, data_fn, cfg_options=None):
        seen.append((demo.Path(config).name, str(work_dir), cfg_options))
        slug = demo.Path(work_dir).parent.name
        value = 0.1 * (1 + [m.slug for m in demo.PAPER_MODELS].index(slug))
        metrics = {'accuracy/top1': 50.0, 'coco/bbox_mAP': value,
                   'coco/bbox_mAP_50': value + 0.3,
                   'coco/bbox_mAP_75': value + 0.05}
        path = demo.Path(work_dir) / 'metrics.json'
        return dict(checkpoint=str(demo.Path(work_dir) / 'iter_5.pth'),
                    metrics=metrics, metrics_json=str(path), train_s=1.0,
                    test_s=1.0, max_iters=8, work_dir=str(work_dir))
    monkeypatch.setattr(demo, 'train_and_evaluate', fake)


NO_OPTIONS = dict(pretrain={}, det={})


def test_benchmark_gets_each_models_own_weights_and_metrics(monkeypatch,
                                                            tmp_path):
    seen, kwargs = [], {}
    _fake_training(monkeypatch, seen)
    trained = {m.name: demo.train_model(m, tmp_path, None, None, NO_OPTIONS)
               for m in demo.DEMO_MODELS}
    monkeypatch.setattr(demo, 'run_benchmark',
                        lambda configs, **kw: kwargs.update(kw, c=configs))
    demo.benchmark_detectors(demo.DEMO_MODELS, trained, tmp_path / 'b')
    for i, m in enumerate(demo.DEMO_MODELS):
        assert kwargs['c'][i] == str(m.det) and kwargs['names'][i] == m.name
        assert kwargs['checkpoints'][i] == str(
            tmp_path / m.slug / 'det' / 'iter_5.pth')
        assert kwargs['eval_results'][i] == str(
            tmp_path / m.slug / 'det' / 'metrics.json')
    assert kwargs['data'] and kwargs['deploy'] and kwargs['plot']


def test_every_model_pretrains_then_trains_from_its_own_checkpoint(
        monkeypatch, tmp_path):
    seen = []
    _fake_training(monkeypatch, seen)
    options = dict(pretrain={'randomness.seed': 3, 'a': 1},
                   det={'randomness.seed': 3, 'b': 2})
    for m in demo.PAPER_MODELS:
        demo.train_model(m, tmp_path, None, None, options)
    assert [s[0] for s in seen] == [
        p.name for m in demo.PAPER_MODELS for p in (m.pretrain, m.det)]
    for (_, pre_dir, pre_opts), (_, _, det_opts) in zip(seen[::2],
                                                        seen[1::2]):
        assert pre_opts == options['pretrain']
        assert det_opts == {'randomness.seed': 3, 'b': 2,
                            'model.backbone.init_cfg.checkpoint':
                            f'{pre_dir}/iter_5.pth'}


def test_summary_has_one_row_per_model_from_its_own_metrics(monkeypatch,
                                                            tmp_path):
    seen = []
    _fake_training(monkeypatch, seen)
    models = demo.PAPER_MODELS
    runs = {None: {m.name: demo.train_model(m, tmp_path, None, None,
                                            NO_OPTIONS) for m in models}}
    records = [demo.model_record(m, runs) for m in models]
    rows = [dict(name=m.name, params=1e6 * (i + 1), macs=2e9, activations=3e6,
                 fps=10.0 * (i + 1), fps_ratio=float(i + 1))
            for i, m in enumerate(models)]
    bench = dict(rows=rows[::-1], paths={'plot': 'p.png'})  # any order
    path = demo.write_summary(tmp_path, records, bench, vis='v.png',
                              elapsed_s=600)
    lines = [ln for ln in path.read_text().splitlines()
             if ln.startswith('| ') and ln.count('|') == 11][1:]  # no header
    assert len(lines) == len(models)
    for i, (m, line) in enumerate(zip(models, lines)):
        cells = [c.strip() for c in line.strip('|').split('|')]
        mAP = 0.1 * (i + 1)
        assert cells[0] == m.name
        assert cells[4:7] == [f'{mAP:.3f}', f'{mAP + 0.3:.3f}',
                              f'{mAP + 0.05:.3f}']
        assert cells[7:] == [f'{10.0 * (i + 1):.1f}', f'{i + 1:.2f}',
                             f'{mAP - 0.1:+.3f}']
    text = path.read_text()
    assert 'FPS ratio vs R34' in text and 'v.png' in text
    assert '10.0 min' in text


# ------------------------------------------------------- learning curves
def test_paper_schedules_are_the_demo_schedules_longer():
    from mmdet_gghost.apis.build import load_config
    det = demo.run_options(DET, scale=3, points=8, seed=1)
    assert det['train_cfg.max_iters'] == 1920
    warmup, step = det['param_scheduler']
    assert warmup['end'] == 50  # the warm-up keeps its length
    assert step['end'] == 1920 and step['milestones'] == [1680]
    assert det['train_cfg.val_interval'] == det['train_cfg.val_begin'] == 240
    assert det['randomness.seed'] == 1
    pre = demo.run_options(demo.DEMO_MODELS[1].pretrain, scale=3, points=8)
    assert pre['train_cfg.max_iters'] == 600
    assert pre['param_scheduler'][1]['T_max'] == 600 - 20
    cfg = load_config(DET, det)
    assert cfg.param_scheduler[1].milestones == [1680]
    assert cfg.default_hooks.logger.log_metric_by_epoch is False
    # the recipe check holds under the options, and still refuses others
    for models in (demo.PAPER_MODELS, ):
        demo.check_same_recipe([m.det for m in models], det)
        demo.check_same_recipe([m.pretrain for m in models], pre)
    with pytest.raises(ValueError, match='divide'):
        demo.run_options(DET, points=7)
    # make demo-paper: 8x, the lr stepped at 8/12 and 11/12 as mmdet's 1x
    paper = demo.run_options(DET, demo.PAPER_SCALE['det'], 8,
                             milestones=demo.PAPER_MILESTONES['det'])
    assert paper['train_cfg.max_iters'] == 5120
    assert paper['param_scheduler'][1]['milestones'] == [3413, 4693]
    assert paper['param_scheduler'][0]['end'] == 50


@pytest.mark.parametrize('scale, iters', [
    (None, dict(pretrain=1200, det=5120)),  # PAPER_SCALE: 6x / 8x
    (dict(pretrain=6, det=4), dict(pretrain=1200, det=2560)),
])
def test_paper_scale_sets_every_models_schedule(monkeypatch, tmp_path,
                                                scale, iters):
    """``--paper-scale`` reaches every model's and seed's training."""
    seen = []
    monkeypatch.setattr(demo, 'train_model', lambda m, root, d, c, options:
                        seen.append((m.slug, root.name, options)))
    demo.train_models(demo.PAPER_MODELS, tmp_path, [0, 1], True, None, None,
                      paper_scale=scale)
    assert len(seen) == 8
    for slug, root, options in seen:
        for part in ('pretrain', 'det'):
            assert options[part]['train_cfg.max_iters'] == iters[part], slug
    det = seen[0][2]['det']['param_scheduler'][1]['milestones']
    assert det == [round(f * iters['det']) for f in (8 / 12, 11 / 12)]
    assert [r for _, r, _ in seen] == ['seed0'] * 4 + ['seed1'] * 4


def test_paper_scale_without_paper_is_one_clear_error(capsys):
    with pytest.raises(SystemExit) as info:
        load_tool('demo.py').main(['--paper-scale', '6', '8'])
    assert info.value.code == 2
    assert '--paper-scale needs --paper' in capsys.readouterr().err


def test_read_curve_merges_resumed_runs_and_applies_the_flat_rule(tmp_path):
    from mmdet_gghost.analysis.curves import curve_status, read_curve

    def write(stamp, records):
        folder = tmp_path / stamp / 'vis_data'
        folder.mkdir(parents=True)
        (folder / 'scalars.json').write_text(
            '\n'.join(json.dumps(r) for r in records) + '\n')
    key = 'coco/bbox_mAP'
    write('20261204_100000', [{'loss': 1.0, 'step': 1},
                              {key: 0.2, 'step': 4}, {key: 0.3, 'step': 8}])
    # resumed from iteration 4: the later run wins at 8
    write('20261204_110000', [{key: 0.35, 'step': 8}, {key: 0.40, 'step': 12},
                              {key: 0.405, 'step': 16}])
    curve = read_curve(tmp_path, key)
    assert curve == [(4, 0.2), (8, 0.35), (12, 0.40), (16, 0.405)]
    status = curve_status(curve, 16, key)
    assert status['gain'] == pytest.approx(0.005) and status['flat']
    assert not curve_status(curve[:-1] + [(16, 0.42)], 16, key)['flat']
    # a gain of exactly the threshold is not flat (in floats
    # 0.824 - 0.814 = 0.00999..., which counted as flat)
    edge = curve_status([(12, 0.814), (16, 0.824)], 16, key)
    assert edge['gain'] == 0.01 and not edge['flat']
    assert curve_status([(12, 0.815), (16, 0.824)], 16, key)['flat']
    with pytest.raises(ValueError, match=r'no evaluation at iteration.*\[12'):
        curve_status([(16, 0.4)], 16, key)
    assert read_curve(tmp_path / 'nothing', key) == []


def test_curves_one_line_per_model_and_seed(monkeypatch, tmp_path):
    seen = []
    _fake_training(monkeypatch, seen)
    models = demo.PAPER_MODELS
    runs = {s: {m.name: demo.train_model(m, tmp_path / f'seed{s}', None,
                                         None, NO_OPTIONS) for m in models}
            for s in (0, 1)}
    for run in runs.values():  # every run validated at 2, 4, 6, 8
        for m in models:
            folder = demo.Path(run[m.name]['det']['work_dir']) / 't/vis_data'
            folder.mkdir(parents=True)
            folder.joinpath('scalars.json').write_text('\n'.join(
                json.dumps({'coco/bbox_mAP': i / 10, 'step': i})
                for i in (2, 4, 6, 8)))
    records = [demo.model_record(m, runs) for m in models]
    rec = records[3]
    assert rec['name'] == 'G-Ghost-R34 w/o mix' and rec['mix'] is False
    assert [r['mix'] for r in records] == [None, True, None, False]
    assert rec['seeds'] == [0, 1] and rec['mAP'] == [0.4, 0.4]
    assert rec['det_last_quarter_gain'] == [pytest.approx(0.2)] * 2
    assert rec['pretrain_last_quarter_gain'] == [None, None]  # no curve
    assert rec['flat'] is False
    fig = demo.plot_learning_curves(records, tmp_path / 'curves.png')
    det_ax, pre_ax = fig.axes
    assert len(det_ax.lines) == 2 * len(models) and not pre_ax.lines
    assert det_ax.lines[0].get_label() == 'R34 seed 0'
    assert list(det_ax.lines[0].get_ydata()) == [0.2, 0.4, 0.6, 0.8]
    assert (tmp_path / 'curves.png').stat().st_size > 0
    summary = demo.write_summary(tmp_path, records, dict(
        rows=[dict(name=m.name, params=1, macs=1, activations=1, fps=1.0,
                   fps_ratio=1.0) for m in models], paths={}))
    saved = json.loads((tmp_path / 'summary.json').read_text())
    assert [r['name'] for r in saved] == [m.name for m in models]
    assert saved[3]['mAP_mean'] == pytest.approx(0.4)
    assert saved[3]['fps'] == 1.0 and saved[3]['fps_ratio'] == 1.0
    text = summary.read_text()
    row = '| G-Ghost-R34 w/o mix | 1 | 50.0% | — | 0.400 | 0.700 | +0.200 |'
    assert row in text
    assert 'Flat by this rule: none' in text


def test_tiny_runs_validate_as_often_as_asked_each_into_its_own_dir(
        tmp_path):
    """Real (tiny) detector trainings of both demo models, one after the
    other in one process, through the demo's own training call: 4
    evaluations in 4 iterations each, read back from mmengine's metric files
    in each run's own work dir (mmdet's configs name their visualizer, and a
    second Runner used to write into the first one's dir); the metrics the
    demo reports (the last validation) are what tools/test.py reports."""
    from mmengine.registry import DefaultScope

    from mmdet_gghost.analysis.curves import curve_options, read_curve
    from mmdet_gghost.datasets import make_detection_dataset
    root = tmp_path / 'det'
    make_detection_dataset(root, num_train=4, num_val=2, img_size=128)
    options = {'train_cfg.max_iters': 4, **curve_options(4, 4),
               'default_hooks.logger.interval': 1,
               'model.backbone.init_cfg': None,
               # an untrained detector's boxes still reach CocoMetric
               'model.test_cfg.score_thr': 0.0}
    for split in ('train', 'val', 'test'):
        options.update({f'{split}_dataloader.dataset.data_root': str(root),
                        f'{split}_dataloader.num_workers': 0,
                        f'{split}_dataloader.persistent_workers': False})
    for split in ('val', 'test'):
        options[f'{split}_evaluator.ann_file'] = str(
            root / 'annotations/instances_val2017.json')
    saved = dict(DefaultScope._instance_dict)
    try:
        outs = [demo.train_and_evaluate(m.det, tmp_path / m.slug,
                                        lambda: None, options)
                for m in demo.DEMO_MODELS]
        # the metrics the demo reports (the loop's last validation) are
        # what tools/test.py gives for the final checkpoint
        tested = [apis.test(m.det, out['checkpoint'],
                            work_dir=str(tmp_path / 'test'),
                            cfg_options=options)
                  for m, out in zip(demo.DEMO_MODELS, outs)]
    finally:
        DefaultScope._instance_dict = saved
    for out, metrics in zip(outs, tested):
        assert out['max_iters'] == 4
        curve = read_curve(out['work_dir'], 'coco/bbox_mAP')
        assert [step for step, _ in curve] == [1, 2, 3, 4]
        assert out['metrics'] == pytest.approx(metrics)
        assert curve[-1][1] == metrics['coco/bbox_mAP']
        saved_json = json.loads(demo.Path(out['metrics_json']).read_text())
        assert saved_json['metrics'] == out['metrics']
        assert saved_json['checkpoint'].endswith('iter_4.pth')
        records = [json.loads(line) for path in demo.Path(
            out['work_dir']).glob('*/vis_data/scalars.json')
            for line in path.read_text().splitlines()]
        assert sum('coco/bbox_mAP' in r for r in records) == 4


# ----------------------------------------- OpenMMLab's own inference works
@pytest.fixture
def demo_checkpoint(tmp_path):
    """A random-weight checkpoint of the G-Ghost demo detector."""
    pytest.importorskip('mmcv._ext', reason='mmcv ops not built yet')
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(DET)
    model = MODELS.build(cfg.model)
    # every anchor scores sigmoid(3) = 0.95, above DetInferencer's drawing
    # threshold (0.3): there are boxes to draw
    torch.nn.init.constant_(model.bbox_head.retina_cls.bias, 3.0)
    path = tmp_path / 'det.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(
                        classes=cfg.metainfo['classes']))), path)
    return path


def test_det_inferencer_runs_on_a_demo_config(demo_checkpoint, tmp_path):
    import cv2
    import numpy as np
    from mmdet.apis import DetInferencer
    image = tmp_path / 'img.png'
    cv2.imwrite(str(image), np.random.RandomState(0).randint(
        0, 255, (256, 256, 3), np.uint8))
    inferencer = DetInferencer(model=str(DET), weights=str(demo_checkpoint),
                               device='cpu', show_progress=False)
    out = inferencer(str(image), out_dir=str(tmp_path / 'out'),
                     no_save_pred=True, return_datasamples=True)
    boxes = out['predictions'][0].pred_instances.bboxes
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 0
    assert (tmp_path / 'out' / 'vis' / 'img.png').is_file()


def test_demo_visualise_writes_the_image(demo_checkpoint, tmp_path):
    import cv2
    import numpy as np
    image = tmp_path / 'val.png'
    cv2.imwrite(str(image), np.full((256, 256, 3), 128, np.uint8))
    out = demo.visualise(demo.DEMO_MODELS[1], demo_checkpoint, image,
                         tmp_path / 'o')
    assert out == tmp_path / 'o' / 'vis' / 'val.png'
    drawn = cv2.imread(str(out))
    assert drawn.shape == (256, 256, 3)
    # boxes are drawn: coloured (not grey) pixels where the input was
    # uniform grey (~56% of the pixels with up to 100 boxes of score 0.95),
    # while the input shows between them (outlines, not a replaced image)
    changed = (drawn.astype(int) != 128).any(axis=2)
    coloured = np.ptp(drawn.astype(int), axis=2) > 30
    assert changed.sum() >= 200, changed.sum()
    assert coloured.sum() >= 100 and changed.mean() < 0.9


def test_tools_read_demo_images_with_the_checked_loader():
    """The config says LoadImageFromFile (what DetInferencer and mmdeploy
    need); our train/test tools swap in the loader whose error names a
    corrupt file (tests/test_dataset_checks.py tests that error)."""
    from mmdet_gghost.apis.common import load_config
    for model in demo.DEMO_MODELS:
        plain, ours = Config.fromfile(model.det), load_config(model.det)
        for split in ('train', 'val', 'test'):
            first = f'{split}_dataloader'
            assert plain[first].dataset.pipeline[0].type == \
                'LoadImageFromFile'
            assert ours[first].dataset.pipeline[0].type == \
                'CheckedLoadImageFromFile'


def test_example_image_has_objects(tmp_path):
    from mmdet_gghost.datasets import make_detection_dataset
    make_detection_dataset(tmp_path, num_train=1, num_val=12, img_size=64)
    image = demo.example_image(tmp_path)
    coco = json.loads((tmp_path / 'annotations/instances_val2017.json')
                      .read_text())
    [img] = [i for i in coco['images'] if i['file_name'] == image.name]
    assert image.is_file() and sum(
        a['image_id'] == img['id'] for a in coco['annotations']) >= 3


# ------------------------------------------- seeds from an earlier run
def _records(monkeypatch, tmp_path, seeds, value=0.4):
    """Fake runs of the paper models for ``seeds``, each curve validated at
    2, 4, 6, 8 and ending at ``value``; returns their records."""
    _fake_training(monkeypatch, [])
    runs = {s: {m.name: demo.train_model(m, tmp_path / f'seed{s}', None,
                                         None, NO_OPTIONS)
                for m in demo.PAPER_MODELS} for s in seeds}
    for run in runs.values():
        for m in demo.PAPER_MODELS:
            folder = demo.Path(run[m.name]['det']['work_dir']) / 't/vis_data'
            folder.mkdir(parents=True, exist_ok=True)
            folder.joinpath('scalars.json').write_text('\n'.join(
                json.dumps({'coco/bbox_mAP': value * i / 8, 'step': i})
                for i in (2, 4, 6, 8)))
    return [demo.model_record(m, runs) for m in demo.PAPER_MODELS]


NAMES = [m.name for m in demo.PAPER_MODELS]
ITERS = dict(det=8, pretrain=8)  # what _fake_training reports


def _bench():
    return dict(rows=[dict(name=n, params=1, macs=1, activations=1, fps=2.0,
                           fps_ratio=1.0) for n in NAMES], paths={})


def test_merge_joins_the_seeds_of_an_earlier_summary(monkeypatch, tmp_path):
    earlier = tmp_path / 'earlier'
    demo.write_summary(earlier, _records(monkeypatch, earlier, [0]), _bench())
    records = _records(monkeypatch, tmp_path / 'now', [1, 2])
    old = demo.read_summary(earlier / 'summary.json', NAMES, [1, 2], ITERS)
    merged = demo.merge_records(old, records)
    rec = merged[1]
    assert rec['name'] == 'G-Ghost-R34' and rec['seeds'] == [0, 1, 2]
    # the fake metrics: mAP 0.2 for G-Ghost-R34 in every seed
    assert rec['mAP'] == [pytest.approx(0.2)] * 3
    assert rec['AP50_mean'] == pytest.approx(0.5)
    assert len(rec['det_curve']) == len(rec['det_last_quarter_gain']) == 3
    assert rec['flat'] is False and rec['mAP_spread'] == pytest.approx(0)
    assert records[1]['seeds'] == [1, 2]  # this run's records untouched
    out = demo.write_summary(tmp_path / 'out', merged, _bench(),
                             merged=[(earlier / 'summary.json', [0])])
    text = out.read_text()
    assert f"Seed(s) [0] from `{earlier / 'summary.json'}`" in text
    assert text.count('| G-Ghost-R34 | ') == 4  # 1 table row + 3 seeds


def test_merge_takes_means_and_spread_over_all_seeds(monkeypatch, tmp_path):
    old = _records(monkeypatch, tmp_path / 'a', [0])
    for rec in old:
        rec.update(mAP=[0.1], flat=True)
    merged = demo.merge_records(old, _records(monkeypatch, tmp_path, [1]))
    first = merged[0]  # R34: mAP 0.1 in seed 0, 0.1 (fake) in seed 1
    last = merged[3]  # w/o mix: 0.1 vs 0.4
    assert first['mAP_mean'] == pytest.approx(0.1)
    assert last['mAP'] == [0.1, pytest.approx(0.4)]
    assert last['mAP_mean'] == pytest.approx(0.25)
    assert last['mAP_spread'] == pytest.approx(0.3)
    assert last['flat'] is False  # seed 1's curve is not flat


@pytest.mark.parametrize('change, message', [
    (lambda recs: recs[:3], r'no G-Ghost-R34 w/o mix .*run the same models'),
    (lambda recs: [dict(r, seeds=[1]) for r in recs],
     r'seed\(s\) \[1\] are in both; give this run other --seeds'),
    (lambda recs: [dict(r, det_iters=16) for r in recs],
     r'R34 trained 16 det iterations there, 8 here.*--paper-scale'),
    (lambda recs: [{'nam': 1}], r'not a demo summary.json .*KeyError'),
])
def test_merge_refuses_another_run(monkeypatch, tmp_path, change, message):
    path = tmp_path / 'summary.json'
    path.write_text(json.dumps(change(
        _records(monkeypatch, tmp_path, [0]))))
    with pytest.raises(demo.SummaryMergeError, match=message):
        demo.read_summary(path, NAMES, [1], ITERS)


def test_run_demo_checks_merged_summaries_before_training(monkeypatch,
                                                          tmp_path):
    monkeypatch.setattr(demo, 'train_model',
                        lambda *a, **k: pytest.fail('trained anyway'))
    with pytest.raises(demo.SummaryMergeError,
                       match=r'nothing.json is not a demo summary.*'
                       'No such file'):
        demo.run_demo(tmp_path / 'w', parts=('det', ), paper=True,
                      seeds=[1], merge=[tmp_path / 'nothing.json'])
    assert not (tmp_path / 'w').exists()  # nothing written either
    records = [dict(name=n, seeds=[0], det_iters=2560, pretrain_iters=1200)
               for n in NAMES]
    (tmp_path / 's.json').write_text(json.dumps(records))
    with pytest.raises(demo.SummaryMergeError,
                       match=r'2560 det iterations there, 5120 here'):
        demo.run_demo(tmp_path / 'w', parts=('det', ), paper=True,
                      seeds=[1], merge=[tmp_path / 's.json'])
    with pytest.raises(SystemExit):
        load_tool('demo.py').main(['--only', 'cls', '--merge', 's.json'])


def test_two_merged_summaries_may_not_share_a_seed(monkeypatch, tmp_path):
    """A seed counts once: two earlier runs both holding seed 0 are refused
    (the second one), before anything trains."""
    monkeypatch.setattr(demo, 'train_model',
                        lambda *a, **k: pytest.fail('trained anyway'))
    iters = {part: demo.load_config(getattr(demo.PAPER_MODELS[0], part), o)
             .train_cfg.max_iters
             for part, o in demo.demo_options(demo.PAPER_MODELS[0],
                                              True).items()}
    for name in ('a.json', 'b.json'):
        (tmp_path / name).write_text(json.dumps([
            dict(name=n, seeds=[0], det_iters=iters['det'],
                 pretrain_iters=iters['pretrain']) for n in NAMES]))
    with pytest.raises(demo.SummaryMergeError,
                       match=r'b.json cannot join this run: seed\(s\) \[0\]'):
        demo.run_demo(tmp_path / 'w', parts=('det', ), paper=True,
                      seeds=[1], merge=[tmp_path / 'a.json',
                                        tmp_path / 'b.json'])


def test_run_demo_summary_holds_the_merged_seeds(monkeypatch, tmp_path):
    earlier = tmp_path / 'earlier'
    records = _records(monkeypatch, earlier, [0])
    paper = {part: demo.load_config(getattr(demo.PAPER_MODELS[0], part), o)
             .train_cfg.max_iters
             for part, o in demo.demo_options(demo.PAPER_MODELS[0],
                                              True).items()}
    for rec in records:  # as if trained at the paper's schedule
        rec.update(det_iters=paper['det'], pretrain_iters=paper['pretrain'])
    demo.write_summary(earlier, records, _bench())
    monkeypatch.setattr(demo, 'benchmark_detectors',
                        lambda *a, **k: _bench())
    monkeypatch.setattr(demo, 'visualise', lambda *a: 'v.png')
    monkeypatch.setattr(demo, 'example_image', lambda root: 'x.png')
    out = demo.run_demo(tmp_path / 'w', parts=('det', ), paper=True,
                        seeds=[1], merge=[earlier / 'summary.json'])
    saved = json.loads((tmp_path / 'w/summary.json').read_text())
    assert [r['seeds'] for r in saved] == [[0, 1]] * 4
    assert saved[3]['mAP'] == [pytest.approx(0.4)] * 2
    assert out['merged'] == [(earlier / 'summary.json', [0])]
    assert 'Seed(s) [0] from' in out['summary'].read_text()
    # seed 1 trained here (the fakes): the summary says where
    assert f'Trained on CPU ({os.cpu_count()} cores).' in \
        out['summary'].read_text()


# ------------------------------------ runs of other models joined (--join)
def _summary(monkeypatch, folder, seeds, names, mAP=None):
    """A demo summary.json in ``folder`` of the paper models ``names``
    trained with ``seeds`` (fake metrics; ``mAP``: one value per model and
    seed instead); returns its path."""
    records = [r for r in _records(monkeypatch, folder, seeds)
               if r['name'] in names]
    for rec in records:
        if mAP:
            rec['mAP'] = list(mAP[rec['name']])
            rec['mAP_mean'] = demo.mean(rec['mAP'])
    demo.write_summary(folder, records, _bench())
    return folder / 'summary.json'


def test_join_puts_the_models_of_two_runs_in_one_table(monkeypatch,
                                                       tmp_path):
    """R34 + G-Ghost-R34 from one run, R34-0.8x + w/o mix from another:
    one summary in the demo's order, accuracy and curves from the sources,
    no FPS (each run timed its own models on its own machine)."""
    from mmdet_gghost.apps.join import join_summaries
    later = _summary(monkeypatch, tmp_path / 'b', [0], NAMES[2:])
    first = _summary(monkeypatch, tmp_path / 'a', [0], NAMES[:2])
    out = join_summaries([later, first], tmp_path / 'joined')
    saved = json.loads((tmp_path / 'joined/summary.json').read_text())
    assert [r['name'] for r in saved] == NAMES
    assert [r['mAP'] for r in saved] == [[pytest.approx(v)]
                                         for v in (0.1, 0.2, 0.3, 0.4)]
    assert [r['sources'] for r in saved] == [[str(first)]] * 2 + \
        [[str(later)]] * 2
    assert not any('fps' in r or 'fps_ratio' in r for r in saved)
    text = out.read_text()
    assert '| R34-0.8x | — | 0 | 0.300 | 0.600 | 0.350 | 0.000 | +0.200 |' \
        in text
    assert '| G-Ghost-R34 w/o mix | no | 0 |' in text
    assert f'- `{first}`: R34, G-Ghost-R34 (seeds [0])' in text
    assert 'FPS is not joined' in text and 'Flat by this rule' in text
    assert (tmp_path / 'joined/curves.png').stat().st_size > 0


def test_join_also_joins_seeds_and_takes_means(monkeypatch, tmp_path):
    from mmdet_gghost.apps.join import join_summaries
    maps = {n: [0.1 * i] for i, n in enumerate(NAMES, 1)}
    paths = [_summary(monkeypatch, tmp_path / 'all0', [0], NAMES, maps),
             _summary(monkeypatch, tmp_path / 'two1', [1], NAMES[:2],
                      {n: [0.5] for n in NAMES}),
             _summary(monkeypatch, tmp_path / 'two1b', [1], NAMES[2:],
                      {n: [0.5] for n in NAMES})]
    join_summaries(paths, tmp_path / 'j')
    saved = json.loads((tmp_path / 'j/summary.json').read_text())
    assert [r['seeds'] for r in saved] == [[0, 1]] * 4
    assert saved[0]['mAP_mean'] == pytest.approx(0.3)  # (0.1 + 0.5) / 2
    assert saved[3]['mAP_spread'] == pytest.approx(0.1)  # 0.4 vs 0.5
    assert saved[3]['sources'] == [str(paths[0]), str(paths[2])]
    assert len(saved[3]['det_curve']) == 2


@pytest.mark.parametrize('second, message', [
    (dict(seeds=[0], names=NAMES[:1]),
     r'R34 seed\(s\) \[0\] are in .*b/summary.json and in '
     r'.*a/summary.json: a seed counts once'),
    (dict(seeds=[1], names=NAMES[2:]),
     r'different seeds \(R34 \[0\], G-Ghost-R34 \[0\], R34-0.8x \[1\]'),
    (dict(seeds=[0], names=NAMES[2:], det_iters=16),
     r'R34 in .* trained 8 pre-training and 8 detector iterations, '
     r'R34-0.8x in .* 8 and 16: only runs of one schedule'),
])
def test_join_refuses_runs_that_do_not_compare(monkeypatch, tmp_path, second,
                                               message):
    from mmdet_gghost.apps.join import join_summaries
    a = _summary(monkeypatch, tmp_path / 'a', [0], NAMES[:2])
    b = _summary(monkeypatch, tmp_path / 'b', second['seeds'],
                 second['names'])
    if 'det_iters' in second:
        b.write_text(json.dumps([dict(r, det_iters=second['det_iters'])
                                 for r in json.loads(b.read_text())]))
    with pytest.raises(demo.SummaryMergeError, match=message):
        join_summaries([a, b], tmp_path / 'j')
    assert not (tmp_path / 'j').exists()


def test_join_never_overwrites_a_training_runs_summary(monkeypatch,
                                                       tmp_path):
    from mmdet_gghost.apps.join import join_summaries
    a = _summary(monkeypatch, tmp_path / 'a', [0], NAMES[:2])
    b = _summary(monkeypatch, tmp_path / 'b', [0], NAMES[2:])
    before = a.read_text()
    with pytest.raises(demo.SummaryMergeError,
                       match='would be overwritten, and it is one of the'):
        join_summaries([a, b], tmp_path / 'a')
    c = _summary(monkeypatch, tmp_path / 'c', [1], NAMES)
    with pytest.raises(demo.SummaryMergeError,
                       match="it holds a training run's summary"):
        join_summaries([a, b], tmp_path / 'c')
    assert a.read_text() == before and json.loads(c.read_text())[0][
        'seeds'] == [1]
    join_summaries([a, b], tmp_path / 'j')  # a joined one is made again
    join_summaries([a, b], tmp_path / 'j')
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps([{'name': 'R34'}]))
    with pytest.raises(demo.SummaryMergeError,
                       match=r"bad.json is not a demo summary"
                             r".*KeyError\('AP50'"):
        join_summaries([a, bad], tmp_path / 'k')


@pytest.mark.parametrize('argv, message', [
    (['--join', 'a.json'], 'at least two summary.json'),
    (['--join', 'a.json', 'b.json', '--models', 'R34'],
     '--join trains nothing: drop --models'),
    (['--join', 'a.json', 'b.json', '--paper-scale', '6', '16'],
     'drop --paper-scale'),
    (['--join', 'a.json', 'nothing.json'], 'a.json is not a demo summary'),
])
def test_join_cli_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        load_tool('demo.py').main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'work_dirs').exists()


def test_summary_says_where_this_run_trained(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_device_name',
                        lambda index=0: 'NVIDIA H100')
    assert demo.training_device(8) == \
        'CUDA (NVIDIA H100), 8 trainings side by side'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert demo.training_device() == f'CPU ({os.cpu_count()} cores)'
    # a run that only found its checkpoints trained nowhere
    runs = {0: {'R34': dict(pretrain=dict(train_s=0.0),
                            det=dict(train_s=0.0))}}
    assert not demo._trained_here(runs)
    runs[0]['R34']['det']['train_s'] = 5.0
    assert demo._trained_here(runs)


def test_models_picks_a_subset_in_the_demo_order(monkeypatch, tmp_path):
    """--models R34 'G-Ghost-R34 w/o mix' trains, times and summarises those
    two only (the reference first, whatever order they are named in)."""
    trained = []
    monkeypatch.setattr(demo, 'train_model', lambda m, *a, **k: trained.append(
        m.name) or dict(pretrain=dict(train_s=1.0),
                        det=dict(checkpoint=f'{m.slug}.pth', train_s=1.0)))
    monkeypatch.setattr(demo, 'model_record',
                        lambda m, runs: dict(name=m.name))
    monkeypatch.setattr(demo, 'plot_learning_curves', lambda *a: None)
    monkeypatch.setattr(demo, 'benchmark_detectors',
                        lambda models, *a, **k: [m.name for m in models])
    monkeypatch.setattr(demo, 'visualise', lambda m, *a: m.name)
    monkeypatch.setattr(demo, 'example_image', lambda root: 'x.png')
    summary = tmp_path / 'summary.md'
    summary.write_text('| table |\n')
    monkeypatch.setattr(demo, 'write_summary',
                        lambda work_dir, records, bench, vis, *a: summary)
    monkeypatch.setattr(demo, 'data_fn', lambda *a: None)
    monkeypatch.setattr(demo, 'log', lambda msg: None)
    out = demo.run_demo(tmp_path / 'w', parts=('det', ), paper=True,
                        seeds=[1], model_names=['G-Ghost-R34 w/o mix', 'R34'])
    assert trained == ['R34', 'G-Ghost-R34 w/o mix']
    assert out['bench'] == trained and out['vis'] == 'G-Ghost-R34 w/o mix'
    assert [r['name'] for r in out['records']] == trained
    # one model alone (to join the others' runs later): it is also drawn
    trained.clear()
    out = demo.run_demo(tmp_path / 'w', parts=('det', ), paper=True,
                        seeds=[1], model_names=['R34-0.8x'])
    assert trained == out['bench'] == ['R34-0.8x'] == [out['vis']]


def test_models_without_r34_still_check_the_recipe_against_r34(monkeypatch,
                                                                tmp_path):
    """--models 'R34-0.8x' 'G-Ghost-R34 w/o mix': those two train (the
    first the reference of the ratios), and only if R34 -- whose runs of
    another call they join -- has their recipe."""
    odd = tmp_path / 'retinanet_r34_odd.py'
    odd.write_text(f"_base_ = '{demo.PAPER_MODELS[0].det}'\n"
                   "optim_wrapper = dict(optimizer=dict(lr=0.5))\n")
    trained = []
    monkeypatch.setattr(demo, 'train_model', lambda m, *a, **k: trained.append(
        m.name) or dict(pretrain=dict(train_s=1.0), det=dict(train_s=1.0)))
    names = ['G-Ghost-R34 w/o mix', 'R34-0.8x']
    models = demo.select_models(True, names)
    runs = demo.train_models(models, tmp_path, [0], True, None, None)
    assert trained == ['R34-0.8x', 'G-Ghost-R34 w/o mix']
    assert list(runs[0]) == trained
    monkeypatch.setattr(demo, 'DEMO_MODELS', (
        demo.DEMO_MODELS[0]._replace(det=odd), demo.DEMO_MODELS[1]))
    with pytest.raises(demo.RecipeMismatchError,
                       match=r'not trained like retinanet_r34_odd.py.*lr'):
        demo.train_models(models, tmp_path, [0], True, None, None)
    assert len(trained) == 2  # refused before training


@pytest.mark.parametrize('argv, message', [
    (['--paper', '--models', 'R34-0.8x', 'R34-0.8x'], 'each once'),
    (['--paper', '--models', 'R34', 'R50'], "unknown: ['R50']"),
    (['--models', 'R34', 'R34-0.8x'], 'need --paper'),
])
def test_models_refuses_unknown_or_repeated_names(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        load_tool('demo.py').main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
