"""Small helpers shared by the backbones, taken from the toolboxes."""
try:
    from mmdet.models.utils.make_divisible import make_divisible
except ImportError:  # a classification-only install
    from mmpretrain.models.utils.make_divisible import make_divisible

__all__ = ['make_divisible']
