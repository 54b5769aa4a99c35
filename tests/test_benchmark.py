"""The FPS benchmark (mmdet_gghost.benchmark, tools/benchmark.py).

Tiny models (ResNet-18 with 8 base channels), 64x96 images and a handful of
rounds. Nothing here passes or fails on a timing value.
"""
import csv
import functools
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmdet_gghost.benchmark import (CSV_FIELDS, UsageError,
                                    calibrate_score_thr, load_metric,
                                    load_model, make_inputs, make_step_fn,
                                    outputs_finite, plot_map_vs_fps,
                                    run_benchmark, summarize,
                                    time_interleaved, write_reports)
from tools_helpers import SMALL_CLASSIFIER, write_small_retinanet

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

@pytest.fixture(scope='module')
def cfgs(tmp_path_factory):
    """Config paths of the small (8-channel) models, by name: det18, det34
    (SMALL_RETINANET), det18_pretrained (its init_cfg a missing file) and
    cls18 (SMALL_CLASSIFIER). Not the shared tiny_det_config: these tests
    compare depths 18 and 34 and rely on 4 outputs and the usual
    score_thr 0.05 / max_per_img 100."""
    d = tmp_path_factory.mktemp('cfgs')
    pretrained = "dict(type='Pretrained', checkpoint='/nonexistent/r18.pth')"
    paths = {
        'det18': write_small_retinanet(d / 'det18.py', 18),
        'det34': write_small_retinanet(d / 'det34.py', 34),
        'det18_pretrained': write_small_retinanet(
            d / 'det18_pretrained.py', 18, init=pretrained),
        'cls18': str(d / 'cls18.py'),
    }
    with open(paths['cls18'], 'w') as f:
        f.write(SMALL_CLASSIFIER)
    return paths


FAST = dict(shape=(64, 96), warmup=1, rounds=3, progress=False)


# -------------------------------------------------------------- statistics


def test_summarize_ratio_is_median_of_per_round_ratios():
    a = np.array([1.0, 1.0, 3.0])
    b = np.array([2.0, 0.5, 1.0])
    rows = summarize([a, b], batch_sizes=1, names=['a', 'b'],
                     macs=[1e9, 5e8])
    ra, rb = rows
    # per round FPS ratios b/a: 0.5, 2, 3 -> median 2, while the ratio of
    # the median FPS would be 1: the report must give the former
    assert rb['fps_ratio'] == pytest.approx(2.0)
    assert ra['fps_ratio'] == pytest.approx(1.0)
    assert rb['fps_ratio_p10'] == pytest.approx(np.percentile([.5, 2, 3], 10))
    assert ra['median_ms'] == pytest.approx(1000.0)
    assert rb['median_ms'] == pytest.approx(1000.0)
    assert rb['fps'] == pytest.approx(1.0)
    assert ra['p10_ms'] == pytest.approx(1000.0)
    assert ra['p90_ms'] == pytest.approx(np.percentile(a, 90) * 1e3)
    assert ra['mean_ms'] == pytest.approx(a.mean() * 1e3)
    # 2 flops per MAC, per second of median latency
    assert ra['gflops_per_s'] == pytest.approx(2.0)
    assert rb['gflops_per_s'] == pytest.approx(1.0)
    assert [r['rounds'] for r in rows] == [3, 3]


def test_summarize_batch_sizes_enter_fps_and_ratio():
    lat = [np.array([0.1, 0.2]), np.array([0.4, 0.4])]
    ra, rb = summarize(lat, batch_sizes=[1, 8], macs=None)
    assert ra['fps'] == pytest.approx(1 / 0.15)
    assert rb['fps'] == pytest.approx(8 / 0.4)
    # rounds: (8/.4)/(1/.1) = 2, (8/.4)/(1/.2) = 4 -> median 3
    assert rb['fps_ratio'] == pytest.approx(3.0)
    assert ra['gflops_per_s'] is None
    with pytest.raises(ValueError, match='aligned'):
        summarize([np.ones(3), np.ones(2)])


