# ResNet-34 baseline: mmpretrain's ResNet recipe as is (SGD 0.1, step, 100e).
_base_ = 'mmpretrain::resnet/resnet34_8xb32_in1k.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)
