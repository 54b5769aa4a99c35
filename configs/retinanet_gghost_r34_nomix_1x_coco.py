# G-Ghost-ResNet34 without the mix branch (the paper's ablation).
_base_ = './retinanet_gghost_r34_1x_coco.py'

model = dict(
    backbone=dict(
        mix=False,
        init_cfg=dict(
            checkpoint='checkpoints/gghost-resnet34-nomix_8xb32_in1k.pth')))