def test_time_interleaved_order_sync_and_warmup(monkeypatch):
    """Order, syncs and what lies inside the timed interval, on a fake
    clock that only the timed calls advance (no real timing involved)."""
    import types

    import mmdet_gghost.benchmark.timing as bm
    log, syncs, clock = [], [], [0.0]
    monkeypatch.setattr(bm, 'time',
                        types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def make(name, cost):

        def fn():
            log.append(name)
            clock[0] += cost

        return fn

    lats = time_interleaved([make('A', 0.25), make('B', 0.5)],
                            rounds=4,
                            warmup=2,
                            sync=lambda: syncs.append(1))
    assert log == ['A', 'B'] * 6  # 2 warmup + 4 timed rounds, interleaved
    assert [x.shape for x in lats] == [(4, ), (4, )]
    # each timed call is bracketed by two syncs (+1 after the warmup)
    assert len(syncs) == 4 * 2 * 2 + 1
    # exactly each call's own cost is inside its timed interval
    np.testing.assert_array_equal(lats[0], [0.25] * 4)
    np.testing.assert_array_equal(lats[1], [0.5] * 4)


def _fake_clock(monkeypatch):
    """A clock that only the fake calls advance (no real timing)."""
    import types

    import mmdet_gghost.benchmark.timing as timing
    clock = [0.0]
    monkeypatch.setattr(timing, 'time',
                        types.SimpleNamespace(perf_counter=lambda: clock[0]))
    return clock


class _Costly(torch.nn.Module):
    """Identity whose calls cost ``costs`` seconds on the fake clock, in
    order (first call, then the timed rounds)."""

    def __init__(self, clock, costs):
        super().__init__()
        self.clock, self.costs = clock, list(costs)

    def forward(self, x):
        self.clock[0] += self.costs.pop(0)
        return x


def test_inference_forms_and_benchmark_share_the_timing_core(monkeypatch):
    """time_forms (tools/deploy/compare_forms.py) and run_benchmark time
    with the same functions and report the same ratio: the median of
    per-round *speed* ratios to the first entry (> 1 = faster)."""
    from mmdet_gghost.benchmark import runner, timing
    from mmdet_gghost.benchmark import forms, time_forms
    for name in ('time_interleaved', 'summarize', 'time_first_call'):
        assert getattr(runner, name) is getattr(timing, name)
        assert getattr(forms, name) is getattr(timing, name)
    clock = _fake_clock(monkeypatch)
    a, b = [1.0, 1.0, 3.0], [2.0, 0.5, 1.0]  # seconds per timed round
    res = time_forms({'eval': _Costly(clock, [0.7] + a),
                      'fused': _Costly(clock, [0.2] + b)},
                     (2, 3, 4, 4), rounds=3, warmup=0)
    bench = summarize(time_interleaved(
        [functools.partial(_Costly(clock, c), None) for c in (a, b)],
        rounds=3),
        batch_sizes=2, names=['eval', 'fused'])
    for row, ref in zip(res.values(), bench):
        for key in ('median_ms', 'fps', 'fps_ratio', 'fps_ratio_p10',
                    'fps_ratio_p90', 'rounds', 'batch_size'):
            assert row[key] == pytest.approx(ref[key]), key
    # per round b/a speed: 0.5, 2, 3 -> 2 (a latency ratio would be 0.5)
    assert res['fused']['fps_ratio'] == pytest.approx(2.0)
    assert res['eval']['fps_ratio'] == 1.0
    assert res['eval']['first_call_s'] == pytest.approx(0.7)
    assert res['fused']['first_call_s'] == pytest.approx(0.2)
    assert res['fused']['min_ms'] == pytest.approx(500.0)
    assert res['fused']['max_rel'] == 0.0


def test_time_first_call_syncs_around_the_call(monkeypatch):
    from mmdet_gghost.benchmark import sync_for, time_first_call
    clock = _fake_clock(monkeypatch)
    log = []
    seconds, out = time_first_call(
        lambda: log.append('call') or clock.__setitem__(0, 1.5) or 'out',
        sync=lambda: log.append('sync'))
    assert (seconds, out) == (1.5, 'out')
    assert log == ['sync', 'call', 'sync']
    assert sync_for('cpu') is None and sync_for(torch.device('cpu')) is None
    assert sync_for('cuda:1') is torch.cuda.synchronize


# --------------------------------------------------------------- settings


@pytest.mark.parametrize('options,message', [
    (dict(rounds=0), '--rounds must be an integer >= 1, got 0'),
    (dict(warmup=-1), '--warmup must be an integer >= 0, got -1'),
    (dict(batch_size=True), '--batch-size must be an integer >= 1, got True'),
    (dict(shape=(64, )), '--shape takes two integers H W >= 1, got [64]'),
    (dict(task='head'),
     'task must be "full", "backbone" or "train", got \'head\''),
    (dict(amp=True), '--amp is CUDA autocast'),
    (dict(names=['a', 'b']), '--names: give one per config (1)'),
    (dict(candidate_fraction=2.0), '--candidate-fraction must be in (0, 1]'),
    (dict(onnxruntime=True, task='backbone'), '--onnxruntime times the full'),
])
def test_settings_validation_names_the_option(cfgs, options, message):
    from mmdet_gghost.benchmark import BenchmarkSettings
    with pytest.raises(UsageError) as err:
        BenchmarkSettings(**options).validate([cfgs['det18']])
    assert str(err.value).startswith(message)
    assert '\n' not in str(err.value)  # one line


def test_settings_defaults_and_overrides(cfgs):
    from mmdet_gghost.benchmark import BenchmarkSettings
    s = BenchmarkSettings(compile_mode='max-autotune',
                          checkpoints=['none']).validate([cfgs['det18']])
    assert (s.warmup, s.rounds) == (1, 6)  # the CPU defaults
    assert s.compile and s.checkpoints == [None]
    assert s.names == ['det18'] and s.eval_results == [None]
    assert s.calibrate and s.fixed_score_thr == 0.0
    assert not BenchmarkSettings(data=True).calibrate
    assert BenchmarkSettings(data=True).fixed_score_thr is None
    assert BenchmarkSettings(score_thr=0.3).fixed_score_thr == 0.3
    # one settings object, keywords override its fields
    res = run_benchmark([cfgs['cls18']],
                        BenchmarkSettings(task='backbone', complexity=False,
                                          **FAST),
                        rounds=2)
    assert res['settings']['rounds'] == 2 and res['settings']['warmup'] == 1
    assert res['rows'][0]['task'] == 'backbone'
    with pytest.raises(TypeError, match="unknown option.*'iters'"):
        run_benchmark([cfgs['cls18']], iters=2)


@pytest.mark.parametrize('flags, form', [
    ([], 'eval'), (['--fuse-conv-bn'], 'fused'), (['--deploy'], 'deploy'),
    (['--fuse-conv-bn', '--deploy'], 'deploy')])
def test_cli_flags_name_the_inference_form(cfgs, flags, form):
    """--fuse-conv-bn folds BN (mmdet's meaning), --deploy also switches
    G-Ghost backbones to their op-lean form: the model that is timed."""
    from mmdet_gghost.benchmark.models import load_model as load
    from tools_helpers import load_tool
    tool = load_tool('benchmark.py')
    s = tool.settings_from_args(tool.parse_args([cfgs['det18'], *flags]))
    assert s.form == form
    _, _, info = load(cfgs['det18'], form=s.form)
    assert (info['form'], info['bn_fused']) == (form, form != 'eval')


def test_torch_settings_are_restored_even_on_error():
    from mmdet_gghost.benchmark.runner import _restores_torch_settings
    threads = torch.get_num_threads()
    cudnn = torch.backends.cudnn.benchmark

    @_restores_torch_settings
    def change():
        torch.set_num_threads(threads + 1)
        torch.backends.cudnn.benchmark = not cudnn
        raise RuntimeError('boom')

    try:
        with pytest.raises(RuntimeError, match='boom'):
            change()
        assert torch.get_num_threads() == threads
        assert torch.backends.cudnn.benchmark == cudnn
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn


# --------------------------------------------------------------- reports


def _fake_rows():
    rows = summarize([np.array([0.10, 0.12, 0.11]),
                      np.array([0.08, 0.09, 0.085])], 2, ['r34', 'gg34'],
                     macs=[2e9, 1.5e9])
    for r, m, p in zip(rows, [0.365, 0.357], [21_000_000, 18_000_000]):
        r.update(config=f'configs/{r["name"]}.py', checkpoint=None,
                 task='full', input_shape=[1, 3, 800, 1344], params=p,
                 macs=2e9, activations=3e7, bn_fused=False, dets_per_img=100.,
                 first_call_s=0.5, metric_key='coco/bbox_mAP', metric=m)
    return rows


def test_reports_are_well_formed_and_consistent(tmp_path):
    rows = _fake_rows()
    env = {'cpu': 'test cpu', 'torch': torch.__version__}
    settings = {'task': 'full', 'device': 'cpu', 'batch_size': 2,
                'rounds': 3}
    paths = write_reports(str(tmp_path), rows, env, settings,
                          extra={'complexity': {'r34': None}})
    doc = json.load(open(paths['json']))
    assert doc['env'] == env and doc['settings'] == settings
    assert doc['complexity'] == {'r34': None}
    with open(paths['csv'], newline='') as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == CSV_FIELDS
        csv_rows = list(reader)
    md = open(paths['md']).read().splitlines()
    table = [line for line in md if line.startswith('|')]
    assert len(doc['results']) == len(csv_rows) == len(table) - 2 == 2
    n_cols = table[0].count('|')
    assert all(line.count('|') == n_cols for line in table)
    for j, c, line in zip(doc['results'], csv_rows, table[2:]):
        assert j['name'] == c['name']
        for key in ('fps', 'fps_ratio', 'median_ms', 'p90_ms', 'metric',
                    'gflops_per_s'):
            assert float(c[key]) == pytest.approx(j[key], rel=1e-12)
        assert c['input_shape'] == '1x3x800x1344'
        cells = [x.strip() for x in line.strip('|').split('|')]
        assert cells[0] == j['name']
        assert f'{j["fps"]:.2f}' in cells
        assert f'{j["fps_ratio"]:.3f}' in cells
        assert f'{j["metric"]:.3f}' in cells
    assert any(line.startswith('- cpu: `test cpu`') for line in md)


def test_plot_has_one_labelled_point_per_model(tmp_path):
    out = tmp_path / 'plot' / 'map_vs_fps.png'
    fig, ax = plot_map_vs_fps(['R34', 'G-Ghost-R34', 'R18'], [21.9, 25.9,
                                                              30.1],
                              [36.5, 35.8, 31.7], str(out))
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    offsets = ax.collections[0].get_offsets()
    assert offsets.shape == (3, 2)
    assert offsets[1].tolist() == [25.9, 35.8]
    assert [t.get_text() for t in ax.texts] == ['R34', 'G-Ghost-R34', 'R18']
    assert ax.get_xlabel().startswith('FPS')
    with pytest.raises(ValueError):
        plot_map_vs_fps(['a'], [1.0, 2.0], [3.0])


def test_load_metric_formats(tmp_path):
    flat = tmp_path / 'flat.json'
    flat.write_text(json.dumps({'coco/bbox_mAP': 0.31, 'coco/bbox_mAP_50':
                                0.5}))
    assert load_metric(str(flat)) == ('coco/bbox_mAP', 0.31)
    nested = tmp_path / 'nested.json'
    nested.write_text(json.dumps({'metrics': {'accuracy/top1': 71.5}}))
    assert load_metric(str(nested)) == ('accuracy/top1', 71.5)
    lines = tmp_path / 'scalars.json'
    lines.write_text('{"coco/bbox_mAP": 0.1, "step": 1}\n'
                     '{"coco/bbox_mAP": 0.2, "step": 2}\n')
    assert load_metric(str(lines)) == ('coco/bbox_mAP', 0.2)
    assert load_metric(str(flat), 'coco/bbox_mAP_50') == ('coco/bbox_mAP_50',
                                                          0.5)
    with pytest.raises(UsageError, match='no metric'):
        load_metric(str(flat), 'accuracy/top5')
    with pytest.raises(FileNotFoundError, match='missing.json'):
        load_metric(str(tmp_path / 'missing.json'))


# ----------------------------------------------------------- real models


def test_load_model_and_step(cfgs, tmp_path):
    model, cfg, info = load_model(cfgs['det18'], score_thr=0.0,
                                  max_per_img=7)
    assert info['task'] == 'det' and info['scope'] == 'mmdet'
    assert model.bbox_head.test_cfg['score_thr'] == 0.0
    assert model.bbox_head.test_cfg['max_per_img'] == 7
    # a checkpoint is loaded (values, not just accepted)
    ckpt = tmp_path / 'det18.pth'
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    torch.save({'state_dict': state}, ckpt)
    loaded, _, info = load_model(cfgs['det18'], str(ckpt))
    assert info['checkpoint'] == str(ckpt)
    assert torch.all(loaded.backbone.conv1.weight == 0.5)

    batches = make_inputs('det', (64, 96), batch_size=2)
    step = make_step_fn(model, batches)
    out = step()
    assert len(out) == 2
    # random weights + score_thr 0: NMS sees a full candidate set and
    # every image comes out capped at max_per_img
    assert [len(o.pred_instances) for o in out] == [7, 7]
    assert outputs_finite(out)
    feats = make_step_fn(model, batches, task='backbone')()
    assert len(feats) == 4 and feats[0].shape[0] == 2
    assert outputs_finite(feats)
    assert not outputs_finite((feats[0], feats[1] * float('nan')))


def test_fresh_init_needs_score_thr_override(cfgs):
    """Why score_thr is 0 for synthetic inputs: a freshly initialised
    RetinaNet scores every anchor at its prior (0.01) < 0.05."""
    # the pretrained init_cfg (a missing file) is dropped, not loaded
    model, _, info = load_model(cfgs['det18_pretrained'])
    assert info['weights'] == 'init_weights'
    assert model.bbox_head.test_cfg['score_thr'] == 0.05
    out = make_step_fn(model, make_inputs('det', (64, 96)))()
    assert len(out[0].pred_instances) == 0
    # init_weights ran: the classifier bias is the focal-loss prior
    bias = model.bbox_head.retina_cls.bias
    assert torch.allclose(torch.sigmoid(bias), torch.tensor(0.01), atol=1e-6)
    # the same model with the benchmark's default for synthetic inputs
    model, _, _ = load_model(cfgs['det18_pretrained'], score_thr=0.0)
    out = make_step_fn(model, make_inputs('det', (64, 96)))()
    assert len(out[0].pred_instances) == 100  # max_per_img of the config


def test_calibrated_score_thr_passes_the_asked_share(cfgs):
    """score_thr='auto': the threshold lets exactly the asked fraction of
    (anchor, class) pairs through, so NMS gets a busy image's load without
    mmdet sorting every score of the image (what score_thr=0 does)."""
    model, _, _ = load_model(cfgs['det18'])
    batch = make_inputs('det', (64, 96), batch_size=2)[0]
    thr = calibrate_score_thr(model, batch, 0.01)
    with torch.no_grad():
        outs = model.bbox_head(model.extract_feat(
            model.data_preprocessor(batch, False)['inputs']))
    scores = torch.cat([c.sigmoid().flatten(1) for c in outs[0]], 1)
    k = int(np.ceil(0.01 * scores.shape[1]))
    passing = (scores > thr).sum(1)
    # every image gets at least k; the image that set it gets exactly k
    assert passing.min().item() == k
    assert thr < 0.05  # below the config's: the prior-level scores pass
    # a bigger share gives a lower threshold
    assert calibrate_score_thr(model, batch, 0.1) < thr
    with pytest.raises(UsageError, match='candidate_fraction'):
        calibrate_score_thr(model, batch, 0)
    # the benchmark applies it to the head and reports it per model
    res = run_benchmark([cfgs['det18']], shape=(64, 96), warmup=0, rounds=1,
                        complexity=False, progress=False,
                        candidate_fraction=0.01)
    assert res['rows'][0]['score_thr'] == pytest.approx(
        calibrate_score_thr(model, make_inputs('det', (64, 96))[0], 0.01))
    assert res['rows'][0]['dets_per_img'] > 0


def test_missing_files_give_clear_errors(cfgs, tmp_path):
    missing = str(tmp_path / 'no_such_config.py')
    with pytest.raises(FileNotFoundError, match='Config file not found: .*'
                       'no_such_config.py'):
        run_benchmark([cfgs['det18'], missing], **FAST)
    ckpt = str(tmp_path / 'no_such.pth')
    with pytest.raises(FileNotFoundError, match='Checkpoint file not found'):
        run_benchmark([cfgs['det18']], checkpoints=[ckpt], **FAST)
    with pytest.raises(UsageError, match='one per config'):
        run_benchmark([cfgs['det18'], cfgs['det34']],
                      checkpoints=['none'], **FAST)
    with pytest.raises(UsageError, match='--plot'):
        run_benchmark([cfgs['det18']], plot=str(tmp_path / 'x.png'), **FAST)
    # the CLI: one line naming the path, no traceback
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'benchmark.py'),
         cfgs['det18'], missing, '--no-progress'],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f'error: Config file not found: {missing}' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_backbone_task_mixed_toolboxes(cfgs):
    res = run_benchmark([cfgs['det18'], cfgs['cls18']], task='backbone',
                        batch_size=2, **FAST)
    det, cls = res['rows']
    assert det['task'] == cls['task'] == 'backbone'
    assert det['dets_per_img'] is None
    assert det['input_shape'] == [1, 3, 64, 96]
    rep = res['complexity'][det['name']]
    assert rep['backbone']['name'] == ''  # traced the backbone alone
    assert rep['parts'] == [] and det['macs'] == rep['total']['macs']
    assert det['batch_size'] == 2 and len(det['latencies_ms']) == 3
    assert all(r['gflops_per_s'] > 0 for r in res['rows'])


