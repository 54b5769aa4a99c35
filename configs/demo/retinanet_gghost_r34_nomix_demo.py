# make demo-paper: RetinaNet + G-Ghost-ResNet34 without the mix branch, the
# demo recipe with only the backbone changed; initialised from
# gghost_r34_nomix_cls_pretrain.py.
_base_ = './retinanet_gghost_r34_demo.py'

model = dict(
    backbone=dict(
        mix=False,
        init_cfg=dict(checkpoint='work_dirs/demo/gghost_r34_nomix/'
                      'pretrain_cls/iter_200.pth')))
