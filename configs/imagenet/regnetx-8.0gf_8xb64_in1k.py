# RegNetX-8.0GF baseline: mmpretrain's RegNet recipe as is.
_base_ = 'mmpretrain::regnet/regnetx-8.0gf_8xb64_in1k.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)
