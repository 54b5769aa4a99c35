"""Shared fixtures for the whole suite.

``restore_global_state`` (autouse): what a test does to process-wide state
that later tests read is undone after it: mmengine's default scope
(``init_default_scope``, ``register_all_modules``), its current logger and
``sys.path`` (tools loaded in-process put the repository first). So no test
passes or fails because of the module that ran before it.

Session-wide artefacts, built once and shared: ``tiny_coco``,
``tiny_det_config``, ``tiny_det_checkpoint`` and ``tiny_cls_checkpoint``,
written by the helpers in ``tools_helpers.py``. They are read-only (checked
at session teardown by ``read_only``): a test that writes into a work dir
copies it into its ``tmp_path`` first (``tools_helpers.copy_work_dir``).
"""
import contextlib
import os
import os.path as osp
import sys

import pytest

from tools_helpers import (cls_config, det_config, dump_config,
                           make_cls_folder, make_coco_dataset)


def _instances():
    """mmengine's global instances by kind (the current one is the last):
    default scopes, and loggers (a tool run in-process leaves its logger
    current, writing to that test's captured, later closed, streams)."""
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    return {'default_scope': DefaultScope._instance_dict,
            'logger': MMLogger._instance_dict}


@contextlib.contextmanager
def global_state_restored():
    """Restore ``sys.path`` and mmengine's default scopes and loggers on
    exit; yields a dict that then says what had changed (``sys.path``,
    ``default_scope``, ``logger``)."""
    path = list(sys.path)
    saved = {kind: dict(d) for kind, d in _instances().items()}
    changed = {}
    try:
        yield changed
    finally:
        if sys.path != path:
            changed['sys.path'] = [p for p in sys.path if p not in path]
            sys.path[:] = path
        for kind, now in _instances().items():
            if list(now.items()) != list(saved[kind].items()):
                changed[kind] = list(now)
                now.clear()
                now.update(saved[kind])


def threads_per_worker():
    """Torch CPU threads for one test process: the cores shared among
    pytest-xdist's workers (``-n N`` sets ``PYTEST_XDIST_WORKER_COUNT``),
    so that N workers never run more threads than there are cores (2
    workers x 2 threads on 2 cores made every test wait on the others)."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    return max(1, (os.cpu_count() or 1) // workers)


def pytest_configure(config):
    import torch
    torch.set_num_threads(threads_per_worker())


@pytest.fixture(scope='session', autouse=True)
def unformatted_config_dumps():
    """mmengine formats every config text it writes (the work dir's config
    dump, each checkpoint's ``meta['cfg']``) with yapf: 0.58 s a call, 24
    calls and half the time of one two-model demo test. No test here checks
    yapf's layout, and the text stays the same valid Python unformatted, so
    in this process it is left unformatted; the tools' subprocess tests
    still write formatted dumps."""
    from mmengine.config import config
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, 'FormatCode', lambda text, **_: (text, False))
        yield


@pytest.fixture(autouse=True)
def restore_global_state():
    with global_state_restored():
        yield


# --------------------------------------------------------------------------
# Shared tiny data, configs and trainings (session-scoped, read-only)
# --------------------------------------------------------------------------
def _files(root):
    """{relative path: (size, mtime)} of every file under ``root``."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            stat = os.stat(osp.join(folder, name))
            found[osp.relpath(osp.join(folder, name), root)] = (
                stat.st_size, stat.st_mtime_ns)
    return found


@contextlib.contextmanager
def read_only(root):
    """Fail (at session teardown) when a test added, removed or rewrote a
    file under the shared artefact folder ``root``."""
    before = _files(root)
    yield
    after = _files(root)
    changed = sorted(p for p in set(before) | set(after)
                     if before.get(p) != after.get(p))
    assert not changed, (
        f'a test changed the shared artefacts in {root}: {changed}; copy '
        'them into tmp_path first (tools_helpers.copy_work_dir)')


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    """Root of a tiny COCO set (``make_coco_dataset``: 6 train / 4 val
    96x96 images of two classes, ``annotations/instances_*2017.json``)."""
    root = tmp_path_factory.mktemp('tiny_coco') / 'data'
    make_coco_dataset(str(root))
    with read_only(root):
        yield str(root)


@pytest.fixture(scope='session')
def tiny_det_config(tmp_path_factory, tiny_coco):
    """Path of a tiny RetinaNet config file (``det_config``: ResNet-18,
    32-channel FPN/head) on ``tiny_coco``: 4 iterations, a checkpoint
    every 2."""
    folder = tmp_path_factory.mktemp('tiny_det_config')
    path = dump_config(det_config(tiny_coco, max_iters=4, ckpt_interval=2),
                       folder / 'retina_tiny.py')
    with read_only(folder):
        yield path


def _train_once(config, work_dir, name):
    """Train ``config`` in this process (``mmdet_gghost.apis.train``);
    mmengine's global scope/logger state is put back afterwards."""
    from mmdet_gghost.apis import train
    with global_state_restored():
        runner = train(config, work_dir=str(work_dir),
                       cfg_options={'experiment_name': name})
        with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
            log = f.read()
    return runner.iter, log


@pytest.fixture(scope='session')
def tiny_det_checkpoint(tmp_path_factory, tiny_det_config):
    """``tiny_det_config`` trained once, in-process: a dict with
    ``config``, ``work_dir``, ``checkpoints`` ({2: iter_2.pth, 4:
    iter_4.pth}), ``checkpoint`` (the last, iter_4.pth), ``iters`` (the
    runner's final iteration) and ``log`` (the training log's text)."""
    work_dir = tmp_path_factory.mktemp('tiny_det_run') / 'work'
    iters, log = _train_once(tiny_det_config, work_dir, 'tiny_det_session')
    checkpoints = {i: str(work_dir / f'iter_{i}.pth') for i in (2, 4)}
    with read_only(work_dir):
        yield dict(config=tiny_det_config, work_dir=str(work_dir),
                   checkpoints=checkpoints, checkpoint=checkpoints[4],
                   iters=iters, log=log)


@pytest.fixture(scope='session')
def tiny_cls_checkpoint(tmp_path_factory):
    """A tiny mmpretrain classifier (``cls_config``: ResNet-18, two
    classes, 4 32x32 images each from ``make_cls_folder``) trained once,
    in-process, for 2 iterations: a dict with ``data``, ``config``,
    ``work_dir``, ``checkpoint`` (iter_2.pth), ``iters`` and ``log``."""
    root = tmp_path_factory.mktemp('tiny_cls')
    data = make_cls_folder(str(root / 'data'))
    config = dump_config(cls_config(data, max_iters=2, ckpt_interval=2),
                         root / 'cls_tiny.py')
    work_dir = root / 'work'
    iters, log = _train_once(config, work_dir, 'tiny_cls_session')
    with read_only(root):
        yield dict(data=data, config=config, work_dir=str(work_dir),
                   checkpoint=str(work_dir / 'iter_2.pth'), iters=iters,
                   log=log)
