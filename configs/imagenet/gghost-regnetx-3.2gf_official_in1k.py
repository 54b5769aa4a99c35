# Evaluate the official G-Ghost-RegNetX-3.2GF ImageNet release (77.8 top-1)
# after converting it:
#   python tools/model_converters/gghost_official_to_mmpretrain.py \
#       g_ghost_regnet_3.2g_77.8.pth \
#       checkpoints/gghost-regnetx-3.2gf_official_in1k.pth
#   python tools/test.py configs/imagenet/gghost-regnetx-3.2gf_official_in1k.py \
#       checkpoints/gghost-regnetx-3.2gf_official_in1k.pth
# The official evaluation: resize the short side to 256, centre crop 224,
# torchvision (RGB) normalisation.
_base_ = './gghost-regnetx-3.2gf_8xb64_in1k.py'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
