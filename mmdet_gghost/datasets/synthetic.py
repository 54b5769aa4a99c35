"""Deterministic synthetic datasets for demos and tests.

Nothing here downloads anything: both data sets are drawn with numpy and
OpenCV from a seed, so the same arguments give byte-identical files.

* :func:`make_detection_dataset` writes a small COCO-2017-style detection set
  (``circle``/``square``/``triangle`` on textured backgrounds) that mmdet's
  ``CocoDataset`` reads with only ``data_root`` changed.
* :func:`make_classification_dataset` writes an mmpretrain ``CustomDataset``
  folder tree (``<split>/<class>/*.png``) of shape x fill-texture classes.

Both are idempotent and atomic: a data set is built in a hidden temporary
folder next to ``root`` and renamed into place only when complete, and a
``root/meta.json`` records the parameters.  Calling again with the same
parameters does nothing; calling with different parameters on a folder this
module generated rebuilds it; a non-empty folder that this module did not
generate is never touched unless ``overwrite=True``.

This module writes the files and is the public import path (its name is
the ``generator`` recorded in meta.json); :mod:`.drawing` draws the images
and :mod:`.generated` does the meta.json bookkeeping and atomic building.
"""
import json
from pathlib import Path

import cv2
import numpy as np

from .drawing import (CLS_CLASSES, DET_CLASSES, GENERATOR_VERSION,
                      MIN_VISIBLE_FRACTION, cls_image, det_image,
                      empty_indices, to_uint8)
from .generated import (GENERATOR, SyntheticDataError, build_atomically,
                        read_meta)

__all__ = [
    'CLS_CLASSES', 'DEFAULT_CLS_ROOT', 'DEFAULT_DET_ROOT', 'DET_CLASSES',
    'DET_METAINFO', 'GENERATOR', 'GENERATOR_VERSION', 'MIN_VISIBLE_FRACTION',
    'SyntheticDataError', 'make_classification_dataset',
    'make_detection_dataset', 'read_meta'
]

DEFAULT_DET_ROOT = 'data/demo_det'
DEFAULT_CLS_ROOT = 'data/demo_cls'

# COCO category ids are 1-based, in the order of DET_CLASSES.
DET_CATEGORY_IDS = {name: i + 1 for i, name in enumerate(DET_CLASSES)}
DET_METAINFO = dict(
    classes=DET_CLASSES,
    palette=[(220, 20, 60), (0, 130, 220), (60, 180, 75)])


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------
def _check_int(name, value, minimum, maximum=None):
    # bool is an int subclass; num_train=True is certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SyntheticDataError(
            f'{name} must be an integer, got {value!r} '
            f'({type(value).__name__})')
    if value < minimum or (maximum is not None and value > maximum):
        bound = f'>= {minimum}' if maximum is None else \
            f'between {minimum} and {maximum}'
        raise SyntheticDataError(f'{name} must be {bound}, got {value}')
    return int(value)


def _check_size_range(size_range, img_size, default):
    """Return (min, max) object size in pixels, scaled default if None."""
    if size_range is None:
        lo, hi = (max(8, round(f * img_size)) for f in default)
        return lo, hi
    try:
        lo, hi = (int(v) for v in size_range)
    except (TypeError, ValueError):
        raise SyntheticDataError(
            f'size_range must be a pair of integers (min, max), '
            f'got {size_range!r}') from None
    if not 8 <= lo <= hi <= img_size:
        raise SyntheticDataError(
            f'size_range must satisfy 8 <= min <= max <= img_size '
            f'({img_size}), got {size_range!r}')
    return lo, hi


def _write_png(path, img):
    ok, buf = cv2.imencode('.png', to_uint8(img))
    if not ok:  # pragma: no cover - cv2 only fails on bad arrays
        raise RuntimeError(f'could not encode {path}')
    Path(path).write_bytes(buf.tobytes())


def _write_det_split(out, split, num, first_id, p):
    """Write ``<out>/<split>2017/*.png`` and its COCO json.

    Returns:
        dict: counts for meta.json.
    """
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
                category_id=DET_CATEGORY_IDS[obj['category']],
                bbox=obj['bbox'], area=obj['area'],
                segmentation=obj['segmentation'], iscrowd=0))
    coco = dict(
        info=dict(description='mmdet-gghost synthetic shapes '
                  f'({split}, seed {p["seed"]})',
                  version=str(GENERATOR_VERSION)),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=DET_CATEGORY_IDS[n], name=n,
                         supercategory='shape') for n in DET_CLASSES])
    ann_dir = out / 'annotations'
    ann_dir.mkdir(exist_ok=True)
    with open(ann_dir / f'instances_{split}2017.json', 'w') as f:
        json.dump(coco, f, separators=(',', ':'))
    return dict(images=num, annotations=len(annotations),
                empty_images=len(empties), per_class=per_class)


