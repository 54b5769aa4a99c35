"""check_dataset_cfg / check_image_file / CheckedLoadImageFromFile: every
bad-input case raises one error that names the path and the fix."""
import json
import shutil
from pathlib import Path

import pytest

from mmdet_gghost.datasets import (CLS_CLASSES, DET_CLASSES,
                                   CorruptImageError, DatasetError,
                                   DatasetNotFoundError, check_dataset_cfg,
                                   check_image_file,
                                   make_classification_dataset,
                                   make_detection_dataset)

TRAIN_JSON = 'annotations/instances_train2017.json'


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    base = tmp_path_factory.mktemp('pristine')
    make_detection_dataset(base / 'det', num_train=4, num_val=2, img_size=64,
                           seed=1)
    make_classification_dataset(base / 'cls', num_train_per_class=1,
                                num_val_per_class=1, img_size=32)
    return base


@pytest.fixture
def det(pristine, tmp_path):
    """A private copy of the detection set (tests break it)."""
    return Path(shutil.copytree(pristine / 'det', tmp_path / 'det'))


@pytest.fixture
def cls(pristine, tmp_path):
    return Path(shutil.copytree(pristine / 'cls', tmp_path / 'cls'))


def det_cfg(root, **kw):
    cfg = dict(type='CocoDataset', data_root=str(root), ann_file=TRAIN_JSON,
               data_prefix=dict(img='train2017/'),
               metainfo=dict(classes=DET_CLASSES),
               filter_cfg=dict(filter_empty_gt=True), pipeline=[])
    cfg.update(kw)
    return cfg


def cls_cfg(root, **kw):
    cfg = dict(type='mmpretrain.CustomDataset', data_root=str(root),
               data_prefix='train', pipeline=[])
    cfg.update(kw)
    return cfg


def first_train_image(root):
    coco = json.loads((root / TRAIN_JSON).read_text())
    return root / 'train2017' / coco['images'][0]['file_name']


# ------------------------------------------------------------- valid input
def test_valid_det_cfg(det):
    [summary] = check_dataset_cfg(det_cfg(det))
    assert summary['kind'] == 'coco'
    assert summary['num_images'] == 4
    assert summary['ann_file'] == str(det / TRAIN_JSON)
    assert summary['img_dir'] == str(det / 'train2017')


def test_valid_cls_cfg_both_prefix_forms(cls):
    [a] = check_dataset_cfg(cls_cfg(cls))
    [b] = check_dataset_cfg(cls_cfg(cls, data_prefix=dict(img_path='val')))
    assert a['kind'] == b['kind'] == 'image_folder'
    assert a['classes'] == b['classes'] == list(CLS_CLASSES)


def test_wrappers_are_followed(det, cls):
    cfg = dict(
        batch_size=2,  # a whole dataloader config works too
        dataset=dict(type='ConcatDataset', datasets=[
            dict(type='RepeatDataset', times=3, dataset=det_cfg(det)),
            cls_cfg(cls)]))
    kinds = [s['kind'] for s in check_dataset_cfg(cfg)]
    assert kinds == ['coco', 'image_folder']

    broken = dict(type='RepeatDataset', times=2, dataset=dict(
        type='ConcatDataset',
        datasets=[det_cfg(det), det_cfg(det, data_root=str(det) + '_gone')]))
    with pytest.raises(DatasetNotFoundError, match='_gone'):
        check_dataset_cfg(broken)


def test_unknown_types_and_remote_paths_are_not_checked():
    assert check_dataset_cfg(dict(type='CIFAR10', data_root='nowhere')) == \
        [dict(kind='unchecked', type='CIFAR10')]
    [s] = check_dataset_cfg(det_cfg('s3://bucket/coco'))
    assert s['kind'] == 'unchecked'


def test_not_a_dict():
    with pytest.raises(TypeError, match='must be a dict'):
        check_dataset_cfg(['CocoDataset'])


# ------------------------------------------------------------ COCO errors
def test_missing_data_root(tmp_path):
    root = tmp_path / 'data' / 'coco'
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_cfg(det_cfg(root))
    assert isinstance(err.value, FileNotFoundError)
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert f'data root {root} does not exist' in msg
    # expected layout and both fixes
    assert f'{root}/annotations/instances_train2017.json' in msg
    assert f'{root}/train2017/' in msg
    assert 'make demo' in msg
    assert 'python tools/make_synthetic_data.py det --out data/demo_det' \
        in msg
    assert 'data/coco/' in msg


