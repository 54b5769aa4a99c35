"""Why the mix branch costs accuracy at the demo's scale: one change at a time.

G-Ghost-R34 with and without mix (the demo's models) under the quick demo
recipe (:func:`.demo.run_options`), each :data:`VARIANTS` entry changing one
thing in the pre-training or in the detector training, for several seeds.
Each run is :func:`.demo.train_model`'s (resumed, or skipped when it is
there), so an interrupted ablation continues where it stopped.
``tools/analysis/mix_ablation.py`` is the CLI; it writes ``ablation.md`` /
``ablation.json`` (:func:`write_ablation`) into ``WORK_DIR``, the runs into
``WORK_DIR/seed<N>/<model slug>/`` (:func:`run_dirs`).
"""
import json
from pathlib import Path
from typing import Callable, NamedTuple

from mmengine.fileio import dump

from ..datasets import make_classification_dataset, make_detection_dataset
from .demo import (DEMO_POINTS, MAP_KEY, PAPER_MODELS, TOP1_KEY,
                   check_same_recipe, data_fn, log, longer_schedule, mean,
                   recorded_metrics, run_options, train_model)

ABLATION_MODELS = (PAPER_MODELS[1], PAPER_MODELS[3])  # with / without mix


def _batch(factor):
    """Batch size x ``factor`` for the same number of images: iterations and
    schedule / ``factor``, the lr unchanged."""
    return lambda cfg: {**longer_schedule(cfg, 1 / factor),
                        'train_dataloader.batch_size':
                        round(cfg.train_dataloader.batch_size * factor)}


class Variant(NamedTuple):
    """One change to the demo recipe: ``cfg -> cfg_options`` for the
    pre-training and the detector (``None``: the demo's)."""
    name: str
    what: str
    pretrain: Callable = None
    det: Callable = None


VARIANTS = (
    Variant('demo', 'the demo recipe: pre-training 200 it at batch 32, '
            'detector 640 it at batch 4'),
    Variant('det-b16', 'detector at batch 16 (160 it, same images)',
            det=_batch(4)),
    Variant('det-frozen-bn', 'detector with every backbone BN frozen '
            '(norm_eval=True, as the COCO configs)',
            det=lambda cfg: {'model.backbone.norm_eval': True}),
    Variant('det-b16-640', 'detector at batch 16 for 640 it (4x images)',
            det=lambda cfg: {'train_dataloader.batch_size': 16}),
    Variant('det-mix-norm-eval', "detector with the mix's BNs on their "
            'running statistics (mix_norm_eval=True), the rest trained',
            det=lambda cfg: {'model.backbone.mix_norm_eval': True}),
    Variant('pretrain-3x', 'pre-training 3x longer (600 it)',
            lambda cfg: longer_schedule(cfg, 3)),
    Variant('pretrain-b8', 'pre-training at batch 8 (800 it, same images)',
            _batch(1 / 4)),
)


def variant_options(variant, config, part, seed, points=DEMO_POINTS):
    """The ``cfg_options`` of one training (``part``: ``'pretrain'`` or
    ``'det'``) of ``config`` under ``variant``: the demo's, then the
    change, evaluated ``points`` times."""
    return run_options(config, points=points, seed=seed,
                       change=getattr(variant, part))


def run_variant(variant, models, seed, work_dir, det_data, cls_data):
    """Train every model under ``variant`` for ``seed`` (the recipe check
    first); returns ``{model name: train_model() result}``."""
    options = {part: variant_options(variant, getattr(models[0], part), part,
                                     seed) for part in ('pretrain', 'det')}
    for part in ('pretrain', 'det'):
        check_same_recipe([getattr(m, part) for m in models], options[part])
    root = Path(work_dir) / f'seed{seed}'
    return {m.name: train_model(m, root, det_data, cls_data, options,
                                dirs=run_dirs(variant))
            for m in models}


def run_dirs(variant):
    """``(pre-training, detector)`` folder names of ``variant``'s runs:
    variants with the demo's pre-training share its run."""
    return ('pretrain_' + (variant.name if variant.pretrain else 'demo'),
            'det_' + variant.name)


def _finished(run_dir):
    """``dict(metrics, max_iters)`` of a run whose ``metrics.json`` holds
    the metrics of an existing checkpoint (:func:`.demo.recorded_metrics`),
    else ``None``."""
    path = Path(run_dir) / 'metrics.json'
    if not path.is_file():
        return None
    ckpt = Path(json.loads(path.read_text()).get('checkpoint') or '')
    metrics = recorded_metrics(path, ckpt) if ckpt.is_file() else None
    return None if metrics is None else dict(
        metrics=metrics, max_iters=int(ckpt.stem.split('_')[-1]))


