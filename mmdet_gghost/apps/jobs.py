"""Independent trainings side by side: each job in a fresh spawned process.

The demo's models and seeds train independently; on 2 CPU cores two
one-thread processes finish sooner than one two-thread process running them
in turn, and on a GPU machine several processes keep one GPU busy where one
process (host-bound at small batches) cannot.  ``run_jobs(fn, jobs, 1)``
runs in this process, one after the other.
"""
import os
from concurrent.futures import ProcessPoolExecutor, wait
from multiprocessing import get_context

import torch


class JobsFailedError(RuntimeError):
    """One or more jobs raised; every other job ran to its end first."""


def threads_per_worker(workers, cpus=None):
    """Intra-op threads for each of ``workers`` processes sharing ``cpus``
    cores (default: this machine's): an equal share, at least 1."""
    return max(1, (cpus or os.cpu_count() or 1) // workers)


def run_jobs(fn, jobs, workers=1, labels=None):
    """``[fn(job) for job in jobs]``, with ``workers`` > 1 in that many
    spawned processes at a time (a fresh one per job, each with
    :func:`threads_per_worker` threads; ``fn`` and the jobs must pickle:
    a module-level function and plain data).

    Raises:
        JobsFailedError: after every job has ended, naming each failed job
            (``labels[i]``, default its index) and its error; the first
            error is the cause.
    """
    jobs = list(jobs)
    labels = list(labels) if labels else [str(i) for i in range(len(jobs))]
    if workers <= 1 or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(
            min(workers, len(jobs)), mp_context=get_context('spawn'),
            # a torch builtin: a job process imports only what its job needs
            initializer=torch.set_num_threads,
            initargs=(threads_per_worker(min(workers, len(jobs))), ),
            max_tasks_per_child=1) as pool:
        futures = [pool.submit(fn, job) for job in jobs]
        wait(futures)
    failed = [(label, f.exception()) for label, f in zip(labels, futures)
              if f.exception() is not None]
    if failed:
        raise JobsFailedError(
            f'{len(failed)} of {len(jobs)} jobs failed (the others ran to '
            'their end; run again to resume the failed ones): ' + '; '.join(
                f'{label}: {type(err).__name__}: {err}'
                for label, err in failed)) from failed[0][1]
    return [f.result() for f in futures]
