# G-Ghost-ResNet34 in Faster R-CNN: the backbone is a drop-in replacement.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/gghost_r34_backbone.py'
]

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)
model = dict(
    backbone={{_base_.gghost_r34_backbone}},
    neck=dict(in_channels={{_base_.gghost_r34_channels}}))
