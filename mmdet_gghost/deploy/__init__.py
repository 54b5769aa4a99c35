"""Deployment through OpenMMLab's mmdeploy (optional: needs ``mmdeploy``).

Not imported by ``import mmdet_gghost``: importing this package imports
neither mmdeploy nor onnxruntime either; its functions do, when called.
"""
from .mmdeploy_export import (DEFAULT_DEPLOY_CFG, DEPLOY_CONFIG_DIR,
                              DeployError, check_checkpoint,
                              compare_detections, deploy, evaluate_parity,
                              export_end2end, load_deploy_configs,
                              require_mmdeploy, resolve_deploy_cfg,
                              torchscript_onnx_export)

__all__ = [
    'DEFAULT_DEPLOY_CFG', 'DEPLOY_CONFIG_DIR', 'DeployError',
    'check_checkpoint', 'compare_detections', 'deploy', 'evaluate_parity',
    'export_end2end', 'load_deploy_configs', 'require_mmdeploy',
    'resolve_deploy_cfg', 'torchscript_onnx_export'
]
