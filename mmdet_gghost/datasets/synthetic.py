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
"""
import glob
import json
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

GENERATOR = 'mmdet_gghost.datasets.synthetic'
# Bump when the drawing code changes, so old folders get rebuilt.
GENERATOR_VERSION = 1

DEFAULT_DET_ROOT = 'data/demo_det'
DEFAULT_CLS_ROOT = 'data/demo_cls'

DET_CLASSES = ('circle', 'square', 'triangle')
# COCO category ids are 1-based, in the order of DET_CLASSES.
DET_CATEGORY_IDS = {name: i + 1 for i, name in enumerate(DET_CLASSES)}
DET_METAINFO = dict(
    classes=DET_CLASSES,
    palette=[(220, 20, 60), (0, 130, 220), (60, 180, 75)])

CLS_SHAPES = ('circle', 'square', 'star', 'triangle')
CLS_FILLS = ('solid', 'striped')
# Sorted, because mmpretrain's CustomDataset numbers classes by the sorted
# folder names; classes.txt then lists them in label order.
CLS_CLASSES = tuple(sorted(f'{s}_{f}' for s in CLS_SHAPES for f in CLS_FILLS))

# An earlier shape may be covered by later ones, but only so far that at
# least this fraction of its pixels stays visible (see _place_shapes).
MIN_VISIBLE_FRACTION = 0.6
_PLACEMENT_TRIES = 30
_SPLIT_CODES = {'train': 0, 'val': 1}


class SyntheticDataError(ValueError):
    """Bad arguments or an output folder that must not be overwritten."""


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


# --------------------------------------------------------------------------
# Drawing primitives.  Images are float32 HxWx3 in [0, 255] while drawing.
# --------------------------------------------------------------------------
def _rng(seed, *keys):
    """An independent generator per (seed, split, index, ...) so that an
    image does not depend on how many images come before it."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _unit_ramp(rng, size, angle=None):
    """Return (size, size) float32 coordinates along a random direction."""
    if angle is None:
        angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return xx * np.cos(angle) + yy * np.sin(angle)


def _background(rng, size, kinds=('noise', 'stripes', 'gradient')):
    """Draw a textured background.

    Returns:
        tuple: ``(image, (c1, c2))``, the float32 (size, size, 3) image and
        the two colours it blends between (used to pick contrasting shape
        colours).
    """
    kind = kinds[rng.integers(len(kinds))]
    c1 = rng.uniform(0, 255, 3).astype(np.float32)
    c2 = rng.uniform(0, 255, 3).astype(np.float32)
    if kind == 'gradient':
        t = _unit_ramp(rng, size)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 'stripes':
        period = rng.uniform(8, 40) * size / 256
        t = _unit_ramp(rng, size) / period + rng.uniform(0, 1)
        # Soft-edged stripes: a sine pushed towards a square wave.
        t = np.clip(0.5 + 1.5 * np.sin(2 * np.pi * t), 0, 1)
    else:  # 'noise': smooth value noise, bicubically upsampled
        cells = int(rng.integers(3, 9))
        grid = rng.uniform(0, 1, (cells, cells)).astype(np.float32)
        t = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        t = np.clip(t, 0, 1)
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    return img, (c1, c2)


def _add_grain(rng, img):
    """Add sensor-like pixel noise to about a third of the images.

    Only a third: grain makes PNGs 3x larger (about 110 kB instead of
    35 kB at 256x256) and the shapes must stay easy to learn.
    """
    if rng.uniform() < 1 / 3:
        img += rng.normal(0, rng.uniform(1, 6), img.shape).astype(np.float32)


def _segment_distance(colour, a, b):
    """Distance from colour to the RGB segment a-b (a background blends
    along it)."""
    ab = b - a
    t = float(np.clip(np.dot(colour - a, ab) / max(np.dot(ab, ab), 1e-6),
                      0, 1))
    return float(np.linalg.norm(colour - (a + t * ab)))


