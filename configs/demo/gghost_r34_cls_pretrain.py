# make demo, step 1: a short "ImageNet pre-training" at toy scale. The G-Ghost
# ResNet-34 classifier of gghost_r34_cls_demo.py trained for only 500
# iterations (~2.5 min on 2 cores; val top-1 ~60 %, the full 1200-iteration
# run reaches ~96 %); its backbone then initialises the demo detector
# (retinanet_gghost_r34_demo.py), as ImageNet weights initialise the COCO
# detectors. Measured: with this initialisation the detector reached mAP@0.5
# 0.41 after 350 iterations, from scratch 0.26; make demo: 0.536
# (docs/results/demo).
_base_ = './gghost_r34_cls_demo.py'

max_iters = 300
# Redefined, not inherited: the base's schedule was computed from its own
# max_iters (1200) when the base file was read.
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters,
         T_max=max_iters - 20, eta_min=1e-5),
]
# One checkpoint at the end (iter_500.pth), the one the detector loads.
default_hooks = dict(
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
