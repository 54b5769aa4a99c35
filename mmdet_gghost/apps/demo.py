"""``make demo``: the paper's mAP-vs-FPS trade-off in miniature.

Every model pre-trains its backbone on ``data/demo_cls``, trains RetinaNet
from it on ``data/demo_det`` (resuming / skipping as needed), validating at
regular intervals (the learning curves, ``curves.png``), and is evaluated,
timed and written to ``summary.md`` / ``summary.json``; the models differ in
their backbone only.  ``make demo-paper`` trains the paper's four models
:data:`PAPER_SCALE` times longer, with several seeds.  ``tools/demo.py`` is
the CLI.
"""
import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import torch

from .. import apis
from ..analysis import format_count
from ..analysis.curves import (FLAT_GAIN, curve_options, curve_status,
                               plot_curves, read_curve, read_records)
from ..apis.build import load_config
from ..apis.test import write_metrics_json
from ..benchmark import run_benchmark
from ..checkpoint import last_checkpoint_record
from ..config_bases import package_configs_dir
from ..datasets import make_classification_dataset, make_detection_dataset
from .jobs import run_jobs

DEMO_CONFIGS = Path(package_configs_dir()) / 'demo'
CLS_CONFIG = DEMO_CONFIGS / 'gghost_r34_cls_demo.py'


class DemoModel(NamedTuple):
    """One point of the trade-off: a backbone under the demo recipe."""
    name: str  # row / plot label
    slug: str  # work sub-directory
    pretrain: Path  # classifier pre-training config
    det: Path  # detector config


def _model(name, slug):
    """The demo configs of backbone ``slug`` share one naming scheme."""
    return DemoModel(name, slug, DEMO_CONFIGS / f'{slug}_cls_pretrain.py',
                     DEMO_CONFIGS / f'retinanet_{slug}_demo.py')


# The reference first: FPS ratios and mAP differences are relative to it.
DEMO_MODELS = (_model('R34', 'r34'), _model('G-Ghost-R34', 'gghost_r34'))
PAPER_MODELS = DEMO_MODELS + (
    _model('R34-0.8x', 'r34-0.8x'),
    _model('G-Ghost-R34 w/o mix', 'gghost_r34_nomix'),
)
# make demo-paper trains until the curves flatten: each schedule this many
# times longer than the quick demo's (pre-training 6x = the 1200 iterations
# of the full classifier demo, flat by then; the detector 8x: every
# detector still gained 0.02-0.04 mAP from 4x to 8x), the detector's lr
# stepped down where mmdet's 1x schedule steps it (8/12 and 11/12 of the
# way: the last quarter runs at the reduced lrs, 0.1x then 0.01x, so the
# rule's "last quarter" holds the first step's settling and the second
# step); PAPER_POINTS evaluations per curve.
PAPER_SCALE = dict(pretrain=6, det=8)
PAPER_MILESTONES = dict(det=(8 / 12, 11 / 12))
PAPER_POINTS = 8
DEMO_POINTS = 4
# Config keys that may differ between the models of one demo: the backbone
# itself, the widths that follow from it, and where its weights come from.
BACKBONE_KEYS = ('model.backbone', 'model.neck.in_channels',
                 'model.head.in_channels', 'pretrained', 'work_dir')


def log(msg):
    print(f'[demo] {msg}', flush=True)


class RecipeMismatchError(ValueError):
    """Two demo models would be trained under different recipes."""


def recipe_of(config, cfg_options=None):
    """A config as ``{dotted key: value}`` without :data:`BACKBONE_KEYS`:
    what must be identical for every model of the demo."""

    def flatten(obj, prefix):
        key = prefix[:-1]
        if key in BACKBONE_KEYS:
            return {}
        if not isinstance(obj, dict):
            return {key: obj}
        return {k: v for sub, value in obj.items()
                for k, v in flatten(value, f'{prefix}{sub}.').items()}
    return flatten(load_config(config, cfg_options).to_dict(), '')


