"""Synthetic demo data: layout, determinism, annotation quality, idempotence
and that mmdet / mmpretrain read it."""
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdet_gghost.datasets import (CLS_CLASSES, DET_CLASSES,
                                   SyntheticDataError, drawing,
                                   make_classification_dataset,
                                   make_detection_dataset, synthetic)

DET_KW = dict(num_train=12, num_val=6, img_size=128, seed=3,
              empty_fraction=0.1)
CLS_KW = dict(num_train_per_class=3, num_val_per_class=2, img_size=48,
              seed=5)


def tree_digest(root):
    """{relative path: sha1} of every file under root."""
    root = Path(root)
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def det_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('det') / 'demo_det'
    info = make_detection_dataset(root, **DET_KW)
    assert info['created']
    return root


@pytest.fixture(scope='module')
def cls_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('cls') / 'demo_cls'
    make_classification_dataset(root, **CLS_KW)
    return root


# --------------------------------------------------------------- detection
def test_det_layout_matches_coco_2017(det_root):
    assert sorted(p.name for p in det_root.iterdir()) == [
        'annotations', 'meta.json', 'train2017', 'val2017']
    assert sorted(p.name for p in (det_root / 'annotations').iterdir()) == [
        'instances_train2017.json', 'instances_val2017.json']
    assert len(list((det_root / 'train2017').glob('*.png'))) == 12
    assert len(list((det_root / 'val2017').glob('*.png'))) == 6
    # No leftovers of the atomic write next to the data set.
    assert [p.name for p in det_root.parent.iterdir()] == ['demo_det']


@pytest.mark.parametrize('split,num', [('train', 12), ('val', 6)])
def test_det_json_loads_in_pycocotools(det_root, split, num):
    from pycocotools.coco import COCO
    coco = COCO(str(det_root / f'annotations/instances_{split}2017.json'))
    assert len(coco.getImgIds()) == num
    cats = coco.loadCats(coco.getCatIds())
    assert [(c['id'], c['name']) for c in cats] == [
        (1, 'circle'), (2, 'square'), (3, 'triangle')]
    for img in coco.loadImgs(coco.getImgIds()):
        pixels = cv2.imread(str(det_root / f'{split}2017' / img['file_name']))
        assert pixels.shape == (img['height'], img['width'], 3) == \
            (128, 128, 3)
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns, 'no annotations at all'
    assert len({a['id'] for a in anns}) == len(anns)
    for a in anns:
        assert a['category_id'] in (1, 2, 3)
        assert a['iscrowd'] == 0
        assert all(isinstance(v, float) for v in a['bbox'])
        # The polygon rasterises to roughly the stored (pixel) area.
        assert coco.annToMask(a).sum() == pytest.approx(a['area'], rel=0.25)


