"""tools/analysis/mix_ablation.py's library (mmdet_gghost.apps.ablation):
each variant changes only what it names, variants share the demo's
pre-training run, and the table reports every seed and the mix's
difference. The trainings themselves are the demo's (tests/test_demo.py)."""
import json

import pytest
from mmengine.config import Config

from mmdet_gghost import apis
from mmdet_gghost.apps import ablation, demo

VARIANTS = {v.name: v for v in ablation.VARIANTS}
MIX, NOMIX = ablation.ABLATION_MODELS


def _options(name, part, model=MIX):
    return ablation.variant_options(VARIANTS[name], getattr(model, part),
                                    part, seed=1)


def test_demo_variant_is_the_demo_recipe():
    for part in ('pretrain', 'det'):
        assert _options('demo', part) == demo.run_options(
            getattr(MIX, part), seed=1)


def test_detector_batch_16_sees_the_same_images():
    opts = _options('det-b16', 'det')
    assert opts['train_dataloader.batch_size'] == 16  # demo: 4
    assert opts['train_cfg.max_iters'] == 160  # demo: 640
    warmup, step = opts['param_scheduler']
    assert warmup['end'] == 50  # the warm-up keeps its length
    assert (step['end'], step['milestones']) == (160, [140])
    assert opts['train_cfg.val_interval'] == 40  # 4 curve points
    assert opts['randomness.seed'] == 1
    assert _options('det-b16', 'pretrain') == _options('demo', 'pretrain')


def test_other_detector_variants_change_one_key():
    demo_opts = _options('demo', 'det')
    for name, key, value in (
            ('det-frozen-bn', 'model.backbone.norm_eval', True),
            ('det-b16-640', 'train_dataloader.batch_size', 16),
            ('det-mix-norm-eval', 'model.backbone.mix_norm_eval', True)):
        opts = _options(name, 'det')
        assert opts == {**demo_opts, key: value}, name
        assert _options(name, 'pretrain') == _options('demo', 'pretrain')


def test_pretraining_variants_change_the_pretraining_only():
    longer = _options('pretrain-3x', 'pretrain')
    assert longer['train_cfg.max_iters'] == 600
    assert 'train_dataloader.batch_size' not in longer
    small = _options('pretrain-b8', 'pretrain')
    assert small['train_dataloader.batch_size'] == 8  # demo: 32
    assert small['train_cfg.max_iters'] == 800
    cosine = small['param_scheduler'][1]
    assert (cosine['end'], cosine['T_max']) == (800, 780)
    for name in ('pretrain-3x', 'pretrain-b8'):
        assert _options(name, 'det') == _options('demo', 'det')


def test_variants_share_the_demo_pretraining_run(monkeypatch, tmp_path):
    seen = []

    def fake_train_model(model, root, det_data, cls_data, options, dirs):
        seen.append((model.slug, root.name, dirs,
                     options['det'].get('train_cfg.max_iters')))
        return {}
    monkeypatch.setattr(ablation, 'train_model', fake_train_model)
    for name in ('demo', 'det-b16', 'pretrain-3x'):
        ablation.run_variant(VARIANTS[name], ablation.ABLATION_MODELS, 1,
                             tmp_path, None, None)
    assert seen == [
        (m.slug, 'seed1', dirs, iters)
        for dirs, iters in ((('pretrain_demo', 'det_demo'), None),
                            (('pretrain_demo', 'det_det-b16'), 160),
                            (('pretrain_pretrain-3x', 'det_pretrain-3x'),
                             None))
        for m in ablation.ABLATION_MODELS]


def test_variant_trains_through_the_demo_runs(monkeypatch, tmp_path):
    """Every run goes through demo.train_and_evaluate: the pre-trained
    checkpoint of the variant's own pre-training initialises its
    detector."""
    trained = []

    def fake_train(config, work_dir, resume, cfg_options):
        trained.append((demo.Path(work_dir).relative_to(tmp_path).parts,
                        cfg_options))
        iters = cfg_options.get('train_cfg.max_iters') or Config.fromfile(
            config).train_cfg.max_iters
        demo.Path(work_dir).mkdir(parents=True, exist_ok=True)
        (demo.Path(work_dir) / f'iter_{iters}.pth').write_bytes(b'x')

    def fake_test(config, ckpt, work_dir, metrics_json, cfg_options):
        metrics = {'coco/bbox_mAP': 0.5, 'accuracy/top1': 50.0}
        demo.Path(metrics_json).write_text(json.dumps(metrics))
        return metrics
    monkeypatch.setattr(apis, 'train', fake_train)
    monkeypatch.setattr(apis, 'test', fake_test)
    ablation.run_variant(VARIANTS['pretrain-b8'], (MIX, ), 0, tmp_path,
                         lambda: None, lambda: None)
    (pre_dir, pre_opts), (det_dir, det_opts) = trained
    assert pre_dir == ('seed0', MIX.slug, 'pretrain_pretrain-b8')
    assert det_dir == ('seed0', MIX.slug, 'det_pretrain-b8')
    assert pre_opts['train_dataloader.batch_size'] == 8
    assert det_opts['model.backbone.init_cfg.checkpoint'] == str(
        tmp_path / 'seed0' / MIX.slug / 'pretrain_pretrain-b8' /
        'iter_800.pth')


