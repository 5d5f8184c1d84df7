"""Export a trained model: ``runs/MODEL`` -> ``exported/MODEL``.

``python -m karyotf.export --model-dir runs/MODEL --out exported/MODEL [--checkpoint PREFIX] [--tflite]`` (the same
command as ``karyotf export``; the Python API is :func:`export`)

The export directory holds, for TF1 (slim, e.g. ``faster_rcnn``) and TF2 (Keras, ``ssd``, ``rfcn``) models alike::

    saved_model/                 SavedModel, signature ``serving_default``
    frozen_inference_graph.pb    GraphDef with the weights baked in
    pipeline.config              the model's config as exported
    label_map.pbtxt              class ids -> names, read by karyotf.detect.Detector
    karyotf.json                 model, tf mode, checkpoint step, source model dir, image size, tensor names
                                 (the schema is karyotf.rundir's, ``kind`` "export")
    checkpoint/ckpt-0.*  (TF2)   the weights as a TF2 checkpoint (usable as a fine-tune start)
    model.ckpt.*         (TF1)   the weights as a TF1 checkpoint (as the OD API's exporter writes them)
    model.tflite                 only with ``tflite=True``, SSD only

Tensor names (``karyotf.json["tensors"]`` records them too):

- SavedModel: TF2 exports take ``input_tensor`` (uint8 ``[1, H, W, 3]``), TF1 exports take ``inputs``
  (uint8 ``[N, H, W, 3]``); both return ``detection_boxes`` (normalised ``[ymin, xmin, ymax, xmax]``),
  ``detection_scores``, ``detection_classes`` (label ids as floats, 1-based) and ``num_detections``.
- Frozen graph (both kinds): input ``image_tensor:0`` (uint8 ``[N, H, W, 3]``; ``N = 1`` for TF2 exports);
  outputs ``detection_boxes:0``, ``detection_scores:0``, ``detection_classes:0``, ``num_detections:0``.
  These are the TF1 OD API's names; the TF2 frozen graph is made here with the same names.

Export is atomic: everything is built in a hidden temporary directory beside ``out`` and renamed into place
only when complete; on any error the temporary directory is removed and an existing ``out`` is untouched.
TF1 models are exported in a child process in TF1 mode (:func:`karyotf.odapi.run_isolated`).
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

from . import classes, pipelines, rundir
from .errors import ExportError, PipelineConfigError
from .io import replace_dir
from .rundir import FROZEN_GRAPH, SAVED_MODEL, resolve_checkpoint, staging_dir
from .serving import INPUT_NAME, OUTPUT_NAMES, rename_frozen_io
from .yolo.export import export as export_yolo

# Imports inside functions, and why: karyotf.odapi (importing it loads TensorFlow and applies the OD API's
# compatibility shims: only where TensorFlow is about to run); TensorFlow / KerasCV / the OD API (heavy: kept off the
# import path).

log = logging.getLogger(__name__)



# ----------------------------------------------------------------------------------------------------------
# Inputs: pipeline.config, checkpoint, TF mode
# ----------------------------------------------------------------------------------------------------------

def _config_for_export(path: str | Path):
    """:func:`karyotf.rundir.read_config`, its errors as ExportError naming the file, and a model section required."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no pipeline.config (fix: point --model-dir at a directory made by "
                          "`karyotf config MODEL --out DIR` and trained with `karyotf train`)")
    try:
        cfg = rundir.read_config(path)
    except PipelineConfigError as exc:
        raise ExportError(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise ExportError(f"{path}: not a text pipeline config ({exc}) (fix: regenerate it with `karyotf config`)") from exc
    if not cfg.HasField("model") or cfg.model.WhichOneof("model") is None:
        raise ExportError(f"{path}: the config has no model {{ ... }} section (fix: regenerate it with `karyotf config`)")
    return cfg


def input_size_of(cfg) -> list[int] | None:
    """``[height, width]`` of a fixed-shape resizer, ``[min_dim, max_dim]`` of a keep-aspect one, else None
    (``karyotf.json``'s ``input_size``; ``image_size`` is the larger of the two)."""
    arch = cfg.model.WhichOneof("model")
    resizer = getattr(getattr(cfg.model, arch), "image_resizer", None) if arch else None
    kind = resizer.WhichOneof("image_resizer_oneof") if resizer is not None else None
    if kind == "fixed_shape_resizer":
        return [resizer.fixed_shape_resizer.height, resizer.fixed_shape_resizer.width]
    if kind == "keep_aspect_ratio_resizer":
        return [resizer.keep_aspect_ratio_resizer.min_dimension, resizer.keep_aspect_ratio_resizer.max_dimension]
    return None


def _image_size(cfg) -> int | None:
    """The model's input size (:func:`karyotf.pipelines.image_size`), None for a resizer karyotf does not set."""
    try:
        return pipelines.image_size(cfg)
    except PipelineConfigError:
        return None




# ----------------------------------------------------------------------------------------------------------
# The two exporters (run where the matching TF mode is on)
# ----------------------------------------------------------------------------------------------------------

class _Clock:
    """Logs the seconds each export phase took (CPU-bound phases; shows where export time goes)."""

    def __init__(self):
        self.t = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        log.info("export: %s %.1f s", what, now - self.t)
        self.t = now


def _fit_error(ckpt: str, pipeline: str, exc: BaseException) -> ExportError:
    text = str(exc).strip().splitlines()
    detail = " ".join(text[:3])[:600] if text else type(exc).__name__
    return ExportError(f"{ckpt}: the checkpoint does not fit the model in {pipeline}: {detail} "
                       "(fix: export with the pipeline.config the checkpoint was trained with, or retrain)")


def _export_tf2(pipeline: str, checkpoint: str, out: str) -> dict:
    """TF2 (Keras) export into ``out`` (exists, empty): OD API SavedModel + frozen graph + checkpoint/.

    The SavedModel is the OD API's own (``exporter_lib_v2.DetectionFromImageModule``, input ``input_tensor``).
    The frozen graph is the same traced serving function with its variables turned into constants
    (``convert_variables_to_constants_v2``) and its input/outputs renamed to the TF1 names (:data:`INPUT_NAME`,
    :data:`OUTPUT_NAMES`), so both kinds of frozen graph load the same way.
    """
    from . import odapi
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    od = odapi.export_tf2_parts()
    exporter_lib_v2, model_builder, config_util = od.exporter_lib_v2, od.model_builder, od.config_util
    cfg = _config_for_export(pipeline)
    out_dir = Path(out)
    clock = _Clock()
    try:
        names = [name for name, _ in tf.train.list_variables(checkpoint)]
    except (tf.errors.OpError, ValueError) as exc:
        raise ExportError(f"{checkpoint}: unreadable checkpoint: {exc}") from exc
    if not any(name.startswith("model/") for name in names):
        # assert_existing_objects_matched() would pass vacuously on a checkpoint that holds no model at all
        raise ExportError(f"{checkpoint}: the checkpoint holds no TF2 detection-model weights (a TF1 checkpoint, "
                          "or not an OD API one?) (fix: export the checkpoint this model was trained into)")
    try:
        model = model_builder.build(cfg.model, is_training=False)
    except ValueError as exc:
        raise ExportError(f"{pipeline}: the OD API cannot build this model in TF2 mode: {exc}") from exc
    ckpt = tf.train.Checkpoint(model=model)
    module = exporter_lib_v2.DetectionFromImageModule(model)
    # Trace first, restore after: the variables then exist with the shapes this config gives them, and restoring
    # a checkpoint of another shape fails.  (Restoring first, as exporter_lib_v2 does, creates Keras variables
    # *from the checkpoint's values*: a 24-class checkpoint silently "fits" a 3-class config and the export is
    # broken.)
    concrete = module.__call__.get_concrete_function()
    try:
        status = ckpt.restore(checkpoint).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        raise _fit_error(checkpoint, pipeline, exc) from exc
    clock.lap("build, restore and trace")

    tf.train.CheckpointManager(ckpt, str(out_dir / "checkpoint"), max_to_keep=1).save(checkpoint_number=0)
    odapi.save_without_layer_traces(module, str(out_dir / SAVED_MODEL), signatures=concrete)
    config_util.save_pipeline_config(cfg, str(out_dir))
    clock.lap("checkpoint and SavedModel")

    frozen = convert_variables_to_constants_v2(concrete)
    (input_tensor,) = [t for t in frozen.inputs if t.dtype == tf.uint8]
    order = tf.nest.flatten({key: key for key in concrete.structured_outputs})  # flat order of the outputs
    outputs = {name: frozen.outputs[order.index(name)].name for name in OUTPUT_NAMES}
    graph_def = rename_frozen_io(frozen.graph.as_graph_def(), input_tensor.op.name, outputs)
    (out_dir / FROZEN_GRAPH).write_bytes(graph_def.SerializeToString())
    clock.lap("frozen graph")
    return {"saved_model_input": "input_tensor", "saved_model_batch": 1}


def _export_tf1(pipeline: str, checkpoint: str, out: str) -> dict:
    """TF1 (slim) export into ``out``; must run in a TF1-mode process (see :func:`karyotf.odapi.run_isolated`).

    The OD API's ``exporter.export_inference_graph`` writes ``frozen_inference_graph.pb``, ``saved_model/``
    (built from the frozen graph; input ``inputs``), ``model.ckpt.*`` and ``pipeline.config``.
    """
    from . import odapi
    import tensorflow as tf

    if odapi.mode() != "tf1":
        raise ExportError("TF1 export needs a TF1-mode process (a karyotf bug: call it through odapi.run_isolated)")
    exporter = odapi.import_tf1_exporter()
    cfg = _config_for_export(pipeline)
    try:
        exporter.export_inference_graph("image_tensor", cfg, checkpoint, out)
    except ValueError as exc:
        if "not supported" in str(exc):
            raise ExportError(f"{pipeline}: the OD API cannot build this model in TF1 mode: {exc}") from exc
        raise _fit_error(checkpoint, pipeline, exc) from exc
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.FailedPreconditionError) as exc:
        raise _fit_error(checkpoint, pipeline, exc) from exc
    return {"saved_model_input": "inputs", "saved_model_batch": None}


