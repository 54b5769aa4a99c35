# RetinaNet + RegNetX-3.2GF baseline, 1x schedule (mmdet's own config).
_base_ = 'mmdet::regnet/retinanet_regnetx-3.2GF_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdet_gghost'], allow_failed_imports=False)
