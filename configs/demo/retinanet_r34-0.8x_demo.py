# make demo-paper: RetinaNet + ResNet34-0.8x (the paper's equal-FLOPs
# baseline), the demo recipe with only the backbone changed; initialised from
# r34-0.8x_cls_pretrain.py.
_base_ = './retinanet_gghost_r34_demo.py'

model = dict(
    backbone=dict(
        gghost_stages=(),
        widen_factor=0.8,
        init_cfg=dict(checkpoint='work_dirs/demo/r34-0.8x/pretrain_cls/'
                      'iter_200.pth')),
    neck=dict(in_channels=[48, 104, 208, 408]))
