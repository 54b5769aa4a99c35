# C-GhostNet 1.0x (GhostNet v1) with mmpretrain's MobileNet-V2 recipe.
# Head as GhostNet: global pool -> 1280-wide layer + ReLU -> dropout 0.2 -> fc.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True, type='CGhostNet', widen_factor=1.0, out_indices=(3, )),
    head=dict(
        _delete_=True,
        type='StackedLinearClsHead',
        num_classes=1000,
        in_channels=960,
        mid_channels=[1280],
        dropout_rate=0.2,
        act_cfg=dict(type='ReLU'),
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
