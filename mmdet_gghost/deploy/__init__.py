"""Deployment through OpenMMLab's mmdeploy (optional).  Not imported by
``import mmdet_gghost``; mmdeploy and onnxruntime are imported only when a
function is called."""
from .mmdeploy_export import DeployError, convert

__all__ = ['DeployError', 'convert']
