# RetinaNet + ResNet-34 baseline, 1x schedule (12 epochs) on COCO 2017.
# The paper's baseline for G-Ghost-ResNet34; torchvision ImageNet weights.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=34,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')),
    neck=dict(in_channels=[64, 128, 256, 512]))
