"""Early, readable errors for missing or broken data sets:
:func:`check_dataset_cfg` checks a dataset config before the runner is built
(COCO JSON in :mod:`.coco_checks`, image folders here)."""
import os
from collections.abc import Mapping
from pathlib import Path

from .coco_checks import check_coco
from .common import (CorruptImageError, DatasetError,  # noqa: F401
                     DatasetNotFoundError, classes_from_cfg, is_remote,
                     join_root, require_dir)
from .images import (CheckedLoadImageFromFile, check_image_file,  # noqa: F401
                     use_checked_image_loader)


def check_dataset_cfg(dataset_cfg, check_images=1):
    """Check a dataset config's files before the runner is built.

    Wrappers are followed (``dataset=``, ``datasets=``, a whole dataloader
    config).  Leaves of type ``*Coco*`` or with a ``.json`` ann_file (COCO
    or mmengine format) go to :func:`.coco_checks.check_coco`, image
    folders (``CustomDataset``/``ImageNet*``) to :func:`check_image_folder`;
    other types and remote paths (``s3://``, non-local ``backend_args``)
    are not checked.

    Args:
        dataset_cfg (dict): An mmengine dataset (or dataloader) config.
        check_images (int): How many images per leaf data set to decode
            (the first ones listed); 0 only checks that the first exists.

    Returns:
        list[dict]: One summary per leaf: ``kind`` ('coco', 'mmengine',
        'image_folder', 'image_list' or 'unchecked'), ``type`` and the
        checked paths/counts.

    Raises:
        DatasetNotFoundError: A file or folder is missing.
        DatasetError: A file or folder is malformed.
        CorruptImageError: One of the decoded images is unreadable.
    """
    if not isinstance(dataset_cfg, Mapping):
        raise TypeError(f'dataset_cfg must be a dict (an mmengine config), '
                        f'got {type(dataset_cfg).__name__}')
    if not isinstance(check_images, int) or check_images < 0:
        raise ValueError(f'check_images must be an integer >= 0, got '
                         f'{check_images!r}')
    if dataset_cfg.get('datasets') is not None:
        return [result for sub in dataset_cfg['datasets']
                for result in check_dataset_cfg(sub, check_images)]
    if isinstance(dataset_cfg.get('dataset'), Mapping):
        return check_dataset_cfg(dataset_cfg['dataset'], check_images)

    type_name = dataset_cfg.get('type', '')  # a class or 'mmdet.CocoDataset'
    type_name = getattr(type_name, '__name__', str(type_name)).rsplit('.')[-1]
    ann_file = str(dataset_cfg.get('ann_file') or '')
    if 'Coco' in type_name or ann_file.endswith('.json'):
        return [check_coco(dataset_cfg, type_name, check_images)]
    if type_name in ('CustomDataset', 'ImageNet', 'ImageNet21k'):
        return [check_image_folder(dataset_cfg, type_name, check_images)]
    return [dict(kind='unchecked', type=type_name)]


# mmpretrain's CustomDataset default extensions.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')

CLS_LAYOUT = ('expected one sub-folder per class holding its images, e.g. '
              "{root}/<class_name>/0001.png (the layout mmpretrain's "
              'CustomDataset reads without ann_file)')
CLS_FIX = ('For the synthetic demo data run `make demo-cls` or `python '
           'tools/make_synthetic_data.py cls --out data/demo_cls` and set '
           "data_root='data/demo_cls/', data_prefix='train' (or 'val'); for "
           'ImageNet put it at data/imagenet/train/<wnid>/*.JPEG and '
           'data/imagenet/val/<wnid>/*.JPEG.')


def check_image_folder(cfg, type_name, check_images):
    """Check one image-folder (``CustomDataset``/``ImageNet*``) config: the
    folder, an image in every class sub-folder, the class count of
    ``metainfo.classes``; with a text ann_file: that file and the folder.
    Returns its summary (see :func:`check_dataset_cfg`)."""
    data_root = cfg.get('data_root') or ''
    prefix = cfg.get('data_prefix') or ''
    if isinstance(prefix, Mapping):
        prefix = prefix.get('img_path', '')
    if not prefix and type_name.startswith('ImageNet') and cfg.get('split'):
        prefix = cfg['split']  # mmpretrain's ImageNet(split='train')
    if is_remote(data_root, cfg) or is_remote(prefix, cfg):
        return dict(kind='unchecked', type=type_name)
    folder = join_root(data_root, prefix) if (data_root or prefix) else None
    layout = CLS_LAYOUT.format(root=folder or 'data/demo_cls/train')
    if folder is None:
        raise DatasetError(
            f'{type_name} config sets neither data_root nor data_prefix, so '
            f'there is no image folder to read; {layout}. {CLS_FIX}')
    if data_root:
        require_dir(data_root, 'data root', layout, CLS_FIX)
    extensions = tuple(e.lower() for e in
                       cfg.get('extensions') or IMG_EXTENSIONS)

    ann_file = cfg.get('ann_file') or ''
    if ann_file:  # a text list "<path> <label>": files relative to folder
        ann_path = join_root(data_root, ann_file)
        require_dir(ann_path, 'annotation list', f'either create it (lines '
                    f'"<image path relative to {folder}> <label>") or drop '
                    f'ann_file to read class sub-folders; {layout}', CLS_FIX,
                    kind='file')
        require_dir(folder, 'image folder', layout, CLS_FIX)
        return dict(kind='image_list', type=type_name,
                    ann_file=str(ann_path), img_dir=str(folder))

    require_dir(folder, 'image folder', layout, CLS_FIX)
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
    first_images = [_first_image(d, extensions) for d in class_dirs]
    if None in first_images:
        raise DatasetError(
            f'class folder {class_dirs[first_images.index(None)]} has no '
            f'images ({"/".join(extensions)}); mmpretrain would only warn '
            f'and every class after it would get a shifted label. Add '
            f'images to it or delete the folder; {layout}. {CLS_FIX}')
    classes = classes_from_cfg(cfg)
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
