# The G-Ghost-ResNet34 detection backbone shared by every detector config:
# lambda 0.5 with mix, ImageNet weights from
# configs/imagenet/gghost-resnet34_8xb32_in1k.py, stem + stage 1 frozen and
# BN in eval mode as mmdet does for ResNets. Use it as
#   _base_ = ['mmdet::...', '../_base_/gghost_r34_backbone.py']
#   model = dict(backbone={{_base_.gghost_r34_backbone}},
#                neck=dict(in_channels={{_base_.gghost_r34_channels}}))
gghost_r34_channels = [64, 128, 256, 512]
gghost_r34_backbone = dict(
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
        prefix='backbone.'))