def check_same_recipe(configs, cfg_options=None):
    """Raise :class:`RecipeMismatchError` unless every config has the
    first one's recipe (:func:`recipe_of`); ``cfg_options`` apply to all."""
    ref = recipe_of(configs[0], cfg_options)
    for config in configs[1:]:
        other = recipe_of(config, cfg_options)
        values = ((k, ref.get(k, '<unset>'), other.get(k, '<unset>'))
                  for k in sorted(ref.keys() | other.keys()))
        diff = [f'{k}: {a!r} vs {b!r}' for k, a, b in values if a != b]
        if diff:
            raise RecipeMismatchError(
                f'{Path(config).name} is not trained like '
                f'{Path(configs[0]).name}: {len(diff)} setting(s) other than '
                f'the backbone differ ({", ".join(diff[:5])}). The demo '
                'compares backbones only: make the configs differ in '
                'model.backbone alone.')


def longer_schedule(cfg, factor, milestones=None):
    """``cfg_options`` training ``factor`` times longer with the same
    schedule shape: ``max_iters``, the decay's end, milestones and cosine
    ``T_max`` scale; a warm-up (a scheduler ending before ``max_iters``)
    keeps its length. ``milestones`` (fractions of the new length) replace
    the scaled ones."""
    old = cfg.train_cfg.max_iters
    new = int(old * factor)
    schedulers = []
    for sched in cfg.param_scheduler:
        sched = dict(sched)
        if sched.get('end') == old:
            sched['end'] = new
            if 'T_max' in sched:
                sched['T_max'] = new - sched.get('begin', 0)
            if 'milestones' in sched:
                sched['milestones'] = (
                    [round(f * new) for f in milestones] if milestones else
                    [round(m * factor) for m in sched['milestones']])
        schedulers.append(sched)
    return {'train_cfg.max_iters': new, 'param_scheduler': schedulers}


def run_options(config, scale=1, points=DEMO_POINTS, seed=None,
                milestones=None, change=None):
    """The ``cfg_options`` of one demo training: the schedule ``scale``
    times longer (:func:`longer_schedule`), then ``change(cfg)``'s options
    (if given), ``points`` evaluations for the curve, the seed."""
    cfg = load_config(config)
    options = (longer_schedule(cfg, scale, milestones)
               if scale != 1 or milestones else {})
    options.update(change(cfg) if change else {})
    options.update(curve_options(
        options.get('train_cfg.max_iters', cfg.train_cfg.max_iters), points))
    if seed is not None:
        options['randomness.seed'] = seed
    return options


def _schedule(cfg):
    return (cfg.train_cfg.max_iters,
            [dict(sched) for sched in cfg.get('param_scheduler', [])])


def _check_resumable(work_dir, config, cfg):
    """Refuse to resume a run of another schedule than ``cfg`` (the loaded
    ``config``; e.g. a work dir left by an older demo schedule): mmengine
    would load it and stop at once, or go on under the new schedule without
    a word."""
    max_iters = cfg.train_cfg.max_iters
    last = Path(last_checkpoint_record(work_dir))
    reached = re.fullmatch(r'iter_(\d+)', last.stem)
    # the config the run was started with (mmengine dumps it there)
    dumped = Path(work_dir) / Path(config).name
    if reached and int(reached[1]) >= max_iters:
        why = f'it reached iteration {int(reached[1])} ({last.name})'
    elif dumped.is_file() and _schedule(load_config(dumped)) != _schedule(cfg):
        why = f'{dumped.name} there has other max_iters / param_scheduler'
    else:
        return
    raise RuntimeError(
        f'{work_dir} holds a run of another schedule than this one '
        f'({max_iters} iterations): {why}. Delete {work_dir} (or use '
        'another --work-dir) and run again.')


def _final_validation(work_dir, max_iters):
    """The metrics (keys with a ``/``, e.g. ``coco/bbox_mAP``) of the
    training loop's validation at ``max_iters``, or ``None``."""
    for record in reversed(read_records(work_dir)):
        if record.get('step') == max_iters and any('/' in k for k in record):
            return {k: v for k, v in record.items() if '/' in k}
    return None


