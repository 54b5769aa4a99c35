"""``make demo``: the paper's mAP-vs-FPS trade-off in miniature.

Every model pre-trains its backbone on ``data/demo_cls``, trains RetinaNet
from it on ``data/demo_det`` (resuming / skipping as needed) and is
evaluated, timed and written to ``summary.md``; the models differ in their
backbone only.  ``tools/demo.py`` is the CLI.
"""
import json
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIGS = REPO / 'configs/demo'
CLS_CONFIG = DEMO_CONFIGS / 'gghost_r34_cls_demo.py'


class DemoModel(NamedTuple):
    """One point of the trade-off: a backbone under the demo recipe."""
    name: str  # row / plot label
    slug: str  # work sub-directory
    pretrain: Path  # classifier pre-training config
    det: Path  # detector config


def _model(name, slug, pretrain, det):
    return DemoModel(name, slug, DEMO_CONFIGS / pretrain, DEMO_CONFIGS / det)


# The reference first: FPS ratios and mAP differences are relative to it.
DEMO_MODELS = (
    _model('R34', 'r34', 'r34_cls_pretrain.py', 'retinanet_r34_demo.py'),
    _model('G-Ghost-R34', 'gghost_r34', 'gghost_r34_cls_pretrain.py',
           'retinanet_gghost_r34_demo.py'),
)
PAPER_MODELS = DEMO_MODELS + (
    _model('R34-0.8x', 'r34-0.8x', 'r34-0.8x_cls_pretrain.py',
           'retinanet_r34-0.8x_demo.py'),
    _model('G-Ghost-R34 w/o mix', 'gghost_r34_nomix',
           'gghost_r34_nomix_cls_pretrain.py',
           'retinanet_gghost_r34_nomix_demo.py'),
)
# Config keys that may differ between the models of one demo: the backbone
# itself, the widths that follow from it, and where its weights come from.
BACKBONE_KEYS = ('model.backbone', 'model.neck.in_channels',
                 'model.head.in_channels', 'pretrained', 'work_dir')


def _log(msg):
    print(f'[demo] {msg}', flush=True)


class RecipeMismatchError(ValueError):
    """Two demo models would be trained under different recipes."""


def _flatten(obj, prefix=''):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f'{prefix}{k}.'))
        return out
    return {prefix[:-1]: obj}


def recipe_of(config, cfg_options=None):
    """A config as ``{dotted key: value}`` without :data:`BACKBONE_KEYS`:
    what must be identical for every model of the demo."""
    from .apis.build import load_config
    flat = _flatten(load_config(config, cfg_options).to_dict())
    return {k: v for k, v in flat.items()
            if not any(k == b or k.startswith(b + '.') for b in BACKBONE_KEYS)}


def check_same_recipe(configs, cfg_options=None):
    """Raise :class:`RecipeMismatchError` unless every config has the
    first one's recipe (:func:`recipe_of`); ``cfg_options`` apply to all."""
    ref = recipe_of(configs[0], cfg_options)
    for config in configs[1:]:
        other = recipe_of(config, cfg_options)
        diff = sorted(k for k in ref.keys() | other.keys()
                      if ref.get(k, '<unset>') != other.get(k, '<unset>'))
        if diff:
            shown = ', '.join(f'{k}: {ref.get(k, "<unset>")!r} vs '
                              f'{other.get(k, "<unset>")!r}'
                              for k in diff[:5])
            raise RecipeMismatchError(
                f'{Path(config).name} is not trained like '
                f'{Path(configs[0]).name}: {len(diff)} setting(s) other than '
                f'the backbone differ ({shown}). The demo compares backbones '
                'only: make the configs differ in model.backbone alone.')


def _final_checkpoint(work_dir, max_iters):
    ckpt = Path(work_dir) / f'iter_{max_iters}.pth'
    return ckpt if ckpt.is_file() else None


def _check_resumable(work_dir, max_iters):
    """Refuse to resume a run of another length (e.g. a work dir left by an
    older demo schedule): mmengine would load it and stop at once."""
    last = Path((Path(work_dir) / 'last_checkpoint').read_text().strip())
    stem = last.stem
    if stem.startswith('iter_') and stem[5:].isdigit() and \
            int(stem[5:]) >= max_iters:
        raise RuntimeError(
            f'{work_dir} holds a run that reached iteration {stem[5:]} '
            f'({last.name}) but no iter_{max_iters}.pth: it was trained with '
            f'another schedule. Delete {work_dir} (or use another '
            '--work-dir) and run again.')