def test_missing_ann_file(det):
    (det / TRAIN_JSON).unlink()
    with pytest.raises(DatasetNotFoundError,
                       match=f'annotation file {det / TRAIN_JSON} does not '
                       'exist'):
        check_dataset_cfg(det_cfg(det))


def test_ann_file_relative_to_cwd_without_data_root(det, monkeypatch):
    monkeypatch.chdir(det)
    [s] = check_dataset_cfg(det_cfg('', data_prefix=dict(img='train2017/')))
    assert s['num_images'] == 4
    with pytest.raises(DatasetNotFoundError, match='annotations/nope.json'):
        check_dataset_cfg(det_cfg('', ann_file='annotations/nope.json'))


def test_truncated_json_names_file_line_and_column(det):
    path = det / TRAIN_JSON
    text = path.read_text()
    path.write_text(text[:len(text) // 2])
    with pytest.raises(DatasetError) as err:
        check_dataset_cfg(det_cfg(det))
    msg = str(err.value)
    assert f'annotation file {path} is not valid JSON' in msg
    assert 'line 1, column' in msg and 'truncated' in msg


def test_json_error_line_numbers_on_multiline_file(det):
    path = det / TRAIN_JSON
    path.write_text('{\n  "images": [],\n  "annotations": [,]\n}\n')
    with pytest.raises(DatasetError, match='line 3, column 19'):
        check_dataset_cfg(det_cfg(det))


def test_json_that_is_not_coco_instances(det):
    path = det / TRAIN_JSON
    coco = json.loads(path.read_text())
    del coco['categories']
    path.write_text(json.dumps(coco))
    with pytest.raises(DatasetError,
                       match=f"{path} has no 'categories' list"):
        check_dataset_cfg(det_cfg(det))
    path.write_text('[1, 2]')
    with pytest.raises(DatasetError, match='holds a JSON list'):
        check_dataset_cfg(det_cfg(det))


def test_json_without_images(det):
    path = det / TRAIN_JSON
    coco = json.loads(path.read_text())
    coco['images'] = []
    path.write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match='lists no images'):
        check_dataset_cfg(det_cfg(det))


def test_huge_json_is_only_checked_for_truncation(det, monkeypatch):
    from mmdet_gghost.datasets import coco_checks
    monkeypatch.setattr(coco_checks, 'MAX_PARSED_JSON_BYTES', 10)
    [s] = check_dataset_cfg(det_cfg(det))
    assert 'num_images' not in s  # not parsed
    path = det / TRAIN_JSON
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match='truncated'):
        check_dataset_cfg(det_cfg(det))


def test_missing_image_folder(det):
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_cfg(det_cfg(det, data_prefix=dict(img='train2014/')))
    assert f"image folder (data_prefix['img'] of instances_train2017.json) " \
        f'{det / "train2014"} does not exist' in str(err.value)


def test_missing_img_prefix_key(det):
    with pytest.raises(DatasetError, match=r"no data_prefix\['img'\]"):
        check_dataset_cfg(det_cfg(det, data_prefix=dict(img_path='x/')))


def test_wrong_split_folder_is_caught_by_first_image(det):
    # val2017 exists but does not hold the train images
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_cfg(det_cfg(det, data_prefix=dict(img='val2017/')))
    first = first_train_image(det).name
    assert f'image {det / "val2017" / first} listed in' in str(err.value)


def test_classes_not_in_annotation_file(det):
    with pytest.raises(DatasetError) as err:
        check_dataset_cfg(det_cfg(det, metainfo=dict(
            classes=('circle', 'person'))))
    msg = str(err.value)
    assert "['person']" in msg and "'square'" in msg


def test_default_coco_classes_on_demo_data(det):
    """No metainfo: CocoDataset would use the 80 COCO classes."""
    pytest.importorskip('mmdet.datasets')
    cfg = det_cfg(det)
    del cfg['metainfo']
    with pytest.raises(DatasetError, match='COCO-80'):
        check_dataset_cfg(cfg)


