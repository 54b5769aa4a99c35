"""Early, readable errors for missing or broken data sets.

OpenMMLab fails late and cryptically on bad data: a missing annotation file
surfaces as a ``FileNotFoundError`` deep inside the runner, a truncated JSON
file as a bare ``JSONDecodeError`` without the file name, a corrupt image as
``'NoneType' object has no attribute 'shape'`` in a data-loader worker, and
an empty class folder silently shifts every mmpretrain label after it.

:func:`check_dataset_cfg` inspects a dataset config *before* the runner is
built and raises one :class:`DatasetError` naming the path, the expected
layout and the fix.  :class:`CheckedLoadImageFromFile` is a drop-in
replacement for mmcv's ``LoadImageFromFile`` whose error names the image.
"""
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
from mmcv.transforms import TRANSFORMS, LoadImageFromFile

from ..registry import register_once

# mmpretrain's CustomDataset default extensions.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
# Annotation files larger than this are only checked for truncation (first
# and last byte), not parsed: COCO's 450 MB train json takes ~20 s and
# several GB to parse, and mmdet parses it again right after.
MAX_PARSED_JSON_BYTES = 256 * 2**20

DET_LAYOUT = (
    'expected the COCO 2017 layout: {root}/annotations/'
    'instances_train2017.json, {root}/annotations/instances_val2017.json, '
    '{root}/train2017/ and {root}/val2017/ (images)')
DET_FIX = (
    'For the synthetic demo data run `make demo` or `python '
    'tools/make_synthetic_data.py det --out data/demo_det` and set '
    "data_root='data/demo_det/'; for real COCO 2017 download it from "
    'https://cocodataset.org and put (or symlink) it at data/coco/ so that '
    'data/coco/annotations/instances_train2017.json and '
    'data/coco/train2017/ exist.')
CLS_LAYOUT = (
    'expected one sub-folder per class holding its images, e.g. '
    '{root}/<class_name>/0001.png (the layout mmpretrain\'s CustomDataset '
    'reads without ann_file)')
CLS_FIX = (
    'For the synthetic demo data run `make demo-cls` or `python '
    'tools/make_synthetic_data.py cls --out data/demo_cls` and set '
    "data_root='data/demo_cls/', data_prefix='train' (or 'val'); for "
    'ImageNet put it at data/imagenet/train/<wnid>/*.JPEG and '
    'data/imagenet/val/<wnid>/*.JPEG.')


class DatasetError(ValueError):
    """A data set is missing or malformed; the message says how to fix it."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data set file or folder does not exist.

    Also a ``FileNotFoundError``, so ``except FileNotFoundError`` works.
    """


class CorruptImageError(DatasetError):
    """An image file exists but cannot be decoded."""


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------
def check_image_file(path):
    """Decode one image the way mmcv does (OpenCV, colour).

    Returns:
        tuple: the decoded image's shape ``(height, width, 3)``.

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        CorruptImageError: it is empty, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f'image file {path} does not exist (or is not a file); restore '
            f'it or remove it from the annotation file / class folder')
    data = path.read_bytes()
    if not data:
        raise CorruptImageError(
            f'corrupt or unreadable image {path}: the file is empty; '
            f'delete or replace it')
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise CorruptImageError(
            f'corrupt or unreadable image {path}: OpenCV cannot decode its '
            f'{len(data)} bytes (truncated or not an image); delete or '
            f'replace it')
    return img.shape


# Registered in mmcv's TRANSFORMS (a child of mmengine's root registry), so
# dict(type='CheckedLoadImageFromFile') resolves from mmdet's and
# mmpretrain's registries too.
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with an error that names the file.

    mmcv 2.1's version raises a bare ``cv2.error: (-215:Assertion
    failed) !buf.empty()`` for an empty (0-byte) image, which does not
    name the file, and ``AssertionError: failed to load image: <path>``
    for an undecodable one (skipped under ``python -O``, and raised
    even with ``ignore_empty=True``).  This one raises
    :class:`CorruptImageError` (a ``ValueError``) or
    :class:`DatasetNotFoundError` (a ``FileNotFoundError``) naming the
    file, or returns None when ``ignore_empty=True`` (in training the
    dataset then picks another sample).  Same arguments as
    ``LoadImageFromFile``.
    """

    def transform(self, results):
        filename = results['img_path']
        try:
            return super().transform(results)
        except Exception as e:  # any failure to read or decode
            if self.ignore_empty:
                return None
            if isinstance(e, FileNotFoundError):
                raise DatasetNotFoundError(
                    f'image file {filename} does not exist; restore it '
                    f'or remove it from the annotation file / class '
                    f'folder') from e
            # One line: cv2 errors end in a newline.
            reason = ' '.join(str(e).split())
            raise CorruptImageError(
                f'corrupt or unreadable image {filename}: '
                f'{type(e).__name__}: {reason}; delete or replace '
                f'it') from e


