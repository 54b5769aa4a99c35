# ResNet34-0.8x: the paper's equal-FLOPs baseline (every width x0.8).
_base_ = './gghost-resnet34_8xb32_in1k.py'

model = dict(
    backbone=dict(gghost_stages=(), widen_factor=0.8),
    head=dict(in_channels=408))
