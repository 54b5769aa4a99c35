# Detector -> end2end.onnx for ONNX Runtime with a fixed 1x3x800x1344 input
# (COCO's 1333x800 test scale, padded to a multiple of 32): runtimes that
# optimise for one shape. mmdeploy resizes the conversion image to exactly
# this size; tools/deploy/mmdeploy_export.py --eval resizes each test image
# to fit inside it (aspect ratio kept) and pads it to it.
_base_ = ['./_base_/detection_onnxruntime.py']

# (width, height), mmdeploy's order; no dynamic_axes: every axis is fixed
onnx_config = dict(input_shape=(1344, 800))
