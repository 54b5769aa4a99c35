# make demo-paper: the equal-FLOPs baseline of the paper's ablation,
# ResNet34-0.8x (every width x0.8, rounded to 8), pre-trained exactly as
# gghost_r34_cls_pretrain.py.
_base_ = './gghost_r34_cls_pretrain.py'

model = dict(
    backbone=dict(gghost_stages=(), widen_factor=0.8),
    head=dict(in_channels=408))
