"""Tiny datasets, configs and tool runners for the tests.

The library of writers: conftest.py's session fixtures (``tiny_coco``,
``tiny_det_config``, ``tiny_det_checkpoint``, ``tiny_cls_checkpoint``) are
built with these, and tests that need a different variant call them
directly.
"""
import json
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
CLASSES = ('red', 'green')
COLOURS = ((220, 30, 30), (30, 200, 30))


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def _random_boxes(rng, img_size, count):
    boxes = []
    for _ in range(count):
        w, h = rng.integers(img_size // 5, img_size // 2, size=2)
        x, y = rng.integers(0, img_size - w), rng.integers(0, img_size - h)
        boxes.append((int(x), int(y), int(w), int(h)))
    return boxes


def _write_split(root, split, num_images, img_size, rng, first_ann_id=1):
    """``num_images`` PNGs of coloured rectangles + COCO instances JSON."""
    img_dir = osp.join(root, f'{split}2017')
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for img_id in range(1, num_images + 1):
        canvas = np.full((img_size, img_size, 3), 90, dtype=np.uint8)
        labels = rng.integers(0, len(CLASSES), size=2)
        for label, (x, y, w, h) in zip(labels,
                                       _random_boxes(rng, img_size, 2)):
            canvas[y:y + h, x:x + w] = COLOURS[label]
            annotations.append(
                dict(id=first_ann_id + len(annotations), image_id=img_id,
                     category_id=int(label) + 1, bbox=[x, y, w, h],
                     area=w * h, iscrowd=0))
        name = f'{img_id:06d}.png'
        Image.fromarray(canvas).save(osp.join(img_dir, name))
        images.append(dict(id=img_id, file_name=name, width=img_size,
                           height=img_size))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)]
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    with open(osp.join(ann_dir, f'instances_{split}2017.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)


def make_coco_dataset(root, num_train=6, num_val=4, img_size=96, seed=0):
    """A tiny COCO-format detection dataset under ``root``."""
    rng = np.random.default_rng(seed)
    _write_split(root, 'train', num_train, img_size, rng)
    _write_split(root, 'val', num_val, img_size, rng)
    return str(root)


def make_cls_folder(root, per_class=4, img_size=32, seed=0):
    """``root/train/<class>/*.png``: an ImageNet-style folder dataset."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        class_dir = osp.join(root, 'train', name)
        os.makedirs(class_dir, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-20, 20, size=(img_size, img_size, 3))
            img = np.clip(np.array(COLOURS[label]) + noise, 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(
                osp.join(class_dir, f'{i}.png'))
    return str(root)


# --------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------
def det_config(data_root, max_iters=4, ckpt_interval=2, img_size=96):
    """A tiny RetinaNet (ResNet-18, 32-channel FPN/head) mmdet config."""
    meta = dict(classes=CLASSES, palette=[(220, 30, 30), (30, 200, 30)])
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                        'scale_factor')),
    ]

    def dataset(split, pipeline, test_mode):
        return dict(type='CocoDataset', data_root=data_root, metainfo=meta,
                    ann_file=f'annotations/instances_{split}2017.json',
                    data_prefix=dict(img=f'{split}2017/'),
                    filter_cfg=dict(filter_empty_gt=not test_mode),
                    test_mode=test_mode, pipeline=pipeline)

    def loader(split, pipeline, test_mode):
        sampler = dict(type='DefaultSampler', shuffle=False) if test_mode \
            else dict(type='InfiniteSampler', shuffle=True)
        return dict(batch_size=2, num_workers=0, persistent_workers=False,
                    drop_last=False, sampler=sampler,
                    dataset=dataset(split, pipeline, test_mode))

    evaluator = dict(type='CocoMetric', metric='bbox',
                     ann_file=osp.join(data_root,
                                       'annotations/instances_val2017.json'))
    model = dict(
        type='RetinaNet',
        data_preprocessor=dict(type='DetDataPreprocessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, num_stages=4,
                      out_indices=(1, 2, 3), frozen_stages=1,
                      norm_cfg=dict(type='BN', requires_grad=True),
                      norm_eval=True, style='pytorch', init_cfg=None),
        neck=dict(type='FPN', in_channels=[128, 256, 512], out_channels=32,
                  start_level=0, add_extra_convs='on_input', num_outs=3),
        bbox_head=dict(
            type='RetinaHead', num_classes=len(CLASSES), in_channels=32,
            stacked_convs=1, feat_channels=32,
            anchor_generator=dict(type='AnchorGenerator',
                                  octave_base_scale=4, scales_per_octave=1,
                                  ratios=[1.0], strides=[8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                            target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                          alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.4, min_pos_iou=0,
                          ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'), allowed_border=-1,
            pos_weight=-1, debug=False),
        # score_thr=0: an almost untrained model still yields detections,
        # so CocoMetric reports numbers instead of "results empty".
        test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=20))
    return dict(
        default_scope='mmdet',
        model=model,
        train_dataloader=loader('train', train_pipeline, False),
        val_dataloader=loader('val', test_pipeline, True),
        test_dataloader=loader('val', test_pipeline, True),
        val_evaluator=evaluator,
        test_evaluator=evaluator,
        # No validation while training (tools/test.py evaluates).
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=10**6, val_begin=10**6),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.005, momentum=0.9,
                                          weight_decay=1e-4),
                           clip_grad=dict(max_norm=10, norm_type=2)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=2),
            dict(type='MultiStepLR', by_epoch=False, milestones=[1000],
                 gamma=0.1),
        ],
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=ckpt_interval),
            sampler_seed=dict(type='DistSamplerSeedHook'),
            visualization=dict(type='DetVisualizationHook')),
        # Like mmdet's default_runtime.py: nccl, which our tools switch to
        # gloo on CPU-only machines.
        env_cfg=dict(cudnn_benchmark=False,
                     mp_cfg=dict(mp_start_method='fork',
                                 opencv_num_threads=0),
                     dist_cfg=dict(backend='nccl')),
        vis_backends=[dict(type='LocalVisBackend')],
        # No fixed ``name``: it defaults to the (unique) experiment name, so
        # in-process runs do not share one visualizer instance.
        visualizer=dict(type='DetLocalVisualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        log_processor=dict(type='LogProcessor', window_size=1,
                           by_epoch=False),
        log_level='INFO',
        load_from=None,
        resume=False,
        randomness=dict(seed=0),
    )


def cls_config(data_root, max_iters=2, ckpt_interval=2):
    """A tiny mmpretrain ImageClassifier (ResNet-18) on a folder dataset."""
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=32),
        dict(type='PackInputs'),
    ]
    dataset = dict(type='CustomDataset', data_root=data_root,
                   data_prefix='train', with_label=True, pipeline=pipeline)

    def loader(sampler):
        return dict(batch_size=4, num_workers=0, persistent_workers=False,
                    sampler=sampler, dataset=dataset)

    return dict(
        default_scope='mmpretrain',
        data_preprocessor=dict(num_classes=len(CLASSES),
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], to_rgb=True),
        model=dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=18, num_stages=4,
                          out_indices=(3, ), style='pytorch'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=len(CLASSES),
                      in_channels=512,
                      loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
                      topk=(1, ))),
        train_dataloader=loader(dict(type='InfiniteSampler', shuffle=True)),
        test_dataloader=loader(dict(type='DefaultSampler', shuffle=False)),
        test_evaluator=dict(type='Accuracy', topk=(1, )),
        test_cfg=dict(),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9)),
        param_scheduler=dict(type='ConstantLR', factor=1.0, by_epoch=False),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=ckpt_interval),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        env_cfg=dict(cudnn_benchmark=False,
                     mp_cfg=dict(mp_start_method='fork',
                                 opencv_num_threads=0),
                     dist_cfg=dict(backend='nccl')),
        log_processor=dict(by_epoch=False, window_size=1),
        log_level='INFO',
        load_from=None,
        resume=False,
        randomness=dict(seed=0),
    )


#: An even smaller RetinaNet (ResNet with 8 base channels, 4 outputs,
#: 16-channel 5-level FPN/head, 3 classes, the usual test_cfg), as config
#: text; ``.format(depth=18 or 34, init=None or an init_cfg)``. Not
#: trainable here (no data); the benchmark, ONNX and CUDA-graph tests use it.
SMALL_RETINANET = """
default_scope = 'mmdet'
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        type='ResNet', depth={depth}, base_channels=8, num_stages=4,
        out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'), init_cfg={init}),
    neck=dict(
        type='FPN', in_channels=[8, 16, 32, 64], out_channels=16,
        start_level=1, add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        type='RetinaHead', num_classes=3, in_channels=16, stacked_convs=1,
        feat_channels=16,
        anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                      alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
"""

#: A small mmpretrain ImageClassifier (ResNet-18, 8 channels, 5 classes),
#: as config text (model only).
SMALL_CLASSIFIER = """
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=5, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))
data_preprocessor = dict(
    num_classes=5, mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], to_rgb=True)
