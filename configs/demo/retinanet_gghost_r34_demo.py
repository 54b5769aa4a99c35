# make demo, step 2: RetinaNet + G-Ghost-ResNet34 on the embedded synthetic
# shapes (tools/make_synthetic_data.py det). The demo trains two detectors
# (this one and retinanet_r34_demo.py, which differs in the backbone only)
# within 15 min on 2 CPU cores, so the recipe is small: the 256x256 images
# resized to 160x160 (anchors scaled with them), a light head (64-channel
# FPN/head, 2 stacked convs, GN so the head trains from scratch at batch 4),
# AdamW, 640 iterations (lr x0.1 for the last 80). The backbone starts from the short shapes
# pre-training of gghost_r34_cls_pretrain.py (step 1; `make demo` runs both),
# as the COCO configs start from ImageNet weights.
#   python tools/train.py configs/demo/gghost_r34_cls_pretrain.py \
#       --work-dir work_dirs/demo/gghost_r34/pretrain_cls
#   python tools/train.py configs/demo/retinanet_gghost_r34_demo.py
# Training from scratch instead: --cfg-options model.backbone.init_cfg=None
_base_ = '../retinanet_gghost_r34_1x_coco.py'

data_root = 'data/demo_det/'
metainfo = dict(
    classes=('circle', 'square', 'triangle'),
    palette=[(220, 20, 60), (0, 128, 255), (60, 180, 75)])
image_size = (160, 160)
max_iters = 640
val_interval = max_iters
pretrained = 'work_dirs/demo/gghost_r34/pretrain_cls/iter_200.pth'
batch_size = 4

model = dict(
    # Stem and stage 1 keep their pre-trained weights (as mmdet's ImageNet
    # configs do): backward then skips the two highest-resolution parts.
    # The rest of the backbone, BN included, is trained.
    backbone=dict(
        frozen_stages=1,
        norm_eval=False,
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint=pretrained,
            prefix='backbone.')),
    neck=dict(out_channels=64),
    bbox_head=dict(
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        # anchors scaled with the image (256 -> 160 px: 32 -> 20 px at P3)
        anchor_generator=dict(octave_base_scale=2.5)),
    test_cfg=dict(score_thr=0.05, max_per_img=50))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval,
    # make demo evaluates the final checkpoint with tools/test.py (which
    # writes the metrics JSON); skip the loop's own validation at the end.
    val_begin=max_iters + 1)
# The shape of mmdet's 1x schedule (warm-up, constant lr, one step down
# near the end), which here beat a cosine decay (G-Ghost-R34, 1 thread:
# 0.335 / 0.545 vs 0.306 / 0.505 mAP / mAP@0.5).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 7 // 8], gamma=0.1),
]
# AdamW, not the COCO configs' SGD: in 640 iterations it gets much further
# (G-Ghost-R34, mAP / mAP@0.5 on the demo val set: SGD lr 0.01 0.180 / 0.346;
# AdamW lr 1e-3 0.229 / 0.397, 2e-3 0.277 / 0.468, 4e-3 0.306 / 0.505,
# 6e-3 0.297 / 0.509; ResNet-34 with 4e-3: 0.381 / 0.615).
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=4e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=100,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False)
randomness = dict(seed=0)