def train_and_evaluate(config, work_dir, data_fn, cfg_options=None):
    """Train ``config`` into ``work_dir`` (resuming if interrupted, skipping
    if already finished), then evaluate the final checkpoint.

    Returns:
        dict: ``checkpoint``, ``metrics`` (dict), ``metrics_json`` (path),
        ``train_s`` and ``test_s`` (seconds, 0 when skipped).
    """
    from . import apis
    from .apis.build import load_config

    data_fn()
    max_iters = load_config(config, cfg_options).train_cfg.max_iters
    work_dir = Path(work_dir)
    ckpt = _final_checkpoint(work_dir, max_iters)
    train_s = 0.0
    if ckpt is None:
        resume = (work_dir / 'last_checkpoint').is_file()
        if resume:
            _check_resumable(work_dir, max_iters)
        _log(f'training {Path(config).name} for {max_iters} iterations '
             f'into {work_dir}' + (' (resuming)' if resume else ''))
        t0 = time.time()
        apis.train(str(config), work_dir=str(work_dir), resume=resume,
                   cfg_options=cfg_options)
        train_s = time.time() - t0
        ckpt = _final_checkpoint(work_dir, max_iters)
        if ckpt is None:
            raise RuntimeError(f'training finished without {work_dir}/'
                               f'iter_{max_iters}.pth')
    else:
        _log(f'{ckpt} exists: skipping training (delete {work_dir} to '
             'retrain)')
    metrics_json = work_dir / 'metrics.json'
    t0 = time.time()
    metrics = apis.test(str(config), str(ckpt), work_dir=str(work_dir),
                        metrics_json=str(metrics_json),
                        cfg_options=cfg_options)
    return dict(checkpoint=str(ckpt), metrics=metrics,
                metrics_json=str(metrics_json), train_s=train_s,
                test_s=time.time() - t0)


def train_model(model, work_dir, det_data, cls_data, seed=None):
    """Pre-train ``model``'s backbone, then train and evaluate its
    detector from it; returns ``dict(pretrain=..., det=...)``."""
    seed_opt = {} if seed is None else {'randomness.seed': seed}
    work_dir = Path(work_dir) / model.slug
    pre = train_and_evaluate(model.pretrain, work_dir / 'pretrain_cls',
                             cls_data, seed_opt or None)
    det_options = {'model.backbone.init_cfg.checkpoint': pre['checkpoint'],
                   **seed_opt}
    det = train_and_evaluate(model.det, work_dir / 'det', det_data,
                             det_options)
    return dict(pretrain=pre, det=det)


