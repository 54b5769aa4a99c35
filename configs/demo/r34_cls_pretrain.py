# make demo, step 1 for the ResNet-34 baseline: gghost_r34_cls_pretrain.py
# with only the backbone changed. GGhostResNet with gghost_stages=() is the
# plain ResNet-34 (mmdet's/mmpretrain's layout, parameter for parameter), so
# the two demo backbones differ in their G-Ghost stages and nothing else.
_base_ = './gghost_r34_cls_pretrain.py'

model = dict(backbone=dict(gghost_stages=()))
