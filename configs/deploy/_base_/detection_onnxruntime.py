# What every mmdet-gghost deploy config shares: an mmdet detector exported by
# mmdeploy as ONE graph (network + box decoding + NMS) for ONNX Runtime.
# Used by tools/deploy/mmdeploy_export.py (mmdeploy's own tools/deploy.py
# takes these files too). Field meanings: mmdeploy docs, "How to write
# config" (02-how-to-run/write_config.md); the values below are ours.

# -- the intermediate representation: ONNX, TorchScript-based exporter --
onnx_config = dict(
    type='onnx',
    save_file='end2end.onnx',  # written into the --work-dir
    # opset 11: what mmdeploy's mmdet rewriters (NMS, TopK) are written for
    opset_version=11,
    export_params=True,
    keep_initializers_as_inputs=False,
    # mmdeploy's own graph clean-up passes (constant folding of the priors)
    optimize=True,
    # graph input: the preprocessed image batch (normalised, padded);
    # outputs: dets (N, K, 5) = x1, y1, x2, y2, score in input pixels, and
    # labels (N, K)
    input_names=['input'],
    output_names=['dets', 'labels'],
    # None: the size of the image the export runs on (see the static file)
    input_shape=None)

# -- the model: mmdet, detection, exported end to end --
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    # NMS in the graph. The model's test_cfg wins where it has the key:
    # score_thr, nms.iou_threshold and max_per_img (RetinaNet has all three),
    # nms_pre (per level, before NMS). These values are the fall-backs, plus
    # the two the model config has no key for:
    post_processing=dict(
        score_threshold=0.05,
        iou_threshold=0.5,
        keep_top_k=100,
        # candidates kept (over all levels) before NMS, and per class after
        # it; RetinaNet's 5 levels x nms_pre 1000 = 5000 fit in
        pre_top_k=5000,
        max_output_boxes_per_class=200,
        confidence_threshold=0.005,  # YOLOv3 only
        background_label_id=-1))

# -- the runtime --
backend_config = dict(type='onnxruntime')
