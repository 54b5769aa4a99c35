# RetinaNet + G-Ghost-ResNet34 (lambda 0.5, mix), 1x schedule on COCO 2017:
# the paper's detector. Only the backbone differs from retinanet_r34_1x_coco.
# Its ImageNet weights come from configs/imagenet/gghost-resnet34_8xb32_in1k.py
# (train it, or train from scratch explicitly with
# --cfg-options model.backbone.init_cfg=None).
_base_ = './retinanet_r34_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='GGhostResNet',
        depth=34,
        cheap_ratio=0.5,
        mix=True,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/gghost-resnet34_8xb32_in1k.pth',
            prefix='backbone.')))
