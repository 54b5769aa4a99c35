"""Reports of a benchmark run: the console/Markdown table, the JSON and
CSV files, the accuracy-vs-speed plot, the environment, and the metric
read from a ``tools/test.py`` results file."""
import csv
import datetime
import json
import os
import os.path as osp
import platform
import shutil
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..analysis import format_count
from .breakdown import breakdown_lines
from .settings import UsageError, check_file


def to_plain(obj):
    """ConfigDict/tuples -> JSON-serialisable builtins."""
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return obj


METRIC_KEYS = ('coco/bbox_mAP', 'bbox_mAP', 'pascal_voc/mAP', 'mAP',
               'accuracy/top1', 'top1')


def load_metric(path: str, key: Optional[str] = None):
    """``(key, value)`` of a metric in a ``tools/test.py`` results JSON:
    ``{"metrics": {...}}``, a flat dict, or mmengine's JSON-lines logs (the
    last line holding the key wins). ``key`` defaults to the first of
    :data:`METRIC_KEYS` present."""
    check_file(path, 'Eval results file')
    with open(path) as f:
        text = f.read()
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines()
                   if line.strip()]
    dicts = [rec.get('metrics', rec) for rec in records
             if isinstance(rec, dict)]
    keys = [key] if key else list(METRIC_KEYS)
    for d in reversed(dicts):
        for k in keys:
            if isinstance(d, dict) and isinstance(d.get(k), (int, float)):
                return k, float(d[k])
    raise UsageError(f'{path}: no metric {" / ".join(keys)} found '
                   '(use --metric-key)')


# one row per model; the CSV has exactly these columns in this order
CSV_FIELDS = [
    'name', 'config', 'checkpoint', 'task', 'input_shape', 'batch_size',
    'rounds', 'params', 'macs', 'activations', 'ops', 'bn_fused',
    'dets_per_img', 'score_thr', 'first_call_s', 'outputs_finite',
    'median_ms', 'mean_ms', 'p10_ms', 'p90_ms', 'fps', 'fps_ratio',
    'fps_ratio_p10', 'fps_ratio_p90', 'gflops_per_s', 'metric_key', 'metric'
]

NOTES = [
    'latency = wall-clock time of one call ({what}); median, p10, p90 over '
    'the timed rounds',
    'FPS = {fps}',
    'ratio = median over rounds of (FPS of the model / FPS of the first '
    'model in the same round); models were timed interleaved, round by round',
    'params / MACs / activations: mmengine analysis of the network part '
    '(traced in tensor mode, no post-processing), per image at the input '
    'shape; 1 MAC = one multiply-add; BN ops not counted in MACs',
    'ops: device-launching aten ops of one forward of the network part in '
    'the benchmarked form, batch 1 (views and allocations excluded; '
    'mmdet_gghost.analysis.count_ops)',
    'GFLOP/s (achieved) = 2 x MACs x batch / median latency',
]


def _fmt(v, nd=2):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return '-'
    if isinstance(v, bool):
        return 'yes' if v else 'no'
    if isinstance(v, float):
        return f'{v:.{nd}f}'
    return str(v)


# (header, key, formatter) of the console / Markdown table
_TABLE_COLUMNS = [
    ('model', 'name', str),
    ('params', 'params', format_count),
    ('MACs', 'macs', format_count),
    ('acts', 'activations', format_count),
    ('ops', 'ops', _fmt),
    ('BN fused', 'bn_fused', _fmt),
    ('score thr', 'score_thr', lambda v: '-' if v is None else f'{v:.4g}'),
    ('dets/img', 'dets_per_img', lambda v: _fmt(v, 1)),
    ('median ms', 'median_ms', _fmt),
    ('p10 ms', 'p10_ms', _fmt),
    ('p90 ms', 'p90_ms', _fmt),
    ('FPS', 'fps', _fmt),
    ('ratio', 'fps_ratio', lambda v: _fmt(v, 3)),
    ('GFLOP/s', 'gflops_per_s', lambda v: _fmt(v, 1)),
    ('metric', 'metric', lambda v: _fmt(v, 3)),
]


