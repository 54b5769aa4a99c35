# The ResNet-34 baseline of the demo: retinanet_gghost_r34_demo.py with the
# plain ResNet-34 (mmdet's ResNet, from scratch). Used by the demo benchmark.
_base_ = './retinanet_gghost_r34_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=34,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None))