def recorded_metrics(metrics_json, ckpt):
    """The metrics that ``metrics_json`` (:func:`write_metrics_json`'s
    format) holds for ``ckpt`` itself, evaluated after it was written; else
    ``None``."""
    path = Path(metrics_json)
    if not path.is_file() or \
            path.stat().st_mtime < Path(ckpt).stat().st_mtime:
        return None
    record = json.loads(path.read_text())
    return (record.get('metrics')
            if record.get('checkpoint') == os.path.abspath(ckpt) else None)


def train_and_evaluate(config, work_dir, data_fn, cfg_options=None):
    """Train ``config`` into ``work_dir`` (resuming if interrupted, skipping
    if already finished), then evaluate the final checkpoint: a run trained
    here takes the metrics of its loop's last validation (the same weights,
    evaluated once), a finished one those its ``metrics.json`` recorded for
    that very checkpoint, any other is evaluated by ``apis.test``; each
    writes ``metrics.json``. Returns ``dict(checkpoint, metrics (dict),
    metrics_json (path), train_s, test_s (seconds, 0 when skipped),
    max_iters, work_dir)``."""
    data_fn()
    cfg = load_config(config, cfg_options)
    max_iters = cfg.train_cfg.max_iters
    work_dir = Path(work_dir)
    ckpt = work_dir / f'iter_{max_iters}.pth'
    train_s = 0.0
    if not ckpt.is_file():
        resume = last_checkpoint_record(work_dir) is not None
        if resume:
            _check_resumable(work_dir, config, cfg)
        log(f'training {Path(config).name} for {max_iters} iterations '
            f'into {work_dir}' + (' (resuming)' if resume else ''))
        t0 = time.time()
        apis.train(str(config), work_dir=str(work_dir), resume=resume,
                   cfg_options=cfg_options)
        train_s = time.time() - t0
        if not ckpt.is_file():
            raise RuntimeError(f'training finished without {ckpt}')
    else:
        log(f'{ckpt} exists: skipping training (delete {work_dir} to '
            'retrain)')
    metrics_json = work_dir / 'metrics.json'
    t0 = time.time()
    metrics = (_final_validation(work_dir, max_iters) if train_s else
               recorded_metrics(metrics_json, ckpt))
    if metrics is None:
        metrics = apis.test(str(config), str(ckpt), work_dir=str(work_dir),
                            metrics_json=str(metrics_json),
                            cfg_options=cfg_options)
    else:
        write_metrics_json(str(metrics_json), metrics, str(config), str(ckpt))
    return dict(checkpoint=str(ckpt), metrics=metrics,
                metrics_json=str(metrics_json), train_s=train_s,
                test_s=time.time() - t0, max_iters=max_iters,
                work_dir=str(work_dir))


def train_model(model, work_dir, det_data, cls_data, options,
                dirs=('pretrain_cls', 'det')):
    """Pre-train ``model``'s backbone, then train and evaluate its
    detector from it, in ``work_dir/<model.slug>/<dirs>``; ``options =
    dict(pretrain=..., det=...)`` are the ``cfg_options`` of each
    (:func:`run_options`). Returns ``dict(pretrain=..., det=...)`` of
    :func:`train_and_evaluate`."""
    work_dir = Path(work_dir) / model.slug
    pre = train_and_evaluate(model.pretrain, work_dir / dirs[0],
                             cls_data, options['pretrain'])
    det_options = {**options['det'],
                   'model.backbone.init_cfg.checkpoint': pre['checkpoint']}
    det = train_and_evaluate(model.det, work_dir / dirs[1], det_data,
                             det_options)
    return dict(pretrain=pre, det=det)


