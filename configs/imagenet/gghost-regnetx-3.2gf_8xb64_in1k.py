# G-Ghost-RegNetX-3.2GF with mmpretrain's RegNet recipe (cosine, nesterov SGD,
# PreciseBN). Inputs are normalised in RGB like the official release, so the
# converted official checkpoint can be fine-tuned with this config.
_base_ = './regnetx-3.2gf_8xb64_in1k.py'

data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
model = dict(
    backbone=dict(
        _delete_=True, type='GGhostRegNet', arch='gghost_regnetx_3.2gf',
        out_indices=(3, )),
    head=dict(in_channels=1008))
