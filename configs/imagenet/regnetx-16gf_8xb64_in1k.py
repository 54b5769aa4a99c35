# RegNetX-16GF baseline (mmpretrain ships no 16GF config): the 12GF recipe
# with pycls' RegNetX-16GF generator parameters.
_base_ = 'mmpretrain::regnet/regnetx-12gf_8xb64_in1k.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, w0=216, wa=55.59, wm=2.1, group_w=128, depth=22,
                  bot_mul=1.0)),
    head=dict(in_channels=2048))
