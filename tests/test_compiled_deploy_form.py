"""The deploy form under torch.compile: one graph, no graph break, no write
into a slice, and the compiled output equals the eager deploy output, for
every family with a deploy form, in NCHW and channels-last, at batch 1
and 2 (the eager deploy form takes different buffer paths there)."""
import operator

import pytest
import torch
import torch._dynamo as dynamo

import mmdet_gghost  # noqa: F401  (registers the models)
from mmdet_gghost.models import (CGhostNet, GGhostRegNet, GGhostResNet,
                                 inference_form)

from official_reference import randomize_norms

FAMILIES = {
    # basic blocks, mix (folded into the cheap conv's bias at batch 1)
    'GGhostResNet18': lambda: GGhostResNet(depth=18, widen_factor=0.25),
    # depthwise cheap op, no mix: only the dense output buffer
    'GGhostResNet18-dw-nomix': lambda: GGhostResNet(
        depth=18, widen_factor=0.25, cheap_op='dwconv3x3', mix=False),
    # official layout: regnetx blocks + end block
    'GGhostRegNet-200MF': lambda: GGhostRegNet(arch='gghost_regnetx_200mf'),
    # Ghost modules writing their ReLUs into one buffer
    'CGhostNet-0.5x': lambda: CGhostNet(widen_factor=0.5),
}
CASES = [(family, layout, batch) for family in FAMILIES
         for layout in ('nchw', 'channels_last') for batch in (1, 2)]


def _deploy(family, layout):
    torch.manual_seed(0)
    model = inference_form(randomize_norms(FAMILIES[family]()), 'deploy')
    if layout == 'channels_last':
        model = model.to(memory_format=torch.channels_last)
    return model


def _input(layout, batch):
    x = torch.randn(batch, 3, 32, 32,
                    generator=torch.Generator().manual_seed(batch))
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    return x


_VIEWS = {operator.getitem, torch.narrow, torch.Tensor.narrow, 'narrow',
          'view', 'select', '__getitem__'}


def _slice_writes(graph_module):
    """Nodes of a dynamo graph that write into a view: an ``out=`` argument,
    or an in-place op (``add_``, ``relu_``, ``inplace=True``) whose input
    is a slice/view of another tensor."""
    found = []
    for node in graph_module.graph.nodes:
        if node.op not in ('call_function', 'call_method'):
            continue
        name = getattr(node.target, '__name__', str(node.target))
        inplace = (name.endswith('_') and not name.startswith('_')) or \
            node.kwargs.get('inplace') is True
        source = node.args[0] if node.args else None
        on_view = isinstance(source, torch.fx.Node) and \
            source.op in ('call_function', 'call_method') and \
            source.target in _VIEWS
        if 'out' in node.kwargs or (inplace and on_view):
            found.append(node.format_node())
    return found


@pytest.mark.parametrize('family,layout,batch', CASES,
                         ids=['-'.join(map(str, c)) for c in CASES])
def test_deploy_form_is_one_graph_without_slice_writes(family, layout,
                                                       batch):
    """``torch._dynamo.explain``: the whole deploy-form backbone is one
    graph (no break), and nothing in it writes into a slice (``out=``
    into a buffer's channels, in-place ops on views), which inductor would
    have to copy around instead of fusing."""
    model, x = _deploy(family, layout), _input(layout, batch)
    dynamo.reset()
    with torch.no_grad():
        explanation = dynamo.explain(model)(x)
    reasons = [str(b.reason).splitlines()[0]
               for b in explanation.break_reasons]
    assert explanation.graph_break_count == 0, reasons
    assert explanation.graph_count == 1, reasons
    writes = [w for g in explanation.graphs for w in _slice_writes(g)]
    assert not writes, writes[:5]


@pytest.mark.parametrize('family', list(FAMILIES))
def test_compiled_deploy_form_equals_eager_deploy_form(family):
    """aot_eager (dynamo + AOTAutograd's functionalisation, no codegen),
    ``fullgraph=True`` (a break raises): the compiled deploy form gives
    the eager deploy form's outputs at batch 1 and 2, NCHW and
    channels-last."""
    for layout in ('nchw', 'channels_last'):
        model = _deploy(family, layout)
        dynamo.reset()
        compiled = torch.compile(model, backend='aot_eager', fullgraph=True)
        for batch in (1, 2):
            x = _input(layout, batch)
            with torch.no_grad():
                expected, got = model(x), compiled(x)
            assert len(got) == len(expected) == 4
            for a, b in zip(expected, got):
                assert b.shape == a.shape
                torch.testing.assert_close(b, a, rtol=1e-4,
                                           atol=1e-4 * a.abs().max())
