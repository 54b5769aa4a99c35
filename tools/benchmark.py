"""Compare the inference (or training) speed of mmdet / mmpretrain configs.

Examples::

    # RetinaNet G-Ghost-R34 vs R34, full detector (preprocess + forward +
    # NMS), synthetic 800x1333 images, CPU
    python tools/benchmark.py configs/retinanet_r34_1x_coco.py \\
        configs/retinanet_gghost_r34_1x_coco.py --out work_dirs/bench

    # GPU, AMP, batch 8, with mAP from tools/test.py and the mAP-vs-FPS plot
    python tools/benchmark.py A.py B.py --device cuda --amp --batch-size 8 \\
        --checkpoint a.pth b.pth --eval-results a.json b.json \\
        --plot work_dirs/bench/map_vs_fps.png --out work_dirs/bench

    # the backbones alone
    python tools/benchmark.py A.py B.py --task backbone

    # PyTorch (deploy form) and ONNX Runtime (via mmdeploy), 2 threads
    python tools/benchmark.py A.py B.py --deploy --onnxruntime --threads 2

    # one training iteration (train_step: loss, backward, optimizer step
    # with the config's optim_wrapper) on train-dataloader batches
    python tools/benchmark.py A.py B.py --task train --data --batch-size 2

Models are timed in interleaved rounds (A B A B ...); the FPS ratio to the
first config is the median of per-round ratios. See
``mmdet_gghost/benchmark/`` for what exactly is timed.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def _score_thr(text):
    """'auto', 'config' or a number (argparse reports anything else)."""
    if text in ('auto', 'config'):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected auto, config or a number, got {text!r}') from None


class _Deprecated(argparse.Action):
    """An old option name: stores into the new one, with a warning."""

    def __call__(self, parser, namespace, values, option_string=None):
        new = '--' + self.dest.replace('_', '-')
        print(f'warning: {option_string} is deprecated, use {new}',
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Interleaved FPS benchmark of mmdet/mmpretrain configs',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('configs', nargs='+', help='config files; the first one '
                   'is the reference of the FPS ratio')
    p.add_argument('--checkpoint', nargs='+', default=None, metavar='CKPT',
                   help='one per config ("none" = no checkpoint); default: '
                   'none, i.e. the model\'s own init_weights() (pretrained '
                   'init_cfg removed, fixed seed)')
    p.add_argument('--allow-partial-checkpoint', action='store_true',
                   help='time a checkpoint that does not fit its model '
                   '(what does not fit keeps init_weights()); by default '
                   'that is an error')
    p.add_argument('--names', nargs='+', default=None,
                   help='labels, one per config (default: config file names)')
    p.add_argument('--task', choices=['full', 'backbone', 'train'],
                   default='full',
                   help='full: model.test_step (preprocess + forward + '
                   'post-processing/NMS); backbone: backbone forward only; '
                   'train: model.train_step, one training iteration (loss, '
                   'backward, step of the optimizer that mmengine builds '
                   'from the config\'s optim_wrapper; FPS = training '
                   'images/s)')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   default=None, help='synthetic image size (default 800 '
                   '1333 for detectors, 224 224 for classifiers)')
    p.add_argument('--data', action='store_true',
                   help='use real images from each config\'s test '
                   'dataloader (train dataloader, with its ground truth, '
                   'for --task train; loaded before timing) instead of '
                   'synthetic ones (with --task train: plus 3 random gt '
                   'boxes or a gt label per image)')
    p.add_argument('--data-batches', type=int, default=4,
                   help='with --data: batches loaded and cycled through')
    _add_runtime_options(p)
    _add_output_options(p)
    return p.parse_args(argv)


def _add_runtime_options(p):
    """Device, threads, rounds and the form each model runs in."""
    p.add_argument('--device', default='cpu', help='cpu | cuda | cuda:N')
    p.add_argument('--threads', type=int, default=None,
                   help='torch.set_num_threads for CPU runs (recorded)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed rounds (default 1 on CPU, 20 on CUDA)')
    p.add_argument('--rounds', type=int, default=None,
                   help='timed rounds, one call per model each (default 6 '
                   'on CPU, 100 on CUDA)')
    p.add_argument('--iters', type=int, dest='rounds', action=_Deprecated,
                   help=argparse.SUPPRESS)  # the old name of --rounds
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--fuse-conv-bn', action='store_true',
                   help="time the 'fused' form: BN folded into convs (all "
                   "models), as mmdet's tools do")
    p.add_argument('--deploy', action='store_true',
                   help="time the 'deploy' form: BN folded and every "
                   'G-Ghost backbone switched to its op-lean form '
                   '(switch_to_deploy; what mmdeploy exports)')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--amp', action='store_true',
                   help='CUDA autocast float16 (--task train: mmengine\'s '
                   'AmpOptimWrapper)')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile backbone/neck/head (compile time is '
                   'reported apart, as the first call)')
    p.add_argument('--compile-mode', default=None,
                   choices=['default', 'reduce-overhead', 'max-autotune',
                            'max-autotune-no-cudagraphs'],
                   help='torch.compile mode (implies --compile); '
                   'reduce-overhead = the compiler\'s CUDA graphs')
    p.add_argument('--cuda-graphs', action='store_true',
                   help='CUDA only: capture the network part (preprocessed '
                   'tensor -> head outputs) once per input shape and replay '
                   'it; post-processing stays eager '
                   '(mmdet_gghost.cuda_graphs)')
    p.add_argument('--cudnn-benchmark', action='store_true',
                   help='CUDA: torch.backends.cudnn.benchmark = True')


def _add_output_options(p):
    """Post-processing load, metrics, reports and extra runtimes."""
    p.add_argument('--score-thr', default='auto', type=_score_thr,
                   help='detector test_cfg.score_thr; auto: with synthetic '
                   'inputs calibrated per model so that '
                   '--candidate-fraction of the (anchor, class) pairs pass '
                   '(the same post-processing load for every model), the '
                   'config\'s value with --data; config: always the '
                   'config\'s value; a number: that value')
    p.add_argument('--candidate-fraction', type=float, default=0.01,
                   help='--score-thr auto: share of (anchor, class) pairs '
                   'per image that pass the threshold (default 0.01)')
    p.add_argument('--max-per-img', type=int, default=None,
                   help='detector test_cfg.max_per_img (default: config)')
    p.add_argument('--breakdown', action='store_true',
                   help='also time the parts of each single-stage detector '
                   '(preprocess, backbone, neck, head, post-processing) one '
                   'by one, with the ratio it would have if only the '
                   'backbone differed (--task full)')
    p.add_argument('--no-complexity', action='store_true',
                   help='skip the params/MACs/activations columns')
    p.add_argument('--eval-results', nargs='+', default=None,
                   metavar='JSON', help='tools/test.py metrics JSON, one '
                   'per config ("none" for missing); adds a metric column')
    p.add_argument('--metric-key', default=None,
                   help='metric to read (default: coco/bbox_mAP, '
                   'accuracy/top1, ... whichever is present)')
    p.add_argument('--plot', default=None, metavar='PNG',
                   help='draw metric vs FPS (needs --eval-results)')
    p.add_argument('--out', default=None, metavar='DIR',
                   help='write benchmark.json/.csv/.md here')
    p.add_argument('--onnxruntime', action='store_true',
                   help='also time each detector in ONNX Runtime (CPU): '
                   'the same weights and test_cfg exported with mmdeploy '
                   '(network + NMS in one graph), a row after its PyTorch '
                   'row, same images, interleaved')
    p.add_argument('--no-progress', action='store_true')


def settings_from_args(args):
    """The :class:`BenchmarkSettings` of parsed command-line options."""
    from mmdet_gghost.benchmark import BenchmarkSettings
    return BenchmarkSettings(
        checkpoints=args.checkpoint,
        names=args.names,
        task=args.task,
        shape=args.shape,
        data=args.data,
        data_batches=args.data_batches,
        device=args.device,
        threads=args.threads,
        warmup=args.warmup,
        rounds=args.rounds,
        batch_size=args.batch_size,
        fuse_conv_bn=args.fuse_conv_bn,
        deploy=args.deploy,
        channels_last=args.channels_last,
        amp=args.amp,
        compile=args.compile,
        compile_mode=args.compile_mode,
        cuda_graphs=args.cuda_graphs,
        cudnn_benchmark=args.cudnn_benchmark,
        score_thr=None if args.score_thr == 'config' else args.score_thr,
        candidate_fraction=args.candidate_fraction,
        max_per_img=args.max_per_img,
        complexity=not args.no_complexity,
        eval_results=args.eval_results,
        metric_key=args.metric_key,
        out_dir=args.out,
        plot=args.plot,
        progress=not args.no_progress,
        onnxruntime=args.onnxruntime,
        allow_partial_checkpoint=args.allow_partial_checkpoint,
        breakdown=args.breakdown)


def main(argv=None):
    args = parse_args(argv)
    from mmdet_gghost.apis.common import USER_ERRORS
    from mmdet_gghost.benchmark import UsageError, run_benchmark
    try:
        return run_benchmark(args.configs, settings_from_args(args))
    except (UsageError, *USER_ERRORS) as e:
        # one clear line instead of a traceback for user errors
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