def _contrasting_colour(rng, avoid, min_dist=110, tries=40):
    """Return a colour at least ``min_dist`` (RGB L2) from every segment in
    ``avoid``, or the most distant of ``tries`` candidates."""
    best, best_dist = None, -1.0
    for _ in range(tries):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        dist = min(_segment_distance(colour, a, b) for a, b in avoid)
        if dist >= min_dist:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    return best


def _shape_vertices(kind, size, angle, rng):
    """Polygon vertices (N, 2) around the origin; None for a circle.

    ``size`` is roughly the shape's bounding extent in pixels.
    """
    if kind == 'circle':
        return None
    if kind == 'square':
        h = size / 2
        pts = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    elif kind == 'triangle':
        # Equilateral with side ``size``.
        r = size / np.sqrt(3)
        a = np.deg2rad([90, 210, 330])
        pts = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    elif kind == 'star':
        outer = size / 2
        inner = outer * rng.uniform(0.4, 0.5)
        a = np.deg2rad(np.arange(10) * 36 - 90)
        r = np.where(np.arange(10) % 2 == 0, outer, inner)
        pts = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    else:
        raise ValueError(f'unknown shape {kind!r}')
    c, s = np.cos(angle), np.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def _shape_extent(kind, size, verts):
    """Return (xmin, ymin, xmax, ymax) of the shape around its centre."""
    if verts is None:
        r = size / 2
        return -r, -r, r, r
    return (*verts.min(0), *verts.max(0))


