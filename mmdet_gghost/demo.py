"""``make demo``: the project's main job on embedded synthetic data.

1. generate the synthetic shapes data sets (if missing): COCO-format
   detection and a folder-per-class classification set;
2. pre-train the G-Ghost-ResNet34 classifier briefly on the classification
   set (the toy-scale counterpart of ImageNet pre-training);
3. train RetinaNet + G-Ghost-ResNet34 from that backbone on the detection
   set (each training resumes if interrupted and is skipped if finished);
4. evaluate it with mmdet's CocoMetric (bbox mAP) into a metrics JSON;
5. benchmark FPS against the ResNet-34 baseline detector, interleaved, with
   the mAP-vs-FPS plot;
6. (optionally) train and evaluate the full G-Ghost classifier demo;
7. write ``summary.md`` and print the headline numbers.

Every step is an importable function; ``tools/demo.py`` is the CLI.
"""
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DET_CONFIG = REPO / 'configs/demo/retinanet_gghost_r34_demo.py'
DET_BASELINE_CONFIG = REPO / 'configs/demo/retinanet_r34_demo.py'
CLS_CONFIG = REPO / 'configs/demo/gghost_r34_cls_demo.py'
PRETRAIN_CONFIG = REPO / 'configs/demo/gghost_r34_cls_pretrain.py'


