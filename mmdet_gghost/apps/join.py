"""One accuracy table from demo runs that trained different models or seeds:
``tools/demo.py --join A/summary.json B/summary.json [...]``.

``make demo-paper`` at a long schedule need not train in one call: one run
may train R34 and G-Ghost-R34, a later one (``--models``, another session,
another machine) R34-0.8x and G-Ghost-R34 w/o mix, or other seeds.
:func:`join_summaries` joins their ``summary.json`` files into one
``summary.md`` / ``summary.json`` / ``curves.png``: accuracy (means over the
seeds) and learning curves only.  FPS is not joined: it is a measurement of
one machine, and each run timed its own models where it ran (its own
``summary.md`` says where).

Joined runs must share one schedule (pre-training and detector iterations)
and end with one set of seeds for every model; a (model, seed) counts once.
"""
import json
from pathlib import Path

from .demo import (PAPER_MODELS, SummaryMergeError, curve_lines, log,
                   merge_records, plot_learning_curves)

# what a joined record does not carry over: the source run's timing
TIMING_KEYS = ('fps', 'fps_ratio')
NEEDED = {'name', 'mix', 'seeds', 'det_iters', 'pretrain_iters', 'mAP',
          'AP50', 'AP75', 'flat'}


def load_summary(path):
    """The records of the demo ``summary.json`` at ``path``."""
    try:
        records = json.loads(Path(path).read_text())
        for rec in records:
            missing = sorted(NEEDED - rec.keys())
            if missing:
                raise KeyError(missing[0])
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise SummaryMergeError(
            f'{path} is not a demo summary.json ({err!r}); pass the '
            'summary.json that tools/demo.py wrote') from None
    return records


def _check_one_schedule(sources):
    """Every record of ``sources`` trained the same iterations."""
    seen = {}
    for path, records in sources:
        for rec in records:
            key = (rec['pretrain_iters'], rec['det_iters'])
            seen.setdefault(key, (path, rec['name']))
    if len(seen) > 1:
        (a, (pa, na)), (b, (pb, nb)) = list(seen.items())[:2]
        raise SummaryMergeError(
            f'{na} in {pa} trained {a[0]} pre-training and {a[1]} detector '
            f'iterations, {nb} in {pb} {b[0]} and {b[1]}: only runs of one '
            'schedule join (the same --paper / --paper-scale)')


def join_records(sources):
    """``[(path, records)]`` -> one record per model, in the demo's order,
    each with the seeds of every run that trained it
    (:func:`~.demo.merge_records`; ``sources`` lists where they came from).

    Raises:
        SummaryMergeError: another schedule, a (model, seed) in two runs,
            a model the demo does not know, or models with different seeds.
    """
    _check_one_schedule(sources)
    order = [m.name for m in PAPER_MODELS]
    joined = {}
    for path, records in sources:
        for rec in records:
            if rec['name'] not in order:
                raise SummaryMergeError(
                    f'{path}: {rec["name"]!r} is not a demo model '
                    f'({", ".join(order)})')
            rec = {k: v for k, v in rec.items() if k not in TIMING_KEYS}
            rec['sources'] = [str(path)]
            old = joined.get(rec['name'])
            if old is None:
                joined[rec['name']] = rec
                continue
            both = sorted(set(old['seeds']) & set(rec['seeds']), key=str)
            if both:
                raise SummaryMergeError(
                    f"{rec['name']} seed(s) {both} are in {path} and in "
                    f"{old['sources'][0]}: a seed counts once; join other "
                    'seeds')
            joined[rec['name']] = dict(merge_records([old], [rec])[0],
                                       sources=old['sources'] + [str(path)])
    records = [joined[n] for n in order if n in joined]
    seeds = {r['name']: sorted(r['seeds'], key=str) for r in records}
    if len({tuple(s) for s in seeds.values()}) > 1:
        raise SummaryMergeError(
            'the joined models have different seeds ('
            + ', '.join(f'{n} {s}' for n, s in seeds.items())
            + '): means over other seeds do not compare; join runs that '
            'give every model the same seeds')
    return records


def _check_writable(out, paths):
    """Refuse to overwrite a training run's ``summary.json`` (a source, or
    any summary not written by a join): it cannot be made again."""
    if not out.exists():
        return
    if any(out.resolve() == Path(p).resolve() for p in paths):
        why = 'it is one of the summaries to join'
    elif any('sources' not in rec for rec in load_summary(out)):
        why = "it holds a training run's summary"
    else:
        return
    raise SummaryMergeError(
        f'{out} would be overwritten, and {why}: give another --work-dir')


def accuracy_rows(records):
    """One Markdown row per model: accuracy means, spread and difference to
    the first model (the reference)."""
    ref = records[0]['mAP_mean']
    mix = {True: 'yes', False: 'no', None: '—'}
    return [' | '.join([
        rec['name'], mix[rec['mix']], ', '.join(map(str, rec['seeds'])),
        *(f"{rec[k + '_mean']:.3f}" for k in ('mAP', 'AP50', 'AP75')),
        f"{rec['mAP_spread']:.3f}", f"{rec['mAP_mean'] - ref:+.3f}"])
        for rec in records]


def join_summaries(paths, work_dir):
    """Join the demo summaries at ``paths`` (:func:`join_records`) into
    ``work_dir``: ``summary.md``, ``summary.json`` and ``curves.png``.
    Returns the Markdown path."""
    from mmengine.fileio import dump
    work_dir = Path(work_dir)
    _check_writable(work_dir / 'summary.json', paths)
    sources = [(p, load_summary(p)) for p in paths]
    records = join_records(sources)
    work_dir.mkdir(parents=True, exist_ok=True)
    first = records[0]
    header = ('model | mix | seeds | mAP | AP50 | AP75 | mAP spread | '
              f"mAP vs {first['name']}")
    lines = [
        f'# mmdet-gghost demo: accuracy of {len(paths)} runs joined', '',
        'Each detector: RetinaNet with the demo head on `data/demo_det`, its '
        'backbone first pre-trained as a classifier on `data/demo_cls`; one '
        'recipe for all, only the backbone differs '
        f"({first['pretrain_iters']} pre-training and {first['det_iters']} "
        f"detector iterations; accuracy = mean over the seeds). mAP: mmdet's "
        'CocoMetric on the val split. FPS is not joined: each run timed its '
        "own models on its own machine (see its summary.md).", '',
        'Joined from:', '',
        *(f"- `{p}`: {', '.join(r['name'] for r in recs)} (seeds "
          f"{sorted({s for r in recs for s in r['seeds']}, key=str)})"
          for p, recs in sources),
        '', '| ' + header + ' |', '|' + '---|' * len(header.split(' | ')),
    ] + [f'| {row} |' for row in accuracy_rows(records)]
    lines += curve_lines(records)
    plot_learning_curves(records, work_dir / 'curves.png')
    lines += ['', f"Learning curves: `{work_dir / 'curves.png'}`"]
    dump(records, str(work_dir / 'summary.json'), indent=1)
    path = work_dir / 'summary.md'
    path.write_text('\n'.join(lines) + '\n')
    log(f'joined {len(paths)} runs: {path}')
    return path