def table_rows(rows: Sequence[dict]) -> List[List[str]]:
    """Formatted cells of the console/Markdown table (header first)."""
    # shown only when some row has one (no detections counted: backbone
    # and train tasks)
    optional = ('metric', 'score_thr', 'dets_per_img')
    cols = [c for c in _TABLE_COLUMNS if c[1] not in optional
            or any(r.get(c[1]) is not None for r in rows)]
    return [[c[0] for c in cols]] + [
        [fmt(r.get(key)) for _, key, fmt in cols] for r in rows]


def make_console():
    """A rich console wide enough for the table also when piped to a file
    (rich falls back to 80 columns without a terminal)."""
    from rich.console import Console
    width = max(shutil.get_terminal_size((160, 24)).columns, 160)
    return Console(width=width, log_path=False)


def print_table(rows: Sequence[dict], settings: dict, console=None) -> None:
    """Print the results as a rich table."""
    from rich.table import Table
    cells = table_rows(rows)
    table = Table(title=_title(settings), caption_justify='left',
                  caption='ratio: median of per-round FPS ratios to the '
                  'first model; GFLOP/s = 2 x MACs x batch / median latency')
    for i, h in enumerate(cells[0]):
        table.add_column(h, justify='left' if i == 0 else 'right')
    for r in cells[1:]:
        table.add_row(*r)
    console = console or make_console()
    console.print(table)
    for line in _breakdown_section(rows):
        console.print(line, markup=False, highlight=False)


def _breakdown_section(rows: Sequence[dict]) -> List[str]:
    """Markdown lines of the rows' ``breakdown_ms`` (``--breakdown``), or
    none."""
    parted = [r for r in rows if r.get('breakdown_ms')]
    if not parted:
        return []
    return ['', '## Where the time goes (--breakdown)', '',
            'Each part of test_step timed alone on the previous part\'s '
            'output (interleaved, medians; mmdet_gghost/benchmark/'
            'breakdown.py); the last column is the FPS ratio the detector '
            'would have vs the first model if only its backbone\'s time '
            'differed (Amdahl bound of a backbone change).', ''
            ] + breakdown_lines([r['name'] for r in parted],
                                [r['breakdown_ms'] for r in parted])


def _title(settings: dict) -> str:
    flags = [k for k in ('channels_last', 'amp', 'compile', 'cuda_graphs')
             if settings.get(k)]
    if settings.get('form', 'eval') not in ('eval', 'train'):
        flags.insert(0, settings['form'])
    if settings.get('compile_mode'):
        flags.append(f'mode={settings["compile_mode"]}')
    fields = dict(task='full', device='?', batch_size='?', rounds='?')
    what = ('train step (model.train_step: loss, backward, optimizer step)'
            if settings.get('task') == 'train' else '{task} inference')
    return ((what + ' on {device}, batch {batch_size}, {rounds} '
             'rounds').format_map({**fields, **settings})
            + (f' [{", ".join(flags)}]' if flags else ''))


# what one timed call is, by task
_TIMED_CALLS = dict(
    full='model.test_step: preprocess + forward + post-processing/NMS',
    backbone='backbone forward',
    train='model.train_step(batch, optim_wrapper), one training iteration '
    'as in mmengine\'s train loop: preprocess (training=True) + loss + '
    'backward + optimizer step + zero_grad; model in train mode')


