"""A generated data set folder: ``meta.json``, idempotent atomic building.

A data set is built in a hidden temporary folder next to ``root`` and
renamed into place only when complete, and ``root/meta.json`` records the
generator, kind and parameters.  Calling again with the same parameters
does nothing; calling with different parameters on a folder we generated
rebuilds it; a non-empty folder we did not generate is never touched
unless ``overwrite=True``.
"""
import glob
import json
import logging
import os
import shutil
from pathlib import Path

from .drawing import GENERATOR_VERSION

logger = logging.getLogger(__name__)

# What meta.json's ``generator`` says; existing data folders carry this
# name, so it stays even though the code is split over several modules.
GENERATOR = 'mmdet_gghost.datasets.synthetic'


class SyntheticDataError(ValueError):
    """Bad arguments or an output folder that must not be overwritten."""


def read_meta(root):
    """Return the parsed ``root/meta.json`` of a generated set, or None if
    there is none (or it is not ours / not readable)."""
    path = Path(root) / 'meta.json'
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get('generator') != GENERATOR:
        return None
    return meta


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_work_dirs(root):
    """Delete temp/old folders left next to ``root`` by killed runs."""
    for path in root.parent.glob(f'.{glob.escape(root.name)}.*-*'):
        kind, _, pid = path.name[len(root.name) + 2:].rpartition('-')
        if kind not in ('tmp', 'old') or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def build_atomically(root, kind, params, build, overwrite, extra_meta):
    """Run ``build(tmp_dir)`` and move the result to ``root`` atomically.

    Returns:
        dict: ``root`` (absolute str), ``created``, ``message``, ``stats``.
    """
    root = Path(root).absolute()
    params = dict(params, version=GENERATOR_VERSION)
    meta = read_meta(root)
    if meta is not None and meta.get('kind') == kind and \
            meta.get('params') == params:
        msg = (f'{root} already holds this {kind} data set '
               f'(same parameters in meta.json); nothing to do')
        logger.info(msg)
        return dict(root=str(root), created=False, message=msg,
                    stats=meta.get('stats'))
    _check_may_replace(root, kind, meta, overwrite)

    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_work_dirs(root)
    tmp = root.parent / f'.{root.name}.tmp-{os.getpid()}'
    old = root.parent / f'.{root.name}.old-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        stats = build(tmp)
        meta = dict(generator=GENERATOR, kind=kind, params=params,
                    stats=stats, **extra_meta)
        # meta.json is written last, but what makes the set visible is the
        # rename below: ``root`` never exists half written.
        (tmp / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
        if root.exists():
            root.rename(old)
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    msg = f'wrote {kind} data set to {root}: {_describe(kind, stats)}'
    logger.info(msg)
    return dict(root=str(root), created=True, message=msg, stats=stats)


def _check_may_replace(root, kind, meta, overwrite):
    """Refuse to replace ``root`` unless it is empty, ours or
    ``overwrite`` is set (``meta``: its meta.json, None if not ours); log
    when a set of ours with other parameters gets regenerated."""
    if root.exists() and not root.is_dir():
        raise SyntheticDataError(f'{root} exists and is not a folder; '
                                 f'choose another output path')
    not_empty = root.is_dir() and any(root.iterdir())
    if not_empty and not overwrite:
        if meta is None:
            raise SyntheticDataError(
                f'{root} is a non-empty folder that was not written by '
                f'make_{"detection" if kind == "det" else "classification"}'
                f'_dataset (no meta.json of ours); refusing to overwrite '
                f'it. Choose another output folder, delete it, or pass '
                f'overwrite=True (--overwrite on the command line).')
        if meta.get('kind') != kind:
            raise SyntheticDataError(
                f'{root} holds a synthetic {meta.get("kind")!r} data set, '
                f'not {kind!r}; choose another output folder or pass '
                f'overwrite=True (--overwrite on the command line).')
    if meta is not None and meta.get('kind') == kind:
        reason = (f'{root} holds a {kind} data set with other parameters '
                  f'({meta.get("params")}); regenerating')
        logger.info(reason)


def _describe(kind, stats):
    if kind == 'det':
        return ', '.join(
            f'{s}: {v["images"]} images ({v["empty_images"]} empty), '
            f'{v["annotations"]} boxes' for s, v in stats.items())
    return ', '.join(f'{s}: {v["images"]} images ({v["per_class"]}/class)'
                     for s, v in stats.items())