def test_corrupt_first_image(det):
    image = first_train_image(det)
    image.write_bytes(image.read_bytes()[:100])  # truncated PNG
    with pytest.raises(CorruptImageError,
                       match=f'corrupt or unreadable image {image}'):
        check_dataset_cfg(det_cfg(det))
    # check_images=0 only checks that it exists
    assert check_dataset_cfg(det_cfg(det), check_images=0)[0]['kind'] == \
        'coco'


# ------------------------------------------------------ image-folder errors
def test_cls_missing_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_cfg(cls_cfg(tmp_path / 'demo_cls'))
    msg = str(err.value)
    assert f'data root {tmp_path / "demo_cls"} does not exist' in msg
    assert 'python tools/make_synthetic_data.py cls --out data/demo_cls' \
        in msg
    assert 'data/imagenet/train/<wnid>' in msg


def test_cls_missing_split_folder(cls):
    with pytest.raises(DatasetNotFoundError,
                       match=f'image folder {cls / "test"} does not exist'):
        check_dataset_cfg(cls_cfg(cls, data_prefix='test'))


def test_cls_empty_class_folder(cls):
    empty = cls / 'train' / 'star_solid'
    for f in empty.iterdir():
        f.unlink()
    (empty / 'notes.txt').write_text('not an image')
    with pytest.raises(DatasetError,
                       match=f'class folder {empty} has no images'):
        check_dataset_cfg(cls_cfg(cls))


def test_cls_flat_folder_without_classes(cls):
    flat = cls / 'flat'
    flat.mkdir()
    shutil.copy(next((cls / 'train' / 'circle_solid').iterdir()),
                flat / 'a.png')
    with pytest.raises(DatasetError,
                       match='holds 1 images but no class sub-folders'):
        check_dataset_cfg(cls_cfg(cls, data_prefix='flat'))


def test_cls_hidden_folders_are_ignored_like_mmengine(cls):
    (cls / 'train' / '.ipynb_checkpoints').mkdir()
    [s] = check_dataset_cfg(cls_cfg(cls))
    assert s['classes'] == list(CLS_CLASSES)


def test_cls_class_count_mismatch(cls):
    with pytest.raises(DatasetError, match='has 8 class folders'):
        check_dataset_cfg(cls_cfg(cls, metainfo=dict(classes=('a', 'b'))))
    # classes.txt as the class list matches
    check_dataset_cfg(cls_cfg(cls, classes=str(cls / 'classes.txt')))


def test_cls_ann_file_list(cls):
    with pytest.raises(DatasetNotFoundError, match='annotation list'):
        check_dataset_cfg(cls_cfg(cls, ann_file='meta/train.txt'))
    (cls / 'meta').mkdir()
    (cls / 'meta' / 'train.txt').write_text('circle_solid/00000.png 0\n')
    assert check_dataset_cfg(cls_cfg(cls, ann_file='meta/train.txt'))[0][
        'kind'] == 'image_list'


def test_cls_corrupt_image(cls):
    image = cls / 'train' / 'circle_solid' / '00000.png'
    image.write_text('this is not a png')
    with pytest.raises(CorruptImageError, match=str(image)):
        check_dataset_cfg(cls_cfg(cls))


# --------------------------------------------------------- single images
def test_check_image_file(tmp_path, pristine):
    good = first_train_image(pristine / 'det')
    assert check_image_file(good) == (64, 64, 3)
    with pytest.raises(DatasetNotFoundError, match='nope.png does not'):
        check_image_file(tmp_path / 'nope.png')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(CorruptImageError, match=f'{empty}: the file is '
                       'empty; delete or replace it'):
        check_image_file(empty)
    cut = tmp_path / 'cut.png'
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CorruptImageError, match=f'image {cut}: OpenCV'):
        check_image_file(cut)


# ------------------------------------------- transform in the mmcv pipeline
@pytest.fixture
def transforms():
    pytest.importorskip('mmcv._ext', reason='mmcv ops not built yet')
    from mmcv.transforms import LoadImageFromFile
    from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
    from mmpretrain.registry import TRANSFORMS as CLS_TRANSFORMS
    return LoadImageFromFile, DET_TRANSFORMS, CLS_TRANSFORMS


