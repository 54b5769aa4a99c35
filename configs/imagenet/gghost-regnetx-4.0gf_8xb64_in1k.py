# G-Ghost-RegNetX-4.0GF, recipe as gghost-regnetx-3.2gf_8xb64_in1k.py.
_base_ = './gghost-regnetx-3.2gf_8xb64_in1k.py'

model = dict(
    backbone=dict(arch='gghost_regnetx_4.0gf'), head=dict(in_channels=1360))