def benchmark_detectors(models, trained, out_dir, rounds=30, threads=2):
    """Interleaved FPS of the trained detectors, each with its own weights,
    on the val images at its config's score threshold, in the deploy form
    (BN fused, G-Ghost op-lean); the plot has one point per model (mAP
    from its own metrics file)."""
    out_dir = Path(out_dir)
    dets = [trained[m.name]['det'] for m in models]
    return run_benchmark(
        [str(m.det) for m in models], names=[m.name for m in models],
        checkpoints=[d['checkpoint'] for d in dets],
        eval_results=[d['metrics_json'] for d in dets],
        data=True, threads=threads, rounds=rounds, warmup=3, deploy=True,
        metric_key=MAP_KEY, out_dir=str(out_dir),
        plot=str(out_dir / 'map_vs_fps.png'))


def visualise(model, checkpoint, image, out_dir):
    """Boxes of a trained demo detector on ``image``, drawn by mmdet's own
    ``DetInferencer`` (what a user runs); returns the written file."""
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=str(model.det), weights=str(checkpoint),
                               device='cpu', show_progress=False)
    inferencer(str(image), out_dir=str(out_dir), no_save_pred=True)
    return Path(out_dir) / 'vis' / Path(image).name


def example_image(root, min_objects=3):
    """The first val image of the detection set with at least
    ``min_objects`` annotated shapes (the one the demo draws)."""
    coco = json.loads((Path(root) / 'annotations/instances_val2017.json')
                      .read_text())
    counts = Counter(ann['image_id'] for ann in coco['annotations'])
    image = next(i for i in coco['images'] if counts[i['id']] >= min_objects)
    return Path(root) / 'val2017' / image['file_name']


MAP_KEY, TOP1_KEY = 'coco/bbox_mAP', 'accuracy/top1'


def mean(values):
    return sum(values) / len(values)


def _curve(run, key):
    curve = read_curve(run['work_dir'], key)
    try:
        status = curve_status(curve, run['max_iters'], key)
    except ValueError:  # a run validated too rarely to tell
        status = dict(final=None, at_3q=None, gain=None, flat=None)
    return dict(curve=curve, **status)


def model_record(model, runs):
    """The ``summary.json`` entry of ``model`` over ``runs`` (``{seed:
    {model name: train_model() result}}``): accuracy per seed and mean,
    iterations, and each curve's last-quarter gain and flatness
    (:func:`mmdet_gghost.analysis.curves.curve_status`)."""
    seeds = list(runs)
    det = [runs[s][model.name]['det'] for s in seeds]
    pre = [runs[s][model.name]['pretrain'] for s in seeds]
    curves = dict(det=[_curve(r, MAP_KEY) for r in det],
                  pretrain=[_curve(r, TOP1_KEY) for r in pre])
    backbone = load_config(model.det).model.backbone
    # mix: True / False for G-Ghost with / without it, None for a ResNet
    mix = (bool(backbone.get('mix', True))
           if tuple(backbone.get('gghost_stages', (0, ))) else None)
    record = dict(name=model.name, mix=mix, seeds=seeds,
                  det_iters=det[0]['max_iters'],
                  pretrain_iters=pre[0]['max_iters'])
    for key, col in ((MAP_KEY, 'mAP'), ('coco/bbox_mAP_50', 'AP50'),
                     ('coco/bbox_mAP_75', 'AP75')):
        record[col] = [r['metrics'][key] for r in det]
        record[col + '_mean'] = mean(record[col])
    record['mAP_spread'] = max(record['mAP']) - min(record['mAP'])
    record['pretrain_top1'] = [r['metrics'].get(TOP1_KEY) for r in pre]
    for part, part_curves in curves.items():
        record[part + '_curve'] = [c['curve'] for c in part_curves]
        record[part + '_last_quarter_gain'] = [c['gain'] for c in part_curves]
    record['flat'] = all(c['flat'] for cs in curves.values() for c in cs)
    record['train_s'] = [r['train_s'] for r in pre + det]
    return record


