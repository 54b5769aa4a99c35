"""One benchmark run, :func:`run_benchmark`. Timed (``task='full'``):
``model.test_step(batch)`` -- preprocessing, forward and post-processing
(NMS), as in mmengine's test loop -- on batches built before timing;
``task='backbone'``: the backbone on the preprocessed tensor;
``task='train'``: ``model.train_step(batch, optim_wrapper)``, one training
iteration as in mmengine's train loop (:mod:`.training`)."""
import contextlib
import dataclasses
import functools
import os.path as osp
from typing import List, Optional, Sequence

import torch

from ..analysis import complexity_report
from .breakdown import time_breakdown
from .inputs import (DEFAULT_SHAPES, calibrate_score_thr, make_data_inputs,
                     make_inputs, make_train_inputs)
from .models import (compile_parts, count_detections, load_model,
                     make_step_fn, outputs_finite, override_test_cfg)
from .ort import onnxruntime_entry
from .reports import (_fmt_shape, _title, collect_env, load_metric,
                      make_console, plot_map_vs_fps, print_table,
                      write_reports)
from .settings import BenchmarkSettings, UsageError
from .timing import summarize, sync_for, time_first_call, time_interleaved
from .training import (build_train_optim_wrapper, describe_optim_wrapper,
                       make_train_step_fn, num_classes_of, train_mode)