def _log(msg):
    print(f'[demo] {msg}', flush=True)


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
    from mmengine.config import Config

    from .apis import test as run_test
    from .apis import train as run_train

    data_fn()
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    max_iters = cfg.train_cfg.max_iters
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
        run_train(str(config), work_dir=str(work_dir), resume=resume,
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
    metrics = run_test(str(config), str(ckpt), work_dir=str(work_dir),
                       metrics_json=str(metrics_json),
                       cfg_options=cfg_options)
    return dict(checkpoint=str(ckpt), metrics=metrics,
                metrics_json=str(metrics_json), train_s=train_s,
                test_s=time.time() - t0)


def benchmark_detectors(gghost, baseline, out_dir, shape=(256, 256),
                        rounds=30, threads=2):
    """Interleaved FPS of the trained G-Ghost demo detector vs the ResNet-34
    baseline (same head), BN fused, with the mAP-vs-FPS plot."""
    from .benchmark import run_benchmark
    out_dir = Path(out_dir)
    ckpts = [baseline.get('checkpoint'), gghost['checkpoint']]
    evals = [baseline.get('metrics_json'), gghost['metrics_json']]
    return run_benchmark(
        [str(DET_BASELINE_CONFIG), str(DET_CONFIG)],
        checkpoints=ckpts,
        names=['RetinaNet-R34 (demo)', 'RetinaNet-GGhost-R34 (demo)'],
        shape=shape, threads=threads, rounds=rounds, warmup=3,
        fuse_conv_bn=True, eval_results=evals,
        metric_key='coco/bbox_mAP_50', out_dir=str(out_dir),
        plot=str(out_dir / 'map_vs_fps.png'))


def write_summary(work_dir, det, bench, baseline=None, cls=None,
                  elapsed_s=None, pretrain=None):
    """Markdown summary of the run; returns its path."""
    work_dir = Path(work_dir)
    m = det['metrics']
    lines = [
        '# mmdet-gghost demo', '',
        'RetinaNet + G-Ghost-ResNet34 trained on the embedded synthetic '
        'shapes data (`data/demo_det`, 256x256), evaluated with '
        "mmdet's CocoMetric on the val split"
        + ('; its backbone was first pre-trained as a classifier on '
           f"`data/demo_cls` for {pretrain['train_s']:.0f} s (val top-1 "
           f"{pretrain['metrics'].get('accuracy/top1', 0):.1f}%)."
           if pretrain else '.'), '',
        '| model | bbox mAP | mAP@0.5 | mAP@0.75 | train s |',
        '|---|---|---|---|---|',
        f"| RetinaNet-GGhost-R34 (demo) | {m.get('coco/bbox_mAP', 0):.3f} | "
        f"{m.get('coco/bbox_mAP_50', 0):.3f} | "
        f"{m.get('coco/bbox_mAP_75', 0):.3f} | {det['train_s']:.0f} |",
    ]
    if baseline and baseline.get('metrics'):
        b = baseline['metrics']
        lines.append(
            f"| RetinaNet-R34 (demo) | {b.get('coco/bbox_mAP', 0):.3f} | "
            f"{b.get('coco/bbox_mAP_50', 0):.3f} | "
            f"{b.get('coco/bbox_mAP_75', 0):.3f} | {baseline['train_s']:.0f} |")
    if bench:
        md = Path(bench['paths'].get('md', ''))
        lines += ['', '## Speed (tools/benchmark.py, interleaved, medians)', '']
        if md.is_file():
            lines += [md.read_text()]
        if bench['paths'].get('plot'):
            lines += ['', f"Plot: `{bench['paths']['plot']}`"]
    if cls:
        c = cls['metrics']
        lines += ['', '## Classification demo', '',
                  f"G-Ghost classifier on `data/demo_cls`: val top-1 "
                  f"{c.get('accuracy/top1', 0):.2f}% "
                  f"(train {cls['train_s']:.0f} s)."]
    if elapsed_s is not None:
        lines += ['', f'Total wall time: {elapsed_s / 60:.1f} min.']
    path = work_dir / 'summary.md'
    path.write_text('\n'.join(lines) + '\n')
    return path


def run_demo(work_dir='work_dirs/demo', parts=('det', 'cls'),
             train_baseline=False, det_iters=None, bench_rounds=30):
    """Run the demo; returns a dict of what each part produced."""
    from .datasets import make_classification_dataset, make_detection_dataset
    t0 = time.time()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    result = {}

    def cls_data():
        _log(make_classification_dataset('data/demo_cls')['message'])

    if 'det' in parts:
        def det_data():
            _log(make_detection_dataset('data/demo_det')['message'])
        result['pretrain'] = pre = train_and_evaluate(
            PRETRAIN_CONFIG, work_dir / 'pretrain_cls', cls_data)
        det_options = dict(_iters_options(DET_CONFIG, det_iters) or {})
        det_options['model.backbone.init_cfg.checkpoint'] = pre['checkpoint']
        result['det'] = det = train_and_evaluate(
            DET_CONFIG, work_dir / 'det_gghost_r34', det_data, det_options)
        baseline = {}
        if train_baseline:
            result['baseline'] = baseline = train_and_evaluate(
                DET_BASELINE_CONFIG, work_dir / 'det_r34', det_data,
                _iters_options(DET_BASELINE_CONFIG, det_iters))
        _log('benchmarking the detectors (interleaved, BN fused)')
        result['bench'] = benchmark_detectors(det, baseline,
                                              work_dir / 'benchmark',
                                              rounds=bench_rounds)
    if 'cls' in parts:
        result['cls'] = train_and_evaluate(CLS_CONFIG, work_dir / 'cls',
                                           cls_data)
    if 'det' not in parts:
        _log(f"classifier demo: val top-1 "
             f"{result['cls']['metrics'].get('accuracy/top1', 0):.2f}% "
             f"(metrics: {result['cls']['metrics_json']})")
        return result
    if 'det' in parts:
        result['summary'] = write_summary(
            work_dir, result['det'], result.get('bench'),
            result.get('baseline'), result.get('cls'), time.time() - t0,
            pretrain=result.get('pretrain'))
        print_headline(result)
    return result


def _iters_options(config, iters):
    """cfg options that shorten a demo config to ``iters`` iterations."""
    if not iters:
        return None
    warmup = max(1, min(50, iters // 4))
    return {'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
            'train_cfg.val_begin': iters + 1,
            'param_scheduler.0.end': warmup,
            'param_scheduler.1.begin': warmup,
            'param_scheduler.1.end': iters,
            'param_scheduler.1.T_max': iters - warmup}


def print_headline(result):
    det = result['det']['metrics']
    _log('=' * 60)
    _log(f"RetinaNet-GGhost-R34 (demo): bbox mAP {det.get('coco/bbox_mAP', 0):.3f}, "
         f"mAP@0.5 {det.get('coco/bbox_mAP_50', 0):.3f}")
    bench = result.get('bench')
    if bench:
        for row in bench['rows']:
            _log(f"{row['name']}: {row.get('fps', float('nan')):.1f} FPS, "
                 f"ratio {row.get('fps_ratio', float('nan')):.2f}")
        for key, path in bench['paths'].items():
            _log(f'{key}: {path}')
    if result.get('cls'):
        _log(f"classifier demo: val top-1 "
             f"{result['cls']['metrics'].get('accuracy/top1', 0):.2f}%")
    _log(f"summary: {result['summary']}")


def load_summary_metrics(work_dir):
    """The metrics JSON of the detection demo (for scripts and tests)."""
    path = Path(work_dir) / 'det_gghost_r34' / 'metrics.json'
    return json.loads(path.read_text())