def summary_rows(records, bench):
    """One Markdown row per model: complexity and FPS from the benchmark,
    accuracy (mean over seeds) from the models' own metrics files."""
    by_name = {r['name']: r for r in bench['rows']}
    ref = records[0]['mAP_mean']
    rows = []
    for rec in records:
        b = by_name[rec['name']]
        rows.append(' | '.join([
            rec['name'], format_count(b['params']), format_count(b['macs']),
            format_count(b['activations']),
            *(f"{rec[k + '_mean']:.3f}" for k in ('mAP', 'AP50', 'AP75')),
            f"{b['fps']:.1f}", f"{b['fps_ratio']:.2f}",
            f"{rec['mAP_mean'] - ref:+.3f}"]))
    return rows


def shown(models):
    """The model whose detections the demo draws: the first one compared
    with the reference (G-Ghost-R34 in the demo), or the only one."""
    return models[min(1, len(models) - 1)]


def _fmt(value, spec):
    return '—' if value is None else format(value, spec)


def curve_rows(records):
    """Per model and seed: where each run stopped on its curves."""
    return [' | '.join([
        rec['name'], 'config' if seed is None else str(seed),
        _fmt(rec['pretrain_top1'][i], '.1f') + '%',
        _fmt(rec['pretrain_last_quarter_gain'][i], '+.1f'),
        f"{rec['mAP'][i]:.3f}", f"{rec['AP50'][i]:.3f}",
        _fmt(rec['det_last_quarter_gain'][i], '+.3f')])
        for rec in records for i, seed in enumerate(rec['seeds'])]


def training_device(jobs=1):
    """Where this process's trainings run (mmengine takes CUDA when
    there is one), and how many side by side."""
    where = (f'CUDA ({torch.cuda.get_device_name(0)})'
             if torch.cuda.is_available() else
             f'CPU ({os.cpu_count()} cores)')
    return where + (f', {jobs} trainings side by side' if jobs > 1 else '')


def _trained_here(runs):
    """Whether any of ``runs`` (:func:`train_models`) trained in this
    call (not only found its checkpoints)."""
    return any(run[part]['train_s'] for by_model in runs.values()
               for run in by_model.values() for part in ('pretrain', 'det'))


def curve_lines(records):
    """The Markdown on where each run of ``records`` stopped on its curves
    and which models are flat by the rule."""
    flat = [r['name'] for r in records if r['flat']]
    return [
        '', 'Where each run stopped on its learning curve (`curves.png`): '
        '"last quarter" = the final value minus the value at 3/4 of the '
        'schedule; a curve counts as flat when its last quarter adds less '
        f"than {FLAT_GAIN[MAP_KEY]} mAP (detector) and "
        f"{FLAT_GAIN[TOP1_KEY]:.0f} point top-1 (pre-training).", '',
        '| model | seed | pre-training top-1 | its last quarter | mAP | AP50 '
        '| its last quarter |', '|---|---|---|---|---|---|---|',
    ] + [f'| {row} |' for row in curve_rows(records)] + [
        '', 'Flat by this rule: ' + (', '.join(flat) if flat else
                                     'none (still learning)') + '.']


