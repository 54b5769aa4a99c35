"""Learning curves from mmengine's own metric files.

An mmengine run writes every validation's metrics to
``<work_dir>/<timestamp>/vis_data/scalars.json`` (one JSON object per line,
``step`` = the iteration when ``LoggerHook(log_metric_by_epoch=False)``).
A resumed run adds another timestamp folder; :func:`read_curve` merges them
(the later run wins at a repeated step).  :func:`curve_status` applies the
"flat" rule the demo reports; :func:`plot_curves` draws every model in one
figure.
"""
import json
from pathlib import Path

# A curve is flat when its last quarter adds less than this (in the metric's
# own unit: mAP in [0, 1], top-1 in percent).
FLAT_GAIN = {'coco/bbox_mAP': 0.01, 'accuracy/top1': 1.0}


def curve_options(max_iters, points):
    """``cfg_options`` that validate ``points`` times, evenly, the last at
    ``max_iters``, and log the metrics by iteration (so the curve can be
    read back); checkpoints are kept as often, so an interrupted run resumes
    near where it stopped."""
    if points < 1 or max_iters % points:
        raise ValueError(f'{points} evaluation points do not divide '
                         f'{max_iters} iterations evenly; choose a divisor')
    interval = max_iters // points
    return {'train_cfg.val_interval': interval,
            'train_cfg.val_begin': interval,
            'default_hooks.logger.log_metric_by_epoch': False,
            'default_hooks.checkpoint.interval': interval}


def read_records(work_dir):
    """Every record of every ``scalars.json`` in ``work_dir``, oldest run
    first (timestamp folders sort in time order)."""
    return [json.loads(line)
            for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
            for line in path.read_text().splitlines() if line.strip()]


def read_curve(work_dir, key):
    """``[(iteration, value), ...]`` of metric ``key`` in ``work_dir``,
    sorted by iteration (a resumed run's value wins at a repeated
    iteration); empty when the run validated nothing."""
    points = {int(r['step']): float(r[key]) for r in read_records(work_dir)
              if key in r}
    return sorted(points.items())


def curve_status(curve, max_iters, key):
    """Where a run stopped on its curve: ``dict(final, at_3q, gain, flat)``.

    ``gain`` = final value minus the value at 3/4 of ``max_iters`` (the
    last quarter's contribution, rounded to 1e-6: the metrics are logged
    rounded, so 0.824 - 0.814 is 0.010, not the float 0.00999...);
    ``flat`` = ``gain < FLAT_GAIN[key]``.
    Raises ``ValueError`` if the curve has no point at 3/4 or at the end.
    """
    values = dict(curve)
    at_3q = 3 * max_iters // 4
    missing = [s for s in (at_3q, max_iters) if s not in values]
    if missing:
        raise ValueError(
            f'the {key} curve has no evaluation at iteration(s) {missing} '
            f'(has {sorted(values)}); evaluate a multiple of 4 times')
    gain = round(values[max_iters] - values[at_3q], 6)
    return dict(final=values[max_iters], at_3q=values[at_3q], gain=gain,
                flat=bool(gain < FLAT_GAIN[key]))


def plot_curves(panels, path):
    """One figure, one panel per ``(y label, {label: curve})`` of
    ``panels``, saved to the PNG ``path``; labels sharing the text before
    `` seed`` share a colour. Returns the matplotlib ``Figure``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6 * len(panels), 4.5))
    FigureCanvasAgg(fig)
    colours = {}
    for i, (ylabel, curves) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        seen = {}
        for label, curve in curves.items():
            if curve:  # (iteration, value) pairs
                model = label.split(' seed')[0]
                seen[model] = seen.get(model, -1) + 1
                ax.plot(*zip(*curve), marker='o', label=label,
                        color=colours.setdefault(model, f'C{len(colours)}'),
                        linestyle=('-', '--', ':', '-.')[seen[model] % 4])
        ax.set_xlabel('iteration')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    return fig
