"""The one timing core (FPS benchmark and deploy-form comparison): n
callables timed in interleaved rounds (1, 2, ..., n, again), so that drifts
of a busy machine hit all alike; CUDA calls bracketed by synchronisation
(launches are asynchronous); ratios = per-round speed ratios' median."""
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters (CPU for a parameterless one)."""
    return next((p.device for p in model.parameters()), torch.device('cpu'))


def sync_for(device) -> Optional[Callable[[], None]]:
    """``torch.cuda.synchronize`` for a CUDA ``device`` (``'cuda:0'`` or a
    ``torch.device``), else ``None``."""
    return torch.cuda.synchronize if str(device).startswith('cuda') else None


def time_first_call(fn: Callable[[], Any],
                    sync: Optional[Callable[[], None]] = None
                    ) -> Tuple[float, Any]:
    """``(seconds, output)`` of one call of ``fn`` between two ``sync()``:
    a first call, which holds compilation, CUDA-graph capture or lazy init
    (kept out of the rounds), or a timed call of :func:`time_interleaved`.
    """
    sync, now = sync or (lambda: None), time.perf_counter
    sync()
    t0 = now()
    out = fn()
    sync()
    return now() - t0, out


def time_interleaved(callables: Sequence[Callable[[], Any]], rounds: int,
                     warmup: int = 0,
                     sync: Optional[Callable[[], None]] = None,
                     on_round: Optional[Callable[[int], None]] = None
                     ) -> List[np.ndarray]:
    """Time zero-argument callables in interleaved rounds: A B C, A B C...

    ``warmup`` untimed rounds come first; ``sync`` (:func:`sync_for`) is
    called right before starting and stopping each timer, ``on_round(r)``
    after each timed round (progress).

    Returns:
        list (one per callable) of float64 arrays of shape ``(rounds,)``:
        wall-clock seconds of each call, aligned by round.
    """
    for _ in range(warmup):
        for fn in callables:
            fn()
    if sync is not None:
        sync()
    lat = np.zeros((len(callables), rounds), dtype=np.float64)
    for r in range(rounds):
        for i, fn in enumerate(callables):
            lat[i, r] = time_first_call(fn, sync)[0]
        if on_round is not None:
            on_round(r)
    return list(lat)


def summarize(latencies: Sequence[np.ndarray],
              batch_sizes: Union[int, Sequence[int]] = 1,
              names: Optional[Sequence[str]] = None,
              macs: Optional[Sequence[Optional[float]]] = None
              ) -> List[dict]:
    """Per-model statistics of ``latencies`` (per model, seconds per call,
    aligned by round, as :func:`time_interleaved` returns them), with
    ``batch_sizes`` images per call (one int for all, or one per model) and
    ``macs`` per image of each model's timed network (or ``None``).

    Returns:
        list of dicts (one per model): ``name, batch_size, rounds,
        median_ms, mean_ms, p10_ms, p90_ms, fps`` (= batch / median
        latency), ``fps_ratio`` (median over rounds of this model's FPS
        divided by the first model's FPS *in the same round*),
        ``fps_ratio_p10/p90`` (spread of those per-round ratios) and
        ``gflops_per_s`` (= 2 * MACs * batch / median latency / 1e9; one
        MAC = two floating-point operations; ``None`` without MACs).
    """
    lat = [np.asarray(x, dtype=np.float64) for x in latencies]
    n = len(lat)
    if any(len(x) != len(lat[0]) for x in lat):
        raise ValueError('latency arrays must be aligned by round '
                         '(same length)')
    bs = [int(b) for b in np.broadcast_to(batch_sizes, n)]
    names = list(names or [f'model{i}' for i in range(n)])
    macs = list(macs or [None] * n)
    rows = []
    for i in range(n):
        med = float(np.median(lat[i]))
        p10, p90 = np.percentile(lat[i], [10, 90]) * 1e3
        ratios = (bs[i] / lat[i]) / (bs[0] / lat[0])  # per round
        r10, r90 = np.percentile(ratios, [10, 90])
        rows.append(dict(
            name=names[i], batch_size=bs[i], rounds=len(lat[i]),
            median_ms=med * 1e3, mean_ms=float(np.mean(lat[i])) * 1e3,
            p10_ms=float(p10), p90_ms=float(p90), fps=bs[i] / med,
            fps_ratio=float(np.median(ratios)), fps_ratio_p10=float(r10),
            fps_ratio_p90=float(r90),
            gflops_per_s=(None if macs[i] is None else
                          2.0 * float(macs[i]) * bs[i] / med / 1e9)))
    return rows
