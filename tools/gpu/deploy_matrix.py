"""The GPU run of issue 13 in one go (~6 min on one GPU): profile both
backbones, then benchmark R34 (mmdet), G-Ghost-R34 and R34-plain (our
blocks' deploy form, the fair baseline) in eager, deploy, CUDA-graph and
compiled forms, backbone and full RetinaNet, and one RetinaNet training
iteration (``--task train``), fp32 and AMP.

    python tools/gpu/deploy_matrix.py --out docs/results/gpu-h200
    python tools/gpu/deploy_matrix.py --dry-run --out /tmp/dry  # CPU, tiny

1. Profile (``profile.md``/``profile.json``): one forward of mmdet's
   ResNet-34 (BN fused with mmcv ``fuse_conv_bn``) and of
   ``GGhostResNet(depth=34)`` after ``switch_to_deploy()``, at batch 1 and 8,
   fp32 and AMP + channels-last, under ``torch.profiler`` with CUDA activity:
   aten ops (``count_ops``), CUDA kernels, GPU-busy time (union of kernel
   intervals) vs the forward's wall span, top kernels; plus the median
   latency of 20 unprofiled forwards.
2. Benchmark (``<row>/benchmark.{json,csv,md}``, via
   ``mmdet_gghost.benchmark.run_benchmark``; both models always get the
   same settings) and ``summary.md`` with one line per row.

``--dry-run``: CPU, tiny shapes, 2 rounds, fp32 (AMP is CUDA-only), no CUDA
graphs (they need CUDA) and no compilation: checks the script end to end.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import time
from contextlib import nullcontext

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # run from a checkout without installing

import torch  # noqa: E402


def _load_timing_core():
    """mmdet_gghost/benchmark/timing.py (torch and numpy only), loaded by
    its path: importing it as a package module would run
    ``mmdet_gghost/__init__`` and need the whole OpenMMLab stack before
    anything is timed."""
    spec = importlib.util.spec_from_file_location(
        'gghost_timing_core',
        osp.join(ROOT, 'mmdet_gghost', 'benchmark', 'timing.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timing = _load_timing_core()

# mmdet's ResNet-34 (BN fused: its deploy form), G-Ghost-R34, and ResNet-34
# built from our blocks (GGhostResNet, no G-Ghost stage), whose deploy form
# has every optimisation that is not G-Ghost specific: G-Ghost is reported
# against both, so a speed-up never comes from a weaker baseline.
CONFIGS = ('configs/retinanet_r34_1x_coco.py',
           'configs/retinanet_gghost_r34_1x_coco.py',
           'configs/retinanet_r34-plain_1x_coco.py')
NAMES = ('R34', 'G-Ghost-R34', 'R34-plain')

# (row label, task, batch, precision, form); precision 'amp_cl' = AMP +
# channels-last, 'amp' = AMP alone (train: mmengine's AmpOptimWrapper);
# form: eager | deploy | graphs | compiled (train: eager, the model as it
# trains; batch 2 per GPU as in mmdet's 1x schedule)
MATRIX = [
    ('backbone_bs1_fp32_eager', 'backbone', 1, 'fp32', 'eager'),
    ('backbone_bs1_fp32_deploy', 'backbone', 1, 'fp32', 'deploy'),
    ('backbone_bs1_fp32_graphs', 'backbone', 1, 'fp32', 'graphs'),
    ('backbone_bs1_fp32_compiled', 'backbone', 1, 'fp32', 'compiled'),
    ('backbone_bs8_fp32_deploy', 'backbone', 8, 'fp32', 'deploy'),
    ('backbone_bs8_ampcl_deploy', 'backbone', 8, 'amp_cl', 'deploy'),
    ('backbone_bs8_ampcl_graphs', 'backbone', 8, 'amp_cl', 'graphs'),
    ('full_bs1_fp32_deploy', 'full', 1, 'fp32', 'deploy'),
    ('full_bs1_fp32_graphs', 'full', 1, 'fp32', 'graphs'),
    ('full_bs8_fp32_deploy', 'full', 8, 'fp32', 'deploy'),
    ('full_bs8_ampcl_graphs', 'full', 8, 'amp_cl', 'graphs'),
    ('train_bs2_fp32_eager', 'train', 2, 'fp32', 'eager'),
    ('train_bs2_amp_eager', 'train', 2, 'amp', 'eager'),
]

# Rows that killed the process before (issue 21: rc 139, twice): each runs
# after the others in a child process of this script with faulthandler on,
# so a crash costs that row alone and leaves its Python stack in
# <row>/crash.txt.
ISOLATED = ('backbone_bs8_ampcl_graphs', 'full_bs8_ampcl_graphs')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', required=True, help='results folder')
    p.add_argument('--dry-run', action='store_true',
                   help='CPU, tiny shapes, 2 rounds: check the script')
    p.add_argument('--rounds', type=int, default=None,
                   help='timed rounds per benchmark row (default 30 for the '
                   'backbone, 20 for the full detector on '
                   'CUDA, 2 in a dry run)')
    p.add_argument('--only', nargs='+', default=None, metavar='ROW',
                   help='benchmark rows to run (default: all)')
    p.add_argument('--skip-profile', action='store_true')
    p.add_argument('--in-process', action='store_true',
                   help=f'run {", ".join(ISOLATED)} in this process too '
                   '(default: each in a child process)')
    return p.parse_args(argv)


# ------------------------------------------------------------------ profile


# profiled backbones: name -> (arch, config overrides); 'resnet34' is
# mmdet's ResNet, 'resnet34-plain' the same network from our blocks
PROFILED = {'resnet34': ('resnet34', {}),
            'gghost_resnet34': ('gghost_resnet34', {}),
            'resnet34-plain': ('gghost_resnet34', dict(gghost_stages=()))}


def build_backbone(name, device, channels_last):
    from mmdet_gghost.analysis import (build_backbone_from_arch,
                                       init_weights_quietly)
    from mmdet_gghost.models import deploy_model
    arch, overrides = PROFILED[name]
    model = build_backbone_from_arch(arch, **overrides)
    init_weights_quietly(model)
    model = deploy_model(model.to(device))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def kernel_stats(prof):
    """CUDA kernels of a profile: count, busy time (union of their
    intervals), the wall span of all events, top kernels by total time."""
    events = [e for e in prof.events()]
    kernels = [e for e in events
               if e.device_type == torch.autograd.DeviceType.CUDA]
    spans = sorted((e.time_range.start, e.time_range.end) for e in kernels)
    busy, cur_s, cur_e = 0.0, None, None
    for s, e in spans:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        busy += cur_e - cur_s
    starts = [e.time_range.start for e in events]
    ends = [e.time_range.end for e in events]
    wall = (max(ends) - min(starts)) if events else 0.0
    by_name = {}
    for e in kernels:
        n, t = by_name.get(e.name, (0, 0.0))
        by_name[e.name] = (n + 1, t + e.time_range.elapsed_us())
    top = sorted(by_name.items(), key=lambda kv: -kv[1][1])[:8]
    return dict(kernels=len(kernels), gpu_busy_us=busy, wall_us=wall,
                top_kernels=[dict(name=k[:90], count=v[0], us=v[1])
                             for k, v in top])


def median_latency_ms(fn, sync, n=20):
    """Median milliseconds of ``n`` synchronised calls of ``fn``, timed by
    the project's one timing core."""
    latencies = timing.time_interleaved([fn], rounds=n, sync=sync)
    return timing.summarize(latencies)[0]['median_ms']


