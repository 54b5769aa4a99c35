"""Deterministic synthetic datasets for demos and tests (nothing is
downloaded: same arguments, byte-identical files), drawn by :mod:`.drawing`.

Both writers are idempotent and atomic: a data set is built in a hidden
folder next to ``root``, renamed into place when complete, and
``root/meta.json`` records the parameters.  Same parameters: nothing to do;
other parameters on a folder we generated: rebuilt; a non-empty folder we
did not generate is never touched unless ``overwrite=True``."""
import glob
import json
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from .drawing import (CLS_CLASSES, DET_CLASSES, GENERATOR_VERSION,
                      MIN_VISIBLE_FRACTION, cls_image, det_image,
                      empty_indices)

logger = logging.getLogger(__name__)

# meta.json's ``generator``: a folder without it is not ours.
GENERATOR = 'mmdet_gghost.datasets.synthetic'
DEFAULT_DET_ROOT = 'data/demo_det'
DEFAULT_CLS_ROOT = 'data/demo_cls'


class SyntheticDataError(ValueError):
    """Bad arguments or an output folder that must not be overwritten."""


def _check_int(name, value, minimum, maximum=None):
    # bool is an int subclass; num_train=True is certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SyntheticDataError(f'{name} must be an integer, got '
                                 f'{value!r} ({type(value).__name__})')
    if value < minimum or (maximum is not None and value > maximum):
        bound = f'>= {minimum}' if maximum is None else \
            f'between {minimum} and {maximum}'
        raise SyntheticDataError(f'{name} must be {bound}, got {value}')
    return int(value)


def _check_size_range(size_range, img_size, default):
    """Return (min, max) object size in pixels, scaled default if None."""
    if size_range is None:
        return tuple(max(8, round(f * img_size)) for f in default)
    try:
        lo, hi = (int(v) for v in size_range)
    except (TypeError, ValueError):
        raise SyntheticDataError(f'size_range must be a pair of integers '
                                 f'(min, max), got {size_range!r}') from None
    if not 8 <= lo <= hi <= img_size:
        raise SyntheticDataError(
            f'size_range must satisfy 8 <= min <= max <= img_size '
            f'({img_size}), got {size_range!r}')
    return lo, hi


def _write_png(path, img):
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode('.png', img)
    if not ok:  # pragma: no cover - cv2 only fails on bad arrays
        raise RuntimeError(f'could not encode {path}')
    Path(path).write_bytes(buf.tobytes())


def _write_det_split(out, split, num, first_id, p):
    """Write ``<out>/<split>2017/*.png`` and its COCO json; returns the
    counts for meta.json."""
    img_dir = out / f'{split}2017'
    img_dir.mkdir(parents=True)
    empties = empty_indices(p['seed'], split, num, p['empty_fraction'])
    images, annotations = [], []
    per_class = {name: 0 for name in DET_CLASSES}
    for index in range(num):
        image_id = first_id + index
        file_name = f'{image_id:012d}.png'
        img, objects = det_image(p['seed'], split, index, p['img_size'],
                                 p['size_range'], index in empties,
                                 p['min_visible'])
        _write_png(img_dir / file_name, img)
        images.append(dict(id=image_id, file_name=file_name,
                           width=p['img_size'], height=p['img_size']))
        for obj in objects:
            per_class[obj['category']] += 1
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=DET_CLASSES.index(obj['category']) + 1,
                bbox=obj['bbox'], area=obj['area'],
                segmentation=obj['segmentation'], iscrowd=0))
    coco = dict(
        info=dict(description='mmdet-gghost synthetic shapes '
                  f'({split}, seed {p["seed"]})',
                  version=str(GENERATOR_VERSION)),
        licenses=[], images=images, annotations=annotations,
        categories=[dict(id=i + 1, name=n, supercategory='shape')
                    for i, n in enumerate(DET_CLASSES)])
    (out / 'annotations').mkdir(exist_ok=True)
    (out / 'annotations' / f'instances_{split}2017.json').write_text(
        json.dumps(coco, separators=(',', ':')))
    return dict(images=num, annotations=len(annotations),
                empty_images=len(empties), per_class=per_class)


