"""The only module that touches the TF Object Detection API's internals.

``import karyotf.odapi`` (or calling :func:`apply_shims`) must happen before anything imports
``object_detection``.  Every compatibility shim for the pinned stack (TensorFlow 2.15.1, tf-slim 1.1.0,
numpy 1.26, Pillow 9.5, ``tf-object-detection-api==0.1``) lives here, one function per breakage, each
saying what breaks and how it is fixed.  Nothing in the installed packages is edited on disk.

TF1 versus TF2: the OD API fills its feature-extractor tables once, at import, for the TF version that is
enabled then.  TF1 (slim) models such as ``faster_rcnn_inception_v2`` need :func:`enable_tf1` *before*
``object_detection`` is imported, so karyotf runs them in a process of their own.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import multiprocessing
import os
import signal
import sys
import threading
import traceback
import types

import numpy as np

from . import classes
from .errors import KaryotfError

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path); protobuf
# (loaded with the OD API's protos when a config is parsed); tf_keras (optional or platform-specific: tried, with a
# fallback); keras.src.saving.legacy.saved_model (optional or platform-specific: tried, with a fallback); keras
# (optional or platform-specific: tried, with a fallback); keras.src.legacy_tf_layers (optional or platform-specific:
# tried, with a fallback); keras.src.legacy_tf_layers.normalization (optional or platform-specific: tried, with a
# fallback).

_APPLIED = False
_MODE: str | None = None  # "tf1" or "tf2" once chosen


def _quiet_tf() -> None:
    # TF's C++ INFO/WARNING lines drown the progress bar; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _shim_numpy_aliases() -> None:
    """numpy >= 1.24 removed ``np.float`` / ``np.int`` / ``np.bool`` / ``np.object``.

    Breaks: ``object_detection/utils/metrics.py`` (Pascal VOC metrics), ``metrics/coco_evaluation.py:1766,1829``,
    ``metrics/tf_example_parser.py:36``, slim ``nets/mobilenet/mobilenet_v3.py:751``.
    Fix: restore the aliases to the builtins they always meant.
    """
    for name, value in (("float", float), ("int", int), ("bool", bool), ("object", object)):
        if name not in np.__dict__:
            setattr(np, name, value)


def _shim_tf_slim_control_flow() -> None:
    """tf-slim 1.1.0 on TF >= 2.13: ``control_flow_ops.case`` / ``.cond`` moved out of ``control_flow_ops``.

    Breaks: ``tf_slim/data/tfexample_decoder.py:453`` (the OD API's ``TfExampleDecoder`` uses it to decode
    images), ``tf_slim/layers/utils.py``, ``tf_slim/metrics/metric_ops.py``.
    Fix: alias them to ``tensorflow.python.ops.control_flow_case.case`` and ``tensorflow.python.ops.cond.cond``.
    The TF1 path also needs ``ops.IndexedSlices`` and ``ops.Tensor``, which moved to ``framework.indexed_slices``
    and ``framework.tensor``.
    """
    from tensorflow.python.framework import ops
    from tensorflow.python.ops import control_flow_ops

    if not hasattr(control_flow_ops, "case"):
        from tensorflow.python.ops import control_flow_case

        control_flow_ops.case = control_flow_case.case
    if not hasattr(control_flow_ops, "cond"):
        from tensorflow.python.ops import cond

        control_flow_ops.cond = cond.cond
    if not hasattr(ops, "IndexedSlices"):
        from tensorflow.python.framework import indexed_slices

        ops.IndexedSlices = indexed_slices.IndexedSlices
    if not hasattr(ops, "Tensor"):
        from tensorflow.python.framework import tensor

        ops.Tensor = tensor.Tensor


def _shim_accurate_jpeg_dct() -> None:
    """The OD API decodes training JPEGs with TF's default fast DCT; karyotf reads images with the accurate one.

    Breaks (silently): ``TfExampleDecoder`` passes no ``dct_method`` to tf-slim's ``Image`` handler, so
    ``tf.io.decode_jpeg`` uses the fast integer DCT (``INTEGER_FAST``), while Pillow (every other stage:
    :mod:`karyotf.images`) uses libjpeg's accurate one: the same file differs by up to 4 grey levels in half its
    pixels between training and detection (measured on CIL:54816).  ``input_reader.proto`` has no field for it.
    Fix: tf-slim's ``Image`` handler defaults to ``dct_method='INTEGER_ACCURATE'``, which decodes a JPEG to
    exactly Pillow's pixels (0 difference on the 600 CIL cells' first 100).
    """
    from tf_slim.data import tfexample_decoder

    init = tfexample_decoder.Image.__init__
    defaults = list(init.__defaults__ or ())
    names = init.__code__.co_varnames[1:init.__code__.co_argcount]
    i = names.index("dct_method") - (len(names) - len(defaults))
    if defaults[i] == "":
        defaults[i] = "INTEGER_ACCURATE"
        init.__defaults__ = tuple(defaults)


class _Unavailable(types.ModuleType):
    """A module whose every attribute access raises, naming what to install for the real thing."""

    def __init__(self, name: str, why: str):
        super().__init__(name)
        self.__dict__["_why"] = why

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        # ``from a.b import c`` looks ``c`` up as an attribute first: hand out a registered placeholder submodule.
        sub = sys.modules.get(f"{self.__name__}.{attr}")
        if sub is not None:
            return sub
        raise ImportError(f"{self.__name__}.{attr} is not available: {self._why}")


def _shim_tensorflow_io() -> None:
    """``meta_architectures/deepmac_meta_arch.py:28`` imports ``tensorflow_io`` at module level under TF2.

    It is used only by DeepMAC's unused mask-consistency loss, yet every ``model_builder`` import pulls it in.
    Fix: when tensorflow-io (187 MB) is not installed, register a placeholder module that raises on any use,
    so the import succeeds and a real use still fails loudly.
    """
    try:
        importlib.util.find_spec("tensorflow_io")
        real = importlib.util.find_spec("tensorflow_io") is not None
    except (ImportError, ValueError):
        real = False
    if not real and "tensorflow_io" not in sys.modules:
        sys.modules["tensorflow_io"] = _Unavailable(
            "tensorflow_io", "karyotf does not install tensorflow-io; pip install tensorflow-io==0.37.1 for DeepMAC")


def _shim_tf1_modules() -> None:
    """TF1 path on TF 2.15 (only needed after :func:`enable_tf1`).

    - ``matchers/bipartite_matcher.py:20`` imports ``tensorflow.contrib.image.python.ops.image_ops``:
      register placeholder ``tensorflow.contrib`` modules so the import works (the bipartite matcher is unused
      by karyotf's configs; using it raises).
    - TF 2.15's ``tensorflow/python/layers/normalization.py`` lazy-loads ``tf_keras.legacy_tf_layers.normalization``
      (slim batch norm): map ``tf_keras``, ``tf_keras.legacy_tf_layers`` and its ``normalization`` to the
      ``keras`` 2.15 package's ``keras.src.legacy_tf_layers``, which is the same code.
    - ``exporter.profile_inference_graph`` needs contrib's tfprof: replaced by a no-op in :func:`import_tf1_exporter`.
    """
    for name in ("tensorflow.contrib", "tensorflow.contrib.image", "tensorflow.contrib.image.python",
                 "tensorflow.contrib.image.python.ops", "tensorflow.contrib.image.python.ops.image_ops"):
        sys.modules.setdefault(name, _Unavailable(name, "tensorflow.contrib does not exist in TF 2"))
    try:
        import tf_keras  # noqa: F401  (a real tf-keras wins)
    except ImportError:
        import keras
        import keras.src.legacy_tf_layers as legacy
        import keras.src.legacy_tf_layers.normalization as legacy_norm

        sys.modules.setdefault("tf_keras", keras)
        sys.modules.setdefault("tf_keras.legacy_tf_layers", legacy)
        sys.modules.setdefault("tf_keras.legacy_tf_layers.normalization", legacy_norm)


def enable_tf1() -> None:
    """Switch this process to TF1 graph mode for slim models; must run before ``object_detection`` is imported."""
    global _MODE
    if _MODE == "tf1":
        return
    if "object_detection.builders.model_builder" in sys.modules and _MODE != "tf1":
        raise RuntimeError("object_detection was already imported in TF2 mode; run TF1 models in their own process")
    import tensorflow as tf

    tf.compat.v1.disable_v2_behavior()
    _MODE = "tf1"
    apply_shims()
    _shim_tf1_modules()


def apply_shims() -> None:
    """Apply every shim once.  Safe to call many times."""
    global _APPLIED, _MODE
    if _APPLIED:
        return
    _quiet_tf()
    _shim_numpy_aliases()
    _shim_tf_slim_control_flow()
    _shim_accurate_jpeg_dct()
    _shim_tensorflow_io()
    if _MODE is None:
        _MODE = "tf2"
    _APPLIED = True


def mode() -> str:
    return _MODE or "tf2"


class TF1HParams:
    """What ``object_detection.model_lib`` reads from its ``hparams`` argument, without ``tf.contrib``.

    Breaks: ``model_lib.create_estimator_and_inputs(hparams=None)`` builds a model_fn that reads
    ``load_pretrained = hparams.load_pretrained if hparams else False`` (model_lib.py:532), so without hparams the
    TF1 path silently ignores ``fine_tune_checkpoint`` and trains from scratch.  ``model_main.py`` passes
    ``model_hparams.create_hparams()``, which needs ``tensorflow.contrib.training.HParams`` (gone in TF 2).
    Fix: this stand-in with ``load_pretrained=True``; ``values()`` (merged into the configs by
    ``config_util.merge_external_params_with_configs``) is empty and ``get`` answers ``export_to_tpu``.
    """

    load_pretrained = True

    def values(self) -> dict:
        return {}

    def get(self, key, default=None):
        return getattr(self, key, default)


def import_tf1_exporter():
    """``object_detection.exporter`` with its tfprof profiling (contrib-only) replaced by a no-op."""
    from object_detection import exporter

    exporter.profile_inference_graph = lambda graph: None
    return exporter


apply_shims()


# --------------------------------------------------------------------------------------------------------------
# Process isolation: TF1 (slim) and TF2 (Keras) models cannot share a process (see the module docstring).
# --------------------------------------------------------------------------------------------------------------

class IsolatedError(RuntimeError):
    """A non-karyotf exception raised inside a :func:`run_isolated` child; carries the child's traceback text."""


def _rebuild_error(module: str, qualname: str, message: str, tb: str) -> BaseException:
    """The child's KaryotfError as the same class in the parent (message intact), else an IsolatedError.

    Exceptions are not pickled as such: a KaryotfError subclass with its own ``__init__`` (AnnotationError)
    does not survive ``pickle``; so the class is looked up by name and filled with the message.
    """
    try:
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if isinstance(cls, type) and issubclass(cls, KaryotfError):
            exc = cls.__new__(cls)
            Exception.__init__(exc, message)
            exc.child_traceback = tb
            return exc
    except Exception:  # noqa: BLE001 - fall through to the generic error
        pass
    return IsolatedError(f"{qualname}: {message}\n--- child traceback ---\n{tb}")


def _isolated_child(mode: str, target: str, kwargs: dict, conn) -> None:
    """Body of the spawned child: choose the TF mode, import ``target``, call it, send back the outcome."""
    try:
        if mode == "tf1":
            enable_tf1()
        else:
            apply_shims()
        module_name, _, func_name = target.partition(":")
        func = importlib.import_module(module_name)
        for part in func_name.split("."):
            func = getattr(func, part)
        result = func(**kwargs)
        conn.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        tb = traceback.format_exc()
        try:
            conn.send(("error", type(exc).__module__, type(exc).__qualname__, str(exc), tb))
        except Exception:  # noqa: BLE001
            pass
    finally:
        conn.close()


def run_isolated(mode: str, target: str, **kwargs):
    """Run ``target`` ("package.module:function") with ``kwargs`` in a fresh "spawn" child and return its result.

    The child calls :func:`enable_tf1` (``mode="tf1"``) or only the shims (``"tf2"``) before importing the
    target, so TF1 slim models work whatever this process has imported.  ``kwargs`` and the return value must
    pickle (paths, numbers, dicts).  A KaryotfError raised in the child is raised here as the same class with
    the same message; any other exception becomes :class:`IsolatedError` carrying the child's traceback.
    SIGINT and SIGTERM received here are forwarded to the child (whose training loop saves a checkpoint and
    returns); the parent keeps waiting for it.  A child that dies without answering raises IsolatedError.
    """
    if mode not in ("tf1", "tf2"):
        raise ValueError(f"mode must be 'tf1' or 'tf2', not {mode!r}")
    if ":" not in target:
        raise ValueError(f"target must be 'module:function', not {target!r}")
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_isolated_child, args=(mode, target, kwargs, send), daemon=False,
                        name=f"karyotf-{mode}-{target}")
    child.start()
    send.close()

    previous = {}

    def _forward(signum, frame):  # noqa: ARG001
        if child.is_alive():
            try:
                os.kill(child.pid, signum)
            except ProcessLookupError:
                pass

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _forward)
    try:
        outcome = None
        while not recv.poll(0.2) and child.is_alive():  # wait for an answer, or for the child to die
            pass
        if recv.poll(0):
            try:
                outcome = recv.recv()
            except EOFError:
                pass
        child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        recv.close()
        if child.is_alive():  # only if the parent itself failed while waiting
            child.terminate()
            child.join(10)
    if outcome is None:
        raise IsolatedError(f"the {mode} child running {target} died with exit code {child.exitcode} "
                            "before answering (out of memory? killed?)")
    if outcome[0] == "ok":
        return outcome[1]
    _, module, qualname, message, tb = outcome
    raise _rebuild_error(module, qualname, message, tb)


