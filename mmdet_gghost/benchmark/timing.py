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
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device('cpu')


def sync_for(device) -> Optional[Callable[[], None]]:
    """``torch.cuda.synchronize`` when ``device`` is a CUDA device (a
    ``torch.device`` or a string such as ``'cuda:0'``), else ``None``."""
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
    """Time callables in interleaved rounds: A B C, A B C, ...

    Args:
        callables: zero-argument functions (one per model).
        rounds: timed rounds; each round times one call of every callable.
        warmup: untimed rounds run first (same interleaving).
        sync: called right before starting and stopping each timer
            (:func:`sync_for`).
        on_round: called with the round index after each round (progress).

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
    return [lat[i] for i in range(len(callables))]


def summarize(latencies: Sequence[np.ndarray],
              batch_sizes: Union[int, Sequence[int]] = 1,
              names: Optional[Sequence[str]] = None,
              macs: Optional[Sequence[Optional[float]]] = None
              ) -> List[dict]:
    """Per-model statistics of interleaved latencies.

    Args:
        latencies: per model, seconds per call, shape ``(rounds,)``, all
            aligned by round (as :func:`time_interleaved` returns them).
        batch_sizes: images per call (one int for all, or one per model).
        macs: MACs per image of each model's timed network (or ``None``).

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
    if n == 0:
        return []
    rounds = len(lat[0])
    if any(len(x) != rounds for x in lat):
        raise ValueError('latency arrays must be aligned by round '
                         '(same length)')
    bs = ([int(batch_sizes)] * n if np.isscalar(batch_sizes) else
          [int(b) for b in batch_sizes])
    names = list(names) if names is not None else [f'model{i}'
                                                   for i in range(n)]
    macs = list(macs) if macs is not None else [None] * n
    ref_fps = bs[0] / lat[0]  # per round
    rows = []
    for i in range(n):
        med = float(np.median(lat[i]))
        ratios = (bs[i] / lat[i]) / ref_fps
        rows.append(dict(
            name=names[i], batch_size=bs[i], rounds=rounds,
            median_ms=med * 1e3, mean_ms=float(np.mean(lat[i])) * 1e3,
            p10_ms=float(np.percentile(lat[i], 10)) * 1e3,
            p90_ms=float(np.percentile(lat[i], 90)) * 1e3,
            fps=bs[i] / med, fps_ratio=float(np.median(ratios)),
            fps_ratio_p10=float(np.percentile(ratios, 10)),
            fps_ratio_p90=float(np.percentile(ratios, 90)),
            gflops_per_s=(None if macs[i] is None else
                          2.0 * float(macs[i]) * bs[i] / med / 1e9)))
    return rows