def make_detection_dataset(root=DEFAULT_DET_ROOT, num_train=800, num_val=200,
                           img_size=256, seed=0, empty_fraction=0.05,
                           size_range=None, overwrite=False):
    """Write a deterministic COCO-2017-style shapes detection data set.

    Layout (what mmdet's ``CocoDataset`` expects with ``data_root=root``;
    image ids 1..num_train, then val's from num_train + 1)::

        root/train2017/000000000001.png ...
        root/val2017/000000000801.png ...
        root/annotations/instances_{train,val}2017.json
        root/meta.json

    Each image shows 1-6 shapes (``circle``/``square``/``triangle``, COCO
    category ids 1-3), each at least 60 % visible, on a noise, stripes or
    gradient background; a fraction ``empty_fraction`` of the images (at
    least one per split) has none.  Boxes, areas and polygons describe the
    visible pixels, as in COCO.

    Args:
        root (str | Path): Output folder.
        num_train (int): Number of training images (>= 1).
        num_val (int): Number of validation images (>= 1).
        img_size (int): Side of the square images, 64-2048.
        seed (int): Random seed (>= 0); same seed, same bytes.
        empty_fraction (float): Fraction of background-only images, 0-0.5.
        size_range (tuple[int, int] | None): Min/max shape extent in
            pixels; None means 24-110 px scaled to ``img_size / 256``.
        overwrite (bool): Replace ``root`` even if it is a non-empty folder
            this function did not write.

    Returns:
        dict: ``root``, ``created`` (False if an identical data set was
        already there), ``message``, ``train_ann``, ``val_ann``,
        ``train_img_dir``, ``val_img_dir``, ``classes`` and ``stats``
        (per split: images, annotations, empty_images, per_class).
    """
    num_train = _check_int('num_train', num_train, 1)
    num_val = _check_int('num_val', num_val, 1)
    img_size = _check_int('img_size', img_size, 64, 2048)
    seed = _check_int('seed', seed, 0)
    if isinstance(empty_fraction, bool) or not isinstance(
            empty_fraction, (int, float)) or not 0 <= empty_fraction <= 0.5:
        raise SyntheticDataError(f'empty_fraction must be a number in '
                                 f'[0, 0.5], got {empty_fraction!r}')
    lo, hi = _check_size_range(size_range, img_size, (24 / 256, 110 / 256))
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size,
                  seed=seed, empty_fraction=float(empty_fraction),
                  size_range=[lo, hi], min_visible=MIN_VISIBLE_FRACTION)

    def build(out):
        return dict(
            train=_write_det_split(out, 'train', num_train, 1, params),
            val=_write_det_split(out, 'val', num_val, num_train + 1, params))

    info = build_atomically(
        root, 'det', params, build, overwrite, DET_CLASSES,
        '{images} images ({empty_images} empty), {annotations} boxes')
    root = Path(info['root'])
    info.update(
        train_ann=str(root / 'annotations' / 'instances_train2017.json'),
        val_ann=str(root / 'annotations' / 'instances_val2017.json'),
        train_img_dir=str(root / 'train2017'),
        val_img_dir=str(root / 'val2017'), classes=DET_CLASSES)
    return info


def make_classification_dataset(root=DEFAULT_CLS_ROOT,
                                num_train_per_class=200,
                                num_val_per_class=50, img_size=64, seed=0,
                                size_range=None, overwrite=False):
    """Write a deterministic shapes classification set (mmpretrain layout).

    Layout (what mmpretrain's ``CustomDataset`` reads with
    ``data_root=root, data_prefix='train'`` and no ``ann_file``)::

        root/train/<class>/00000.png ...
        root/val/<class>/00000.png ...
        root/classes.txt   (one class per line, in label order)
        root/meta.json

    The 8 classes (:data:`CLS_CLASSES`) are shape x fill combinations:
    circle/square/star/triangle, each ``solid`` or ``striped``, one shape
    per image on a smooth background.

    Args (``root``, ``seed`` and ``overwrite`` as in
    :func:`make_detection_dataset`):
        num_train_per_class (int): Training images per class (>= 1).
        num_val_per_class (int): Validation images per class (>= 1).
        img_size (int): Side of the square images, 32-1024.
        size_range (tuple[int, int] | None): Min/max shape extent in
            pixels; None means 45-85 % of ``img_size``.

    Returns:
        dict: ``root``, ``created``, ``message``, ``train_dir``,
        ``val_dir``, ``classes_file``, ``classes`` and ``stats`` (images
        per split).
    """
    n_train = _check_int('num_train_per_class', num_train_per_class, 1)
    n_val = _check_int('num_val_per_class', num_val_per_class, 1)
    img_size = _check_int('img_size', img_size, 32, 1024)
    seed = _check_int('seed', seed, 0)
    lo, hi = _check_size_range(size_range, img_size, (0.45, 0.85))
    params = dict(num_train_per_class=n_train, num_val_per_class=n_val,
                  img_size=img_size, seed=seed, size_range=[lo, hi])

    splits = dict(train=n_train, val=n_val)

    def build(out):
        for split, num in splits.items():
            for class_index, name in enumerate(CLS_CLASSES):
                (out / split / name).mkdir(parents=True)
                for index in range(num):
                    img = cls_image(seed, split, class_index, index,
                                    img_size, (lo, hi))
                    _write_png(out / split / name / f'{index:05d}.png', img)
        (out / 'classes.txt').write_text('\n'.join(CLS_CLASSES) + '\n')
        return {split: dict(images=num * len(CLS_CLASSES), per_class=num)
                for split, num in splits.items()}

    info = build_atomically(root, 'cls', params, build, overwrite,
                            CLS_CLASSES, '{images} images ({per_class}/class)')
    root = Path(info['root'])
    info.update(train_dir=str(root / 'train'), val_dir=str(root / 'val'),
                classes_file=str(root / 'classes.txt'), classes=CLS_CLASSES)
    return info


