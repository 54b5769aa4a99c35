# make demo: the ResNet-34 baseline detector. retinanet_gghost_r34_demo.py
# with only the backbone changed (GGhostResNet with gghost_stages=() is
# ResNet-34), initialised from its own pre-training (r34_cls_pretrain.py):
# same data, schedule, frozen stages and seed, as between
# configs/retinanet_r34_1x_coco.py and configs/retinanet_gghost_r34_1x_coco.py.
#   python tools/train.py configs/demo/r34_cls_pretrain.py \
#       --work-dir work_dirs/demo/r34/pretrain_cls
#   python tools/train.py configs/demo/retinanet_r34_demo.py
_base_ = './retinanet_gghost_r34_demo.py'

model = dict(
    backbone=dict(
        gghost_stages=(),
        init_cfg=dict(checkpoint='work_dirs/demo/r34/pretrain_cls/'
                      'iter_200.pth')))
