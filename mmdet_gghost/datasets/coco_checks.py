"""Checks of COCO-style (and mmengine-format) detection annotation files,
for :func:`mmdet_gghost.datasets.checks.check_dataset_cfg`."""
import json
import logging
from collections import Counter

from .common import (DatasetError, DatasetNotFoundError, classes_from_cfg,
                     is_remote, join_root, require_dir)
from .images import check_image_file

# Annotation files larger than this are only checked for truncation (first
# and last byte), not parsed: COCO's 450 MB train json takes ~20 s and
# several GB to parse, and mmdet parses it again right after.
MAX_PARSED_JSON_BYTES = 256 * 2**20

DET_LAYOUT = ('expected the COCO 2017 layout: {root}/annotations/'
              'instances_train2017.json, {root}/annotations/'
              'instances_val2017.json, {root}/train2017/ and {root}/val2017/'
              ' (images)')
DET_FIX = ('For the synthetic demo data run `make demo` or `python '
           'tools/make_synthetic_data.py det --out data/demo_det` and set '
           "data_root='data/demo_det/'; for real COCO 2017 download it from "
           'https://cocodataset.org and put (or symlink) it at data/coco/ so '
           'that data/coco/annotations/instances_train2017.json and '
           'data/coco/train2017/ exist.')


def _load_coco_json(path, layout, test_mode):
    """The parsed annotation file, or None if it is too big to parse (then
    only checked for truncation)."""
    require_dir(path, 'annotation file', layout, DET_FIX, kind='file')
    size = path.stat().st_size
    regen = ('It may be truncated by an interrupted download, copy or '
             'generation: re-download / re-generate it. ' + DET_FIX)
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
            f'{layout}. {DET_FIX}')
    if 'data_list' in content:  # mmengine format, images checked by caller
        if not isinstance(content['data_list'], list) or \
                not content['data_list']:
            raise DatasetError(
                f'annotation file {path} (mmengine format) has an empty or '
                'invalid data_list; it must list one dict per image.')
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
                f'annotations needs test_mode=True); {layout}. {DET_FIX}')
    for key in ('images', 'categories'):
        if not content[key]:
            raise DatasetError(
                f'annotation file {path} lists no {key}; {layout}. {DET_FIX}')
    return content


def check_coco(cfg, type_name, check_images):
    """Check one COCO-style (or mmengine-format JSON) dataset config: data
    root, annotation file (``images``/``annotations``/``categories`` lists,
    ``annotations`` optional with ``test_mode=True``), its classes among the
    categories, ``data_prefix['img']`` and the first images; annotations
    mmdet would drop are counted and warned about.  Returns its summary
    (see ``check_dataset_cfg``)."""
    data_root = cfg.get('data_root') or ''
    layout = DET_LAYOUT.format(root=str(data_root).rstrip('/') or 'data/coco')
    summary = dict(kind='coco', type=type_name)
    ann_file = cfg.get('ann_file') or ''
    # Test raw strings: Path() would fold 's3://x' into 's3:/x'.
    if is_remote(data_root, cfg) or is_remote(ann_file, cfg):
        return dict(summary, kind='unchecked')
    if data_root:
        require_dir(data_root, 'data root', layout, DET_FIX)
    if not ann_file:
        raise DatasetError(
            f'{type_name} config has no ann_file; set it relative to '
            f'data_root, e.g. ann_file=\'annotations/instances_train2017'
            f'.json\'; {layout}. {DET_FIX}')
    ann_path = join_root(data_root, ann_file)
    content = _load_coco_json(ann_path, layout, cfg.get('test_mode', False))
    summary['ann_file'] = str(ann_path)

    prefix = cfg.get('data_prefix') or {}
    if content is not None and 'data_list' in content:
        # mmengine's BaseDataset: data_root + data_prefix['img_path']
        img_dir = join_root(data_root, prefix if isinstance(prefix, str)
                            else prefix.get('img_path', ''))
        first = content['data_list'][0]
        img_path = first.get('img_path') if isinstance(first, dict) else None
        if img_path:  # anything else: mmengine's parse_data_info decides
            _check_listed_image(join_root(img_dir, img_path), ann_path,
                                check_images, "are data_root and "
                                "data_prefix['img_path'] right?")
        return dict(summary, kind='mmengine',
                    num_images=len(content['data_list']))
    if isinstance(prefix, str):
        prefix = dict(img=prefix)
    if 'img' not in prefix:
        raise DatasetError(
            f"{type_name} config for {ann_path} has no data_prefix['img'] "
            f"(mmdet reads images from data_root + data_prefix['img'] + "
            f"file_name); set e.g. data_prefix=dict(img='train2017/'); "
            f'{layout}.')
    img_dir = join_root(data_root, prefix['img'])
    require_dir(img_dir, f'image folder (data_prefix[\'img\'] of '
                f'{ann_path.name})', layout, DET_FIX)
    summary['img_dir'] = str(img_dir)
    if content is None:  # huge file: structure not parsed
        return summary

    dropped = _warn_dropped_annotations(
        content, ann_path, _pinned_classes(cfg, type_name, content, ann_path))
    summary.update(num_images=len(content['images']),
                   num_annotations=len(content.get('annotations', [])),
                   dropped_annotations=dropped)
    for info in content['images'][:max(1, check_images)]:
        file_name = info.get('file_name') if isinstance(info, dict) else None
        if not file_name:
            raise DatasetError(
                f'annotation file {ann_path}: image entry {info!r} has no '
                f'file_name; {layout}.')
        _check_listed_image(
            img_dir / file_name, ann_path, check_images,
            "is data_prefix['img'] pointing at the right split folder? "
            f'{layout}. {DET_FIX}')
    return summary


