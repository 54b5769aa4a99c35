# RetinaNet + C-GhostNet 1.0x (GhostNet v1, the CPU side of the paper).
_base_ = './retinanet_gghost_r34_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='CGhostNet',
        widen_factor=1.0,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/cghostnet-1.0x_8xb32_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[24, 40, 112, 960]))