"""


def write_small_retinanet(path, depth=18, init=None, extra=''):
    """Write ``SMALL_RETINANET`` (+ ``extra`` config text) to ``path``."""
    with open(path, 'w') as f:
        f.write(SMALL_RETINANET.format(depth=depth, init=init) + extra)
    return str(path)


def dump_config(cfg_dict, path):
    """Write a config dict as a ``.py`` config file (via mmengine)."""
    from mmengine.config import Config
    Config(cfg_dict).dump(str(path))
    return str(path)


# --------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------
def tool_env():
    """Environment for tool subprocesses: repo importable, 1 thread each."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    # Two shared cores: keep each process (and each DDP rank) to one thread.
    env['OMP_NUM_THREADS'] = '1'
    env['MKL_NUM_THREADS'] = '1'
    env.pop('LOCAL_RANK', None)
    return env


def run_tool(script, *args, timeout=300, check=True, env=None):
    """Run ``tools/<script>`` with this interpreter (``env``: extra
    environment variables); return the result."""
    cmd = [sys.executable, osp.join(TOOLS, script), *map(str, args)]
    result = subprocess.run(cmd, env=dict(tool_env(), **(env or {})),
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f'{script} failed ({result.returncode}):\n'
            f'{result.stdout[-4000:]}\n{result.stderr[-4000:]}')
    return result


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def copy_work_dir(src, dst):
    """Copy a training work dir (e.g. a shared fixture's) to ``dst``, with
    its ``last_checkpoint`` naming the copy's own file; returns ``dst``."""
    shutil.copytree(src, dst)
    record = osp.join(dst, 'last_checkpoint')
    if osp.isfile(record):
        name = osp.basename(last_checkpoint(dst))
        with open(record, 'w') as f:
            f.write(osp.join(str(dst), name))
    return str(dst)


