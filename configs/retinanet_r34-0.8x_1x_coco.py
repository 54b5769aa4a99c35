# ResNet34-0.8x (every width x0.8, rounded to multiples of 8): the paper's
# equal-FLOPs baseline. Built as a GGhostResNet with no G-Ghost stage.
_base_ = './retinanet_gghost_r34_1x_coco.py'

model = dict(
    backbone=dict(
        gghost_stages=(),
        widen_factor=0.8,
        init_cfg=dict(checkpoint='checkpoints/resnet34-0.8x_8xb32_in1k.pth')),
    neck=dict(in_channels=[48, 104, 208, 408]))