def write_reports(out_dir: str, rows: Sequence[dict], env: dict,
                  settings: dict,
                  extra: Optional[dict] = None) -> Dict[str, str]:
    """Write ``benchmark.json``, ``benchmark.csv`` and ``benchmark.md``;
    return their paths, ``{'json': path, 'csv': path, 'md': path}``.

    The JSON holds everything (rows with their ``latencies_ms``, env,
    settings, ``extra``); the CSV :data:`CSV_FIELDS` at full precision; the
    Markdown file the console table, notes, environment and settings.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: osp.join(out_dir, f'benchmark.{k}')
             for k in ('json', 'csv', 'md')}
    doc = dict(settings=to_plain(settings), env=to_plain(env),
               results=to_plain(list(rows)), **to_plain(extra or {}))
    with open(paths['json'], 'w') as f:
        json.dump(doc, f, indent=2)
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _fmt_shape(r[k]) if isinstance(
                r.get(k), (list, tuple)) else r.get(k) for k in CSV_FIELDS})
    cells = table_rows(rows)
    task = settings.get('task', 'full')
    what, fps = _TIMED_CALLS[task], 'batch size / median latency'
    if task == 'train':
        fps = 'training images per second = ' + fps
    lines = [f'# Benchmark: {_title(settings)}', '',
             '| ' + ' | '.join(cells[0]) + ' |',
             '|---' + '|---:' * (len(cells[0]) - 1) + '|']
    lines += ['| ' + ' | '.join(c) + ' |' for c in cells[1:]]
    lines += _breakdown_section(rows)
    lines += ['', '## Notes', '']
    lines += [f'- {n.format(what=what, fps=fps)}' for n in NOTES]
    for key in ('detections_note', 'complexity_note'):
        if settings.get(key):
            lines.append(f'- {settings[key]}')
    lines += ['', '## Models', '']
    for r in rows:
        lines.append(f'- **{r["name"]}**: config `{r.get("config")}`, '
                     f'weights `{r.get("checkpoint") or "init_weights()"}`'
                     f', input {_fmt_shape(r.get("input_shape"))}'
                     + (f', first call {r["first_call_s"]:.2f} s'
                        if r.get('first_call_s') is not None else ''))
    for title, items in (('Settings', settings), ('Environment', env)):
        lines += ['', f'## {title}', '']
        lines += [f'- {k}: `{v}`' for k, v in items.items()]
    with open(paths['md'], 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return paths


def _fmt_shape(shape) -> str:
    return 'x'.join(map(str, shape)) if shape else '-'


def plot_map_vs_fps(names: Sequence[str], fps: Sequence[float],
                    metrics: Sequence[float], out_path: Optional[str] = None,
                    metric_name: str = 'mAP', title: Optional[str] = None):
    """``(fig, ax)``: accuracy vs speed scatter (``ax.collections[0]``),
    one labelled point per model, on a bare ``Figure`` (no pyplot: no global
    backend switch, no display needed), saved to ``out_path`` if given."""
    from matplotlib.figure import Figure
    if not (len(names) == len(fps) == len(metrics)):
        raise ValueError('names, fps and metrics must have the same length')
    fig = Figure(figsize=(6, 4.5), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(list(fps), list(metrics), s=60, zorder=3,
               c=[f'C{i % 10}' for i in range(len(names))])
    for name, x, y in zip(names, fps, metrics):
        ax.annotate(name, (x, y), textcoords='offset points', xytext=(6, 6),
                    fontsize=9)
    ax.set(xlabel='FPS (images / s, higher is better)', ylabel=metric_name)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.25, y=0.25)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if out_path:
        os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
        fig.savefig(out_path)
    return fig, ax


# not needed to reproduce a timing: the long build description (~40
# lines) and the seed numpy happens to have
_DROPPED = ('PyTorch compiling details', 'numpy_random_seed')


def collect_env(device: str = 'cpu') -> dict:
    """Hardware and software the numbers were measured with: mmengine's
    ``collect_env()`` (less :data:`_DROPPED`) plus ``date``, ``platform``,
    ``cpu`` (model), ``cpu_count``, torch's thread counts, ``device``, the
    toolbox and numpy versions (``None`` if absent) and, on CUDA, ``gpu``
    (the one used), ``cuda``, ``cudnn``, ``cudnn_benchmark``."""
    from mmengine.utils.dl_utils import collect_env as mmengine_env
    env = {k: v for k, v in mmengine_env().items() if k not in _DROPPED}
    now = datetime.datetime.now().astimezone()
    env.update(date=now.isoformat(timespec='seconds'),
               platform=platform.platform(), cpu=_cpu_model(),
               cpu_count=os.cpu_count(),
               torch_threads=torch.get_num_threads(),
               torch_interop_threads=torch.get_num_interop_threads(),
               device=device)
    for mod in ('mmcv', 'mmdet', 'mmpretrain', 'mmdet_gghost', 'numpy'):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001  (absent or broken: record it)
            env[mod] = None
    if str(device).startswith('cuda') and torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(torch.device(device)),
                   cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   cudnn_benchmark=torch.backends.cudnn.benchmark)
    return env


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f
                        if line.lower().startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
