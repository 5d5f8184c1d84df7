"""Export a trained yolo model with the OD API's serving contract: ``runs/yolo`` -> ``exported/yolo``.

The export directory holds what :func:`karyotf.export.export` writes for the OD API models::

    saved_model/                 signature ``serving_default``: ``input_tensor`` uint8 ``[N, H, W, 3]`` ->
                                 ``detection_boxes`` (normalised ymin, xmin, ymax, xmax), ``detection_scores``,
                                 ``detection_classes`` (label map ids, 1-based, as floats), ``num_detections``
    frozen_inference_graph.pb    the same function with the weights as constants; TF1 names ``image_tensor:0``,
                                 ``detection_boxes:0`` ... ``num_detections:0``
    checkpoint/ckpt-0.*          the weights (model only)
    yolo.json                    the model's config (in place of pipeline.config)
    label_map.pbtxt, karyotf.json

Inside the signature: the image is resized to the config's ``image_size`` square (as in training), run through the
detector, its distance-distribution box outputs decoded on the anchor points (KerasCV's own decoding), scaled to
0..1, and reduced by per-class NMS (``tf.image.combined_non_max_suppression``: ``iou_threshold``,
``score_threshold``, ``max_detections`` from the config), like the OD API's ``batch_non_max_suppression``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from . import CONFIG_NAME, MODEL, config
from .. import classes, rundir
from ..errors import DetectError, ExportError, PipelineConfigError
from ..io import replace_dir
from ..rundir import FROZEN_GRAPH, SAVED_MODEL, resolve_checkpoint, staging_dir
from ..serving import INPUT_NAME, OUTPUT_NAMES, rename_frozen_io
from .model import build

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path);
# karyotf.odapi (importing it loads TensorFlow and applies the OD API's compatibility shims: only where TensorFlow is
# about to run); karyotf.detect.Detector (looked up when a model is loaded, so that a caller may stand another
# Detector in karyotf.detect, as the tests do).

log = logging.getLogger(__name__)


def serving_fn(model, cfg: dict):
    """A ``tf.function``: uint8 ``[N, H, W, 3]`` -> the OD API's four detection outputs."""
    import tensorflow as tf
    from keras_cv.src.models.object_detection.yolo_v8.yolo_v8_detector import (
        decode_regression_to_boxes, dist2bbox, get_anchors)

    size = cfg["image_size"]
    anchor_points, strides = get_anchors(image_shape=(size, size, 3))
    anchor_points = tf.constant(anchor_points, tf.float32)
    strides = tf.constant(strides, tf.float32)[:, None]
    max_det = cfg["max_detections"]

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")])
    def detect(input_tensor):
        images = tf.image.resize(tf.cast(input_tensor, tf.float32), [size, size], method="bilinear")
        pred = model(images, training=False)
        dist = decode_regression_to_boxes(pred["boxes"])
        xyxy = dist2bbox(dist, anchor_points) * strides / float(size)  # [N, A, 4], 0..1
        x0, y0, x1, y1 = tf.unstack(tf.cast(xyxy, tf.float32), axis=-1)
        yxyx = tf.clip_by_value(tf.stack([y0, x0, y1, x1], axis=-1), 0.0, 1.0)
        scores = tf.cast(pred["classes"], tf.float32)  # sigmoid outputs, [N, A, classes]
        boxes, det_scores, det_classes, valid = tf.image.combined_non_max_suppression(
            yxyx[:, :, None, :], scores, max_output_size_per_class=max_det, max_total_size=max_det,
            iou_threshold=cfg["iou_threshold"], score_threshold=cfg["score_threshold"], clip_boxes=True)
        return {"detection_boxes": tf.identity(boxes, name="boxes"),
                "detection_scores": tf.identity(det_scores, name="scores"),
                "detection_classes": tf.identity(det_classes + 1.0, name="classes"),
                "num_detections": tf.cast(valid, tf.float32, name="num")}

    return detect


