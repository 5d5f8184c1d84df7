"""The serving contract every karyotf export keeps, whichever exporter made it (:mod:`karyotf.export` for the OD
API models, :mod:`karyotf.yolo.export`), and which :class:`karyotf.detect.Detector` reads: the tensor names of the
OD API's TF1 exporter, and the renaming that gives a frozen TF2 graph those names.
"""
from __future__ import annotations

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path).

INPUT_NAME = "image_tensor"
"""Name of the frozen graph's input placeholder (uint8 images, NHWC)."""
OUTPUT_NAMES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
"""Names of the frozen graph's output tensors (``NAME:0``) and of the SavedModel signature outputs used."""


def rename_frozen_io(graph_def, input_name: str, outputs: dict[str, str]):
    """Give a frozen TF2 graph the TF1 exporter's tensor names.

    The placeholder ``input_name`` is renamed :data:`INPUT_NAME` (and every reference to it follows), and one
    ``Identity`` node named after each key of ``outputs`` (``detection_boxes`` ...) is added on the tensor it maps to.
    """
    from tensorflow.core.framework import node_def_pb2

    for node in graph_def.node:
        if node.name == input_name:
            node.name = INPUT_NAME
        for i, inp in enumerate(node.input):
            base, sep, rest = inp.lstrip("^").partition(":")
            if base == input_name:
                node.input[i] = ("^" if inp.startswith("^") else "") + INPUT_NAME + sep + rest
    for name, tensor in outputs.items():
        node = node_def_pb2.NodeDef(name=name, op="Identity")
        node.input.append(tensor[:-2] if tensor.endswith(":0") else tensor)
        node.attr["T"].type = 1  # DT_FLOAT: the OD API exporter casts every output to float32
        graph_def.node.append(node)
    return graph_def