def write_summary(work_dir, records, bench, vis=None, cls=None,
                  elapsed_s=None, merged=(), trained_on=None):
    """``summary.md`` (the paper's table in miniature, the curves' state)
    and ``summary.json`` (``records``); ``merged``: ``[(summary.json,
    seeds)]`` joined from earlier runs; ``trained_on``: where this run's
    trainings ran (:func:`training_device`). Returns the Markdown path."""
    from mmengine.fileio import dump
    work_dir = Path(work_dir)
    header = ('model | params | MACs | activations | mAP | AP50 | AP75 | '
              'FPS | FPS ratio vs {0} | mAP vs {0}').format(records[0]['name'])
    seeds = records[0]['seeds']
    lines = [
        '# mmdet-gghost demo: mAP vs FPS', '',
        'Each detector: RetinaNet with the demo head on `data/demo_det`, its '
        'backbone first pre-trained as a classifier on `data/demo_cls`; one '
        'recipe for all, only the backbone differs '
        f"({records[0]['pretrain_iters']} pre-training and "
        f"{records[0]['det_iters']} detector iterations; seeds {seeds}"
        + (', accuracy = mean over seeds' if len(seeds) > 1 else '') + '). '
        "mAP: mmdet's CocoMetric on the val split; FPS: tools/benchmark.py "
        'with the same weights on the val images (full inference incl. NMS, '
        'deploy form: BN fused, G-Ghost op-lean; interleaved, medians); '
        'params/MACs/activations: the whole detector at the timed input.',
        *([f'Trained on {trained_on}.'] if trained_on else []),
        *(f'Seed(s) {joined} from `{path}` (an earlier run of the same '
          'schedule: its accuracy and curves; FPS is this run\'s).'
          for path, joined in merged),
        '',
        '| ' + header + ' |', '|' + '---|' * len(header.split(' | ')),
    ] + [f'| {row} |' for row in summary_rows(records, bench)]
    lines += curve_lines(records)
    for key, label in (('plot', 'Plot'), ('md', 'Benchmark report')):
        if bench['paths'].get(key):
            lines += ['', f"{label}: `{bench['paths'][key]}`"]
    lines += ['', f"Learning curves: `{work_dir / 'curves.png'}`"]
    if vis:
        lines += ['', f"Detections of {shown(records)['name']} "
                  '(DetInferencer): '
                  f'`{vis}`']
    if cls:
        lines += ['', f"Classification demo: G-Ghost-R34 val top-1 "
                  f"{cls['metrics'].get(TOP1_KEY, 0):.2f}% "
                  f"(train {cls['train_s']:.0f} s)."]
    if elapsed_s is not None:
        lines += ['', f'Total wall time: {elapsed_s / 60:.1f} min.']
    by_name = {r['name']: r for r in bench['rows']}
    for rec in records:  # the timed speed beside the accuracy
        rec.update({k: by_name[rec['name']][k] for k in ('fps', 'fps_ratio')})
    dump(records, str(work_dir / 'summary.json'), indent=1)
    path = work_dir / 'summary.md'
    path.write_text('\n'.join(lines) + '\n')
    return path


def plot_learning_curves(records, path):
    """``curves.png``: detector mAP and pre-training top-1 vs iteration,
    one line per model and seed; returns the matplotlib figure."""

    def panel(key):
        return {(r['name'] if len(r['seeds']) == 1 else
                 f"{r['name']} seed {seed}"): curve
                for r in records
                for seed, curve in zip(r['seeds'], r[key])}
    return plot_curves([('detector bbox mAP (val)', panel('det_curve')),
                        ('pre-training top-1 % (val)',
                         panel('pretrain_curve'))], path)


def data_fn(make, root):
    """A ``data_fn`` for :func:`train_and_evaluate`: ``make(root)``, logged
    (it returns at once when the data set is already there)."""
    return lambda: log(make(root)['message'])


# summary.json keys holding one value per seed (joined by merge_records)
PER_SEED_KEYS = ('seeds', 'mAP', 'AP50', 'AP75', 'pretrain_top1', 'det_curve',
                 'det_last_quarter_gain', 'pretrain_curve',
                 'pretrain_last_quarter_gain', 'train_s')


class SummaryMergeError(ValueError):
    """An earlier run's ``summary.json`` cannot join this run's seeds."""


