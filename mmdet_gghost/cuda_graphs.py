"""CUDA graphs for the network part of a model, captured once per input
shape and replayed: at batch 1 a GPU backbone mostly waits for the host to
launch its kernels; a graph launches them all at once."""
from typing import Callable, Dict

import torch
from torch import nn


def graph_key(x: torch.Tensor) -> tuple:
    """What a captured graph is specific to: shape, strides (memory format),
    dtype, device and the CUDA autocast state."""
    return (tuple(x.shape), x.stride(), x.dtype, str(x.device),
            torch.is_autocast_enabled('cuda'),
            torch.get_autocast_dtype('cuda'))


def _capture(fn, static_input, warmup):
    """``(torch.cuda.CUDAGraph, its static output)`` of ``fn``."""
    if not torch.cuda.is_available():
        raise RuntimeError(
            'CUDA graphs need a CUDA device, and CUDA is not available '
            'here; run the model without them on the CPU')
    if static_input.device.type != 'cuda':
        raise RuntimeError(
            f'CUDA graphs need the input on a CUDA device, got '
            f'{static_input.device}; move the model and inputs with '
            '.cuda()')
    # warm up on a side stream (cuDNN autotuning, lazy init), as the
    # PyTorch CUDA-graph docs prescribe
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn(static_input)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_output = fn(static_input)
    return graph, static_output


class CudaGraphRunner:
    """``runner(x)`` = ``fn(x)``, replayed from a CUDA graph.

    The first call with a new :func:`graph_key` copies ``x`` into a static
    input buffer, warms ``fn`` up (``warmup`` eager calls) and captures it;
    every call then copies ``x`` into that buffer and replays. Inference
    only: call it under ``torch.no_grad()``. Each graph keeps its own
    memory. ``fn``: tensor -> tensor(s), with no host synchronisation and
    no data-dependent shapes; its outputs come back in static buffers that
    the next call overwrites.
    """

    def __init__(self, fn: Callable, warmup: int = 3, backend=None):
        if warmup < 1:
            raise ValueError(f'warmup must be >= 1 (cuDNN picks its '
                             f'algorithms there), got {warmup}')
        self.fn, self.warmup = fn, warmup
        # ``backend``: a stand-in with ``capture`` (tests without a GPU)
        self.capture = backend.capture if backend else _capture
        self.graphs: Dict[tuple, tuple] = {}

    def __call__(self, x: torch.Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError('CudaGraphRunner is for inference: call it '
                               'under torch.no_grad()')
        key = graph_key(x)
        if key not in self.graphs:
            static_input = x.clone()  # keeps the memory format
            self.graphs[key] = (static_input, *self.capture(
                self.fn, static_input, self.warmup))
        static_input, graph, static_output = self.graphs[key]
        static_input.copy_(x)
        graph.replay()
        return static_output

    def reset(self):
        """Drop every captured graph (and the memory it holds)."""
        self.graphs.clear()


def enable_cuda_graphs(model: nn.Module, task: str = 'full',
                       runner_cls=CudaGraphRunner) -> CudaGraphRunner:
    """Run ``model``'s network part from CUDA graphs, in place::

        model = deploy_model(model.cuda().eval())  # op-lean deploy form
        enable_cuda_graphs(model)
        results = model.test_step(batch)           # captured on 1st call

    ``task='backbone'``: ``model.backbone(x)`` (or ``model(x)`` for a bare
    backbone) is replayed. ``task='full'``: for a single-stage detector
    (``bbox_head``, no ``rpn_head``) or a classifier (``head``), backbone,
    neck and head forward are one graph, post-processing (data-dependent
    shapes) stays eager: ``extract_feat`` then hands the preprocessed
    tensor through and the head's ``forward`` replays the graph, so
    ``test_step``/``predict`` work unchanged. Two-stage detectors are
    refused (their RoI stage depends on the proposals).

    Returns:
        the :class:`CudaGraphRunner` (e.g. to ``reset()`` it).
    """
    if task == 'backbone':
        target = getattr(model, 'backbone', model)
        target.forward = runner_cls(target.forward)
        return target.forward
    if task != 'full':
        raise ValueError(f'task must be "full" or "backbone", got {task!r}')
    if getattr(model, 'rpn_head', None) is not None or \
            getattr(model, 'roi_head', None) is not None:
        raise ValueError(
            f'{type(model).__name__}: CUDA graphs cover single-stage '
            'detectors and classifiers (network part = backbone + neck + '
            'head); a two-stage detector\'s RoI stage depends on its '
            'proposals. Use task="backbone" for it')
    head = next((getattr(model, n) for n in ('bbox_head', 'head')
                 if isinstance(getattr(model, n, None), nn.Module)), None)
    if head is None or not hasattr(model, 'extract_feat'):
        raise ValueError(f'{type(model).__name__} has no extract_feat and '
                         'bbox_head/head: use task="backbone"')
    # bound now, before both are replaced on the instance below
    extract_feat, head_forward = model.extract_feat, head.forward
    runner = runner_cls(lambda x: head_forward(extract_feat(x)))
    # the head's predict() calls self(feats): feats is the raw tensor now
    model.extract_feat = lambda x: x
    head.forward = runner
    return runner


def disable_cuda_graphs(model: nn.Module) -> None:
    """Undo :func:`enable_cuda_graphs` (removes the instance patches)."""
    for m in (model, getattr(model, 'backbone', None),
              getattr(model, 'bbox_head', None), getattr(model, 'head', None)):
        if m is not None:
            m.__dict__.pop('forward', None)
            m.__dict__.pop('extract_feat', None)
