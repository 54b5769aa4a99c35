"""A job function for tests/test_jobs.py, in a module that imports little
(every spawned job process imports it)."""
import os
import time

import torch


def where(job):
    """Which process ran ``job``, with how many threads; ``'fail'`` raises,
    ``'die'`` ends its process abruptly, a path is written once the job ran
    to its end."""
    if job == 'fail':
        raise ValueError('planted failure')
    if job == 'die':  # as a kill or a crash would
        os._exit(3)
    if isinstance(job, str):
        time.sleep(1.0)  # ends after the failing job
        with open(job, 'w') as f:
            f.write('done')
    return job, os.getpid(), torch.get_num_threads()
