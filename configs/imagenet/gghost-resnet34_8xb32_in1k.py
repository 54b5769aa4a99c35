# G-Ghost-ResNet34 (lambda 0.5, mix) with mmpretrain's ResNet-34 recipe.
# Its checkpoint initialises configs/retinanet_gghost_r34_1x_coco.py.
_base_ = './resnet34_8xb32_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='GGhostResNet',
        depth=34,
        cheap_ratio=0.5,
        mix=True,
        out_indices=(3, )),
    head=dict(in_channels=512))
