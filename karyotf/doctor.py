"""``karyotf doctor``: print the versions of the stack and check that the OD API really works here."""
from __future__ import annotations

import importlib.metadata as md
import platform
import sys
import time

# Imports inside functions, and why: karyotf.odapi (importing it loads TensorFlow and applies the OD API's
# compatibility shims: only where TensorFlow is about to run); TensorFlow / KerasCV / the OD API (heavy: kept off the
# import path); protobuf (loaded with the OD API's protos when a config is parsed); each import is one of the checks,
# tried and reported.

PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "tf-slim", "tf-object-detection-api", "tf-models-official",
            "protobuf", "numpy", "Pillow", "pycocotools", "lxml", "roboflow",
            # the yolo model (karyotf.yolo): KerasCV's YOLOv8 and what it needs on TF 2.15 / Keras 2
            "keras-cv", "keras-core", "tensorflow-datasets", "tensorflow-metadata")

# Exact versions the stack was validated with (constraints.txt); doctor warns on any other.
EXPECTED = {"tensorflow-cpu": "2.15.1", "tensorflow": "2.15.1", "keras": "2.15.0", "tf-slim": "1.1.0",
            "tf-object-detection-api": "0.1", "numpy": "1.26.4", "keras-cv": "0.8.2", "keras-core": "0.1.7",
            "tensorflow-datasets": "4.9.4", "tensorflow-metadata": "1.15.0"}

_SSD_CONFIG = """
ssd {
  num_classes: 24
  image_resizer { fixed_shape_resizer { height: 128 width: 128 } }
  feature_extractor { type: 'ssd_mobilenet_v2_keras' depth_multiplier: 1.0 min_depth: 16
    conv_hyperparams { regularizer { l2_regularizer { weight: 0.00004 } }
      initializer { truncated_normal_initializer { stddev: 0.03 } } activation: RELU_6
      batch_norm { decay: 0.97 epsilon: 0.001 } } override_base_feature_extractor_hyperparams: true }
  box_coder { faster_rcnn_box_coder { y_scale: 10.0 x_scale: 10.0 height_scale: 5.0 width_scale: 5.0 } }
  matcher { argmax_matcher { matched_threshold: 0.5 unmatched_threshold: 0.5 } }
  similarity_calculator { iou_similarity {} }
  anchor_generator { ssd_anchor_generator { num_layers: 6 min_scale: 0.04 max_scale: 0.35
    aspect_ratios: 1.0 aspect_ratios: 2.0 aspect_ratios: 0.5 } }
  box_predictor { convolutional_box_predictor { kernel_size: 3 box_code_size: 4
    conv_hyperparams { regularizer { l2_regularizer { weight: 0.00004 } }
      initializer { truncated_normal_initializer { stddev: 0.03 } } activation: RELU_6
      batch_norm { decay: 0.97 epsilon: 0.001 } } } }
  post_processing { batch_non_max_suppression { score_threshold: 1e-8 iou_threshold: 0.6
    max_detections_per_class: 10 max_total_detections: 60 } score_converter: SIGMOID }
  loss { classification_loss { weighted_sigmoid_focal { alpha: 0.25 gamma: 2.0 } }
    localization_loss { weighted_smooth_l1 {} } }
}
"""


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def run(quick: bool = False, out=sys.stdout) -> int:
    """Print versions and run the checks; return 0 when all pass."""
    failures = 0

    def report(ok: bool, what: str, detail: str = "") -> None:
        nonlocal failures
        failures += not ok
        print(f"  [{'ok' if ok else 'FAIL'}] {what}{': ' + detail if detail else ''}", file=out)

    print(f"karyotf doctor  (python {platform.python_version()}, {platform.machine()})", file=out)
    found = versions()
    for name, version in found.items():
        want = EXPECTED.get(name)
        note = ""
        if want and version and version != want:
            note = f"  (validated: {want})"
        print(f"  {name:26s} {version or '-'}{note}", file=out)
    if not (found["tensorflow-cpu"] or found["tensorflow"]):
        report(False, "TensorFlow", "not installed; run `make install`")
        return 1
    t0 = time.time()
    try:
        from . import odapi  # shims first
        import tensorflow as tf

        od = odapi.doctor_parts()
        model_builder, label_map_util, model_pb2 = od.model_builder, od.label_map_util, od.model_pb2
        report(True, "object_detection imports", f"{time.time() - t0:.1f} s")
    except Exception as exc:  # pragma: no cover - the message is the point
        report(False, "object_detection imports", f"{type(exc).__name__}: {exc}")
        return 1
    gpus = tf.config.list_physical_devices("GPU")
    print(f"  GPUs: {len(gpus)} {[g.name for g in gpus] if gpus else '(training runs on the CPU)'}", file=out)
    if not quick:
        try:
            from google.protobuf import text_format

            t0 = time.time()
            cfg = text_format.Parse(_SSD_CONFIG, model_pb2.DetectionModel())
            model = model_builder.build(cfg, is_training=True)
            image, shapes = model.preprocess(tf.zeros([1, 128, 128, 3]))
            pred = model.predict(image, shapes)
            n = int(pred["box_encodings"].shape[1])
            report(True, "model builder builds SSD MobileNet v2", f"{n} anchors at 128 px, {time.time() - t0:.1f} s")
        except Exception as exc:
            report(False, "model builder builds SSD MobileNet v2", f"{type(exc).__name__}: {exc}")
        try:
            import tempfile
            from pathlib import Path

            from .classes import NUM_CLASSES, write_label_map

            with tempfile.TemporaryDirectory() as tmp:
                path = write_label_map(Path(tmp) / "label_map.pbtxt")
                cats = label_map_util.create_category_index_from_labelmap(str(path))
            report(len(cats) == NUM_CLASSES and sorted(cats) == list(range(1, 25)),
                   "label map loads with label_map_util", f"{len(cats)} classes")
        except Exception as exc:
            report(False, "label map loads with label_map_util", f"{type(exc).__name__}: {exc}")
        try:
            t0 = time.time()
            from .yolo.model import build

            cfg = {"backbone": "n", "image_size": 128, "num_classes": 24, "weights": None}
            yolo = build(cfg)
            pred = yolo(tf.zeros([1, 128, 128, 3]), training=False)
            n = int(pred["classes"].shape[1])
            report(n == 336, "KerasCV builds YOLOv8-n (yolo)", f"{n} anchor points at 128 px, offline, "
                   f"{time.time() - t0:.1f} s")
        except Exception as exc:
            report(False, "KerasCV builds YOLOv8-n (yolo)", f"{type(exc).__name__}: {exc}")
    print("doctor: all checks passed" if not failures else f"doctor: {failures} check(s) failed", file=out)
    return 0 if not failures else 1