def test_cli_end_to_end(cfgs, tmp_path):
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        import benchmark as cli
    finally:
        sys.path.pop(0)
    evals = []
    for name, m in (('a', 0.30), ('b', 0.32)):
        evals.append(str(tmp_path / f'{name}.json'))
        with open(evals[-1], 'w') as f:
            json.dump({'coco/bbox_mAP': m}, f)
    out = tmp_path / 'out'
    threads = torch.get_num_threads()
    try:
        res = cli.main([
            cfgs['det18'], cfgs['det34'], '--shape', '64', '96', '--warmup',
            '1', '--rounds', '3', '--threads', '1', '--max-per-img', '20',
            '--fuse-conv-bn', '--candidate-fraction', '0.2',
            '--eval-results', *evals, '--out', str(out),
            '--plot', str(out / 'plot.png'), '--no-progress'
        ])
    finally:
        assert torch.get_num_threads() == threads  # restored on return
        torch.set_num_threads(threads)
    rows = res['rows']
    assert [r['name'] for r in rows] == ['det18', 'det34']
    assert rows[0]['fps_ratio'] == 1.0
    assert [r['metric'] for r in rows] == [0.30, 0.32]
    # comparable post-processing: with 20 % of the pairs of these tiny
    # images passing, every image gets max_per_img boxes
    assert [r['dets_per_img'] for r in rows] == [20.0, 20.0]
    # synthetic inputs: each dense detector's threshold is calibrated
    assert res['settings']['score_thr'].startswith('calibrated: 0.2 ')
    assert all(0 < r['score_thr'] < 1 for r in rows)
    assert res['settings']['threads'] == 1
    assert all(r['bn_fused'] and r['outputs_finite'] for r in rows)
    assert all(rep['bn_layers'] == 0 for rep in res['complexity'].values())
    # ResNet-34 does more work than ResNet-18 (complexity columns filled)
    assert rows[1]['macs'] > rows[0]['macs']
    assert rows[1]['params'] > rows[0]['params']
    # ops column: the fused ResNet-34 backbone runs 8 more basic blocks
    # (conv, ReLU, conv, add, ReLU each) than ResNet-18; neck/head equal
    assert rows[1]['ops'] - rows[0]['ops'] == 8 * 5
    assert all(r['ops'] == res['complexity'][r['name']]['total']['ops']
               for r in rows)
    doc = json.load(open(out / 'benchmark.json'))
    assert doc['settings']['form'] == 'fused'
    assert doc['env']['mmdet'] and doc['env']['PyTorch'] == torch.__version__
    assert doc['env']['cpu'] and doc['env']['torch_threads'] >= 1
    assert [r['fps'] for r in doc['results']] == [r['fps'] for r in rows]
    assert set(doc['complexity']) == {'det18', 'det34'}
    assert (out / 'benchmark.csv').read_text().count('\n') == 3
    assert 'det34' in (out / 'benchmark.md').read_text()
    assert '| ops |' in (out / 'benchmark.md').read_text()
    with open(out / 'plot.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert len(res['figure'][1].collections[0].get_offsets()) == 2


@pytest.mark.parametrize('args,message', [
    (['--shape', '0', '0'], '--shape takes two integers H W >= 1, got [0, 0]'),
    (['--batch-size', '0'], '--batch-size must be an integer >= 1, got 0'),
    (['--threads', '0'], '--threads must be an integer >= 1, got 0'),
    (['--warmup', '-1'], '--warmup must be an integer >= 0, got -1'),
    (['--rounds', '0'], '--rounds must be an integer >= 1, got 0'),
    # the deprecated old name of --rounds (hidden alias)
    (['--iters', '0'], '--rounds must be an integer >= 1, got 0'),
    (['--data-batches', '0'],
     '--data-batches must be an integer >= 1, got 0'),
])
def test_cli_rejects_bad_counts_in_one_line(cfgs, args, message):
    from tools_helpers import load_tool
    with pytest.raises(SystemExit) as exit_:
        load_tool('benchmark.py').main([cfgs['det18'], *args,
                                        '--no-progress'])
    assert str(exit_.value.code) == f'error: {message}'


def test_cli_iters_is_a_deprecated_alias_of_rounds(capsys):
    from tools_helpers import load_tool
    cli = load_tool('benchmark.py')
    args = cli.parse_args(['a.py', '--iters', '4'])
    assert args.rounds == 4
    assert capsys.readouterr().err.strip() == (
        'warning: --iters is deprecated, use --rounds')
    settings = cli.settings_from_args(cli.parse_args(
        ['a.py', '--rounds', '5', '--score-thr', 'config', '--out', 'o',
         '--no-complexity', '--no-progress']))
    assert settings.rounds == 5 and settings.score_thr is None
    assert settings.out_dir == 'o'
    assert not settings.complexity and not settings.progress
    with pytest.raises(SystemExit):
        cli.parse_args(['--help'])
    help_text = capsys.readouterr().out
    assert '--rounds' in help_text and '--iters' not in help_text  # hidden


def test_cli_rejects_bad_score_thr(cfgs, capsys):
    from tools_helpers import load_tool
    with pytest.raises(SystemExit) as exit_:
        load_tool('benchmark.py').main([cfgs['det18'], '--score-thr', 'abc'])
    assert exit_.value.code == 2  # argparse's usage error
    assert ("argument --score-thr: expected auto, config or a number, got "
            "'abc'") in capsys.readouterr().err


# ------------------------------------------------------------ task train

DEMO_DETECTORS = ('retinanet_r34_demo', 'retinanet_gghost_r34_demo')
TRAIN = dict(task='train', batch_size=2, warmup=0, rounds=2, threads=1,
             progress=False)


@pytest.fixture(scope='module')
def demo_train_cfgs(tmp_path_factory):
    """The two demo detectors (configs/demo/) with their train dataloader
    on a tiny demo data set (4 train images of 64x64), by name."""
    from mmdet_gghost.datasets import make_detection_dataset
    d = tmp_path_factory.mktemp('demo_train')
    make_detection_dataset(d / 'data', num_train=4, num_val=1, img_size=64)
    paths = {}
    for name in DEMO_DETECTORS:
        base = osp.join(ROOT, 'configs', 'demo', f'{name}.py')
        paths[name] = str(d / f'{name}.py')
        with open(paths[name], 'w') as f:
            f.write(f'_base_ = {base!r}\ntrain_dataloader = dict(dataset='
                    f'dict(data_root={str(d / "data") + "/"!r}))\n')
    return paths


def _spy_timed_models(monkeypatch):
    """The models run_benchmark builds, a copy of their parameters and
    buffers right before the timed rounds, and the backbone's
    ``training`` flag at each of its calls in those rounds."""
    from mmdet_gghost.benchmark import runner
    seen = dict(models=[], before=[], backbone_training=[], timing=False)
    real_load, real_time = runner.load_model, runner.time_interleaved

    def record(module, args, out):
        if seen['timing']:
            seen['backbone_training'].append(module.training)

    def load(*args, **kwargs):
        model, cfg, info = real_load(*args, **kwargs)
        seen['models'].append(model)
        model.backbone.register_forward_hook(record)
        return model, cfg, info

    def time(fns, rounds, **kwargs):
        seen['before'] = [{k: v.detach().clone() for k, v in
                           m.state_dict().items()} for m in seen['models']]
        seen['timing'] = True
        try:
            return real_time(fns, rounds, **kwargs)
        finally:
            seen['timing'] = False

    monkeypatch.setattr(runner, 'load_model', load)
    monkeypatch.setattr(runner, 'time_interleaved', time)
    return seen


def _changed(before, model, prefix, buffers=False):
    """Whether any parameter (or, with ``buffers``, buffer) of ``model``
    under ``prefix`` differs from ``before`` (a state dict copy)."""
    now = dict(model.named_buffers() if buffers else
               model.named_parameters())
    return any(not torch.equal(before[k], v) for k, v in now.items()
               if k.startswith(prefix) and v.is_floating_point())


def test_train_task_times_a_real_training_step(monkeypatch, tmp_path):
    """Both demo detectors, synthetic batches with gt boxes: one row each,
    and each timed call really trained: the optimizer moved the trained
    backbone stages (gradients reached them), the frozen stem did not
    move, BN ran on batch statistics (train mode), and the models were
    back in eval mode afterwards."""
    seen = _spy_timed_models(monkeypatch)
    configs = [osp.join(ROOT, 'configs', 'demo', f'{n}.py')
               for n in DEMO_DETECTORS]
    res = run_benchmark(configs, shape=(64, 64), out_dir=str(tmp_path),
                        **TRAIN)
    rows = res['rows']
    assert [r['name'] for r in rows] == list(DEMO_DETECTORS)
    for r in rows:
        assert r['task'] == 'train' and r['batch_size'] == 2
        assert len(r['latencies_ms']) == 2 and r['rounds'] == 2
        assert np.isfinite(r['median_ms']) and r['median_ms'] > 0
        assert r['fps'] == pytest.approx(2e3 / r['median_ms'])
        assert r['input_shape'] == [1, 3, 64, 64]
        assert r['optim_wrapper'] == 'OptimWrapper(AdamW)'  # the config's
        assert r['gflops_per_s'] is None and r['macs'] > 0  # forward's
        # gt boxes reached the loss: positives, a box regression loss
        assert r['first_losses']['loss_bbox'] > 0 and r['outputs_finite']
    assert rows[0]['fps_ratio'] == 1.0 and rows[1]['fps_ratio'] > 0
    assert res['settings']['task'] == 'train'
    assert res['settings']['form'] == 'train'
    assert 'gt boxes' in res['settings']['inputs']
    assert 'build_optim_wrapper' in res['settings']['optim_wrapper']
    # timed in train mode (BN on batch statistics), the optimizer stepped
    # (parameters moved, the trained backbone stages' too: gradients
    # reached them), the frozen stem stayed
    assert seen['backbone_training'] == [True] * 4  # 2 models x 2 rounds
    for model, before in zip(seen['models'], seen['before']):
        assert _changed(before, model, 'backbone.layer4.', buffers=True)
        for part in ('backbone.layer2.', 'backbone.layer4.', 'neck.',
                     'bbox_head.'):
            assert _changed(before, model, part), part
        assert not _changed(before, model, 'backbone.stem.')
        assert not _changed(before, model, 'backbone.layer1.')
        assert not model.training and not model.backbone.layer4.training
    md = (tmp_path / 'benchmark.md').read_text()
    assert md.startswith('# Benchmark: train step (model.train_step')
    assert 'training images per second' in md


def test_train_task_on_train_dataloader_batches(demo_train_cfgs, capsys):
    """--data with --task train: batches of each config's train pipeline
    (160x160 after its Resize), with their gt boxes, through the CLI."""
    from tools_helpers import load_tool
    threads = torch.get_num_threads()
    try:
        res = load_tool('benchmark.py').main([
            *demo_train_cfgs.values(), '--task', 'train', '--data',
            '--data-batches', '1', '--batch-size', '2', '--warmup', '0',
            '--rounds', '2', '--threads', '1', '--no-complexity',
            '--no-progress'])
    finally:
        torch.set_num_threads(threads)
    assert 'train step (model.train_step' in capsys.readouterr().out
    assert res['settings']['inputs'] == 'train dataloader'
    assert [r['name'] for r in res['rows']] == list(DEMO_DETECTORS)
    for r in res['rows']:
        assert r['input_shape'] == [1, 3, 160, 160]
        assert r['first_losses']['loss_bbox'] > 0 and r['fps'] > 0


def test_synthetic_train_batches_carry_ground_truth():
    from mmdet.structures.bbox import HorizontalBoxes

    from mmdet_gghost.benchmark import make_train_inputs
    batches = make_train_inputs('det', (64, 96), num_classes=3,
                                batch_size=2, num_batches=2)
    assert len(batches) == 2
    for batch in batches:
        assert len(batch['inputs']) == len(batch['data_samples']) == 2
        for sample in batch['data_samples']:
            gt = sample.gt_instances
            assert isinstance(gt.bboxes, HorizontalBoxes) and len(gt) == 3
            boxes = gt.bboxes.tensor
            assert (boxes[:, 2:] > boxes[:, :2]).all() and boxes.min() >= 0
            assert (boxes[:, 2] <= 96).all() and (boxes[:, 3] <= 64).all()
            assert ((gt.labels >= 0) & (gt.labels < 3)).all()
    cls = make_train_inputs('cls', (32, 32), num_classes=5, batch_size=2)
    labels = [int(s.gt_label) for s in cls[0]['data_samples']]
    assert len(labels) == 2 and all(0 <= x < 5 for x in labels)


def test_train_mode_restores_every_flag_and_amp_swaps_the_wrapper(cfgs):
    from mmengine.config import Config

    from mmdet_gghost.benchmark import train_mode
    from mmdet_gghost.benchmark.training import train_optim_wrapper_cfg
    model, _, _ = load_model(cfgs['det18'])
    model.train()
    model.neck.eval()  # a mixed state, as the caller left it
    flags = [m.training for m in model.modules()]
    with train_mode(model):
        assert model.training and model.neck.training
    assert [m.training for m in model.modules()] == flags
    cfg = Config(dict(optim_wrapper=dict(
        optimizer=dict(type='SGD', lr=0.01), clip_grad=None)))
    amp = train_optim_wrapper_cfg(cfg, amp=True)
    assert amp['type'] == 'AmpOptimWrapper' and amp['loss_scale'] == 'dynamic'
    assert amp['optimizer'] == cfg.optim_wrapper.optimizer
    assert 'type' not in cfg.optim_wrapper  # the config is left alone
    assert 'type' not in train_optim_wrapper_cfg(cfg)
    # a config without optim_wrapper: one clear error
    with pytest.raises(UsageError, match="config's optim_wrapper"):
        run_benchmark([cfgs['det18']], task='train', complexity=False,
                      **dict(FAST, rounds=1))


@pytest.mark.parametrize('flags,message', [
    (['--fuse-conv-bn'], '--fuse-conv-bn/--deploy with --task train: an '
     'inference form'),
    (['--deploy'], '--fuse-conv-bn/--deploy with --task train'),
    (['--cuda-graphs'], '--cuda-graphs with --task train: a capture of the '
     'inference forward'),
    (['--onnxruntime'], '--onnxruntime with --task train: an inference '
     'runtime'),
    (['--score-thr', '0.3'], '--score-thr/--max-per-img with --task train'),
    (['--score-thr', 'config'], '--score-thr/--max-per-img with --task '
     'train'),
    (['--max-per-img', '10'], '--score-thr/--max-per-img with --task train'),
    (['--amp'], "--amp is mmengine's AmpOptimWrapper (float16): use "
     '--device cuda'),
])
def test_train_task_refuses_inference_options_before_building(
        cfgs, monkeypatch, flags, message):
    from mmdet_gghost.benchmark import runner
    from tools_helpers import load_tool

    def no_build(*args, **kwargs):
        raise AssertionError('a model was built before the options were '
                             'checked')

    monkeypatch.setattr(runner, 'load_model', no_build)
    with pytest.raises(SystemExit) as exit_:
        load_tool('benchmark.py').main([cfgs['det18'], '--task', 'train',
                                        *flags, '--no-progress'])
    text = str(exit_.value.code)
    assert text.startswith(f'error: {message}') and '\n' not in text
    if not flags == ['--amp']:  # the problem, then the fix
        assert text.endswith(f'drop {message.split()[0]}')


# ------------------------------------------------ where the time goes
def test_breakdown_parts_chain_into_what_test_step_returns(cfgs):
    from mmdet_gghost.benchmark.breakdown import PARTS, part_fns
    model, _, _ = load_model(cfgs['det34'], score_thr=0.0, max_per_img=7)
    batch = make_inputs('det', (64, 96), batch_size=2)[0]
    for sample in batch['data_samples']:  # boxes scaled back on output
        sample.set_metainfo(dict(scale_factor=(0.5, 0.25)))
    fns = part_fns(model, batch)
    assert tuple(fns) == PARTS
    outs = {p: fn() for p, fn in fns.items()}
    assert outs['preprocess']['inputs'].shape == (2, 3, 64, 96)
    assert len(outs['backbone']) == 4 and len(outs['neck']) == 5
    scores, deltas = outs['head']
    assert scores[0].shape[-2:] == outs['neck'][0].shape[-2:]
    expected = make_step_fn(model, [batch])()
    got = outs['postprocess']
    assert [len(s.pred_instances) for s in got] == [7, 7]
    for a, b in zip(got, expected):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(a.pred_instances[key], b.pred_instances[key])


def test_breakdown_refuses_what_it_cannot_split(cfgs):
    from mmdet_gghost.benchmark import BenchmarkSettings
    from mmdet_gghost.benchmark.breakdown import part_fns
    model, _, _ = load_model(cfgs['cls18'])
    with pytest.raises(UsageError, match='single-stage detectors .* drop '
                       '--breakdown'):
        part_fns(model, make_inputs('cls', (32, 32), batch_size=1)[0])
    for options in (dict(task='backbone'), dict(onnxruntime=True)):
        with pytest.raises(UsageError, match='--breakdown times the parts'):
            BenchmarkSettings(breakdown=True, **options).validate(
                [cfgs['det18']])


def test_amdahl_ratio_changes_only_the_backbone():
    from mmdet_gghost.benchmark.breakdown import amdahl_ratio
    ref = dict(backbone=4.0, sum=10.0)
    assert amdahl_ratio(ref, dict(backbone=2.0, sum=99.0)) == 10.0 / 8.0
    assert amdahl_ratio(ref, ref) == 1.0


def test_benchmark_breakdown_rows_and_report(cfgs, tmp_path):
    from mmdet_gghost.benchmark.breakdown import PARTS
    res = run_benchmark([cfgs['det18'], cfgs['det34']], breakdown=True,
                        out_dir=str(tmp_path), complexity=False, **FAST)
    for row in res['rows']:
        ms = row['breakdown_ms']
        assert set(ms) == set(PARTS) | {'sum'}
        assert all(ms[p] > 0 for p in PARTS)
        assert ms['sum'] == pytest.approx(sum(ms[p] for p in PARTS))
    md = open(res['paths']['md']).read()
    section = md.split('## Where the time goes (--breakdown)')[1]
    rows = [ln for ln in section.split('## Notes')[0].splitlines()
            if ln.startswith('| det')]
    assert [r.split(' | ')[0] for r in rows] == ['| det18', '| det34']
    assert rows[0].endswith('| 1.000 | 1.000 |')  # the reference
    assert res['settings']['breakdown'] is True
    from tools_helpers import load_tool
    tool = load_tool('benchmark.py')
    for flags, on in (([], False), (['--breakdown'], True)):
        args = tool.parse_args([cfgs['det18'], *flags])
        assert tool.settings_from_args(args).breakdown is on