register_once(TRANSFORMS, CheckedLoadImageFromFile)


_PLAIN_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile',
                  'mmdet.LoadImageFromFile', 'mmpretrain.LoadImageFromFile')


def _pipelines_of(dataset_cfg):
    """The ``pipeline`` lists of a dataset config and of the datasets it
    wraps (``dataset=`` / ``datasets=``, as in mmengine's wrappers)."""
    if not isinstance(dataset_cfg, dict):
        return
    if isinstance(dataset_cfg.get('pipeline'), list):
        yield dataset_cfg['pipeline']
    yield from _pipelines_of(dataset_cfg.get('dataset'))
    for inner in dataset_cfg.get('datasets') or ():
        yield from _pipelines_of(inner)


def use_checked_image_loader(cfg) -> int:
    """In our tools, read images with :class:`CheckedLoadImageFromFile`.

    Configs keep saying ``LoadImageFromFile`` (mmdet's ``DetInferencer``
    and mmdeploy look for exactly that name as the first test
    transform); ``tools/train.py`` and ``tools/test.py`` swap it for the
    checked loader, same arguments, in every ``*_dataloader`` pipeline, so
    a corrupt image still gets an error that names the file.

    Returns:
        int: how many transforms were swapped.
    """
    swapped = 0
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key, None)
        if not isinstance(loader, dict):
            continue
        for pipeline in _pipelines_of(loader.get('dataset')):
            for transform in pipeline:
                if isinstance(transform, dict) and \
                        transform.get('type') in _PLAIN_LOADERS:
                    transform['type'] = 'CheckedLoadImageFromFile'
                    swapped += 1
    return swapped


# --------------------------------------------------------------------------
# Dataset configs
# --------------------------------------------------------------------------
def _type_name(cfg):
    t = cfg.get('type', '')
    name = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return name.rsplit('.', 1)[-1]  # 'mmdet.CocoDataset' -> 'CocoDataset'


def _is_remote(path, cfg):
    backend = (cfg.get('backend_args') or {}).get('backend', 'local')
    return '://' in str(path) or backend not in ('local', 'disk')


def _join(data_root, path):
    """Mirror mmengine's BaseDataset._join_prefix for one path."""
    path = os.path.expanduser(str(path))
    if data_root and not os.path.isabs(path):
        return Path(os.path.expanduser(str(data_root))) / path
    return Path(path)


def _classes_from_cfg(cfg):
    """Class names a config pins (metainfo.classes or classes=), or None."""
    classes = (cfg.get('metainfo') or {}).get('classes')
    if classes is None:
        classes = cfg.get('classes')
    if isinstance(classes, (str, Path)):  # mmpretrain: a file of names
        try:
            classes = [line.strip() for line in
                       Path(classes).read_text().splitlines()
                       if line.strip()]
        except OSError:
            raise DatasetNotFoundError(
                f'classes file {classes} (from the dataset config) does '
                f'not exist; give classes as a list or fix the path') \
                from None
    return None if classes is None else list(classes)


