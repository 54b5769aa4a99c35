"""Ops per forward: every aten op PyTorch dispatches but views and
allocations, counted with a ``TorchDispatchMode`` (deterministic, on any
device).  At batch 1 on a GPU latency follows this more than MACs: the host
launches one kernel per op and the GPU waits on it."""
import contextlib
from collections import Counter
from typing import Dict, Sequence, Tuple
from unittest import mock

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode


# aten ops that allocate or alias without launching a kernel (views are
# recognised from their schema: the output aliases an input)
NO_KERNEL_OPS = frozenset({
    'empty', 'empty_like', 'empty_strided', 'new_empty', 'new_empty_strided',
    'lift_fresh', '_unsafe_view', 'resize_'
})


class _OpCounter(TorchDispatchMode):
    """Counts the ops that launch device work (neither a view nor in
    :data:`NO_KERNEL_OPS`), for every module name in the ``active`` stack
    and per op name."""

    def __init__(self):
        super().__init__()
        self.active = ['']
        self.by_module = Counter()
        self.by_op = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        if not func.is_view and packet.__name__ not in NO_KERNEL_OPS:
            self.by_module.update(self.active)
            self.by_op[str(packet).replace('aten.', '')] += 1
        return func(*args, **(kwargs or {}))


def count_ops(model: nn.Module, inputs: Tuple,
              module_names: Sequence[str] = ()) -> Tuple[Dict[str, int],
                                                         Dict[str, int]]:
    """Device-launching aten ops of one ``model(*inputs)`` (no grad).

    Returns ``(by_module, by_op)``: ``by_module['']`` is the total, its other
    keys are ``module_names``, submodules (dotted names) counted separately,
    e.g. the backbone stages (nested names are fine: an op counts for every
    tracked module it runs in); ``by_op`` maps op names such as
    ``'convolution'`` to counts.
    """
    counter = _OpCounter()
    modules = dict(model.named_modules())

    def tracked(name, forward):
        def run(*args, **kwargs):
            counter.active.append(name)
            try:
                return forward(*args, **kwargs)
            finally:
                counter.active.pop()
        return run

    with contextlib.ExitStack() as patches:
        # ``forward`` wrapped on the instance rather than hooks: mmdet calls
        # e.g. ``self.bbox_head.forward(x)`` directly, past the hooks
        for name in module_names:
            m = modules[name]
            patches.enter_context(
                mock.patch.object(m, 'forward', tracked(name, m.forward)))
        with torch.no_grad(), counter:
            model(*inputs)
    by_module = {n: counter.by_module[n] for n in ['', *module_names]}
    return by_module, dict(counter.by_op)