def benchmark_detectors(models, trained, out_dir, rounds=30, threads=2):
    """Interleaved FPS of the trained detectors, each with its own weights,
    on the val images at its config's score threshold, BN fused; the plot
    has one point per model (mAP from its own metrics file)."""
    from .benchmark import run_benchmark
    out_dir = Path(out_dir)
    return run_benchmark(
        [str(m.det) for m in models],
        checkpoints=[trained[m.name]['det']['checkpoint'] for m in models],
        names=[m.name for m in models],
        data=True, threads=threads, rounds=rounds, warmup=3,
        fuse_conv_bn=True,
        eval_results=[trained[m.name]['det']['metrics_json']
                      for m in models],
        metric_key='coco/bbox_mAP', out_dir=str(out_dir),
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
    image = next(i for i in coco['images']
                 if counts.get(i['id'], 0) >= min_objects)
    return Path(root) / 'val2017' / image['file_name']


# Measured once (2026-12-02, 2 threads, `--only det --seed 1` vs seed 0).
SEED_NOTE = ('Run-to-run spread at this scale (measured once, with the '
             'earlier cosine schedule; same recipe otherwise, seed 1 instead '
             'of 0, `python tools/demo.py --seed 1`): R34 mAP 0.475 vs 0.424 '
             '(AP50 0.711 vs 0.648), G-Ghost-R34 0.261 vs 0.288 (AP50 0.461 '
             'vs 0.473); the same seed on 1 thread instead of 2 moved mAP by '
             'up to 0.04. Differences of a few 0.01 mAP between models are '
             'noise here; the G-Ghost-R34 gap (-0.14 and -0.21) is not.')

_ROW_COLUMNS = ('model | params | MACs | activations | mAP | AP50 | AP75 | '
                'FPS | FPS ratio vs {ref} | mAP vs {ref}')


def summary_rows(models, trained, bench):
    """One Markdown row per model: complexity and FPS from the benchmark,
    accuracy from the model's own metrics file."""
    from .analysis import format_count
    map_keys = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75')
    by_name = {r['name']: r for r in bench['rows']}
    ref = trained[models[0].name]['det']['metrics']
    rows = []
    for m in models:
        metrics, b = trained[m.name]['det']['metrics'], by_name[m.name]
        diff = metrics['coco/bbox_mAP'] - ref['coco/bbox_mAP']
        rows.append(' | '.join([
            m.name, format_count(b['params']), format_count(b['macs']),
            format_count(b['activations']),
            *(f'{metrics[k]:.3f}' for k in map_keys), f"{b['fps']:.1f}",
            f"{b['fps_ratio']:.2f}", f'{diff:+.3f}']))
    return rows


def write_summary(work_dir, models, trained, bench, vis=None, cls=None,
                  elapsed_s=None):
    """``summary.md``: the paper's table in miniature; returns its path."""
    from .apis.build import load_config
    header = _ROW_COLUMNS.format(ref=models[0].name)
    size = 'x'.join(map(str, load_config(models[0].det).image_size))
    lines = [
        '# mmdet-gghost demo: mAP vs FPS', '',
        'Each detector: RetinaNet with the demo head on `data/demo_det` '
        f'(resized to {size}), its backbone first pre-trained as a '
        'classifier on `data/demo_cls`; one recipe for all, only the '
        'backbone differs. '
        "mAP: mmdet's CocoMetric on the val split; FPS: tools/benchmark.py "
        'with the same weights on the val images (full inference incl. NMS, '
        'BN fused, interleaved, medians); params/MACs/activations: the '
        'whole detector at the timed input.', '',
        '| ' + header + ' |', '|' + '---|' * len(header.split(' | ')),
    ] + [f'| {row} |' for row in summary_rows(models, trained, bench)]
    lines += ['', SEED_NOTE, '', '| model | pre-training top-1 | '
              'pre-training s | detector training s |', '|---|---|---|---|']
    for m in models:
        t = trained[m.name]
        lines.append(
            f"| {m.name} | "
            f"{t['pretrain']['metrics'].get('accuracy/top1', 0):.1f}% | "
            f"{t['pretrain']['train_s']:.0f} | {t['det']['train_s']:.0f} |")
    for key, label in (('plot', 'Plot'), ('md', 'Benchmark report')):
        if bench['paths'].get(key):
            lines += ['', f"{label}: `{bench['paths'][key]}`"]
    if vis:
        lines += ['', f'Detections of {models[1].name} (DetInferencer): '
                  f'`{vis}`']
    if cls:
        lines += ['', f"Classification demo: G-Ghost-R34 val top-1 "
                  f"{cls['metrics'].get('accuracy/top1', 0):.2f}% "
                  f"(train {cls['train_s']:.0f} s)."]
    if elapsed_s is not None:
        lines += ['', f'Total wall time: {elapsed_s / 60:.1f} min.']
    path = Path(work_dir) / 'summary.md'
    path.write_text('\n'.join(lines) + '\n')
    return path


def _data_fn(make, root):
    """A ``data_fn`` for :func:`train_and_evaluate`: ``make(root)``, logged
    (it returns at once when the data set is already there)."""
    return lambda: _log(make(root)['message'])


def run_demo(work_dir='work_dirs/demo', parts=('det', 'cls'), paper=False,
             seed=None, bench_rounds=30):
    """Run the demo; returns a dict of what each part produced."""
    from .datasets import make_classification_dataset, make_detection_dataset
    t0 = time.time()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    result = {}
    cls_data = _data_fn(make_classification_dataset, 'data/demo_cls')
    det_data = _data_fn(make_detection_dataset, 'data/demo_det')
    if 'det' in parts:
        models = PAPER_MODELS if paper else DEMO_MODELS
        check_same_recipe([m.pretrain for m in models])
        check_same_recipe([m.det for m in models])
        trained = {m.name: train_model(m, work_dir, det_data, cls_data, seed)
                   for m in models}
        _log('timing the trained detectors (interleaved, BN fused)')
        bench = benchmark_detectors(models, trained, work_dir / 'benchmark',
                                    rounds=bench_rounds)
        gghost = trained[models[1].name]['det']['checkpoint']
        vis = visualise(models[1], gghost, example_image('data/demo_det'),
                        work_dir)
        result.update(models=models, trained=trained, bench=bench, vis=vis)
    if 'cls' in parts:
        result['cls'] = train_and_evaluate(CLS_CONFIG, work_dir / 'cls',
                                           cls_data)
    if 'det' in parts:
        result['summary'] = write_summary(
            work_dir, result['models'], result['trained'], result['bench'],
            result['vis'], result.get('cls'), time.time() - t0)
        _log('=' * 60)
        for line in result['summary'].read_text().splitlines():
            if line.startswith('|') or line.startswith('Total'):
                _log(line)
        _log(f"summary: {result['summary']}")
    else:
        _log(f"classifier demo: val top-1 "
             f"{result['cls']['metrics'].get('accuracy/top1', 0):.2f}% "
             f"(metrics: {result['cls']['metrics_json']})")
    return result