def last_checkpoint(work_dir):
    """Path written by CheckpointHook into ``<work_dir>/last_checkpoint``."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def ckpt_iter(path):
    """The iteration number in an ``iter_<N>.pth`` file name."""
    return int(re.search(r'iter_(\d+)\.pth$', str(path)).group(1))


def iter_tag(cur, max_iters):
    """How mmengine's LogProcessor logs a training iteration."""
    return f'Iter(train) [{str(cur).rjust(len(str(max_iters)))}/{max_iters}]'


def load_tool(script):
    """Import ``tools/<script>`` as a module (its parse_args, main)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'gghost_tool_{re.sub(r"[^a-z0-9]", "_", script)}',
        osp.join(TOOLS, script))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def tool_main(script, *argv):
    """``tools/<script>``'s ``main(argv)`` in this process (no interpreter
    start-up); returns the ``SystemExit`` message, or None if it finished
    (each tool's real entry point is run as a subprocess by its own
    tests)."""
    try:
        load_tool(script).main([str(a) for a in argv])
    except SystemExit as exit_:
        return str(exit_.code)
    return None


def tool_error(script, *argv, capsys):
    """``tools/<script>``'s ``main(argv)`` in this process, for a usage
    error: ``(exit status, stderr)`` as a shell would see them (each tool's
    real entry point is run as a subprocess by its own tests)."""
    import pytest
    with pytest.raises(SystemExit) as exit_info:
        load_tool(script).main([str(a) for a in argv])
    code, err = exit_info.value.code, capsys.readouterr().err
    if isinstance(code, str):  # sys.exit(message): Python prints it, rc 1
        return 1, err + code + '\n'
    return code, err