def check_dataset_cfg(dataset_cfg, check_images=1):
    """Check a dataset config's files before the runner is built.

    Wrappers are followed: ``dataset=`` (RepeatDataset, ClassBalancedDataset,
    MultiImageMixDataset, or a whole dataloader config) and ``datasets=``
    (ConcatDataset).  Leaves are checked as

    * COCO style (``type`` containing ``Coco`` or a ``.json`` ann_file):
      the data root, the annotation file (exists, valid JSON with
      ``images``/``annotations``/``categories`` lists, at least one image,
      the config's ``metainfo.classes`` among its categories), the image
      folder ``data_prefix['img']`` and the first images.  An image-info
      file without ``annotations`` (COCO test-dev) is accepted for a
      ``test_mode=True`` dataset.  Annotations mmdet would drop (box outside
      the image, width/height < 1, area <= 0, category not in the classes)
      are counted and reported as a warning with one example;
    * mmengine format (a JSON with ``metainfo`` and ``data_list``, e.g.
      ``BaseDetDataset``): the file, a non-empty ``data_list`` and the
      first image (``img_path`` under ``data_prefix['img_path']``);
    * image-folder style (``CustomDataset``/``ImageNet*`` without
      ann_file): the folder, at least one class sub-folder, an image in
      every class folder, the class count matching ``metainfo.classes``;
      with a text ann_file: that file and the image folder.

    Other dataset types and remote paths (``s3://``, a non-local
    ``backend_args``) are not checked.

    Args:
        dataset_cfg (dict): An mmengine dataset (or dataloader) config.
        check_images (int): How many images per leaf data set to decode
            (the first ones listed); 0 only checks that the first exists.

    Returns:
        list[dict]: One summary per leaf data set: ``kind`` ('coco',
        'image_folder', 'image_list' or 'unchecked'), ``type`` and the
        checked paths/counts.

    Raises:
        DatasetNotFoundError: A file or folder is missing.
        DatasetError: A file or folder is malformed (e.g. invalid JSON, an
            empty class folder).
        CorruptImageError: One of the decoded images is unreadable.
    """
    if not isinstance(dataset_cfg, Mapping):
        raise TypeError(f'dataset_cfg must be a dict (an mmengine config), '
                        f'got {type(dataset_cfg).__name__}')
    if not isinstance(check_images, int) or check_images < 0:
        raise ValueError(f'check_images must be an integer >= 0, got '
                         f'{check_images!r}')
    if dataset_cfg.get('datasets') is not None:
        results = []
        for sub in dataset_cfg['datasets']:
            results += check_dataset_cfg(sub, check_images)
        return results
    if isinstance(dataset_cfg.get('dataset'), Mapping):
        return check_dataset_cfg(dataset_cfg['dataset'], check_images)

    type_name = _type_name(dataset_cfg)
    ann_file = str(dataset_cfg.get('ann_file') or '')
    if 'Coco' in type_name or ann_file.endswith('.json'):
        return [_check_coco(dataset_cfg, type_name, check_images)]
    if type_name in ('CustomDataset', 'ImageNet', 'ImageNet21k'):
        return [_check_image_folder(dataset_cfg, type_name, check_images)]
    return [dict(kind='unchecked', type=type_name)]


def _show(path):
    """The path as configured, plus where it resolves to if relative (the
    usual mistake is running from another working directory)."""
    path = Path(path)
    return str(path) if path.is_absolute() else f'{path} (= {path.absolute()})'


def _require_dir(path, what, layout, fix):
    if not path.exists():
        raise DatasetNotFoundError(
            f'{what} {_show(path)} does not exist; {layout}. {fix}')
    if not path.is_dir():
        raise DatasetError(
            f'{what} {path} is not a folder; {layout}. {fix}')