def finished_results(work_dir, variants, seeds, models):
    """What :func:`run_ablation` would return, from the finished runs
    only: a variant's seed counts when every model finished both runs."""
    results = {}
    for variant in variants:
        for seed in seeds:
            root = Path(work_dir) / f'seed{seed}'
            runs = {m.name: dict(zip(('pretrain', 'det'), (
                _finished(root / m.slug / d) for d in run_dirs(variant))))
                for m in models}
            if all(all(r.values()) for r in runs.values()):
                results.setdefault(variant.name, {})[seed] = runs
    return results


def ablation_rows(results, models):
    """``results[variant name][seed][model name]`` (train_model dicts) as
    one record per variant and model: mAP / AP50 / top-1 per seed, means."""
    rows = []
    for name, by_seed in results.items():
        seeds = list(by_seed)
        for model in models:
            runs = [by_seed[s][model.name] for s in seeds]
            rec = dict(variant=name, model=model.name, seeds=seeds)
            for key, col in ((MAP_KEY, 'mAP'), ('coco/bbox_mAP_50', 'AP50')):
                rec[col] = [r['det']['metrics'][key] for r in runs]
                rec[col + '_mean'] = mean(rec[col])
            rec['top1'] = [r['pretrain']['metrics'].get(TOP1_KEY)
                           for r in runs]
            rec['det_iters'] = runs[0]['det']['max_iters']
            rec['pretrain_iters'] = runs[0]['pretrain']['max_iters']
            rows.append(rec)
    return rows


def _seeds(values, spec):
    return ' / '.join(format(v, spec) for v in values)


def write_ablation(work_dir, rows, models):
    """``ablation.md`` (one line per variant: each model's mAP per seed and
    mean, the mix's difference) and ``ablation.json`` (``rows``)."""
    with_mix, without = (m.name for m in models)
    by = {(r['variant'], r['model']): r for r in rows}
    what = {v.name: v.what for v in VARIANTS}
    lines = ['# Mix ablation: G-Ghost-R34 with and without mix', '',
             'Each row: the quick demo recipe with one change; mAP on the '
             'demo val split per seed (and mean), pre-training top-1 per '
             'seed; "mix - no mix": difference of the means.', '',
             f'| variant | change | seeds | {with_mix} mAP | top-1 | '
             f'{without} mAP | top-1 | mix - no mix |',
             '|---|---|---|---|---|---|---|---|']
    for name in dict.fromkeys(r['variant'] for r in rows):
        a, b = by[name, with_mix], by[name, without]
        lines.append(' | '.join([
            f'| {name}', what.get(name, ''), _seeds(a['seeds'], 'd'),
            f"{_seeds(a['mAP'], '.3f')} ({a['mAP_mean']:.3f})",
            _seeds(a['top1'], '.1f'),
            f"{_seeds(b['mAP'], '.3f')} ({b['mAP_mean']:.3f})",
            _seeds(b['top1'], '.1f'),
            f"{a['mAP_mean'] - b['mAP_mean']:+.3f} |"]))
    dump(rows, str(Path(work_dir) / 'ablation.json'), indent=1)
    path = Path(work_dir) / 'ablation.md'
    path.write_text('\n'.join(lines) + '\n')
    return path


def run_ablation(work_dir, variants=VARIANTS, seeds=(0, 1),
                 models=ABLATION_MODELS, train=True):
    """Train every variant for every seed (seed-major: a stopped run leaves
    whole seeds), then write the table; ``train=False``: the table of the
    runs already finished. Returns ``ablation.md``'s path."""
    if train:
        cls_data = data_fn(make_classification_dataset, 'data/demo_cls')
        det_data = data_fn(make_detection_dataset, 'data/demo_det')
        for seed in seeds:
            for variant in variants:
                log(f'ablation {variant.name}, seed {seed}: {variant.what}')
                run_variant(variant, models, seed, work_dir, det_data,
                            cls_data)
    results = finished_results(work_dir, variants, seeds, models)
    if not results:
        raise RuntimeError(f'no finished ablation run in {work_dir}: train '
                           'first (without --report-only)')
    path = write_ablation(work_dir, ablation_rows(results, models), models)
    log(f'ablation table: {path}')
    return path
