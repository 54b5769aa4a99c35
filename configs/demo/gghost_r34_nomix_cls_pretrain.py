# make demo-paper: G-Ghost-ResNet34 without the mix branch (the paper's
# ablation), pre-trained exactly as gghost_r34_cls_pretrain.py.
_base_ = './gghost_r34_cls_pretrain.py'

model = dict(backbone=dict(mix=False))