COCO_SUMMARY_KEYS = (
    "DetectionBoxes_Precision/mAP", "DetectionBoxes_Precision/mAP@.50IOU", "DetectionBoxes_Precision/mAP@.75IOU",
    "DetectionBoxes_Precision/mAP (small)", "DetectionBoxes_Precision/mAP (medium)",
    "DetectionBoxes_Precision/mAP (large)", "DetectionBoxes_Recall/AR@1", "DetectionBoxes_Recall/AR@10",
    "DetectionBoxes_Recall/AR@100", "DetectionBoxes_Recall/AR@100 (small)", "DetectionBoxes_Recall/AR@100 (medium)",
    "DetectionBoxes_Recall/AR@100 (large)")
"""The keys :func:`coco_metrics` returns, as the OD API names them (``-1.0``: no ground truth in that bucket)."""


def coco_metrics(groundtruth, detections, category_names=None) -> dict[str, float]:
    """The OD API's COCO detection metrics (``CocoDetectionEvaluator``, pycocotools) on numpy arrays.

    ``groundtruth[i] = (boxes, labels)`` and ``detections[i] = (boxes, labels, scores)`` for image ``i``: boxes an
    ``(N, 4)`` array of ``xmin, ymin, xmax, ymax`` in **pixels** (karyotf's order; turned into the OD API's
    ``ymin, xmin, ymax, xmax`` here), labels int ids 1..24, scores floats.  Returns the 12 COCO summary numbers
    keyed as the OD API names them (:data:`COCO_SUMMARY_KEYS`), e.g. ``'DetectionBoxes_Precision/mAP@.50IOU'``.

    Two OD API quirks handled here:

    - ``include_metrics_per_category=True`` needs ``COCOeval.category_stats``, which only Google's internal
      pycocotools fork has (PyPI pycocotools raises ``ValueError: Category stats do not exist``): so it stays off;
      per-class AP comes from :class:`karyotf.metrics.PRCurve` (same 101-point interpolation).
    - pycocotools prints its summary table to stdout: captured and logged at DEBUG level; the evaluator's own
      ``tf.logging.info`` progress lines are silenced while it runs.
    """
    from object_detection.core import standard_fields as fields
    from object_detection.metrics import coco_evaluation

    if len(groundtruth) != len(detections):
        raise ValueError(f"{len(groundtruth)} images of ground truth but {len(detections)} of detections")
    if category_names is None:
        category_names = classes.NAMES
    categories = [{"id": i + 1, "name": str(n)} for i, n in enumerate(category_names)]
    evaluator = coco_evaluation.CocoDetectionEvaluator(categories, include_metrics_per_category=False)

    def yxyx(boxes) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return b[:, [1, 0, 3, 2]]

    for image_id, ((gt_boxes, gt_labels), (det_boxes, det_labels, det_scores)) in enumerate(
            zip(groundtruth, detections)):
        evaluator.add_single_ground_truth_image_info(image_id, {
            fields.InputDataFields.groundtruth_boxes: yxyx(gt_boxes),
            fields.InputDataFields.groundtruth_classes: np.asarray(gt_labels, dtype=np.int64).reshape(-1)})
        evaluator.add_single_detected_image_info(image_id, {
            fields.DetectionResultFields.detection_boxes: yxyx(det_boxes),
            fields.DetectionResultFields.detection_scores: np.asarray(det_scores, dtype=np.float64).reshape(-1),
            fields.DetectionResultFields.detection_classes: np.asarray(det_labels, dtype=np.int64).reshape(-1)})
    printed = io.StringIO()
    tf_log = logging.getLogger("tensorflow")  # the evaluator's tf.logging.info progress lines
    level = tf_log.level
    tf_log.setLevel(max(level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(printed):
            result = evaluator.evaluate()
    finally:
        tf_log.setLevel(level)
    logging.getLogger(__name__).debug("pycocotools:\n%s", printed.getvalue())
    return {k: float(v) for k, v in result.items()}


# --------------------------------------------------------------------------------------------------------------
# Export helpers (used by karyotf.export)
# --------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def no_keras_layer_traces():
    """Within this block, ``tf.saved_model.save`` skips Keras's per-layer trace step.

    What breaks: the OD API's TF2 exporters (``exporter_lib_v2``, ``export_tflite_graph_lib_tf2``) hand
    ``tf.saved_model.save`` a module holding a Keras detection model; Keras 2.15 then traces every layer's ``call``
    (and its losses) so the SavedModel could be re-loaded *as Keras layers*: ~75 s of ~180 s of an SSD MobileNet v2
    export on 2 cores, and unused by a detector, which only calls the ``serving_default`` signature.
    Fix: ``keras.src.saving.legacy.saved_model.utils.keras_option_scope(save_traces=False)``, the switch behind
    ``model.save(..., save_traces=False)``.  Variables and signatures are saved as before.  With another Keras
    (no such module) this does nothing.
    """
    try:
        from keras.src.saving.legacy.saved_model import utils as keras_sm_utils
    except ImportError:
        yield
        return
    with keras_sm_utils.keras_option_scope(save_traces=False,
                                           in_tf_saved_model_scope=keras_sm_utils.in_tf_saved_model_scope()):
        yield


def save_without_layer_traces(obj, export_dir: str, signatures) -> None:
    """``tf.saved_model.save(obj, export_dir, signatures)`` inside :func:`no_keras_layer_traces`."""
    import tensorflow as tf

    with no_keras_layer_traces():
        tf.saved_model.save(obj, export_dir, signatures=signatures)


# --------------------------------------------------------------------------------------------------------------
# The OD API's protos, readers and builders, for the rest of karyotf (no other module imports object_detection)
# --------------------------------------------------------------------------------------------------------------

def pipeline_proto():
    """A new, empty ``TrainEvalPipelineConfig`` (``object_detection.protos.pipeline_pb2``)."""
    from object_detection.protos import pipeline_pb2

    return pipeline_pb2.TrainEvalPipelineConfig()


def checkpoint_version(tf_mode: str):
    """``train_pb2.CheckpointVersion`` of a fine-tune checkpoint for a ``tf1`` or ``tf2`` model."""
    from object_detection.protos import train_pb2

    return train_pb2.CheckpointVersion.V2 if tf_mode == "tf2" else train_pb2.CheckpointVersion.V1


def parse_label_map(data: bytes):
    """A ``StringIntLabelMap`` parsed as the OD API's ``label_map_util.load_labelmap`` does (text proto, else
    binary), not yet validated (:func:`validate_label_map`).  Raises a protobuf error on a bad map."""
    from google.protobuf import text_format
    from object_detection.protos import string_int_label_map_pb2

    lm = string_int_label_map_pb2.StringIntLabelMap()
    try:
        text_format.Merge(data.decode("utf-8"), lm)
    except (text_format.ParseError, UnicodeDecodeError):
        lm.ParseFromString(data)
    return lm


def validate_label_map(lm) -> None:
    """``label_map_util``'s own check (ids >= 0, id 0 only for ``background``); ``ValueError`` if it fails."""
    from object_detection.utils import label_map_util

    label_map_util._validate_label_map(lm)


def configs_from_proto(cfg) -> dict:
    """``config_util.create_configs_from_pipeline_proto``: the dict of configs the OD API's builders take."""
    from object_detection.utils import config_util

    return config_util.create_configs_from_pipeline_proto(cfg)


def train_tf2_parts():
    """The OD API modules karyotf's TF2 training loop is built from."""
    from object_detection import inputs, model_lib_v2
    from object_detection.builders import model_builder, optimizer_builder
    from object_detection.utils import config_util, variables_helper

    return types.SimpleNamespace(inputs=inputs, model_lib_v2=model_lib_v2, model_builder=model_builder,
                                 optimizer_builder=optimizer_builder, config_util=config_util,
                                 variables_helper=variables_helper)


def train_tf1_parts():
    """The OD API module karyotf's TF1 (estimator) training uses; call in a TF1-mode process only."""
    from object_detection import model_lib

    return types.SimpleNamespace(model_lib=model_lib)


def export_tf2_parts():
    """The OD API modules karyotf's TF2 exporters use."""
    from object_detection import export_tflite_graph_lib_tf2, exporter_lib_v2
    from object_detection.builders import model_builder
    from object_detection.utils import config_util

    return types.SimpleNamespace(exporter_lib_v2=exporter_lib_v2, model_builder=model_builder,
                                 config_util=config_util, export_tflite_graph_lib_tf2=export_tflite_graph_lib_tf2)


def override(cfg, **params) -> None:
    """Apply ``params`` (``learning_rate=``, ``batch_size=``, ``train_steps=`` ...) to the pipeline config ``cfg``
    in place with the OD API's own ``config_util.merge_external_params_with_configs``."""
    from object_detection.utils import config_util

    configs = config_util.create_configs_from_pipeline_proto(cfg)
    configs = config_util.merge_external_params_with_configs(configs, kwargs_dict=params)
    cfg.CopyFrom(config_util.create_pipeline_proto_from_configs(configs))


def doctor_parts():
    """What ``karyotf doctor`` checks imports and builds with."""
    from object_detection.builders import model_builder
    from object_detection.protos import model_pb2
    from object_detection.utils import label_map_util

    return types.SimpleNamespace(model_builder=model_builder, label_map_util=label_map_util, model_pb2=model_pb2)
