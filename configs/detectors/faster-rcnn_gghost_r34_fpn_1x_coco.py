# G-Ghost-ResNet34 in Faster R-CNN: the backbone is a drop-in replacement.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='GGhostResNet',
        depth=34,
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/gghost-resnet34_8xb32_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))