def profile_one(arch, batch, precision, device, hw):
    from torch.profiler import ProfilerActivity, profile

    from mmdet_gghost.analysis import count_ops
    is_cuda = device.startswith('cuda')
    amp = precision == 'amp_cl'
    model = build_backbone(arch, device, channels_last=amp)
    x = torch.randn(batch, 3, *hw, device=device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)
    sync = timing.sync_for(device) or (lambda: None)

    def fwd():
        with torch.no_grad(), (torch.autocast('cuda', dtype=torch.float16)
                               if amp else nullcontext()):
            return model(x)

    for _ in range(3):
        fwd()
    sync()
    ops = count_ops(model, (x, ))[0]['']
    activities = [ProfilerActivity.CPU] + (
        [ProfilerActivity.CUDA] if is_cuda else [])
    with profile(activities=activities) as prof:
        fwd()
        sync()
    stats = kernel_stats(prof) if is_cuda else dict(
        kernels=None, gpu_busy_us=None, wall_us=None, top_kernels=[])
    stats.update(arch=arch, batch=batch, precision=precision,
                 input=[batch, 3, *hw], aten_ops=ops,
                 median_ms=median_latency_ms(fwd, sync))
    if not is_cuda:
        stats['top_cpu_ops'] = [
            dict(name=e.key, count=e.count, us=e.self_cpu_time_total)
            for e in sorted(prof.key_averages(),
                            key=lambda e: -e.self_cpu_time_total)[:8]]
    return stats


