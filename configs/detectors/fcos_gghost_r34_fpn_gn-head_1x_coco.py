# G-Ghost-ResNet34 in FCOS (GN head). mmdet's FCOS config expects caffe-style
# inputs; our backbone is trained with torchvision's normalisation.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
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
