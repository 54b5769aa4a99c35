# RetinaNet + ResNet-34 built by GGhostResNet with no G-Ghost stage: the
# same network and the same torchvision ImageNet weights as
# retinanet_r34_1x_coco.py (mmdet's ResNet), with the op-lean deploy form of
# our blocks (switch_to_deploy, --deploy: plain convs with folded bias,
# in-place ReLU, residual added in place). The fair speed baseline for
# G-Ghost's deploy form: a speed-up against it cannot come from a weaker
# ResNet implementation (tools/gpu/deploy_matrix.py times all three).
_base_ = './retinanet_gghost_r34_1x_coco.py'

model = dict(
    backbone=dict(
        gghost_stages=(),
        init_cfg=dict(checkpoint='torchvision://resnet34', prefix=None)))