def run_profiles(args, device, hw, batches, precisions):
    rows = []
    for precision in precisions:
        for batch in batches:
            for arch in PROFILED:
                t0 = time.time()
                rows.append(profile_one(arch, batch, precision, device, hw))
                print(f'profiled {arch} bs{batch} {precision} '
                      f'({time.time() - t0:.1f}s)', flush=True)
    with open(osp.join(args.out, 'profile.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    lines = ['# Backbone profile: one forward (deploy forms)', '',
             f'device {device}, input {hw[0]}x{hw[1]}; aten ops = '
             'device-launching ops (count_ops); GPU busy = union of kernel '
             'intervals; wall = first event to last kernel end; median ms = '
             '20 unprofiled forwards', '',
             '| backbone | batch | precision | aten ops | kernels | GPU busy '
             'us | wall us | busy % | median ms |',
             '|---|---:|---|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        busy = (f'{100 * r["gpu_busy_us"] / r["wall_us"]:.0f}'
                if r['wall_us'] else '-')
        lines.append(
            f'| {r["arch"]} | {r["batch"]} | {r["precision"]} | '
            f'{r["aten_ops"]} | {r["kernels"] if r["kernels"] is not None else "-"} | '
            f'{_f(r["gpu_busy_us"])} | {_f(r["wall_us"])} | {busy} | '
            f'{r["median_ms"]:.2f} |')
    lines.append('')
    for r in rows:
        top = r['top_kernels'] or r.get('top_cpu_ops', [])
        lines.append(f'Top {"kernels" if r["top_kernels"] else "CPU ops"} '
                     f'of {r["arch"]} bs{r["batch"]} {r["precision"]}: ' +
                     '; '.join(f'{t["name"]} x{t["count"]} '
                               f'{t["us"]:.0f}us' for t in top))
        lines.append('')
    with open(osp.join(args.out, 'profile.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return rows


def _f(v):
    return '-' if v is None else f'{v:.0f}'


# ---------------------------------------------------------------- benchmark


def run_matrix(args, device, rows_to_run):
    from mmdet_gghost.benchmark import run_benchmark
    is_cuda = device.startswith('cuda')
    results = []
    for label, task, batch, precision, form in rows_to_run:
        if not is_cuda and needs_cuda((label, task, batch, precision,
                                       form)):
            print(f'skip {label}: needs CUDA', flush=True)
            continue
        if args.dry_run:
            shape = (64, 64) if task == 'backbone' else (64, 96)
            rounds, warmup = args.rounds or 2, 1
        else:
            shape = (800, 1216) if task == 'backbone' else (800, 1333)
            rounds = args.rounds or (30 if task == 'backbone' else 20)
            warmup = 10
        t0 = time.time()
        res = run_benchmark(
            list(CONFIGS), names=list(NAMES), task=task, shape=shape,
            device=device, warmup=warmup, rounds=rounds, batch_size=batch,
            deploy=form != 'eager',
            channels_last=precision == 'amp_cl',
            amp=precision.startswith('amp'),
            compile_mode='reduce-overhead' if form == 'compiled' else None,
            cuda_graphs=form == 'graphs', cudnn_benchmark=is_cuda,
            breakdown=task == 'full' and form != 'graphs',
            out_dir=osp.join(args.out, label), progress=False)
        a, b, c = res['rows']
        results.append(dict(
            label=label, task=task, batch=batch, precision=precision,
            form=form, shape=list(shape), rounds=rounds,
            r34_ms=a['median_ms'], gghost_ms=b['median_ms'],
            plain_ms=c['median_ms'],
            latency_ratio=b['median_ms'] / a['median_ms'],
            latency_ratio_plain=b['median_ms'] / c['median_ms'],
            fps_ratio=b['fps_ratio'], r34_ops=a.get('ops'),
            gghost_ops=b.get('ops'), plain_ops=c.get('ops'),
            seconds=time.time() - t0,
            breakdown_ms=[r.get('breakdown_ms') for r in (a, b, c)]))
        print(f'{label}: {b["median_ms"]:.2f} / {a["median_ms"]:.2f} ms, '
              f'FPS ratio {b["fps_ratio"]:.3f} ({time.time() - t0:.0f}s)',
              flush=True)
    return results


def needs_cuda(row):
    _, _, _, precision, form = row
    return form in ('graphs', 'compiled') or precision.startswith('amp')


def run_isolated(args, label, cmd=None):
    """Row ``label`` in a child process (``cmd``: default this script with
    ``--only label``): its rows, read from the ``summary.json`` it writes
    into ``args.out`` (this process writes its own afterwards), or, if it
    dies, one row ``dict(label, crashed=returncode, crash_log)`` with its
    output in ``<label>/crash.txt``."""
    if cmd is None:
        cmd = [sys.executable, '-X', 'faulthandler', osp.abspath(__file__),
               '--out', args.out, '--only', label, '--skip-profile',
               '--in-process'] + (['--dry-run'] if args.dry_run else []) + (
                   ['--rounds', str(args.rounds)] if args.rounds else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    print(proc.stdout, end='', flush=True)
    if proc.returncode == 0:
        with open(osp.join(args.out, 'summary.json')) as f:
            return json.load(f)['rows']
    os.makedirs(osp.join(args.out, label), exist_ok=True)
    log = osp.join(args.out, label, 'crash.txt')
    with open(log, 'w') as f:
        f.write(f'$ {" ".join(cmd)}\nexit code {proc.returncode}\n\n'
                f'{proc.stdout}\n{proc.stderr}')
    print(f'{label}: CRASHED (exit code {proc.returncode}), see {log}',
          flush=True)
    return [dict(label=label, crashed=proc.returncode, crash_log=log)]


def _summary_row(r):
    if 'crashed' in r:
        return (f'| {r["label"]} | crashed: exit code {r["crashed"]}, '
                f'`{osp.basename(osp.dirname(r["crash_log"]))}/crash.txt` '
                '|' + ' |' * 10)
    return (f'| {r["label"]} | {r["task"]} | {r["batch"]} | '
            f'{r["precision"]} | {r["form"]} | {r["r34_ms"]:.2f} | '
            f'{r["gghost_ms"]:.2f} | {r["plain_ms"]:.2f} | '
            f'{r["latency_ratio"]:.3f} | {r["latency_ratio_plain"]:.3f} | '
            f'{r["fps_ratio"]:.3f} | {r["r34_ops"]} / {r["gghost_ops"]} / '
            f'{r["plain_ops"]} |')


def write_summary(args, device, results, profiles):
    from mmdet_gghost.benchmark import collect_env
    env = collect_env(device)
    with open(osp.join(args.out, 'summary.json'), 'w') as f:
        json.dump(dict(env=env, dry_run=args.dry_run, rows=results), f,
                  indent=2)
    lines = [f'# R34 vs G-Ghost-R34 vs R34-plain{" (DRY RUN: CPU, tiny shapes)" if args.dry_run else ""}',
             '', f'Device: {env.get("gpu") or env.get("cpu") or device}; '
             f'torch {torch.__version__}. Written by '
             '`tools/gpu/deploy_matrix.py`; per-row details in the '
             'sub-folders; `profile.md` for the kernel profile.', '',
             '| row | task | batch | precision | form | R34 ms | G-Ghost ms '
             '| R34-plain ms | latency ratio | vs R34-plain | FPS ratio '
             '| ops R34 / G-Ghost / R34-plain |',
             '|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|']
    lines += [_summary_row(r) for r in results]
    lines += ['', 'forms: eager = eval form (BN not fused); deploy = '
              '--deploy (BN fused; G-Ghost switch_to_deploy); graphs '
              '= deploy + --cuda-graphs; compiled = deploy + --compile-mode '
              'reduce-overhead. precision amp_cl = AMP fp16 + channels-last, '
              'amp = AMP fp16 alone. task train = one training iteration, '
              'model.train_step (loss, backward, step of the config\'s '
              'optimizer; AMP: AmpOptimWrapper), synthetic images with 3 gt '
              'boxes each. latency ratio = G-Ghost / R34 median latency; '
              'vs R34-plain = G-Ghost / R34-plain (ResNet-34 from our '
              'blocks: in the deploy forms it has every optimisation that is '
              'not G-Ghost specific).']
    lines += _breakdown_sections(results)
    with open(osp.join(args.out, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def _breakdown_sections(results):
    """Per full-detector row with a breakdown: where each model's time
    goes and the Amdahl bound of its ratio (benchmark --breakdown)."""
    from mmdet_gghost.benchmark.breakdown import breakdown_lines
    lines = []
    for r in results:
        if all(r.get('breakdown_ms') or [None]):
            lines += ['', f'## {r["label"]}: where the time goes', '']
            lines += breakdown_lines(NAMES, r['breakdown_ms'])
    return lines


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    os.makedirs(args.out, exist_ok=True)
    if args.dry_run:
        device = 'cpu'
        torch.set_num_threads(min(2, torch.get_num_threads()))
    else:
        if not torch.cuda.is_available():
            sys.exit('error: no CUDA device visible to torch; use --dry-run '
                     'to check the script on the CPU')
        device = 'cuda'
    t0 = time.time()
    profiles = []
    if not args.skip_profile:
        if args.dry_run:
            profiles = run_profiles(args, device, (64, 64), (1, 2), ('fp32', ))
        else:
            profiles = run_profiles(args, device, (800, 1216), (1, 8),
                                    ('fp32', 'amp_cl'))
    rows = [r for r in MATRIX if not args.only or r[0] in args.only]
    isolated = [] if args.in_process else [
        r for r in rows if r[0] in ISOLATED
        and (device.startswith('cuda') or not needs_cuda(r))]
    results = run_matrix(args, device,
                         [r for r in rows if r not in isolated])
    for row in isolated:
        results += run_isolated(args, row[0])
    write_summary(args, device, results, profiles)
    print(f'done in {time.time() - t0:.0f}s: {args.out}/summary.md',
          flush=True)


if __name__ == '__main__':
    main()