def _run(map_, top1):
    return dict(det=dict(metrics={'coco/bbox_mAP': map_,
                                  'coco/bbox_mAP_50': map_ + 0.2},
                         max_iters=640),
                pretrain=dict(metrics={'accuracy/top1': top1},
                              max_iters=200))


def test_table_reports_every_seed_and_the_mix_difference(tmp_path):
    results = {'demo': {0: {MIX.name: _run(0.40, 50.0),
                            NOMIX.name: _run(0.45, 52.0)},
                        1: {MIX.name: _run(0.50, 54.0),
                            NOMIX.name: _run(0.43, 51.0)}}}
    rows = ablation.ablation_rows(results, ablation.ABLATION_MODELS)
    assert [(r['model'], r['seeds'], r['mAP']) for r in rows] == [
        (MIX.name, [0, 1], [0.40, 0.50]), (NOMIX.name, [0, 1], [0.45, 0.43])]
    assert rows[0]['mAP_mean'] == pytest.approx(0.45)
    assert rows[1]['top1'] == [52.0, 51.0]
    path = ablation.write_ablation(tmp_path, rows, ablation.ABLATION_MODELS)
    line = next(x for x in path.read_text().splitlines()
                if x.startswith('| demo |'))
    cells = [c.strip() for c in line.strip('|').split('|')]
    assert cells[2:] == ['0 / 1', '0.400 / 0.500 (0.450)', '50.0 / 54.0',
                         '0.450 / 0.430 (0.440)', '52.0 / 51.0', '+0.010']
    saved = json.loads((tmp_path / 'ablation.json').read_text())
    assert saved[0]['mAP'] == [0.40, 0.50]


def test_cli_offers_every_variant(capsys):
    from tools_helpers import load_tool
    tool = load_tool('analysis/mix_ablation.py')
    with pytest.raises(SystemExit):
        tool.main(['--variants', 'nope'])
    err = capsys.readouterr().err
    assert all(v in err for v in VARIANTS)


def test_report_reads_only_runs_finished_for_every_model(tmp_path):
    """--report-only: a variant's seed is in the table when both models
    finished both runs (metrics.json naming an existing checkpoint)."""
    from mmdet_gghost.apis.test import write_metrics_json

    def finish(seed, model, run, iters, metrics):
        run_dir = tmp_path / f'seed{seed}' / model.slug / run
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = run_dir / f'iter_{iters}.pth'
        ckpt.write_bytes(b'x')
        write_metrics_json(str(run_dir / 'metrics.json'), metrics, 'c.py',
                           str(ckpt))
    det = {'coco/bbox_mAP': 0.4, 'coco/bbox_mAP_50': 0.6}
    for seed in (0, 1):
        for model in ablation.ABLATION_MODELS:
            finish(seed, model, 'pretrain_demo', 200, {'accuracy/top1': 50})
            if (seed, model) != (1, NOMIX):  # seed 1 w/o mix: unfinished
                finish(seed, model, 'det_demo', 640, det)
    variants = [VARIANTS['demo'], VARIANTS['det-b16']]
    results = ablation.finished_results(tmp_path, variants, (0, 1),
                                        ablation.ABLATION_MODELS)
    assert list(results) == ['demo'] and list(results['demo']) == [0]
    assert results['demo'][0][MIX.name]['det']['max_iters'] == 640
    path = ablation.run_ablation(tmp_path, variants, train=False)
    assert '| demo |' in path.read_text()
    with pytest.raises(RuntimeError, match='no finished ablation run'):
        ablation.run_ablation(tmp_path / 'empty', variants, train=False)
