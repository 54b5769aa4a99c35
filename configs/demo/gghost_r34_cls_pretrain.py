# make demo, step 1: a short "ImageNet pre-training" at toy scale. The G-Ghost
# ResNet-34 classifier of gghost_r34_cls_demo.py trained for only 200
# iterations (val top-1 ~45 %; the full 1200-iteration run reaches ~96 %);
# its backbone then initialises the demo detector (retinanet_gghost_r34_demo.py),
# as ImageNet weights initialise the COCO detectors. Every demo backbone gets
# exactly this pre-training (r34_cls_pretrain.py etc. change the backbone only).
_base_ = './gghost_r34_cls_demo.py'

max_iters = 200
# Redefined, not inherited: the base's schedule was computed from its own
# max_iters (1200) when the base file was read.
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters,
         T_max=max_iters - 20, eta_min=1e-5),
]
# One checkpoint at the end (iter_200.pth), the one the detector loads.
default_hooks = dict(
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
