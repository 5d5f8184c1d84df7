"""Run an exported model on images: :class:`Detector` and ``karyotf detect``.

``Detector(export_dir)`` loads what :func:`karyotf.export.export` wrote, from a TF1 (slim) or a TF2 (Keras)
model alike, in an ordinary TF2 process (no TF1 mode; of the OD API only its label map reader, through
:mod:`karyotf.rundir`):

- ``use="saved_model"``: ``tf.saved_model.load`` and the ``serving_default`` signature (TF2 exports take
  ``input_tensor``, TF1 exports ``inputs``; the input key is read from the signature);
- ``use="frozen_graph"``: ``frozen_inference_graph.pb`` imported with ``tf.compat.v1.wrap_function`` and pruned to
  ``image_tensor:0`` -> ``detection_boxes:0`` / ``detection_scores:0`` / ``detection_classes:0`` / ``num_detections:0``;
- ``use="auto"``: the SavedModel when present, else the frozen graph.

:meth:`Detector.detect` returns :class:`karyotf.annotations.Box` objects in PIXELS of the given image, with the
canonical class name (label ids mapped through the export's ``label_map.pbtxt``) and ``score``, sorted by score.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import classes, defaults, rundir
from .annotations import Box
from .errors import DetectError, ImageError
from .find import Finder
from .images import draw_boxes as picture, load
from .io import atomic_path, atomic_write_json
from .serving import OUTPUT_NAMES

# Imports inside functions, and why: karyotf.odapi (importing it loads TensorFlow and applies the OD API's
# compatibility shims: only where TensorFlow is about to run); TensorFlow / KerasCV / the OD API (heavy: kept off the
# import path); tqdm (optional or platform-specific: tried, with a fallback).

log = logging.getLogger(__name__)

USES = ("auto", "saved_model", "frozen_graph")
OUTPUTS = OUTPUT_NAMES

def read_class_names(path: str | Path) -> dict[int, str]:
    """An export's ``label_map.pbtxt`` -> ``{id: canonical name}`` (:func:`karyotf.rundir.read_label_map`);
    DetectError naming the file and item if it is not usable.

    A class-agnostic detector's map reads ``{1: classes.AGNOSTIC}``: its boxes are named ``chromosome``, which is
    no chromosome class; a classifier names them (:class:`karyotf.classify.karyotyper.Karyotyper`)."""
    return rundir.read_label_map(path, canonical=True, error=DetectError, fix="re-export the model with `karyotf "
                                 "export`, which copies label_map.pbtxt beside the model")


def load_image(image: np.ndarray | str | Path) -> np.ndarray:
    """An image (file, array or PIL image) as HxWx3 uint8 RGB by karyotf's one decoder (:mod:`karyotf.images`:
    the pixels the model was trained on); a bad image is a :class:`DetectError`."""
    try:
        return load(image)
    except ImageError as exc:
        raise DetectError(str(exc)) from None


class Detector(Finder):
    """An exported detection model, ready to run on images: a :class:`karyotf.find.ChromosomeFinder` (its
    ``find(image)`` is detect -> floor -> class-agnostic NMS, :mod:`karyotf.find`).

    Attributes: ``kind`` (``"saved_model"`` or ``"frozen_graph"``: what was loaded), ``model_name``, ``tf``
    (the exported model's TF mode), ``label_map`` (``{id: name}``), ``export_dir``, ``info`` (``karyotf.json``),
    ``agnostic`` (a one-class "chromosome" detector, named by a classifier downstream).
    """

    def __init__(self, export_dir: str | Path, use: str = "auto"):
        from . import odapi  # noqa: F401  (quiet TF logs; shims before the label map reader)

        if use not in USES:
            raise DetectError(f"use={use!r}: choose one of {', '.join(USES)}")
        self.export_dir = Path(export_dir)
        if not self.export_dir.is_dir():
            raise DetectError(f"{self.export_dir}: no such export directory (fix: `karyotf export --model-dir runs/MODEL "
                              f"--out {self.export_dir}`)")
        try:
            self.info: dict = rundir.read_info(self.export_dir)
        except rundir.InfoError as exc:
            raise DetectError(f"{exc} (fix: re-export the model)") from exc
        self.model_name: str = self.info.get("model") or self.export_dir.name
        self.tf: str | None = self.info.get("tf")
        self.label_map = read_class_names(self.export_dir / rundir.LABEL_MAP)
        self.agnostic: bool = classes.is_agnostic(self.label_map)
        """A class-agnostic detector: it finds chromosomes, its boxes are named ``classes.AGNOSTIC``."""
        saved = self.export_dir / rundir.SAVED_MODEL / "saved_model.pb"
        frozen = self.export_dir / rundir.FROZEN_GRAPH
        if use == "auto":
            use = "saved_model" if saved.is_file() else "frozen_graph"
        self.kind = use
        if use == "saved_model":
            if not saved.is_file():
                raise DetectError(f"{saved}: missing (fix: re-export, or use='frozen_graph')")
            self._fn, self._input_key, self._batch1 = self._load_saved_model(saved.parent)
        else:
            if not frozen.is_file():
                raise DetectError(f"{frozen}: missing (fix: re-export, or use='saved_model')")
            self._fn, self._input_key, self._batch1 = self._load_frozen_graph(frozen)
        self.last_seconds: float | None = None

    # -- loading -------------------------------------------------------------------------------------------
    def _load_saved_model(self, path: Path):
        import tensorflow as tf

        try:
            self._loaded = tf.saved_model.load(str(path))
        except (OSError, ValueError, tf.errors.OpError) as exc:
            raise DetectError(f"{path}: cannot load the SavedModel: {exc} (fix: re-export the model)") from exc
        sig = self._loaded.signatures.get("serving_default")
        if sig is None:
            raise DetectError(f"{path}: the SavedModel has no serving_default signature (fix: re-export the model)")
        inputs = sig.structured_input_signature[1]
        if len(inputs) != 1:
            raise DetectError(f"{path}: serving_default takes {sorted(inputs)}; expected one image input")
        (key, spec), = inputs.items()
        if spec.dtype != tf.uint8:
            raise DetectError(f"{path}: serving_default input {key!r} is {spec.dtype.name}, not uint8 images "
                              "(fix: export with input type image_tensor, as `karyotf export` does)")
        missing = [o for o in OUTPUTS if o not in sig.structured_outputs]
        if missing:
            raise DetectError(f"{path}: serving_default lacks outputs {missing} (not an OD API detection export?)")
        batch1 = spec.shape.rank is not None and spec.shape[0] == 1
        return sig, key, batch1

    def _load_frozen_graph(self, path: Path):
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise DetectError(f"{path}: not a GraphDef ({exc}) (fix: re-export the model)") from exc
        tensors = self.info.get("tensors", {}).get("frozen_graph", {})
        input_name = tensors.get("input", "image_tensor:0")
        output_names = tensors.get("outputs", [f"{o}:0" for o in OUTPUTS])
        nodes = {n.name: n for n in graph_def.node}
        missing = [t for t in [input_name, *output_names] if t.split(":")[0] not in nodes]
        if missing:
            raise DetectError(f"{path}: the graph has no tensors {missing} (not an OD API detection export?)")

        def _import():
            tf.compat.v1.import_graph_def(graph_def, name="")

        try:
            wrapped = tf.compat.v1.wrap_function(_import, [])
            graph = wrapped.graph
            fn = wrapped.prune(graph.get_tensor_by_name(input_name),
                               {o.split(":")[0]: graph.get_tensor_by_name(o) for o in output_names})
        except (ValueError, KeyError, tf.errors.OpError) as exc:
            raise DetectError(f"{path}: cannot load the frozen graph: {exc}") from exc
        shape = nodes[input_name.split(":")[0]].attr["shape"].shape
        batch1 = bool(shape.dim) and shape.dim[0].size == 1
        return fn, None, batch1

    # -- running -------------------------------------------------------------------------------------------
    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        tensor = tf.constant(batch, dtype=tf.uint8)
        try:
            out = self._fn(tensor) if self._input_key is None else self._fn(**{self._input_key: tensor})
        except (tf.errors.OpError, ValueError, TypeError) as exc:
            raise DetectError(f"{self.export_dir} ({self.kind}): inference failed on an image of shape "
                              f"{batch.shape[1:]}: {str(exc).splitlines()[0]}") from exc
        return {k: np.asarray(out[k]) for k in OUTPUTS}

    def _boxes(self, out: dict[str, np.ndarray], i: int, height: int, width: int, min_score: float) -> list[Box]:
        n = int(out["num_detections"][i])
        boxes = out["detection_boxes"][i][:n]
        scores = out["detection_scores"][i][:n]
        labels = out["detection_classes"][i][:n]
        result = []
        for (ymin, xmin, ymax, xmax), score, label in zip(boxes, scores, labels):
            score = float(score)
            if score < min_score:
                continue
            ident = int(round(float(label)))
            name = self.label_map.get(ident)
            if name is None:
                raise DetectError(f"{self.export_dir}/label_map.pbtxt has no id {ident}, which the model predicted "
                                  "(fix: re-export with the label map the model was trained with)")
            x0 = float(np.clip(xmin, 0.0, 1.0)) * width
            x1 = float(np.clip(xmax, 0.0, 1.0)) * width
            y0 = float(np.clip(ymin, 0.0, 1.0)) * height
            y1 = float(np.clip(ymax, 0.0, 1.0)) * height
            result.append(Box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), name, score=score))
        result.sort(key=lambda b: b.score, reverse=True)
        return result

    def detect(self, image: np.ndarray | str | Path, min_score: float = 0.0) -> list[Box]:
        """Boxes found in ``image`` (HxWx3 uint8 array or a file), in pixels, best score first."""
        arr = load_image(image)
        t0 = time.perf_counter()
        out = self._run(arr[np.newaxis])
        boxes = self._boxes(out, 0, arr.shape[0], arr.shape[1], min_score)
        self.last_seconds = time.perf_counter() - t0
        return boxes

    def detect_batch(self, images: Iterable[np.ndarray | str | Path], min_score: float = 0.0) -> list[list[Box]]:
        """:meth:`detect` for each image (images may differ in size; a batch of one each, as exported)."""
        return [self.detect(image, min_score=min_score) for image in images]

    def __repr__(self) -> str:
        return f"Detector({str(self.export_dir)!r}, kind={self.kind!r}, model={self.model_name!r}, tf={self.tf!r})"


# ----------------------------------------------------------------------------------------------------------
# Drawing and the `karyotf detect` command
# ----------------------------------------------------------------------------------------------------------

def draw_boxes(image: np.ndarray | str | Path, boxes: Sequence[Box], path: str | Path, line: int = 2) -> Path:
    """Write ``image`` with ``boxes`` drawn (:func:`karyotf.images.draw_boxes`: colour by Denver group, label
    ``name score``) to ``path`` atomically."""
    im = picture(load_image(image), boxes, line=line)
    path = Path(path)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return path


@dataclass
class DetectRun:
    """What :func:`detect_images` wrote."""

    json_path: Path
    pictures: list[Path] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)


def detect_images(images: Sequence[str | Path], model, out_dir: str | Path = defaults.DETECTIONS_DIR,
                  min_score: float = defaults.MIN_SCORE, use: str = defaults.USE, draw: bool = True) -> DetectRun:
    """Run ``model`` on image files; write ``out_dir/detections.json`` and ``<image>_detections.png``.

    ``model``: an export dir, or a model object the caller built (a :class:`Detector`, or a
    :class:`karyotf.classify.karyotyper.Karyotyper` whose classifier names the boxes, such as the model pair
    shipped with karyotf, ``Karyotyper.default()``).

    ``detections.json``: ``{"model", "export_dir", "kind", "tf", "min_score", "images": [{"image", "width",
    "height", "seconds", "count", "detections": [{"class", "label", "box": [xmin, ymin, xmax, ymax], "score"}]}]}``
    with boxes in pixels.  The first image's time includes the model's warm-up.
    """
    if not images:
        raise DetectError("no images given (fix: karyotf detect IMAGE... --model exported/MODEL)")
    paths = [Path(p) for p in images]
    for p in paths:
        if not p.is_file():
            raise DetectError(f"{p}: no such image file")
    out_dir = Path(out_dir)
    t_load = time.perf_counter()
    if isinstance(model, (str, Path)):
        det = Detector(model, use=use)
    else:
        det = model
    load_seconds = time.perf_counter() - t_load
    run = DetectRun(json_path=out_dir / "detections.json")
    stems: dict[str, int] = {}
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **_):
            return x
    for p in tqdm(paths, desc="detect", unit="image", disable=len(paths) < 3):
        arr = load_image(p)
        boxes = det.detect(arr, min_score=min_score)
        entry = {"image": str(p), "width": int(arr.shape[1]), "height": int(arr.shape[0]),
                 "seconds": round(det.last_seconds or 0.0, 4), "count": len(boxes),
                 "detections": [b.to_dict() for b in boxes]}
        if draw:
            stem = p.stem if p.stem not in stems else f"{p.stem}_{stems[p.stem]}"
            stems[p.stem] = stems.get(p.stem, 0) + 1
            picture = draw_boxes(arr, boxes, out_dir / f"{stem}_detections.png")
            entry["picture"] = str(picture)
            run.pictures.append(picture)
        run.results.append(entry)
    atomic_write_json(run.json_path, {
        "model": det.model_name, "export_dir": str(det.export_dir), "kind": det.kind, "tf": det.info.get("tf"),
        "min_score": min_score, "load_seconds": round(load_seconds, 3), "images": run.results})
    return run