def _export_into(model_dir: Path, cfg: dict, checkpoint: str, out: Path) -> None:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from .. import odapi

    model = build(cfg, load_weights=False)
    try:
        tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        raise ExportError(f"{checkpoint}: the checkpoint does not fit the yolo model in {model_dir / CONFIG_NAME} "
                          f"({str(exc).splitlines()[0][:300]}) (fix: export with the config it was trained with)") from None
    module = tf.Module()
    module.model = model
    module.detect = serving_fn(model, cfg)
    concrete = module.detect.get_concrete_function()
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(out / "checkpoint"),
                               max_to_keep=1).save(checkpoint_number=0)
    odapi.save_without_layer_traces(module, str(out / SAVED_MODEL), signatures={"serving_default": concrete})
    frozen = convert_variables_to_constants_v2(concrete)
    (input_tensor,) = [t for t in frozen.inputs if t.dtype == tf.uint8]
    order = tf.nest.flatten({key: key for key in concrete.structured_outputs})
    outputs = {name: frozen.outputs[order.index(name)].name for name in OUTPUT_NAMES}
    graph_def = rename_frozen_io(frozen.graph.as_graph_def(), input_tensor.op.name, outputs)
    (out / FROZEN_GRAPH).write_bytes(graph_def.SerializeToString())
    return {"input": INPUT_NAME}


def export(model_dir: str | Path, out_dir: str | Path, checkpoint: str | Path | None = None,
           tflite: bool = False) -> Path:
    """Export the yolo model of ``model_dir`` to ``out_dir`` atomically (layout above); return ``out_dir``."""
    from ..detect import read_class_names as read_label_map

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if tflite:
        raise ExportError(f"{model_dir}: --tflite is for ssd only (fix: drop --tflite)")
    try:
        cfg = config.read(model_dir)
    except PipelineConfigError as exc:
        raise ExportError(str(exc)) from None
    ckpt_prefix, step = resolve_checkpoint(model_dir, checkpoint)
    ckpt_prefix = os.path.abspath(ckpt_prefix)
    label_map = Path(cfg["label_map"])
    if label_map.is_file():
        try:
            ids = sorted(read_label_map(label_map))
        except DetectError as exc:
            raise ExportError(f"{exc} (the label map named by {model_dir / CONFIG_NAME})") from None
        if ids != list(range(1, cfg["num_classes"] + 1)):
            raise ExportError(f"{label_map}: label ids {ids[0]}..{ids[-1]} do not match the model's num_classes "
                              f"{cfg['num_classes']} (fix: export with the records the model was trained on)")
    elif cfg["num_classes"] != classes.NUM_CLASSES:
        raise ExportError(f"{label_map}: missing, and num_classes is {cfg['num_classes']}, not karyotf's "
                          f"{classes.NUM_CLASSES} (fix: rebuild the records or fix label_map in yolo.json)")
    tmp = staging_dir(out_dir, model_dir)
    t0 = time.perf_counter()
    try:
        log.info("exporting %s (yolo) checkpoint %s -> %s", model_dir, ckpt_prefix, out_dir)
        from .. import odapi

        args = dict(model_dir=str(model_dir), cfg=cfg, checkpoint=ckpt_prefix, out=str(tmp))
        if odapi.mode() == "tf1":
            odapi.run_isolated("tf2", "karyotf.yolo.export:_export_child", **args)
        else:
            _export_child(**args)
        if label_map.is_file():
            shutil.copyfile(label_map, tmp / "label_map.pbtxt")
        else:
            (tmp / "label_map.pbtxt").write_text(classes.label_map_text())
        (tmp / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")
        for name in (FROZEN_GRAPH, f"{SAVED_MODEL}/saved_model.pb"):
            if not (tmp / name).is_file():
                raise ExportError(f"{tmp}: the exporter did not write {name} (a karyotf bug; please report)")
        seconds = time.perf_counter() - t0
        meta = {
            "model": MODEL,
            "architecture": f"yolo_v8_{cfg['backbone']}",
            "tf": "tf2",
            "checkpoint": ckpt_prefix,
            "checkpoint_step": step,
            "source_model_dir": str(model_dir.resolve()),
            "input_size": [cfg["image_size"], cfg["image_size"]],
            "image_size": cfg["image_size"],
            "num_classes": cfg["num_classes"],
            "nms": {"kind": "per-class", "iou_threshold": cfg["iou_threshold"],
                    "score_threshold": cfg["score_threshold"], "max_detections": cfg["max_detections"]},
            "tensors": {
                "saved_model": {"signature": "serving_default", "input": "input_tensor", "input_batch": None,
                                "outputs": list(OUTPUT_NAMES)},
                "frozen_graph": {"input": f"{INPUT_NAME}:0", "outputs": [f"{n}:0" for n in OUTPUT_NAMES]},
            },
            "tflite": None,
            "export_seconds": round(seconds, 2),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        rundir.write_info(tmp, meta, "export")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s in %.1f s", out_dir, seconds)
    return out_dir


def _export_child(model_dir: str, cfg: dict, checkpoint: str, out: str) -> dict:
    return _export_into(Path(model_dir), cfg, checkpoint, Path(out))
