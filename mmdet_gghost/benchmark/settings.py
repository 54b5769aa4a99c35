"""The benchmark's options as one object, :class:`BenchmarkSettings`:
defaults, and validation with one message naming the option."""
import dataclasses
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..checkpoint.reading import require_checkpoint


class UsageError(ValueError):
    """Inconsistent options or unusable inputs (reported without trace)."""


def check_file(path: Optional[str], what: str) -> None:
    """``FileNotFoundError`` naming ``what`` and ``path`` if it is given
    and is not a file."""
    if path is not None and not osp.isfile(str(path)):
        raise FileNotFoundError(f'{what} not found: {path}')


# Smallest valid value of each count option (CLI flag: --batch-size ...)
_COUNT_MINIMA = dict(batch_size=1, threads=1, warmup=0, rounds=1,
                     data_batches=1, max_per_img=1)

# full: model.test_step; backbone: the backbone's forward; train:
# model.train_step (loss, backward, optimizer step)
TASKS = ('full', 'backbone', 'train')

# random ground-truth boxes per synthetic training image
SYNTHETIC_BOXES = 3

# CPU: one RetinaNet-R34 call at 800x1333 takes ~8 s on 2 cores, so the
# default CPU run is short (raise --rounds on a bigger machine)
_DEFAULTS = dict(cpu=(1, 6), cuda=(20, 100))  # (warmup, rounds)


