"""Independent trainings side by side: each job in a fresh spawned process.

The demo's models and seeds train independently; on 2 CPU cores two
one-thread processes finish sooner than one two-thread process running them
in turn, and on a GPU machine several processes keep one GPU busy where one
process (host-bound at small batches) cannot.  ``run_jobs(fn, jobs, 1)``
runs in this process, one after the other.

Each job is a process of its own, not a worker of a
``concurrent.futures`` pool: a pool whose worker dies (killed, out of
memory, a crash) is broken and ends every other running job with it; here
that job alone fails and the others train on.
"""
import os
from multiprocessing import connection, get_context

import torch


class JobsFailedError(RuntimeError):
    """One or more jobs raised; every other job ran to its end first."""


def threads_per_worker(workers, cpus=None):
    """Intra-op threads for each of ``workers`` processes sharing ``cpus``
    cores (default: this machine's): an equal share, at least 1."""
    return max(1, (cpus or os.cpu_count() or 1) // workers)


def _run_job(fn, job, threads, conn):
    """In a job process: ``fn(job)`` with ``threads`` threads, its result
    or its exception sent back over ``conn``."""
    torch.set_num_threads(threads)
    try:
        message = (True, fn(job))
    except Exception as err:  # every failure goes back to the parent
        message = (False, err)
    try:
        conn.send(message)
    except Exception:  # an exception that does not pickle
        conn.send((False, RuntimeError(f'{type(message[1]).__name__}: '
                                       f'{message[1]}')))
    conn.close()


def _start(ctx, fn, job, threads):
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_job, args=(fn, job, threads, send))
    proc.start()
    send.close()  # only the child writes: its end closing is an EOF here
    return recv, proc


def _outcome(recv, proc):
    """``(ok, result or exception)`` of a job whose pipe is readable."""
    try:
        ok, value = recv.recv()
    except EOFError:
        ok, value = False, None
    recv.close()
    proc.join()
    if value is None and not ok:
        value = ChildProcessError(
            f'its process ended without a result (exit code '
            f'{proc.exitcode}: killed, out of memory or crashed)')
    return ok, value


def _spawned(fn, jobs, workers):
    """``{index: (ok, value)}`` of every job, ``workers`` processes at a
    time; a job process still running when this is interrupted ends."""
    ctx = get_context('spawn')
    threads = threads_per_worker(workers)
    pending, running, done = list(enumerate(jobs)), {}, {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                index, job = pending.pop(0)
                recv, proc = _start(ctx, fn, job, threads)
                running[recv] = (index, proc)
            for recv in connection.wait(list(running)):
                index, proc = running.pop(recv)
                done[index] = _outcome(recv, proc)
    finally:
        for _, proc in running.values():
            proc.terminate()
    return done


def run_jobs(fn, jobs, workers=1, labels=None):
    """``[fn(job) for job in jobs]``, with ``workers`` > 1 in that many
    spawned processes at a time (a fresh one per job, each with
    :func:`threads_per_worker` threads; ``fn`` and the jobs must pickle:
    a module-level function and plain data).

    Raises:
        JobsFailedError: after every job has ended, naming each failed job
            (``labels[i]``, default its index) and its error, a process
            that died included; the first error is the cause.
    """
    jobs = list(jobs)
    labels = list(labels) if labels else [str(i) for i in range(len(jobs))]
    if workers <= 1 or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    done = _spawned(fn, jobs, min(workers, len(jobs)))
    failed = [(labels[i], done[i][1]) for i in range(len(jobs))
              if not done[i][0]]
    if failed:
        raise JobsFailedError(
            f'{len(failed)} of {len(jobs)} jobs failed (the others ran to '
            'their end; run again to resume the failed ones): ' + '; '.join(
                f'{label}: {type(err).__name__}: {err}'
                for label, err in failed)) from failed[0][1]
    return [done[i][1] for i in range(len(jobs))]
