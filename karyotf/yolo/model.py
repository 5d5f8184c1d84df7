"""KerasCV's ``YOLOV8Detector`` from a yolo config, built offline.

``keras_cv.models.YOLOV8Backbone.from_preset`` downloads even an untrained preset's config, so the backbone is
built from the preset's numbers (:data:`karyotf.yolo.config.BACKBONES`).  Weights: none (from scratch), a local
Keras weights file of the backbone (``backbone.save_weights(...)``), or ``preset:NAME`` (KerasCV downloads it:
needs network).
"""
from __future__ import annotations

import logging
import math

from ..errors import TrainError
from .config import BACKBONES, PRESET_PREFIX
from .data import BOX_FORMAT

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path).

log = logging.getLogger(__name__)


def keras_cv():
    """``import keras_cv`` (on TF 2.15 it runs on tf.keras, Keras 2)."""
    import keras_cv as kcv

    return kcv


def build_backbone(cfg: dict, load_weights: bool = True):
    kcv = keras_cv()
    size = cfg["image_size"]
    preset, channels, depth, _ = BACKBONES[cfg["backbone"]]
    weights = cfg.get("weights") if load_weights else None
    if weights and weights.startswith(PRESET_PREFIX):
        name = weights[len(PRESET_PREFIX):]
        try:
            return kcv.models.YOLOV8Backbone.from_preset(name, input_shape=(size, size, 3))
        except Exception as exc:  # noqa: BLE001 - kagglehub raises requests' errors offline
            raise TrainError(f"weights preset:{name}: KerasCV could not fetch it ({type(exc).__name__}: "
                             f"{str(exc)[:200]}) (fix: with no network, give a local weights file, or null to "
                             "train from scratch)") from None
    backbone = kcv.models.YOLOV8Backbone(stackwise_channels=channels, stackwise_depth=depth,
                                         include_rescaling=True, activation="swish", input_shape=(size, size, 3))
    if weights:
        try:
            backbone.load_weights(weights)
        except (ValueError, OSError) as exc:
            raise TrainError(f"weights {weights}: does not fit a YOLOv8-{cfg['backbone']} backbone "
                             f"({str(exc).splitlines()[0][:300]}) (fix: save the weights of a backbone of the same "
                             "size, or train from scratch with weights null)") from None
        log.info("backbone weights loaded from %s", weights)
    return backbone


def build(cfg: dict, load_weights: bool = True):
    """The (uncompiled) detector; ``load_weights=False`` skips the starting weights (restoring a checkpoint)."""
    kcv = keras_cv()
    backbone = build_backbone(cfg, load_weights=load_weights)
    _, _, _, fpn_depth = BACKBONES[cfg["backbone"]]
    model = kcv.models.YOLOV8Detector(num_classes=cfg["num_classes"], bounding_box_format=BOX_FORMAT,
                                      backbone=backbone, fpn_depth=fpn_depth)
    init_head_biases(model, cfg)
    return model


def init_head_biases(model, cfg: dict) -> None:
    """Ultralytics' ``Detect.bias_init``, which KerasCV leaves out: class biases start at the prior of about 5
    objects an image (``log(5 / classes / (size / stride)^2)``), box-distribution biases at 1.

    KerasCV starts the class biases at 0, so every one of the ~8400 anchors x 24 classes scores 0.5 and the
    summed cross-entropy of the first steps is in the hundreds; from scratch on a CPU budget that costs many steps.
    """
    size, classes = cfg["image_size"], cfg["num_classes"]
    for level, stride in enumerate((8, 16, 32), start=1):
        cls = model.get_layer(f"yolo_v8_head_{level}_class_3_conv")
        box = model.get_layer(f"yolo_v8_head_{level}_box_3_conv")
        cls.bias.assign(cls.bias * 0 + math.log(5 / classes / (size / stride) ** 2))
        box.bias.assign(box.bias * 0 + 1.0)


def learning_rate_schedule(cfg: dict, steps: int | None = None):
    """Linear warm-up over 5% of training (at most 500 steps) to ``learning_rate``, then cosine decay to 0, as
    karyotf's OD API templates do."""
    import tensorflow as tf

    steps = int(steps or cfg["steps"])
    warmup = min(500, steps // 20)
    lr = cfg["learning_rate"]
    return tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10 if warmup else lr, decay_steps=max(1, steps - warmup), alpha=0.0,
        warmup_target=lr if warmup else None, warmup_steps=warmup)


def optimizer(cfg: dict, steps: int | None = None):
    """Adam or SGD (momentum 0.937, ultralytics' value) with ``global_clipnorm``: KerasCV's YOLOv8 loss has no
    clipping of its own, and without it training on unbalanced classes can stall (KerasCV's tracker)."""
    import tensorflow as tf

    schedule = learning_rate_schedule(cfg, steps)
    if cfg["optimizer"] == "sgd":
        return tf.keras.optimizers.SGD(learning_rate=schedule, momentum=0.937, nesterov=True,
                                       global_clipnorm=cfg["global_clipnorm"])
    return tf.keras.optimizers.Adam(learning_rate=schedule, global_clipnorm=cfg["global_clipnorm"])


def compile_model(model, cfg: dict, steps: int | None = None):
    model.compile(optimizer=optimizer(cfg, steps), box_loss="ciou", classification_loss="binary_crossentropy",
                  box_loss_weight=cfg["box_loss_weight"],
                  classification_loss_weight=cfg["classification_loss_weight"], jit_compile=False)
    return model
