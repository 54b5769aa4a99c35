# make demo-cls: G-Ghost-ResNet34 (lambda 0.5, mix) image classification
# trained from scratch on the synthetic shapes set (make_synthetic_data.py
# cls: 8 classes = {circle, square, star, triangle} x {solid, striped},
# 200 train / 50 val images per class, 64x64), sized for a 2-core CPU.
# Same model as configs/imagenet/gghost-resnet34_8xb32_in1k.py (the backbone
# is unchanged: ImageNet stem, 64x64 inputs give a 2x2 last stage); only the
# head's class count, the data and the schedule differ.
#   python tools/make_synthetic_data.py cls --out data/demo_cls
#   python tools/train.py configs/demo/gghost_r34_cls_demo.py
# Measured on 2 CPU cores (docs/classification.md): val top-1 94.3 % at
# iteration 900 (5 min), 96.3 % at the end (1200 iterations, 6.4 min).
_base_ = '../imagenet/gghost-resnet34_8xb32_in1k.py'

data_root = 'data/demo_cls/'
# Label order = sorted class-folder names (what CustomDataset finds), as in
# data/demo_cls/classes.txt; pinned here so dataset checks can compare.
classes = ('circle_solid', 'circle_striped', 'square_solid',
           'square_striped', 'star_solid', 'star_striped', 'triangle_solid',
           'triangle_striped')
num_classes = 8
# The cosine schedule below ends at max_iters: shorten training here, not
# with --cfg-options train_cfg.max_iters (that keeps the 1200-iteration decay).
max_iters = 1200
val_interval = 100
batch_size = 32

data_preprocessor = dict(num_classes=num_classes)
model = dict(head=dict(num_classes=num_classes, topk=(1, )))

# Images are already 64x64: no resizing. With 200 images per class a
# from-scratch ResNet-34 soon memorises colours and backgrounds instead of
# shapes, so the augmentations change exactly what does not define a class:
# orientation (flips + 90-degree turns: all 8 symmetries of the square,
# lossless) and colour (hue rotation, inversion).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='Rotate', angle=90.0, prob=0.5),
    dict(type='ColorJitter', hue=0.5),
    dict(type='Invert', prob=0.5),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
# All pipelines say mmcv's `LoadImageFromFile`, the name mmpretrain's
# ImageClassificationInferencer strips from the test pipeline; our
# tools/train.py and tools/test.py swap it for CheckedLoadImageFromFile
# (same arguments), whose error names a corrupt file.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

# One dataset definition, completed per split (plain dicts: no code in the
# config).
dataset = dict(
    _delete_=True,
    type='CustomDataset',
    data_root=data_root,
    with_label=True,
    metainfo=dict(classes=classes))
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix='val', pipeline=val_pipeline))
test_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix='val', pipeline=test_pipeline))
# top-5 of 8 classes says little.
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval)
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters,
         T_max=max_iters - 20, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=val_interval,
        max_keep_ckpts=1, save_best='accuracy/top1', rule='greater'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=batch_size)
