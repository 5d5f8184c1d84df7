"""The fourth model, ``yolo``: KerasCV's ``YOLOV8Detector`` on the same records, exported with the OD API's contract.

The thesis's best detector was YOLOv5, which exists only in PyTorch (ultralytics); the maintained YOLO in
TensorFlow is KerasCV's YOLOv8 (``keras_cv.models.YOLOV8Detector``), which this package trains on the records
``karyotf records`` writes (OD API ``tf.train.Example``s, same split) and exports as the OD API exporter does
(SavedModel ``serving_default``: uint8 images -> ``detection_boxes`` / ``detection_scores`` /
``detection_classes`` / ``num_detections``; ``frozen_inference_graph.pb`` with the TF1 tensor names), so
:class:`karyotf.detect.Detector`, ``karyotf eval`` and ``karyotf karyogram`` run it unchanged.

- :mod:`karyotf.yolo.config`: ``pipelines/yolo.json`` -> ``runs/yolo/yolo.json`` (validated, one error a field)
- :mod:`karyotf.yolo.data`: the records as KerasCV batches (resize, hflip / vflip / rot90, padded boxes)
- :mod:`karyotf.yolo.model`: the detector from a config (backbone n / s / m, offline; local weights or a preset)
- :mod:`karyotf.yolo.train`: exact steps, resume, SIGINT / SIGTERM checkpoint, progress bar, TensorBoard
- :mod:`karyotf.yolo.export`: the export directory

The rest of karyotf tells a yolo dir by :func:`karyotf.rundir.is_yolo_dir` (train, export, eval); importing
this module loads no TensorFlow.
"""
from __future__ import annotations

from .. import rundir

MODEL = "yolo"
CONFIG_NAME = rundir.YOLO_CONFIG
"""The filled config in a yolo model dir (and a copy in its exports): what marks a dir as a yolo one
(:func:`karyotf.rundir.is_yolo_dir`; :func:`karyotf.rundir.yolo_records` reads its records dir)."""
