# G-Ghost-ResNet34 without mix (the paper's ablation).
_base_ = './gghost-resnet34_8xb32_in1k.py'

model = dict(backbone=dict(mix=False))
