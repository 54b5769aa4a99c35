# RetinaNet + G-Ghost-ResNet34 (lambda 0.5, mix), 1x schedule on COCO 2017:
# the paper's detector. Only the backbone differs from retinanet_r34_1x_coco.
# Its ImageNet weights come from configs/imagenet/gghost-resnet34_8xb32_in1k.py
# (train it, or train from scratch explicitly with
# --cfg-options model.backbone.init_cfg=None).
_base_ = ['./retinanet_r34_1x_coco.py', './_base_/gghost_r34_backbone.py']

model = dict(backbone={{_base_.gghost_r34_backbone}})
