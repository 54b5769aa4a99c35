"""Deployment through OpenMMLab's mmdeploy (optional).  Not imported by
``import mmdet_gghost``; mmdeploy and onnxruntime are imported only when a
function is called."""
from .mmdeploy_export import DeployError, deploy

__all__ = ['DeployError', 'deploy']