# Environment check: mmcv's own loader behaviour, which
# CheckedLoadImageFromFile works around (no project code).
@pytest.mark.env_check
def test_plain_mmcv_loader_errors(transforms, tmp_path):
    """Why CheckedLoadImageFromFile exists: mmcv 2.1 names an undecodable
    file only in an AssertionError (even with ignore_empty=True) and an
    empty file not at all (this fails if mmcv ever fixes it)."""
    LoadImageFromFile = transforms[0]
    bad = tmp_path / 'bad_image_xyz.png'
    bad.write_text('garbage')
    with pytest.raises(AssertionError, match='bad_image_xyz'):
        LoadImageFromFile(ignore_empty=True)(dict(img_path=str(bad)))
    empty = tmp_path / 'empty_image_xyz.png'
    empty.write_bytes(b'')
    with pytest.raises(Exception) as err:
        LoadImageFromFile()(dict(img_path=str(empty)))
    assert 'empty_image_xyz' not in str(err.value)


def test_checked_loader_names_the_file(transforms, tmp_path, pristine):
    _, det_transforms, cls_transforms = transforms
    for registry in (det_transforms, cls_transforms):
        load = registry.build(dict(type='CheckedLoadImageFromFile'))
        good = first_train_image(pristine / 'det')
        assert load(dict(img_path=str(good)))['img'].shape == (64, 64, 3)
        bad = tmp_path / 'bad.png'
        bad.write_text('garbage')
        with pytest.raises(CorruptImageError,
                           match=f'corrupt or unreadable image {bad}: '):
            load(dict(img_path=str(bad)))
        empty = tmp_path / 'empty.png'
        empty.write_bytes(b'')
        with pytest.raises(ValueError,
                           match=f'{empty}: .*buf.empty.*delete or replace'):
            load(dict(img_path=str(empty)))
        with pytest.raises(FileNotFoundError, match='missing.png'):
            load(dict(img_path=str(tmp_path / 'missing.png')))
    skip = det_transforms.build(dict(type='CheckedLoadImageFromFile',
                                     ignore_empty=True))
    assert skip(dict(img_path=str(tmp_path / 'bad.png'))) is None
    assert skip(dict(img_path=str(tmp_path / 'empty.png'))) is None


def test_corrupt_image_in_mmdet_dataset_names_the_file(transforms, det):
    from mmdet.datasets import CocoDataset
    image = first_train_image(det)
    image.write_bytes(image.read_bytes()[:150])
    ds = CocoDataset(
        data_root=str(det), ann_file=TRAIN_JSON,
        data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=DET_CLASSES), test_mode=True,
        pipeline=[dict(type='CheckedLoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True)])
    with pytest.raises(CorruptImageError, match=str(image)):
        ds[0]
    assert ds[1]['img'].shape == (64, 64, 3)


def test_use_checked_image_loader_swaps_every_plain_loader():
    """Configs say LoadImageFromFile (DetInferencer / mmdeploy need that
    name); the tools swap it, arguments kept, in wrapped datasets too."""
    from mmengine.config import Config

    from mmdet_gghost.datasets.checks import use_checked_image_loader
    load = dict(type='LoadImageFromFile', backend_args=None)
    other = dict(type='PackDetInputs')
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(
            type='RepeatDataset', times=2,
            dataset=dict(type='CocoDataset', pipeline=[load, other]))),
        val_dataloader=dict(dataset=dict(
            type='ConcatDataset',
            datasets=[dict(pipeline=[dict(type='mmdet.LoadImageFromFile')]),
                      dict(pipeline=[load])])),
        test_dataloader=None))
    assert use_checked_image_loader(cfg) == 3
    inner = cfg.train_dataloader.dataset.dataset.pipeline
    assert inner[0] == dict(type='CheckedLoadImageFromFile', backend_args=None)
    assert inner[1] == other
    assert [d.pipeline[0].type for d in cfg.val_dataloader.dataset.datasets] \
        == ['CheckedLoadImageFromFile'] * 2
    assert use_checked_image_loader(cfg) == 0  # idempotent