def _shape_mask(kind, size, verts, centre, img_size):
    """Rasterise a shape (no anti-aliasing, so its mask is exact)."""
    mask = np.zeros((img_size, img_size), np.uint8)
    cx, cy = centre
    # shift=4: 1/16-pixel sub-pixel precision for the vertices.
    if verts is None:
        cv2.circle(mask, (round(cx * 16), round(cy * 16)),
                   max(1, round(size / 2 * 16)), 1, -1, cv2.LINE_8, 4)
    else:
        pts = np.round((verts + [cx, cy]) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _random_pose(rng, kind, size_range, img_size, square_max_angle):
    """Pick size, rotation and a centre that keeps the shape in the image.

    Returns:
        tuple: ``(size, verts, centre)``.
    """
    size = rng.uniform(*size_range)
    if kind == 'square':
        angle = np.deg2rad(rng.uniform(-square_max_angle, square_max_angle))
    else:
        angle = rng.uniform(0, 2 * np.pi)
    verts = _shape_vertices(kind, size, angle, rng)
    x0, y0, x1, y1 = _shape_extent(kind, size, verts)
    # A rotated shape may be wider than the image: shrink it to fit.
    span = max(x1 - x0, y1 - y0)
    if span > img_size - 2:
        scale = (img_size - 2) / span
        size *= scale
        verts = None if verts is None else verts * scale
        x0, y0, x1, y1 = (v * scale for v in (x0, y0, x1, y1))
    cx = rng.uniform(-x0, img_size - 1 - x1)
    cy = rng.uniform(-y0, img_size - 1 - y1)
    return size, verts, (cx, cy)


def _paint(img, mask, colour):
    """Fill ``mask`` with a flat ``colour``."""
    img[mask] = colour


def _stripe_pattern(rng, img_size, period):
    """Boolean (img_size, img_size) stripes of the given period."""
    t = _unit_ramp(rng, img_size) / period + rng.uniform(0, 1)
    return (t % 1.0) < 0.5


def _to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _write_png(path, img):
    ok, buf = cv2.imencode('.png', _to_uint8(img))
    if not ok:  # pragma: no cover - cv2 only fails on bad arrays
        raise RuntimeError(f'could not encode {path}')
    Path(path).write_bytes(buf.tobytes())


# --------------------------------------------------------------------------
# Detection set
# --------------------------------------------------------------------------
def _place_shapes(rng, img, num_shapes, size_range, min_visible):
    """Draw up to ``num_shapes`` shapes in order, later over earlier.

    Occlusion rule: a candidate position is rejected if it would leave any
    earlier shape with less than ``min_visible`` of its own pixels visible;
    after ``_PLACEMENT_TRIES`` rejected candidates the shape is skipped.
    So every drawn shape stays at least ``min_visible`` visible and is
    annotated, and no unannotated, mostly hidden shape remains in the image.

    Returns:
        tuple: ``(owner, kinds, full_area)``: ``owner`` is an int16 map
        holding, per pixel, the index of the shape visible there (-1 for
        background); ``kinds`` the class name and ``full_area`` the
        unoccluded pixel count of each shape index.
    """
    img_size = img.shape[0]
    owner = np.full((img_size, img_size), -1, np.int16)
    full_area, visible, kinds = [], [], []
    for _ in range(num_shapes):
        kind = DET_CLASSES[rng.integers(len(DET_CLASSES))]
        for _ in range(_PLACEMENT_TRIES):
            size, verts, centre = _random_pose(rng, kind, size_range,
                                               img_size, 15)
            mask = _shape_mask(kind, size, verts, centre, img_size)
            area = int(mask.sum())
            if area == 0:
                continue
            # Pixels of each earlier shape that this candidate would cover.
            covered = np.bincount(owner[mask] + 1,
                                  minlength=len(kinds) + 1)[1:]
            after = np.asarray(visible) - covered
            if np.all(after >= min_visible * np.asarray(full_area)):
                break
        else:
            continue  # no acceptable place: skip this shape
        idx = len(kinds)
        owner[mask] = idx
        visible = list(after) + [area]
        full_area.append(area)
        kinds.append(kind)
        bg_colours = _background_colours_under(img, mask)
        colour = _contrasting_colour(rng, bg_colours)
        _paint(img, mask, colour)
    return owner, kinds, full_area


def _background_colours_under(img, mask):
    """Colours a shape must stand out from: the 10th and 90th percentile
    colour of what is currently drawn under it, as one RGB segment."""
    under = img[mask]
    lum = under.mean(1)
    order = np.argsort(lum)
    lo = under[order[len(order) // 10]]
    hi = under[order[(len(order) * 9) // 10]]
    return [(lo.astype(np.float32), hi.astype(np.float32))]


def _mask_annotation(mask):
    """COCO bbox/area/segmentation of a boolean mask (the visible part).

    The box ``[x, y, w, h]`` uses COCO's pixel-edge convention: it spans
    pixels ``x .. x + w - 1``, so it is tight and ``x + w <= width``.
    """
    ys, xs = np.nonzero(mask)
    x0, x1 = int(xs.min()), int(xs.max()) + 1
    y0, y1 = int(ys.min()), int(ys.max()) + 1
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = [c.reshape(-1).astype(float).tolist() for c in contours
             if len(c) >= 3]
    if not polys:  # a sliver: fall back to the box as a polygon
        polys = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    return dict(
        bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        area=float(mask.sum()),
        segmentation=[[float(v) for v in p] for p in polys])


def _det_image(seed, split, index, img_size, size_range, empty, min_visible):
    """Draw one detection image.

    Returns:
        tuple: ``(image, objects)``, objects being dicts with ``category``,
        ``bbox``, ``area``, ``segmentation``.
    """
    rng = _rng(seed, _SPLIT_CODES[split], index)
    img, _ = _background(rng, img_size)
    if empty:
        _add_grain(rng, img)
        return img, []
    num_shapes = int(rng.integers(1, 7))  # 1-6 objects
    owner, kinds, _ = _place_shapes(rng, img, num_shapes, size_range,
                                    min_visible)
    # Grain goes over the finished image: it changes no pixel's owner, so
    # the masks (and boxes) stay exact.
    _add_grain(rng, img)
    objects = []
    for idx, kind in enumerate(kinds):
        ann = _mask_annotation(owner == idx)
        ann['category'] = kind
        objects.append(ann)
    return img, objects


def _empty_indices(seed, split, num, empty_fraction):
    """Which images of a split are background only (at least one whenever
    empty_fraction > 0 and the split has two or more images)."""
    if empty_fraction <= 0 or num < 2:
        return set()
    count = min(num - 1, max(1, round(empty_fraction * num)))
    rng = _rng(seed, _SPLIT_CODES[split], 10**9)
    return set(int(i) for i in rng.permutation(num)[:count])


def _write_det_split(out, split, num, first_id, p):
    """Write ``<out>/<split>2017/*.png`` and its COCO json.

    Returns:
        dict: counts for meta.json.
    """
    img_dir = out / f'{split}2017'
    img_dir.mkdir(parents=True)
    empties = _empty_indices(p['seed'], split, num, p['empty_fraction'])
    images, annotations = [], []
    per_class = {name: 0 for name in DET_CLASSES}
    for index in range(num):
        image_id = first_id + index
        file_name = f'{image_id:012d}.png'
        img, objects = _det_image(p['seed'], split, index, p['img_size'],
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

    info = _build_atomically(root, 'det', params, build, overwrite,
                             dict(classes=list(DET_CLASSES)))
    root = Path(info['root'])
    info.update(
        train_ann=str(root / 'annotations' / 'instances_train2017.json'),
        val_ann=str(root / 'annotations' / 'instances_val2017.json'),
        train_img_dir=str(root / 'train2017'),
        val_img_dir=str(root / 'val2017'),
        classes=DET_CLASSES)
    return info


# --------------------------------------------------------------------------
# Classification set
# --------------------------------------------------------------------------
def _cls_image(seed, split, class_index, index, img_size, size_range):
    """Draw one classification image of class ``CLS_CLASSES[class_index]``.

    Backgrounds are smooth (noise or gradient, never stripes) so that the
    ``striped`` fill is the only striped thing in the image.
    """
    shape, fill = CLS_CLASSES[class_index].split('_')
    rng = _rng(seed, _SPLIT_CODES[split], class_index, index)
    img, (c1, c2) = _background(rng, img_size, kinds=('noise', 'gradient'))
    size, verts, centre = _random_pose(rng, shape, size_range, img_size, 45)
    mask = _shape_mask(shape, size, verts, centre, img_size)
    colour = _contrasting_colour(rng, [(c1, c2)])
    if fill == 'striped':
        # The second stripe colour must differ from the first and from the
        # background, or the stripes would read as holes.
        other = _contrasting_colour(
            rng, [(colour, colour), (c1, c2)], min_dist=120)
        period = rng.uniform(5, 9) * img_size / 64
        stripes = _stripe_pattern(rng, img_size, period)
        _paint(img, mask & stripes, colour)
        _paint(img, mask & ~stripes, other)
    else:
        _paint(img, mask, colour)
    _add_grain(rng, img)
    return img


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
        stats = {}
        for split, num in (('train', n_train), ('val', n_val)):
            for class_index, name in enumerate(CLS_CLASSES):
                class_dir = out / split / name
                class_dir.mkdir(parents=True)
                for index in range(num):
                    img = _cls_image(seed, split, class_index, index,
                                     img_size, (lo, hi))
                    _write_png(class_dir / f'{index:05d}.png', img)
            stats[split] = dict(images=num * len(CLS_CLASSES),
                                per_class=num)
        (out / 'classes.txt').write_text('\n'.join(CLS_CLASSES) + '\n')
        return stats

    info = _build_atomically(root, 'cls', params, build, overwrite,
                             dict(classes=list(CLS_CLASSES)))
    root = Path(info['root'])
    info.update(train_dir=str(root / 'train'), val_dir=str(root / 'val'),
                classes_file=str(root / 'classes.txt'), classes=CLS_CLASSES)
    return info


# --------------------------------------------------------------------------
# Idempotent, atomic writing
# --------------------------------------------------------------------------
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


def _build_atomically(root, kind, params, build, overwrite, extra_meta):
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


def _describe(kind, stats):
    if kind == 'det':
        return ', '.join(
            f'{s}: {v["images"]} images ({v["empty_images"]} empty), '
            f'{v["annotations"]} boxes' for s, v in stats.items())
    return ', '.join(f'{s}: {v["images"]} images ({v["per_class"]}/class)'
                     for s, v in stats.items())