def read_meta(root):
    """Return the parsed ``root/meta.json`` of a generated set, or None if
    there is none (or it is not ours / not readable)."""
    try:
        meta = json.loads((Path(root) / 'meta.json').read_text())
    except (OSError, ValueError):
        return None
    ours = isinstance(meta, dict) and meta.get('generator') == GENERATOR
    return meta if ours else None


def _remove_stale_work_dirs(root):
    """Delete temp/old folders left next to ``root`` by killed runs."""
    for path in root.parent.glob(f'.{glob.escape(root.name)}.*-*'):
        kind, _, pid = path.name[len(root.name) + 2:].rpartition('-')
        if kind not in ('tmp', 'old') or not pid.isdigit() or \
                int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: only whether it exists
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, owned by someone else
            pass


def build_atomically(root, kind, params, build, overwrite, classes,
                     summary):
    """Run ``build(tmp_dir)`` (returns the stats per split) and move the
    result to ``root`` atomically; ``summary`` formats one split's stats
    for the message.  Returns ``root`` (absolute str), ``created``,
    ``message``, ``stats``.  Refuses to replace a non-empty ``root`` that is
    not ours unless ``overwrite``."""
    root = Path(root).absolute()
    params = dict(params, version=GENERATOR_VERSION)
    meta = read_meta(root)
    if meta is not None and meta.get('kind') == kind:
        if meta.get('params') == params:
            msg = (f'{root} already holds this {kind} data set '
                   f'(same parameters in meta.json); nothing to do')
            logger.info(msg)
            return dict(root=str(root), created=False, message=msg,
                        stats=meta.get('stats'))
        logger.info(f'{root} holds a {kind} data set with other '
                    f'parameters ({meta.get("params")}); regenerating')
    if root.exists() and not root.is_dir():
        raise SyntheticDataError(f'{root} exists and is not a folder; '
                                 f'choose another output path')
    if meta is None and not overwrite and root.is_dir() and any(
            root.iterdir()):
        raise SyntheticDataError(
            f'{root} is a non-empty folder that was not written by '
            f'make_{"detection" if kind == "det" else "classification"}'
            f'_dataset (no meta.json of ours); refusing to overwrite '
            f'it. Choose another output folder, delete it, or pass '
            f'overwrite=True (--overwrite on the command line).')
    if meta is not None and meta.get('kind') != kind and not overwrite:
        raise SyntheticDataError(
            f'{root} holds a synthetic {meta.get("kind")!r} data set, '
            f'not {kind!r}; choose another output folder or pass '
            f'overwrite=True (--overwrite on the command line).')

    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_work_dirs(root)
    tmp = root.parent / f'.{root.name}.tmp-{os.getpid()}'
    old = root.parent / f'.{root.name}.old-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        stats = build(tmp)
        meta = dict(generator=GENERATOR, kind=kind, params=params,
                    stats=stats, classes=list(classes))
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
    msg = f'wrote {kind} data set to {root}: ' + ', '.join(
        f'{split}: ' + summary.format(**v) for split, v in stats.items())
    logger.info(msg)
    return dict(root=str(root), created=True, message=msg, stats=stats)
