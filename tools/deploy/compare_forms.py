"""CPU latency of a config's backbone (or whole tensor forward) in its
inference forms: eval, fused (BN folded), deploy (fused, G-Ghost op-lean),
channels-last, torch.compile'd.

Example (docs/deploy.md)::

    python tools/deploy/compare_forms.py configs/retinanet_gghost_r34_1x_coco.py \\
        --forms eval fused compiled_eval compiled_fused \\
        --shape 800 1216 --threads 2 --rounds 7

Forms are timed in interleaved rounds (eval, fused, ..., eval, fused, ...)
by the benchmark's timing core (``mmdet_gghost.benchmark.timing``);
reported: median and min latency, FPS, the FPS ratio to the first form
(median over rounds of the per-round speed ratio, > 1 = faster; the same
ratio as ``tools/benchmark.py``), the untimed first call (compile time for
``compiled_*``), and each form's max relative output error vs the first
form.
``tools/benchmark.py`` applies ``--fuse-conv-bn`` / ``--deploy`` /
``--compile`` to every config of a run, so it cannot put fused next to
unfused; this tool does.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

FORMS = ('eval', 'fused', 'deploy', 'channels_last', 'fused_channels_last',
         'deploy_channels_last')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Interleaved CPU latency of eval / fused / '
        'channels-last / compiled forms of one model',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('config')
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--allow-partial-checkpoint', action='store_true',
                   help='use a checkpoint that does not fit the model '
                   '(what does not fit keeps init_weights())')
    p.add_argument('--target', choices=['backbone', 'model'],
                   default='backbone')
    p.add_argument('--forms', nargs='+', default=['eval', 'fused'],
                   help='any of %s, each optionally prefixed by "compiled_"'
                   % ', '.join(FORMS))
    p.add_argument('--compile-backend', default='inductor')
    p.add_argument('--shape', type=int, nargs=2, default=(800, 1216),
                   metavar=('H', 'W'))
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rounds', type=int, default=7)
    p.add_argument('--warmup', type=int, default=1)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from mmdet_gghost.benchmark import inference_forms, time_forms
    from mmdet_gghost.export import build_export_model, export_module
    model, _, scope = build_export_model(
        args.config, args.checkpoint,
        allow_partial_checkpoint=args.allow_partial_checkpoint)
    module, kind = export_module(model, scope, args.target)
    forms = inference_forms(module, args.forms,
                         compile_backend=args.compile_backend)
    shape = (args.batch_size, 3, *args.shape)
    res = time_forms(forms, shape, rounds=args.rounds, warmup=args.warmup)
    print(f'{kind} of {args.config}, input {"x".join(map(str, shape))}, '
          f'{args.threads} threads, {args.rounds} interleaved rounds, '
          f'torch {torch.__version__}')
    print(f'{"form":<26}{"median ms":>11}{"min ms":>9}{"FPS":>9}'
          f'{"FPS ratio":>11}{"1st call s":>12}{"max rel err":>13}')
    for name, r in res.items():
        print(f'{name:<26}{r["median_ms"]:>11.1f}{r["min_ms"]:>9.1f}'
              f'{r["fps"]:>9.2f}{r["fps_ratio"]:>11.3f}'
              f'{r["first_call_s"]:>12.1f}{r["max_rel"]:>13.1e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
