"""Trainings side by side (``tools/demo.py --jobs``): each job in a fresh
spawned process with its share of the cores, results in job order, a
failure reported after the other jobs ran to their end; and the demo's
every (model, seed) going through it."""
import os

import pytest

from mmdet_gghost.apps import demo
from mmdet_gghost.apps.jobs import (JobsFailedError, run_jobs,
                                    threads_per_worker)
from jobs_helpers import where as _where


def test_threads_per_worker_is_an_equal_share():
    assert threads_per_worker(2, cpus=2) == 1
    assert threads_per_worker(8, cpus=16) == 2
    assert threads_per_worker(4, cpus=2) == 1


def test_one_worker_runs_here_in_order():
    out = run_jobs(_where, [1, 2, 3], 1)
    assert [job for job, _, _ in out] == [1, 2, 3]
    assert {pid for _, pid, _ in out} == {os.getpid()}


def test_jobs_run_in_fresh_processes_with_their_share_of_threads():
    out = run_jobs(_where, [1, 2, 3], 2)
    assert [job for job, _, _ in out] == [1, 2, 3]  # job order
    pids = [pid for _, pid, _ in out]
    assert os.getpid() not in pids and len(set(pids)) == 3  # one per job
    assert {n for _, _, n in out} == {threads_per_worker(2)}


def test_a_failed_job_is_named_after_the_others_ended(tmp_path):
    done = str(tmp_path / 'done')
    with pytest.raises(JobsFailedError) as info:
        run_jobs(_where, ['fail', done], 2, labels=['R34 seed 0', 'G-Ghost-R34 seed 0'])
    message = str(info.value)
    assert '1 of 2 jobs failed' in message
    assert 'R34 seed 0: ValueError: planted failure' in message
    assert 'G-Ghost' not in message
    assert isinstance(info.value.__cause__, ValueError)
    assert open(done).read() == 'done'  # the other job was not cut short


def test_a_dying_job_process_ends_that_job_only(tmp_path):
    """A job process that dies (killed, out of memory, a crash) fails its
    job, named with the exit code; the other jobs train on (a broken
    process pool used to end them all)."""
    done = str(tmp_path / 'done')
    with pytest.raises(JobsFailedError) as info:
        run_jobs(_where, ['die', done, 5], 2,
                 labels=['R34 seed 0', 'G-Ghost-R34 seed 0', 'third'])
    message = str(info.value)
    assert '1 of 3 jobs failed' in message
    assert 'R34 seed 0: ChildProcessError: its process ended without a ' \
        'result (exit code 3' in message
    assert open(done).read() == 'done'


def test_demo_trains_every_model_and_seed_as_a_job(monkeypatch, tmp_path):
    """With ``jobs`` > 1 the data sets are made once here first, then every
    (model, seed) is one job, labelled, and the results land by name."""
    calls = []

    def fake_run_jobs(fn, jobs, workers, labels):
        calls.append((fn, jobs, workers, labels))
        return [(m.name, root.name) for m, root, _ in jobs]

    made = []
    monkeypatch.setattr(demo, 'run_jobs', fake_run_jobs)
    runs = demo.train_models(demo.PAPER_MODELS, tmp_path, [0, 1], True,
                             lambda: made.append('det'),
                             lambda: made.append('cls'), jobs=3)
    assert made == ['det', 'cls']
    (fn, jobs, workers, labels), = calls
    assert fn is demo._train_job and workers == 3 and len(jobs) == 8
    assert labels[0] == 'R34 seed 0' and labels[-1] == \
        'G-Ghost-R34 w/o mix seed 1'
    assert runs[1]['R34-0.8x'] == ('R34-0.8x', 'seed1')
    assert runs[0]['G-Ghost-R34'] == ('G-Ghost-R34', 'seed0')


def test_demo_job_trains_its_model_without_making_data(monkeypatch,
                                                       tmp_path):
    seen = []
    monkeypatch.setattr(demo, 'train_model', lambda *args: seen.append(args))
    model = demo.DEMO_MODELS[1]
    demo._train_job((model, tmp_path, {'det': {}}))
    (m, root, det_data, cls_data, options), = seen
    assert (m, root, options) == (model, tmp_path, {'det': {}})
    assert det_data() is None and cls_data() is None


def test_cli_jobs_reaches_the_demo_and_zero_is_refused(monkeypatch, capsys):
    from tools_helpers import load_tool
    tool = load_tool('demo.py')
    seen = {}
    monkeypatch.setattr(tool, 'run_demo', lambda *a, **k: seen.update(k))
    assert tool.main(['--only', 'det', '--paper', '--jobs', '3']) == 0
    assert seen['jobs'] == 3
    with pytest.raises(SystemExit) as info:
        tool.main(['--jobs', '0'])
    assert info.value.code == 2
    assert '--jobs 0: give at least 1' in capsys.readouterr().err