def _load_coco_json(path, layout, fix, test_mode=False):
    """Parse (or, if huge, sanity-check) a COCO annotation file.

    Returns:
        dict | None: the parsed content, None if only sanity-checked.
    """
    if not path.exists():
        raise DatasetNotFoundError(
            f'annotation file {_show(path)} does not exist; {layout}. {fix}')
    if not path.is_file():
        raise DatasetError(
            f'annotation file {path} is not a file; {layout}. {fix}')
    size = path.stat().st_size
    regen = ('It may be truncated by an interrupted download, copy or '
             'generation: re-download / re-generate it. ' + fix)
    if size > MAX_PARSED_JSON_BYTES:
        with open(path, 'rb') as f:
            head = f.read(64).lstrip()[:1]
            f.seek(max(0, size - 64))
            tail = f.read().rstrip()[-1:]
        if head != b'{' or tail != b'}':
            raise DatasetError(
                f'annotation file {path} is not a JSON object (it does '
                f'not start with {{ and end with }}). {regen}')
        return None
    try:
        content = json.loads(path.read_bytes())
    except json.JSONDecodeError as e:
        raise DatasetError(
            f'annotation file {path} is not valid JSON: {e.msg} at line '
            f'{e.lineno}, column {e.colno}. {regen}') from None
    except UnicodeDecodeError as e:
        raise DatasetError(
            f'annotation file {path} is not valid JSON text ({e.reason} '
            f'at byte {e.start}). {regen}') from None
    if not isinstance(content, dict):
        raise DatasetError(
            f'annotation file {path} holds a JSON {type(content).__name__}, '
            f'not a COCO object with images/annotations/categories; '
            f'{layout}. {fix}')
    if 'data_list' in content:  # mmengine format, checked by the caller
        return content
    keys = ('images', 'annotations', 'categories')
    if test_mode and 'annotations' not in content:
        keys = ('images', 'categories')  # image info (COCO test-dev)
    for key in keys:
        if not isinstance(content.get(key), list):
            raise DatasetError(
                f'annotation file {path} has no {key!r} list, so it is not '
                f'a COCO instances file (captions/keypoints/panoptic files '
                f'do not work for detection; an image-info file without '
                f'annotations needs test_mode=True); {layout}. {fix}')
    if not content['images']:
        raise DatasetError(
            f'annotation file {path} lists no images; {layout}. {fix}')
    if not content['categories']:
        raise DatasetError(
            f'annotation file {path} lists no categories; {layout}. {fix}')
    return content


def _default_coco_classes(type_name):
    """mmdet's default CocoDataset classes, or None if unknown."""
    if type_name != 'CocoDataset':
        return None
    try:
        from mmdet.datasets import CocoDataset
    except Exception:  # mmdet (or its mmcv) missing: skip this check
        return None
    return list(CocoDataset.METAINFO['classes'])


def _check_coco(cfg, type_name, check_images):
    data_root = cfg.get('data_root') or ''
    layout = DET_LAYOUT.format(root=str(data_root).rstrip('/') or 'data/coco')
    summary = dict(kind='coco', type=type_name)
    ann_file = cfg.get('ann_file') or ''
    # Test raw strings: Path() would fold 's3://x' into 's3:/x'.
    if _is_remote(data_root, cfg) or _is_remote(ann_file, cfg):
        return dict(summary, kind='unchecked')
    if data_root:
        _require_dir(Path(os.path.expanduser(data_root)), 'data root',
                     layout, DET_FIX)
    if not ann_file:
        raise DatasetError(
            f'{type_name} config has no ann_file; set it relative to '
            f'data_root, e.g. ann_file=\'annotations/instances_train2017'
            f'.json\'; {layout}. {DET_FIX}')
    ann_path = _join(data_root, ann_file)
    content = _load_coco_json(ann_path, layout, DET_FIX,
                              test_mode=bool(cfg.get('test_mode', False)))
    summary['ann_file'] = str(ann_path)

    prefix = cfg.get('data_prefix') or {}
    if content is not None and 'data_list' in content:
        # mmengine's BaseDataset: data_root + data_prefix['img_path']
        img_dir = _join(data_root, prefix if isinstance(prefix, str) else
                        prefix.get('img_path', ''))
        return _check_mmengine_format(content, ann_path, img_dir, summary,
                                      check_images)
    if isinstance(prefix, str):
        prefix = dict(img=prefix)
    if 'img' not in prefix:
        raise DatasetError(
            f'{type_name} config for {ann_path} has no data_prefix[\'img\'] '
            f'(mmdet reads images from data_root + data_prefix[\'img\'] + '
            f'file_name); set e.g. data_prefix=dict(img=\'train2017/\'); '
            f'{layout}.')
    img_dir = _join(data_root, prefix['img'])
    _require_dir(img_dir, f'image folder (data_prefix[\'img\'] of '
                 f'{ann_path.name})', layout, DET_FIX)
    summary['img_dir'] = str(img_dir)
    if content is None:  # huge file: structure not parsed
        return summary

    names = [c.get('name') for c in content['categories']]
    classes = _classes_from_cfg(cfg)
    pinned_by = 'metainfo.classes'
    if classes is None:
        classes = _default_coco_classes(type_name)
        pinned_by = "CocoDataset's default (COCO-80) classes"
    if classes is not None:
        missing = [c for c in classes if c not in names]
        if missing:
            raise DatasetError(
                f'{pinned_by} of the dataset config name classes that '
                f'annotation file {ann_path} does not have: {missing[:10]}'
                f'{" ..." if len(missing) > 10 else ""}; its categories are '
                f'{names[:10]}{" ..." if len(names) > 10 else ""}. Set '
                f'metainfo=dict(classes={tuple(names[:10])!r}) (for the '
                f'demo data: mmdet_gghost.datasets.DET_CLASSES).')

    images = content['images']
    summary.update(num_images=len(images),
                   num_annotations=len(content.get('annotations', [])))
    summary['dropped_annotations'] = _warn_dropped_annotations(
        content, ann_path, names if classes is None else classes)
    for info in images[:max(1, check_images)]:
        file_name = info.get('file_name') if isinstance(info, dict) else None
        if not file_name:
            raise DatasetError(
                f'annotation file {ann_path}: image entry {info!r} has no '
                f'file_name; {layout}.')
        img_path = img_dir / file_name
        if not img_path.is_file():
            raise DatasetNotFoundError(
                f'image {img_path} listed in {ann_path} does not exist; is '
                f"data_prefix['img'] pointing at the right split folder? "
                f'{layout}. {DET_FIX}')
        if check_images:
            check_image_file(img_path)
    return summary