def _pinned_classes(cfg, type_name, content, ann_path):
    """The classes the config reads (its ``metainfo.classes``, else
    CocoDataset's COCO-80, else all categories of the file); each must be
    a category of the annotation file."""
    names = [c.get('name') for c in content['categories']]
    classes = classes_from_cfg(cfg)
    pinned_by = 'metainfo.classes'
    if classes is None and type_name == 'CocoDataset':
        try:
            from mmdet.datasets import CocoDataset
        except Exception:  # mmdet (or its mmcv) broken: skip this check
            return names
        classes = list(CocoDataset.METAINFO['classes'])
        pinned_by = "CocoDataset's default (COCO-80) classes"
    if classes is None:
        return names
    missing = [c for c in classes if c not in names]
    if missing:
        raise DatasetError(
            f'{pinned_by} of the dataset config name classes that '
            f'annotation file {ann_path} does not have: {missing[:10]}'
            f'{" ..." if len(missing) > 10 else ""}; its categories are '
            f'{names[:10]}{" ..." if len(names) > 10 else ""}. Set '
            f'metainfo=dict(classes={tuple(names[:10])!r}) (for the '
            f'demo data: mmdet_gghost.datasets.DET_CLASSES).')
    return classes


def _check_listed_image(image, ann_path, check_images, hint):
    """``image`` (listed in ``ann_path``) exists and, if ``check_images``,
    decodes; ``hint`` ends the missing-file message."""
    if not image.is_file():
        raise DatasetNotFoundError(
            f'image {image} listed in {ann_path} does not exist; {hint}')
    if check_images:
        check_image_file(image)


def _drop_reason(ann, images, cat_ids):
    """Why mmdet's CocoDataset.parse_data_info would skip ``ann``, or None."""
    image = isinstance(ann, dict) and images.get(ann.get('image_id'))
    if not image or ann.get('ignore', False):
        return None
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
    images = {i.get('id'): i for i in content['images'] if isinstance(i, dict)}
    dropped = [(ann, reason) for ann in content.get('annotations', [])
               if (reason := _drop_reason(ann, images, cat_ids))]
    if dropped:
        from mmengine.logging import print_log
        counts = ', '.join(f'{n} {r}' for r, n in
                           Counter(r for _, r in dropped).items())
        ann, reason = dropped[0]
        print_log(
            f'{len(dropped)} of {len(content["annotations"])} '
            f'annotations in {ann_path} will be dropped by mmdet ({counts}); '
            f'e.g. annotation id {ann.get("id")} of image '
            f'{ann.get("image_id")}: bbox {ann.get("bbox")}, category '
            f'{ann.get("category_id")} ({reason}).',
            logger='current', level=logging.WARNING)
    return len(dropped)