# ------------------------------------ formats the check understands (#12)
def _mmdet_dataset(cfg):
    """Build the dataset with mmdet itself (what the check must agree
    with)."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = dict(cfg, type=f"mmdet.{cfg['type']}")
    return DATASETS.build(cfg)


def test_image_info_json_passes_in_test_mode(det):
    """COCO test-dev style: images + categories, no annotations."""
    coco = json.loads((det / TRAIN_JSON).read_text())
    del coco['annotations']
    info_json = 'annotations/image_info_test.json'
    (det / info_json).write_text(json.dumps(coco))
    cfg = det_cfg(det, ann_file=info_json, test_mode=True)
    [summary] = check_dataset_cfg(cfg)
    assert (summary['kind'], summary['num_images'],
            summary['num_annotations']) == ('coco', 4, 0)
    assert len(_mmdet_dataset(cfg)) == 4
    with pytest.raises(DatasetError,
                       match="no 'annotations' list.*needs test_mode=True"):
        check_dataset_cfg(det_cfg(det, ann_file=info_json))


def _write_mmengine_json(det, name='annotations/train_mmengine.json'):
    coco = json.loads((det / TRAIN_JSON).read_text())
    data_list = [dict(img_path=i['file_name'], img_id=i['id'],
                      height=i['height'], width=i['width'], instances=[])
                 for i in coco['images']]
    (det / name).write_text(json.dumps(dict(
        metainfo=dict(classes=list(DET_CLASSES)), data_list=data_list)))
    return name, coco


def test_mmengine_format_passes(det):
    name, coco = _write_mmengine_json(det)
    cfg = dict(type='BaseDetDataset', data_root=str(det), ann_file=name,
               data_prefix=dict(img_path='train2017/'), pipeline=[])
    [summary] = check_dataset_cfg(cfg)
    assert (summary['kind'], summary['num_images']) == ('mmengine', 4)
    dataset = _mmdet_dataset(cfg)
    assert dataset.get_data_info(0)['img_path'] == str(
        det / 'train2017' / coco['images'][0]['file_name'])
    first_train_image(det).unlink()
    with pytest.raises(DatasetNotFoundError,
                       match=f"image {first_train_image(det)} listed in"):
        check_dataset_cfg(cfg)


def test_data_check_can_be_switched_off(det):
    from mmengine.config import Config

    from mmdet_gghost.apis.common import cfg_options_of, check_datasets
    from tools_helpers import load_tool
    (det / TRAIN_JSON).write_text('{"not": "coco"}')
    cfg = Config(dict(test_dataloader=dict(dataset=det_cfg(det))))
    with pytest.raises(DatasetError):
        check_datasets(cfg, ['test'])
    args = load_tool('test.py').parse_args(['cfg.py', 'ckpt.pth',
                                            '--no-data-check',
                                            '--cfg-options', 'a=1'])
    assert cfg_options_of(args) == dict(a=1, data_check=False)
    cfg.merge_from_dict(cfg_options_of(args))
    check_datasets(cfg, ['test'])  # no error: the check steps aside


def test_invalid_boxes_are_counted_and_reported(det, monkeypatch):
    import mmengine.logging
    logged = []
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    path = det / TRAIN_JSON
    coco = json.loads(path.read_text())
    anns = coco['annotations']
    anns[0]['bbox'] = [1000, 1000, 5, 5]  # outside the 64x64 image
    anns[1]['bbox'][2] = -4  # negative width: no overlap with the image
    anns[2]['bbox'][3] = 0.5  # height < 1
    anns[3]['category_id'] = 999  # unknown category
    path.write_text(json.dumps(coco))
    [summary] = check_dataset_cfg(det_cfg(det))
    assert summary['dropped_annotations'] == 4
    [(message, kwargs)] = logged
    assert kwargs['level'] == 30  # logging.WARNING
    assert message.startswith(
        f'4 of {len(anns)} annotations in {path} will be dropped by mmdet '
        '(2 box outside the image, 1 width/height < 1 or area <= 0, 1 '
        'category not among the classes); e.g. annotation id '
        f"{anns[0]['id']} of image {anns[0]['image_id']}: bbox "
        '[1000, 1000, 5, 5]')


def test_valid_boxes_give_no_warning(det, monkeypatch):
    import mmengine.logging
    logged = []
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    [summary] = check_dataset_cfg(det_cfg(det))
    assert summary['dropped_annotations'] == 0 and logged == []