def _check_mmengine_format(content, ann_path, img_dir, summary,
                           check_images):
    """An mmengine-format file: ``data_list`` of dicts with ``img_path``
    (relative to ``data_root`` + ``data_prefix['img_path']``)."""
    data_list = content['data_list']
    if not isinstance(data_list, list) or not data_list:
        raise DatasetError(
            f'annotation file {ann_path} (mmengine format) has an empty or '
            'invalid data_list; it must list one dict per image.')
    summary.update(kind='mmengine', num_images=len(data_list))
    first = data_list[0]
    img_path = first.get('img_path') if isinstance(first, dict) else None
    if img_path:  # anything else: mmengine's parse_data_info decides
        image = _join(img_dir, img_path)
        if not image.is_file():
            raise DatasetNotFoundError(
                f'image {image} listed in {ann_path} does not exist; are '
                f"data_root and data_prefix['img_path'] right?")
        if check_images:
            check_image_file(image)
    return summary


def _drop_reason(ann, image, cat_ids):
    """Why mmdet's CocoDataset.parse_data_info would skip ``ann``."""
    try:
        x, y, w, h = (float(v) for v in ann['bbox'])
        inter_w = max(0, min(x + w, image['width']) - max(x, 0))
        inter_h = max(0, min(y + h, image['height']) - max(y, 0))
    except (KeyError, TypeError, ValueError):
        return None  # malformed: not what this check is about
    if inter_w * inter_h == 0:
        return 'box outside the image'
    if ann.get('area', 1) <= 0 or w < 1 or h < 1:
        return 'width/height < 1 or area <= 0'
    if ann.get('category_id') not in cat_ids:
        return 'category not among the classes'
    return None


def _warn_dropped_annotations(content, ann_path, classes):
    """Count (and warn about) annotations mmdet drops without a word."""
    cat_ids = {c.get('id') for c in content['categories']
               if c.get('name') in set(classes)}
    images = {i.get('id'): i for i in content['images']
              if isinstance(i, dict)}
    dropped, example = {}, None
    for ann in content.get('annotations', []):
        image = images.get(ann.get('image_id')) if isinstance(
            ann, dict) else None
        if image is None or ann.get('ignore', False):
            continue
        reason = _drop_reason(ann, image, cat_ids)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            example = example or (ann, reason)
    if dropped:
        from mmengine.logging import print_log
        counts = ', '.join(f'{n} {r}' for r, n in dropped.items())
        ann, reason = example
        print_log(
            f'{sum(dropped.values())} of {len(content["annotations"])} '
            f'annotations in {ann_path} will be dropped by mmdet ({counts}); '
            f'e.g. annotation id {ann.get("id")} of image '
            f'{ann.get("image_id")}: bbox {ann.get("bbox")}, category '
            f'{ann.get("category_id")} ({reason}).',
            logger='current', level=logging.WARNING)
    return sum(dropped.values())