def _export_tflite(pipeline: str, checkpoint_dir: str, out: str) -> dict:
    """SSD only: ``export_tflite_graph_lib_tf2`` (TFLite-friendly SavedModel with the custom
    ``TFLite_Detection_PostProcess`` op) then ``tf.lite.TFLiteConverter`` -> ``model.tflite`` (float32)."""
    from . import odapi
    import tensorflow as tf

    export_tflite_graph_lib_tf2 = odapi.export_tf2_parts().export_tflite_graph_lib_tf2
    cfg = _config_for_export(pipeline)
    work = Path(out) / ".tflite_work"
    try:
        with odapi.no_keras_layer_traces():
            export_tflite_graph_lib_tf2.export_tflite_model(cfg, checkpoint_dir, str(work), 100, False)
        log.info("export: TFLite-friendly SavedModel written; converting")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(work / "saved_model"))
        converter.optimizations = []
        data = converter.convert()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (Path(out) / "model.tflite").write_bytes(data)
    return {"tflite_input": "float32 [1, H, W, 3] scaled to [-1, 1]", "tflite_size": input_size_of(cfg)}


# ----------------------------------------------------------------------------------------------------------
# The public API
# ----------------------------------------------------------------------------------------------------------

def export(model_dir: str | Path, out_dir: str | Path, checkpoint: str | Path | None = None,
           tflite: bool = False) -> Path:
    """Export the model trained in ``model_dir`` to ``out_dir`` (layout in the module docstring); return ``out_dir``.

    ``checkpoint``: a prefix such as ``runs/ssd/ckpt-3``; default the latest in ``model_dir``.
    ``tflite``: also write ``model.tflite`` (SSD models only).
    Raises ExportError for a model dir without checkpoint, a missing or invalid ``pipeline.config``, a checkpoint
    that does not fit the config, ``tflite`` on a non-SSD model, or an ``out_dir`` that is not an export.
    """
    from . import odapi

    model_dir = Path(model_dir)
    out_dir = Path(out_dir)
    if rundir.is_yolo_dir(model_dir):  # KerasCV YOLOv8 (issue 13): same export layout and tensor names

        return export_yolo(model_dir, out_dir, checkpoint=checkpoint, tflite=tflite)
    if not model_dir.is_dir():
        raise ExportError(f"{model_dir}: no such model directory (fix: train first: `karyotf train MODEL --model-dir "
                          f"{model_dir}`)")
    pipeline = model_dir / rundir.PIPELINE
    cfg = _config_for_export(pipeline)
    mode = pipelines.tf_mode(cfg)
    arch = pipelines.meta_arch(cfg)
    num_classes = pipelines.num_classes(cfg)
    if tflite and arch != "ssd":
        raise ExportError(f"{pipeline}: --tflite is for SSD models only (this is a {arch} model); "
                          "TFLite has no kernels for the two-stage models' ops (fix: drop --tflite)")
    ckpt_prefix, step = resolve_checkpoint(model_dir, checkpoint)
    ckpt_prefix = os.path.abspath(ckpt_prefix)
    label_map = rundir.label_map_of(cfg, model_dir)
    if label_map is None and num_classes != classes.NUM_CLASSES:
        raise ExportError(f"{pipeline}: its label_map_path does not exist and num_classes is {num_classes}, "
                          f"not karyotf's {classes.NUM_CLASSES} (fix: rebuild the records or fix label_map_path)")
    if label_map is not None:
        try:
            ids = sorted(rundir.read_label_map(label_map, canonical=True))
        except rundir.LabelMapError as exc:
            raise ExportError(f"{exc} (the label map named by {pipeline})") from exc
        if ids != list(range(1, num_classes + 1)):
            raise ExportError(f"{label_map}: label ids {ids[0]}..{ids[-1]} ({len(ids)}) do not match the model's "
                              f"num_classes {num_classes} in {pipeline} (fix: export with the records the "
                              "model was trained on, or reconfigure and retrain)")
    tmp = staging_dir(out_dir, model_dir)
    t0 = time.perf_counter()
    try:
        args = dict(pipeline=str(pipeline), checkpoint=ckpt_prefix, out=str(tmp))
        log.info("exporting %s (%s, %s) checkpoint %s -> %s", model_dir, arch, mode, ckpt_prefix, out_dir)
        if mode == "tf1":
            info = odapi.run_isolated("tf1", "karyotf.export:_export_tf1", **args)
        elif odapi.mode() == "tf1":  # this process is in TF1 mode: TF2 export needs a fresh one
            info = odapi.run_isolated("tf2", "karyotf.export:_export_tf2", **args)
        else:
            info = _export_tf2(**args)
        if tflite:
            # the TFLite exporter restores the latest checkpoint of a directory: give it exactly ours
            ckpt_dir = tmp / "checkpoint"
            if not (ckpt_dir / "ckpt-0.index").is_file():
                raise ExportError(f"{tmp}: TF2 export wrote no checkpoint/ckpt-0 (a karyotf bug)")
            targs = dict(pipeline=str(pipeline), checkpoint_dir=str(ckpt_dir), out=str(tmp))
            info.update(odapi.run_isolated("tf2", "karyotf.export:_export_tflite", **targs)
                        if odapi.mode() == "tf1" else _export_tflite(**targs))
        if label_map is not None:
            shutil.copyfile(label_map, tmp / rundir.LABEL_MAP)
        else:
            (tmp / rundir.LABEL_MAP).write_text(classes.label_map_text())
        for name in (FROZEN_GRAPH, f"{SAVED_MODEL}/saved_model.pb", rundir.PIPELINE):
            if not (tmp / name).is_file():
                raise ExportError(f"{tmp}: the exporter did not write {name} (a karyotf bug; please report)")
        seconds = time.perf_counter() - t0
        meta = {
            "model": rundir.model_name(model_dir),
            "architecture": arch,
            "tf": mode,
            "checkpoint": str(ckpt_prefix),
            "checkpoint_step": step,
            "source_model_dir": str(model_dir.resolve()),
            "image_size": _image_size(cfg),
            "input_size": input_size_of(cfg),
            "num_classes": num_classes,
            "tensors": {
                "saved_model": {"signature": "serving_default", "input": info["saved_model_input"],
                                "input_batch": info["saved_model_batch"], "outputs": list(OUTPUT_NAMES)},
                "frozen_graph": {"input": f"{INPUT_NAME}:0", "outputs": [f"{n}:0" for n in OUTPUT_NAMES]},
            },
            "tflite": "model.tflite" if tflite else None,
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


def resolve_export(model: str | Path) -> Path:
    """The export dir to evaluate: ``model`` itself, or for a model dir the export of its latest checkpoint in
    ``model/export-ckpt-N`` (:func:`karyotf.rundir.to_evaluate`), made with :func:`export` unless already there."""
    out, prefix = rundir.to_evaluate(model)
    if prefix is None:
        if out != Path(model):
            log.info("using the existing export %s", out)
        return out
    log.info("exporting %s step %s to %s for evaluation", model, rundir.checkpoint_step(prefix), out)
    return Path(export(model, out, checkpoint=prefix))


if __name__ == "__main__":  # `python -m karyotf.export ARGS` is `python -m karyotf export ARGS` (one parser, the CLI's)
    os.execv(sys.executable, [sys.executable, "-m", "karyotf", "export", *sys.argv[1:]])
