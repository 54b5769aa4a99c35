"""ONNX export with onnxruntime parity (:mod:`.onnx_export`) of the part
of a model chosen in :mod:`.modules`."""
from .modules import build_export_model, export_module, randomize_bn_stats
from .onnx_export import (export_config, export_onnx, format_report,
                          max_rel_err, require_onnx, run_onnxruntime,
                          verify_onnx)

__all__ = [
    'require_onnx', 'build_export_model', 'randomize_bn_stats',
    'export_module', 'export_onnx', 'run_onnxruntime', 'max_rel_err',
    'verify_onnx', 'export_config', 'format_report'
]