def _restores_torch_settings(fn):
    """Put back torch's thread count and ``cudnn.benchmark`` after ``fn``
    (a caller such as the demo trains afterwards in the same process)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        cudnn_benchmark = torch.backends.cudnn.benchmark
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
            torch.backends.cudnn.benchmark = cudnn_benchmark
    return wrapper


@_restores_torch_settings
def run_benchmark(configs: Sequence[str],
                  settings: Optional[BenchmarkSettings] = None, *,
                  console=None, **overrides) -> dict:
    """Benchmark mmdet/mmpretrain configs against each other, interleaved
    (the first is the reference of the FPS ratio), with ``settings``
    (default ``BenchmarkSettings()``) whose fields ``overrides`` replace
    (``run_benchmark(configs, rounds=3)``), logging to the rich
    ``console``.

    Returns:
        dict(rows=[...], env={...}, settings={...}, paths={...},
        complexity={name: report}, figure=(fig, ax) or None).

    Raises:
        FileNotFoundError: a config, checkpoint or eval-results file
            (checked before anything is built).
        UsageError: inconsistent options (a ``ValueError``).
        CheckpointMismatchError: a checkpoint does not fit its model.
    """
    unknown = sorted(set(overrides) - {
        f.name for f in dataclasses.fields(BenchmarkSettings)})
    if unknown:
        raise TypeError(f'run_benchmark: unknown option(s) {unknown}')
    s = dataclasses.replace(settings or BenchmarkSettings(), **overrides)
    s = s.validate(configs)
    console = console or make_console()
    if s.threads:
        torch.set_num_threads(int(s.threads))
    if s.is_cuda:
        # let cuDNN pick the fastest algorithm per conv shape (mmdet's
        # env_cfg.cudnn_benchmark); the warm-up rounds absorb the search
        torch.backends.cudnn.benchmark = bool(s.cudnn_benchmark)
    record = s.record()
    entries = []
    for i, cfg_path in enumerate(configs):
        entries += _build_entries(i, cfg_path, s, console)
    sync = sync_for(s.device)
    with (train_mode(*[e['model'] for e in entries]) if s.task == 'train'
          else contextlib.nullcontext()):
        _first_calls(entries, s.task, sync, console)
        lats = _time_rounds([e['fn'] for e in entries], s, sync, console)
    rows = _rows(entries, lats, s)
    if s.breakdown:
        console.log('timing the parts of each detector (--breakdown)')
        parts = time_breakdown(
            [e['model'] for e in entries], [e['batches'][0] for e in entries],
            s.rounds, s.warmup, sync, s.amp, s.channels_last)
        for r, ms in zip(rows, parts):
            r['breakdown_ms'] = ms
    if s.task == 'full' and any(r['dets_per_img'] is not None for r in rows):
        record['detections_note'] = _detections_note(s)
    return _report(rows, entries, record, s, console)


def _build_entries(i: int, cfg_path: str, s: BenchmarkSettings,
                   console) -> List[dict]:
    """The timing entry of config ``i`` (model, inputs, step function,
    complexity), followed by its ONNX Runtime entry with ``onnxruntime``."""
    name, full = s.names[i], s.task == 'full'
    console.log(f'building {name} from {cfg_path}')
    thr = s.fixed_score_thr if full else None
    model, cfg, info = load_model(
        cfg_path, s.checkpoints[i], device=s.device, form=s.form,
        channels_last=s.channels_last, score_thr=thr,
        max_per_img=s.max_per_img if full else None,
        allow_partial_checkpoint=s.allow_partial_checkpoint)
    batches = _make_batches(model, cfg, info, s)
    if s.calibrate and info['task'] == 'det':
        cal = calibrate_score_thr(model, batches[0], s.candidate_fraction)
        if cal is not None and override_test_cfg(
                model.bbox_head.test_cfg, 'score_thr', cal):
            thr = cal
    with torch.no_grad():
        net_in = model.data_preprocessor(batches[0], False)['inputs']
    in_shape = [1] + list(net_in.shape[1:])
    report = None
    if s.complexity:  # of the timed part, before compiling
        console.log(f'counting complexity of {name} at '
                    f'{_fmt_shape(in_shape)}')
        target = model.backbone if s.task == 'backbone' else model
        report = complexity_report(target, in_shape, bn_fused=s.form != 'eval')
    if s.compile:
        compile_parts(model, s.task, s.compile_mode)
    if s.cuda_graphs:
        from ..cuda_graphs import enable_cuda_graphs
        try:
            enable_cuda_graphs(model, s.task)
        except ValueError as e:
            raise UsageError(f'--cuda-graphs: {e}') from None
    entry = dict(name=name, model=model, info=info, in_shape=in_shape,
                 score_thr=thr, report=report, optim_wrapper=None,
                 batches=batches)
    if s.task == 'train':
        optim_wrapper = build_train_optim_wrapper(model, cfg, info['scope'],
                                                  s.amp)
        entry.update(optim_wrapper=describe_optim_wrapper(optim_wrapper),
                     fn=make_train_step_fn(model, optim_wrapper, batches))
    else:
        entry['fn'] = make_step_fn(model, batches, s.task, s.amp,
                                   s.channels_last)
    if not s.onnxruntime:
        return [entry]
    # same weights, test_cfg and images, next row
    console.log(f'exporting {name} to ONNX Runtime (mmdeploy)')
    return [entry, onnxruntime_entry(
        entry, cfg_path, s.checkpoints[i], batches, thr, s.max_per_img,
        s.out_dir and osp.join(s.out_dir, 'onnx', name))]


def _make_batches(model, cfg, info: dict,
                  s: BenchmarkSettings) -> List[dict]:
    """The batches the timed calls cycle through, built before timing:
    the config's test (train, for ``task='train'``) dataloader's with
    ``data``, else synthetic ones (with random ground truth for training).
    """
    train = s.task == 'train'
    if s.data:
        return make_data_inputs(cfg, info['scope'], s.batch_size,
                                s.data_batches, 'train' if train else 'test')
    shape = s.shape or DEFAULT_SHAPES[info['task']]
    if train:
        return make_train_inputs(info['task'], shape, num_classes_of(model),
                                 s.batch_size)
    return make_inputs(info['task'], shape, s.batch_size)


def _first_calls(entries: List[dict], task: str, sync, console) -> None:
    """One untimed call per model: compile time (with ``compile``) or lazy
    init (the optimizer's state, for ``task='train'``), and the
    detections-after-NMS count (the losses) of these inputs."""
    for e in entries:
        e['first_call_s'], out = time_first_call(e['fn'], sync)
        e['losses'] = ({k: float(torch.as_tensor(v).detach())
                        for k, v in out.items()} if task == 'train' else None)
        e['dets'] = (count_detections(out) if task == 'full'
                     and isinstance(out, (list, tuple)) else None)
        if e['dets'] == 0:
            console.log(f'[yellow]note: no box survives post-processing '
                        f'for {e["name"]} (score_thr {e["score_thr"]!r}); NMS '
                        'then costs ~nothing. Use --score-thr 0 or a trained '
                        'checkpoint for a realistic load')
        e['finite'] = outputs_finite(out)
        if not e['finite']:
            console.log(f'[red]warning: {e["name"]} produced non-finite '
                        'outputs (inf/NaN): its timing may not be '
                        'representative')


def _time_rounds(fns, s: BenchmarkSettings, sync, console):
    """Warm-up and timed rounds, with a progress bar if ``progress``."""
    if not s.progress:
        return time_interleaved(fns, s.rounds, warmup=s.warmup, sync=sync)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress,
                               TextColumn, TimeRemainingColumn)
    with Progress(TextColumn('[bold]timing'), BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        job = bar.add_task('timing', total=s.warmup + s.rounds)
        for _ in range(s.warmup):  # visible warmup, then timed rounds
            time_interleaved(fns, rounds=0, warmup=1)
            bar.advance(job)
        return time_interleaved(fns, s.rounds, warmup=0, sync=sync,
                                on_round=lambda r: bar.advance(job))


def _rows(entries: List[dict], lats, s: BenchmarkSettings) -> List[dict]:
    """One result row per entry: :func:`summarize`'s and the entry's."""
    totals = [e['report']['total'] if e['report'] else {} for e in entries]
    eval_results = s.eval_results
    if s.onnxruntime:  # ONNX Runtime rows: no metric of their own
        eval_results = [x for ev in eval_results for x in (ev, None)]
    # GFLOP/s of the forward alone would misread a train step's speed
    rows = summarize(lats, s.batch_size, [e['name'] for e in entries],
                     None if s.task == 'train' else
                     [t.get('macs') for t in totals])
    for e, r, lat, ev, total in zip(entries, rows, lats, eval_results,
                                    totals):
        r.update(
            config=e['info']['config'], checkpoint=e['info']['checkpoint'],
            task=s.task, input_shape=e['in_shape'],
            params=total.get('params'), macs=total.get('macs'),
            activations=total.get('activations'), ops=total.get('ops'),
            bn_fused=e['info']['bn_fused'], dets_per_img=e['dets'],
            score_thr=e['score_thr'], first_call_s=e['first_call_s'],
            outputs_finite=e['finite'], metric_key=None, metric=None,
            optim_wrapper=e['optim_wrapper'], first_losses=e['losses'],
            latencies_ms=[float(x) * 1e3 for x in lat])
        if ev is not None:
            r['metric_key'], r['metric'] = load_metric(ev, s.metric_key)
    return rows


def _detections_note(s: BenchmarkSettings) -> str:
    """What the ``dets/img`` column means for this run's threshold."""
    head = 'dets/img = mean boxes per image after NMS on these inputs; '
    if s.calibrate:
        return head + (
            f'score_thr calibrated per model (column score_thr) so that '
            f'{s.candidate_fraction:g} of the (anchor, class) pairs of each '
            'image pass it: every model post-processes the same share of '
            'candidates, a busy image\'s load (see mmdet_gghost/'
            'benchmark/inputs.py)')
    if s.fixed_score_thr == 0.0:
        return head + (
            'score_thr forced to 0: NMS gets a full candidate set, and '
            'every score of the image is sorted first (mmdet '
            'filter_scores_and_topk), heavier than any trained detector '
            'at its threshold')
    return head + f'score_thr={s.fixed_score_thr}'


def _report(rows, entries, record: dict, s: BenchmarkSettings,
            console) -> dict:
    """Print the table; write the files and the plot that were asked for."""
    env = collect_env(s.device)
    print_table(rows, record, console)
    result = dict(rows=rows, env=env, settings=record,
                  complexity={e['name']: e['report'] for e in entries},
                  paths={}, figure=None)
    if s.out_dir:
        result['paths'] = write_reports(
            s.out_dir, rows, env, record,
            extra=dict(complexity=result['complexity']))
    if s.plot:
        pts = [r for r in rows if r['metric'] is not None]
        metric_names = sorted({r['metric_key'] for r in pts})
        result['figure'] = plot_map_vs_fps(
            [r['name'] for r in pts], [r['fps'] for r in pts],
            [r['metric'] for r in pts], s.plot,
            metric_name=' / '.join(metric_names) or 'mAP',
            title=_title(record))
        result['paths']['plot'] = s.plot
    for p in result['paths'].values():
        console.log(f'wrote {p}')
    return result