def test_det_cocoeval_scores_ground_truth_as_perfect(det_root):
    """The val json works for evaluation: the boxes as detections give
    AP 1.0 (areas, iscrowd and empty images are handled)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(det_root / 'annotations/instances_val2017.json'))
        dets = [dict(image_id=a['image_id'], category_id=a['category_id'],
                     bbox=a['bbox'], score=1.0)
                for a in gt.loadAnns(gt.getAnnIds())]
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]
    assert ev.stats[1] == pytest.approx(1.0)  # AP@.5


def test_det_every_class_and_1_to_6_objects_per_image(det_root):
    coco = json.loads(
        (det_root / 'annotations/instances_train2017.json').read_text())
    assert {a['category_id'] for a in coco['annotations']} == {1, 2, 3}
    per_image = {}
    for a in coco['annotations']:
        per_image[a['image_id']] = per_image.get(a['image_id'], 0) + 1
    assert max(per_image.values()) <= 6


def _boxes_and_masks(root, split):
    from pycocotools.coco import COCO
    coco = COCO(str(root / f'annotations/instances_{split}2017.json'))
    for img in coco.loadImgs(coco.getImgIds()):
        pixels = cv2.imread(str(root / f'{split}2017' / img['file_name']))
        for a in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
            yield img, pixels.astype(np.float32), a, coco.annToMask(a)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_det_boxes_are_inside_and_tight(det_root, split):
    """Check boxes against the pixels: each shape is one flat colour (plus
    a little grain), so pixels of that colour must fill the box's area and
    touch all four of its edges."""
    n = 0
    for img, pixels, a, mask in _boxes_and_masks(det_root, split):
        x, y, w, h = a['bbox']
        assert w >= 4 and h >= 4
        assert x >= 0 and y >= 0
        assert x + w <= img['width'] and y + h <= img['height']
        x0, y0, x1, y1 = int(x), int(y), int(x + w), int(y + h)
        assert (x0, y0, x1, y1) == (x, y, x + w, y + h)  # pixel edges
        fill = np.median(pixels[mask.astype(bool)], axis=0)
        same = np.linalg.norm(pixels - fill, axis=2) < 40
        inside = same[y0:y1, x0:x1]
        assert inside.sum() >= 0.9 * a['area'], 'box cuts off the shape'
        assert inside[0].any() and inside[-1].any(), 'box not tight (y)'
        assert inside[:, 0].any() and inside[:, -1].any(), \
            'box not tight (x)'
        n += 1
    assert n > 0


def test_det_has_empty_images_in_both_splits(det_root):
    meta = json.loads((det_root / 'meta.json').read_text())
    for split, num in (('train', 12), ('val', 6)):
        coco = json.loads((det_root /
                           f'annotations/instances_{split}2017.json')
                          .read_text())
        annotated = {a['image_id'] for a in coco['annotations']}
        empty = [i['id'] for i in coco['images'] if i['id'] not in annotated]
        assert len(empty) == meta['stats'][split]['empty_images'] == \
            max(1, round(0.1 * num))


def test_det_occlusion_keeps_every_shape_mostly_visible():
    """The documented rule: every drawn shape keeps >= 60 % of its pixels
    (crowded images, big shapes, several seeds)."""
    for seed in range(6):
        rng = drawing._rng(seed, 7)
        img = np.zeros((96, 96, 3), np.float32)
        owner, kinds, full = drawing.place_shapes(
            rng, img, 6, (40, 80), synthetic.MIN_VISIBLE_FRACTION)
        assert 1 <= len(kinds) <= 6
        for idx in range(len(kinds)):
            visible = (owner == idx).sum()
            assert visible >= synthetic.MIN_VISIBLE_FRACTION * full[idx]


def test_det_is_deterministic(tmp_path, det_root):
    again = make_detection_dataset(tmp_path / 'again', **DET_KW)
    assert again['created']
    assert tree_digest(tmp_path / 'again') == tree_digest(det_root)

    other = tmp_path / 'other'
    make_detection_dataset(other, **dict(DET_KW, seed=4))
    a, b = tree_digest(other), tree_digest(det_root)
    assert a.keys() == b.keys()
    for name in ('annotations/instances_train2017.json',
                 'train2017/000000000001.png'):
        assert a[name] != b[name]


def test_det_second_call_does_nothing(tmp_path):
    root = tmp_path / 'det'
    make_detection_dataset(root, num_train=3, num_val=2, img_size=64)
    png = root / 'train2017' / '000000000001.png'
    png.write_bytes(b'marker')  # would be overwritten by a rebuild
    info = make_detection_dataset(root, num_train=3, num_val=2, img_size=64)
    assert not info['created']
    assert 'nothing to do' in info['message']
    assert png.read_bytes() == b'marker'
    assert info['stats']['train']['images'] == 3


def test_det_other_parameters_regenerate(tmp_path):
    root = tmp_path / 'det'
    make_detection_dataset(root, num_train=3, num_val=2, img_size=64)
    info = make_detection_dataset(root, num_train=4, num_val=2, img_size=64)
    assert info['created']
    assert len(list((root / 'train2017').iterdir())) == 4
    assert json.loads((root / 'meta.json').read_text())['params'][
        'num_train'] == 4


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'thesis.tex').write_text('precious')
    with pytest.raises(SyntheticDataError, match='refusing to overwrite'):
        make_detection_dataset(root, num_train=2, num_val=2, img_size=64)
    assert (root / 'thesis.tex').read_text() == 'precious'
    info = make_detection_dataset(root, num_train=2, num_val=2, img_size=64,
                                  overwrite=True)
    assert info['created'] and not (root / 'thesis.tex').exists()


def test_refuses_det_over_cls_folder(tmp_path):
    root = tmp_path / 'data'
    make_classification_dataset(root, **CLS_KW)
    with pytest.raises(SyntheticDataError, match="'cls' data set"):
        make_detection_dataset(root, num_train=2, num_val=2, img_size=64)


def test_interrupted_run_leaves_nothing_that_looks_complete(
        tmp_path, monkeypatch):
    root = tmp_path / 'det'
    real_write = synthetic._write_png
    calls = []

    def flaky_write(path, img):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt  # like Ctrl-C in the middle
        real_write(path, img)

    monkeypatch.setattr(synthetic, '_write_png', flaky_write)
    with pytest.raises(KeyboardInterrupt):
        make_detection_dataset(root, num_train=5, num_val=2, img_size=64)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []  # temp folder cleaned up
    monkeypatch.setattr(synthetic, '_write_png', real_write)
    assert make_detection_dataset(root, num_train=5, num_val=2,
                                  img_size=64)['created']


def test_stale_temp_folder_of_a_dead_run_is_removed(tmp_path):
    stale = tmp_path / '.det.tmp-999999999'  # no such pid
    (stale / 'train2017').mkdir(parents=True)
    make_detection_dataset(tmp_path / 'det', num_train=2, num_val=2,
                           img_size=64)
    assert not stale.exists()


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_train=0), 'num_train must be >= 1'),
    (dict(num_val=2.5), 'num_val must be an integer'),
    (dict(img_size=32), 'img_size must be between 64 and 2048'),
    (dict(seed=-1), 'seed must be >= 0'),
    (dict(empty_fraction=0.9), r'empty_fraction must be a number in \[0'),
    (dict(size_range=(50, 20)), 'size_range must satisfy'),
    (dict(size_range='big'), 'size_range must be a pair'),
])
def test_det_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(SyntheticDataError, match=match):
        make_detection_dataset(tmp_path / 'x', **kwargs)
    assert not (tmp_path / 'x').exists()


# ---------------------------------------------------------- classification
def test_cls_layout(cls_root):
    assert sorted(p.name for p in cls_root.iterdir()) == [
        'classes.txt', 'meta.json', 'train', 'val']
    assert (cls_root / 'classes.txt').read_text().split() == \
        list(CLS_CLASSES) == sorted(CLS_CLASSES)
    assert len(CLS_CLASSES) == 8
    for split, num in (('train', 3), ('val', 2)):
        folders = sorted(p.name for p in (cls_root / split).iterdir())
        assert folders == list(CLS_CLASSES)
        for name in folders:
            files = sorted((cls_root / split / name).glob('*.png'))
            assert len(files) == num
            assert cv2.imread(str(files[0])).shape == (48, 48, 3)


def test_cls_is_deterministic(tmp_path, cls_root):
    make_classification_dataset(tmp_path / 'a', **CLS_KW)
    assert tree_digest(tmp_path / 'a') == tree_digest(cls_root)
    make_classification_dataset(tmp_path / 'b', **dict(CLS_KW, seed=6))
    assert tree_digest(tmp_path / 'b') != tree_digest(cls_root)


def test_cls_striped_classes_are_striped(tmp_path):
    """The fill texture is visible: striped shapes have clearly more
    strong colour edges than solid ones (about 1x without stripes; stars,
    with the longest outline, get the lowest ratio, ~2)."""
    root = tmp_path / 'cls'
    make_classification_dataset(root, num_train_per_class=6,
                                num_val_per_class=1, img_size=64)

    def edges(name):
        total = 0
        for f in (root / 'train' / name).glob('*.png'):
            img = cv2.imread(str(f)).astype(np.float32)
            for axis in (0, 1):
                total += (np.abs(np.diff(img, axis=axis)).max(2) > 60).sum()
        return total

    for shape in ('circle', 'square', 'star', 'triangle'):
        assert edges(f'{shape}_striped') > 1.4 * edges(f'{shape}_solid')


def test_cls_second_call_does_nothing(cls_root):
    info = make_classification_dataset(cls_root, **CLS_KW)
    assert not info['created']
    assert info['classes'] == CLS_CLASSES


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_train_per_class=0), 'num_train_per_class must be >= 1'),
    (dict(img_size=16), 'img_size must be between 32'),
    (dict(num_val_per_class=True), 'num_val_per_class must be an integer'),
])
def test_cls_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(SyntheticDataError, match=match):
        make_classification_dataset(tmp_path / 'x', **kwargs)


# --------------------------------------------------------------------- CLI
def _cli_main():
    """tools/ is not a package: load the script as a module."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / 'tools' / \
        'make_synthetic_data.py'
    spec = importlib.util.spec_from_file_location('make_synthetic_data',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cli(tmp_path, capsys):
    main = _cli_main()
    out = tmp_path / 'cli_det'
    argv = ['det', '--out', str(out), '--num-train', '3', '--num-val', '2',
            '--img-size', '64']
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f'wrote det data set to {out}' in printed
    assert 'instances_train2017.json' in printed
    assert main(argv) == 0
    assert 'nothing to do' in capsys.readouterr().out

    assert main(['cls', '--out', str(tmp_path / 'c'),
                 '--num-train-per-class', '1', '--num-val-per-class', '1',
                 '--img-size', '32']) == 0
    assert 'classes.txt' in capsys.readouterr().out

    assert main(['det', '--out', str(tmp_path / 'bad'),
                 '--num-train', '0']) == 2
    assert 'num_train must be >= 1' in capsys.readouterr().err


# ------------------------------------------------------ mmdet / mmpretrain
def test_mmdet_coco_dataset_reads_it_and_filters_empty(det_root):
    pytest.importorskip('mmcv._ext', reason='mmcv ops not built yet')
    from mmdet.datasets import CocoDataset
    meta = json.loads((det_root / 'meta.json').read_text())['stats']

    def build(split, test_mode):
        return CocoDataset(
            data_root=str(det_root),
            ann_file=f'annotations/instances_{split}2017.json',
            data_prefix=dict(img=f'{split}2017/'),
            metainfo=dict(classes=DET_CLASSES),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            test_mode=test_mode, pipeline=[])

    train = build('train', False)
    assert len(train) == 12 - meta['train']['empty_images'] < 12
    assert build('train', True).__len__() == 12
    assert len(build('val', True)) == 6
    assert train.metainfo['classes'] == DET_CLASSES

    coco = json.loads(
        (det_root / 'annotations/instances_train2017.json').read_text())
    first = train.get_data_info(0)
    anns = [a for a in coco['annotations']
            if a['image_id'] == first['img_id']]
    assert len(first['instances']) == len(anns) > 0
    for inst, a in zip(first['instances'], anns):
        x, y, w, h = a['bbox']
        assert inst['bbox'] == [x, y, x + w, y + h]
        assert inst['bbox_label'] == a['category_id'] - 1
    assert Path(first['img_path']).is_file()


def test_mmpretrain_custom_dataset_reads_it(cls_root):
    pytest.importorskip('mmcv._ext', reason='mmcv ops not built yet')
    from mmpretrain.datasets import CustomDataset
    for split, num in (('train', 3), ('val', 2)):
        ds = CustomDataset(data_root=str(cls_root), data_prefix=split,
                           pipeline=[])
        assert ds.metainfo['classes'] == CLS_CLASSES
        assert len(ds) == num * len(CLS_CLASSES)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            folder = Path(info['img_path']).parent.name
            assert CLS_CLASSES[info['gt_label']] == folder
    # classes.txt is accepted as the class list, in label order.
    ds = CustomDataset(data_root=str(cls_root), data_prefix='val',
                       classes=str(cls_root / 'classes.txt'), pipeline=[])
    assert ds.metainfo['classes'] == CLS_CLASSES
