# G-Ghost-ResNet34 in FCOS (GN head). mmdet's FCOS config expects caffe-style
# inputs; our backbone is trained with torchvision's normalisation.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    '../_base_/gghost_r34_backbone.py'
]

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone={{_base_.gghost_r34_backbone}},
    neck=dict(in_channels={{_base_.gghost_r34_channels}}))