def make_detection_dataset(root=DEFAULT_DET_ROOT, num_train=800, num_val=200,
                           img_size=256, seed=0, empty_fraction=0.05,
                           size_range=None, overwrite=False):
    """Write a deterministic COCO-2017-style shapes detection data set.

    Layout (what mmdet's ``CocoDataset`` expects with ``data_root=root``)::

        root/train2017/000000000001.png ...
        root/val2017/000000000801.png ...
        root/annotations/instances_train2017.json
        root/annotations/instances_val2017.json
        root/meta.json

    Each image shows 1-6 shapes (``circle``/``square``/``triangle``, COCO
    category ids 1-3) of random size, colour, rotation and position on a
    noise, stripes or gradient background; a fraction ``empty_fraction`` of
    the images (at least one per split) has no objects at all.  Shapes are
    drawn in order, later ones over earlier ones; a position that would
    leave an earlier shape less than 60 % visible is rejected (after 30
    rejections the shape is left out), so every drawn shape is annotated.
    Boxes, areas and polygons describe the *visible* pixels, as in COCO;
    boxes are tight and inside the image.  Image ids are 1..num_train for
    train and continue from num_train + 1 for val.

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
    if not isinstance(empty_fraction, (int, float)) or \
            isinstance(empty_fraction, bool) or \
            not 0 <= empty_fraction <= 0.5:
        raise SyntheticDataError(
            f'empty_fraction must be a number in [0, 0.5], '
            f'got {empty_fraction!r}')
    lo, hi = _check_size_range(size_range, img_size, (24 / 256, 110 / 256))
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size,
                  seed=seed, empty_fraction=float(empty_fraction),
                  size_range=[lo, hi], min_visible=MIN_VISIBLE_FRACTION)

    def build(out):
        return dict(
            train=_write_det_split(out, 'train', num_train, 1, params),
            val=_write_det_split(out, 'val', num_val, num_train + 1, params))

    info = build_atomically(root, 'det', params, build, overwrite,
                            dict(classes=list(DET_CLASSES)))
    root = Path(info['root'])
    info.update(
        train_ann=str(root / 'annotations' / 'instances_train2017.json'),
        val_ann=str(root / 'annotations' / 'instances_val2017.json'),
        train_img_dir=str(root / 'train2017'),
        val_img_dir=str(root / 'val2017'),
        classes=DET_CLASSES)
    return info


def _write_cls_split(out, split, num, p):
    """Write ``<out>/<split>/<class>/*.png``, ``num`` images per class.

    Returns:
        dict: counts for meta.json.
    """
    for class_index, name in enumerate(CLS_CLASSES):
        class_dir = out / split / name
        class_dir.mkdir(parents=True)
        for index in range(num):
            img = cls_image(p['seed'], split, class_index, index,
                            p['img_size'], tuple(p['size_range']))
            _write_png(class_dir / f'{index:05d}.png', img)
    return dict(images=num * len(CLS_CLASSES), per_class=num)


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
    per image with random size, rotation, position and colours on a smooth
    noise or gradient background.

    Args:
        root (str | Path): Output folder.
        num_train_per_class (int): Training images per class (>= 1).
        num_val_per_class (int): Validation images per class (>= 1).
        img_size (int): Side of the square images, 32-1024.
        seed (int): Random seed (>= 0); same seed, same bytes.
        size_range (tuple[int, int] | None): Min/max shape extent in
            pixels; None means 45-85 % of ``img_size``.
        overwrite (bool): Replace ``root`` even if it is a non-empty folder
            this function did not write.

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

    def build(out):
        stats = {split: _write_cls_split(out, split, num, params)
                 for split, num in (('train', n_train), ('val', n_val))}
        (out / 'classes.txt').write_text('\n'.join(CLS_CLASSES) + '\n')
        return stats

    info = build_atomically(root, 'cls', params, build, overwrite,
                            dict(classes=list(CLS_CLASSES)))
    root = Path(info['root'])
    info.update(train_dir=str(root / 'train'), val_dir=str(root / 'val'),
                classes_file=str(root / 'classes.txt'), classes=CLS_CLASSES)
    return info