def _check_image_folder(cfg, type_name, check_images):
    data_root = cfg.get('data_root') or ''
    prefix = cfg.get('data_prefix') or ''
    if isinstance(prefix, Mapping):
        prefix = prefix.get('img_path', '')
    if not prefix and type_name.startswith('ImageNet') and cfg.get('split'):
        prefix = cfg['split']  # mmpretrain's ImageNet(split='train')
    if _is_remote(data_root, cfg) or _is_remote(prefix, cfg):
        return dict(kind='unchecked', type=type_name)
    folder = _join(data_root, prefix) if (data_root or prefix) else None
    layout = CLS_LAYOUT.format(root=folder or 'data/demo_cls/train')
    if folder is None:
        raise DatasetError(
            f'{type_name} config sets neither data_root nor data_prefix, so '
            f'there is no image folder to read; {layout}. {CLS_FIX}')
    if data_root:
        _require_dir(Path(os.path.expanduser(data_root)), 'data root',
                     layout, CLS_FIX)
    extensions = tuple(e.lower() for e in
                       cfg.get('extensions') or IMG_EXTENSIONS)

    ann_file = cfg.get('ann_file') or ''
    if ann_file:  # a text list "<path> <label>": files relative to folder
        ann_path = _join(data_root, ann_file)
        if not ann_path.is_file():
            raise DatasetNotFoundError(
                f'annotation list {_show(ann_path)} does not exist; either '
                f'create it (lines "<image path relative to {folder}> '
                f'<label>") or drop ann_file to read class sub-folders; '
                f'{layout}. '
                f'{CLS_FIX}')
        _require_dir(folder, 'image folder', layout, CLS_FIX)
        return dict(kind='image_list', type=type_name,
                    ann_file=str(ann_path), img_dir=str(folder))

    _require_dir(folder, 'image folder', layout, CLS_FIX)
    # mmengine's local backend skips hidden entries, so do we.
    class_dirs = sorted(p for p in folder.iterdir()
                        if p.is_dir() and not p.name.startswith('.'))
    if not class_dirs:
        loose = [p.name for p in folder.iterdir()
                 if p.name.lower().endswith(extensions)]
        found = (f'it holds {len(loose)} images but no class sub-folders'
                 if loose else 'it has no class sub-folders')
        raise DatasetError(f'image folder {folder}: {found}; {layout}. '
                           f'{CLS_FIX}')
    first_images = []
    for class_dir in class_dirs:
        image = _first_image(class_dir, extensions)
        if image is None:
            raise DatasetError(
                f'class folder {class_dir} has no images '
                f'({"/".join(extensions)}); mmpretrain would only warn and '
                f'every class after it would get a shifted label. Add '
                f'images to it or delete the folder; {layout}. {CLS_FIX}')
        first_images.append(image)
    classes = _classes_from_cfg(cfg)
    if classes is not None and len(classes) != len(class_dirs):
        raise DatasetError(
            f'image folder {folder} has {len(class_dirs)} class folders '
            f'({[p.name for p in class_dirs][:10]}) but the config names '
            f'{len(classes)} classes ({classes[:10]}); make them match.')
    for image in first_images[:check_images]:
        check_image_file(image)
    return dict(kind='image_folder', type=type_name, img_dir=str(folder),
                classes=[p.name for p in class_dirs])


def _first_image(folder, extensions):
    """First image file (sorted walk, hidden entries skipped) or None."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        for name in sorted(filenames):
            if not name.startswith('.') and name.lower().endswith(extensions):
                return Path(dirpath) / name
    return None