def read_summary(path, names, seeds, iters):
    """The records of an earlier demo run's ``summary.json`` at ``path``,
    checked to hold every model of ``names``, none of ``seeds`` and the
    schedule ``iters`` (``dict(det=N, pretrain=M)`` iterations)."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
        by_name = {r['name']: r for r in records}
        earlier = {s for r in records for s in r['seeds']}
        other = {(r[f'{part}_iters'], part, n) for n, r in by_name.items()
                 for part in iters if r[f'{part}_iters'] != iters[part]}
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise SummaryMergeError(
            f'{path} is not a demo summary.json ({err!r}); pass the '
            'summary.json that tools/demo.py wrote') from None
    missing = [n for n in names if n not in by_name]
    both = sorted(earlier & set(seeds), key=str)
    if missing:
        why = (f'it has no {", ".join(missing)} (it holds '
               f'{", ".join(by_name)}); run the same models')
    elif both:
        why = f'seed(s) {both} are in both; give this run other --seeds'
    elif other:
        got, part, name = min(other)
        why = (f'{name} trained {got} {part} iterations there, '
               f'{iters[part]} here; only runs of one schedule join (the '
               'same --paper / --paper-scale)')
    else:
        return [by_name[n] for n in names]
    raise SummaryMergeError(f'{path} cannot join this run: {why}')


def merge_records(earlier, records):
    """``records`` with the seeds of ``earlier`` (the same models' records,
    :func:`read_summary`) put first: per-seed values joined, means, spread
    and flatness over all seeds."""
    merged = []
    for old, rec in zip(earlier, records):
        new = dict(rec, **{k: old[k] + rec[k] for k in PER_SEED_KEYS},
                   flat=bool(old['flat'] and rec['flat']))
        for col in ('mAP', 'AP50', 'AP75'):
            new[col + '_mean'] = mean(new[col])
        new['mAP_spread'] = max(new['mAP']) - min(new['mAP'])
        merged.append(new)
    return merged


def demo_options(model, paper, seed=None, paper_scale=None):
    """``dict(pretrain=..., det=...)``: the :func:`run_options` of every
    model's trainings (``model``'s configs; with ``paper``, ``paper_scale``
    times longer, default :data:`PAPER_SCALE`)."""
    scale = paper_scale or PAPER_SCALE
    return {part: run_options(
        getattr(model, part), scale[part] if paper else 1,
        PAPER_POINTS if paper else DEMO_POINTS, seed,
        PAPER_MILESTONES.get(part) if paper else None)
        for part in ('pretrain', 'det')}


def _no_data():
    """The data sets are made before the jobs start."""


def _train_job(job):
    """One (model, seed) of :func:`train_models` in a job process."""
    model, root, options = job
    return train_model(model, root, _no_data, _no_data, options)


def train_models(models, work_dir, seeds, paper, det_data, cls_data,
                 paper_scale=None, jobs=1):
    """Check the recipe, then train every model for every seed (with
    ``paper``, ``paper_scale`` times longer: default :data:`PAPER_SCALE`,
    the same keys), ``jobs`` trainings side by side, each in its own
    process (:func:`~mmdet_gghost.apps.jobs.run_jobs`; 1: one after the
    other here); returns ``{seed: {model name: train_model() result}}``.
    The configs' own seed (``None``) trains in ``work_dir`` itself, a given
    seed ``N`` in ``work_dir/seed<N>`` (so ``--seeds 0`` and a later
    ``--seeds 0 1`` share the seed-0 runs)."""
    planned = []
    for seed in seeds:
        options = demo_options(models[0], paper, seed, paper_scale)
        # against the reference R34 too when it is not among them: what
        # trains here joins R34's runs of other calls (--merge)
        checked = tuple(dict.fromkeys(DEMO_MODELS[:1] + tuple(models)))
        check_same_recipe([m.pretrain for m in checked], options['pretrain'])
        check_same_recipe([m.det for m in checked], options['det'])
        root = Path(work_dir) / ('' if seed is None else f'seed{seed}')
        planned += [(seed, (m, root, options)) for m in models]
    if jobs > 1:
        for make in (det_data, cls_data):
            if make:
                make()
        results = run_jobs(
            _train_job, [job for _, job in planned], jobs,
            labels=[f'{job[0].name} seed {seed}' for seed, job in planned])
    else:
        results = [train_model(m, root, det_data, cls_data, options)
                   for _, (m, root, options) in planned]
    runs = {seed: {} for seed in seeds}
    for (seed, (model, _, _)), result in zip(planned, results):
        runs[seed][model.name] = result
    return runs


def read_summaries(paths, models, seeds, paper, paper_scale):
    """``[(path, records)]`` of earlier runs to join (:func:`read_summary`,
    checked before anything trains), each against this run's models, seeds
    and schedule."""
    options = demo_options(models[0], paper, paper_scale=paper_scale)
    iters = {part: load_config(getattr(models[0], part), opts)
             .train_cfg.max_iters for part, opts in options.items()}
    names, seen, earlier = [m.name for m in models], list(seeds), []
    for path in paths:  # a seed counts once: here or in one earlier run
        earlier.append((path, read_summary(path, names, seen, iters)))
        seen += earlier[-1][1][0]['seeds']
    return earlier


def select_models(paper, names=None):
    """The demo's models (:data:`PAPER_MODELS` with ``paper``, else
    :data:`DEMO_MODELS`), or those named in ``names``, in that order; the
    first is the reference of the ratios (R34 when named). A part of the
    models trains e.g. what a session has time for, to join the runs of
    the others later (:func:`join_summaries`).

    Raises:
        ValueError: an unknown or repeated name.
    """
    models = PAPER_MODELS if paper else DEMO_MODELS
    if names is None:
        return models
    known = [m.name for m in models]
    unknown = [n for n in names if n not in known]
    if unknown or len(set(names)) < len(names):
        raise ValueError(
            f'--models {" ".join(names)}: choose from '
            f'{", ".join(repr(n) for n in known)}, each once (the first in '
            'this order is the reference every ratio is relative to)'
            + (f'; unknown: {unknown}' if unknown else '')
            + ('' if paper else ' (the other paper models need --paper)'))
    return tuple(m for m in models if m.name in names)


def run_demo(work_dir='work_dirs/demo', parts=('det', 'cls'), paper=False,
             seeds=(None, ), bench_rounds=30, paper_scale=None, merge=(),
             model_names=None, jobs=1):
    """Run the demo; returns a dict of what each part produced. ``seeds``:
    ``None`` = the configs' own seed; ``paper_scale``: see
    :func:`train_models`; ``merge``: ``summary.json`` files of earlier runs
    of other seeds whose accuracy and curves join this run's;
    ``model_names``: a subset of the models (:func:`select_models`);
    ``jobs``: trainings side by side (:func:`train_models`)."""
    t0 = time.time()
    work_dir = Path(work_dir)
    result = {}
    models = select_models(paper, model_names)
    earlier = (read_summaries(merge, models, seeds, paper, paper_scale)
               if 'det' in parts else [])
    work_dir.mkdir(parents=True, exist_ok=True)
    cls_data = data_fn(make_classification_dataset, 'data/demo_cls')
    det_data = data_fn(make_detection_dataset, 'data/demo_det')
    if 'det' in parts:
        runs = train_models(models, work_dir, list(seeds), paper, det_data,
                            cls_data, paper_scale, jobs)
        trained = runs[list(seeds)[0]]
        records = [model_record(m, runs) for m in models]
        for _, old in earlier:
            records = merge_records(old, records)
        plot_learning_curves(records, work_dir / 'curves.png')
        log('timing the trained detectors (interleaved, deploy form)')
        bench = benchmark_detectors(models, trained, work_dir / 'benchmark',
                                    rounds=bench_rounds)
        gghost = trained[shown(models).name]['det']['checkpoint']
        vis = visualise(shown(models), gghost, example_image('data/demo_det'),
                        work_dir)
        result.update(models=models, runs=runs, trained=trained,
                      records=records, bench=bench, vis=vis,
                      merged=[(p, old[0]['seeds']) for p, old in earlier])
    if 'cls' in parts:
        result['cls'] = train_and_evaluate(CLS_CONFIG, work_dir / 'cls',
                                           cls_data)
    if 'det' in parts:
        result['summary'] = write_summary(
            work_dir, result['records'], result['bench'], result['vis'],
            result.get('cls'), time.time() - t0, result['merged'],
            training_device(jobs) if _trained_here(result['runs']) else None)
        log('=' * 60)
        for line in result['summary'].read_text().splitlines():
            if line.startswith(('|', 'Total')):
                log(line)
        log(f"summary: {result['summary']}")
    else:
        log(f"classifier demo: val top-1 "
            f"{result['cls']['metrics'].get(TOP1_KEY, 0):.2f}% "
            f"(metrics: {result['cls']['metrics_json']})")
    return result
