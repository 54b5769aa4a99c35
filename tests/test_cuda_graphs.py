"""CUDA-graph runner and its benchmark options, checked on the CPU: the
capture/replay bookkeeping runs against a recording stand-in for
``torch.cuda.CUDAGraph``; the real capture needs a GPU (tools/gpu/)."""
import pytest
import torch
from torch import nn

from mmdet_gghost.cuda_graphs import (CudaGraphRunner, disable_cuda_graphs,
                                      enable_cuda_graphs, graph_key)


class FakeGraphs:
    """Capture = one eager call on the static input, replay = run it again
    on the static input (what a real graph does with the recorded kernels):
    outputs land in the same static buffer."""

    def __init__(self):
        self.captures = []
        self.replays = 0

    def check(self, x):
        pass

    def capture(self, fn, static_input, warmup):
        for _ in range(warmup):
            fn(static_input)
        out = fn(static_input)
        backend = self

        class Graph:
            def replay(self):
                backend.replays += 1
                out.copy_(fn(static_input))

        self.captures.append(tuple(static_input.shape))
        return Graph(), out


def test_runner_captures_once_per_shape_and_replays():
    backend = FakeGraphs()
    calls = []

    def fn(x):
        calls.append(x.data_ptr())
        return x * 2

    runner = CudaGraphRunner(fn, warmup=2, backend=backend)
    a, b = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        out_a = runner(a)
        torch.testing.assert_close(out_a, a * 2)
        out_b = runner(b)
        # one capture; the second call only copied its input and replayed
        assert backend.captures == [(1, 3, 4, 4)]
        assert backend.replays == 2
        torch.testing.assert_close(out_b, b * 2)
        # static output buffer: the replay overwrote the first result
        assert out_b is out_a
        # fn only ever saw the static input buffer
        assert len(set(calls)) == 1 and a.data_ptr() not in calls
        runner(torch.randn(2, 3, 4, 4))  # new shape: captured anew
        runner(b.contiguous(memory_format=torch.channels_last))
    assert backend.captures == [(1, 3, 4, 4), (2, 3, 4, 4), (1, 3, 4, 4)]
    assert len(runner.graphs) == 3
    runner.reset()
    assert runner.graphs == {}


def test_graph_key_separates_layout_dtype_and_autocast():
    x = torch.randn(1, 3, 4, 4)
    keys = {graph_key(x), graph_key(x.half()),
            graph_key(x.contiguous(memory_format=torch.channels_last)),
            graph_key(torch.randn(1, 3, 4, 5))}
    assert len(keys) == 4
    assert graph_key(x) == graph_key(torch.randn(1, 3, 4, 4))


def test_runner_errors():
    with pytest.raises(ValueError, match='warmup must be >= 1'):
        CudaGraphRunner(lambda x: x, warmup=0)
    runner = CudaGraphRunner(lambda x: x)
    with pytest.raises(RuntimeError, match='under torch.no_grad'):
        runner(torch.randn(2))
    with torch.no_grad():
        if not torch.cuda.is_available():
            with pytest.raises(RuntimeError,
                               match='CUDA graphs need a CUDA device'):
                runner(torch.randn(2))
        else:
            with pytest.raises(RuntimeError, match='input on a CUDA device'):
                runner(torch.randn(2))


class PassThrough(CudaGraphRunner):
    """The runner's wiring without a graph: fn called eagerly."""

    def __call__(self, x):
        return self.fn(x)


def test_enable_on_a_detector_keeps_predictions(tmp_path):
    from tools_helpers import write_small_retinanet

    from mmdet_gghost.analysis import build_model_from_config
    from mmdet_gghost.benchmark import make_inputs
    cfg = write_small_retinanet(tmp_path / 'tiny.py')
    model, _, _ = build_model_from_config(cfg)
    batch = make_inputs('det', (64, 96), 1)[0]
    seen = []
    with torch.no_grad():
        expected = model.test_step(batch)[0].pred_instances
        runner = enable_cuda_graphs(model, 'full', runner_cls=PassThrough)
        orig_fn = runner.fn
        runner.fn = lambda x: seen.append(tuple(x.shape)) or orig_fn(x)
        got = model.test_step(batch)[0].pred_instances
    # the graphed function got the preprocessed tensor, i.e. it covers
    # backbone + neck + head; post-processing ran outside on its outputs
    assert seen == [(1, 3, 64, 96)]
    torch.testing.assert_close(got.bboxes, expected.bboxes)
    torch.testing.assert_close(got.scores, expected.scores)
    disable_cuda_graphs(model)
    assert 'extract_feat' not in model.__dict__
    assert 'forward' not in model.bbox_head.__dict__


def test_enable_refuses_two_stage_and_unknown_models():
    class TwoStage(nn.Module):
        rpn_head = nn.Identity()
        roi_head = nn.Identity()

    with pytest.raises(ValueError, match='two-stage'):
        enable_cuda_graphs(TwoStage())
    with pytest.raises(ValueError, match='no extract_feat'):
        enable_cuda_graphs(nn.Conv2d(1, 1, 1))
    conv = nn.Conv2d(1, 1, 1)
    runner = enable_cuda_graphs(conv, 'backbone', runner_cls=PassThrough)
    assert conv.forward is runner


def test_benchmark_refuses_cuda_graphs_without_cuda_and_with_compile(
        tmp_path):
    from mmdet_gghost.benchmark import UsageError, run_benchmark
    cfg = tmp_path / 'c.py'
    cfg.write_text('model = dict()')
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match='--cuda-graphs needs a CUDA'):
            run_benchmark([str(cfg)], cuda_graphs=True, device='cpu')
    with pytest.raises(UsageError, match='two routes to the same thing'):
        run_benchmark([str(cfg)], cuda_graphs=True, device='cuda',
                      compile_mode='reduce-overhead')


def test_compile_mode_reaches_torch_compile(monkeypatch):
    from mmdet_gghost.benchmark.models import compile_parts
    modes = []
    monkeypatch.setattr(torch, 'compile',
                        lambda fn, mode=None: modes.append(mode) or fn)
    model = nn.Module()
    model.backbone = nn.Conv2d(1, 1, 1)
    model.neck = nn.Conv2d(1, 1, 1)
    compile_parts(model, 'full', 'reduce-overhead')
    assert modes == ['reduce-overhead', 'reduce-overhead']
