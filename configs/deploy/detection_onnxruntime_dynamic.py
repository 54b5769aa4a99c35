# Detector -> end2end.onnx for ONNX Runtime, any batch size and image size
# (the shape the test pipeline gives each image: no re-configuration for
# COCO's 1333x800 or the demo's 256x256).
#   python tools/deploy/mmdeploy_export.py CONFIG CHECKPOINT \
#       --work-dir DIR --deploy-cfg configs/deploy/detection_onnxruntime_dynamic.py
_base_ = ['./_base_/detection_onnxruntime.py']

onnx_config = dict(
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        dets={0: 'batch', 1: 'num_dets'},
        labels={0: 'batch', 1: 'num_dets'}))
