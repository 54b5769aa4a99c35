# RetinaNet + G-Ghost-RegNetX-3.2GF (the official layout), 1x schedule.
# ImageNet weights: the official release converted with
# tools/model_converters/gghost_official_to_mmpretrain.py (see README).
_base_ = './retinanet_regnetx-3.2gf_1x_coco.py'

model = dict(
    # The official G-Ghost RegNet was trained with torchvision's RGB
    # normalisation, unlike pycls' BGR RegNets.
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='GGhostRegNet',
        arch='gghost_regnetx_3.2gf',
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/gghost-regnetx-3.2gf_official_in1k.pth',
            prefix='backbone.')))