@dataclasses.dataclass
class BenchmarkSettings:
    """Everything a benchmark run can be told besides its configs (the
    options of ``tools/benchmark.py``; see there for each one's meaning).

    ``warmup``/``rounds`` ``None``: 1/6 on the CPU, 20/100 on CUDA.
    ``score_thr``: ``'auto'`` (calibrated on synthetic inputs, the config's
    with ``data``), ``None`` (the config's) or a number. Per-config lists
    (``checkpoints``, ``names``, ``eval_results``) take ``'none'``/``'-'``
    as "not given".
    """
    checkpoints: Optional[Sequence[Optional[str]]] = None
    names: Optional[Sequence[str]] = None
    task: str = 'full'
    shape: Optional[Sequence[int]] = None
    data: bool = False
    data_batches: int = 4
    device: str = 'cpu'
    threads: Optional[int] = None
    warmup: Optional[int] = None
    rounds: Optional[int] = None
    batch_size: int = 1
    fuse_conv_bn: bool = False
    deploy: bool = False
    channels_last: bool = False
    amp: bool = False
    compile: bool = False
    compile_mode: Optional[str] = None
    cuda_graphs: bool = False
    cudnn_benchmark: bool = False
    score_thr: Union[float, str, None] = 'auto'
    candidate_fraction: float = 0.01
    max_per_img: Optional[int] = None
    complexity: bool = True
    eval_results: Optional[Sequence[Optional[str]]] = None
    metric_key: Optional[str] = None
    out_dir: Optional[str] = None
    plot: Optional[str] = None
    progress: bool = True
    onnxruntime: bool = False
    allow_partial_checkpoint: bool = False
    breakdown: bool = False

    @property
    def is_cuda(self) -> bool:
        return str(self.device).startswith('cuda')

    @property
    def calibrate(self) -> bool:
        """Calibrate each dense detector's threshold (synthetic images,
        full task, ``score_thr='auto'``; see :func:`calibrate_score_thr`)."""
        return self.score_thr == 'auto' and not self.data and \
            self.task == 'full'

    @property
    def form(self) -> str:
        """The timed form, as :func:`mmdet_gghost.models.inference_form`
        names it."""
        return ('deploy' if self.deploy else
                'fused' if self.fuse_conv_bn else 'eval')

    def validate(self, configs: Sequence[str]) -> 'BenchmarkSettings':
        """Check the options against each other and the files on disk
        (before minutes of model building).

        Returns:
            BenchmarkSettings: a copy with the per-config lists expanded,
            ``names``, ``warmup``, ``rounds`` and ``compile`` (implied by
            ``compile_mode``) filled in.

        Raises:
            UsageError: one message naming the offending option.
            FileNotFoundError: a config, checkpoint or eval-results file.
        """
        self._check_counts()
        n = len(configs)
        if n == 0:
            raise UsageError('give at least one config')
        checkpoints = _per_config(self.checkpoints, n, '--checkpoint')
        eval_results = _per_config(self.eval_results, n, '--eval-results')
        for paths, what in ((configs, 'Config file'),
                            (eval_results, 'Eval results file')):
            for p in paths:
                check_file(p, what)
        for p in checkpoints:  # a file or a URL, as tools/test.py takes
            if p is not None:
                require_checkpoint(p)
        compile = self.compile or self.compile_mode is not None
        self._check_modes(compile)
        if self.plot and not any(e is not None for e in eval_results):
            raise UsageError('--plot draws mAP vs FPS: give --eval-results')
        base = [osp.splitext(osp.basename(str(c)))[0] for c in configs]
        names = list(self.names or [  # '#i' tells equal file names apart
            b if base.count(b) == 1 else f'{b}#{i}'
            for i, b in enumerate(base)])
        if len(names) != n:
            raise UsageError(f'--names: give one per config ({n})')
        if self.calibrate and not 0 < self.candidate_fraction <= 1:
            raise UsageError('--candidate-fraction must be in (0, 1], got '
                             f'{self.candidate_fraction}')
        warmup, rounds = _DEFAULTS['cuda' if self.is_cuda else 'cpu']
        return dataclasses.replace(
            self, checkpoints=checkpoints, eval_results=eval_results,
            names=names, compile=compile,
            warmup=int(warmup if self.warmup is None else self.warmup),
            rounds=int(rounds if self.rounds is None else self.rounds))

    def _check_counts(self) -> None:
        """A count option below its minimum (``None`` = default) or a
        non-positive ``shape``."""
        for key, low in _COUNT_MINIMA.items():
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, np.integer))
                                      or value < low):
                flag = '--' + key.replace('_', '-')
                raise UsageError(f'{flag} must be an integer >= {low}, got '
                                 f'{value!r}')
        shape = self.shape
        if shape is not None and (len(shape) != 2 or any(
                not isinstance(v, (int, np.integer)) or v < 1
                for v in shape)):
            raise UsageError(f'--shape takes two integers H W >= 1, got '
                             f'{list(shape)}')

    def _check_modes(self, compile: bool) -> None:
        """Task, device and the runtime options that need one."""
        if self.task not in TASKS:
            raise UsageError(
                f'task must be "full", "backbone" or "train", got '
                f'{self.task!r}')
        if self.task == 'train':
            self._check_train()
        if self.cuda_graphs and not self.is_cuda:
            raise UsageError(
                f'--cuda-graphs needs a CUDA device (got --device '
                f'{self.device}); CUDA graphs do not exist on the CPU: use '
                '--device cuda, or drop --cuda-graphs')
        if self.cuda_graphs and compile:
            raise UsageError(
                '--cuda-graphs and --compile/--compile-mode are two routes '
                'to the same thing: use --cuda-graphs (eager capture) or '
                '--compile-mode reduce-overhead')
        if self.is_cuda and not torch.cuda.is_available():
            raise UsageError(f'--device {self.device}: CUDA is not '
                             'available')
        if self.amp and not self.is_cuda:
            what = ("mmengine's AmpOptimWrapper" if self.task == 'train'
                    else 'CUDA autocast')
            raise UsageError(f'--amp is {what} (float16): use --device cuda')
        if self.breakdown and (self.task != 'full' or self.cuda_graphs
                               or self.onnxruntime):
            raise UsageError(
                '--breakdown times the parts of the full PyTorch detector '
                'one by one (a CUDA graph replays them as one, ONNX Runtime '
                'as one session): use --task full without --cuda-graphs / '
                '--onnxruntime, or drop --breakdown')
        if self.onnxruntime and (self.task != 'full' or self.is_cuda):
            raise UsageError(
                '--onnxruntime times the full detector on the CPU (ONNX '
                'Runtime CPU provider): use --task full and --device cpu')

    def _check_train(self) -> None:
        """Options with no meaning for a training step (``task='train'``):
        inference forms, inference-only runtimes, test_cfg overrides."""
        refused = [
            (self.fuse_conv_bn or self.deploy, '--fuse-conv-bn/--deploy',
             'an inference form (BN folded, G-Ghost switched to deploy), '
             'which does not train'),
            (self.cuda_graphs, '--cuda-graphs',
             'a capture of the inference forward only'),
            (self.onnxruntime, '--onnxruntime', 'an inference runtime'),
            (self.score_thr != 'auto' or self.max_per_img is not None,
             '--score-thr/--max-per-img', 'test_cfg, i.e. post-processing, '
             'which a train step does not run'),
        ]
        for given, flag, what in refused:
            if given:
                raise UsageError(
                    f'{flag} with --task train: {what}; a train step times '
                    f'the model as it trains: drop {flag}')

    def record(self) -> dict:
        """What the reports say about the run's settings (after
        :meth:`validate`; ``threads`` = torch's thread count now)."""
        return dict(self._common_record(), **self._train_record())

    def _common_record(self) -> dict:
        """The settings of every task."""
        return dict(
            task=self.task, device=self.device, batch_size=self.batch_size,
            shape=list(self.shape) if self.shape else None,
            inputs=self._inputs_record(),
            warmup=self.warmup, rounds=self.rounds,
            threads=torch.get_num_threads(),
            form='train' if self.task == 'train' else self.form,
            channels_last=self.channels_last, amp=self.amp,
            compile=self.compile,
            onnxruntime=('also each model exported by mmdeploy, in ONNX '
                         'Runtime (mmdet_gghost/benchmark/ort.py)'
                         if self.onnxruntime else None),
            compile_mode=self.compile_mode, cuda_graphs=self.cuda_graphs,
            cudnn_benchmark=(bool(self.cudnn_benchmark) if self.is_cuda
                             else None),
            score_thr=(f'calibrated: {self.candidate_fraction:g} of the '
                       '(anchor, class) pairs pass' if self.calibrate else
                       None if self.task == 'train' else
                       self.fixed_score_thr),
            max_per_img=self.max_per_img, breakdown=self.breakdown)

    def _train_record(self) -> dict:
        """The optimizer and what the complexity columns count, for
        ``task='train'`` (else nothing)."""
        if self.task != 'train':
            return {}
        return dict(
            optim_wrapper="the config's optim_wrapper, built by mmengine's "
            'build_optim_wrapper' + (', type AmpOptimWrapper' if self.amp
                                     else ''),
            complexity_note=(
                'params / MACs / acts / ops: the forward of the full model, '
                'as for task full (backward and optimizer step not counted, '
                'hence no GFLOP/s)' if self.complexity else None))

    def _inputs_record(self) -> str:
        """What the timed calls were fed."""
        split = 'train' if self.task == 'train' else 'test'
        if self.data:
            return f'{split} dataloader'
        return 'synthetic uint8 noise' + (
            f' with {SYNTHETIC_BOXES} random gt boxes (or a gt label) per '
            'image' if split == 'train' else '')

    @property
    def fixed_score_thr(self) -> Optional[float]:
        """The threshold models are built with: ``'auto'`` -> the config's
        with ``data`` (``None``), else 0 until calibrated."""
        if self.score_thr == 'auto':
            return None if self.data else 0.0
        return self.score_thr


def _per_config(values, n, what):
    """Expand an optional per-config list; 'none'/'-' mean "not given"."""
    if not values:
        return [None] * n
    if len(values) != n:
        raise UsageError(f'{what}: give one per config ({n}), got '
                         f'{len(values)} (use "none" as placeholder)')
    return [None if v in (None, 'none', 'None', '-') else v for v in values]
